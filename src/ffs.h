/*
 * ffs.h - the context of one mount and its in-memory namespace.
 *
 * `struct ffs` is the only mutable state of a mounted store: options, the
 * store and manifest handles, the nodes the kernel knows, counters and
 * the background threads.  The namespace (node.c) and the life of entries
 * (entry.c) live here, free of FUSE: fs.c translates kernel requests into
 * these calls and supplies `struct ffs_hooks` for what must reach back
 * into the kernel (cache invalidation, replies to waiting opens).
 *
 * Locking: `ffs->lock` guards the names table, node links and reference
 * counts, per-symbol child lists and the waiter list.  A writer's own
 * mutex (`struct writer.mu`) guards its file, size and hash; it may be
 * taken before `ffs->lock`, never after.  No lock is held across manifest
 * or store I/O except writer.mu.
 */
#ifndef FEATUREFS_FFS_H
#define FEATUREFS_FFS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "coverage.h"
#include "frame_cache.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "options.h"
#include "parquet.h"
#include "proc.h"
#include "slo.h"
#include "stats.h"
#include "store.h"

struct access_log;
struct ffs;
struct htab;

enum node_kind {
	NODE_ROOT,
	NODE_CONTROL_DIR,	/* /.featurefs */
	NODE_CONTROL_FILE,	/* /.featurefs/<name> */
	NODE_SYMBOL,		/* /<symbol> */
	NODE_ENTRY,		/* /<symbol>/<key>.parquet */
	NODE_SCRATCH,		/* /<symbol>/.<name>, or in a scratch dir */
	NODE_SCRATCH_DIR,	/* /<symbol>/.<name>/ */
};

/* A read-open waiting for an in-flight entry (SPEC §3 step 3). */
struct waiter {
	struct waiter *next, *prev;	/* ffs->waiters */
	struct node *node;
	int64_t start_us;		/* monotonic */
	int64_t deadline_us;		/* monotonic */
	void *req;			/* the FUSE side's request */
	int flags;			/* open(2) flags */
	pid_t pid;			/* the thread that opens */
};

/* A wait a caught signal ended (EINTR), which the same thread's open
 * of the same entry, retried at once, takes up with its start. */
struct interrupted_wait {
	pid_t pid;
	char symbol[SYMBOL_MAX + 1];	/* of the entry waited for */
	char life[STORE_TMP_NAME_MAX];	/* the write waited for: its tmp
					 * file's name, one per life */
	int64_t start_us;		/* monotonic, of the wait */
	int64_t at_us;			/* monotonic, of the signal */
};

#define INTERRUPTED_WAITS 32

/*
 * Data being written: an in-flight entry or a scratch file.  A writer is
 * referenced by its node (while node->w points to it), by each write
 * handle and by short-lived pins; the last writer_unref() frees it.
 */
/* Processes a writer notes of an unlink of it: the unlinker and those
 * that started it. */
#define WRITER_UNLINKERS 4

struct writer {
	pthread_mutex_t mu;
	int refs;			/* atomic */
	int fd;				/* tmp file, O_RDWR */
	char tmpname[STORE_TMP_NAME_MAX];
	EVP_MD_CTX *sha;		/* streaming SHA-256 of bytes [0, hashed) */
	uint64_t hashed;
	int hash_broken;		/* out-of-order write: rehash at publish */
	int write_err;			/* first failed write (-errno): never publish */
	struct coverage covered;	/* the ranges writes reached */
	uint64_t size;			/* atomic: read by getattr */
	uint64_t gen;			/* bumped by every change */
	uint64_t valid_gen;		/* gen at the last check */
	uint64_t closed_gen;		/* gen at the writer's last valid close */
	int closed;			/* ... which it made */
	uint64_t accepted_gen;		/* gen at the last close that returned
					 * 0 on valid content, in any process */
	int accepted;			/* ... which one made */
	int sealed;			/* its row names tmpname as holding
					 * the content now (writer_seal) */
	pthread_cond_t settled;		/* published or abandoned: with mu */
	int checked;			/* a check ran at valid_gen */
	int check_rc;			/* and returned this */
	enum load_failure why;		/* when check_rc < 0 */
	char why_detail[200];
	struct parquet_info info;	/* from that check */
	pid_t tgid;			/* process that created it */
	pid_t tid;			/* ... and its thread, the one that
					 * reads it while in flight */
	uint64_t tgid_start, tid_start;	/* when they started: a pid used
					 * again later is not theirs */
	int handles;			/* open write handles */
	int64_t touched_us;		/* atomic: last use, monotonic */
	int abandoned;			/* unlinked or discarded: never publish */
	/* ... by an unlink from the first of these processes, started by
	 * the next ones (0: none) */
	pid_t unlinked_by[WRITER_UNLINKERS];
	int open_abandoned;		/* abandoned with handles open: counted
					 * in ffs->abandoned_open */
	int published;			/* renamed into place: read-only now */
	int late_write_logged;		/* a write refused since: logged */
	int64_t created_ts;
	int64_t atime_ns;		/* atomic: creation, or utimens (a
					 * scratch file's; reads keep none) */
	int64_t mtime_ns;		/* atomic: last write, or utimens */
	int64_t ctime_ns;		/* atomic: last change of any kind */
	uint32_t mode;			/* atomic */
};

/* Slots of the table of misses counted lately (node.c, count_miss). */
#define FFS_RECENT_MISSES 1024

struct node {
	/* changes once, scratch to entry, when a rename publishes it (under
	 * ffs->lock); read it with node_kind() where the lock is not held */
	enum node_kind kind;
	uint64_t st_ino;		/* what stat(2) shows; stable */
	uint64_t nlookup;		/* kernel references */
	unsigned opens;			/* open handles */
	/* handles in the kernel (passthrough.c; 0 when it is off) */
	unsigned pt_opens;		/* served by passthrough */
	unsigned cached_opens;		/* served by the daemon */
	int backing_id;			/* > 0: has a backing file */
	int backing_idle;		/* ... and pt_opens == 0 */
	struct node *pt_idle_prev, *pt_idle_next;
	int linked;			/* reachable by name */
	char *name;			/* last path component */
	char *hkey;			/* names-table key: "sym", "sym/name" or
					 * "sym/.dir/name" */
	struct node *parent;		/* symbol or scratch directory */
	struct node *next_child;	/* parent's transient-children list */
	struct node **pprev_child;
	struct node *next_all;		/* ffs->all */
	struct node **pprev_all;

	/* NODE_SCRATCH_DIR */
	unsigned children;		/* nodes whose parent it is */
	int64_t touched_us;		/* last change of them, monotonic */

	/* NODE_SYMBOL, and transient for NODE_SCRATCH_DIR too */
	struct symbol_counters *ctr;	/* owned, unless ctr_shared: the
					 * node of a removed life of the
					 * symbol shares its successor's */
	int ctr_shared;
	struct node *transient;		/* in-flight entries, scratch files
					 * and scratch directories */
	unsigned subdirs;		/* scratch directories among them */
	struct node *next_symbol;	/* ffs->symbols */

	/* NODE_ENTRY */
	char key[KEY_MAX + 1];
	enum entry_state state;
	uint64_t size;			/* published: logical size; a control
					 * file: its last snapshot's (atomic) */
	uint64_t stored_size;		/* published: bytes in objects/ */
	int compressed;			/* published: 1 zstd seekable, -1 a
					 * compression unknown here */
	int64_t created_ts;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint32_t mode;
	pid_t writer_tgid;		/* published here: who wrote it, or 0 */
	uint64_t writer_start;		/* ... and when it started */

	/* NODE_ENTRY while writing, NODE_SCRATCH always */
	struct writer *w;
	int renaming;			/* a rename publishes it: GC's expiry
					 * leaves it be (under ffs->lock) */

	/* NODE_CONTROL_FILE */
	int control;			/* index into the control file table */
};

/* What fs.c provides to reach the kernel; all may be called with no
 * lock held, from any thread. */
struct ffs_hooks {
	/* Forget the kernel's cached attributes and data of `n`. */
	void (*inval_inode)(struct ffs *ffs, struct node *n);
	/* Forget the kernel's dentry `name` in directory `parent`. */
	void (*inval_entry)(struct ffs *ffs, struct node *parent,
			    const char *name);
	/* Answer a waiting open: err 0 means the entry is published now. */
	void (*wake)(struct ffs *ffs, struct waiter *w, int err);
	/* How reads of published entries are served: "on" (passthrough),
	 * "off", "pending" or "unavailable". */
	const char *(*passthrough_state)(struct ffs *ffs);
	/* Passthrough's backing files (passthrough.h).  With ffs->lock
	 * held: an open of published entry `n` is being made, the backing
	 * id it is served with (counted on `n`), or 0 (then open the
	 * object); and `n` is no longer reachable by name.  Without it:
	 * undo a claim that made no handle. */
	int (*claim_backing)(struct ffs *ffs, struct node *n);
	void (*unclaim_backing)(struct ffs *ffs, struct node *n);
	void (*forget_backing)(struct ffs *ffs, struct node *n);
};

struct ffs {
	struct ffs_options opt;
	struct store *store;
	struct manifest *manifest;
	char writer_id[MANIFEST_WRITER_MAX];
	char *mountpoint;
	/* that mount as /proc shows it; set once mounted (the id 0 until
	 * then: the files of every mount are taken as ours) */
	struct proc_mount mounted_as;
	uid_t uid;
	gid_t gid;
	int64_t mounted_ts;
	int64_t mounted_mono_us;

	pthread_mutex_t lock;
	struct htab *names;
	/* "symbol/key" -> struct kept_tmp: the tmp files of closed writes
	 * this mount could not publish, kept for the next mount (under
	 * lock) until a new write of the key takes their row over */
	struct htab *kept;
	struct node root;
	struct node control_dir;
	struct node *control_files;	/* array of control_file_count() */
	struct node *symbols;		/* the node of every symbol seen, with
					 * its counters; live or removed */
	struct node *all;		/* every allocated node */
	struct waiter *waiters;
	struct interrupted_wait interrupted[INTERRUPTED_WAITS];
	unsigned interrupted_next;	/* the slot to fill next */
	struct handle *open_handles;	/* handed to the kernel, not released */
	uint64_t inflight;		/* entries being written */
	int abandoned_open;		/* atomic: writers abandoned while
					 * handles were open, until they close */
	int stale_claims;		/* atomic: an abandon failed, see
					 * entry_drop_stale_claims() */
	uint64_t rows_changed;		/* under lock, bumped as a published
					 * entry's row goes or changes: a
					 * listing read before is not
					 * trusted for it */
	struct recent_miss {		/* misses counted lately, by name id */
		uint64_t id;
		int64_t at_us;		/* monotonic */
	} recent_misses[FFS_RECENT_MISSES];

	struct access_log *access;
	struct frame_cache *frames;	/* of compressed objects */
	unsigned spare_cpus;		/* CPUs the daemon may use beyond one,
					 * at most 4: threads that decompress
					 * ahead, or help compress a publish */
	pthread_mutex_t flush_mu;	/* one access flush at a time */
	struct ffs_counters ctr;

	const struct ffs_hooks *hooks;
	void *fuse;			/* fs.c's session state */
	struct passthrough *passthrough; /* NULL: -o passthrough=off */
	int blksize;			/* st_blksize shown (atomic): 1 MiB, or
					 * the store's with passthrough */

	/* background threads (daemon.c, ctl.c) */
	pthread_t ticker;
	pthread_t recorder;
	pthread_t gc_thread;
	pthread_t ctl_thread;
	pthread_mutex_t tick_mu;	/* with tick_cond: wakes the threads */
	pthread_cond_t tick_cond;
	int tick_kick;			/* with tick_mu: a waiter's deadline
					 * came, the ticker must look again */
	pthread_mutex_t gc_mu;		/* one GC pass at a time */
	int stopping;			/* atomic */
	int ticker_started;
	int recorder_started;
	int gc_started;
	int ctl_started;
	int ctl_fd;			/* listening control socket */
	int ctl_wake[2];		/* pipe that stops the ctl thread */
	int ctl_spare_fd;		/* given up to refuse a connection
					 * when out of descriptors */
	pthread_mutex_t ctl_mu;		/* with ctl_idle: */
	pthread_cond_t ctl_idle;
	unsigned ctl_clients;		/* requests being served */
	int64_t next_deadline_us;	/* earliest waiter deadline, monotonic */

	/* -o metrics= (http.c) */
	int http_fd;			/* listening socket, -1: none */
	void *http_daemon;		/* libmicrohttpd's, once serving */
	char metrics_bound[64];		/* "ADDR:PORT" bound, "" when off */
	struct metrics_labels metrics_labels; /* symbols labelled */
	struct log_limit http_log;	/* libmicrohttpd's lines */
	struct log_limit ctl_log;	/* control socket refusals */
	struct log_limit dropped_log;	/* access records dropped */
	struct log_limit nofd_log;	/* out of descriptors (entry.c) */
	struct log_limit nomem_log;	/* no memory for a frame (entry.c) */
	struct log_limit kept_log;	/* a kept write still refused */
	struct log_limit wait_log;	/* waits ended at lock_timeout */
	struct log_limit xattr_log;	/* user.* attributes refused */
	struct log_limit gone_log;	/* opens of entries removed since
					 * found (entry.c) */
	struct slo_window slo;		/* /slo's five minutes (daemon.c) */
};

/* ---- node.c: the namespace ------------------------------------------ */

int ffs_init(struct ffs *ffs);
void ffs_destroy(struct ffs *ffs);

/* The node with FUSE node id `ino`. */
struct node *ffs_node(struct ffs *ffs, uint64_t ino);

/*
 * Resolve `name` in directory `parent`.  On success the node's lookup
 * count is raised by one (the kernel now holds it).  A well-formed entry
 * name that is neither published nor in flight counts a miss and returns
 * -ENOENT; a malformed one is -ENOENT without a miss.
 */
int ffs_lookup(struct ffs *ffs, struct node *parent, const char *name,
	       struct node **out);
/* Drop `n` kernel references; frees the node when nobody needs it. */
void ffs_forget(struct ffs *ffs, struct node *n, uint64_t nlookup);

/* Fill `st`; `timeout` gets how long the kernel may cache it (seconds). */
int ffs_getattr(struct ffs *ffs, struct node *n, struct stat *st,
		double *timeout);
/* Seconds the kernel may cache the name -> node binding of `n`, whose
 * attributes it may cache `attr_timeout` (ffs_getattr()). */
double ffs_entry_timeout(const struct node *n, double attr_timeout);

/* A symbol at the root, or a scratch directory (a dot-name) in one. */
int ffs_mkdir(struct ffs *ffs, struct node *parent, const char *name,
	      mode_t mode, struct node **out);
int ffs_rmdir(struct ffs *ffs, struct node *parent, const char *name);

/* One directory entry of a listing. */
/* What a published row says of its file, as a node of it and a listing
 * keep it (node_fill_published()). */
struct published_attrs {
	uint64_t size;
	uint64_t stored_size;
	int compressed;		/* 1 zstd, 0 none, -1 unknown */
	int64_t created_ts;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint32_t mode;
};

struct dirent_item {
	char *name;
	uint64_t st_ino;
	mode_t type;	/* S_IFDIR or S_IFREG */
	int published;	/* and `attrs` are as the listing read them */
	struct published_attrs attrs;
};

/* A directory's names (without "." and ".."), as ffs_list_dir() read
 * them. */
struct dir_listing {
	struct dirent_item *items;
	size_t count;
	uint64_t rows_changed;	/* ffs->rows_changed before the rows */
};

int ffs_list_dir(struct ffs *ffs, struct node *dir, struct dir_listing *out);
void ffs_free_listing(struct dir_listing *l);
/* ffs_lookup() of `item` of listing `l` (readdirplus): a published entry
 * comes from the listing's row when no row has gone or changed since it
 * was read, else from the manifest again (-ENOENT when it went). */
int ffs_lookup_listed(struct ffs *ffs, struct node *dir,
		      const struct dir_listing *l,
		      const struct dirent_item *item, struct node **out);

/* The longest names-table key, "sym/.dir/name", with its NUL. */
#define NODE_HKEY_MAX (SYMBOL_MAX + 2 * (1 + NAME_BYTES_MAX) + 1)

/* st_ino of a name; stable across mounts. */
uint64_t ffs_ino_of(const char *symbol, const char *name);

/* Internal to node.c and entry.c. */
static inline enum node_kind node_kind(const struct node *n)
{
	return __atomic_load_n(&n->kind, __ATOMIC_RELAXED);
}

/* A directory files can be created in: a symbol or a scratch directory. */
static inline int node_holds_files(const struct node *n)
{
	return n->kind == NODE_SYMBOL || n->kind == NODE_SCRATCH_DIR;
}

/* A new node of `kind`, named `name` in `parent`, not yet linked into
 * the namespace (node_link()); NULL when out of memory.  Lock held. */
struct node *node_new(struct ffs *ffs, enum node_kind kind,
		      struct node *parent, const char *name);
int node_link(struct ffs *ffs, struct node *n);		/* lock held */
void node_unlink(struct ffs *ffs, struct node *n);	/* lock held */
void node_release_locked(struct ffs *ffs, struct node *n);
struct node *node_find_locked(struct ffs *ffs, struct node *parent,
			      const char *name);
void node_fill_published(struct node *n, const struct manifest_entry *e);
/* What `name` in directory `parent` can be, as name_parse_child() says
 * for a symbol directory: in a scratch directory every name is scratch. */
int node_child_kind(const struct node *parent, const char *name, char *key);
/* Turn a writing entry or scratch node into published entry `e`; clears
 * n->w, whose reference the caller then drops.  Lock held. */
void node_set_published(struct ffs *ffs, struct node *n,
			const struct manifest_entry *e);
/* Give `n` a new name and parent, keeping its identity (lock held). */
int node_rename(struct ffs *ffs, struct node *n, struct node *newparent,
		const char *newname);

/* ---- entry.c: the life of an entry ---------------------------------- */

/* An open file as fs.c keeps it in fuse_file_info.fh. */
enum handle_kind {
	HANDLE_OBJECT,		/* read-only, on a published object */
	HANDLE_WRITER,		/* the claimant's (or scratch) write handle */
	HANDLE_TMP_READ,	/* read-only on a writer's tmp file */
	HANDLE_CONTROL,		/* a /.featurefs file snapshot */
};

struct handle {
	enum handle_kind kind;
	struct node *node;
	struct writer *w;	/* HANDLE_WRITER */
	int fd;
	char *text;		/* HANDLE_CONTROL */
	size_t len;
	struct handle *open_prev, *open_next;	/* ffs->open_handles */
	int backing_id;		/* > 0: served by passthrough */
	struct zobject *z;	/* HANDLE_OBJECT of a compressed object */
	struct handle *armed_next;	/* passthrough.c's armed replies */
};

/* Refuse `op` of `name` on a mount that serves reads only (-o ro, which
 * a store on read-only media must have): logged, -EROFS.  The kernel
 * refuses most such changes of an ro mount before they come here. */
int ffs_refuse_read_only(const char *op, const char *name);

/* Log that `what` failed for want of descriptors (EMFILE, ENFILE), at most
 * once a period (ffs->nofd_log), with how many were held back. */
void ffs_log_out_of_fds(struct ffs *ffs, const char *what);

/*
 * Create `name` in symbol directory `parent`: a scratch file, or the claim
 * of an entry (SPEC §3 step 2).  -EEXIST when the key is published or in
 * flight; -EINVAL/-ENAMETOOLONG for bad names, and -EINVAL for an entry
 * created read-only (open(2) `flags`: nothing could ever write it);
 * -EPERM outside a symbol directory.  On success the node has one more
 * lookup and one more open, and `*h` is the writer's handle.
 */
int entry_create(struct ffs *ffs, struct node *parent, const char *name,
		 pid_t pid, int flags, mode_t mode, struct node **out,
		 struct handle **h);

/*
 * Open an existing file.  For a published entry read-only: a hit.  For a
 * write-open of an entry: -EEXIST, unless the process already holds that
 * entry in flight open for writing (it joins the same write).  For an
 * in-flight entry read-only from another process: -EINPROGRESS, and the
 * caller queues a waiter with entry_wait().
 */
int entry_open(struct ffs *ffs, struct node *n, int flags, pid_t pid,
	       struct handle **h);
/* Queue `w` on its node: 0 queued; -EAGAIN the entry is published now
 * (open again); -ENOENT it is gone.  A wait of the same thread on the
 * same entry that a signal ended a moment ago goes on: `w` takes its
 * start and deadline. */
int entry_wait(struct ffs *ffs, struct waiter *w);
/* A caught signal ended queued wait `w` (removed by entry_cancel_wait()):
 * remembered for the open's retry, in place of entry_wait_done(); one
 * no retry takes up is counted as ended at the signal. */
void entry_wait_interrupted(struct ffs *ffs, struct waiter *w);
/* Remove `w` if still queued: 1 removed (the caller answers it), 0 not. */
int entry_cancel_wait(struct ffs *ffs, struct waiter *w);
/* Answer every waiter whose deadline passed with -ETIMEDOUT, and end the
 * interrupted waits no retry took up in time; returns the next deadline
 * of either (monotonic µs) or 0 when none is left. */
int64_t entry_expire_waiters(struct ffs *ffs, int64_t now_mono);
/* Called by the FUSE side once a woken waiter's open was answered. */
void entry_wait_done(struct ffs *ffs, struct waiter *w, int err);

/* pread(2) through handle `h`: bytes read (0 at the end), or -errno. */
ssize_t entry_read(struct ffs *ffs, struct handle *h, void *buf, size_t size,
		   off_t off);
/* lseek(2) SEEK_DATA or SEEK_HOLE (`whence`) through handle `h`: the
 * holes of a scratch file or an entry in flight are those of its tmp
 * file; a published entry and a /.featurefs file are data throughout.
 * The offset, or -ENXIO at or past the end. */
off_t entry_seek_data(struct handle *h, off_t off, int whence);
/* For a read of a published object: the descriptor to splice `size`
 * bytes at `off` from (counted as read), or -ENOTSUP for a handle that
 * entry_read() copies from. */
int entry_read_fd(struct ffs *ffs, struct handle *h, size_t size, off_t off);
/* For a read of a compressed entry of at most FRAME_SPAN_MAX frames: the
 * decompressed bytes, pinned in `span` (release them with
 * frame_cache_unpin, whatever this returns), or -ENOTSUP for a handle
 * or a read that entry_read() serves. */
ssize_t entry_read_frames(struct ffs *ffs, struct handle *h, size_t size,
			  off_t off, struct frame_span *span);
/* pwrite(2) through write handle `h`: bytes written, or -errno (-EPERM
 * once a rename or the last close published what it wrote). */
ssize_t entry_write(struct ffs *ffs, struct handle *h, const void *buf,
		    size_t size, off_t off);
/* close(2) of one descriptor by process `pid`: an entry in flight is
 * checked and, valid, sealed (fsynced; its close returns 0); a failed
 * write or fsync is returned (-ENOSPC, -EIO), and content that is not
 * Parquet is -EIO to the writer's last close, or to a last close by
 * anyone when no other process writes it, and discarded at once.  While
 * another descriptor may still write it, it is judged at release. */
int entry_flush(struct ffs *ffs, struct handle *h, pid_t pid);
int entry_fsync(struct ffs *ffs, struct handle *h, int datasync);
/* Last close of a handle: publish or discard a finished writer. */
void entry_release(struct ffs *ffs, struct handle *h);

/* Remove an entry or scratch file by name (unlink(2) and GC). */
int entry_unlink(struct ffs *ffs, struct node *parent, const char *name,
		 pid_t pid);
/*
 * Remove published entries on behalf of GC: the manifest rows first (in
 * one transaction; results[i] is -EBUSY for a row whose lock is held and
 * -ENOENT for one already gone), then the objects, then the kernel's
 * dentries.
 */
int entry_remove_batch(struct ffs *ffs, const struct manifest_entry *rows,
		       size_t n, int *results);
/* Whether published entry `e` is in use to GC (`arg` is the ffs), so not
 * idle whatever its row says: read since the last access flush, which a
 * pass makes before it lists rows, or held open now (a reader that
 * opened it once and reads it for days, or maps it). */
int entry_in_use(void *arg, const struct manifest_entry *e);

/*
 * rename(2) in the mount. A scratch file moves, or publishes when renamed
 * to <key>.parquet. An entry, a symbol or a scratch directory is -EXDEV,
 * so that mv(1) moves it by copying, as across filesystems; the rest is
 * -EPERM.
 */
int entry_rename(struct ffs *ffs, struct node *oldparent, const char *oldname,
		 struct node *newparent, const char *newname,
		 unsigned int flags, pid_t pid);

/* Attributes to change, as FUSE's setattr gives them. */
struct setattr_req {
	int valid;		/* FATTR_* bits, re-declared below */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	off_t size;
	struct timespec atime;	/* tv_nsec may be UTIME_NOW */
	struct timespec mtime;	/* tv_nsec may be UTIME_NOW */
	pid_t pid;		/* the calling thread */
};
#define SETATTR_MODE 1
#define SETATTR_UID 2
#define SETATTR_GID 4
#define SETATTR_SIZE 8
#define SETATTR_ATIME 16
#define SETATTR_MTIME 32

/* chmod, chown, truncate and utimes of `n`, through handle `h` when the
 * kernel gives one (NULL: by path); 0 or -errno, refusals logged.
 * Directories keep their mode (0755) and owner; a published entry takes
 * new times, and a new mode from the process that wrote it only; an
 * entry in flight is its writer's to change; control files: -EPERM. */
int entry_setattr(struct ffs *ffs, struct node *n, struct handle *h,
		  const struct setattr_req *r);

/* Drop one write handle's reference to `w` (node `n`); the last one
 * publishes or discards an in-flight entry. */
void entry_release_writer_ref(struct ffs *ffs, struct node *n,
			      struct writer *w);
void writer_ref(struct writer *w);
void writer_unref(struct writer *w);
/* Resize the data to `size`; w->mu held. */
int writer_truncate(struct writer *w, uint64_t size);
/* The writer's close() returns before its RELEASE, which publishes: if
 * its last close was valid and nothing was written since, wait up to `us`
 * for the outcome, so that what it asks right after close() (a getfattr,
 * a rename onto the key) sees it.  w->mu held. */
void writer_wait_closed(struct writer *w, int64_t us);
/* How long that wait lasts at most: a publish takes milliseconds, a
 * writer that closed while a child holds the file open may never end */
#define CLOSE_WAIT_US 1000000
/* Lock w->mu and writer_wait_closed(), CLOSE_WAIT_US in all, the hold of
 * a publish under way included (it compresses, fsyncs: it may be stuck).
 * 0 with w->mu held, or -ETIMEDOUT without it. */
int writer_lock_settled(struct writer *w);

/* fallocate(2) through write handle `h`: reserving, punching holes and
 * zeroing (-EOPNOTSUPP for other modes); -EPERM on a published entry,
 * -EBADF on any other handle. */
int entry_fallocate(struct ffs *ffs, struct handle *h, int mode, off_t off,
		    off_t len);

/* ---- xattr.c: read-only extended attributes ------------------------- */

/* Value of attribute `name` of `n`; -ENODATA when it has none. */
int entry_xattr_get(struct ffs *ffs, struct node *n, const char *name,
		    struct strbuf *out);
/* Refuse to `verb` ("set" or "remove") attribute `name` of node `n`,
 * with a log line naming both: -EPERM for featurefs's own (read-only),
 * -ENOTSUP for any other. */
int entry_xattr_refuse(struct ffs *ffs, struct node *n, const char *verb,
		       const char *name);

/* Remove scratch files nobody has opened or changed for `idle_us`
 * (left by a tool that died before its rename), and scratch directories
 * left empty as long; returns how many files were (or, with dry_run,
 * would be) removed. */
int entry_expire_scratch(struct ffs *ffs, int64_t idle_us, int dry_run);

/* Discard every unfinished write (unmount). */
void entry_discard_all(struct ffs *ffs);

/* Close every handle the kernel did not release (unmount, after the
 * session loop ended and entry_discard_all()). */
void entry_release_all(struct ffs *ffs);

/* Drop the rows of discarded writes that the manifest refused to drop
 * at the time (ffs->stale_claims says there are some); called by the
 * recorder thread (daemon.c), and at unmount.  0, or the error of a manifest that still
 * refuses (tried again next time). */
int entry_drop_stale_claims(struct ffs *ffs);

/* Publish the closed writes whose publish failed (kept for the next
 * mount), now that the manifest and the store may take them; called by
 * the recorder thread (daemon.c), and at unmount.  0, or the failure that stopped it (what
 * is left stays kept, and is tried again next time). */
int entry_publish_kept(struct ffs *ffs);

/* Log each kept write left for the next mount (at unmount). */
void entry_report_kept(struct ffs *ffs);

/* Hand out the effective options, as /.featurefs/config shows them. */
void ffs_render_config(struct ffs *ffs, struct strbuf *sb);

#endif
