/*
 * fs.h - the FUSE front end: a lowlevel session whose requests fs.c turns
 * into calls on the namespace (node.c) and entries (entry.c).
 */
#ifndef FEATUREFS_FS_H
#define FEATUREFS_FS_H

struct ffs;
struct fuse_args;

struct fs_loop_options {
	int single_thread;
	unsigned max_threads;	/* 0: libfuse's default */
	int clone_fd;
};

/* 0 when libfuse takes the options in `args`, -EINVAL when it refuses
 * one (it says which): checked before anything is created. */
int fs_check_args(const struct fuse_args *args);
/* Create the session with the kernel-facing `args` (-o allow_other, ...)
 * and mount it on `mountpoint`.  Messages are logged. */
int fs_mount(struct ffs *ffs, struct fuse_args *args, const char *mountpoint);
/* Serve requests until unmounted or signalled; 0 or -errno. */
int fs_loop(struct ffs *ffs, const struct fs_loop_options *o);
/* Stop the notifier, unmount and free the session. */
void fs_unmount(struct ffs *ffs);

#endif
