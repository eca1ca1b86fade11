/*
 * node.c - the namespace of a mount: root, /.featurefs, symbol
 * directories, entries and scratch files as nodes the kernel holds.
 *
 * Nodes are created on lookup and freed when the kernel forgets them and
 * no handle is open.  Published entries are loaded from the manifest on
 * demand, so a mount costs nothing per stored entry; in-flight entries,
 * scratch files and scratch directories exist only here and stay until
 * published or removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "control.h"
#include "fault.h"
#include "ffs.h"
#include "htab.h"
#include "lock.h"
#include "log.h"
#include "names.h"

/* How long the kernel may cache what cannot change behind its back. */
#define TIMEOUT_IMMUTABLE 86400.0
#define TIMEOUT_DIR 1.0

uint64_t ffs_ino_of(const char *symbol, const char *name)
{
	char buf[NODE_HKEY_MAX];
	uint64_t ino;

	if (name)
		snprintf(buf, sizeof(buf), "%s/%s", symbol, name);
	else
		snprintf(buf, sizeof(buf), "%s", symbol);
	ino = (uint64_t)lock_id(buf);
	/* Keep clear of the small numbers used by root and /.featurefs. */
	return ino < 1024 ? ino + 1024 : ino;
}

/* Make `parent` the parent of `n`: a directory counts the nodes that name
 * it so, and outlives them (their names, logs and counters use it). */
static void node_set_parent(struct node *n, struct node *parent)
{
	if (n->parent) {
		n->parent->children--;
		if (n->parent->kind == NODE_SCRATCH_DIR)
			n->parent->touched_us = mono_us();
	}
	n->parent = parent;
	if (parent) {
		parent->children++;
		if (parent->kind == NODE_SCRATCH_DIR)
			parent->touched_us = mono_us();
	}
}

struct node *node_new(struct ffs *ffs, enum node_kind kind,
		      struct node *parent, const char *name)
{
	struct node *n = calloc(1, sizeof(*n));
	size_t hlen;

	if (!n)
		return NULL;
	n->kind = kind;
	n->name = strdup(name);
	hlen = (parent ? strlen(parent->hkey) + 1 : 0) + strlen(name) + 1;
	n->hkey = malloc(hlen);
	if (!n->name || !n->hkey)
		goto fail;
	if (parent)
		snprintf(n->hkey, hlen, "%s/%s", parent->hkey, name);
	else
		snprintf(n->hkey, hlen, "%s", name);
	if (kind == NODE_SYMBOL) {
		n->ctr = calloc(1, sizeof(*n->ctr));
		if (!n->ctr)
			goto fail;
		n->st_ino = ffs_ino_of(name, NULL);
	} else {
		n->st_ino = ffs_ino_of(parent->hkey, name);
	}
	node_set_parent(n, parent);
	n->mode = 0644;
	n->next_all = ffs->all;
	if (n->next_all)
		n->next_all->pprev_all = &n->next_all;
	ffs->all = n;
	n->pprev_all = &ffs->all;
	return n;
fail:
	free(n->name);
	free(n->hkey);
	free(n);
	return NULL;
}

static void node_free(struct node *n)
{
	node_set_parent(n, NULL);
	if (n->w)
		writer_unref(n->w);
	if (n->pprev_all) {
		*n->pprev_all = n->next_all;
		if (n->next_all)
			n->next_all->pprev_all = n->pprev_all;
	}
	if (n->kind == NODE_SYMBOL && !n->ctr_shared)
		free(n->ctr);
	free(n->name);
	free(n->hkey);
	free(n);
}

/* A new node of `kind`, named `name` in `parent` and linked there; NULL
 * when out of memory.  Lock held. */
static struct node *node_add_locked(struct ffs *ffs, enum node_kind kind,
				    struct node *parent, const char *name)
{
	struct node *n = node_new(ffs, kind, parent, name);

	if (n && node_link(ffs, n) < 0) {
		node_free(n);
		n = NULL;
	}
	return n;
}

/* Put symbol node `n` on ffs->symbols (pprev_child doubles as "on the
 * list" for symbols).  The node of a removed life of the same symbol
 * hands `n` its counters and leaves the list; the kernel may hold it, as
 * a dead directory, until it forgets it.  Lock held. */
static void symbols_add(struct ffs *ffs, struct node *n)
{
	struct node *old;

	for (old = ffs->symbols; old; old = old->next_symbol)
		if (strcmp(old->name, n->name) == 0)
			break;
	if (old) {
		free(n->ctr);
		n->ctr = old->ctr;
		old->ctr_shared = 1;
		*old->pprev_child = old->next_symbol;
		if (old->next_symbol)
			old->next_symbol->pprev_child = old->pprev_child;
		old->next_symbol = NULL;
		old->pprev_child = NULL;
	}
	n->next_symbol = ffs->symbols;
	if (n->next_symbol)
		n->next_symbol->pprev_child = &n->next_symbol;
	ffs->symbols = n;
	n->pprev_child = &ffs->symbols;
	if (old)
		node_release_locked(ffs, old);
}

/* Add to the names table, the parent's child count and lists. */
int node_link(struct ffs *ffs, struct node *n)
{
	struct node *old = htab_get(ffs->names, n->hkey);
	int rc;

	if (old && old != n) {
		/* a stale name (a removed entry the kernel still knows) */
		node_unlink(ffs, old);
		node_release_locked(ffs, old);
	}
	rc = htab_put(ffs->names, n->hkey, n);
	if (rc < 0)
		return rc;
	n->linked = 1;
	if (n->kind == NODE_SYMBOL && !n->pprev_child)
		symbols_add(ffs, n);
	if ((n->w || n->kind == NODE_SCRATCH_DIR) && n->parent &&
	    !n->pprev_child) {
		n->next_child = n->parent->transient;
		if (n->next_child)
			n->next_child->pprev_child = &n->next_child;
		n->parent->transient = n;
		n->pprev_child = &n->parent->transient;
		if (n->kind == NODE_SCRATCH_DIR)
			n->parent->subdirs++;
	}
	return 0;
}

/* Take `n` off its parent's list of transient children. */
static void unlink_transient(struct node *n)
{
	if (n->kind == NODE_SYMBOL || !n->pprev_child)
		return;
	if (n->kind == NODE_SCRATCH_DIR)
		n->parent->subdirs--;
	*n->pprev_child = n->next_child;
	if (n->next_child)
		n->next_child->pprev_child = n->pprev_child;
	n->next_child = NULL;
	n->pprev_child = NULL;
}

void node_set_published(struct ffs *ffs, struct node *n,
			const struct manifest_entry *e)
{
	(void)ffs;
	unlink_transient(n);
	/* both read without the lock by open and readdirplus */
	__atomic_store_n(&n->w, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&n->kind, NODE_ENTRY, __ATOMIC_RELAXED);
	node_fill_published(n, e);
}

int node_rename(struct ffs *ffs, struct node *n, struct node *newparent,
		const char *newname)
{
	size_t hlen = strlen(newparent->hkey) + 1 + strlen(newname) + 1;
	char *name = strdup(newname), *hkey = malloc(hlen);
	int was_linked = n->linked, rc;

	if (!name || !hkey) {
		free(name);
		free(hkey);
		return -ENOMEM;
	}
	snprintf(hkey, hlen, "%s/%s", newparent->hkey, newname);
	node_unlink(ffs, n);
	free(n->name);
	free(n->hkey);
	n->name = name;
	n->hkey = hkey;
	n->st_ino = ffs_ino_of(newparent->hkey, newname);
	node_set_parent(n, newparent);
	rc = was_linked ? node_link(ffs, n) : 0;
	return rc;
}

void node_unlink(struct ffs *ffs, struct node *n)
{
	if (!n->linked)
		return;
	htab_del(ffs->names, n->hkey, n);
	n->linked = 0;
	unlink_transient(n);
	if (ffs->hooks && ffs->hooks->forget_backing)
		ffs->hooks->forget_backing(ffs, n);
}

/* Free `n` if neither the kernel, a handle nor the namespace needs it.
 * Published entries are dropped from the table too: they can be reloaded
 * from the manifest.  A symbol's node stays for the life of the mount,
 * holding its counters, until the symbol is removed and made again: the
 * node of the removed life goes once the kernel forgets it.  Lock held. */
void node_release_locked(struct ffs *ffs, struct node *n)
{
	struct node *parent = n->parent;

	if (n->kind != NODE_ENTRY && n->kind != NODE_SCRATCH &&
	    n->kind != NODE_SCRATCH_DIR && n->kind != NODE_SYMBOL)
		return;
	if (n->kind == NODE_SYMBOL && (n->linked || n->pprev_child))
		return;
	if (n->nlookup || n->opens || n->children)
		return;
	if (n->linked) {
		if (n->kind != NODE_ENTRY || n->w)
			return;
		node_unlink(ffs, n);
	}
	unlink_transient(n);
	node_free(n);
	/* a removed directory waits for its last child */
	if (parent)
		node_release_locked(ffs, parent);
}

struct node *node_find_locked(struct ffs *ffs, struct node *parent,
			      const char *name)
{
	char key[NODE_HKEY_MAX];

	if (parent == &ffs->root)
		return htab_get(ffs->names, name);
	snprintf(key, sizeof(key), "%s/%s", parent->hkey, name);
	return htab_get(ffs->names, key);
}

int node_child_kind(const struct node *parent, const char *name, char *key)
{
	size_t len = strlen(name);

	if (parent->kind != NODE_SCRATCH_DIR)
		return name_parse_child(name, key);
	if (len == 0)
		return -EINVAL;
	return len > NAME_BYTES_MAX ? -ENAMETOOLONG : NAME_SCRATCH;
}

static void published_attrs_of(struct published_attrs *a,
			       const struct manifest_entry *e)
{
	a->size = (uint64_t)e->file_size;
	a->stored_size = (uint64_t)e->stored_size;
	a->compressed = strcmp(e->compression, "none") == 0   ? 0
			: strcmp(e->compression, "zstd") == 0 ? 1
							      : -1;
	a->created_ts = e->created_ts;
	a->mtime_ns = e->mtime_ns;
	a->ctime_ns = e->ctime_ns ? e->ctime_ns : us_to_ns(e->created_ts);
	a->mode = e->mode & 0777;
}

/* Node `n` is published entry `key` with attributes `a`, written by no
 * process of this mount's. */
static void node_take_published(struct node *n, const char *key,
				const struct published_attrs *a)
{
	n->state = ENTRY_PUBLISHED;
	n->size = a->size;
	n->stored_size = a->stored_size;
	n->compressed = a->compressed;
	n->created_ts = a->created_ts;
	n->mtime_ns = a->mtime_ns;
	n->ctime_ns = a->ctime_ns;
	n->mode = a->mode;
	n->writer_tgid = 0;
	n->writer_start = 0;
	snprintf(n->key, sizeof(n->key), "%s", key);
}

void node_fill_published(struct node *n, const struct manifest_entry *e)
{
	struct published_attrs a;

	published_attrs_of(&a, e);
	node_take_published(n, e->key, &a);
}

int ffs_init(struct ffs *ffs)
{
	size_t i, nfiles = control_file_count();
	int rc;

	pthread_mutex_init(&ffs->lock, NULL);
	pthread_mutex_init(&ffs->tick_mu, NULL);
	pthread_mutex_init(&ffs->flush_mu, NULL);
	pthread_mutex_init(&ffs->gc_mu, NULL);
	pthread_mutex_init(&ffs->ctl_mu, NULL);
	pthread_cond_init(&ffs->ctl_idle, NULL);
	ffs->ctl_fd = ffs->ctl_wake[0] = ffs->ctl_wake[1] = -1;
	ffs->ctl_spare_fd = -1;
	ffs->http_fd = -1;
	slo_window_init(&ffs->slo);
	/* reads through the daemon: large ones save round trips */
	ffs->blksize = 1 << 20;
	cond_init_monotonic(&ffs->tick_cond);
	rc = htab_new(&ffs->names);
	if (rc == 0)
		rc = htab_new(&ffs->kept);
	if (rc < 0)
		return rc;
	rc = access_log_new(&ffs->access);
	if (rc < 0)
		return rc;
	rc = frame_cache_new(ffs->opt.frame_cache, &ffs->frames);
	if (rc == 0)
		rc = metrics_labels_init(&ffs->metrics_labels);
	if (rc < 0)
		return rc;
	ffs->root.kind = NODE_ROOT;
	ffs->root.st_ino = 1;
	ffs->root.name = (char *)"";
	ffs->control_dir.kind = NODE_CONTROL_DIR;
	ffs->control_dir.st_ino = 2;
	ffs->control_dir.name = (char *)CONTROL_DIR_NAME;
	ffs->control_dir.hkey = (char *)CONTROL_DIR_NAME; /* for the log */
	ffs->control_files = calloc(nfiles, sizeof(struct node));
	if (!ffs->control_files)
		return -ENOMEM;
	for (i = 0; i < nfiles; i++) {
		ffs->control_files[i].kind = NODE_CONTROL_FILE;
		ffs->control_files[i].st_ino = 3 + i;
		ffs->control_files[i].control = (int)i;
		ffs->control_files[i].name = (char *)control_file_name(i);
		ffs->control_files[i].hkey = (char *)control_file_path(i);
		ffs->control_files[i].mode = 0444;
	}
	ffs->uid = getuid();
	ffs->gid = getgid();
	ffs->mounted_ts = now_us();
	ffs->mounted_mono_us = mono_us();
	return 0;
}

void ffs_destroy(struct ffs *ffs)
{
	struct node *n;

	/* The kernel is gone: whatever it still held goes too. */
	for (n = ffs->all; n; n = n->next_all)
		n->parent = NULL;
	while (ffs->all)
		node_free(ffs->all);
	htab_free(ffs->names);
	htab_free_values(ffs->kept);
	access_log_free(ffs->access);
	frame_cache_free(ffs->frames);
	metrics_labels_destroy(&ffs->metrics_labels);
	free(ffs->control_files);
	pthread_cond_destroy(&ffs->tick_cond);
	pthread_mutex_destroy(&ffs->tick_mu);
	pthread_mutex_destroy(&ffs->flush_mu);
	pthread_mutex_destroy(&ffs->gc_mu);
	pthread_cond_destroy(&ffs->ctl_idle);
	pthread_mutex_destroy(&ffs->ctl_mu);
	pthread_mutex_destroy(&ffs->lock);
	slo_window_destroy(&ffs->slo);
}

struct node *ffs_node(struct ffs *ffs, uint64_t ino)
{
	if (ino == 1)
		return &ffs->root;
	return (struct node *)(uintptr_t)ino;
}

/* Count a miss of `name` in symbol `sym` in the daemon's figures, once
 * per request: the lookups one request makes of a missing key (cp's
 * before its create, rsync's four, `test -e || cp`) come within
 * MISS_WINDOW_US, and count once.  A direct-mapped table remembers the
 * misses counted lately; a collision at worst counts one twice. */
#define MISS_WINDOW_US 1000000

static void count_miss(struct ffs *ffs, struct node *sym, const char *name)
{
	uint64_t id = ffs_ino_of(sym->name, name);
	struct recent_miss *r =
		&ffs->recent_misses[id & (FFS_RECENT_MISSES - 1)];
	int64_t now = mono_us();
	int seen;

	pthread_mutex_lock(&ffs->lock);
	seen = r->id == id && now - r->at_us < MISS_WINDOW_US;
	r->id = id;
	r->at_us = now;
	pthread_mutex_unlock(&ffs->lock);
	if (seen)
		return;
	CTR_ADD(ffs->ctr.misses, 1);
	CTR_ADD(sym->ctr->misses, 1);
}

/* Find or create the node of symbol `name`, which the manifest must
 * know, and count a lookup of it; lock not held. */
static int lookup_symbol(struct ffs *ffs, const char *name, struct node **out)
{
	struct node *n;
	int rc;

	pthread_mutex_lock(&ffs->lock);
	n = htab_get(ffs->names, name);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&ffs->lock);
	if (n)
		goto found;
	rc = manifest_symbol_get(ffs->manifest, name, NULL);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&ffs->lock);
	n = htab_get(ffs->names, name);
	if (!n) {
		n = node_new(ffs, NODE_SYMBOL, NULL, name);
		if (!n || node_link(ffs, n) < 0) {
			if (n)
				node_free(n);
			pthread_mutex_unlock(&ffs->lock);
			return -ENOMEM;
		}
	}
	n->nlookup++;
	pthread_mutex_unlock(&ffs->lock);
found:
	*out = n;
	return 0;
}

/* Find the node of a child of symbol `parent`, loading a published entry
 * from the manifest, and count a lookup of it under the same hold of the
 * lock (a forget may free it the moment the lock drops); lock not held. */
static int lookup_child(struct ffs *ffs, struct node *parent,
			const char *name, struct node **out)
{
	struct manifest_entry e;
	char key[KEY_MAX + 1];
	struct node *n;
	int kind, rc;

	kind = name_parse_child(name, key);
	if (kind < 0)
		return -ENOENT;
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, parent, name);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&ffs->lock);
	if (n)
		goto found;
	if (kind == NAME_SCRATCH)
		return -ENOENT;
	rc = manifest_get(ffs->manifest, parent->name, key, &e);
	if (rc == 0 && e.state == ENTRY_UNKNOWN) {
		log_err("lookup %s/%s: its row is in a state no featurefs "
			"writes (a damaged or foreign row); fsck -y drops it",
			parent->name, name);
		return -EIO;
	}
	if (rc == 0 && e.state != ENTRY_PUBLISHED)
		rc = -ENOENT; /* a writer that is not ours and not alive */
	if (rc == -ENOENT)
		count_miss(ffs, parent, name);
	if (rc < 0)
		return rc;
	if (manifest_entry_flaw(&e)) {
		log_err("lookup %s/%s: its row gives %s; fsck -y quarantines "
			"it", parent->name, name, manifest_entry_flaw(&e));
		return -EIO;
	}
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, parent, name);
	if (!n) {
		n = node_add_locked(ffs, NODE_ENTRY, parent, name);
		if (!n) {
			pthread_mutex_unlock(&ffs->lock);
			return -ENOMEM;
		}
		node_fill_published(n, &e);
	}
	n->nlookup++;
	pthread_mutex_unlock(&ffs->lock);
found:
	*out = n;
	return 0;
}

int ffs_lookup(struct ffs *ffs, struct node *parent, const char *name,
	       struct node **out)
{
	struct node *n = NULL;
	size_t i;
	int rc;

	switch (parent->kind) {
	case NODE_ROOT:
		if (strcmp(name, CONTROL_DIR_NAME) == 0) {
			*out = &ffs->control_dir;
			return 0;
		}
		if (name_check_symbol(name) < 0)
			return -ENOENT;
		rc = lookup_symbol(ffs, name, &n);
		break;
	case NODE_CONTROL_DIR:
		for (i = 0; i < control_file_count(); i++) {
			if (strcmp(name, control_file_name(i)) == 0) {
				*out = &ffs->control_files[i];
				return 0;
			}
		}
		return -ENOENT;
	case NODE_SYMBOL:
		rc = lookup_child(ffs, parent, name, &n);
		break;
	case NODE_SCRATCH_DIR:
		/* scratch files only: no manifest, no misses */
		pthread_mutex_lock(&ffs->lock);
		n = node_find_locked(ffs, parent, name);
		if (n)
			n->nlookup++;
		pthread_mutex_unlock(&ffs->lock);
		rc = n ? 0 : -ENOENT;
		break;
	default:
		return -ENOTDIR;
	}
	if (rc < 0)
		return rc;
	*out = n;
	return 0;
}

void ffs_forget(struct ffs *ffs, struct node *n, uint64_t nlookup)
{
	if (n->kind != NODE_SYMBOL && n->kind != NODE_ENTRY &&
	    n->kind != NODE_SCRATCH && n->kind != NODE_SCRATCH_DIR)
		return;
	pthread_mutex_lock(&ffs->lock);
	n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
	node_release_locked(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
}

static void set_times_ns(struct stat *st, int64_t mtime_ns, int64_t ctime_ns)
{
	st->st_mtim = ns_to_timespec(mtime_ns);
	st->st_ctim = ns_to_timespec(ctime_ns);
	st->st_atim = st->st_mtim;
}

int ffs_getattr(struct ffs *ffs, struct node *n, struct stat *st,
		double *timeout)
{
	struct writer *w = NULL;
	struct stat tmp;

	memset(st, 0, sizeof(*st));
	st->st_ino = n->st_ino;
	st->st_uid = ffs->uid;
	st->st_gid = ffs->gid;
	st->st_blksize = __atomic_load_n(&ffs->blksize, __ATOMIC_RELAXED);
	*timeout = TIMEOUT_DIR;
	switch (node_kind(n)) {
	case NODE_ROOT:
	case NODE_SYMBOL:
		st->st_mode = S_IFDIR | 0755;
		/* 1 says "not counted" (find(1) then looks in every
		 * directory); a symbol's are its scratch directories */
		pthread_mutex_lock(&ffs->lock);
		st->st_nlink = n->kind == NODE_ROOT ? 1 : 2 + n->subdirs;
		pthread_mutex_unlock(&ffs->lock);
		set_times_ns(st, us_to_ns(ffs->mounted_ts),
			     us_to_ns(ffs->mounted_ts));
		break;
	case NODE_CONTROL_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		set_times_ns(st, us_to_ns(ffs->mounted_ts),
			     us_to_ns(ffs->mounted_ts));
		break;
	case NODE_SCRATCH_DIR:
		pthread_mutex_lock(&ffs->lock);
		st->st_mode = S_IFDIR | (n->mode & 0777);
		st->st_nlink = n->linked ? 2 : 0;
		pthread_mutex_unlock(&ffs->lock);
		set_times_ns(st, us_to_ns(n->created_ts),
			     us_to_ns(n->created_ts));
		break;
	case NODE_CONTROL_FILE:
		/* each open reads a snapshot of its own, to its end, not to
		 * a size; the size is the last one's, which fstat(2) after
		 * an open finds (one from no other open meanwhile), so that
		 * sendfile(2) and splice(2), which read to the size through
		 * the page cache (Python's shutil.copy), copy it whole */
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)__atomic_load_n(&n->size,
						     __ATOMIC_RELAXED);
		set_times_ns(st, now_us() * 1000, us_to_ns(ffs->mounted_ts));
		*timeout = 0;
		break;
	case NODE_ENTRY:
	case NODE_SCRATCH:
		pthread_mutex_lock(&ffs->lock);
		/* 0 once unlinked, for whoever still holds it open */
		st->st_nlink = n->linked;
		if (n->w) {
			/* a writer is freed under ffs->lock, or once
			 * its last reference (this one too) goes */
			w = n->w;
			writer_ref(w);
			st->st_mode = S_IFREG | (CTR_GET(w->mode) & 07777);
			st->st_size = (off_t)CTR_GET(w->size);
			set_times_ns(st, CTR_GET(w->mtime_ns),
				     CTR_GET(w->ctime_ns));
			/* an entry's access time is its modification time,
			 * in flight as once published */
			if (n->kind == NODE_SCRATCH)
				st->st_atim = ns_to_timespec(
					CTR_GET(w->atime_ns));
			*timeout = 0;
		} else {
			st->st_mode = S_IFREG | (n->mode & 07777);
			st->st_size = (off_t)n->size;
			set_times_ns(st, n->mtime_ns, n->ctime_ns);
			*timeout = TIMEOUT_IMMUTABLE;
			/* du(1) counts what the store holds, as on any
			 * filesystem that compresses */
			st->st_blocks = (blkcnt_t)(n->stored_size + 511) / 512;
		}
		pthread_mutex_unlock(&ffs->lock);
		if (w) {
			/* what its tmp file holds: the holes of a sparse
			 * file take no room (du(1), cp's sparse copies) */
			st->st_blocks = fstat(w->fd, &tmp) == 0
						? tmp.st_blocks
						: (st->st_size + 511) / 512;
			writer_unref(w);
		}
		break;
	}
	if (!st->st_blocks && !w)
		st->st_blocks = (st->st_size + 511) / 512;
	return 0;
}

double ffs_entry_timeout(const struct node *n, double attr_timeout)
{
	switch (node_kind(n)) {
	case NODE_ENTRY:
		/* in flight (attributes not cached), the name may go at any
		 * moment, a discard's invalidation coming a moment later:
		 * looked up each time, so that a stat() after the close
		 * that discarded it says ENOENT */
		return attr_timeout;
	case NODE_SCRATCH:
	case NODE_SCRATCH_DIR:
	case NODE_SYMBOL:
	case NODE_CONTROL_DIR:
	case NODE_CONTROL_FILE:
		/* every change to these names goes through the daemon,
		 * which invalidates what it removes */
		return TIMEOUT_IMMUTABLE;
	default:
		return TIMEOUT_DIR;
	}
}

/* mkdir of dot-name `name` in symbol `parent`: a scratch directory, where
 * tools such as rsync --delay-updates put files before renaming them. */
static int mkdir_scratch(struct ffs *ffs, struct node *parent,
			 const char *name, mode_t mode, struct node **out)
{
	struct node *n;

	if (strlen(name) > NAME_BYTES_MAX) {
		log_info("mkdir %s/%s: name longer than %d bytes", parent->hkey,
			 name, NAME_BYTES_MAX);
		return -ENAMETOOLONG;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("mkdir", name);
	pthread_mutex_lock(&ffs->lock);
	if (node_find_locked(ffs, parent, name)) {
		pthread_mutex_unlock(&ffs->lock);
		return -EEXIST;
	}
	n = node_add_locked(ffs, NODE_SCRATCH_DIR, parent, name);
	if (!n) {
		pthread_mutex_unlock(&ffs->lock);
		return -ENOMEM;
	}
	n->mode = mode & 0777;
	n->created_ts = now_us();
	n->touched_us = mono_us();
	n->nlookup++;
	pthread_mutex_unlock(&ffs->lock);
	*out = n;
	return 0;
}

int ffs_mkdir(struct ffs *ffs, struct node *parent, const char *name,
	      mode_t mode, struct node **out)
{
	int rc;

	if (parent->kind == NODE_SYMBOL && name[0] == '.')
		return mkdir_scratch(ffs, parent, name, mode, out);
	if (parent->kind == NODE_CONTROL_DIR)
		return control_refuse("mkdir", name, -EPERM);
	if (parent->kind != NODE_ROOT) {
		log_info("mkdir %s/%s: directories exist at the top only, "
			 "and as dot-named scratch directories in a symbol",
			 parent->hkey, name);
		return -EPERM;
	}
	if (strcmp(name, CONTROL_DIR_NAME) == 0)
		return -EEXIST;
	rc = name_check_symbol(name);
	if (rc < 0) {
		log_info("mkdir %s: %s symbol name", name,
			 rc == -ENAMETOOLONG ? "over-long" : "malformed");
		return rc;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("mkdir", name);
	rc = manifest_symbol_create(ffs->manifest, name);
	if (rc < 0)
		return rc;
	return ffs_lookup(ffs, parent, name, out);
}

/* rmdir of `name` in symbol `parent`: only a scratch directory is one. */
static int rmdir_scratch(struct ffs *ffs, struct node *parent,
			 const char *name)
{
	struct node *n;
	int rc = 0;

	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, parent, name);
	if (!n)
		rc = name[0] == '.' ? -ENOENT : -ENOTDIR;
	else if (n->kind != NODE_SCRATCH_DIR)
		rc = -ENOTDIR;
	else if (n->transient) {
		log_info("rmdir %s: the scratch directory is not empty",
			 n->hkey);
		rc = -ENOTEMPTY;
	} else if (ffs->opt.read_only)
		rc = ffs_refuse_read_only("rmdir", n->hkey);
	if (rc == 0) {
		node_unlink(ffs, n);
		node_release_locked(ffs, n);
	}
	pthread_mutex_unlock(&ffs->lock);
	return rc;
}

int ffs_rmdir(struct ffs *ffs, struct node *parent, const char *name)
{
	struct node *n;
	int rc;

	if (parent->kind == NODE_SYMBOL)
		return rmdir_scratch(ffs, parent, name);
	if (parent->kind == NODE_SCRATCH_DIR)
		return -ENOTDIR;
	if (parent->kind == NODE_ROOT && strcmp(name, CONTROL_DIR_NAME) == 0)
		return control_refuse("rmdir", NULL, -EPERM);
	if (parent->kind != NODE_ROOT)
		return -EPERM;
	if (name_check_symbol(name) < 0)
		return -ENOENT;
	pthread_mutex_lock(&ffs->lock);
	n = htab_get(ffs->names, name);
	if (n && n->transient) {
		pthread_mutex_unlock(&ffs->lock);
		log_info("rmdir %s: the symbol holds files in flight, scratch "
			 "files or scratch directories", name);
		return -ENOTEMPTY;
	}
	pthread_mutex_unlock(&ffs->lock);
	/* flush_mu: the row takes its counts with it, and what this life
	 * of the symbol counted since the last flush goes too, never into
	 * the row of a symbol made again under the same name */
	pthread_mutex_lock(&ffs->flush_mu);
	rc = manifest_symbol_remove(ffs->manifest, name);
	if (rc == 0) {
		pthread_mutex_lock(&ffs->lock);
		n = htab_get(ffs->names, name);
		if (n) {
			n->ctr->hits_flushed = CTR_GET(n->ctr->hits);
			n->ctr->misses_flushed = CTR_GET(n->ctr->misses);
			node_unlink(ffs, n);
		}
		pthread_mutex_unlock(&ffs->lock);
	}
	pthread_mutex_unlock(&ffs->flush_mu);
	if (rc == -ENOTEMPTY)
		log_info("rmdir %s: the symbol holds entries", name);
	if (rc < 0)
		return rc;
	/* a crash from here leaves an empty directory that recovery
	 * removes (gc_reclaim_dead_writers()) */
	fault_inject("symbol_rmdir");
	store_symbol_dir_remove(ffs->store, name);
	return 0;
}

struct listing {
	struct dirent_item *items;
	size_t count, alloc;
	const char *dir;	/* hkey of the directory listed; NULL: the root */
	size_t malformed;	/* manifest rows left out for their names */
	struct htab *in_flight;	/* names listed from memory: index + 1 */
	int err;
};

static struct dirent_item *listing_add(struct listing *l, const char *name,
				       mode_t type)
{
	struct dirent_item *it;

	if (l->err)
		return NULL;
	if (l->count == l->alloc) {
		size_t n = l->alloc ? l->alloc * 2 : 64;
		struct dirent_item *p = realloc(l->items, n * sizeof(*p));

		if (!p) {
			l->err = -ENOMEM;
			return NULL;
		}
		l->items = p;
		l->alloc = n;
	}
	it = &l->items[l->count];
	memset(it, 0, sizeof(*it));
	it->name = strdup(name);
	if (!it->name) {
		l->err = -ENOMEM;
		return NULL;
	}
	it->type = type;
	it->st_ino = l->dir ? ffs_ino_of(l->dir, name)
			    : ffs_ino_of(name, NULL);
	l->count++;
	return it;
}

/* A row whose names featurefs would not have written (an edited or
 * damaged manifest) is left out of listings: a name holding '/' fails
 * the kernel's whole readdir, and no lookup could reach it. */
static int list_symbol_cb(void *arg, const struct manifest_symbol *s)
{
	struct listing *l = arg;

	if (name_check_symbol(s->symbol) < 0)
		l->malformed++;
	else
		listing_add(l, s->symbol, S_IFDIR);
	return 0;
}

static int list_entry_cb(void *arg, const struct manifest_entry *e)
{
	char name[KEY_MAX + ENTRY_SUFFIX_LEN + 1];
	struct listing *l = arg;
	struct dirent_item *it;

	if (name_check_key(e->key) < 0) {
		l->malformed++;
		return 0;
	}
	snprintf(name, sizeof(name), "%s" ENTRY_SUFFIX, e->key);
	/* listed in flight, and published since: its row says what it is */
	it = l->in_flight ? htab_get(l->in_flight, name) : NULL;
	if (it)
		it = &l->items[(uintptr_t)it - 1];
	else
		it = listing_add(l, name, S_IFREG);
	if (it && !manifest_entry_flaw(e)) { /* else a lookup says why */
		it->published = 1;
		published_attrs_of(&it->attrs, e);
	}
	return 0;
}

int ffs_list_dir(struct ffs *ffs, struct node *dir, struct dir_listing *out)
{
	struct listing l = { 0 };
	struct manifest_query q = { 0 };
	struct node *c;
	size_t i;
	int rc = 0;

	out->rows_changed = 0;
	switch (dir->kind) {
	case NODE_ROOT:
		rc = manifest_symbol_list(ffs->manifest, 0, list_symbol_cb, &l);
		break;
	case NODE_CONTROL_DIR:
		for (i = 0; i < control_file_count(); i++)
			listing_add(&l, control_file_name(i), S_IFREG);
		for (i = 0; i < l.count; i++)
			l.items[i].st_ino = ffs->control_files[i].st_ino;
		break;
	case NODE_SYMBOL:
	case NODE_SCRATCH_DIR:
		/* what is in flight first, then the rows: an entry published
		 * in between is in one or the other, never in neither */
		l.dir = dir->hkey;
		pthread_mutex_lock(&ffs->lock);
		out->rows_changed = ffs->rows_changed;
		for (c = dir->transient; c; c = c->next_child)
			listing_add(&l, c->name,
				    c->kind == NODE_SCRATCH_DIR ? S_IFDIR
								: S_IFREG);
		pthread_mutex_unlock(&ffs->lock);
		if (dir->kind != NODE_SYMBOL)
			break;
		if (l.count && l.err == 0)
			l.err = htab_new(&l.in_flight);
		for (i = 0; l.in_flight && l.err == 0 && i < l.count; i++)
			l.err = htab_put(l.in_flight, l.items[i].name,
					 (void *)(uintptr_t)(i + 1));
		q.symbol = dir->name;
		q.states = 1u << ENTRY_PUBLISHED;
		if (l.err == 0)
			rc = manifest_list(ffs->manifest, &q, list_entry_cb,
					   &l);
		htab_free(l.in_flight);
		break;
	default:
		return -ENOTDIR;
	}
	if (l.malformed)
		log_warn("listing %s: %zu manifest rows with malformed names "
			 "left out; fsck reports them",
			 dir->kind == NODE_ROOT ? "/" : dir->hkey, l.malformed);
	if (rc == 0)
		rc = l.err;
	if (rc < 0) {
		struct dir_listing failed = { l.items, l.count, 0 };

		ffs_free_listing(&failed);
		return rc;
	}
	out->items = l.items;
	out->count = l.count;
	return 0;
}

int ffs_lookup_listed(struct ffs *ffs, struct node *dir,
		      const struct dir_listing *l,
		      const struct dirent_item *item, struct node **out)
{
	char key[KEY_MAX + 1];
	struct node *n;

	if (dir->kind != NODE_SYMBOL || !item->published ||
	    name_parse_child(item->name, key) != NAME_ENTRY)
		return ffs_lookup(ffs, dir, item->name, out);
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, dir, item->name);
	if (!n && ffs->rows_changed != l->rows_changed) {
		/* its row may be gone: the kernel would keep a removed
		 * name for a day */
		pthread_mutex_unlock(&ffs->lock);
		return ffs_lookup(ffs, dir, item->name, out);
	}
	if (!n) {
		n = node_add_locked(ffs, NODE_ENTRY, dir, item->name);
		if (!n) {
			pthread_mutex_unlock(&ffs->lock);
			return -ENOMEM;
		}
		node_take_published(n, key, &item->attrs);
	}
	n->nlookup++;
	pthread_mutex_unlock(&ffs->lock);
	*out = n;
	return 0;
}

void ffs_free_listing(struct dir_listing *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->items[i].name);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}
