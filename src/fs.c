/*
 * fs.c - FUSE lowlevel operations: kernel requests in, store results out.
 *
 * This is the only file that answers libfuse's requests (passthrough.c
 * sits under libfuse, as its custom I/O, to add the kernel's passthrough
 * fields to INIT and OPEN replies).  Node ids are
 * node pointers (root is 1).  Replies that reach back into the kernel on
 * their own initiative (invalidations) go through a queue served by one
 * notifier thread, because the kernel may hold the very directory lock an
 * invalidation needs while it waits for the request that caused it.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "access.h"
#include "clock.h"
#include "fault.h"
#include "ffs.h"
#include "fs.h"
#include "log.h"
#include "passthrough.h"
#include "watchdog.h"

#define READ_BUF_SIZE (1u << 20)
#define READAHEAD_KB 1024	/* a frame, and the largest READ */
#define SPLICE_READ_MAX (256u << 10)
#define STOP_SERVE_US 1000000	/* see notifier_stop */

enum notice_kind { NOTICE_INODE, NOTICE_ENTRY };

struct notice {
	struct notice *next;
	enum notice_kind kind;
	fuse_ino_t ino;			/* inode, or parent for NOTICE_ENTRY */
	char name[256];
};

struct fs_state {
	struct fuse_session *se;
	int mounted;
	unsigned conn;		/* the kernel's name for it, 0 if unknown */
	int signals;		/* our handlers are installed */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct notice *head, *tail;
	pthread_t notifier;
	int notifier_started;
	int notifier_busy;	/* inside the kernel with a notice */
	int stop;		/* notices are dropped from now on */
	struct dir_handle *dirs;	/* open directories, under mu: freed
					 * at unmount if no RELEASEDIR came */
	pthread_key_t read_buf;
};

/* A read-open waiting for its entry, with what the reply needs. */
struct fs_waiter {
	struct waiter w;
	fuse_req_t req;
	struct fuse_file_info fi;
};

/* An open directory: the listing taken at opendir, taken again when a
 * reader that has read it goes back to the start (rewinddir), so that
 * names removed or added before the rewind are not shown or missed. */
struct dir_handle {
	struct dir_listing listing;
	int read;	/* a readdir has been answered from this listing */
	struct dir_handle *prev, *next;	/* fs_state.dirs */
};

static struct ffs *ffs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_state *fs_of(struct ffs *ffs)
{
	return ffs->fuse;
}

static fuse_ino_t nodeid_of(struct ffs *ffs, struct node *n)
{
	return n == &ffs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* ---- invalidations -------------------------------------------------- */

static void queue_notice(struct ffs *ffs, enum notice_kind kind,
			 fuse_ino_t ino, const char *name)
{
	struct fs_state *fs = fs_of(ffs);
	struct notice *nt = calloc(1, sizeof(*nt));

	if (!nt)
		return; /* the cache entry just lives until its timeout */
	nt->kind = kind;
	nt->ino = ino;
	if (name)
		snprintf(nt->name, sizeof(nt->name), "%s", name);
	pthread_mutex_lock(&fs->mu);
	if (fs->stop) {
		pthread_mutex_unlock(&fs->mu);
		free(nt);
		return;
	}
	if (fs->tail)
		fs->tail->next = nt;
	else
		fs->head = nt;
	fs->tail = nt;
	pthread_cond_signal(&fs->cond);
	pthread_mutex_unlock(&fs->mu);
}

static void hook_inval_inode(struct ffs *ffs, struct node *n)
{
	queue_notice(ffs, NOTICE_INODE, nodeid_of(ffs, n), NULL);
}

static void hook_inval_entry(struct ffs *ffs, struct node *parent,
			     const char *name)
{
	queue_notice(ffs, NOTICE_ENTRY, nodeid_of(ffs, parent), name);
}

static void *notifier_main(void *arg)
{
	struct ffs *ffs = arg;
	struct fs_state *fs = fs_of(ffs);
	struct notice *nt;
	int rc;

	pthread_mutex_lock(&fs->mu);
	for (;;) {
		while (!fs->head && !fs->stop)
			pthread_cond_wait(&fs->cond, &fs->mu);
		if (!fs->head)
			break;
		nt = fs->head;
		fs->head = nt->next;
		if (!fs->head)
			fs->tail = NULL;
		fs->notifier_busy = 1;
		pthread_mutex_unlock(&fs->mu);
		if (nt->kind == NOTICE_INODE)
			rc = fuse_lowlevel_notify_inval_inode(fs->se, nt->ino,
							      0, 0);
		else
			rc = fuse_lowlevel_notify_inval_entry(
				fs->se, nt->ino, nt->name, strlen(nt->name));
		if (rc < 0 && rc != -ENOENT)
			log_debug("kernel invalidation: %s", strerror(-rc));
		free(nt);
		pthread_mutex_lock(&fs->mu);
		fs->notifier_busy = 0;
	}
	pthread_mutex_unlock(&fs->mu);
	return NULL;
}

/* Read and answer one request if one comes within `ms`. */
static void serve_one_request(struct fs_state *fs, int ms)
{
	struct pollfd p = { .fd = fuse_session_fd(fs->se), .events = POLLIN };
	struct fuse_buf buf = { 0 };

	if (poll(&p, 1, ms) == 1 && (p.revents & POLLIN) &&
	    fuse_session_receive_buf(fs->se, &buf) > 0)
		fuse_session_process_buf(fs->se, &buf);
	free(buf.mem);
}

/* Stop and join the notifier, dropping the notices it has not sent.  The
 * one it is sending may wait in the kernel for a directory lock held by
 * a request that came in as the loop stopped (a LOOKUP there): requests
 * are answered here until it is out.  libfuse's loop drops a request it
 * reads as it stops, so after STOP_SERVE_US the connection is aborted:
 * what closing /dev/fuse would do, if the notifier did not hold it. */
static void notifier_stop(struct fs_state *fs)
{
	int64_t deadline = mono_us() + STOP_SERVE_US;
	struct notice *nt;
	int aborted = 0;

	pthread_mutex_lock(&fs->mu);
	fs->stop = 1;
	while ((nt = fs->head)) {
		fs->head = nt->next;
		free(nt);
	}
	fs->tail = NULL;
	pthread_cond_signal(&fs->cond);
	while (fs->notifier_busy && !aborted) {
		pthread_mutex_unlock(&fs->mu);
		if (mono_us() < deadline) {
			serve_one_request(fs, 100);
		} else {
			int rc = watchdog_abort(fs->conn);

			if (rc < 0)
				log_err("stop: an invalidation waits on a lost "
					"request; aborting FUSE connection "
					"%u: %s (umount -f the mount)",
					fs->conn, strerror(-rc));
			else
				log_warn("stop: an invalidation waited on a "
					 "lost request: aborted the FUSE "
					 "connection");
			aborted = 1;
		}
		pthread_mutex_lock(&fs->mu);
	}
	pthread_mutex_unlock(&fs->mu);
	if (fs->notifier_started)
		pthread_join(fs->notifier, NULL);
	fs->notifier_started = 0;
}

/* ---- replies -------------------------------------------------------- */

/* What a LOOKUP, CREATE or READDIRPLUS tells the kernel of node `n`. */
static void fill_entry_param(struct ffs *ffs, struct node *n,
			     struct fuse_entry_param *e)
{
	double timeout;

	memset(e, 0, sizeof(*e));
	ffs_getattr(ffs, n, &e->attr, &timeout);
	e->ino = nodeid_of(ffs, n);
	e->attr_timeout = timeout;
	e->entry_timeout = ffs_entry_timeout(n, timeout);
}

static void reply_entry(fuse_req_t req, struct ffs *ffs, struct node *n)
{
	struct fuse_entry_param e;

	fill_entry_param(ffs, n, &e);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		ffs_forget(ffs, n, 1); /* the kernel never got it */
}

/* Release `h`: uncount it for passthrough, then the rest. */
static void release_handle(struct ffs *ffs, struct handle *h)
{
	passthrough_release(ffs, h);
	entry_release(ffs, h);
}

/* Reply to an open with handle `h`, choosing cache flags by its kind. */
static void reply_open(fuse_req_t req, struct ffs *ffs,
		       struct fuse_file_info *fi, struct handle *h)
{
	int passthrough, rc;

	fi->fh = (uint64_t)(uintptr_t)h;
	switch (h->kind) {
	case HANDLE_OBJECT:
		/* immutable: keep the page cache, nothing to flush; or,
		 * better, let the kernel read the object itself */
		fi->keep_cache = 1;
		fi->noflush = 1;
		break;
	case HANDLE_CONTROL:
		/* generated on each open: no size to cache pages by */
		fi->direct_io = 1;
		break;
	case HANDLE_TMP_READ:
		/* through the inode's page cache, which the writer's own
		 * writes keep current: so it can be mapped */
	case HANDLE_WRITER:
		break;
	}
	passthrough = passthrough_open(ffs, h);
	rc = fuse_reply_open(req, fi);
	if (passthrough)
		passthrough_disarm(ffs, h);
	if (rc == -ENOENT)
		release_handle(ffs, h);
}

/* ---- waiting opens -------------------------------------------------- */

static void waiter_interrupted(fuse_req_t req, void *data)
{
	struct ffs *ffs = ffs_of(req);
	struct fs_waiter *fw = data;

	/* `fw` is only compared until entry_cancel_wait() proves it live */
	if (!entry_cancel_wait(ffs, &fw->w))
		return;
	entry_wait_interrupted(ffs, &fw->w);
	fuse_reply_err(req, EINTR);
	free(fw);
}

static void hook_wake(struct ffs *ffs, struct waiter *w, int err)
{
	struct fs_waiter *fw = (struct fs_waiter *)((char *)w -
						    offsetof(struct fs_waiter, w));
	struct handle *h = NULL;

	/* waits for an interrupt callback in progress, and stops new ones */
	fuse_req_interrupt_func(fw->req, NULL, NULL);
	if (err == 0)
		err = entry_open(ffs, w->node, fw->fi.flags, 0, &h);
	entry_wait_done(ffs, w, err);
	if (err == 0)
		reply_open(fw->req, ffs, &fw->fi, h);
	else
		fuse_reply_err(fw->req, -err);
	free(fw);
}

/* Park the open `req` until node `n` is published or discarded. */
static void wait_for_entry(fuse_req_t req, struct ffs *ffs, struct node *n,
			   struct fuse_file_info *fi)
{
	struct fs_waiter *fw = calloc(1, sizeof(*fw));
	struct handle *h;
	int rc;

	if (!fw) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fw->req = req;
	fw->fi = *fi;
	fw->w.node = n;
	fw->w.flags = fi->flags;
	fw->w.pid = fuse_req_ctx(req)->pid;
	fw->w.start_us = mono_us();
	fw->w.deadline_us = fw->w.start_us + ffs->opt.lock_timeout_us;
	fw->w.req = req;
	/* Register before queueing: once queued, a publish may answer and
	 * free `req` at any moment. */
	fuse_req_interrupt_func(req, waiter_interrupted, fw);
	rc = fuse_req_interrupted(req) ? -EINTR : entry_wait(ffs, &fw->w);
	if (rc == 0)
		return;
	fuse_req_interrupt_func(req, NULL, NULL);
	free(fw);
	if (rc == -EAGAIN) { /* published meanwhile */
		rc = entry_open(ffs, n, fi->flags, 0, &h);
		if (rc == 0) {
			reply_open(req, ffs, fi, h);
			return;
		}
	}
	fuse_reply_err(req, -rc);
}

/* ---- operations ----------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* the kernel keeps the smaller of this and the readahead set at
	 * mount (set_readahead) */
	conn->max_readahead = READAHEAD_KB * 1024;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* many readers at once: do not throttle background requests */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ffs *ffs = ffs_of(req);
	struct node *n;
	int rc = fault_inject("lookup");

	if (rc == 0)
		rc = ffs_lookup(ffs, ffs_node(ffs, parent), name, &n);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, ffs, n);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct ffs *ffs = ffs_of(req);

	ffs_forget(ffs, ffs_node(ffs, ino), nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct ffs *ffs = ffs_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		ffs_forget(ffs, ffs_node(ffs, forgets[i].ino),
			   forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);
	struct stat st;
	double timeout;
	int rc;

	(void)fi;
	rc = ffs_getattr(ffs, ffs_node(ffs, ino), &st, &timeout);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* access(2) and chdir: X_OK needs an execute bit, as execve(2) does;
 * reads and writes are decided by the operations themselves (the mount is
 * its owner's, or the kernel checks under default_permissions). */
static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct ffs *ffs = ffs_of(req);
	struct stat st;
	double timeout;
	int rc;

	rc = ffs_getattr(ffs, ffs_node(ffs, ino), &st, &timeout);
	/* as the kernel's own check: root may search any directory, but
	 * execute only what has an x bit */
	if (rc == 0 && S_ISDIR(st.st_mode) && fuse_req_ctx(req)->uid == 0)
		mask &= ~X_OK;
	if (rc == 0 && (mask & X_OK) && !(st.st_mode & 0111))
		rc = -EACCES;
	fuse_reply_err(req, -rc);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);
	struct node *n = ffs_node(ffs, ino);
	struct setattr_req r = { 0 };
	int rc;

	if (to_set & FUSE_SET_ATTR_MODE)
		r.valid |= SETATTR_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		r.valid |= SETATTR_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		r.valid |= SETATTR_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		r.valid |= SETATTR_SIZE;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
		r.valid |= SETATTR_ATIME;
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		r.valid |= SETATTR_MTIME;
	r.mode = attr->st_mode;
	r.uid = attr->st_uid;
	r.gid = attr->st_gid;
	r.size = attr->st_size;
	r.atime = attr->st_atim;
	r.mtime = attr->st_mtim;
	r.pid = fuse_req_ctx(req)->pid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		r.atime.tv_nsec = UTIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		r.mtime.tv_nsec = UTIME_NOW;
	rc = entry_setattr(ffs, n, fi ? handle_of(fi) : NULL, &r);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fs_getattr(req, ino, fi);
}

/* "<symbol>/<name>", or "/<name>" in the root, for a log line. */
static const char *dir_name(fuse_req_t req, fuse_ino_t parent)
{
	const char *hkey = ffs_node(ffs_of(req), parent)->hkey;

	return hkey ? hkey : "";
}

static void refuse(fuse_req_t req, fuse_ino_t parent, const char *what,
		   const char *name)
{
	log_info("%s %s/%s: not supported on featurefs", what,
		 dir_name(req, parent), name);
	fuse_reply_err(req, EPERM);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	refuse(req, parent, "symlink", name);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	refuse(req, newparent, "link", newname);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)rdev;
	if (!S_ISREG(mode)) {
		refuse(req, parent, "mknod", name);
		return;
	}
	/* a claim without a writer's descriptor could only block the key,
	 * as a read-only create would (entry_create) */
	log_info("mknod %s/%s: files are made by open(O_CREAT), which claims "
		 "an entry for its writer (tar --xattrs makes files that carry "
		 "attributes with mknod: extract without --xattrs)",
		 dir_name(req, parent), name);
	fuse_reply_err(req, EPERM);
}

/* Say which change `rc` refused when it failed for the store's sake (the
 * manifest, the disk), not the caller's: the line the manifest or the
 * store logged names neither the operation nor the path. */
static int said_why(int rc, const char *op, const struct node *dir,
		    const char *name)
{
	if (rc == -EIO || rc == -ENOSPC || rc == -EDQUOT || rc == -EAGAIN)
		log_warn("%s %s%s%s: %s", op, dir->hkey ? dir->hkey : "",
			 dir->hkey ? "/" : "", name, strerror(-rc));
	return rc;
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct ffs *ffs = ffs_of(req);
	struct node *dir = ffs_node(ffs, parent), *n;
	int rc;

	rc = said_why(ffs_mkdir(ffs, dir, name, mode, &n), "mkdir", dir, name);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, ffs, n);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ffs *ffs = ffs_of(req);
	struct node *dir = ffs_node(ffs, parent);

	fuse_reply_err(req, -said_why(ffs_rmdir(ffs, dir, name), "rmdir", dir,
				      name));
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ffs *ffs = ffs_of(req);
	struct node *dir = ffs_node(ffs, parent);

	fuse_reply_err(req, -said_why(entry_unlink(ffs, dir, name,
						   fuse_req_ctx(req)->pid),
				      "unlink", dir, name));
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct ffs *ffs = ffs_of(req);
	struct node *dir = ffs_node(ffs, parent);

	fuse_reply_err(req, -said_why(entry_rename(ffs, dir, name,
						   ffs_node(ffs, newparent),
						   newname, flags,
						   fuse_req_ctx(req)->pid),
				      "rename", dir, name));
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);
	struct fuse_entry_param e;
	struct handle *h = NULL;
	struct node *n;
	int rc;

	rc = entry_create(ffs, ffs_node(ffs, parent), name,
			  fuse_req_ctx(req)->pid, fi->flags, mode, &n, &h);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry_param(ffs, n, &e);
	fi->fh = (uint64_t)(uintptr_t)h;
	passthrough_open(ffs, h); /* counts the writer's handle */
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		release_handle(ffs, h);
		ffs_forget(ffs, n, 1);
	}
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);
	struct node *n = ffs_node(ffs, ino);
	struct handle *h;
	int rc;

	rc = entry_open(ffs, n, fi->flags, fuse_req_ctx(req)->pid, &h);
	if (rc == -EINPROGRESS)
		wait_for_entry(req, ffs, n, fi);
	else if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_open(req, ffs, fi, h);
}

static void free_read_buf(void *buf)
{
	free(buf);
}

/* Answer a read of a compressed entry from the cache's frames, with no
 * copy through our memory; 0 if the handle or the size is not for it. */
static int read_frames(fuse_req_t req, struct ffs *ffs,
		       struct fuse_file_info *fi, size_t size, off_t off)
{
	struct frame_span span;
	ssize_t n;

	n = entry_read_frames(ffs, handle_of(fi), size, off, &span);
	if (n == -ENOTSUP)
		return 0;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_iov(req, span.iov, span.n);
	frame_cache_unpin(ffs->frames, &span);
	return 1;
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);
	struct fs_state *fs = fs_of(ffs);
	void *buf;
	ssize_t n;
	int fd;

	(void)ino;
	/* a READ bigger than libfuse's pipe would go through a buffer it
	 * allocates for each reply: ours is reused */
	fd = size <= SPLICE_READ_MAX
		     ? entry_read_fd(ffs, handle_of(fi), size, off)
		     : -ENOTSUP;
	if (fd >= 0) {
		/* libfuse splices the object's pages into the reply where
		 * the kernel allows it: no copy through our memory */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, 0);
		return;
	}
	if (fd != -ENOTSUP) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (read_frames(req, ffs, fi, size, off))
		return;
	/* the copy path: in-flight data, scratch files, /.featurefs,
	 * large READs */
	buf = pthread_getspecific(fs->read_buf);
	if (!buf) {
		buf = malloc(READ_BUF_SIZE);
		if (!buf || pthread_setspecific(fs->read_buf, buf) != 0) {
			free(buf);
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	if (size > READ_BUF_SIZE)
		size = READ_BUF_SIZE;
	n = entry_read(ffs, handle_of(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	(void)ino;
	n = entry_write(ffs_of(req), handle_of(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* Only SEEK_DATA and SEEK_HOLE come here; the kernel answers the rest */
static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t found;

	(void)ino;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	found = entry_seek_data(handle_of(fi), off, whence);
	if (found < 0)
		fuse_reply_err(req, (int)-found);
	else
		fuse_reply_lseek(req, found);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	int rc = entry_flush(ffs_of(req), handle_of(fi),
			     fuse_req_ctx(req)->pid);

	/* a manifest held elsewhere (EAGAIN) discards the write all the
	 * same, and close(2) is never to be tried again */
	fuse_reply_err(req, rc == -EAGAIN ? EIO : -rc);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	release_handle(ffs_of(req), handle_of(fi));
	fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -entry_fsync(ffs_of(req), handle_of(fi), datasync));
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -entry_fallocate(ffs_of(req), handle_of(fi), mode,
					     offset, length));
}

/* Add `d` to the open directories. */
static void dir_track(struct fs_state *fs, struct dir_handle *d)
{
	pthread_mutex_lock(&fs->mu);
	d->next = fs->dirs;
	if (fs->dirs)
		fs->dirs->prev = d;
	fs->dirs = d;
	pthread_mutex_unlock(&fs->mu);
}

/* Take `d` off the open directories and free it. */
static void dir_release(struct fs_state *fs, struct dir_handle *d)
{
	pthread_mutex_lock(&fs->mu);
	if (d->prev)
		d->prev->next = d->next;
	else
		fs->dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&fs->mu);
	ffs_free_listing(&d->listing);
	free(d);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);
	struct dir_handle *d = calloc(1, sizeof(*d));
	int rc;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = ffs_list_dir(ffs, ffs_node(ffs, ino), &d->listing);
	if (rc < 0) {
		free(d);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	dir_track(fs_of(ffs), d);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_release(fs_of(ffs), d);
}

/* Fill a readdir reply from offset `off`; with `plus`, each entry also
 * carries its attributes and counts as a lookup (readdirplus). */
static void reply_listing(fuse_req_t req, struct ffs *ffs, struct node *dir,
			  struct dir_handle *d, size_t size, off_t off,
			  int plus)
{
	char *buf = malloc(size);
	struct fuse_entry_param e;
	size_t used = 0, len;
	off_t i;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off == 0 && d->read) {
		struct dir_listing again;
		int rc = ffs_list_dir(ffs, dir, &again);

		if (rc < 0) {
			free(buf);
			fuse_reply_err(req, -rc);
			return;
		}
		ffs_free_listing(&d->listing);
		d->listing = again;
	}
	d->read = 1;
	for (i = off; i < (off_t)d->listing.count + 2; i++) {
		const struct dirent_item *it =
			i < 2 ? NULL : &d->listing.items[i - 2];
		const char *name = it ? it->name : i == 0 ? "." : "..";
		struct node *n = NULL;

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = it ? it->st_ino : 1;
		e.attr.st_mode = it ? it->type : S_IFDIR;
		if (!plus) {
			len = fuse_add_direntry(req, buf + used, size - used,
						name, &e.attr, i + 1);
		} else {
			/* "." and ".." go without attributes (ino 0) */
			if (it && ffs_lookup_listed(ffs, dir, &d->listing, it,
						      &n) == 0)
				fill_entry_param(ffs, n, &e);
			len = fuse_add_direntry_plus(req, buf + used,
						     size - used, name, &e,
						     i + 1);
		}
		if (len > size - used) {
			if (n)
				ffs_forget(ffs, n, 1); /* did not fit */
			break;
		}
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);

	reply_listing(req, ffs, ffs_node(ffs, ino),
		      (struct dir_handle *)(uintptr_t)fi->fh, size, off, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct ffs *ffs = ffs_of(req);

	reply_listing(req, ffs, ffs_node(ffs, ino),
		      (struct dir_handle *)(uintptr_t)fi->fh, size, off, 1);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

	(void)ino;
	dir_release(fs_of(ffs_of(req)), d);
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct ffs *ffs = ffs_of(req);
	struct statvfs st;

	(void)ino;
	if (fstatvfs(ffs->store->root_fd, &st) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct ffs *ffs = ffs_of(req);
	struct strbuf value = STRBUF_INIT;
	int rc;

	rc = entry_xattr_get(ffs, ffs_node(ffs, ino), name, &value);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, value.len);
	else if (size < value.len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, sb_str(&value), value.len);
	sb_release(&value);
}

/* The attributes are virtual, so they are not listed, as CephFS and CIFS
 * do not list theirs: copy tools copy what is listed, and rsync -X
 * removes from the copy what the source lacks, so listed read-only
 * attributes would fail every re-sync.  Read them by name. */
static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct ffs *ffs = ffs_of(req);

	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, -entry_xattr_refuse(ffs, ffs_node(ffs, ino), "set",
						name));
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct ffs *ffs = ffs_of(req);

	fuse_reply_err(req, -entry_xattr_refuse(ffs, ffs_node(ffs, ino),
						"remove", name));
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.access = fs_access,
	.setattr = fs_setattr,
	.symlink = fs_symlink,
	.link = fs_link,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.unlink = fs_unlink,
	.rename = fs_rename,
	.create = fs_create,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
};

static const char *hook_passthrough_state(struct ffs *ffs)
{
	return passthrough_state_name(passthrough_state(ffs));
}

static const struct ffs_hooks fs_hooks = {
	.inval_inode = hook_inval_inode,
	.inval_entry = hook_inval_entry,
	.wake = hook_wake,
	.passthrough_state = hook_passthrough_state,
	.claim_backing = passthrough_claim_locked,
	.unclaim_backing = passthrough_unclaim,
	.forget_backing = passthrough_forget_locked,
};

/* ---- session -------------------------------------------------------- */

/*
 * Reads the daemon serves (compressed entries, passthrough off or
 * unavailable) reach it in readahead-sized READs, 128 KiB by default:
 * eight round trips per 1 MiB frame.  Raise the mount's readahead to a
 * frame through sysfs, as root only may, before INIT (the kernel keeps
 * the smaller of it and INIT's answer, fs_init).  Best effort: without
 * it reads are only slower.
 */
static void set_readahead(const struct proc_mount *m)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 m->major, m->minor);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dprintf(fd, "%d\n", READAHEAD_KB) < 0)
		log_debug("readahead of %s: %s (reads through the daemon "
			  "come 128 KiB at a time)", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int fs_check_args(const struct fuse_args *args)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	int i, rc = 0;

	for (i = 0; i < args->argc && rc == 0; i++)
		if (fuse_opt_add_arg(&copy, args->argv[i]) != 0)
			rc = -ENOMEM;
	if (rc == 0) {
		se = fuse_session_new(&copy, &fs_ops, sizeof(fs_ops), NULL);
		if (se)
			fuse_session_destroy(se);
		else
			rc = -EINVAL;
	}
	fuse_opt_free_args(&copy);
	return rc;
}

int fs_mount(struct ffs *ffs, struct fuse_args *args, const char *mountpoint)
{
	struct fs_state *fs = calloc(1, sizeof(*fs));
	int rc;

	if (!fs)
		return -ENOMEM;
	if (pthread_key_create(&fs->read_buf, free_read_buf) != 0) {
		free(fs);
		log_err("cannot create a thread key for read buffers");
		return -EAGAIN;
	}
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->cond, NULL);
	ffs->fuse = fs;
	ffs->hooks = &fs_hooks;
	fs->se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), ffs);
	if (!fs->se) {
		log_err("cannot start a FUSE session (see the message above)");
		return -EINVAL;
	}
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		log_err("mount %s: failed: the kernel refused it (the line "
			"above says how): is it a directory, is /dev/fuse "
			"usable, are the -o options the kernel's to take?",
			mountpoint);
		return -EIO;
	}
	fs->mounted = 1;
	/* from /proc/self/mountinfo, never from the mount itself */
	proc_mount_at(mountpoint, &ffs->mounted_as, NULL, NULL);
	fs->conn = watchdog_connection(&ffs->mounted_as);
	if (fs->conn)
		set_readahead(&ffs->mounted_as);
	if (ffs->opt.passthrough && passthrough_install(ffs, fs->se) < 0)
		return -EIO;
	rc = fuse_set_signal_handlers(fs->se);
	if (rc != 0)
		return -EIO;
	fs->signals = 1;
	return 0;
}

int fs_loop(struct ffs *ffs, const struct fs_loop_options *o)
{
	struct fs_state *fs = fs_of(ffs);
	struct fuse_loop_config *cfg;
	int rc;

	rc = pthread_create(&fs->notifier, NULL, notifier_main, ffs);
	if (rc != 0)
		return -rc;
	fs->notifier_started = 1;
	if (o->single_thread) {
		rc = fuse_session_loop(fs->se) < 0 ? -EIO : 0;
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			return -ENOMEM;
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned)o->clone_fd);
		if (o->max_threads)
			fuse_loop_cfg_set_max_threads(cfg, o->max_threads);
		rc = fuse_session_loop_mt(fs->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	/* while everything still works: requests are answered meanwhile */
	notifier_stop(fs);
	return rc < 0 ? rc : 0;
}

void fs_unmount(struct ffs *ffs)
{
	struct fs_state *fs = fs_of(ffs);

	if (!fs)
		return;
	notifier_stop(fs);
	while (fs->dirs)
		dir_release(fs, fs->dirs);
	if (fs->se) {
		if (fs->signals)
			fuse_remove_signal_handlers(fs->se);
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	passthrough_destroy(ffs);
	free(pthread_getspecific(fs->read_buf));
	pthread_key_delete(fs->read_buf);
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->mu);
	free(fs);
	ffs->fuse = NULL;
}
