/*
 * daemon.h - what runs beside the FUSE loop in a mounted store: the
 * ticker (waiter timeouts), the recorder (access flushes, heartbeat), the
 * GC thread and the control socket through which `featurefs gc` reaches
 * a mount.
 */
#ifndef FEATUREFS_DAEMON_H
#define FEATUREFS_DAEMON_H

#include "gc.h"

struct ffs;

/* Settle what a dead mount left (rows, tmp files, removals, symbol
 * directories) before serving. */
int daemon_recover(struct ffs *ffs);
int daemon_start(struct ffs *ffs);
/* Stop the threads, discard unfinished writes, flush accesses. */
void daemon_stop(struct ffs *ffs);

/* One GC pass inside the mount (thread or control socket). */
int daemon_gc_pass(struct ffs *ffs, const struct gc_options *o,
		   struct gc_result *res);

#endif
