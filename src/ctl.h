/*
 * ctl.h - the control socket of a mount, STORE/control.sock.
 *
 * Maintenance commands that act through the mount send one request line
 * and read one reply: an exit status line, then the command's output
 * (or, when the status line says "message", a refusal for stderr).
 * `gc` must (the mount invalidates the kernel's dentries of what it
 * removes); `stats` does for the mount's live figures, without going
 * through the kernel, so a stopped daemon cannot hang it.  Only the
 * mount's owner (or root) may connect.
 */
#ifndef FEATUREFS_CTL_H
#define FEATUREFS_CTL_H

#include <sys/types.h>

#include "gc.h"
#include "strbuf.h"

#define CTL_SOCKET "control.sock"

struct ffs;

int ctl_start(struct ffs *ffs);
void ctl_stop(struct ffs *ffs);

/* Ask the mount of store `s`, whose daemon is process `daemon`, to run a
 * GC pass, or for its stats (what /.featurefs/stats{,.json} show).  Fill
 * `out` with its output and return the exit status it sent, -EAGAIN when
 * the daemon is stopped (SIGSTOP) and would not answer, or -errno; a
 * gc's *message says `out` is a refusal, for stderr. */
struct store;
int ctl_request_gc(struct store *s, pid_t daemon, const struct gc_options *o,
		   int json, struct strbuf *out, int *message);
int ctl_request_stats(struct store *s, pid_t daemon, int json,
		      struct strbuf *out);

#endif
