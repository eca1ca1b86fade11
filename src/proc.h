/*
 * proc.h - what /proc says about the processes that use a mount: which
 * process a request's thread belongs to, whether a writer's process tree
 * still holds an entry open for writing after one of its closes (or maps
 * a scratch file being renamed), whether a mount's daemon is stopped,
 * and what is mounted where.
 */
#ifndef FEATUREFS_PROC_H
#define FEATUREFS_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* The thread-group id (process) of thread `pid`; `pid` itself when /proc
 * cannot tell. */
pid_t proc_tgid_of(pid_t pid);

/* The parent of process `pid`; 0 when /proc cannot tell. */
pid_t proc_parent_of(pid_t pid);

/* When task `pid` started (proc(5)'s starttime, in clock ticks since
 * boot); 0 when /proc cannot tell.  With the pid, it names one task:
 * another that is given the same pid later started later. */
uint64_t proc_start_time(pid_t pid);

/* Whether `pid` is still the task that proc_start_time() found started
 * at `start` (0: not known then, so taken to be). */
int proc_is_task(pid_t pid, uint64_t start);

/* A mount as /proc names it: its id, and its device, which its bind
 * mounts and its copies in other mount namespaces share (a new FUSE
 * mount, of the same store or another, has a device of its own). */
struct proc_mount {
	int id;
	unsigned major, minor;
};

/* A file of a mount as /proc shows it in a process: reached through
 * `mount` (NULL: any), inode `ino`, a path ending in `suffix`
 * ("/SYMBOL/NAME"), with " (deleted)" after it too (the kernel adds it
 * once the name is invalidated) unless `deleted_is_other`: an earlier
 * life of the name, with the same inode number, is open too, and it is
 * the one so marked. */
struct proc_file {
	const struct proc_mount *mount;
	uint64_t ino;
	const char *suffix;
	int deleted_is_other;
};

/* What /proc/self/mountinfo says of the newest mount at `mountpoint`
 * (absolute, as the kernel shows it), never asking the mount itself: its
 * id and device, type (64 bytes) and source (PATH_MAX + 1), each when
 * not NULL.  1 when there is one, else 0. */
int proc_mount_at(const char *mountpoint, struct proc_mount *m,
		  char *fstype, char *source);

/* The mountpoint (`len` bytes) of the newest mount of type `fstype` whose
 * source is `source`: 1, or 0 when there is none. */
int proc_mount_of(const char *fstype, const char *source, char *mountpoint,
		  size_t len);

/* The process that holds a flock(2) of file `dev`:`ino`, as /proc/locks
 * says, or 0. */
pid_t proc_flock_holder(dev_t dev, ino_t ino);

/* Whether process `pid` is stopped (SIGSTOP, or a debugger's stop); 0
 * when it is not, or /proc cannot tell. */
int proc_is_stopped(pid_t pid);

/* The signal thread `pid` is dying of, if it is exiting because one
 * killed it (its close of a file while it dies says so); 0 otherwise. */
int proc_killed_by(pid_t pid);

/* Whether process `tgid` itself holds file `f` through a writable
 * descriptor.  A process whose /proc cannot be read does not. */
int proc_writes_file(pid_t tgid, const struct proc_file *f);

/* Whether process `tgid` or a descendant of it still holds file `f` open
 * for writing: a writable descriptor, or a shared writable map.  A
 * process whose /proc cannot be read counts as not holding it. */
int proc_tree_writes_file(pid_t tgid, const struct proc_file *f);

/* The first process of that tree that maps the file shared and writable
 * (stores through such a map reach the daemon only when written back),
 * or 0. */
pid_t proc_tree_maps_file(pid_t tgid, const struct proc_file *f);

#endif
