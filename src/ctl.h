/*
 * ctl.h - the control socket of a mount, STORE/control.sock.
 *
 * Maintenance commands that must act through the mount (today: `gc`,
 * which has to invalidate the kernel's dentries of what it removes) send
 * one request line and read one reply: an exit status line, then the
 * command's output.  Only the mount's owner (or root) may connect.
 */
#ifndef FEATUREFS_CTL_H
#define FEATUREFS_CTL_H

#include "gc.h"
#include "strbuf.h"

#define CTL_SOCKET "control.sock"

struct ffs;

int ctl_start(struct ffs *ffs);
void ctl_stop(struct ffs *ffs);

/* Ask the mount of store `s` to run a GC pass; fills `out` with its
 * output and returns the exit status it sent, or -errno. */
struct store;
int ctl_request_gc(struct store *s, const struct gc_options *o, int json,
		   struct strbuf *out);

#endif
