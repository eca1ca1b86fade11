/*
 * passthrough.c - FUSE passthrough for published entries.
 *
 * Linux 6.9 and later can serve the reads of an open FUSE file from a
 * "backing" file the daemon registered on /dev/fuse
 * (FUSE_DEV_IOC_BACKING_OPEN): the read never becomes a request, and the
 * page cache is the object file's own, so reads through the mount cost
 * what direct reads cost.  The daemon asks for it twice on the wire: once
 * in the INIT reply (FUSE_PASSTHROUGH, protocol 7.40) and once per open
 * (FOPEN_PASSTHROUGH plus a backing id in fuse_open_out).
 *
 * libfuse 3.14 knows neither field, so this module is the session's
 * custom I/O (fuse_session_custom_io): requests are read unchanged, and a
 * reply is written unchanged unless it is the INIT reply of a kernel that
 * offered passthrough, or the open reply of a handle passthrough_open()
 * armed.  Without the kernel's offer, or without CAP_SYS_ADMIN for the
 * backing ioctl, every open is served by the daemon as before.
 *
 * The kernel keeps one I/O mode per inode: while any open of an inode is
 * passthrough, every new open must be passthrough on the same backing
 * file, and a passthrough open fails while the inode has caching opens.
 * So every handle handed to the kernel is counted on its node, as
 * passthrough or not; a node gets a backing file only when it has no
 * other handle in the kernel, and keeps it while any passthrough handle
 * is open.  A handle counts from before its open is answered until its
 * RELEASE arrives, which the kernel sends after dropping the file: the
 * daemon's counts are never below the kernel's.  So when a writer's
 * release publishes its entry, the waiters it wakes are passed through.
 *
 * A backing file outlives its last handle: the next open of the entry
 * reuses it, without opening the object or registering it again.  Up to
 * PT_IDLE_MAX such idle backing files are kept, least recently released
 * first out; one is given up as soon as its entry is unlinked or its node
 * forgotten, so that removing an entry frees its space.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <linux/fuse.h>

#include "fault.h"
#include "ffs.h"
#include "log.h"
#include "passthrough.h"
#include "store.h"

/* Protocol 7.40 names that Debian 12's <linux/fuse.h> (7.38) lacks. */
#define PT_INIT_FLAG2		(1u << (37 - 32)) /* FUSE_PASSTHROUGH */
#define PT_FOPEN		(1u << 7)	  /* FOPEN_PASSTHROUGH */

struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define PT_IOC_BACKING_OPEN	_IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE	_IOW(229, 2, uint32_t)

/* Filesystems that stack on another (linux/magic.h); a store on one of
 * them needs the deepest stack the kernel allows (2). */
#define PT_OVERLAYFS_MAGIC	0x794c7630
#define PT_FUSE_MAGIC		0x65735546
#define PT_ECRYPTFS_MAGIC	0xf15f

/* fuse_init_out as of 7.40: max_stack_depth took the first unused word. */
#define PT_INIT_OUT_MIN	(offsetof(struct fuse_init_out, unused) + 4)

/* Idle backing files kept for the next open: each holds an open file
 * (and its inode) in the kernel, not a descriptor of the daemon's. */
#define PT_IDLE_MAX	1024

struct passthrough {
	int dev_fd;			/* the session's /dev/fuse */
	int state;			/* enum passthrough_state, atomic */
	uint64_t init_unique;		/* the INIT request, while PENDING */
	pthread_mutex_t mu;		/* guards `armed` */
	struct handle *armed;		/* open replies to mark, by fh */
	/* under ffs->lock: nodes with a backing file and no passthrough
	 * handle, least recently released first */
	struct node *idle_head, *idle_tail;
	unsigned idle_count;
};

static int state_get(struct passthrough *pt)
{
	return __atomic_load_n(&pt->state, __ATOMIC_ACQUIRE);
}

static void state_set(struct passthrough *pt, int s)
{
	__atomic_store_n(&pt->state, s, __ATOMIC_RELEASE);
}

/* Look at the INIT request: did the kernel offer passthrough? */
static void note_init(struct passthrough *pt, const void *buf, size_t len)
{
	const struct fuse_in_header *in = buf;
	const struct fuse_init_in *arg = (const void *)(in + 1);

	if (in->opcode != FUSE_INIT)
		return;
	if (len >= sizeof(*in) + offsetof(struct fuse_init_in, flags2) + 4 &&
	    (arg->flags & FUSE_INIT_EXT) && (arg->flags2 & PT_INIT_FLAG2)) {
		pt->init_unique = in->unique;
		return;
	}
	log_info("passthrough: this kernel does not offer it (Linux >= 6.9 "
		 "with CONFIG_FUSE_PASSTHROUGH); reads go through the daemon");
	state_set(pt, PASSTHROUGH_UNAVAILABLE);
}

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
	struct passthrough *pt = ((struct ffs *)userdata)->passthrough;
	ssize_t n = read(fd, buf, len);

	if (n >= (ssize_t)sizeof(struct fuse_in_header) &&
	    state_get(pt) == PASSTHROUGH_PENDING && pt->init_unique == 0)
		note_init(pt, buf, (size_t)n);
	return n;
}

/* The stack depth featurefs takes: one above the store's filesystem.  A
 * mount at depth 1 can still be a layer of overlayfs. */
static uint32_t stack_depth(int store_fd)
{
	struct statfs sf;

	if (fstatfs(store_fd, &sf) == 0 &&
	    ((unsigned long)sf.f_type == PT_OVERLAYFS_MAGIC ||
	     (unsigned long)sf.f_type == PT_FUSE_MAGIC ||
	     (unsigned long)sf.f_type == PT_ECRYPTFS_MAGIC))
		return 2;
	return 1;
}

/* Ask for passthrough in the INIT reply `arg`.  Reads will cost what
 * reads of the store cost, so stat shows the store's block size: tools
 * size their buffers by it, and a 1 MiB buffer only costs page faults. */
static void mark_init(struct ffs *ffs, struct iovec *arg)
{
	struct passthrough *pt = ffs->passthrough;
	struct fuse_init_out *out = arg->iov_base;
	struct stat st;

	if (arg->iov_len < PT_INIT_OUT_MIN ||
	    (out->flags & FUSE_WRITEBACK_CACHE)) {
		state_set(pt, PASSTHROUGH_UNAVAILABLE);
		return;
	}
	out->flags |= FUSE_INIT_EXT;
	out->flags2 |= PT_INIT_FLAG2;
	out->unused[0] = stack_depth(ffs->store->root_fd); /* max_stack_depth */
	if (fstat(ffs->store->root_fd, &st) == 0 && st.st_blksize > 0)
		__atomic_store_n(&ffs->blksize, (int)st.st_blksize,
				 __ATOMIC_RELAXED);
	state_set(pt, PASSTHROUGH_ON);
}

/* Mark the open reply `arg` if its handle is armed. */
static void mark_open(struct passthrough *pt, struct iovec *arg)
{
	struct fuse_open_out *out = arg->iov_base;
	struct handle **p;

	pthread_mutex_lock(&pt->mu);
	for (p = &pt->armed; *p; p = &(*p)->armed_next) {
		if ((uint64_t)(uintptr_t)*p != out->fh)
			continue;
		/* the kernel refuses keep_cache with passthrough: the page
		 * cache is the backing file's */
		out->open_flags &= ~(uint32_t)FOPEN_KEEP_CACHE;
		out->open_flags |= PT_FOPEN;
		out->padding = (uint32_t)(*p)->backing_id; /* backing_id */
		*p = (*p)->armed_next;
		break;
	}
	pthread_mutex_unlock(&pt->mu);
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct ffs *ffs = userdata;
	struct passthrough *pt = ffs->passthrough;
	const struct fuse_out_header *oh = iov[0].iov_base;

	if (count == 2 && iov[0].iov_len == sizeof(*oh) && oh->error == 0) {
		int s = state_get(pt);

		if (s == PASSTHROUGH_PENDING && pt->init_unique &&
		    oh->unique == pt->init_unique)
			mark_init(ffs, &iov[1]);
		else if (s != PASSTHROUGH_PENDING &&
			 iov[1].iov_len == sizeof(struct fuse_open_out))
			mark_open(pt, &iov[1]);
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io pt_io = {
	.read = pt_read,
	.writev = pt_writev,
};

int passthrough_install(struct ffs *ffs, struct fuse_session *se)
{
	struct passthrough *pt = calloc(1, sizeof(*pt));
	int rc;

	if (!pt)
		return -ENOMEM;
	pt->dev_fd = fuse_session_fd(se);
	pt->state = PASSTHROUGH_PENDING;
	pthread_mutex_init(&pt->mu, NULL);
	ffs->passthrough = pt;
	rc = fuse_session_custom_io(se, &pt_io, pt->dev_fd);
	if (rc < 0) {
		log_err("passthrough: cannot take the session's I/O: %s",
			strerror(-rc));
		return rc;
	}
	return 0;
}

void passthrough_destroy(struct ffs *ffs)
{
	struct passthrough *pt = ffs->passthrough;

	if (!pt)
		return;
	pthread_mutex_destroy(&pt->mu);
	free(pt);
	ffs->passthrough = NULL;
}

/* Register `fd` as a backing file: its id (> 0), or 0 when refused.  A
 * refusal that will repeat for every file turns passthrough off. */
static int backing_open(struct ffs *ffs, int fd)
{
	struct passthrough *pt = ffs->passthrough;
	struct pt_backing_map map = { .fd = fd };
	int id = fault_inject("backing_open");

	if (id < 0)
		errno = -id;
	else
		id = ioctl(pt->dev_fd, PT_IOC_BACKING_OPEN, &map);
	if (id > 0) {
		CTR_ADD(ffs->ctr.backing_files, 1);
		return id;
	}
	if (errno == EPERM || errno == ELOOP || errno == EINVAL ||
	    errno == ENOTTY || errno == EOPNOTSUPP) {
		log_info("passthrough: the kernel refused a backing file (%s%s);"
			 " reads go through the daemon", strerror(errno),
			 errno == EPERM ? ": backing files need CAP_SYS_ADMIN" : "");
		state_set(pt, PASSTHROUGH_UNAVAILABLE);
	} else {
		log_debug("passthrough: backing file: %s", strerror(errno));
	}
	return 0;
}

static void idle_remove(struct passthrough *pt, struct node *n)
{
	if (n->pt_idle_prev)
		n->pt_idle_prev->pt_idle_next = n->pt_idle_next;
	else
		pt->idle_head = n->pt_idle_next;
	if (n->pt_idle_next)
		n->pt_idle_next->pt_idle_prev = n->pt_idle_prev;
	else
		pt->idle_tail = n->pt_idle_prev;
	n->pt_idle_prev = n->pt_idle_next = NULL;
	n->backing_idle = 0;
	pt->idle_count--;
}

static void idle_append(struct passthrough *pt, struct node *n)
{
	n->pt_idle_prev = pt->idle_tail;
	n->pt_idle_next = NULL;
	if (pt->idle_tail)
		pt->idle_tail->pt_idle_next = n;
	else
		pt->idle_head = n;
	pt->idle_tail = n;
	n->backing_idle = 1;
	pt->idle_count++;
}

/* Take `n`'s backing file away from it: the id to close, or 0. */
static uint32_t backing_take_locked(struct passthrough *pt, struct node *n)
{
	uint32_t id = n->backing_id > 0 ? (uint32_t)n->backing_id : 0;

	if (n->backing_idle)
		idle_remove(pt, n);
	n->backing_id = 0;
	return id;
}

static void backing_close(struct ffs *ffs, uint32_t id)
{
	if (!id)
		return;
	if (ioctl(ffs->passthrough->dev_fd, PT_IOC_BACKING_CLOSE, &id) < 0)
		log_debug("passthrough: closing backing file %u: %s", id,
			  strerror(errno));
	CTR_SUB(ffs->ctr.backing_files, 1);
}

/*
 * The backing id the next open of `n` must be served with, counted on
 * the node: its live or idle backing file, or, if `fd` >= 0, a new one of
 * `fd`.  0: that open goes through the daemon (nothing counted).  Lock
 * held.
 */
static int backing_use_locked(struct ffs *ffs, struct node *n, int fd)
{
	struct passthrough *pt = ffs->passthrough;

	if (n->pt_opens == 0) {
		if (n->cached_opens > 0 || state_get(pt) != PASSTHROUGH_ON)
			return 0;
		if (n->backing_idle)
			idle_remove(pt, n);
		else if (fd >= 0)
			n->backing_id = backing_open(ffs, fd);
		if (n->backing_id <= 0)
			return 0;
	}
	n->pt_opens++;
	return n->backing_id;
}

/* One passthrough handle of `n` is gone.  The last one leaves the backing
 * file idle for the next open while the entry stays; the idle file
 * released longest ago is given up when there are too many. */
static void backing_put(struct ffs *ffs, struct node *n)
{
	struct passthrough *pt = ffs->passthrough;
	uint32_t id = 0;

	pthread_mutex_lock(&ffs->lock);
	if (--n->pt_opens == 0) {
		if (n->linked && n->kind == NODE_ENTRY &&
		    n->state == ENTRY_PUBLISHED) {
			idle_append(pt, n);
			if (pt->idle_count > PT_IDLE_MAX)
				id = backing_take_locked(pt, pt->idle_head);
		} else {
			id = backing_take_locked(pt, n);
		}
	}
	pthread_mutex_unlock(&ffs->lock);
	backing_close(ffs, id);
}

int passthrough_claim_locked(struct ffs *ffs, struct node *n)
{
	return ffs->passthrough ? backing_use_locked(ffs, n, -1) : 0;
}

void passthrough_unclaim(struct ffs *ffs, struct node *n)
{
	backing_put(ffs, n);
}

void passthrough_forget_locked(struct ffs *ffs, struct node *n)
{
	if (ffs->passthrough && n->backing_idle)
		backing_close(ffs, backing_take_locked(ffs->passthrough, n));
}

int passthrough_open(struct ffs *ffs, struct handle *h)
{
	struct passthrough *pt = ffs->passthrough;
	struct node *n = h->node;
	int id = h->backing_id;

	if (!pt)
		return 0;
	if (id <= 0) {
		pthread_mutex_lock(&ffs->lock);
		if (h->kind == HANDLE_OBJECT && !h->z)
			id = backing_use_locked(ffs, n, h->fd);
		if (id > 0)
			h->backing_id = id;
		else
			n->cached_opens++;
		pthread_mutex_unlock(&ffs->lock);
		if (id <= 0)
			return 0;
	}
	pthread_mutex_lock(&pt->mu);
	h->armed_next = pt->armed;
	pt->armed = h;
	pthread_mutex_unlock(&pt->mu);
	CTR_ADD(ffs->ctr.passthrough_opens, 1);
	return 1;
}

void passthrough_disarm(struct ffs *ffs, struct handle *h)
{
	struct passthrough *pt = ffs->passthrough;
	struct handle **p;

	pthread_mutex_lock(&pt->mu);
	for (p = &pt->armed; *p; p = &(*p)->armed_next) {
		if (*p == h) {
			*p = h->armed_next;
			break;
		}
	}
	pthread_mutex_unlock(&pt->mu);
}

void passthrough_release(struct ffs *ffs, struct handle *h)
{
	if (!ffs->passthrough)
		return;
	if (h->backing_id > 0) {
		backing_put(ffs, h->node);
		return;
	}
	pthread_mutex_lock(&ffs->lock);
	h->node->cached_opens--;
	pthread_mutex_unlock(&ffs->lock);
}

enum passthrough_state passthrough_state(struct ffs *ffs)
{
	return ffs->passthrough ? (enum passthrough_state)state_get(
					  ffs->passthrough)
				: PASSTHROUGH_OFF;
}

const char *passthrough_state_name(enum passthrough_state s)
{
	switch (s) {
	case PASSTHROUGH_OFF:
		return "off";
	case PASSTHROUGH_PENDING:
		return "pending";
	case PASSTHROUGH_ON:
		return "on";
	case PASSTHROUGH_UNAVAILABLE:
		break;
	}
	return "unavailable";
}
