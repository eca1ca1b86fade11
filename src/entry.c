/*
 * entry.c - the life of an entry (SPEC §3): claim on create, streamed
 * writes and hashing, validation on close, publish on the last release
 * (discard as soon as it can never be published: on close, unlink or a
 * failed publish), readers waiting for an in-flight key, unlink, rename
 * of a scratch file into place, and the few attribute changes allowed.
 *
 * Publish order is what makes a crash harmless: fsync the tmp file,
 * link it into objects/ (never over an existing object), then flip the
 * manifest row to `published`.  A crash before the flip leaves an object
 * whose row says `writing`: fsck -p adopts it; nothing partial is visible.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "control.h"
#include "fault.h"
#include "fdio.h"
#include "ffs.h"
#include "gc.h"
#include "hash.h"
#include "htab.h"
#include "log.h"
#include "lostfound.h"
#include "names.h"
#include "proc.h"
#include "seekable.h"

#define WRITER_KIND_ENTRY "entry"
#define WRITER_KIND_SCRATCH "scratch"
/* an unlink that meets a GC pass removing the same entry waits this long
 * for it, in steps */
#define UNLINK_BUSY_TRIES 200
#define UNLINK_BUSY_WAIT_US 10000

/* The errno for a descriptor the daemon could not get: running out of
 * its own is ENFILE to the caller, whose limit it is not. */
static int fd_errno(int rc)
{
	return rc == -EMFILE ? -ENFILE : rc;
}

int ffs_refuse_read_only(const char *op, const char *name)
{
	log_info("%s %s: the mount serves reads only (EROFS)", op, name);
	return -EROFS;
}

/* Say that the daemon ran out of descriptors for `what` (an open, a tmp
 * file): once a minute, as a flood of opens would repeat it for each. */
void ffs_log_out_of_fds(struct ffs *ffs, const char *what)
{
	int64_t held_back = log_limit_pass(&ffs->nofd_log);

	if (held_back == 0)
		log_err("%s: the daemon is out of file descriptors (raise its "
			"limit: LimitNOFILE=, ulimit -n)", what);
	else if (held_back > 0)
		log_err("%s: the daemon is out of file descriptors (raise its "
			"limit: LimitNOFILE=, ulimit -n; %lld more such "
			"refusals held back)", what, (long long)held_back);
}

static int writer_new(struct ffs *ffs, const char *kind, pid_t pid,
		      mode_t mode, struct writer **out)
{
	struct writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	cond_init_monotonic(&w->settled);
	w->refs = 1;
	w->fd = -1;
	w->sha = EVP_MD_CTX_new();
	if (!w->sha || !EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = store_tmp_create(ffs->store, kind, w->tmpname,
			      sizeof(w->tmpname));
	if (rc < 0) {
		char what[64];

		rc = fd_errno(rc);
		snprintf(what, sizeof(what), "create tmp/%s file", kind);
		if (rc == -ENFILE)
			ffs_log_out_of_fds(ffs, what);
		else
			log_err("%s: %s", what, strerror(-rc));
		goto fail;
	}
	w->fd = rc;
	w->tgid = proc_tgid_of(pid);
	w->touched_us = mono_us();
	w->created_ts = now_us();
	w->mtime_ns = w->ctime_ns = us_to_ns(w->created_ts);
	w->mode = mode & 0777; /* never set-id or sticky: see docs/security.md */
	*out = w;
	return 0;
fail:
	EVP_MD_CTX_free(w->sha);
	pthread_cond_destroy(&w->settled);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return rc;
}

static void writer_free(struct writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	EVP_MD_CTX_free(w->sha);
	pthread_cond_destroy(&w->settled);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void writer_ref(struct writer *w)
{
	__atomic_add_fetch(&w->refs, 1, __ATOMIC_RELAXED);
}

void writer_unref(struct writer *w)
{
	if (__atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) == 0)
		writer_free(w);
}

/* Take `w` away from node `n` and drop the node's reference. */
static void writer_detach(struct ffs *ffs, struct node *n, struct writer *w)
{
	int attached;

	pthread_mutex_lock(&ffs->lock);
	attached = n->w == w;
	if (attached) /* entry_open reads it without the lock */
		__atomic_store_n(&n->w, NULL, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ffs->lock);
	if (attached)
		writer_unref(w);
}

static struct handle *handle_new(enum handle_kind kind, struct node *n,
				 struct writer *w, int fd)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->kind = kind;
	h->node = n;
	h->w = w;
	h->fd = fd;
	return h;
}

/* Track `h` as handed to the kernel, so that handles the kernel never
 * releases (a lazy unmount with files still open) are closed at unmount.
 * Caller holds ffs->lock. */
static void handle_track_locked(struct ffs *ffs, struct handle *h)
{
	h->open_prev = NULL;
	h->open_next = ffs->open_handles;
	if (ffs->open_handles)
		ffs->open_handles->open_prev = h;
	ffs->open_handles = h;
}

static void handle_track(struct ffs *ffs, struct handle *h)
{
	pthread_mutex_lock(&ffs->lock);
	handle_track_locked(ffs, h);
	pthread_mutex_unlock(&ffs->lock);
}

static void handle_untrack_locked(struct ffs *ffs, struct handle *h)
{
	if (h->open_prev)
		h->open_prev->open_next = h->open_next;
	else if (ffs->open_handles == h)
		ffs->open_handles = h->open_next;
	if (h->open_next)
		h->open_next->open_prev = h->open_prev;
	h->open_prev = h->open_next = NULL;
}

/* Log and count why `symbol/name` was not published. */
static void count_failure(struct ffs *ffs, enum load_failure reason,
			  const char *symbol, const char *name,
			  const char *detail)
{
	CTR_ADD(ffs->ctr.load_failures[reason], 1);
	log_warn("discard %s/%s: %s (%s)", symbol, name, detail,
		 load_failure_name(reason));
}

/* ---- waiting readers ------------------------------------------------ */

int entry_wait(struct ffs *ffs, struct waiter *w)
{
	struct node *n = w->node;
	int rc = 0, signal = 0;

	pthread_mutex_lock(&ffs->lock);
	/* w->abandoned is written under w->mu: an atomic read suffices,
	 * as a discard unlinks the node under ffs->lock before it wakes */
	if (n->kind == NODE_ENTRY && n->w && n->linked &&
	    !__atomic_load_n(&n->w->abandoned, __ATOMIC_RELAXED)) {
		w->next = ffs->waiters;
		w->prev = NULL;
		if (ffs->waiters)
			ffs->waiters->prev = w;
		ffs->waiters = w;
		if (!ffs->next_deadline_us ||
		    w->deadline_us < ffs->next_deadline_us) {
			ffs->next_deadline_us = w->deadline_us;
			signal = 1;
		}
		CTR_ADD(ffs->ctr.waits, 1);
		CTR_ADD(n->parent->ctr->waits, 1);
	} else if (n->kind == NODE_ENTRY && !n->w && n->linked) {
		rc = -EAGAIN;
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&ffs->lock);
	if (signal) {
		/* the GC thread sleeps on tick_cond too: wake both, and
		 * leave word in case the ticker is not asleep yet */
		pthread_mutex_lock(&ffs->tick_mu);
		ffs->tick_kick = 1;
		pthread_cond_broadcast(&ffs->tick_cond);
		pthread_mutex_unlock(&ffs->tick_mu);
	}
	return rc;
}

static void waiter_unlink_locked(struct ffs *ffs, struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		ffs->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

int entry_cancel_wait(struct ffs *ffs, struct waiter *w)
{
	struct waiter *it;
	int found = 0;

	pthread_mutex_lock(&ffs->lock);
	/* compare pointers only: `w` may already be answered and freed */
	for (it = ffs->waiters; it; it = it->next) {
		if (it == w) {
			waiter_unlink_locked(ffs, w);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&ffs->lock);
	return found;
}

/* Answer every waiter on `n` with `err` (0: published). */
static void wake_waiters(struct ffs *ffs, struct node *n, int err)
{
	struct waiter *it, *next, *woken = NULL;

	pthread_mutex_lock(&ffs->lock);
	for (it = ffs->waiters; it; it = next) {
		next = it->next;
		if (it->node != n)
			continue;
		waiter_unlink_locked(ffs, it);
		it->next = woken;
		woken = it;
	}
	pthread_mutex_unlock(&ffs->lock);
	for (it = woken; it; it = next) {
		next = it->next;
		ffs->hooks->wake(ffs, it, err);
	}
}

int64_t entry_expire_waiters(struct ffs *ffs, int64_t now_mono)
{
	struct waiter *it, *next, *expired = NULL;
	int64_t next_deadline = 0;

	pthread_mutex_lock(&ffs->lock);
	for (it = ffs->waiters; it; it = next) {
		next = it->next;
		if (it->deadline_us <= now_mono) {
			waiter_unlink_locked(ffs, it);
			it->next = expired;
			expired = it;
		} else if (!next_deadline || it->deadline_us < next_deadline) {
			next_deadline = it->deadline_us;
		}
	}
	ffs->next_deadline_us = next_deadline;
	pthread_mutex_unlock(&ffs->lock);
	for (it = expired; it; it = next) {
		next = it->next;
		CTR_ADD(ffs->ctr.wait_timeouts, 1);
		log_info("open %s/%s: still being written after lock_timeout",
			 it->node->parent->name, it->node->name);
		ffs->hooks->wake(ffs, it, -ETIMEDOUT);
	}
	return next_deadline;
}

void entry_wait_done(struct ffs *ffs, struct waiter *w, int err)
{
	int64_t waited = mono_us() - w->start_us;

	(void)err;
	hist_observe(&ffs->ctr.lock_wait, waited);
	hist_observe(&w->node->parent->ctr->lock_wait, waited);
}

/* A tmp file discard_entry() kept for the next mount (ffs->kept). */
struct kept_tmp {
	char key[LOCK_NAME_MAX + 1];	/* "symbol/key": its table key */
	char tmpname[STORE_TMP_NAME_MAX];
};

/* Remember that tmp/`tmpname` is kept for symbol/key. */
static void kept_add(struct ffs *ffs, const char *symbol, const char *key,
		     const char *tmpname)
{
	struct kept_tmp *k = calloc(1, sizeof(*k));
	int rc = -ENOMEM;

	if (k) {
		snprintf(k->key, sizeof(k->key), "%s/%s", symbol, key);
		snprintf(k->tmpname, sizeof(k->tmpname), "%s", tmpname);
		pthread_mutex_lock(&ffs->lock);
		rc = htab_put(ffs->kept, k->key, k); /* a key's claim is one */
		pthread_mutex_unlock(&ffs->lock);
	}
	if (rc < 0) /* a new write of the key would leave it to the next
		     * mount's sweep */
		free(k);
}

/* The tmp file kept for symbol/key, if it is tmp/`tmpname` (any name
 * when NULL); NULL if none.  ffs->lock held. */
static struct kept_tmp *kept_get_locked(struct ffs *ffs, const char *symbol,
					const char *key, const char *tmpname)
{
	char name[LOCK_NAME_MAX + 1];
	struct kept_tmp *k;

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	k = htab_get(ffs->kept, name);
	return k && (!tmpname || strcmp(k->tmpname, tmpname) == 0) ? k : NULL;
}

/* Whether tmp/`tmpname` (any, when NULL) is kept for symbol/key. */
static int kept_is(struct ffs *ffs, const char *symbol, const char *key,
		   const char *tmpname)
{
	int kept;

	pthread_mutex_lock(&ffs->lock);
	kept = kept_get_locked(ffs, symbol, key, tmpname) != NULL;
	pthread_mutex_unlock(&ffs->lock);
	return kept;
}

/* Take the tmp file kept for symbol/key (if it is tmp/`tmpname`, any
 * when NULL) out of ffs->kept: the caller frees it; NULL if none is. */
static struct kept_tmp *kept_take(struct ffs *ffs, const char *symbol,
				  const char *key, const char *tmpname)
{
	struct kept_tmp *k;

	pthread_mutex_lock(&ffs->lock);
	k = kept_get_locked(ffs, symbol, key, tmpname);
	if (k)
		htab_del(ffs->kept, k->key, k);
	pthread_mutex_unlock(&ffs->lock);
	return k;
}

/* A claim of symbol/key took over its row: the tmp file kept for it is
 * no write's any more, and goes. */
static void kept_supersede(struct ffs *ffs, const char *symbol,
			   const char *key)
{
	struct kept_tmp *k = kept_take(ffs, symbol, key, NULL);

	if (!k)
		return;
	store_tmp_unlink(ffs->store, k->tmpname);
	log_info("%s: a new write of the key replaces tmp/%s, kept since its "
		 "publish failed", k->key, k->tmpname);
	free(k);
}

/* 1 when a closed write of symbol/key is kept (gc_drop_stale_claims()). */
static int kept_has(void *arg, const char *symbol, const char *key)
{
	return kept_is(arg, symbol, key, NULL);
}

/* Give up the claim of symbol/key.  A manifest that refuses (locked, a
 * full disk) leaves its row behind, taken over by the key's next claim
 * meanwhile, and dropped by entry_drop_stale_claims() later. */
static void abandon_claim(struct ffs *ffs, const char *symbol,
			  const char *key)
{
	if (manifest_abandon(ffs->manifest, symbol, key) < 0)
		__atomic_store_n(&ffs->stale_claims, 1, __ATOMIC_RELAXED);
}

int entry_drop_stale_claims(struct ffs *ffs)
{
	int64_t dropped = 0;
	int rc;

	if (!__atomic_exchange_n(&ffs->stale_claims, 0, __ATOMIC_RELAXED))
		return 0;
	rc = gc_drop_stale_claims(ffs->manifest, ffs->store->mount_id,
				  kept_has, ffs, &dropped);
	if (rc < 0)
		__atomic_store_n(&ffs->stale_claims, 1, __ATOMIC_RELAXED);
	if (dropped)
		log_info("dropped the rows of %lld discarded %s that the "
			 "manifest could not drop at the time",
			 (long long)dropped,
			 plural(dropped, "write", "writes"));
	return rc;
}

/* ---- create and open ------------------------------------------------ */

/* Start manifest row `e` of `symbol`/`key` in `state`. */
static void row_init(struct manifest_entry *e, const char *symbol,
		     const char *key, enum entry_state state)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->symbol, sizeof(e->symbol), "%s", symbol);
	snprintf(e->key, sizeof(e->key), "%s", key);
	store_object_relpath(symbol, key, e->path, sizeof(e->path));
	e->state = state;
}

/* Claim `symbol`/`key` for writer `w` (SPEC §3 step 2), its row made in
 * `e`: manifest_claim()'s result, -EEXIST when the key is taken. */
static int claim_key(struct ffs *ffs, const struct writer *w,
		     const char *symbol, const char *key, int64_t created_ts,
		     struct manifest_entry *e)
{
	row_init(e, symbol, key, ENTRY_WRITING);
	e->rows = -1;
	e->created_ts = created_ts;
	e->mode = w->mode;
	snprintf(e->writer, sizeof(e->writer), "%s", ffs->writer_id);
	return manifest_claim(ffs->manifest, e);
}

int entry_create(struct ffs *ffs, struct node *parent, const char *name,
		 pid_t pid, int flags, mode_t mode, struct node **out,
		 struct handle **h)
{
	struct manifest_entry e;
	struct writer *w = NULL;
	struct node *n;
	char key[KEY_MAX + 1];
	int kind, rc;

	if (parent->kind == NODE_CONTROL_DIR)
		return control_refuse("create", name, -EACCES);
	if (!node_holds_files(parent)) {
		log_info("create %s: files live in symbol directories only",
			 name);
		return parent->kind == NODE_ROOT ? -EPERM : -EACCES;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("create", name);
	kind = node_child_kind(parent, name, key);
	if (kind < 0 && parent->kind == NODE_SCRATCH_DIR) {
		log_info("create %s/%s: name longer than %d bytes",
			 parent->hkey, name, NAME_BYTES_MAX);
		return kind;
	}
	if (kind < 0) {
		log_info("create %s/%s: not <key>.parquet with a key of %d-%d "
			 "of [A-Za-z0-9_-], nor a scratch name (.<name> or "
			 "<key>.parquet.<suffix>)",
			 parent->hkey, name, KEY_MIN, KEY_MAX);
		return kind;
	}
	if (kind == NAME_ENTRY && (flags & O_ACCMODE) == O_RDONLY) {
		/* a second write-open of a claimed key is EEXIST to a process
		 * with no writable descriptor of it, this creator included:
		 * the claim could only block the key and fail */
		log_info("create %s/%s: opened read-only, an entry could never "
			 "be written (a lock file belongs on a scratch name)",
			 parent->hkey, name);
		return -EINVAL;
	}
	*h = handle_new(HANDLE_WRITER, NULL, NULL, -1);
	if (!*h)
		return -ENOMEM;
	rc = writer_new(ffs, kind == NAME_ENTRY ? WRITER_KIND_ENTRY
						: WRITER_KIND_SCRATCH,
			pid, mode, &w);
	if (rc < 0) {
		free(*h);
		return rc;
	}
	if (kind == NAME_ENTRY) {
		rc = claim_key(ffs, w, parent->name, key, w->created_ts, &e);
		if (rc == -EEXIST && !(flags & O_EXCL))
			log_info("create %s/%s: the entry exists, published or "
				 "in flight (EEXIST)", e.symbol, name);
		else if (rc < 0 && rc != -EEXIST)
			log_err("claim %s/%s: %s", e.symbol, e.key,
				strerror(-rc));
		if (rc < 0)
			goto fail;
		kept_supersede(ffs, e.symbol, e.key);
	}
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, parent, name);
	if (n && (kind == NAME_SCRATCH || n->w)) {
		/* scratch names are claimed here, under the lock */
		pthread_mutex_unlock(&ffs->lock);
		rc = -EEXIST;
		goto fail_claimed;
	}
	n = node_new(ffs, kind == NAME_ENTRY ? NODE_ENTRY : NODE_SCRATCH,
		     parent, name);
	if (!n) {
		pthread_mutex_unlock(&ffs->lock);
		rc = -ENOMEM;
		goto fail_claimed;
	}
	__atomic_store_n(&n->w, w, __ATOMIC_RELAXED); /* read unlocked too */
	n->state = ENTRY_WRITING;
	n->created_ts = w->created_ts;
	snprintf(n->key, sizeof(n->key), "%s", kind == NAME_ENTRY ? key : "");
	rc = node_link(ffs, n);
	if (rc < 0) {
		__atomic_store_n(&n->w, NULL, __ATOMIC_RELAXED);
		node_release_locked(ffs, n);
		pthread_mutex_unlock(&ffs->lock);
		goto fail_claimed;
	}
	n->nlookup++;
	n->opens++;
	w->handles++;
	writer_ref(w); /* the handle's; the node has the first */
	if (kind == NAME_ENTRY)
		ffs->inflight++;
	(*h)->node = n;
	(*h)->w = w;
	handle_track_locked(ffs, *h);
	pthread_mutex_unlock(&ffs->lock);
	if (kind == NAME_ENTRY)
		CTR_ADD(ffs->ctr.creates, 1);
	*out = n;
	return 0;
fail_claimed:
	if (kind == NAME_ENTRY)
		abandon_claim(ffs, parent->name, key);
fail:
	store_tmp_unlink(ffs->store, w->tmpname);
	writer_unref(w);
	free(*h);
	*h = NULL;
	return rc;
}

/* Count a hit of published entry `n` (SPEC §3 step 5). */
static void count_hit(struct ffs *ffs, struct node *n, int flags)
{
	/* a backup's O_NOATIME read is no use of the cache: it neither
	 * keeps the entry from GC nor counts toward the hit ratio */
	if (flags & O_NOATIME)
		return;
	CTR_ADD(ffs->ctr.hits, 1);
	CTR_ADD(n->parent->ctr->hits, 1);
	access_log_add(ffs->access, n->parent->name, n->key, now_us());
}

/* A new read-only descriptor on a writer's tmp file. */
static int writer_dup(struct writer *w)
{
	int fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? fd_errno(-errno) : fd;
}

/* Whether the manifest still holds published entry `n` as the node
 * knows it: between the lookup of a name and the open of its object, the
 * entry may have been removed, and its key written again (by this mount,
 * or another sharing the manifest).  If not, the node is taken out of the
 * namespace, so that the next lookup of its name finds what is there. */
static int row_is_current(struct ffs *ffs, struct node *n)
{
	struct manifest_entry e;

	if (manifest_get(ffs->manifest, n->parent->name, n->key, &e) == 0 &&
	    e.state == ENTRY_PUBLISHED && e.created_ts == n->created_ts)
		return 1;
	pthread_mutex_lock(&ffs->lock);
	if (n->kind == NODE_ENTRY && !n->w)
		node_unlink(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
	ffs->hooks->inval_entry(ffs, n->parent, n->name);
	return 0;
}

/* Open the object of published entry `n`: a descriptor, or -ENOENT if
 * the entry was removed (or replaced) meanwhile, -ENFILE or -ENOMEM when
 * the daemon is out of descriptors or memory, -EIO for any other
 * failure, an object missing under its row or of another size than the
 * row's included (all logged; zobject_open() checks a compressed one). */
static int object_open(struct ffs *ffs, struct node *n)
{
	uint64_t want = n->stored_size ? n->stored_size : n->size;
	char rel[STORE_REL_MAX];
	struct stat st;
	int fd;

	store_object_relpath(n->parent->name, n->key, rel, sizeof(rel));
	fd = fd_errno(store_object_open(ffs->store, rel));
	if (fd == -ENOENT) {
		/* a removal drops the row before the object */
		if (row_is_current(ffs, n)) {
			log_err("open %s: its object %s is missing; fsck -p "
				"drops the row", n->hkey, rel);
			fd = -EIO;
		}
	} else if (fd == -ENFILE) {
		char what[STORE_REL_MAX + 8];

		snprintf(what, sizeof(what), "open %s", rel);
		ffs_log_out_of_fds(ffs, what);
	} else if (fd == -EINVAL) {
		log_err("open %s: its object %s is not a regular file (a "
			"symbolic link, a FIFO, a directory); fsck -y "
			"quarantines it", n->hkey, rel);
		fd = -EIO;
	} else if (fd < 0) {
		log_err("open %s: %s", rel, strerror(-fd));
		if (fd != -ENOMEM)
			fd = -EIO;
	} else if (!n->compressed && fstat(fd, &st) == 0 &&
		   (uint64_t)st.st_size != want) {
		close(fd);
		fd = -ENOENT; /* another write's object, unless: */
		if (row_is_current(ffs, n)) {
			/* reads would end early (or late) without a word */
			log_err("open %s: its object %s is %lld bytes where "
				"its row says %llu; fsck -y quarantines it",
				n->hkey, rel, (long long)st.st_size,
				(unsigned long long)want);
			fd = -EIO;
		}
	}
	return fd;
}

/* Open the compressed object of published entry `n` and its seek table
 * (ffs->lock not held: a published node's fields do not change).  The
 * object keeps a descriptor of its own; the handle needs none. */
static int compressed_open(struct ffs *ffs, struct node *n,
			   struct zobject **z)
{
	const char *why = "a compression this featurefs does not know";
	int fd, rc = -EIO;

	if (n->compressed > 0) {
		fd = object_open(ffs, n);
		if (fd < 0)
			return fd;
		rc = zobject_open(fd, n->stored_size, n->size, z, &why);
		close(fd);
		if (rc < 0 && rc != -ENOMEM && !row_is_current(ffs, n))
			return -ENOENT; /* another write's object */
	}
	if (rc < 0 && rc != -ENOMEM) {
		log_err("open %s: its compressed object is unreadable: %s; "
			"fsck --verify checks it", n->hkey, why);
		rc = -EIO;
	}
	return rc;
}

/* Node `n` as /proc shows it to the processes that use this mount (a
 * descriptor of another mount, or of an earlier mount of this store, is
 * not it); the name is kept in `p`. */
struct node_in_proc {
	struct proc_file file;
	char suffix[NODE_HKEY_MAX + 2];
};

static const struct proc_file *node_in_proc(struct ffs *ffs,
					    const struct node *n,
					    struct node_in_proc *p)
{
	p->file.mount = ffs->mounted_as.id ? &ffs->mounted_as : NULL;
	p->file.ino = n->st_ino;
	p->file.suffix = p->suffix;
	snprintf(p->suffix, sizeof(p->suffix), "/%s", n->hkey);
	return &p->file;
}

static int writer_unseal(struct ffs *ffs, struct node *n, struct writer *w);

/* Add a write handle to `n`'s writer `w`, whose reference the caller
 * took for it, emptying the file for O_TRUNC.  -EEXIST when a publish
 * took the file meanwhile (a rename's object is this very file: a
 * truncate would empty an entry), -ESTALE when it went; on failure the
 * handle is given back with entry_release_writer_ref(). */
static int writer_open_handle(struct ffs *ffs, struct node *n,
			      struct writer *w, int flags)
{
	int rc = 0;

	pthread_mutex_lock(&w->mu);
	w->handles++;
	if (w->published || w->abandoned ||
	    __atomic_load_n(&n->w, __ATOMIC_RELAXED) != w) {
		rc = w->published ? -EEXIST : -ESTALE;
	} else if (flags & O_TRUNC) {
		rc = writer_unseal(ffs, n, w);
		if (rc == 0)
			rc = writer_truncate(w, 0);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Open /.featurefs file `n`: a snapshot of its text, read-only. */
static int open_control_file(struct ffs *ffs, struct node *n, int writing,
			     struct handle **h)
{
	if (writing)
		return control_refuse("open for writing", n->name, -EACCES);
	*h = handle_new(HANDLE_CONTROL, n, NULL, -1);
	if (!*h)
		return -ENOMEM;
	(*h)->text = control_snapshot(ffs, n->control, &(*h)->len);
	if (!(*h)->text) {
		free(*h);
		return -ENOMEM;
	}
	handle_track(ffs, *h);
	return 0;
}

int entry_open(struct ffs *ffs, struct node *n, int flags, pid_t pid,
	       struct handle **h)
{
	int writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	struct node_in_proc in_proc;
	enum handle_kind kind = HANDLE_OBJECT;
	struct writer *w = NULL;
	struct zobject *z = NULL;
	pid_t tgid = 0;
	enum node_kind nkind;
	int fd = -1, backing_id = 0, rc;

	nkind = node_kind(n);
	switch (nkind) {
	case NODE_CONTROL_FILE:
		return open_control_file(ffs, n, writing, h);
	case NODE_SCRATCH:
	case NODE_ENTRY:
		break;
	default:
		return -EISDIR;
	}

	/* who is asking matters only for an entry in flight; read /proc
	 * before taking the namespace lock (the pointer is only a hint) */
	if (!writing && nkind == NODE_ENTRY &&
	    __atomic_load_n(&n->w, __ATOMIC_RELAXED))
		tgid = proc_tgid_of(pid);
	pthread_mutex_lock(&ffs->lock);
	w = n->w;
	if (n->kind == NODE_SCRATCH && w) {
		if (writing) {
			if (ffs->opt.read_only) {
				pthread_mutex_unlock(&ffs->lock);
				return ffs_refuse_read_only("open for writing",
							    n->hkey);
			}
			writer_ref(w); /* the handle's */
			pthread_mutex_unlock(&ffs->lock);
			rc = writer_open_handle(ffs, n, w, flags);
			kind = HANDLE_WRITER;
			goto made;
		}
		goto read_tmp;
	}
	if (!n->linked) {
		/* removed since the kernel looked the name up: gone, for a
		 * read.  A write-open may carry O_CREAT, which FUSE does not
		 * pass on: ESTALE has the kernel look again, and create */
		pthread_mutex_unlock(&ffs->lock);
		return writing ? -ESTALE : -ENOENT;
	}
	if (writing && w) {
		writer_ref(w); /* the handle's, if it may have one */
		pthread_mutex_unlock(&ffs->lock);
		if (proc_writes_file(proc_tgid_of(pid),
				     node_in_proc(ffs, n, &in_proc))) {
			/* a process writing it opens it again (a tool given
			 * /dev/stdout, which is the entry): the same write */
			rc = writer_open_handle(ffs, n, w, flags);
			kind = HANDLE_WRITER;
			goto made;
		}
		writer_unref(w);
		log_info("open %s for writing: in flight, written by another "
			 "process (EEXIST: read it once it is published)",
			 n->hkey);
		return -EEXIST;
	}
	if (writing) {
		pthread_mutex_unlock(&ffs->lock);
		log_info("open %s for writing: published, and entries are "
			 "immutable (EEXIST: remove it to write it again)",
			 n->hkey);
		return -EEXIST;
	}
	if (w) {
		if (__atomic_load_n(&w->abandoned, __ATOMIC_RELAXED)) {
			pthread_mutex_unlock(&ffs->lock);
			return -ENOENT;
		}
		if (tgid != w->tgid) {
			pthread_mutex_unlock(&ffs->lock);
			return -EINPROGRESS;
		}
		/* the writer reading back what it wrote */
		goto read_tmp;
	}
	if (n->state != ENTRY_PUBLISHED) {
		pthread_mutex_unlock(&ffs->lock);
		return -ENOENT;
	}
	if (n->compressed) {
		pthread_mutex_unlock(&ffs->lock);
		rc = compressed_open(ffs, n, &z);
		if (rc < 0)
			return rc;
		count_hit(ffs, n, flags);
		goto made;
	}
	/* served by a backing file the kernel already has: no object open */
	if (ffs->hooks && ffs->hooks->claim_backing)
		backing_id = ffs->hooks->claim_backing(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
	if (backing_id == 0) {
		fd = object_open(ffs, n);
		if (fd < 0)
			return fd;
	}
	count_hit(ffs, n, flags);
	rc = 0;
	goto made;
read_tmp:
	/* ffs->lock held: what writer `w` has written so far */
	fd = writer_dup(w);
	pthread_mutex_unlock(&ffs->lock);
	kind = HANDLE_TMP_READ;
	w = NULL;
	rc = fd < 0 ? fd : 0;
made:
	if (rc == 0) {
		*h = handle_new(kind, n, w, fd);
		if (!*h)
			rc = -ENOMEM;
	}
	if (rc < 0) {
		zobject_close(z);
		if (fd >= 0)
			close(fd);
		if (backing_id > 0)
			ffs->hooks->unclaim_backing(ffs, n);
		if (kind == HANDLE_WRITER)
			entry_release_writer_ref(ffs, n, w);
		return rc;
	}
	(*h)->backing_id = backing_id;
	(*h)->z = z;
	pthread_mutex_lock(&ffs->lock);
	n->opens++;
	handle_track_locked(ffs, *h);
	pthread_mutex_unlock(&ffs->lock);
	return 0;
}

/* ---- reading and writing -------------------------------------------- */

/* The descriptor a read of `h` is served from: an object handle served
 * by passthrough opens its object on the first read that reaches us. */
static int handle_fd(struct ffs *ffs, struct handle *h)
{
	int expected = -1;
	int fd = __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		return fd;
	/* the kernel reads it itself, but nothing is lost by serving a
	 * stray read */
	fd = object_open(ffs, h->node);
	if (fd < 0)
		return fd;
	if (!__atomic_compare_exchange_n(&h->fd, &expected, fd, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd);
		fd = expected;
	}
	return fd;
}

int entry_read_fd(struct ffs *ffs, struct handle *h, size_t size, off_t off)
{
	uint64_t end, len;
	int fd;

	if (h->kind != HANDLE_OBJECT || h->z)
		return -ENOTSUP; /* copied, or decompressed */
	len = h->node->size; /* published: never changes */
	fd = handle_fd(ffs, h);
	if (fd >= 0 && (uint64_t)off < len) {
		end = (uint64_t)off + size < len ? (uint64_t)off + size : len;
		CTR_ADD(ffs->ctr.bytes_read, end - (uint64_t)off);
	}
	return fd;
}

/* Say why a read of compressed entry `h` failed: a corrupt frame each
 * time, no memory for one once a minute (a flood of reads meets it). */
static void log_frame_failure(struct ffs *ffs, const struct handle *h,
			      off_t off, ssize_t rc, const char *why)
{
	int64_t held_back;

	if (rc == -EIO)
		log_err("read %s at %lld: a corrupt compressed frame: %s; "
			"fsck --verify checks it", h->node->hkey,
			(long long)off, why);
	if (rc != -ENOMEM || (held_back = log_limit_pass(&ffs->nomem_log)) < 0)
		return;
	log_err("read %s at %lld: no memory to decompress a frame into (the "
		"daemon's memory limit; a smaller -o frame_cache= needs less)"
		"%s", h->node->hkey, (long long)off,
		held_back ? "; more such refusals held back" : "");
}

ssize_t entry_read_frames(struct ffs *ffs, struct handle *h, size_t size,
			  off_t off, struct frame_span *span)
{
	const char *why = "";
	ssize_t n;

	span->n = 0;
	if (!h->z)
		return -ENOTSUP;
	n = frame_cache_pin(ffs->frames, h->z, size, (uint64_t)off, span,
			    &why);
	if (n == -E2BIG)
		return -ENOTSUP;
	log_frame_failure(ffs, h, off, n, why);
	if (n > 0)
		CTR_ADD(ffs->ctr.bytes_read, (uint64_t)n);
	return n;
}

ssize_t entry_read(struct ffs *ffs, struct handle *h, void *buf, size_t size,
		   off_t off)
{
	ssize_t n;
	int fd;

	switch (h->kind) {
	case HANDLE_CONTROL:
		if ((size_t)off >= h->len)
			return 0;
		n = (ssize_t)(h->len - (size_t)off < size ? h->len - (size_t)off
							  : size);
		memcpy(buf, h->text + off, (size_t)n);
		return n;
	case HANDLE_WRITER:
		return pread_full(h->w->fd, buf, size, (uint64_t)off);
	default:
		if (h->z) {
			const char *why = "";

			n = frame_cache_pread(ffs->frames, h->z, buf, size,
					      (uint64_t)off, &why);
			log_frame_failure(ffs, h, off, n, why);
		} else {
			fd = handle_fd(ffs, h);
			if (fd < 0)
				return fd;
			n = pread_full(fd, buf, size, (uint64_t)off);
		}
		if (n > 0)
			CTR_ADD(ffs->ctr.bytes_read, (uint64_t)n);
		return n;
	}
}

/* Truncate or extend the writer's data to `size`; w->mu held. */
int writer_truncate(struct writer *w, uint64_t size)
{
	int64_t now_ns;

	if (ftruncate(w->fd, (off_t)size) < 0)
		return -errno;
	if (size == 0)
		w->write_err = 0; /* rewritten from scratch */
	if (size != w->hashed)
		w->hash_broken = 1;
	CTR_SET(w->size, size);
	w->gen++;
	now_ns = now_us() * 1000;
	CTR_SET(w->mtime_ns, now_ns);
	CTR_SET(w->ctime_ns, now_ns);
	return 0;
}

/* A write through a descriptor still open after a rename published its
 * file: EPERM, logged once per file.  w->mu held. */
static int refuse_late_write(struct ffs *ffs, struct writer *w,
			     struct handle *h, const char *op)
{
	if (!w->late_write_logged)
		log_info("%s %s: published by a rename, immutable now", op,
			 h->node->hkey);
	w->late_write_logged = 1;
	/* the kernel put the refused bytes in the file's page cache before
	 * it asked: drop them, or maps of it would show them */
	ffs->hooks->inval_inode(ffs, h->node);
	return -EPERM;
}

/* The times and mode writer `w` shows, as a row takes them. */
static void writer_attrs(struct writer *w, struct manifest_attrs *a)
{
	a->set = MANIFEST_SET_MTIME | MANIFEST_SET_MODE;
	a->mtime_ns = CTR_GET(w->mtime_ns);
	a->mode = CTR_GET(w->mode);
	a->ctime_ns = CTR_GET(w->ctime_ns);
}

/*
 * Record in the manifest that in-flight entry `n`'s tmp file holds what
 * its writer closed, checked and fsynced.  close() returns 0 on it, so a
 * daemon that dies before the publish must not lose it: recovery
 * publishes a sealed tmp file.  0, or the manifest's error.  w->mu held.
 */
static int writer_seal(struct ffs *ffs, struct node *n, struct writer *w)
{
	struct manifest_attrs a;
	int rc;

	if (w->sealed || w->published || w->abandoned ||
	    node_kind(n) != NODE_ENTRY)
		return 0;
	/* what recovery publishes carries the times and mode set so far
	 * (cp -p and rsync -a set them before close; setattr_writer()
	 * records later changes) */
	writer_attrs(w, &a);
	rc = fault_inject("seal");
	if (rc == 0)
		rc = manifest_seal(ffs->manifest, n->parent->name, n->key,
				   w->tmpname, &a);
	if (rc == 0)
		w->sealed = 1;
	return rc;
}

/* Sealed writer `w`'s times or mode changed: its row takes them, as the
 * publish would; a failure is logged.  w->mu held. */
static void writer_seal_attrs(struct ffs *ffs, struct node *n,
			      struct writer *w)
{
	struct manifest_attrs a;
	int rc;

	writer_attrs(w, &a);
	rc = manifest_set_attrs(ffs->manifest, n->parent->name, n->key, &a);
	if (rc < 0)
		log_warn("%s: recording its new times and mode for recovery "
			 "failed: %s", n->hkey, strerror(-rc));
}

/* writer_seal() where close() has returned 0 already: a failure is only
 * logged, and the publish goes on.  w->mu held. */
static void writer_seal_late(struct ffs *ffs, struct node *n,
			     struct writer *w)
{
	int rc = writer_seal(ffs, n, w);

	if (rc < 0)
		log_warn("%s: recording its tmp file as closed failed (%s): "
			 "the daemon dying before the publish would lose it",
			 n->hkey, strerror(-rc));
}

/* The content of sealed writer `w` is about to change: withdraw the seal
 * first, so that recovery never publishes a mix of old and new.  0, or
 * the manifest's error, which refuses the change.  w->mu held. */
static int writer_unseal(struct ffs *ffs, struct node *n, struct writer *w)
{
	int rc;

	if (!w->sealed)
		return 0;
	rc = manifest_seal(ffs->manifest, n->parent->name, n->key, "", NULL);
	if (rc < 0 && rc != -ENOENT) {
		log_err("write %s: withdrawing its closed state failed: %s",
			n->hkey, strerror(-rc));
		return rc;
	}
	w->sealed = 0;
	return 0;
}

ssize_t entry_write(struct ffs *ffs, struct handle *h, const void *buf,
		    size_t size, off_t off)
{
	struct writer *w = h->w;
	int64_t now_ns;
	ssize_t rc;
	uint64_t end;

	if (h->kind != HANDLE_WRITER)
		return -EBADF;
	pthread_mutex_lock(&w->mu);
	if (w->published) {
		rc = refuse_late_write(ffs, w, h, "write");
		goto out;
	}
	rc = writer_unseal(ffs, h->node, w);
	if (rc < 0)
		goto out;
	rc = store_pwrite(w->fd, buf, size, off);
	if (rc < 0) {
		if (!w->write_err)
			w->write_err = (int)rc;
		w->gen++;
		goto out;
	}
	if (!w->hash_broken && (uint64_t)off == w->hashed) {
		EVP_DigestUpdate(w->sha, buf, size);
		w->hashed += size;
	} else {
		w->hash_broken = 1;
	}
	end = (uint64_t)off + size;
	if (end > w->size)
		CTR_SET(w->size, end);
	w->gen++;
	now_ns = now_us() * 1000;
	CTR_SET(w->mtime_ns, now_ns);
	CTR_SET(w->ctime_ns, now_ns);
	CTR_SET(w->touched_us, mono_us());
	CTR_ADD(ffs->ctr.bytes_written, size);
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/*
 * Validate and fsync the writer's data unless nothing changed since the
 * last check.  0 when publishable; -EIO when not Parquet (w->why says
 * why); another errno when the data could not be made durable.  w->mu held.
 */
static int writer_check(struct ffs *ffs, struct writer *w)
{
	struct parquet_error perr = { "io", "" };
	int rc;

	if (w->checked && w->valid_gen == w->gen)
		return w->check_rc;
	if (w->write_err) {
		/* bytes the writer meant to write are missing: whatever the
		 * footer says, this is not the file it wrote */
		rc = w->write_err;
		w->why = rc == -ENOSPC || rc == -EDQUOT ? LOAD_NOSPACE : LOAD_IO;
		snprintf(w->why_detail, sizeof(w->why_detail),
			 "a write failed: %s", strerror(-rc));
		goto done;
	}
	rc = fault_inject("validate");
	if (rc == 0)
		rc = parquet_validate_fd(w->fd, w->size, &w->info, &perr, NULL);
	if (rc == 0) {
		rc = store_fsync(w->fd);
		if (rc < 0)
			snprintf(perr.detail, sizeof(perr.detail), "fsync: %s",
				 strerror(-rc));
	}
	if (rc < 0) {
		w->why = rc == -ENOSPC || rc == -EDQUOT
				 ? LOAD_NOSPACE
				 : load_failure_of(perr.reason);
		snprintf(w->why_detail, sizeof(w->why_detail), "%s",
			 perr.detail[0] ? perr.detail : strerror(-rc));
	}
done:
	(void)ffs;
	w->checked = 1;
	w->valid_gen = w->gen;
	w->check_rc = rc;
	return rc;
}

/* Whether `why` is about the bytes written, not about a write, an fsync
 * or the manifest failing. */
static int load_failure_is_content(enum load_failure why)
{
	return why == LOAD_EMPTY || why == LOAD_NOT_PARQUET ||
	       why == LOAD_TRUNCATED || why == LOAD_BAD_FOOTER ||
	       why == LOAD_ENCRYPTED;
}

static int writer_abandon_locked(struct ffs *ffs, struct node *n,
				 struct writer *w);
static void discard_entry(struct ffs *ffs, struct node *n, struct writer *w,
			  enum load_failure why, const char *detail, int keep);

int entry_flush(struct ffs *ffs, struct handle *h, pid_t pid)
{
	struct node_in_proc in_proc;
	struct writer *w = h->w;
	int rc = 0, bad_content, mine;
	pid_t closer;

	if (h->kind != HANDLE_WRITER || h->node->kind != NODE_ENTRY)
		return 0;
	/* A close in another process shuts an inherited descriptor (a shell
	 * child writing to its parent's file): the writer may not be done,
	 * and the last close is checked at release anyway.  But the child
	 * may have written it all (Popen(stdout=f)): valid content is sealed
	 * now, as its close() returns 0.  And when nothing else holds the
	 * file for writing (the writer closed first), invalid content is
	 * reported to this last close; release discards it. */
	closer = proc_tgid_of(pid);
	if (closer != w->tgid) {
		pthread_mutex_lock(&w->mu);
		if (!w->abandoned && !w->published &&
		    (rc = writer_check(ffs, w)) == 0)
			writer_seal_late(ffs, h->node, w);
		bad_content = rc < 0 && load_failure_is_content(w->why);
		pthread_mutex_unlock(&w->mu);
		if (!bad_content ||
		    proc_tree_writes_file(w->tgid,
					  node_in_proc(ffs, h->node, &in_proc)) ||
		    proc_writes_file(closer, &in_proc.file))
			return 0;
		log_info("close %s: %s; no other process writes it (EIO)",
			 h->node->hkey, w->why_detail);
		return rc;
	}
	pthread_mutex_lock(&w->mu);
	if (!w->abandoned && !w->published)
		rc = writer_check(ffs, w);
	/* close() may return 0 only once the content is recorded as closed:
	 * a manifest that cannot take that (locked by another process past
	 * its timeout, on a full disk) fails the close */
	if (rc == 0 && (rc = writer_seal(ffs, h->node, w)) < 0) {
		w->why = LOAD_MANIFEST;
		snprintf(w->why_detail, sizeof(w->why_detail),
			 "recording it as closed: %s", strerror(-rc));
	}
	if (rc == 0) {
		w->closed = 1;
		w->closed_gen = w->gen;
	}
	bad_content = rc < 0 && load_failure_is_content(w->why);
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		return 0;
	/* while the writer or a child it started still holds the file for
	 * writing, more content is to come: it is checked at release, where
	 * a discard is logged; a failed write or fsync is reported now */
	if (bad_content) {
		if (proc_tree_writes_file(w->tgid,
					  node_in_proc(ffs, h->node, &in_proc))) {
			log_debug("close %s: %s; still open for writing, "
				  "checked at release", h->node->hkey,
				  w->why_detail);
			return 0;
		}
	}
	log_debug("close %s: %s", h->node->hkey, w->why_detail);
	/* it can never be published: its name goes now, not at release,
	 * so that the writer's retry finds the key free */
	pthread_mutex_lock(&w->mu);
	mine = writer_abandon_locked(ffs, h->node, w);
	pthread_mutex_unlock(&w->mu);
	if (mine)
		discard_entry(ffs, h->node, w, w->why, w->why_detail, 0);
	return rc;
}

/* fsync(2) of a file being written.  An entry whose first bytes are
 * not Parquet's is refused with EIO: its close will discard it, and a
 * database or log kept at a key name must not take its fsync() as
 * "safe on disk". */
int entry_fsync(struct ffs *ffs, struct handle *h, int datasync)
{
	struct writer *w = h->w;
	uint8_t head[4];
	int rc = 0;

	(void)ffs;
	if (h->kind != HANDLE_WRITER)
		return 0;
	pthread_mutex_lock(&w->mu);
	if (h->node->kind == NODE_ENTRY &&
	    pread(w->fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
	    parquet_head_refutes(head)) {
		log_info("fsync %s: it does not begin with PAR1, so it is not "
			 "Parquet and its close will discard it (EIO)",
			 h->node->hkey);
		rc = -EIO;
	} else if (datasync ? fdatasync(w->fd) : fsync(w->fd)) {
		rc = -errno;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* ---- publish and discard -------------------------------------------- */

/* Fill `e` with everything known about the finished writer `w`. */
static int describe_writer(struct ffs *ffs, struct writer *w,
			   const char *symbol, const char *key,
			   struct manifest_entry *e)
{
	int rc;

	row_init(e, symbol, key, ENTRY_PUBLISHED);
	e->has_ts = w->info.has_ts;
	e->start_ts = w->info.start_ts_us;
	e->end_ts = w->info.end_ts_us;
	e->rows = w->info.rows;
	e->file_size = (int64_t)w->size;
	e->stored_size = (int64_t)w->size;
	snprintf(e->compression, sizeof(e->compression), "none");
	snprintf(e->hash_method, sizeof(e->hash_method), "%s",
		 hash_mode_name(ffs->opt.hash));
	e->created_ts = now_us();
	e->mtime_ns = w->mtime_ns;
	e->ctime_ns = w->ctime_ns;
	e->mode = w->mode;
	snprintf(e->writer, sizeof(e->writer), "%s", ffs->writer_id);
	if (ffs->opt.hash == HASH_FOOTER)
		rc = hash_footer(w->fd, w->size, w->info.footer_len, e->sha256);
	else if (!w->hash_broken && w->hashed == w->size) {
		rc = hash_finish(w->sha, e->sha256);
		/* the digest is final: should this publish fail, the next
		 * one (a rename again) hashes the file */
		w->hash_broken = 1;
	} else
		rc = hash_fd(w->fd, w->size, e->sha256);
	return rc;
}

/*
 * Compress checked writer `w`'s data into a new tmp file when the mount
 * stores objects compressed.  1 with `ztmp` named and `e` saying so when
 * the object is to be stored compressed; 0 when it stays as written
 * (compress=none, compress=auto saving less than 10 %, or a compressed
 * copy that could not be made, logged: the data is whole, and close()
 * has returned).  w->mu held.
 */
static int compress_writer(struct ffs *ffs, struct writer *w,
			   struct manifest_entry *e, char *ztmp, size_t len)
{
	struct seekable_plan plan;
	uint64_t stored = 0, *cuts = NULL;
	size_t ncuts = 0;
	int fd, rc, keep;

	if (ffs->opt.compress != COMPRESS_ZSTD &&
	    ffs->opt.compress != COMPRESS_AUTO)
		return 0;
	/* frames begin where column chunks do, so that a read of one
	 * decompresses its own frames only; without the bounds (the file
	 * was checked: only memory or the disk can fail), frames are cut
	 * in equal parts */
	(void)parquet_read_bounds(w->fd, w->size, &cuts, &ncuts);
	rc = seekable_plan(w->size, cuts, ncuts, &plan);
	free(cuts);
	if (rc < 0)
		goto as_written;
	fd = store_tmp_create(ffs->store, "zst", ztmp, len);
	if (fd < 0) {
		seekable_plan_free(&plan);
		rc = fd_errno(fd);
		goto as_written;
	}
	rc = fault_inject("compress");
	if (rc == 0)
		rc = seekable_compress(w->fd, &plan, fd,
				       ffs->opt.compress_level,
				       1 + ffs->spare_cpus, &stored);
	seekable_plan_free(&plan);
	keep = ffs->opt.compress == COMPRESS_ZSTD || stored * 10 <= w->size * 9;
	if (rc == 0 && keep)
		rc = store_fsync(fd);
	close(fd);
	if (rc < 0 || !keep) {
		store_tmp_unlink(ffs->store, ztmp);
		goto as_written;
	}
	snprintf(e->compression, sizeof(e->compression), "zstd");
	e->stored_size = (int64_t)stored;
	return 1;
as_written:
	/* the data is whole and checked, and close() has returned 0: no
	 * failure of the copy is a reason to lose it */
	if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG)
		log_warn("publish %s/%s: no room to compress it (%s): stored "
			 "as written", e->symbol, e->key, strerror(-rc));
	else if (rc < 0)
		log_warn("publish %s/%s: compressing it failed (%s): stored as "
			 "written", e->symbol, e->key, strerror(-rc));
	return 0;
}

/* Entry `e`'s object path is taken, though its key is claimed here, so
 * no row names that object: its row was lost (a publish cut short by a
 * crash, a manifest restored from a backup).  Move the object to
 * lost+found/, as fsck -p would, so that the key can be published.  Two
 * publishes never share a key, so nothing else moves it meanwhile. */
static int quarantine_orphan(struct ffs *ffs, const struct manifest_entry *e)
{
	char dest[STORE_REL_MAX + 32];
	int rc;

	rc = lostfound_move_object(ffs->store, e->path,
				   "no manifest row named it when its key was "
				   "published again",
				   dest, sizeof(dest));
	if (rc == 0)
		log_warn("publish %s/%s: %s had no manifest row: moved it to "
			 "%s", e->symbol, e->key, e->path, dest);
	else
		log_err("publish %s/%s: %s exists without a manifest row, and "
			"moving it to lost+found/ failed: %s; fsck -p adopts or "
			"quarantines it", e->symbol, e->key, e->path,
			strerror(-rc));
	return rc;
}

/* Move tmp/`tmpname` into objects/ as entry `e`'s object; an orphan in
 * its place goes to lost+found/ first (quarantine_orphan()). */
static int install_object(struct ffs *ffs, const char *tmpname,
			  const struct manifest_entry *e)
{
	int rc = store_object_install(ffs->store, tmpname, e->symbol, e->key);

	if (rc == -EEXIST && quarantine_orphan(ffs, e) == 0)
		rc = store_object_install(ffs->store, tmpname, e->symbol,
					  e->key);
	return rc;
}

/*
 * Publish checked writer `w` (the key is claimed) as <symbol>/<key>, then
 * make node `n` that published entry.  On failure nothing is left in
 * objects/, w->tmpname is still there, and the claim is the caller's to
 * settle.  w->mu held.
 */
static int publish_writer(struct ffs *ffs, struct node *n, struct writer *w,
			  struct node *symbol, const char *key)
{
	char ztmp[STORE_TMP_NAME_MAX];
	struct manifest_entry e;
	int64_t start = mono_us();
	enum load_failure why = LOAD_IO;
	const char *step = "hash";
	int rc, compressed = 0;

	rc = describe_writer(ffs, w, symbol->name, key, &e);
	if (rc == 0) {
		compressed = compress_writer(ffs, w, &e, ztmp, sizeof(ztmp));
		step = "install";
		rc = install_object(ffs, compressed > 0 ? ztmp : w->tmpname,
				    &e);
		if (rc == -ENOSPC || rc == -EDQUOT)
			why = LOAD_NOSPACE;
	}
	if (rc == 0) {
		rc = fault_inject("after_rename");
		step = "manifest";
		why = LOAD_MANIFEST;
		if (rc == 0)
			rc = fault_inject("manifest_publish");
		if (rc == 0)
			rc = manifest_publish(ffs->manifest, &e);
		if (rc < 0) {
			int urc = store_object_unlink(ffs->store, e.path);

			if (urc < 0)
				log_err("publish %s/%s: remove %s after failed "
					"manifest update: %s", symbol->name,
					key, e.path, strerror(-urc));
		}
	}
	if (compressed > 0) /* in objects/ now, or of no use */
		store_tmp_unlink(ffs->store, ztmp);
	if (rc < 0) {
		snprintf(w->why_detail, sizeof(w->why_detail), "%s: %s", step,
			 strerror(-rc));
		w->why = why;
		return rc;
	}
	w->published = 1;
	store_tmp_unlink(ffs->store, w->tmpname); /* the object has it */
	pthread_mutex_lock(&ffs->lock);
	if (n->kind == NODE_ENTRY)
		ffs->inflight--;
	node_set_published(ffs, n, &e);
	n->writer_tgid = w->tgid;
	pthread_mutex_unlock(&ffs->lock);
	writer_unref(w); /* the node's; the caller holds another */
	CTR_ADD(ffs->ctr.publishes, 1);
	hist_observe(&ffs->ctr.publish, mono_us() - start);
	log_debug("published %s/%s (%lld bytes, %lld stored, %s, %lld rows)",
		  symbol->name, key, (long long)e.file_size,
		  (long long)e.stored_size, e.compression, (long long)e.rows);
	return 0;
}

/*
 * Publish kept write symbol/key (kept_add()) now: claim its row back,
 * check tmp/`tmpname` again, install it as written and publish the row,
 * as the next mount's recovery would.  1 when published; 0 when it is no
 * longer this mount's to publish, and is dropped; else a negative errno,
 * and it stays kept for the next try.
 */
static int publish_kept(struct ffs *ffs, const char *symbol, const char *key,
			const char *tmpname)
{
	const char *gone = "its row went, or moved on to another write";
	struct manifest_entry row, e;
	struct kept_tmp *k;
	char why[256];
	int rc;

	rc = fault_inject("publish_kept");
	if (rc == 0)
		rc = manifest_get(ffs->manifest, symbol, key, &row);
	if (rc == 0 && (row.state != ENTRY_WRITING ||
			strcmp(row.sealed_tmp, tmpname) != 0))
		rc = -ENOENT;
	if (rc == 0) {
		rc = manifest_claim(ffs->manifest, &row);
		if (rc == -EEXIST)
			return -EBUSY; /* a claim of the key in progress */
	}
	if (rc == -ENOENT)
		goto drop;
	if (rc < 0)
		return rc;
	/* the key is held now, so no claim can take the file out of
	 * ffs->kept; one that took the row over before has done so */
	if (!kept_is(ffs, symbol, key, tmpname)) {
		abandon_claim(ffs, symbol, key);
		return 0;
	}
	rc = gc_describe_sealed(ffs->store, &row, 1, &e, why, sizeof(why));
	if (rc < 0) {
		abandon_claim(ffs, symbol, key);
		gone = why;
		goto drop;
	}
	rc = install_object(ffs, tmpname, &e);
	if (rc == 0) {
		e.mode = row.mode;
		e.mtime_ns = row.mtime_ns;
		e.ctime_ns = row.ctime_ns;
		snprintf(e.writer, sizeof(e.writer), "%s", row.writer);
		rc = fault_inject("manifest_publish");
		if (rc == 0)
			rc = manifest_publish(ffs->manifest, &e);
		if (rc < 0)
			store_object_unlink(ffs->store, e.path);
	}
	if (rc < 0) {
		manifest_release(ffs->manifest, symbol, key);
		return rc;
	}
	free(kept_take(ffs, symbol, key, tmpname));
	store_tmp_unlink(ffs->store, tmpname); /* the object has it */
	CTR_ADD(ffs->ctr.publishes, 1);
	log_info("published %s/%s, kept since its publish failed: the "
		 "manifest takes it now", symbol, key);
	return 1;
drop:
	k = kept_take(ffs, symbol, key, tmpname);
	if (k) {
		store_tmp_unlink(ffs->store, tmpname);
		log_warn("%s/%s: tmp/%s, kept since its publish failed, is "
			 "given up: %s", symbol, key, tmpname, gone);
		free(k);
	}
	return 0;
}

static void kept_collect(void *arg, void *value)
{
	struct kept_tmp **next = arg;

	*(*next)++ = *(struct kept_tmp *)value;
}

int entry_publish_kept(struct ffs *ffs)
{
	struct kept_tmp *todo, *next;
	size_t n, i;
	int rc = 0, one;

	pthread_mutex_lock(&ffs->lock);
	n = htab_count(ffs->kept);
	todo = n ? malloc(n * sizeof(*todo)) : NULL;
	next = todo;
	if (todo)
		htab_each(ffs->kept, kept_collect, &next);
	pthread_mutex_unlock(&ffs->lock);
	if (!todo)
		return n ? -ENOMEM : 0;
	for (i = 0; i < n; i++) {
		char symbol[SYMBOL_MAX + 1];
		char *slash = strchr(todo[i].key, '/');

		if (!slash)
			continue;
		snprintf(symbol, sizeof(symbol), "%.*s",
			 (int)(slash - todo[i].key), todo[i].key);
		one = publish_kept(ffs, symbol, slash + 1, todo[i].tmpname);
		if (one < 0 && one != -EBUSY) {
			int64_t held_back = log_limit_pass(&ffs->kept_log);

			if (held_back >= 0)
				log_warn("%s: tmp/%s, kept since its publish "
					 "failed, is still refused: %s%s",
					 todo[i].key, todo[i].tmpname,
					 strerror(-one),
					 held_back ? " (and more since)" : "");
			rc = one; /* the rest would meet the same refusal */
			break;
		}
	}
	free(todo);
	return rc;
}

static void kept_report(void *arg, void *value)
{
	const struct kept_tmp *k = value;

	(void)arg;
	log_warn("%s: tmp/%s, kept since its publish failed, is left with "
		 "its row for the next mount, or fsck -p, to publish",
		 k->key, k->tmpname);
}

void entry_report_kept(struct ffs *ffs)
{
	pthread_mutex_lock(&ffs->lock);
	htab_each(ffs->kept, kept_report, NULL);
	pthread_mutex_unlock(&ffs->lock);
}

/* Claim the discard of `w`, the writer of entry `n`: 1 when the caller
 * is the one to discard it, 0 when it is published or discarded already.
 * The name goes at once, under the same hold of ffs->lock, so that no
 * lookup finds a write being discarded (an open that met it gets ESTALE,
 * and the kernel's second look must not meet it again).  w->mu held. */
static int writer_abandon_locked(struct ffs *ffs, struct node *n,
				 struct writer *w)
{
	if (w->published || w->abandoned)
		return 0;
	pthread_mutex_lock(&ffs->lock);
	__atomic_store_n(&w->abandoned, 1, __ATOMIC_RELAXED);
	ffs->inflight--;
	node_unlink(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
	pthread_cond_broadcast(&w->settled);
	return 1;
}

/* Drop in-flight entry `n`, whose name is gone: tmp data and claim;
 * waiting readers get ENOENT.
 * With `keep` (its writer's close() returned 0 on content it sealed, and
 * this mount could not publish it), the tmp file and its row stay for
 * the next mount's recovery, or fsck -p, to publish.  Only the caller
 * that won writer_abandon_locked() calls this. */
static void discard_entry(struct ffs *ffs, struct node *n, struct writer *w,
			  enum load_failure why, const char *detail, int keep)
{
	if (keep) {
		kept_add(ffs, n->parent->name, n->key, w->tmpname);
		manifest_release(ffs->manifest, n->parent->name, n->key);
		log_warn("%s: its writer's close() returned 0: tmp/%s stays, "
			 "with its row, and is published once the manifest and "
			 "the store take it (by this mount, the next, or fsck "
			 "-p)", n->hkey, w->tmpname);
	} else {
		store_tmp_unlink(ffs->store, w->tmpname);
		abandon_claim(ffs, n->parent->name, n->key);
	}
	wake_waiters(ffs, n, -ENOENT);
	ffs->hooks->inval_entry(ffs, n->parent, n->name);
	count_failure(ffs, why, n->parent->name, n->name, detail);
}

/* The last write handle of in-flight entry `n` closed: publish or
 * discard.  w->mu held since that close, so whoever takes it next (a
 * getxattr, a setattr) sees the outcome; dropped here. */
static void finish_entry(struct ffs *ffs, struct node *n, struct writer *w)
{
	int rc;

	rc = writer_check(ffs, w);
	if (rc == 0) {
		writer_seal_late(ffs, n, w); /* while it compresses */
		rc = publish_writer(ffs, n, w, n->parent, n->key);
	}
	if (rc < 0)
		/* ours to discard: w->mu was held throughout */
		writer_abandon_locked(ffs, n, w);
	pthread_cond_broadcast(&w->settled);
	pthread_mutex_unlock(&w->mu);
	if (rc == 0) {
		ffs->hooks->inval_inode(ffs, n);
		wake_waiters(ffs, n, 0);
	} else {
		/* sealed: w->mu is no longer held, but nothing changes a
		 * writer that is abandoned */
		discard_entry(ffs, n, w, w->why, w->why_detail, w->sealed);
		writer_detach(ffs, n, w);
	}
}

void writer_wait_closed(struct writer *w, int64_t us)
{
	struct timespec until = mono_deadline(mono_us() + us);

	while (!w->published && !w->abandoned && w->closed &&
	       w->closed_gen == w->gen)
		if (pthread_cond_timedwait(&w->settled, &w->mu, &until) ==
		    ETIMEDOUT)
			break;
}

void entry_release_writer_ref(struct ffs *ffs, struct node *n,
			      struct writer *w)
{
	int last, finish, abandoned;

	pthread_mutex_lock(&w->mu);
	CTR_SET(w->touched_us, mono_us());
	last = --w->handles == 0;
	finish = last && !w->abandoned && !w->published &&
		 n->kind == NODE_ENTRY;
	abandoned = last && w->abandoned;
	if (finish) {
		finish_entry(ffs, n, w);
	} else {
		pthread_mutex_unlock(&w->mu);
		if (abandoned)
			writer_detach(ffs, n, w);
	}
	writer_unref(w);
}

void entry_release(struct ffs *ffs, struct handle *h)
{
	struct node *n = h->node;

	switch (h->kind) {
	case HANDLE_CONTROL:
		free(h->text);
		break;
	case HANDLE_WRITER:
		entry_release_writer_ref(ffs, n, h->w);
		break;
	default:
		zobject_close(h->z);
		if (h->fd >= 0)
			close(h->fd);
		break;
	}
	pthread_mutex_lock(&ffs->lock);
	handle_untrack_locked(ffs, h);
	if (h->kind != HANDLE_CONTROL) { /* control nodes are static */
		n->opens--;
		node_release_locked(ffs, n);
	}
	pthread_mutex_unlock(&ffs->lock);
	free(h);
}

void entry_discard_all(struct ffs *ffs)
{
	struct node *n;
	struct writer *w;

	for (;;) {
		pthread_mutex_lock(&ffs->lock);
		for (n = ffs->all; n; n = n->next_all)
			if (n->w && n->linked)
				break;
		w = n ? n->w : NULL;
		if (w)
			writer_ref(w); /* under ffs->lock: n->w holds it */
		pthread_mutex_unlock(&ffs->lock);
		if (!n)
			break;
		if (n->kind == NODE_ENTRY) {
			int mine;

			pthread_mutex_lock(&w->mu);
			if (w->sealed && !w->published && !w->abandoned) {
				/* close() accepted it, and no write reaches
				 * it any more (a descriptor still open, or
				 * a release the session ended before):
				 * published now, or kept if that fails */
				finish_entry(ffs, n, w);
				writer_detach(ffs, n, w);
				writer_unref(w);
				continue;
			}
			mine = writer_abandon_locked(ffs, n, w);
			pthread_mutex_unlock(&w->mu);
			if (mine)
				discard_entry(ffs, n, w, LOAD_ABANDONED,
					      "unmounted before its writer "
					      "closed it", 0);
		} else {
			store_tmp_unlink(ffs->store, w->tmpname);
			pthread_mutex_lock(&ffs->lock);
			node_unlink(ffs, n);
			pthread_mutex_unlock(&ffs->lock);
		}
		writer_detach(ffs, n, w);
		writer_unref(w);
	}
}

void entry_release_all(struct ffs *ffs)
{
	struct handle *h;

	for (;;) {
		pthread_mutex_lock(&ffs->lock);
		h = ffs->open_handles;
		pthread_mutex_unlock(&ffs->lock);
		if (!h)
			break;
		entry_release(ffs, h);
	}
}

/* ---- unlink, GC removal and rename ---------------------------------- */

/* gc_remove_rows() callback: the row and object of published entry `e`
 * are gone; forget its node and tell the kernel. */
static void forget_removed(void *arg, const struct manifest_entry *e)
{
	struct ffs *ffs = arg;
	const char *symbol = e->symbol, *key = e->key;
	char name[KEY_MAX + ENTRY_SUFFIX_LEN + 1];
	char hkey[LOCK_NAME_MAX + ENTRY_SUFFIX_LEN + 2];
	struct node *sym, *n;

	snprintf(name, sizeof(name), "%s" ENTRY_SUFFIX, key);
	snprintf(hkey, sizeof(hkey), "%s/%s", symbol, name);
	pthread_mutex_lock(&ffs->lock);
	ffs->rows_changed++;
	n = htab_get(ffs->names, hkey);
	if (n && n->kind == NODE_ENTRY && !n->w) {
		node_unlink(ffs, n);
		node_release_locked(ffs, n);
	}
	sym = htab_get(ffs->names, symbol);
	pthread_mutex_unlock(&ffs->lock);
	CTR_ADD(ffs->ctr.unlinks, 1);
	/* only its node id is used: the symbol may be gone by now */
	if (sym)
		ffs->hooks->inval_entry(ffs, sym, name);
}

int entry_remove_batch(struct ffs *ffs, const struct manifest_entry *rows,
		       size_t n, int *results)
{
	return gc_remove_rows(ffs->manifest, ffs->store, rows, n, results,
			      forget_removed, ffs);
}

/* Unlink scratch node `n`; lock held, dropped.  Its tmp file goes
 * first: a store that refuses it (turned read-only) keeps the name, and
 * the error is returned. */
static int remove_scratch_locked(struct ffs *ffs, struct node *n)
{
	struct writer *w = n->w;
	int rc;

	/* all under the lock: once it drops, a forget may free the node */
	if (w) {
		rc = store_tmp_unlink(ffs->store, w->tmpname);
		if (rc < 0 && rc != -ENOENT) {
			pthread_mutex_unlock(&ffs->lock);
			log_err("unlink %s: tmp/%s: %s", n->hkey, w->tmpname,
				strerror(-rc));
			return rc;
		}
	}
	/* the node's reference, now ours */
	__atomic_store_n(&n->w, NULL, __ATOMIC_RELAXED);
	node_unlink(ffs, n);
	node_release_locked(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
	if (w)
		writer_unref(w);
	return 0;
}

int entry_expire_scratch(struct ffs *ffs, int64_t idle_us, int dry_run)
{
	int64_t now = mono_us();
	struct node *n;
	int count = 0, found;

	do {
		found = 0;
		pthread_mutex_lock(&ffs->lock);
		for (n = ffs->all; n; n = n->next_all) {
			if (n->kind == NODE_SCRATCH_DIR && n->linked &&
			    !n->children && now - n->touched_us >= idle_us) {
				/* no tmp file: not counted */
				if (dry_run)
					continue;
				log_info("gc: removing empty scratch directory "
					 "%s, unused for %llds", n->hkey,
					 (long long)((now - n->touched_us) /
						     1000000));
				ffs->hooks->inval_entry(ffs, n->parent,
							n->name);
				node_unlink(ffs, n);
				node_release_locked(ffs, n);
				pthread_mutex_unlock(&ffs->lock);
				found = 1;
				break;
			}
			/* handles is written under w->mu: a racy read only
			 * delays a removal to the next pass */
			if (n->kind != NODE_SCRATCH || !n->linked || !n->w ||
			    n->opens || n->renaming || CTR_GET(n->w->handles) ||
			    now - CTR_GET(n->w->touched_us) < idle_us)
				continue;
			count++;
			if (dry_run)
				continue;
			log_info("gc: removing scratch file %s, unused for "
				 "%llds", n->hkey,
				 (long long)((now - n->w->touched_us) / 1000000));
			ffs->hooks->inval_entry(ffs, n->parent, n->name);
			found = 1;
			/* drops the lock; a store that refuses ends the pass */
			if (remove_scratch_locked(ffs, n) < 0)
				return count - 1;
			break;
		}
		if (!found)
			pthread_mutex_unlock(&ffs->lock);
	} while (found);
	return count;
}

int entry_unlink(struct ffs *ffs, struct node *parent, const char *name)
{
	struct manifest_entry e;
	char key[KEY_MAX + 1];
	struct node *n;
	struct writer *w;
	int kind, removed, rc, tries;

	if (parent->kind == NODE_CONTROL_DIR)
		return control_refuse("unlink", name, -EPERM);
	if (!node_holds_files(parent)) {
		log_info("unlink %s: %s", name,
			 parent->kind == NODE_ROOT
				 ? "a symbol directory is removed with rmdir "
				   "(EISDIR)"
				 : "only files in symbol directories are "
				   "removed (EPERM)");
		return parent->kind == NODE_ROOT ? -EISDIR : -EPERM;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("unlink", name);
	kind = node_child_kind(parent, name, key);
	if (kind < 0)
		return -ENOENT;
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, parent, name);
	if (n && n->kind == NODE_SCRATCH)
		return remove_scratch_locked(ffs, n);
	if (n && n->kind == NODE_SCRATCH_DIR) {
		pthread_mutex_unlock(&ffs->lock);
		return -EISDIR;
	}
	if (n && n->w) {
		/* an in-flight entry: abandon it, as unlinking a file that
		 * is still being written discards what it would become */
		int mine, published;

		w = n->w;
		writer_ref(w); /* its last release may free it meanwhile */
		pthread_mutex_unlock(&ffs->lock);
		pthread_mutex_lock(&w->mu);
		mine = writer_abandon_locked(ffs, n, w);
		published = w->published;
		pthread_mutex_unlock(&w->mu);
		if (mine)
			discard_entry(ffs, n, w, LOAD_ABANDONED,
				      "unlinked while being written", 0);
		writer_unref(w);
		if (!published)
			return mine ? 0 : -ENOENT;
		/* published while we waited for it: unlink the entry */
	} else {
		pthread_mutex_unlock(&ffs->lock);
	}
	if (kind == NAME_SCRATCH)
		return -ENOENT;
	for (tries = 0;; tries++) {
		rc = manifest_get(ffs->manifest, parent->name, key, &e);
		if (rc == 0 && e.state != ENTRY_PUBLISHED)
			rc = -ENOENT;
		if (rc < 0)
			return rc;
		rc = entry_remove_batch(ffs, &e, 1, &removed);
		if (rc == 0)
			rc = removed;
		if (rc != -EBUSY || tries == UNLINK_BUSY_TRIES)
			break;
		/* a GC pass removes it right now: once it is done, the row
		 * is gone (ENOENT, which rm -f takes as done) or free */
		usleep(UNLINK_BUSY_WAIT_US);
	}
	if (rc == -EBUSY)
		log_info("unlink %s/%s: busy (being removed elsewhere)",
			 parent->name, name);
	return rc;
}

/* Publish scratch node `n` under `newname` in `newparent`. */
static int publish_scratch(struct ffs *ffs, struct node *n,
			   struct node *newparent, const char *newname,
			   const char *key)
{
	struct manifest_entry claim;
	struct writer *w = n->w; /* pinned by the caller */
	struct node_in_proc in_proc;
	pid_t mapper;
	int rc;

	/* the kernel holds a shared map's stores until it writes them back:
	 * published now, the entry would miss them, or change under its
	 * readers when they come */
	mapper = proc_tree_maps_file(w->tgid, node_in_proc(ffs, n, &in_proc));
	if (mapper) {
		log_warn("rename %s to %s/%s: process %ld still maps it shared "
			 "and writable, so its stores may not have reached "
			 "featurefs; refused (EBUSY): munmap it first",
			 n->hkey, newparent->name, newname, (long)mapper);
		return -EBUSY;
	}
	pthread_mutex_lock(&w->mu);
	rc = writer_check(ffs, w);
	if (rc < 0) {
		pthread_mutex_unlock(&w->mu);
		CTR_ADD(ffs->ctr.load_failures[w->why], 1);
		log_warn("rename %s to %s/%s: not published: %s (%s)",
			 n->hkey, newparent->name, newname,
			 w->why_detail, load_failure_name(w->why));
		return rc;
	}
	rc = claim_key(ffs, w, newparent->name, key, now_us(), &claim);
	if (rc == -EEXIST)
		log_info("rename %s to %s/%s: the entry exists, and entries "
			 "are immutable (EEXIST: remove it first)", n->hkey,
			 newparent->name, newname);
	if (rc == 0) {
		kept_supersede(ffs, claim.symbol, claim.key);
		struct node *oldparent = n->parent;
		char *oldname = strdup(n->name);

		pthread_mutex_lock(&ffs->lock);
		rc = oldname ? node_rename(ffs, n, newparent, newname) : -ENOMEM;
		pthread_mutex_unlock(&ffs->lock);
		if (rc == 0) {
			rc = publish_writer(ffs, n, w, newparent, key);
			if (rc < 0) {
				/* a failed rename changes nothing: the scratch
				 * file keeps its name and its tmp file */
				pthread_mutex_lock(&ffs->lock);
				node_rename(ffs, n, oldparent, oldname);
				pthread_mutex_unlock(&ffs->lock);
			}
		}
		if (rc < 0) {
			abandon_claim(ffs, newparent->name, key);
			log_warn("rename to %s/%s: not published: %s",
				 newparent->name, newname, w->why_detail);
		}
		free(oldname);
	}
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		ffs->hooks->inval_inode(ffs, n);
	return rc;
}

int entry_rename(struct ffs *ffs, struct node *oldparent, const char *oldname,
		 struct node *newparent, const char *newname,
		 unsigned int flags)
{
	char key[KEY_MAX + 1], oldkey[KEY_MAX + 1];
	struct node *n, *target;
	int kind, rc;

	if (flags & ~RENAME_NOREPLACE) {
		log_info("rename %s to %s: %s is not supported", oldname,
			 newname, flags & RENAME_EXCHANGE ? "RENAME_EXCHANGE"
							  : "RENAME_WHITEOUT");
		return -EINVAL;
	}
	if (oldparent->kind == NODE_ROOT && newparent->kind == NODE_ROOT &&
	    name_check_symbol(oldname) == 0 &&
	    name_check_symbol(newname) == 0) {
		if (ffs->opt.read_only)
			return ffs_refuse_read_only("rename", oldname);
		log_info("rename %s to %s: a symbol directory is moved by "
			 "copying it (EXDEV)", oldname, newname);
		return -EXDEV;
	}
	if (!node_holds_files(oldparent) || !node_holds_files(newparent)) {
		log_info("rename %s/%s to %s/%s: only scratch files in symbol "
			 "directories can be renamed",
			 oldparent->hkey ? oldparent->hkey : "", oldname,
			 newparent->hkey ? newparent->hkey : "", newname);
		return -EPERM;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("rename", oldname);
	kind = node_child_kind(newparent, newname, key);
	if (node_child_kind(oldparent, oldname, oldkey) == NAME_ENTRY) {
		/* mv copies on EXDEV, then unlinks: a copy under a scratch
		 * name would be discarded and the entry lost (a name that
		 * is neither fails at the copy's create) */
		if (kind >= 0 &&
		    (newparent->kind != NODE_SYMBOL || kind != NAME_ENTRY)) {
			log_info("rename %s/%s to %s/%s: an entry moves only "
				 "to another <key>.parquet", oldparent->hkey,
				 oldname, newparent->hkey, newname);
			return -EPERM;
		}
		pthread_mutex_lock(&ffs->lock);
		target = node_find_locked(ffs, newparent, newname);
		rc = target && target->linked ? -EEXIST : -EXDEV;
		pthread_mutex_unlock(&ffs->lock);
		log_info("rename %s/%s to %s/%s: %s", oldparent->hkey, oldname,
			 newparent->hkey, newname,
			 rc == -EEXIST ? "the entry exists, and entries are "
					 "immutable (EEXIST: remove it first)"
				       : "entries are immutable, one is moved "
					 "by copying it (EXDEV)");
		return rc;
	}
	if (kind < 0) {
		log_info("rename to %s/%s: not <key>.parquet nor a scratch "
			 "name", newparent->hkey, newname);
		return kind;
	}
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, oldparent, oldname);
	if (n && n->kind == NODE_SCRATCH_DIR) {
		pthread_mutex_unlock(&ffs->lock);
		log_info("rename %s/%s: a scratch directory is moved by "
			 "copying it (EXDEV)", oldparent->hkey, oldname);
		return -EXDEV;
	}
	if (!n || n->kind != NODE_SCRATCH) {
		pthread_mutex_unlock(&ffs->lock);
		return -ENOENT;
	}
	if (kind == NAME_ENTRY) {
		struct writer *w = n->w;

		/* the kernel holds the directories' locks against an unlink;
		 * GC's expiry of idle scratch files must be told */
		writer_ref(w);
		n->renaming = 1;
		pthread_mutex_unlock(&ffs->lock);
		rc = publish_scratch(ffs, n, newparent, newname, key);
		pthread_mutex_lock(&ffs->lock);
		n->renaming = 0;
		pthread_mutex_unlock(&ffs->lock);
		writer_unref(w);
		return rc;
	}
	target = node_find_locked(ffs, newparent, newname);
	if (target == n) {
		pthread_mutex_unlock(&ffs->lock);
		return 0;
	}
	if (target && (flags & RENAME_NOREPLACE)) {
		pthread_mutex_unlock(&ffs->lock);
		return -EEXIST;
	}
	if (target && target->kind == NODE_SCRATCH_DIR) {
		pthread_mutex_unlock(&ffs->lock);
		return -EISDIR;
	}
	if (target) {
		rc = remove_scratch_locked(ffs, target);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&ffs->lock);
	}
	rc = node_rename(ffs, n, newparent, newname);
	pthread_mutex_unlock(&ffs->lock);
	return rc;
}

/* ---- attributes ----------------------------------------------------- */

static int64_t requested_mtime_ns(const struct setattr_req *r)
{
	if (r->mtime.tv_nsec == UTIME_NOW)
		return now_us() * 1000;
	return timespec_to_ns(&r->mtime);
}

/* Refuse a change to something that cannot change; a no-op is fine. */
static int check_fixed(struct ffs *ffs, const struct node *n,
		       const struct setattr_req *r, mode_t mode, off_t size,
		       const char *why)
{
	const char *what = NULL;

	if ((r->valid & SETATTR_MODE) && (r->mode & 07777) != (mode & 07777))
		what = "chmod";
	else if ((r->valid & SETATTR_UID) && r->uid != ffs->uid)
		what = "chown";
	else if ((r->valid & SETATTR_GID) && r->gid != ffs->gid)
		what = "chgrp";
	else if ((r->valid & SETATTR_SIZE) && r->size != size)
		what = "truncate";
	if (!what)
		return 0;
	log_info("%s %s: %s", what, n->hkey ? n->hkey : "/", why);
	return -EPERM;
}

/*
 * setattr of a published entry: its times may change, and its mode when
 * the caller is the process that wrote it (install(1) and Python's
 * shutil.copy chmod after close(), which may land after the publish).
 */
static int setattr_published(struct ffs *ffs, struct node *n,
			     const struct setattr_req *r)
{
	struct manifest_attrs a = { 0 };
	struct setattr_req fixed = *r;
	pid_t writer;
	mode_t mode;
	off_t size;
	int rc, linked;

	pthread_mutex_lock(&ffs->lock);
	mode = n->mode;
	size = (off_t)n->size;
	writer = n->writer_tgid;
	linked = n->linked;
	pthread_mutex_unlock(&ffs->lock);
	if ((r->valid & SETATTR_MODE) && writer &&
	    proc_tgid_of(r->pid) == writer) {
		fixed.valid &= ~SETATTR_MODE;
		a.set |= MANIFEST_SET_MODE;
		a.mode = r->mode & 0777;
	}
	rc = check_fixed(ffs, n, &fixed, mode, size,
			 "published entries are immutable");
	if (rc < 0)
		return rc;
	if (r->valid & SETATTR_MTIME) {
		a.set |= MANIFEST_SET_MTIME;
		a.mtime_ns = requested_mtime_ns(r);
	}
	if (!a.set)
		return 0;
	a.ctime_ns = now_us() * 1000;
	/* removed, open still: its row is gone, or another entry's now */
	rc = linked ? manifest_set_attrs(ffs->manifest, n->parent->name,
					 n->key, &a)
		    : 0;
	if (rc == 0) {
		pthread_mutex_lock(&ffs->lock);
		ffs->rows_changed++;
		if (a.set & MANIFEST_SET_MODE)
			n->mode = a.mode;
		if (a.set & MANIFEST_SET_MTIME)
			n->mtime_ns = a.mtime_ns;
		n->ctime_ns = a.ctime_ns;
		pthread_mutex_unlock(&ffs->lock);
	}
	return rc;
}

/* setattr of data still being written; `caller` is the process that
 * resizes or chmods an entry by path (0 when none does, or through the
 * writer's own handle).  -EAGAIN when it got published meanwhile.
 * w->mu held. */
static int setattr_writer(struct ffs *ffs, struct node *n, struct writer *w,
			  pid_t caller, const struct setattr_req *r)
{
	struct setattr_req owner_only = *r;
	const char *what = NULL;
	int rc;

	if (w->published)
		return -EAGAIN;
	/* an entry's size is its writer's: another process's truncate(2)
	 * would cut the data under it, and is refused as its write-open is;
	 * and its mode is, as it is once published */
	if (caller && caller != w->tgid) {
		if (r->valid & SETATTR_SIZE)
			what = "truncate";
		else if ((r->valid & SETATTR_MODE) &&
			 (r->mode & 07777) != (CTR_GET(w->mode) & 07777))
			what = "chmod";
	}
	if (what) {
		log_info("%s %s/%s: in flight, written by another process",
			 what, n->parent->name, n->name);
		return -EPERM;
	}
	CTR_SET(w->touched_us, mono_us());
	owner_only.valid &= SETATTR_UID | SETATTR_GID;
	rc = check_fixed(ffs, n, &owner_only, 0, 0,
			 "files belong to the mounting user");
	if (rc == 0 && (r->valid & SETATTR_SIZE))
		rc = writer_unseal(ffs, n, w);
	if (rc == 0 && (r->valid & SETATTR_SIZE))
		rc = writer_truncate(w, (uint64_t)r->size);
	if (rc < 0)
		return rc;
	if (r->valid & SETATTR_MODE) {
		CTR_SET(w->mode, r->mode & 0777);
		if (n->kind == NODE_SCRATCH && fchmod(w->fd, r->mode & 0777) < 0)
			log_debug("chmod tmp/%s: %s", w->tmpname, strerror(errno));
	}
	if (r->valid & SETATTR_MTIME)
		CTR_SET(w->mtime_ns, requested_mtime_ns(r));
	CTR_SET(w->ctime_ns, now_us() * 1000);
	/* closed already (chmod, utime after close()): what recovery
	 * would publish takes them too */
	if (w->sealed && (r->valid & (SETATTR_MODE | SETATTR_MTIME)))
		writer_seal_attrs(ffs, n, w);
	return 0;
}

int entry_setattr(struct ffs *ffs, struct node *n, struct handle *h,
		  const struct setattr_req *r)
{
	pid_t caller = 0;
	struct writer *w;
	int rc, co_writer = 0;

	switch (n->kind) {
	case NODE_ROOT:
	case NODE_SYMBOL: {
		struct setattr_req fixed = *r;

		if (r->valid & SETATTR_SIZE)
			return -EISDIR;
		/* times of directories are derived; setting them is
		 * accepted and has no effect, and so is a mode that keeps
		 * every bit of 0755 (cp -a and rsync -a copy a umask-002
		 * tree's 0775): what it adds featurefs does not give, and
		 * taking a bit away is refused rather than ignored */
		if ((r->valid & SETATTR_MODE) && (r->mode & 0755) == 0755) {
			log_debug("chmod %s to %04o: directories stay 0755",
				  n->hkey ? n->hkey : "/",
				  (unsigned)(r->mode & 07777));
			fixed.valid &= ~SETATTR_MODE;
		}
		return check_fixed(ffs, n, &fixed, 0755, 0,
				   "directories are managed by featurefs");
	}
	case NODE_SCRATCH_DIR:
		/* private to the mount: its mode is its creator's to set */
		if (r->valid & SETATTR_SIZE)
			return -EISDIR;
		rc = check_fixed(ffs, n, r, r->mode, 0,
				 "scratch directories belong to the mount");
		if (rc == 0 && (r->valid & SETATTR_MODE)) {
			pthread_mutex_lock(&ffs->lock);
			n->mode = r->mode & 0777;
			pthread_mutex_unlock(&ffs->lock);
		}
		return rc;
	case NODE_CONTROL_DIR:
		return control_refuse("setattr", NULL, -EPERM);
	case NODE_CONTROL_FILE:
		return control_refuse("setattr", n->name, -EPERM);
	default:
		break;
	}
	/* who truncates or chmods an entry by path matters if it is in
	 * flight; read /proc before taking any lock */
	if ((r->valid & (SETATTR_SIZE | SETATTR_MODE)) &&
	    n->kind == NODE_ENTRY && !(h && h->kind == HANDLE_WRITER))
		caller = proc_tgid_of(r->pid);
	/* fchmod(2) carries no handle: a process that holds the entry open
	 * for writing (a child given the writer's descriptor) may set the
	 * mode, as it may write */
	if (caller && (r->valid & SETATTR_MODE) && !(r->valid & SETATTR_SIZE) &&
	    __atomic_load_n(&n->w, __ATOMIC_RELAXED)) {
		struct node_in_proc in_proc;

		co_writer = proc_tree_writes_file(caller,
						  node_in_proc(ffs, n, &in_proc));
	}
	for (;;) {
		pthread_mutex_lock(&ffs->lock);
		w = n->w;
		if (!w) {
			pthread_mutex_unlock(&ffs->lock);
			return setattr_published(ffs, n, r);
		}
		/* alive while we hold ffs->lock, pinned after */
		writer_ref(w);
		pthread_mutex_unlock(&ffs->lock);
		pthread_mutex_lock(&w->mu);
		rc = setattr_writer(ffs, n, w, co_writer ? 0 : caller, r);
		pthread_mutex_unlock(&w->mu);
		writer_unref(w);
		/* published while we waited for it: it is an entry now */
		if (rc != -EAGAIN)
			return rc;
	}
}

int entry_fallocate(struct ffs *ffs, struct handle *h, int mode, off_t off,
		    off_t len)
{
	struct writer *w;
	uint64_t end = (uint64_t)off + (uint64_t)len;
	int rc;

	if (h && h->kind == HANDLE_OBJECT) {
		log_info("fallocate %s: published entries are immutable "
			 "(EPERM)", h->node->hkey);
		return -EPERM;
	}
	if (!h || h->kind != HANDLE_WRITER)
		return -EBADF;
	/* what moves bytes (collapse, insert) is not for a file written
	 * in order; what zeroes them is passed on */
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
		     FALLOC_FL_ZERO_RANGE)) {
		log_info("fallocate %s: mode 0x%x is not supported",
			 h->node->hkey, (unsigned)mode);
		return -EOPNOTSUPP;
	}
	w = h->w;
	pthread_mutex_lock(&w->mu);
	if (w->published) {
		rc = refuse_late_write(ffs, w, h, "fallocate");
		goto out;
	}
	rc = writer_unseal(ffs, h->node, w);
	if (rc < 0)
		goto out;
	if (fallocate(w->fd, mode, off, len) < 0) {
		rc = -errno;
		log_info("fallocate %s: %s", h->node->hkey, strerror(-rc));
		goto out;
	}
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		w->hash_broken = 1; /* bytes already hashed changed */
		w->gen++;
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > w->size) {
		CTR_SET(w->size, end);
		w->hash_broken = 1;
		w->gen++;
	}
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}
