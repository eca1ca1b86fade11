/*
 * watchdog.h - what keeps a stopping or dead daemon from wedging its
 * mount.
 *
 * An invalidation the daemon sends waits in the kernel for the lock of
 * its directory.  If a request that holds that lock (a LOOKUP there) is
 * never answered, because the loop stopped or the daemon was killed,
 * neither finishes: the daemon cannot exit, its /dev/fuse descriptor is
 * never closed, and every process that touches the mount hangs.
 * Aborting the FUSE connection, as `umount -f` does, ends both.  A
 * stopping daemon does that itself (fs.c); for one killed with SIGKILL,
 * or crashed, a small process forked at mount does it.
 */
#ifndef FEATUREFS_WATCHDOG_H
#define FEATUREFS_WATCHDOG_H

#include "proc.h"

/* The FUSE connection of mount `m` (its device number: the name under
 * /sys/fs/fuse/connections); 0 when `m` is not known. */
unsigned watchdog_connection(const struct proc_mount *m);

/* Abort FUSE connection `conn`: every request waiting on it fails with
 * ENOTCONN.  Mounts fusectl first if it is not and we may.  0 or -errno. */
int watchdog_abort(unsigned conn);

/* Fork the process that aborts `conn` if this one dies with a thread
 * left inside the kernel, and have a crash of this one (SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT) abort it before the signal's own action.
 * Call before any thread starts.  0 or -errno. */
int watchdog_start(unsigned conn);

#endif
