/*
 * passthrough.h - the kernel reads published objects itself (FUSE
 * passthrough, Linux >= 6.9): reads of an open entry never reach the
 * daemon.  See passthrough.c for how it sits between libfuse and
 * /dev/fuse.
 */
#ifndef FEATUREFS_PASSTHROUGH_H
#define FEATUREFS_PASSTHROUGH_H

struct ffs;
struct fuse_session;
struct handle;

enum passthrough_state {
	PASSTHROUGH_OFF,	 /* -o passthrough=off */
	PASSTHROUGH_PENDING,	 /* asked for; the kernel has not answered */
	PASSTHROUGH_ON,
	PASSTHROUGH_UNAVAILABLE, /* the kernel or our privileges said no */
};

/* Become the I/O layer of mounted session `se`, so that passthrough can
 * be offered in the INIT reply.  0 or -errno. */
int passthrough_install(struct ffs *ffs, struct fuse_session *se);
void passthrough_destroy(struct ffs *ffs);

/*
 * Before any handle `h` is handed to the kernel (open or create): count it
 * on its node, and choose how the kernel serves it.  1 passthrough (only
 * for a read-only object handle: the open reply is marked; call
 * passthrough_disarm() once it is sent), 0 through the daemon.
 */
int passthrough_open(struct ffs *ffs, struct handle *h);
void passthrough_disarm(struct ffs *ffs, struct handle *h);
/* The kernel released `h` (or never got it): uncount it, and drop its
 * share of the node's backing file. */
void passthrough_release(struct ffs *ffs, struct handle *h);

/*
 * The ffs_hooks of backing files.  For an open of published entry `n`
 * about to be made, ffs->lock held: if the node has a backing file this
 * open can use, count the open on it and return its id (> 0), which
 * becomes the handle's backing_id: the object need not be opened.  0:
 * open the object and let passthrough_open() choose.
 * passthrough_unclaim() undoes a claim that made no handle.
 */
int passthrough_claim_locked(struct ffs *ffs, struct node *n);
void passthrough_unclaim(struct ffs *ffs, struct node *n);
/* `n` is no longer a reachable entry (ffs->lock held): give up its idle
 * backing file, so the object's space can be freed. */
void passthrough_forget_locked(struct ffs *ffs, struct node *n);

enum passthrough_state passthrough_state(struct ffs *ffs);
const char *passthrough_state_name(enum passthrough_state s);

#endif
