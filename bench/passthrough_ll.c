/*
 * passthrough_ll.c - the "best FUSE can do" anchor of the benchmark: a
 * minimal read-only passthrough filesystem on libfuse's lowlevel API,
 * shaped like libfuse's example/passthrough_ll.c but written for bench/.
 *
 *   passthrough_ll SOURCE MOUNTPOINT [-o OPTS] [-s] [--max-threads=N]
 *
 * It serves SOURCE the way featurefs serves a published entry: long
 * entry/attr timeouts, keep_cache and noflush on every open, pread into
 * a per-thread buffer answered with fuse_reply_buf, the same init
 * settings (max_background 64) and the multi-threaded loop.  What it
 * lacks is everything featurefs does on top: names checked against a
 * manifest, hit counting, in-flight entries.  Always in the foreground.
 * Nodes are not shared between lookups of one file (each lookup makes
 * its own); the kernel's long timeouts make repeated lookups rare.
 */
#define FUSE_USE_VERSION 314
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#define TIMEOUT 86400.0
#define READ_BUF_SIZE (1u << 20)

struct pt_node {
	int fd;			/* O_PATH */
	uint64_t nlookup;	/* atomic */
};

struct pt_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

static struct pt_node root = { .fd = -1 };
static pthread_key_t read_buf_key;

static struct pt_node *node_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &root : (struct pt_node *)(uintptr_t)ino;
}

static void pt_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct pt_node *n;
	int fd;

	memset(&e, 0, sizeof(e));
	fd = openat(node_of(parent)->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (fstatat(fd, "", &e.attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		close(fd);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n->fd = fd;
	n->nlookup = 1;
	e.ino = (fuse_ino_t)(uintptr_t)n;
	e.attr_timeout = TIMEOUT;
	e.entry_timeout = TIMEOUT;
	if (fuse_reply_entry(req, &e) == -ENOENT) {
		close(fd);
		free(n);
	}
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	struct pt_node *n = node_of(ino);

	if (n == &root)
		return;
	if (__atomic_sub_fetch(&n->nlookup, nlookup, __ATOMIC_ACQ_REL) == 0) {
		close(n->fd);
		free(n);
	}
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (fstatat(node_of(ino)->fd, "", &st,
		    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char path[64];
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", node_of(ino)->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		close(fd);
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = pthread_getspecific(read_buf_key);
	size_t done = 0;

	(void)ino;
	if (!buf) {
		buf = malloc(READ_BUF_SIZE);
		if (!buf || pthread_setspecific(read_buf_key, buf) != 0) {
			free(buf);
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	if (size > READ_BUF_SIZE)
		size = READ_BUF_SIZE;
	while (done < size) {
		ssize_t n = pread((int)fi->fh, buf + done, size - done,
				  off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	fuse_reply_buf(req, buf, done);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void pt_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct pt_dir *d = calloc(1, sizeof(*d));
	int fd;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(node_of(ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d->dp = fd < 0 ? NULL : fdopendir(fd);
	if (!d->dp) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dp);
		free(d);
	}
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		struct stat st;
		size_t len;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry)
				break;
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = d->entry->d_ino;
		st.st_mode = (mode_t)d->entry->d_type << 12;
		len = fuse_add_direntry(req, buf + used, size - used,
					d->entry->d_name, &st,
					d->entry->d_off);
		if (len > size - used)
			break;
		used += len;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;

	(void)ino;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	if (fstatvfs(node_of(ino)->fd, &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops pt_ops = {
	.init = pt_init,
	.lookup = pt_lookup,
	.forget = pt_forget,
	.forget_multi = pt_forget_multi,
	.getattr = pt_getattr,
	.open = pt_open,
	.read = pt_read,
	.release = pt_release,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.releasedir = pt_releasedir,
	.statfs = pt_statfs,
};

int main(int argc, char **argv)
{
	struct fuse_args args;
	struct fuse_cmdline_opts opts = { 0 };
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	int ret = 1;

	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: passthrough_ll SOURCE MOUNTPOINT "
				"[-o OPTS] [-s] [--max-threads=N]\n");
		return 2;
	}
	root.fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root.fd < 0) {
		perror(argv[1]);
		return 1;
	}
	root.nlookup = 2;
	argv[1] = argv[0]; /* drop SOURCE for libfuse */
	args = (struct fuse_args)FUSE_ARGS_INIT(argc - 1, argv + 1);
	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint)
		goto out;
	if (pthread_key_create(&read_buf_key, free) != 0)
		goto out;
	se = fuse_session_new(&args, &pt_ops, sizeof(pt_ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out_mount;
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned)opts.clone_fd);
		if (opts.max_threads)
			fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	ret = ret != 0;
out_mount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	close(root.fd);
	return ret;
}
