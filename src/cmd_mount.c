/*
 * cmd_mount.c - `featurefs STORE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]`:
 * parse the options, open (or initialize) and lock the store, open the
 * manifest, mount, daemonize, serve, and tear down in the order that loses
 * nothing.  Run again by mount(8) with -o remount, it changes the kernel's
 * flags of the mounted store instead.
 */
#define FUSE_USE_VERSION 314

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "cli.h"
#include "clock.h"
#include "daemon.h"
#include "fault.h"
#include "ffs.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "proc.h"
#include "watchdog.h"

/* Our -o options as given, before their values are checked. */
struct mount_opts {
	const char *store;
	int positional;
	const char *bad_mountpoint;	/* one that cannot be reached */
	int bad_mountpoint_errno;
	char *manifest;
	char *compress;
	char *compress_level;
	char *frame_cache;
	char *gc_older_than;
	char *gc_interval;
	char *gc_max_size;
	char *lock_timeout;
	char *hash;
	char *passthrough;
	char *metrics;
	char *pool_min, *pool_max;	/* SPEC's, for PostgreSQL: refused */
	int ro;
	int allow_other;
	int default_permissions;
	int subtype, fsname;	/* given: libfuse's, kept as they are */
	int remount;		/* mount(8) -o remount of a mounted store */
	char kernel_opt[32];	/* one the kernel's mount shows (user_id=):
				 * mount(8) passes them to a remount */
	unsigned long ms_flags;	/* the kernel's flags the options set */
	unsigned long ms_cleared; /* ... and those they clear */
};

enum {
	KEY_RO, KEY_RW, KEY_ALLOW_OTHER, KEY_DEFAULT_PERMISSIONS, KEY_SUBTYPE,
	KEY_FSNAME, KEY_REMOUNT, KEY_ATIME, KEY_KERNEL
};

/* The mount(2) flags of fstab's generic options, for a remount. */
static const struct ms_option {
	const char *name;
	unsigned long flag;
	int clears;
} ms_options[] = {
	{ "ro", MS_RDONLY, 0 },		{ "rw", MS_RDONLY, 1 },
	{ "nosuid", MS_NOSUID, 0 },	{ "suid", MS_NOSUID, 1 },
	{ "nodev", MS_NODEV, 0 },	{ "dev", MS_NODEV, 1 },
	{ "noexec", MS_NOEXEC, 0 },	{ "exec", MS_NOEXEC, 1 },
	{ "noatime", MS_NOATIME, 0 },	{ "atime", MS_NOATIME, 1 },
	{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", MS_NODIRATIME, 1 },
	{ "relatime", MS_RELATIME, 0 },	{ "norelatime", MS_RELATIME, 1 },
	{ "strictatime", MS_STRICTATIME, 0 },
	{ "nostrictatime", MS_STRICTATIME, 1 },
	{ "lazytime", MS_LAZYTIME, 0 },	{ "nolazytime", MS_LAZYTIME, 1 },
	{ "sync", MS_SYNCHRONOUS, 0 },	{ "async", MS_SYNCHRONOUS, 1 },
	{ "dirsync", MS_DIRSYNC, 0 },
};

#define OPT(t, f) { t, offsetof(struct mount_opts, f), 0 }

static const struct fuse_opt mount_opt_spec[] = {
	OPT("manifest=%s", manifest),
	OPT("compress=%s", compress),
	OPT("compress_level=%s", compress_level),
	OPT("frame_cache=%s", frame_cache),
	OPT("gc_older_than=%s", gc_older_than),
	OPT("gc_interval=%s", gc_interval),
	OPT("gc_max_size=%s", gc_max_size),
	OPT("lock_timeout=%s", lock_timeout),
	OPT("hash=%s", hash),
	OPT("passthrough=%s", passthrough),
	OPT("metrics=%s", metrics),
	OPT("pool_min=%s", pool_min),
	OPT("pool_max=%s", pool_max),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW), /* the last of ro and rw wins */
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("remount", KEY_REMOUNT),
	/* Access-time flags of an fstab line that libfuse 3.14 does not
	 * know (it takes atime and noatime).  Reads change no atime (an
	 * entry shows its mtime; reads are recorded in the manifest), so
	 * they change nothing and are dropped rather than refused (a
	 * remount gives them to the kernel). */
	FUSE_OPT_KEY("relatime", KEY_ATIME),
	FUSE_OPT_KEY("norelatime", KEY_ATIME),
	FUSE_OPT_KEY("strictatime", KEY_ATIME),
	FUSE_OPT_KEY("nostrictatime", KEY_ATIME),
	FUSE_OPT_KEY("diratime", KEY_ATIME),
	FUSE_OPT_KEY("nodiratime", KEY_ATIME),
	FUSE_OPT_KEY("lazytime", KEY_ATIME),
	FUSE_OPT_KEY("nolazytime", KEY_ATIME),
	/* what libfuse gives the kernel itself */
	FUSE_OPT_KEY("user_id=", KEY_KERNEL),
	FUSE_OPT_KEY("group_id=", KEY_KERNEL),
	FUSE_OPT_KEY("rootmode=", KEY_KERNEL),
	FUSE_OPT_KEY("fd=", KEY_KERNEL),
	FUSE_OPT_END,
};

/* Take the first positional argument as STORE; keep everything else
 * for libfuse. */
static int mount_opt_proc(void *data, const char *arg, int key,
			  struct fuse_args *outargs)
{
	struct mount_opts *mo = data;
	size_t i;

	(void)outargs;
	for (i = 0; i < sizeof(ms_options) / sizeof(ms_options[0]); i++)
		if (key != FUSE_OPT_KEY_NONOPT &&
		    strcmp(arg, ms_options[i].name) == 0)
		{
			unsigned long flag = ms_options[i].flag;

			if (ms_options[i].clears) {
				mo->ms_flags &= ~flag;
				mo->ms_cleared |= flag;
			} else {
				mo->ms_flags |= flag;
				mo->ms_cleared &= ~flag;
			}
		}
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (mo->positional++ == 0) {
			mo->store = arg;
			return 0;
		}
		/* libfuse would call a missing mountpoint a usage error (a
		 * dead mount's, ENOTCONN, check_mountpoint() explains) */
		if (mo->positional == 2 && access(arg, F_OK) < 0 &&
		    (errno == ENOENT || errno == ENOTDIR)) {
			mo->bad_mountpoint = arg;
			mo->bad_mountpoint_errno = errno;
			return 0;
		}
		return 1;
	case KEY_RO:
	case KEY_RW:
		mo->ro = key == KEY_RO;
		return 1;
	case KEY_ALLOW_OTHER:
		mo->allow_other = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		mo->default_permissions = 1;
		return 1;
	case KEY_SUBTYPE:
		mo->subtype = 1;
		return 1;
	case KEY_FSNAME:
		mo->fsname = 1;
		return 1;
	case KEY_REMOUNT:
		mo->remount = 1;
		return 0;
	case KEY_ATIME:
		return 0;
	case KEY_KERNEL:
		snprintf(mo->kernel_opt, sizeof(mo->kernel_opt), "%.*s",
			 (int)strcspn(arg, "="), arg);
		return 0;
	default:
		return 1;
	}
}

static int bad_value(const char *name, const char *value, const char *want)
{
	log_err("invalid %s=%s: expected %s", name, value, want);
	return -EINVAL;
}

/* Check the option values and fill `o`. */
static int check_options(const struct mount_opts *mo, struct ffs_options *o)
{
	const char *dur = "a duration such as 30s, 15m, 12h or 4w, at most 5200w";

	options_defaults(o);
	if (mo->pool_min || mo->pool_max) {
		log_err("%s=: the size of a PostgreSQL connection pool, and "
			"this featurefs has no PostgreSQL backend (SQLite "
			"needs no pool): leave it out",
			mo->pool_min ? "pool_min" : "pool_max");
		return -EINVAL;
	}
	if (mo->gc_older_than &&
	    parse_duration(mo->gc_older_than, &o->gc_older_than_us) < 0)
		return bad_value("gc_older_than", mo->gc_older_than, dur);
	/* a pass more often than a second would be all the daemon does */
	if (mo->gc_interval &&
	    (parse_duration(mo->gc_interval, &o->gc_interval_us) < 0 ||
	     (o->gc_interval_us > 0 && o->gc_interval_us < US_PER_SEC)))
		return bad_value("gc_interval", mo->gc_interval,
				 "0, or a duration of at least 1s such as "
				 "30s, 15m or 12h, at most 5200w");
	if (mo->lock_timeout &&
	    parse_duration(mo->lock_timeout, &o->lock_timeout_us) < 0)
		return bad_value("lock_timeout", mo->lock_timeout, dur);
	if (mo->gc_max_size && parse_size(mo->gc_max_size, &o->gc_max_size) < 0)
		return bad_value("gc_max_size", mo->gc_max_size,
				 "a size such as 512M, 100G or 2T");
	if (mo->hash && parse_hash_mode(mo->hash, &o->hash) < 0)
		return bad_value("hash", mo->hash, "full or footer");
	if (mo->passthrough) {
		if (strcmp(mo->passthrough, "off") == 0)
			o->passthrough = 0;
		else if (strcmp(mo->passthrough, "auto") != 0)
			return bad_value("passthrough", mo->passthrough,
					 "auto or off");
	}
	if (mo->metrics) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (http_parse_endpoint(mo->metrics, &ss, &len) < 0)
			return bad_value("metrics", mo->metrics,
					 "[ADDR:]PORT with a numeric address, "
					 "such as 9100, 127.0.0.1:9100 or "
					 "[::1]:9100");
		o->metrics = strdup(mo->metrics);
		if (!o->metrics)
			return -ENOMEM;
	}
	if (mo->compress && parse_compress_mode(mo->compress, &o->compress) < 0)
		return bad_value("compress", mo->compress, "none, zstd or auto");
	if (mo->compress_level) {
		char *end;
		long level = strtol(mo->compress_level, &end, 10);

		if (*mo->compress_level < '0' || *mo->compress_level > '9' ||
		    *end ||
		    level < COMPRESS_LEVEL_MIN || level > COMPRESS_LEVEL_MAX)
			return bad_value("compress_level", mo->compress_level,
					 "a zstd level from 1 to 22");
		o->compress_level = (int)level;
	}
	if (mo->frame_cache && parse_size(mo->frame_cache, &o->frame_cache) < 0)
		return bad_value("frame_cache", mo->frame_cache,
				 "a size such as 64M or 1G (0 caches nothing)");
	if (mo->manifest) {
		/* before anything is written: a new store would record it */
		if (manifest_uri_has_password(mo->manifest)) {
			log_err("manifest=...: a password in the URI is refused; "
				"use ~/.pgpass, PGPASSFILE or a service file");
			return -EINVAL;
		}
		if (manifest_uri_check(mo->manifest) < 0)
			return -EINVAL;
		o->manifest = strdup(mo->manifest);
		if (!o->manifest)
			return -ENOMEM;
	}
	o->read_only = mo->ro;
	o->allow_other = mo->allow_other;
	o->default_permissions = mo->default_permissions;
	return 0;
}

void mount_options_help(void)
{
	printf("featurefs options (-o):\n"
	       "    manifest=sqlite        manifest backend (store.conf's)\n"
	       "    compress=none|zstd|auto compression of new objects\n"
	       "                           (store.conf's, none for a new store;\n"
	       "                           auto keeps zstd when it saves 10 %%)\n"
	       "    compress_level=N       zstd level, 1-22 (3)\n"
	       "    frame_cache=SIZE       decompressed frames kept (64M)\n"
	       "    gc_older_than=DUR      remove entries unread this long (4w)\n"
	       "    gc_interval=DUR        GC thread period >= 1s, 0 disables (1h)\n"
	       "    gc_max_size=SIZE       LRU quota on stored bytes (none)\n"
	       "    lock_timeout=DUR       wait for an in-flight entry (30s)\n"
	       "    hash=full|footer       what SHA-256 covers (full)\n"
	       "    passthrough=auto|off   the kernel reads entries itself (auto)\n"
	       "    metrics=[ADDR:]PORT    serve /metrics and /health over HTTP\n"
	       "                           (off; ADDR 127.0.0.1 when left out)\n"
	       "    ro                     serve reads only (needed for a store on\n"
	       "                           a read-only filesystem)\n"
	       "    rw                     reads and writes (the default; the last\n"
	       "                           of ro and rw wins)\n"
	       "    remount                (mount -o remount) change ro/rw,\n"
	       "                           noexec, nosuid, nodev, atime flags\n"
	       "                           of a mounted store\n"
	       "    allow_other, default_permissions, and libfuse's own options;\n"
	       "    relatime and the other access-time flags are ignored\n");
}

static void mount_help(void)
{
	printf("usage: featurefs STORE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]\n\n");
	mount_options_help();
	printf("\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* Whether real path `inner` is `outer` or lies beneath it. */
/* Resolve `mountpoint` into `mp` (PATH_MAX) and check that it can take
 * the mount: an existing directory, not a store (a mistyped command
 * would mount a new store over it), not a featurefs mount already, live
 * or with its daemon gone. */
static int check_mountpoint(const char *mountpoint, char *mp)
{
	struct stat st;

	if (!realpath(mountpoint, mp) || stat(mp, &st) < 0) {
		if (errno == ENOTCONN)
			log_err("mountpoint %s: a featurefs mount whose daemon "
				"is gone; unmount it with fusermount3 -u %s",
				mountpoint, mountpoint);
		else
			log_err("mountpoint %s: %s", mountpoint,
				strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("mountpoint %s: not a directory", mountpoint);
		return -ENOTDIR;
	}
	if (strchr(mp, '\n')) {
		log_err("mountpoint %s: a path with a newline cannot be named "
			"in the mount's config; use another", mp);
		return -EINVAL;
	}
	if (store_probe(mp) == 1) {
		log_err("mountpoint %s is a featurefs store; the store comes "
			"first: featurefs mount STORE MOUNTPOINT", mountpoint);
		return -EINVAL;
	}
	/* a second mount on top would hide the first from every command */
	if (cli_is_mount(mp)) {
		log_err("mountpoint %s: a featurefs store is mounted there "
			"already", mountpoint);
		return -EBUSY;
	}
	return 0;
}

static int path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return 1;
	return strncmp(inner, outer, n) == 0 &&
	       (inner[n] == '\0' || inner[n] == '/');
}

/*
 * Refuse a store that the mount would hide (its daemon would then wait
 * on its own mount, for the manifest's files) and a mountpoint inside
 * the store (its scans would enter the mount).  A store not made yet is
 * judged by its parent directory.
 */
static int check_store_place(const char *path, const char *mountpoint)
{
	char real[PATH_MAX], dir[PATH_MAX];
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= sizeof(dir))
		return 0; /* store_probe says why */
	memcpy(dir, path, len);
	dir[len] = '\0';
	if (!realpath(dir, real)) {
		char *slash = strrchr(dir, '/');
		const char *parent = ".", *base = dir;
		size_t used;

		if (errno != ENOENT)
			return 0;
		if (slash) {
			*slash = '\0';
			parent = dir[0] ? dir : "/";
			base = slash + 1;
		}
		if (!realpath(parent, real))
			return 0;
		used = strlen(real);
		if ((size_t)snprintf(real + used, sizeof(real) - used, "%s%s",
				     strcmp(real, "/") ? "/" : "", base) >=
		    sizeof(real) - used)
			return 0;
	}
	/* /.featurefs/config, and what reads it to find the store, give
	 * one path a line */
	if (strchr(real, '\n')) {
		log_err("store %s: a path with a newline cannot be named in "
			"the mount's config; use another", real);
		return -EINVAL;
	}
	if (path_within(real, mountpoint)) {
		log_err("store %s is %s the mountpoint %s: the mount would "
			"hide it; put the store elsewhere", real,
			strcmp(real, mountpoint) ? "inside" : "at", mountpoint);
		return -EINVAL;
	}
	if (path_within(mountpoint, real)) {
		log_err("mountpoint %s is inside the store %s; mount it "
			"elsewhere", mountpoint, real);
		return -EINVAL;
	}
	return 0;
}

/* How long a mount waits for the daemon of a mount just unmounted to let
 * go of the store: it writes its access records and closes the manifest
 * after umount(8) has returned. */
#define LOCK_HANDOVER_MS 10000

/* Whether the store lock's `holder` is on its way out: a mount daemon
 * whose mountpoint carries no featurefs any more, or one that has emptied
 * its record already (store_unlock() does so before it lets go). */
static int holder_is_leaving(const struct store_holder *holder)
{
	char fstype[64];

	if (!holder->role[0])
		return 1;
	return strcmp(holder->role, "mount") == 0 && holder->mountpoint[0] &&
	       !(proc_mount_at(holder->mountpoint, NULL, fstype, NULL) &&
		 strcmp(fstype, "fuse.featurefs") == 0);
}

/* Open or create the store at `path` and take its lock.  A store made
 * here is named in `made` (its real path; "" otherwise, PATH_MAX bytes),
 * and `*made_dir` says whether its directory was made too. */
static int open_store(const char *path, const char *mountpoint,
		      const char *manifest, enum compress_mode compress,
		      struct store **out, char *made, int *made_dir)
{
	struct store_holder holder;
	char who[128];
	struct stat st;
	int rc, waited;

	rc = check_store_place(path, mountpoint);
	if (rc < 0)
		return rc;
	rc = store_probe(path);
	if (rc == -ENOTEMPTY) {
		store_log_not_empty(path, "");
		return rc;
	}
	if (rc == 0) {
		*made_dir = stat(path, &st) < 0;
		rc = store_init(path, manifest ? manifest : "sqlite",
				compress == COMPRESS_STORE
					? "none"
					: compress_mode_name(compress));
		if (rc == -EEXIST) {
			rc = 1; /* another mount or init made it meanwhile */
		} else if (rc == -ENOTEMPTY) {
			store_log_not_empty(path, "");
			return rc;
		} else if (rc < 0) {
			if (rc != -EINVAL) /* else store_init() said why */
				log_err("initialize store %s: %s", path,
					strerror(-rc));
			return rc;
		} else {
			if (!realpath(path, made))
				made[0] = '\0';
			log_info("initialized a new store at %s", path);
		}
	}
	if (rc > 0) {
		if (store_check_not_nested(path) < 0)
			return -EINVAL; /* it said why */
		rc = store_remake_layout(path);
	}
	if (rc < 0) {
		log_err("store %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = store_open(path, out);
	if (rc < 0)
		return rc;
	rc = store_check_one_fs(*out);
	if (rc < 0) {
		store_close(*out);
		*out = NULL;
		return rc;
	}
	rc = store_lock(*out, "mount", mountpoint, &holder);
	for (waited = 0; rc == -EBUSY && holder_is_leaving(&holder) &&
			 waited < LOCK_HANDOVER_MS;
	     waited += 50) {
		if (waited == 0)
			log_info("store %s: waiting for the mount that held it "
				 "to let go of it", (*out)->root);
		usleep(50 * 1000);
		rc = store_lock(*out, "mount", mountpoint, &holder);
	}
	if (rc == -EBUSY) {
		if (strcmp(holder.role, "mount") == 0 &&
		    holder_is_leaving(&holder))
			/* umount -l: the daemon serves what is still open */
			log_err("store %s is held by pid %ld, unmounted from %s "
				"(umount -l) but serving files still open "
				"there: it lets go once they are closed",
				(*out)->root, (long)holder.pid,
				holder.mountpoint);
		else if (strcmp(holder.role, "mount") == 0)
			log_err("store %s already mounted by pid %ld%s%s",
				(*out)->root, (long)holder.pid,
				holder.mountpoint[0] ? " at " : "",
				holder.mountpoint);
		else {
			store_holder_describe(*out, &holder, who, sizeof(who));
			log_err("store %s is in use by %s", (*out)->root, who);
		}
	}
	if (rc < 0) {
		store_close(*out);
		*out = NULL;
	}
	return rc;
}

static int open_manifest(struct ffs *ffs)
{
	struct manifest_open_args a = {
		.store_root = ffs->store->root,
		.store_uuid = ffs->store->conf.uuid,
		.read_only = ffs->store->read_only_fs,
		.may_create = 1,
	};
	int rc;

	rc = manifest_open(ffs->store->conf.manifest, &a, &ffs->manifest);
	if (rc == 0) {
		rc = manifest_time(ffs->manifest, stats_observe_manifest,
				   &ffs->ctr);
		if (rc < 0) {
			manifest_close(ffs->manifest);
			ffs->manifest = NULL;
		}
	}
	return rc;
}

static int stop_at_first_symbol(void *arg, const struct manifest_symbol *s)
{
	(void)arg;
	(void)s;
	return 1;
}

/* A manifest without a single symbol while objects/ holds some: its rows
 * were lost (manifest.db deleted, or replaced by an empty one).  The
 * mount would look empty without a word; say what happened and how the
 * objects come back. */
static void warn_lost_rows(struct ffs *ffs)
{
	struct dirent *d;
	DIR *objects;
	int fd, found = 0;

	if (manifest_symbol_list(ffs->manifest, 0, stop_at_first_symbol,
				 NULL) != 0)
		return; /* a symbol, or the manifest fails: said elsewhere */
	fd = openat(ffs->store->objects_fd, ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	objects = fd >= 0 ? fdopendir(fd) : NULL;
	if (!objects) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while (!found && (d = readdir(objects)))
		found = strcmp(d->d_name, ".") != 0 &&
			strcmp(d->d_name, "..") != 0;
	closedir(objects);
	if (found)
		log_warn("store %s: the manifest holds no symbol, but objects/ "
			 "holds files: its rows were lost (manifest.db deleted "
			 "or replaced?). The mount shows none of them; restore "
			 "manifest.db, or unmount and run fsck -p, which adopts "
			 "the valid objects", ffs->store->root);
}

/* A store on a read-only filesystem (a snapshot, a read-only export) is
 * served with -o ro only, and keeps no access records: nothing can be
 * written there. */
static int check_read_only_media(const struct ffs *ffs)
{
	if (!ffs->store->read_only_fs)
		return 0;
	if (!ffs->opt.read_only) {
		log_err("store %s is on a read-only filesystem: mount it with "
			"-o ro", ffs->store->root);
		return -EROFS;
	}
	log_info("store %s is on a read-only filesystem: no access records, "
		 "control socket or GC", ffs->store->root);
	return 0;
}

/* Check that -o manifest= agrees with store.conf (its form was checked
 * with the other options). */
static int check_manifest_option(const struct ffs *ffs)
{
	const char *conf = ffs->store->conf.manifest;

	if (ffs->opt.manifest && strcmp(ffs->opt.manifest, conf) != 0) {
		log_err("manifest=%s disagrees with store.conf (manifest = %s)",
			ffs->opt.manifest, manifest_uri_shown(conf));
		return -EINVAL;
	}
	return 0;
}

/* Without -o compress=, new objects follow store.conf's compression. */
static int resolve_compression(struct ffs *ffs)
{
	const char *conf = ffs->store->conf.compression;

	if (ffs->opt.compress != COMPRESS_STORE)
		return 0;
	if (parse_compress_mode(conf, &ffs->opt.compress) < 0) {
		log_err("store.conf: compression = %s: expected none, zstd or "
			"auto", conf);
		return -EINVAL;
	}
	return 0;
}

/*
 * Every read the daemon serves (passthrough off or unavailable, as on
 * kernels before 6.9), every write in flight and every scratch file holds
 * a descriptor: take the hard limit, as servers do, rather than the 1024
 * that mount(8) and systemd leave as the soft one.  A limit too low to
 * open the store and serve anything is refused here, by name, rather
 * than by whichever open comes first.
 */
#define NOFILE_MIN 64

static int raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_warn("raising the open-file limit to %llu: %s",
				 (unsigned long long)rl.rlim_max,
				 strerror(errno));
			getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (rl.rlim_cur < NOFILE_MIN) {
		log_err("the open-file limit is %llu: a mount needs at least "
			"%d (ulimit -n, LimitNOFILE=)",
			(unsigned long long)rl.rlim_cur, NOFILE_MIN);
		return -EMFILE;
	}
	return 0;
}

static int register_mount(struct ffs *ffs)
{
	struct manifest_mount mt = { 0 };

	snprintf(mt.id, sizeof(mt.id), "%s", ffs->store->mount_id);
	gethostname(mt.host, sizeof(mt.host) - 1);
	mt.pid = getpid();
	snprintf(mt.mountpoint, sizeof(mt.mountpoint), "%s", ffs->mountpoint);
	mt.mounted_ts = mt.heartbeat_ts = now_us();
	return manifest_mount_register(ffs->manifest, &mt);
}

/*
 * Make the store's path the mount's source, as mount(8), df and findmnt
 * show it (libfuse's default is the subtype), so that `mount -a` finds an
 * fstab line's store mounted instead of mounting it again.  An
 * -o fsname= given is kept.
 */
static int name_source(struct fuse_args *args, const struct mount_opts *mo,
		       const char *root)
{
	char *opt = NULL, *fsname;
	int rc = 0;

	if (mo->fsname)
		return 0;
	if (asprintf(&fsname, "fsname=%s", root) < 0)
		return -ENOMEM;
	/* first: after a "--", an argument is no option */
	if (fuse_opt_add_opt_escaped(&opt, fsname) != 0 ||
	    fuse_opt_insert_arg(args, 1, "-o") != 0 ||
	    fuse_opt_insert_arg(args, 2, opt) != 0)
		rc = -ENOMEM;
	free(fsname);
	free(opt);
	return rc;
}

/* Whether any featurefs option (not the kernel's or libfuse's) is given. */
static int has_featurefs_options(const struct mount_opts *mo)
{
	return mo->manifest || mo->compress || mo->compress_level ||
	       mo->frame_cache || mo->gc_older_than || mo->gc_interval ||
	       mo->gc_max_size || mo->lock_timeout || mo->hash ||
	       mo->passthrough || mo->metrics || mo->allow_other ||
	       mo->default_permissions;
}

/*
 * `mount -o remount,...`: mount(8) runs the helper again.  The kernel's
 * flags (ro/rw, nosuid, noexec, the atime ones) change on the mounted
 * store; the daemon keeps its own options, so a mount made with -o ro is
 * not made writable.  0 or a negative errno, logged.
 */
/* The mount(2) flags mounted at `mountpoint` now, as statvfs(3) gives
 * them; 0 when it cannot tell. */
static unsigned long current_ms_flags(const char *mountpoint)
{
	static const struct {
		unsigned long st, ms;
	} map[] = {
		{ ST_RDONLY, MS_RDONLY },	{ ST_NOSUID, MS_NOSUID },
		{ ST_NODEV, MS_NODEV },		{ ST_NOEXEC, MS_NOEXEC },
		{ ST_SYNCHRONOUS, MS_SYNCHRONOUS },
		{ ST_NOATIME, MS_NOATIME },	{ ST_NODIRATIME, MS_NODIRATIME },
		{ ST_RELATIME, MS_RELATIME },
	};
	unsigned long flags = 0;
	struct statvfs sv;
	size_t i;

	if (statvfs(mountpoint, &sv) < 0)
		return 0;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (sv.f_flag & map[i].st)
			flags |= map[i].ms;
	return flags;
}

/* -o remount: the mount at `mountpoint`, which must be featurefs serving
 * the store `mo` names, takes the flags `mo` gives (ro and rw; featurefs
 * options keep their values, with a warning).  0, or a negative errno
 * after a log line saying why. */
static int remount_store(const struct mount_opts *mo, const char *mountpoint)
{
	char path[PATH_MAX + 32], line[PATH_MAX + 16], mounted[PATH_MAX];
	char given[PATH_MAX], source[PATH_MAX + 1];
	int daemon_ro = -1;
	struct statfs sfs;
	unsigned long flags;
	FILE *f;

	snprintf(path, sizeof(path), "%s/.featurefs/config", mountpoint);
	f = fopen(path, "re");
	if (!f || statfs(mountpoint, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC) {
		log_err("remount %s: not a featurefs mount", mountpoint);
		if (f)
			fclose(f);
		return -EINVAL;
	}
	mounted[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "ro = ", 5) == 0)
			daemon_ro = strcmp(line + 5, "yes\n") == 0;
		if (strncmp(line, "store = ", 8) == 0)
			snprintf(mounted, sizeof(mounted), "%.*s",
				 (int)strcspn(line + 8, "\n"), line + 8);
	}
	fclose(f);
	/* the store named is the one mounted there, not another the
	 * caller meant; mount(8) names it as /proc/mounts does, by the
	 * mount's fsname= when it was given one */
	if ((!realpath(mo->store, given) || strcmp(given, mounted) != 0) &&
	    !(mountpoint[0] == '/' &&
	      proc_mount_at(mountpoint, NULL, NULL, source) &&
	      strcmp(source, mo->store) == 0)) {
		log_err("remount %s: it serves store %s, not %s", mountpoint,
			mounted, mo->store);
		return -EINVAL;
	}
	/* MS_REMOUNT sets the flags it is given and clears the others: what
	 * the options do not name keeps its value, as with mount(8) */
	flags = (current_ms_flags(mountpoint) & ~mo->ms_cleared) | mo->ms_flags;
	if (daemon_ro == 1 && !(flags & MS_RDONLY)) {
		log_err("remount %s read-write: it was mounted with -o ro, "
			"and its daemon serves reads only; umount and mount "
			"it again", mountpoint);
		return -EROFS;
	}
	if (has_featurefs_options(mo))
		log_warn("remount %s: featurefs options keep the values the "
			 "mount started with; umount and mount again to change "
			 "them", mountpoint);
	if (mount(NULL, mountpoint, NULL, MS_REMOUNT | flags, NULL) < 0) {
		int rc = -errno;

		log_err("remount %s: %s%s", mountpoint, strerror(-rc),
			rc == -EBUSY && (flags & MS_RDONLY)
				? " (files are open for writing there)"
				: "");
		return rc;
	}
	return 0;
}

/* Point descriptor `fd` at /dev/null, as a daemon's stdio is. */
static void redirect_to_null(int fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0)
		return;
	if (null != fd) {
		dup2(null, fd); /* the copy is without O_CLOEXEC */
		close(null);
	}
}

/*
 * Go into the background as fuse_daemonize() does, but keep the parent
 * waiting for the child's word on its start (detach_done()), and exit
 * with it: a start that fails after the fork (the manifest, the control
 * socket, the HTTP listener) exits 1 with its message on the terminal,
 * as in the foreground, and a mount returns once it serves.  In the
 * child, returns the write end of the pipe for that word.
 */
static int detach(void)
{
	int pipefd[2], status = 1;
	ssize_t n;
	char word;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int rc = -errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return rc;
	}
	if (pid > 0) {
		close(pipefd[1]);
		do
			n = read(pipefd[0], &word, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 && word == 0)
			status = 0;
		_exit(status); /* the mount is the child's now */
	}
	close(pipefd[0]);
	if (setsid() < 0 || chdir("/") < 0)
		log_warn("detach: %s", strerror(errno));
	redirect_to_null(STDIN_FILENO);
	return pipefd[1];
}

/* Tell the parent waiting in detach() whether the start went well, then
 * let go of its terminal: the log goes to syslog from now on (what went
 * wrong before has been said on the terminal).  `notify` < 0 (the
 * foreground): nothing. */
static void detach_done(int notify, int ok)
{
	char word = ok ? 0 : 1;

	if (notify < 0)
		return;
	if (write(notify, &word, 1) != 1)
		log_warn("detach: telling the parent: %s", strerror(errno));
	close(notify);
	redirect_to_null(STDOUT_FILENO);
	redirect_to_null(STDERR_FILENO);
	log_use_syslog(1);
}

int cmd_mount(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = { 0 };
	struct fs_loop_options loop = { 0 };
	struct mount_opts mo = { 0 };
	struct ffs ffs = { 0 };
	char mp[PATH_MAX], made[PATH_MAX] = "";
	int rc, ret = 1, inited = 0, notify = -1, made_dir = 0, served = 0;

	fault_setup();
	/* the subtype first: libfuse's default would be argv[0]'s name */
	if (fuse_opt_parse(&args, &mo, mount_opt_spec, mount_opt_proc) < 0 ||
	    (!mo.subtype &&
	     fuse_opt_insert_arg(&args, 1, "-osubtype=featurefs")) ||
	    fuse_parse_cmdline(&args, &cmd) != 0) {
		ret = cli_usage("mount", NULL);
		goto out;
	}
	if (cmd.show_help) {
		mount_help();
		ret = 0;
		goto out;
	}
	if (cmd.show_version) {
		printf("featurefs %s\n", FEATUREFS_VERSION);
		fflush(stdout); /* before what libfuse and fusermount3 print */
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (mo.bad_mountpoint) {
		log_err("mountpoint %s: %s", mo.bad_mountpoint,
			strerror(mo.bad_mountpoint_errno));
		goto out;
	}
	if (!mo.store || !cmd.mountpoint) {
		ret = cli_usage("mount", "STORE and MOUNTPOINT are required");
		goto out;
	}
	if (mo.kernel_opt[0] && !mo.remount) {
		log_err("-o %s=: featurefs sets it for the kernel itself",
			mo.kernel_opt);
		ret = EXIT_USAGE;
		goto out;
	}
	/* a remount changes none of them, but a wrong one is still wrong,
	 * as is an option neither featurefs nor libfuse knows */
	if (check_options(&mo, &ffs.opt) < 0 ||
	    (mo.remount && fs_check_args(&args) < 0)) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (mo.remount) {
		ret = remount_store(&mo, cmd.mountpoint) < 0;
		goto out;
	}
	log_set_debug(cmd.debug);
	if (raise_nofile_limit() < 0)
		goto out;
	/* a write past a file-size limit (ulimit -f, LimitFSIZE=) fails
	 * with EFBIG, refused as any full disk is, rather than killing
	 * the mount */
	signal(SIGXFSZ, SIG_IGN);
	if (fs_check_args(&args) < 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (check_mountpoint(cmd.mountpoint, mp) < 0)
		goto out;
	if (ffs_init(&ffs) < 0)
		goto out;
	inited = 1;
	ffs.mountpoint = mp;
	if (open_store(mo.store, mp, ffs.opt.manifest, ffs.opt.compress,
		       &ffs.store, made, &made_dir) < 0)
		goto out;
	if (check_read_only_media(&ffs) < 0 ||
	    name_source(&args, &mo, ffs.store->root) < 0 ||
	    check_manifest_option(&ffs) < 0 || resolve_compression(&ffs) < 0 ||
	    open_manifest(&ffs) < 0)
		goto out;
	if (http_listen(&ffs) < 0)
		goto out;
	if (!ffs.opt.read_only && daemon_recover(&ffs) < 0)
		goto out;
	/* after recovery, which removes what a crash left half removed */
	warn_lost_rows(&ffs);
	if (!cmd.foreground) {
		/* no database handle may cross the fork of daemonizing */
		manifest_close(ffs.manifest);
		ffs.manifest = NULL;
	}
	if (fs_mount(&ffs, &args, mp) < 0)
		goto out;
	if (!cmd.foreground) {
		notify = detach();
		if (notify < 0) {
			log_err("detach: %s", strerror(-notify));
			goto out;
		}
		store_lock_update(ffs.store, "mount", mp);
		if (open_manifest(&ffs) < 0)
			goto out;
	}
	/* a record that found no room at the lock fits once the manifest's
	 * open gave up its reserve */
	if (ffs.store->unrecorded &&
	    store_lock_update(ffs.store, "mount", mp) == 0)
		log_info("store %s: store.lock names its holder now",
			 ffs.store->root);
	manifest_writer_id(ffs.store->mount_id, ffs.writer_id,
			   sizeof(ffs.writer_id));
	if (!ffs.store->read_only_fs && register_mount(&ffs) < 0)
		log_warn("could not register the mount in the manifest");
	rc = daemon_start(&ffs);
	if (rc < 0) {
		log_err("start: %s", strerror(-rc));
		goto stop;
	}
	if (http_start(&ffs) < 0)
		goto stop;
	detach_done(notify, 1);
	notify = -1;
	served = 1;
	/* forked once the terminal is let go of, which it would hold */
	rc = watchdog_start(watchdog_connection(&ffs.mounted_as));
	if (rc < 0)
		log_warn("no watchdog: %s (a killed daemon may leave the "
			 "mount hanging until umount -f)", strerror(-rc));
	log_info("serving %s at %s (manifest %s)", ffs.store->root, mp,
		 manifest_backend_name(ffs.manifest));
	loop.single_thread = cmd.singlethread;
	loop.clone_fd = cmd.clone_fd;
	loop.max_threads = cmd.max_threads;
	rc = fs_loop(&ffs, &loop);
	ret = rc < 0 ? 1 : 0;
stop:
	daemon_stop(&ffs);
	if (!ffs.store->read_only_fs)
		manifest_mount_unregister(ffs.manifest, ffs.store->mount_id);
	log_info("unmounted %s", mp);
out:
	if (inited) /* its descriptors are -1 from ffs_init() on, not 0 */
		http_stop(&ffs);
	if (ffs.fuse)
		fs_unmount(&ffs);
	manifest_close(ffs.manifest);
	if (inited)
		ffs_destroy(&ffs);
	store_close(ffs.store);
	options_release(&ffs.opt);
	free(cmd.mountpoint);
	free(mo.manifest);
	free(mo.compress);
	free(mo.compress_level);
	free(mo.frame_cache);
	free(mo.gc_older_than);
	free(mo.gc_interval);
	free(mo.gc_max_size);
	free(mo.lock_timeout);
	free(mo.hash);
	free(mo.passthrough);
	free(mo.metrics);
	free(mo.pool_min);
	free(mo.pool_max);
	fuse_opt_free_args(&args);
	/* a store this mount made is not left behind by its failure (a busy
	 * metrics port, options the kernel refuses) */
	if (ret != 0 && !served && made[0])
		store_unmake(made, made_dir);
	detach_done(notify, 0); /* a start that failed, its mount gone */
	return ret;
}
