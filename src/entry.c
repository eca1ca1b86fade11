/*
 * entry.c - the life of an entry (SPEC §3): claim on create, streamed
 * writes and hashing, validation on close, publish on the last release
 * (discard as soon as it can never be published: on close, unlink or a
 * failed publish), readers waiting for an in-flight key, unlink, rename
 * of a scratch file into place, and the few attribute changes allowed.
 *
 * This file has the writer (its tmp file, hashed as it is written) and
 * the handles the kernel holds: create, open, read, write, fsync and the
 * release of a handle.  The rest of the entry module, which shares
 * entry_int.h: entry_publish.c (close, publish, discard, kept writes),
 * entry_wait.c (waiting readers), entry_remove.c (unlink, GC removal,
 * rename) and entry_attr.c (setattr, fallocate).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "control.h"
#include "entry_int.h"
#include "fdio.h"
#include "ffs.h"
#include "log.h"
#include "names.h"
#include "proc.h"

#define WRITER_KIND_ENTRY "entry"
#define WRITER_KIND_SCRATCH "scratch"

/* The errno for a descriptor the daemon could not get: running out of
 * its own is ENFILE to the caller, whose limit it is not. */
int entry_fd_errno(int rc)
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

/* Descriptors a create leaves free for the publishes of the writes in
 * flight, each of which needs one more to put its object in place: one
 * that could not would turn a write its close() accepted into a miss. */
#define PUBLISH_FD_HEADROOM 16

/* Whether descriptor `fd`, just the lowest free one, leaves that many. */
static int leaves_fd_headroom(int fd)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
	       rl.rlim_cur == RLIM_INFINITY ||
	       (rlim_t)fd + PUBLISH_FD_HEADROOM < rl.rlim_cur;
}

/* A writer with one reference for thread `pid`'s create with `mode`: a
 * new tmp file of `kind` (WRITER_KIND_*: its name's last part) and
 * a SHA-256 under way.  0, or a negative errno, logged, with nothing
 * left behind; on success the tmp file exists, and the caller's failure
 * path unlinks it. */
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
	if (rc >= 0 && !leaves_fd_headroom(rc)) {
		close(rc);
		store_tmp_unlink(ffs->store, w->tmpname);
		rc = -EMFILE;
	}
	if (rc < 0) {
		char what[64];

		rc = entry_fd_errno(rc);
		snprintf(what, sizeof(what), "create tmp/%s file", kind);
		if (rc == -ENFILE)
			ffs_log_out_of_fds(ffs, what);
		else
			log_err("%s: %s", what, strerror(-rc));
		goto fail;
	}
	w->fd = rc;
	w->tgid = proc_tgid_of(pid);
	w->tid = pid;
	w->tid_start = proc_start_time(pid);
	w->tgid_start = w->tgid == pid ? w->tid_start
				       : proc_start_time(w->tgid);
	w->touched_us = mono_us();
	w->created_ts = now_us();
	w->atime_ns = w->mtime_ns = w->ctime_ns = us_to_ns(w->created_ts);
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
	coverage_free(&w->covered);
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

/* ---- create and open ------------------------------------------------ */

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
	if (kind == -ENAMETOOLONG && strlen(name) > NAME_BYTES_MAX) {
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
		rc = entry_claim_key(ffs, w, parent->name, key, w->created_ts,
				     &e);
		if (rc == -EEXIST && !(flags & O_EXCL))
			log_info("create %s/%s: the entry exists, published or "
				 "in flight (EEXIST)", e.symbol, name);
		else if (rc < 0 && rc != -EEXIST)
			log_err("claim %s/%s: %s", e.symbol, e.key,
				strerror(-rc));
		if (rc < 0)
			goto fail;
		entry_kept_supersede(ffs, e.symbol, e.key);
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
		entry_abandon_claim(ffs, parent->name, key);
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

	return fd < 0 ? entry_fd_errno(-errno) : fd;
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
	fd = entry_fd_errno(store_object_open(ffs->store, rel));
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

/* Whether an earlier life of entry `n`'s name, unlinked or discarded, is
 * still open for writing somewhere: a descriptor of it shows the same
 * inode number as `n`, and its name marked " (deleted)", as `n`'s own
 * do once its name is invalidated.  Lock held. */
static int earlier_life_open_locked(struct ffs *ffs, const struct node *n)
{
	const struct node *o;

	if (!CTR_GET(ffs->abandoned_open))
		return 0;
	for (o = ffs->all; o; o = o->next_all)
		if (o != n && !o->linked && o->w && o->st_ino == n->st_ino &&
		    CTR_GET(o->w->handles) > 0 && strcmp(o->hkey, n->hkey) == 0)
			return 1;
	return 0;
}

/* Node `n` as /proc shows it to the processes that use this mount (a
 * descriptor of another mount, or of an earlier mount of this store, is
 * not it); the name is kept in `p`.  ffs->lock not held. */
const struct proc_file *entry_node_in_proc(struct ffs *ffs,
					   const struct node *n,
					   struct node_in_proc *p)
{
	p->file.mount = ffs->mounted_as.id ? &ffs->mounted_as : NULL;
	p->file.ino = n->st_ino;
	p->file.suffix = p->suffix;
	snprintf(p->suffix, sizeof(p->suffix), "/%s", n->hkey);
	p->file.deleted_is_other = 0;
	if (node_kind(n) == NODE_ENTRY) {
		pthread_mutex_lock(&ffs->lock);
		p->file.deleted_is_other = earlier_life_open_locked(ffs, n);
		pthread_mutex_unlock(&ffs->lock);
	}
	return &p->file;
}

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
	__atomic_store_n(&n->size, (uint64_t)(*h)->len, __ATOMIC_RELAXED);
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
	enum node_kind nkind;
	int fd = -1, backing_id = 0, settled = 0, writer_checked = 0, rc;

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

again:
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
		/* removed since the kernel looked the name up (or reopened
		 * through /proc/PID/fd): gone, for a read.  A write-open may
		 * carry O_CREAT, which FUSE does not pass on: ESTALE has the
		 * kernel look again, and create */
		pthread_mutex_unlock(&ffs->lock);
		if (!writing && log_limit_pass(&ffs->gone_log) >= 0)
			log_info("open %s: removed since it was found (ENOENT; "
				 "a reopen of a removed entry through "
				 "/proc/PID/fd has no object left to open; said "
				 "once a minute)", n->hkey);
		return writing ? -ESTALE : -ENOENT;
	}
	if (writing && w) {
		writer_ref(w); /* the handle's, if it may have one */
		pthread_mutex_unlock(&ffs->lock);
		if (proc_writes_file(proc_tgid_of(pid),
				     entry_node_in_proc(ffs, n, &in_proc))) {
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
		/* the writer's thread reads back what it wrote; any other
		 * waits, its own process's too: a thread that found the key
		 * in flight (the single-flight protocol run in threads) is
		 * a reader, and the data is not there yet.  A thread outside
		 * the mount's pid namespace (0) cannot be told apart */
		if (pid == 0 || pid != w->tid) {
			pthread_mutex_unlock(&ffs->lock);
			return -EINPROGRESS;
		}
		if (!writer_checked) {
			/* and it is that thread, not one given its id since
			 * it ended: still the same task, and its process
			 * (or a child) still writes the entry */
			uint64_t start = w->tid_start;

			pthread_mutex_unlock(&ffs->lock);
			if (!proc_is_task(pid, start) ||
			    !proc_tree_writes_file(
				    proc_tgid_of(pid),
				    entry_node_in_proc(ffs, n, &in_proc)))
				return -EINPROGRESS;
			writer_checked = 1;
			goto again;
		}
		if (!settled) {
			/* right after its close(): the entry it published, a
			 * hit like any other read of it */
			writer_ref(w);
			pthread_mutex_unlock(&ffs->lock);
			if (writer_lock_settled(w) == 0)
				pthread_mutex_unlock(&w->mu);
			writer_unref(w);
			settled = 1;
			goto again;
		}
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

off_t entry_seek_data(struct handle *h, off_t off, int whence)
{
	uint64_t size;
	off_t found;
	int fd;

	if (h->kind == HANDLE_WRITER || h->kind == HANDLE_TMP_READ) {
		fd = h->kind == HANDLE_WRITER ? h->w->fd : h->fd;
		/* positional I/O only on these: the offset it moves is
		 * unused */
		found = lseek(fd, off, whence);
		return found < 0 ? -errno : found;
	}
	/* a published entry is data throughout, as its st_blocks says (a
	 * passed-through one has no descriptor here, and its name may be
	 * another life's by now) */
	size = h->kind == HANDLE_CONTROL ? h->len : h->node->size;
	if (off < 0 || (uint64_t)off >= size)
		return -ENXIO;
	return whence == SEEK_DATA ? off : (off_t)size;
}

/* Truncate or extend the writer's data to `size`; w->mu held. */
int writer_truncate(struct writer *w, uint64_t size)
{
	int64_t now_ns;

	if (ftruncate(w->fd, (off_t)size) < 0)
		return -errno;
	coverage_truncate(&w->covered, size);
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
int entry_refuse_late_write(struct ffs *ffs, struct writer *w,
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

/* Whether the tmp file of `w` grew past the size its writes gave it: a
 * failed write left part of itself there.  w->mu held. */
static int landed_past_end(struct writer *w)
{
	struct stat st;

	return fstat(w->fd, &st) < 0 || (uint64_t)st.st_size > CTR_GET(w->size);
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
		rc = entry_refuse_late_write(ffs, w, h, "write");
		goto out;
	}
	rc = writer_unseal(ffs, h->node, w);
	if (rc < 0)
		goto out;
	rc = store_pwrite(w->fd, buf, size, off);
	if (rc < 0) {
		/* a write past the largest file the store's filesystem
		 * takes that left nothing behind is refused, as there; any
		 * other failure leaves data the writer counts on missing */
		if (rc == -EFBIG && !landed_past_end(w)) {
			log_info("write %s at byte %lld: past the largest file "
				 "the store takes (a file-size limit, or its "
				 "filesystem's): refused, nothing written (EFBIG)",
				 h->node->hkey, (long long)off);
			goto out;
		}
		if (!w->write_err)
			w->write_err = (int)rc;
		w->gen++;
		goto out;
	}
	/* a hash that cannot follow is computed again at the publish */
	if (!w->hash_broken && (uint64_t)off == w->hashed &&
	    EVP_DigestUpdate(w->sha, buf, size)) {
		w->hashed += size;
	} else {
		w->hash_broken = 1;
	}
	coverage_add(&w->covered, (uint64_t)off, size);
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

/* ---- release of handles --------------------------------------------- */

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
