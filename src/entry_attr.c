/*
 * entry_attr.c - the few attribute changes allowed: setattr (chmod,
 * chown, truncate, utimes) and fallocate.  A published entry takes new
 * times, and a new mode from the process that wrote it; an entry in
 * flight is its writer's to change, and a sealed one's row takes its new
 * times and mode for recovery; directories keep theirs.  Part of the
 * entry module (entry.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "control.h"
#include "entry_int.h"
#include "ffs.h"
#include "log.h"
#include "proc.h"

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

/* A time utimensat(2) sets: `ts`, or now for UTIME_NOW. */
static int64_t requested_ns(const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_NOW)
		return now_us() * 1000;
	return timespec_to_ns(ts);
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
	uint64_t writer_start;
	mode_t mode;
	off_t size;
	int rc, linked;

	pthread_mutex_lock(&ffs->lock);
	mode = n->mode;
	size = (off_t)n->size;
	writer = n->writer_tgid;
	writer_start = n->writer_start;
	linked = n->linked;
	pthread_mutex_unlock(&ffs->lock);
	if ((r->valid & SETATTR_MODE) && writer &&
	    proc_tgid_of(r->pid) == writer &&
	    proc_is_task(writer, writer_start)) {
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
		a.mtime_ns = requested_ns(&r->mtime);
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
 * writer's own handle).  0, a negative errno, or 1 when it got published
 * meanwhile.  w->mu held. */
static int setattr_writer(struct ffs *ffs, struct node *n, struct writer *w,
			  pid_t caller, const struct setattr_req *r)
{
	struct setattr_req owner_only = *r;
	const char *what = NULL;
	int rc;

	if (w->published)
		return 1;
	/* an entry's size is its writer's: another process's truncate(2)
	 * would cut the data under it, and is refused as its write-open is;
	 * and its mode is, as it is once published */
	if (caller &&
	    (caller != w->tgid || !proc_is_task(caller, w->tgid_start))) {
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
		if (node_kind(n) == NODE_SCRATCH && fchmod(w->fd, r->mode & 0777) < 0)
			log_debug("chmod tmp/%s: %s", w->tmpname, strerror(errno));
	}
	if (r->valid & SETATTR_ATIME)
		CTR_SET(w->atime_ns, requested_ns(&r->atime));
	if (r->valid & SETATTR_MTIME)
		CTR_SET(w->mtime_ns, requested_ns(&r->mtime));
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

	/* a scratch file's kind turns to entry when it is published */
	switch (node_kind(n)) {
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
	    node_kind(n) == NODE_ENTRY && !(h && h->kind == HANDLE_WRITER))
		caller = proc_tgid_of(r->pid);
	/* fchmod(2) carries no handle: a process that holds the entry open
	 * for writing (a child given the writer's descriptor) may set the
	 * mode, as it may write */
	if (caller && (r->valid & SETATTR_MODE) && !(r->valid & SETATTR_SIZE) &&
	    __atomic_load_n(&n->w, __ATOMIC_RELAXED)) {
		struct node_in_proc in_proc;
		const struct proc_file *file;

		file = entry_node_in_proc(ffs, n, &in_proc);
		co_writer = proc_tree_writes_file(caller, file);
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
		if (rc != 1)
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
		rc = entry_refuse_late_write(ffs, w, h, "fallocate");
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
		/* zeros the writer asked for: written, if as a hole; past
		 * the end with KEEP_SIZE only space is reserved, and what
		 * lands there later must still be written */
		uint64_t zeroed = (mode & FALLOC_FL_KEEP_SIZE) && end > w->size
					  ? w->size
					  : end;

		if (zeroed > (uint64_t)off)
			coverage_add(&w->covered, (uint64_t)off,
				     zeroed - (uint64_t)off);
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
