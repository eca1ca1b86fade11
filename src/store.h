/*
 * store.h - the on-disk layout of a store (SPEC §4).
 *
 *     STORE/store.conf      format version, uuid, manifest kind, compression
 *     STORE/store.lock      flock()ed by the mount (or a repairing command)
 *     STORE/manifest.db     SQLite manifest, when manifest = sqlite
 *     STORE/objects/<symbol>/<key>.parquet
 *     STORE/tmp/            in-flight and scratch data
 *     STORE/lost+found/     objects fsck quarantined
 *
 * Everything is reached through directory descriptors and *at() calls, so
 * the daemon never depends on its working directory.  Writes, fsyncs and
 * renames go through store_* wrappers: the one seam where tests inject
 * faults (fault.h).
 */
#ifndef FEATUREFS_STORE_H
#define FEATUREFS_STORE_H

#include <stdint.h>
#include <sys/types.h>

#include "names.h"

#define STORE_FORMAT 1
#define STORE_URI_MAX 512
#define STORE_MOUNT_ID_LEN 16
/* "objects/<symbol>/<key>.parquet" */
#define STORE_REL_MAX (8 + SYMBOL_MAX + 1 + KEY_MAX + ENTRY_SUFFIX_LEN + 8)
/* "<mount id>.<seq>.scratch" */
#define STORE_TMP_NAME_MAX 64

struct store_conf {
	int format;
	char uuid[37];
	char manifest[STORE_URI_MAX]; /* "sqlite" or a URI without secrets */
	char compression[16];	      /* default for new objects */
};

/* Who holds the store lock, as written in store.lock. */
struct store_holder {
	pid_t pid;
	char role[16];			/* "mount", "fsck", "gc", ... */
	char mount_id[STORE_MOUNT_ID_LEN + 1];
	char mountpoint[4096];
};

struct store {
	char *root;		/* absolute path of STORE */
	int root_fd;
	int objects_fd;
	int tmp_fd;
	int lock_fd;		/* >= 0 while we hold the store lock */
	int unrecorded;		/* held, but the holder record found no
				 * room (a full filesystem) */
	int read_only_fs;	/* on a read-only filesystem (a snapshot, a
				 * read-only export): readers only */
	struct store_conf conf;
	char mount_id[STORE_MOUNT_ID_LEN + 1]; /* prefix of our tmp files */
	uint64_t tmp_seq;	/* atomic */
};

/*
 * Create the layout and store.conf under `path` (created 0700 if missing).
 * `manifest` is the manifest URI to record ("sqlite"), `compression` the
 * compression of new objects ("none", "zstd", "auto").  Fails with -EEXIST
 * when `path` already holds a store (one made meanwhile by another init,
 * which it waits for, too), -ENOTEMPTY when it holds anything else,
 * -EINVAL (logged here) when it lies inside another store.  Takes up a
 * half-finished init (crash during init); a failure removes only what it
 * made.
 */
int store_init(const char *path, const char *manifest,
	       const char *compression);

/* -EINVAL (logged) when `path`, made or not, lies inside another store,
 * whose fsck and GC would take its files for their own; else 0. */
int store_check_not_nested(const char *path);

/* 1 when `path` holds store.conf, 0 when it is missing or an empty (or
 * half-initialized) directory, -ENOTEMPTY when it holds something else:
 * a manifest, say, of a store that lost its store.conf. */
int store_probe(const char *path);

/* Log why store_probe() found `path` not empty, after `who` ("init: "). */
void store_log_not_empty(const char *path, const char *who);

/* Undo store_init() for a mount that failed before it served: remove
 * what init and the failed start made there, and `path` itself when
 * `with_dir`.  Anything else stays, and the directory with it. */
void store_unmake(const char *path, int with_dir);

/* Make objects/ and tmp/ of the store at `path` again where they are
 * missing (a cleaner of old files removes empty directories), logged.  For
 * a mount, which writes anyway; 0 or a negative errno. */
int store_remake_layout(const char *path);

/*
 * Open an existing store: resolve the path, read and check store.conf
 * (-EPROTO for a newer format, -EINVAL for a malformed file, messages
 * logged), open the directories.  Takes no lock.
 */
int store_open(const char *path, struct store **out);
void store_close(struct store *s);

/*
 * Take the exclusive store lock without waiting and record who holds it.
 * Returns 0, or -EBUSY with `holder` describing the current holder
 * (empty on a read-only filesystem), or another negative errno, logged.
 */
int store_lock(struct store *s, const char *role, const char *mountpoint,
	       struct store_holder *holder);
/* Rewrite the holder record (after daemonizing changes our pid). */
int store_lock_update(struct store *s, const char *role,
		      const char *mountpoint);
void store_unlock(struct store *s);

/* 0 when objects/ and tmp/ are on one filesystem, as publishing needs
 * (an object is installed by a hard link from tmp/); -EXDEV, logged,
 * when one of them leads elsewhere (a symbolic link to another disk). */
int store_check_one_fs(const struct store *s);

/* 0 when the store can hold what a mount writes: its directory still
 * linked and, if `writable`, tmp/ writable with room and a new file made
 * there; else the negative errno that says why not. */
int store_health(const struct store *s, int writable);

/* Who `holder` of `s`'s lock is, for a message: "pid N (featurefs
 * ROLE)", or another program's flock(2) when the lock file holds no
 * featurefs record (read-only media hold none: another featurefs). */
void store_holder_describe(const struct store *s,
			   const struct store_holder *holder, char *buf,
			   size_t len);

/* 1 and `holder` filled when somebody holds the lock, 0 when free.  On a
 * read-only filesystem no holder is recorded: `holder` stays empty. */
int store_lock_probe(struct store *s, struct store_holder *holder);

/* Relative path of an entry's object: "objects/<symbol>/<key>.parquet". */
void store_object_relpath(const char *symbol, const char *key, char *buf,
			  size_t len);

/*
 * Create a new file in tmp/ named "<mount id>.<seq>.<kind>" (mode 0600),
 * opened O_RDWR.  Returns the descriptor and fills `name`.
 */
int store_tmp_create(struct store *s, const char *kind, char *name,
		     size_t len);
/* Open tmp/<name> for reading, where `name` comes from a manifest row: a
 * plain name (never a path out of tmp/) of a regular file, or -EINVAL. */
int store_tmp_open_named(struct store *s, const char *name);
int store_tmp_unlink(struct store *s, const char *name);

/*
 * Link tmp/<tmpname> as objects/<symbol>/<key>.parquet, creating the
 * symbol's directory, and make the link durable (fsync of both
 * directories; a failure of that is logged, not returned: the object is
 * in place).  The file's data must already be fsynced.  -EEXIST if an
 * object is already there (it is never replaced).  tmp/<tmpname> stays
 * until the caller has recorded the object (then store_tmp_unlink()):
 * were that to fail, the data would still be where its row says.
 */
int store_object_install(struct store *s, const char *tmpname,
			 const char *symbol, const char *key);

/* Open the directory holding `rel`, a path under STORE of at most one
 * directory below the store's own ("objects/<symbol>/<name>",
 * "tmp/<name>", "lost+found"), without following a symlink on the way
 * (objects/ and tmp/ themselves may be links on the store's filesystem),
 * and point `leaf` at the last name in `rel`.  -ENOTDIR for a link. */
int store_parent_open(struct store *s, const char *rel, const char **leaf);

/* Open an object for reading, by relative path; -EINVAL when it is not a
 * regular file (a symlink or FIFO planted in objects/). */
int store_object_open(struct store *s, const char *relpath);
/* Remove an object by relative path; -ENOENT when it is already gone. */
int store_object_unlink(struct store *s, const char *relpath);
/* Remove the objects paths[0..n) names, several at a time, leaving each
 * one's store_object_unlink() result in rcs[i]; a NULL path is skipped
 * (rcs[i] = 0).  An unlink whose directory block is not cached waits for
 * the disk while holding that directory: a GC pass over idle objects,
 * spread over many directories, would otherwise wait for each in turn. */
void store_objects_unlink(struct store *s, const char *const *paths,
			  size_t n, int *rcs);
/* fsync objects/<symbol>/ (0 when there is none): makes its unlinks
 * durable. */
int store_symbol_dir_sync(struct store *s, const char *symbol);
/* Remove objects/<symbol>/ if it is empty (quietly keeps it otherwise). */
void store_symbol_dir_remove(struct store *s, const char *symbol);

/* System calls through the fault seam. */
ssize_t store_pwrite(int fd, const void *buf, size_t len, off_t off);
int store_fsync(int fd);

#endif
