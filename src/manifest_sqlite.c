/*
 * manifest_sqlite.c - the embedded manifest: STORE/manifest.db in WAL mode.
 *
 * One read-write connection per process, serialized by a mutex, with its
 * hot statements prepared once; a read-only one for long scans; and one
 * for the checkpointer thread, which copies the WAL back into the database
 * so that no commit waits for those writes and fsyncs.  Key locks live in
 * a process-local lock table (lock.h):
 * a SQLite store is mounted by one daemon at a time (the store lock), so
 * the daemon is the only process that claims or deletes keys while it
 * runs, and maintenance commands that write take the store lock first.
 *
 * A read-write manifest keeps STORE/manifest.reserve, a few MiB set
 * aside: on a filesystem its own entries filled, removing a row needs
 * room in the WAL before the row's object can go, so a removal that
 * finds the disk full gives the reserve up and tries again.  The reserve
 * is made again, when there is room for it twice over, by the next claim
 * (before the new entry can take the space) or checkpoint.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "lock.h"
#include "log.h"
#include "manifest.h"
#include "strbuf.h"

#define SQLITE_BUSY_MS 5000
/* how long a brief write (MANIFEST_RECORD_BRIEF) waits for the lock */
#define SQLITE_BRIEF_BUSY_MS 50

/* WAL pages after which a commit wakes the checkpointer: SQLite's own
 * autocheckpoint threshold, which the checkpointer replaces.  A burst of
 * commits outruns it, as the WAL can only start over once a checkpoint
 * has caught up with the last commit: past CHECKPOINT_PAGES_MAX (64 MiB)
 * the committing connection checkpoints itself, and the WAL file is cut
 * back to that size when it starts over. */
#define CHECKPOINT_PAGES 1000
#define CHECKPOINT_PAGES_MAX 16384

/* A trigger's statement: add (op "+") or take away (op "-") entry row
 * `r` (NEW or OLD) from its symbol's totals. */
#define USAGE_CHANGE(op, r)                                                   \
	"UPDATE symbols SET"                                                  \
	" entries = entries " op " (" r ".state = 'published'),"             \
	" writing = writing " op " (" r ".state = 'writing'),"               \
	" file_bytes = file_bytes " op " CASE WHEN " r ".state = 'published'" \
	"   THEN " r ".file_size_bytes ELSE 0 END,"                           \
	" stored_bytes = stored_bytes " op " CASE WHEN " r ".state ="         \
	"   'published' THEN " r ".stored_size_bytes ELSE 0 END"              \
	" WHERE symbol = " r ".symbol;"

/* A row's state as manifest_state_name() names it: a state no featurefs
 * writes is "unknown". */
#define STATE_NAME                                                         \
	"(CASE WHEN state IN ('published', 'writing') THEN state"          \
	" ELSE 'unknown' END)"

/* The sum of column `c` as an integer that saturates: sum() fails the
 * statement on an overflow, which a damaged row's size or count can
 * cause, and would stop fsck, stats and GC over one bad figure. */
#define TOTAL_OF(c) "CAST(total(" c ") AS INTEGER)"

/* A symbol's usage (entries, writing, file_bytes, stored_bytes) as its
 * entries add it up, over the rows selected; USAGE_OF(row): of the
 * symbols row `row`.  What the triggers below keep. */
#define USAGE_SUMS                                                         \
	"coalesce(sum(state = 'published'), 0),"                             \
	" coalesce(sum(state = 'writing'), 0), "                             \
	TOTAL_OF("CASE WHEN state = 'published' THEN file_size_bytes END") ", " \
	TOTAL_OF("CASE WHEN state = 'published' THEN stored_size_bytes END")
#define USAGE_OF(row)                                                      \
	"(SELECT " USAGE_SUMS " FROM entries e WHERE e.symbol = " row ".symbol)"

/* Numbered migrations; schema_version holds how many have run. */
static const char *const migrations[] = {
	/* 1: the initial schema */
	"CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE entries ("
	"  symbol TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('writing', 'published')),"
	"  start_ts INTEGER,"
	"  end_ts INTEGER,"
	"  rows INTEGER,"
	"  file_size_bytes INTEGER NOT NULL DEFAULT 0,"
	"  stored_size_bytes INTEGER NOT NULL DEFAULT 0,"
	"  compression TEXT NOT NULL DEFAULT 'none',"
	"  hash_method TEXT,"
	"  sha256 TEXT,"
	"  created_ts INTEGER NOT NULL,"
	"  last_accessed_ts INTEGER,"
	"  access_count INTEGER NOT NULL DEFAULT 0,"
	"  writer TEXT,"
	"  mtime_ns INTEGER,"
	"  mode INTEGER NOT NULL DEFAULT 420,"
	"  PRIMARY KEY (symbol, key)"
	") WITHOUT ROWID;"
	"CREATE INDEX entries_last_accessed"
	"  ON entries (coalesce(last_accessed_ts, created_ts));"
	"CREATE INDEX entries_writing ON entries (state) WHERE state = 'writing';"
	"CREATE TABLE symbols ("
	"  symbol TEXT PRIMARY KEY,"
	"  created_ts INTEGER NOT NULL,"
	"  hits INTEGER NOT NULL DEFAULT 0,"
	"  misses INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE TABLE mounts ("
	"  id TEXT PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  mountpoint TEXT NOT NULL,"
	"  mounted_ts INTEGER NOT NULL,"
	"  heartbeat_ts INTEGER NOT NULL"
	");",
	/* 2: each symbol's published and in-flight totals, kept by triggers
	 * in the transaction that changes an entry, so that stats and the
	 * GC quota never sum every row */
	"ALTER TABLE symbols ADD COLUMN entries INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE symbols ADD COLUMN writing INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE symbols ADD COLUMN file_bytes INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE symbols ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;"
	"UPDATE symbols SET (entries, writing, file_bytes, stored_bytes) ="
	USAGE_OF("symbols") ";"
	"CREATE TRIGGER symbol_usage_insert AFTER INSERT ON entries BEGIN "
	USAGE_CHANGE("+", "NEW") " END;"
	"CREATE TRIGGER symbol_usage_delete AFTER DELETE ON entries BEGIN "
	USAGE_CHANGE("-", "OLD") " END;"
	"CREATE TRIGGER symbol_usage_update AFTER UPDATE OF"
	"  symbol, state, file_size_bytes, stored_size_bytes ON entries BEGIN "
	USAGE_CHANGE("-", "OLD") USAGE_CHANGE("+", "NEW") " END;",
	/* 3: the change time stat shows (a chmod or utimensat moves it);
	 * NULL: the row's created_ts */
	"ALTER TABLE entries ADD COLUMN ctime_ns INTEGER;",
	/* 4: a `writing` row whose writer closed it names the tmp file
	 * holding its content, which recovery publishes */
	"ALTER TABLE entries ADD COLUMN sealed_tmp TEXT;",
	/* 5: the keys whose rows a removal dropped, in the same
	 * transaction, until their objects are unlinked: recovery finishes
	 * what a crash cut short instead of adopting the object again */
	"CREATE TABLE removals ("
	"  symbol TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  PRIMARY KEY (symbol, key)"
	") WITHOUT ROWID;",
};

#define MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(MIGRATIONS == MANIFEST_SCHEMA_VERSION,
	       "a migration needs MANIFEST_SCHEMA_VERSION raised with it");

#define ENTRY_COLUMNS                                                        \
	"symbol, key, path, state, start_ts, end_ts, rows, file_size_bytes," \
	" stored_size_bytes, compression, hash_method, sha256, created_ts,"  \
	" last_accessed_ts, access_count, writer, mtime_ns, mode, ctime_ns," \
	" sealed_tmp"

enum stmt_id {
	ST_GET,
	ST_INSERT,
	ST_PUBLISH,
	ST_ABANDON,
	ST_REMOVE,
	ST_REMOVE_STATE,
	ST_REMOVE_UNREAD,
	ST_SYMBOL_ENSURE,
	ST_ACCESS,
	ST_SYMBOL_COUNTS,
	ST_SET_ATTRS,
	ST_SEAL,
	ST_REMOVAL_ADD,
	ST_REMOVAL_DONE,
	ST_HEARTBEAT,
	ST_UNREGISTER,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_GET] = "SELECT " ENTRY_COLUMNS
		   " FROM entries WHERE symbol = ?1 AND key = ?2",
	/* A `writing` row of this very writer whose key lock is free (the
	 * caller holds it now) is a claim whose abandon failed (a full
	 * disk), or a closed write kept since its publish failed: it is
	 * taken over rather than blocking the key.  A claim naming a closed
	 * file (to publish it again) takes over only the row naming it. */
	[ST_INSERT] = "INSERT INTO entries (" ENTRY_COLUMNS ") VALUES "
		      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
		      " ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
		      " ON CONFLICT (symbol, key) DO UPDATE SET"
		      " path = excluded.path, state = excluded.state,"
		      " created_ts = excluded.created_ts, mode = excluded.mode,"
		      " sealed_tmp = excluded.sealed_tmp"
		      " WHERE entries.state = 'writing'"
		      " AND entries.writer = excluded.writer"
		      " AND (excluded.sealed_tmp IS NULL"
		      "  OR entries.sealed_tmp IS excluded.sealed_tmp)",
	[ST_PUBLISH] = "UPDATE entries SET path = ?3, state = 'published',"
		       " start_ts = ?5, end_ts = ?6, rows = ?7,"
		       " file_size_bytes = ?8, stored_size_bytes = ?9,"
		       " compression = ?10, hash_method = ?11, sha256 = ?12,"
		       " created_ts = ?13, writer = ?16, mtime_ns = ?17,"
		       " mode = ?18, ctime_ns = ?19, sealed_tmp = NULL"
		       " WHERE symbol = ?1 AND key = ?2 AND state = 'writing'",
	[ST_ABANDON] = "DELETE FROM entries"
		       " WHERE symbol = ?1 AND key = ?2 AND state = 'writing'",
	[ST_REMOVE] = "DELETE FROM entries WHERE symbol = ?1 AND key = ?2",
	[ST_REMOVE_STATE] = "DELETE FROM entries"
			    " WHERE symbol = ?1 AND key = ?2 AND " STATE_NAME
			    " = ?3",
	/* a published row as it was listed: read since, it is in use; and
	 * one written again since is another entry */
	[ST_REMOVE_UNREAD] = "DELETE FROM entries WHERE symbol = ?1 AND key = ?2"
			     " AND state = 'published' AND access_count = ?3"
			     " AND created_ts = ?4",
	[ST_SYMBOL_ENSURE] = "INSERT OR IGNORE INTO symbols (symbol, created_ts)"
			     " VALUES (?1, ?2)",
	[ST_ACCESS] = "UPDATE entries SET access_count = access_count + ?3,"
		      " last_accessed_ts = max(coalesce(last_accessed_ts, 0), ?4)"
		      " WHERE symbol = ?1 AND key = ?2",
	[ST_SYMBOL_COUNTS] = "UPDATE symbols SET hits = hits + ?2,"
			     " misses = misses + ?3 WHERE symbol = ?1",
	[ST_SET_ATTRS] = "UPDATE entries SET mtime_ns = coalesce(?3, mtime_ns),"
			 " mode = coalesce(?4, mode), ctime_ns = ?5"
			 " WHERE symbol = ?1 AND key = ?2",
	[ST_SEAL] = "UPDATE entries SET sealed_tmp = ?3,"
		    " mtime_ns = coalesce(?4, mtime_ns), mode = coalesce(?5, mode),"
		    " ctime_ns = coalesce(?6, ctime_ns)"
		    " WHERE symbol = ?1 AND key = ?2 AND state = 'writing'",
	[ST_REMOVAL_ADD] = "INSERT OR IGNORE INTO removals (symbol, key)"
			   " VALUES (?1, ?2)",
	[ST_REMOVAL_DONE] = "DELETE FROM removals"
			    " WHERE symbol = ?1 AND key = ?2",
	[ST_HEARTBEAT] = "UPDATE mounts SET heartbeat_ts = ?2 WHERE id = ?1",
	[ST_UNREGISTER] = "DELETE FROM mounts WHERE id = ?1",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

struct manifest_sqlite {
	struct manifest base;
	pthread_mutex_t mu;
	sqlite3 *db;
	/* A second, read-only connection for scans (listings, GC
	 * candidates, stats): under WAL it reads a snapshot while `db`
	 * commits, so a long scan never holds up creates and lookups.  It
	 * is `db` itself (and `mu`) for a read-only manifest. */
	pthread_mutex_t scan_mu;
	sqlite3 *scan_db;
	/* The checkpointer (read-write manifests only): its own connection
	 * and thread, woken by `db`'s WAL hook. */
	sqlite3 *ckpt_db;
	pthread_t ckpt_thread;
	int ckpt_started;
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cond;
	int wal_pages;			/* at the last commit; under mu */
	int ckpt_asked_at;		/* WAL pages when last woken; under mu */
	int ckpt_wanted;		/* under ckpt_mu */
	int ckpt_stop;			/* under ckpt_mu */
	int ckpt_failing;		/* checkpointer thread only */
	char *path;
	char *reserve_path;		/* STORE/manifest.reserve, when rw */
	pthread_mutex_t reserve_mu;	/* making and giving up the reserve */
	int reserve_missing;		/* atomic: to be made when there is
					 * room again */
	int read_only;
	int no_removals;	/* read-only schema 2-4: no removals table */
	int damaged;			/* atomic: SQLite found it corrupt */
	int unreadable_said;		/* atomic: its disk failed reads */
	int writes_failing;		/* atomic: the last write failed for
					 * the database's sake (locked, full,
					 * I/O), not for its rows' */
	dev_t file_dev;			/* manifest.db as opened: the health */
	ino_t file_ino;			/* tells when it is gone or replaced */
	int root_fd;			/* O_PATH of the store's directory,
					 * which tells when it moved whole */
	int store_moved_said;		/* atomic */
	int file_gone;			/* atomic: that was said */
	struct lock_table *locks;
	sqlite3_stmt *stmt[ST_COUNT];
};

/* The one mapping of SQLite result codes to errno values. */
static int sqlite_to_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		/* another process holds it past the busy timeout: the file
		 * is fine, and the call can be tried again */
		return -EAGAIN;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

/* Whether the directory of `path` takes no new file for being
 * read-only, though statvfs says it is not: ext4 that an error turned
 * read-only (errors=remount-ro) says rw. */
static int dir_turned_read_only(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
			 slash == path ? 1 : (int)(slash - path), path);
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno == EROFS;
}

/* Why the manifest's files refuse writes, when SQLite lost the errno of
 * a failed write (it reads errno after other calls): the errno a check
 * of the database and its WAL for writing gives (EPERM: immutable), or 0. */
static int files_refuse_writes(const char *path)
{
	char wal[PATH_MAX];

	if (access(path, W_OK) < 0)
		return errno;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (access(wal, W_OK) < 0 && errno != ENOENT)
		return errno;
	return 0;
}

/* Why a call that failed opening or writing a file (SQLite's CANTOPEN,
 * IOERR, FULL, READONLY) did: the filesystem's state when it explains
 * it (SQLite retries a failed open read-only, so its errno is then that
 * retry's), else the system's errno when it names a cause; 0 if neither.
 * `why` is set with it, or to the system's word for any other errno it
 * gave, or that a check of the files for writing gives (EPERM of an
 * immutable file: the call fails as EIO, and the log says why). */
static int os_cause(struct manifest_sqlite *ms, int rc, int sys,
		    const char **why)
{
	struct statvfs vfs;

	switch (rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_READONLY:
		break;
	default:
		return 0;
	}
	if (statvfs(ms->path, &vfs) == 0) {
		*why = "its filesystem is read-only";
		if (vfs.f_flag & ST_RDONLY)
			return -EROFS;
		*why = "its filesystem has no free inodes";
		if (vfs.f_files && vfs.f_ffree == 0)
			return -ENOSPC;
		*why = "its filesystem is full";
		if (vfs.f_bfree == 0)
			return -ENOSPC;
		*why = "its filesystem turned read-only after an error";
		if (dir_turned_read_only(ms->path))
			return -EROFS;
	}
	if (!sys) {
		/* for the log only: the check is of now, and by the real
		 * uid, not the cause of the failure for sure */
		sys = files_refuse_writes(ms->path);
		*why = sys ? strerror(sys) : NULL;
		return 0;
	}
	*why = strerror(sys);
	if (sys == ENOSPC || sys == EDQUOT || sys == EROFS || sys == EACCES ||
	    sys == EMFILE || sys == ENFILE)
		return -sys;
	return 0;
}

/* Whether `path` fails to read: its errno (EIO of a disk that fails
 * every read), or 0 when its first page reads (one bad sector elsewhere
 * is not told from damage). */
static int file_unreadable(const char *path)
{
	char page[512];
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == EIO ? EIO : 0;
	if (pread(fd, page, sizeof(page), 0) < 0)
		err = errno;
	close(fd);
	return err;
}

/* Log a failed call once, with the reason the system gives, and return
 * its errno. */
static int fail_on(struct manifest_sqlite *ms, sqlite3 *db, const char *what,
		   int rc)
{
	const char *why = NULL;
	int cause = os_cause(ms, rc, db ? sqlite3_system_errno(db) : 0, &why);

	if (why)
		log_err("manifest %s: %s: %s (%s)", ms->path, what,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), why);
	else
		log_err("manifest %s: %s: %s", ms->path, what,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	/* a damaged file fails on its damaged pages only: say once what it
	 * means, and let the health say it from now on.  Unless the disk
	 * fails reads: SQLite calls pages it could not read malformed, and
	 * the advice would throw a sound manifest away */
	if (((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)) {
		int unreadable = file_unreadable(ms->path);

		if (unreadable) {
			if (!__atomic_exchange_n(&ms->unreadable_said, 1,
						 __ATOMIC_RELAXED))
				log_err("manifest %s cannot be read (%s): its "
					"disk fails, which is no damage of the "
					"file; nothing to restore once the disk "
					"is back", ms->path, strerror(unreadable));
			return -EIO;
		}
		if (!__atomic_exchange_n(&ms->damaged, 1, __ATOMIC_RELAXED))
			log_err("manifest %s is damaged: what touches the "
				"damaged pages fails until it is restored from "
				"a backup, or rebuilt (move it aside, mount, "
				"unmount, fsck -p adopts the objects)",
				ms->path);
	}
	return cause ? cause : sqlite_to_errno(rc);
}

static int sqlite_fail(struct manifest_sqlite *ms, const char *what, int rc)
{
	return fail_on(ms, ms->db, what, rc);
}

/* Take the scan connection; scan_end() gives it back. */
static sqlite3 *scan_begin(struct manifest_sqlite *ms)
{
	pthread_mutex_lock(ms->scan_db == ms->db ? &ms->mu : &ms->scan_mu);
	return ms->scan_db;
}

static void scan_end(struct manifest_sqlite *ms)
{
	pthread_mutex_unlock(ms->scan_db == ms->db ? &ms->mu : &ms->scan_mu);
}

static struct manifest_sqlite *ms_of(struct manifest *m)
{
	return (struct manifest_sqlite *)m;
}

/* Whether statement `id` only reads: the ones a read-only manifest
 * prepares (its others would write, and on a schema read through a view,
 * see sqlite_open, could not even be prepared). */
static int stmt_reads_only(int id)
{
	return id == ST_GET || id == ST_BEGIN || id == ST_COMMIT ||
	       id == ST_ROLLBACK;
}

/* Prepared statement `id`, reset; NULL on a read-only manifest for one
 * that writes (binding to NULL is a no-op; step_done refuses it). */
static sqlite3_stmt *stmt(struct manifest_sqlite *ms, enum stmt_id id)
{
	sqlite3_stmt *st = ms->stmt[id];

	if (!st)
		return NULL;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Run a prepared statement that returns no rows. */
static int step_done(struct manifest_sqlite *ms, sqlite3_stmt *st,
		     const char *what)
{
	int rc;

	if (!st) {
		log_err("manifest %s: %s: opened read-only", ms->path, what);
		return -EROFS;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		/* said before the reset, whose own I/O may take the errno */
		int err = (rc & 0xff) == SQLITE_CONSTRAINT
				  ? -EEXIST
				  : sqlite_fail(ms, what, rc);

		sqlite3_reset(st);
		if (err != -EEXIST)
			__atomic_store_n(&ms->writes_failing, 1,
					 __ATOMIC_RELAXED);
		return err;
	}
	sqlite3_reset(st);
	if (!sqlite3_stmt_readonly(st))
		__atomic_store_n(&ms->writes_failing, 0, __ATOMIC_RELAXED);
	return 0;
}

/* step_done() of a statement that changes one row: `none` (-ENOENT,
 * -EEXIST) when it changed none. */
static int step_change(struct manifest_sqlite *ms, sqlite3_stmt *st,
		       const char *what, int none)
{
	int rc = step_done(ms, st, what);

	if (rc == 0 && sqlite3_changes(ms->db) == 0)
		rc = none;
	return rc;
}

static int tx_begin(struct manifest_sqlite *ms)
{
	return step_done(ms, stmt(ms, ST_BEGIN), "begin");
}

/* Roll back the transaction open, if any: SQLite ends one itself on
 * some errors (SQLITE_FULL, SQLITE_IOERR), and a ROLLBACK then fails. */
static void tx_rollback(struct manifest_sqlite *ms)
{
	if (!sqlite3_get_autocommit(ms->db))
		step_done(ms, stmt(ms, ST_ROLLBACK), "rollback");
}

static int tx_commit(struct manifest_sqlite *ms)
{
	int rc = step_done(ms, stmt(ms, ST_COMMIT), "commit");

	if (rc < 0)
		tx_rollback(ms);
	return rc;
}

/* End the transaction begun: commit when `rc` (how it went) is 0, else
 * roll back; returns how it ended. */
static int tx_end(struct manifest_sqlite *ms, int rc)
{
	if (rc == 0)
		return tx_commit(ms);
	tx_rollback(ms);
	return rc;
}

static int exec_sql(struct manifest_sqlite *ms, const char *sql,
		    const char *what)
{
	int rc = sqlite3_exec(ms->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail_on(ms, ms->db, what, rc);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_key(sqlite3_stmt *st, const char *symbol, const char *key)
{
	sqlite3_bind_text(st, 1, symbol, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
}

/* Bind the 20 columns of ENTRY_COLUMNS in order. */
static void bind_entry(sqlite3_stmt *st, const struct manifest_entry *e)
{
	bind_key(st, e->symbol, e->key);
	sqlite3_bind_text(st, 3, e->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4,
			  e->state == ENTRY_PUBLISHED ? "published" : "writing",
			  -1, SQLITE_STATIC);
	if (e->has_ts) {
		sqlite3_bind_int64(st, 5, e->start_ts);
		sqlite3_bind_int64(st, 6, e->end_ts);
	}
	if (e->rows >= 0)
		sqlite3_bind_int64(st, 7, e->rows);
	sqlite3_bind_int64(st, 8, e->file_size);
	sqlite3_bind_int64(st, 9, e->stored_size);
	sqlite3_bind_text(st, 10, e->compression[0] ? e->compression : "none",
			  -1, SQLITE_STATIC);
	bind_text_or_null(st, 11, e->hash_method);
	bind_text_or_null(st, 12, e->sha256);
	sqlite3_bind_int64(st, 13, e->created_ts);
	if (e->last_accessed_ts > 0)
		sqlite3_bind_int64(st, 14, e->last_accessed_ts);
	sqlite3_bind_int64(st, 15, e->access_count);
	bind_text_or_null(st, 16, e->writer);
	sqlite3_bind_int64(st, 17, e->mtime_ns);
	sqlite3_bind_int64(st, 18, e->mode);
	if (e->ctime_ns)
		sqlite3_bind_int64(st, 19, e->ctime_ns);
	bind_text_or_null(st, 20, e->sealed_tmp);
}

static void column_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

/*
 * A symbol or key column.  A name featurefs could not have written, too
 * long for `buf` or holding a NUL, is cut short and ends in DEL: it then
 * fails every name check and matches no row, where a plain cut could turn
 * it into another entry's valid name (and GC would remove that row).
 */
static void column_name(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i), fit = t ? strlen(t) : 0;

	if (fit == n && n < len) {
		memcpy(buf, t ? t : "", n + 1);
		return;
	}
	if (fit > len - 2)
		fit = len - 2;
	memcpy(buf, t, fit);
	buf[fit] = '\x7f';
	buf[fit + 1] = '\0';
}

/* Read a row selected with ENTRY_COLUMNS. */
static void read_entry(sqlite3_stmt *st, struct manifest_entry *e)
{
	char state[16];

	memset(e, 0, sizeof(*e));
	column_name(st, 0, e->symbol, sizeof(e->symbol));
	column_name(st, 1, e->key, sizeof(e->key));
	column_text(st, 2, e->path, sizeof(e->path));
	column_text(st, 3, state, sizeof(state));
	e->state = strcmp(state, "published") == 0 ? ENTRY_PUBLISHED
		   : strcmp(state, "writing") == 0   ? ENTRY_WRITING
						     : ENTRY_UNKNOWN;
	e->has_ts = sqlite3_column_type(st, 4) != SQLITE_NULL;
	e->start_ts = sqlite3_column_int64(st, 4);
	e->end_ts = sqlite3_column_int64(st, 5);
	e->rows = sqlite3_column_type(st, 6) == SQLITE_NULL
			  ? -1
			  : sqlite3_column_int64(st, 6);
	e->file_size = sqlite3_column_int64(st, 7);
	e->stored_size = sqlite3_column_int64(st, 8);
	column_text(st, 9, e->compression, sizeof(e->compression));
	column_text(st, 10, e->hash_method, sizeof(e->hash_method));
	column_text(st, 11, e->sha256, sizeof(e->sha256));
	e->created_ts = sqlite3_column_int64(st, 12);
	e->last_accessed_ts = sqlite3_column_int64(st, 13);
	e->access_count = sqlite3_column_int64(st, 14);
	column_text(st, 15, e->writer, sizeof(e->writer));
	/* a row from before the column shows its creation time; 0 is a
	 * time like any other (touch -d @0) */
	e->mtime_ns = sqlite3_column_type(st, 16) == SQLITE_NULL
			      ? us_to_ns(e->created_ts)
			      : sqlite3_column_int64(st, 16);
	e->mode = (uint32_t)sqlite3_column_int64(st, 17);
	e->ctime_ns = sqlite3_column_int64(st, 18);
	column_text(st, 19, e->sealed_tmp, sizeof(e->sealed_tmp));
}

/* A single integer from `sql`; 0 when the query returns no row. */
static int query_int64(struct manifest_sqlite *ms, const char *sql,
		       int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	*out = 0;
	rc = sqlite3_prepare_v2(ms->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(ms, "prepare", rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		rc = sqlite_fail(ms, sql, rc);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
}

static int table_exists(struct manifest_sqlite *ms, const char *name,
			int *exists)
{
	char sql[160];
	int64_t n;
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
		 " AND name = '%s'", name);
	rc = query_int64(ms, sql, &n);
	*exists = n > 0;
	return rc;
}

static int read_schema_version(struct manifest_sqlite *ms, int *version)
{
	int64_t v;
	int exists, rc;

	rc = table_exists(ms, "schema_version", &exists);
	if (rc < 0)
		return rc;
	if (!exists) {
		*version = 0;
		return 0;
	}
	rc = query_int64(ms, "SELECT max(version) FROM schema_version", &v);
	if (rc < 0)
		return rc;
	/* its table is made with version 1, in one transaction */
	if (v < 1 || v > INT_MAX) {
		log_err("manifest %s: schema version %lld is none that a "
			"featurefs writes: the manifest is damaged or not a "
			"featurefs one; restore it from a backup, or move it "
			"aside, mount the store once, unmount, and run fsck -p: "
			"it adopts the objects", ms->path, (long long)v);
		return -EIO;
	}
	*version = (int)v;
	return 0;
}

/* Bring the schema to MIGRATIONS, one transaction per migration. */
static int migrate(struct manifest_sqlite *ms)
{
	char sql[96];
	int version, rc;

	rc = exec_sql(ms, "BEGIN IMMEDIATE", "begin migration");
	if (rc < 0)
		return rc;
	rc = read_schema_version(ms, &version);
	if (rc < 0)
		goto fail;
	if (version > MIGRATIONS) {
		log_err("manifest %s: schema version %d is newer than this "
			"featurefs knows (%d): use a newer featurefs", ms->path,
			version, MIGRATIONS);
		rc = -EPROTO;
		goto fail;
	}
	if (version == 0) {
		rc = exec_sql(ms, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
				  "INSERT INTO schema_version VALUES (0)",
			      "create schema_version");
		if (rc < 0)
			goto fail;
	}
	for (; version < MIGRATIONS; version++) {
		rc = exec_sql(ms, migrations[version], "migration");
		if (rc < 0)
			goto fail;
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d",
			 version + 1);
		rc = exec_sql(ms, sql, "record migration");
		if (rc < 0)
			goto fail;
		log_debug("manifest %s: applied migration %d", ms->path,
			  version + 1);
	}
	return exec_sql(ms, "COMMIT", "commit migration");
fail:
	exec_sql(ms, "ROLLBACK", "rollback migration");
	return rc;
}

/* Record the store uuid on first use; refuse a database of another store. */
static int check_uuid(struct manifest_sqlite *ms, const char *uuid)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(ms->db,
				"SELECT value FROM meta WHERE name = 'store_uuid'",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(ms, "read store uuid", rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *have = (const char *)sqlite3_column_text(st, 0);

		if (uuid && have && strcmp(have, uuid) != 0) {
			log_err("manifest %s belongs to store %s, not to this "
				"store (%s)", ms->path, have, uuid);
			rc = -EXDEV;
		} else {
			rc = 0;
		}
	} else if (rc == SQLITE_DONE) {
		rc = 0;
		if (uuid && !ms->read_only) {
			char sql[128];

			snprintf(sql, sizeof(sql),
				 "INSERT INTO meta VALUES ('store_uuid', '%.36s')",
				 uuid);
			rc = exec_sql(ms, sql, "record store uuid");
		}
	} else {
		rc = sqlite_fail(ms, "read store uuid", rc);
	}
	sqlite3_finalize(st);
	return rc;
}

static int sqlite_accepts(const char *uri)
{
	return strcmp(uri, "sqlite") == 0;
}

/* sqlite3_wal_hook callback of `db`, run after each commit with the
 * mutex held: wake the checkpointer each time the WAL has grown by
 * CHECKPOINT_PAGES, or checkpoint here once it has grown too much. */
static int wal_committed(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct manifest_sqlite *ms = arg;

	if (pages < ms->wal_pages)	/* the WAL started over */
		ms->ckpt_asked_at = 0;
	ms->wal_pages = pages;
	if (pages >= CHECKPOINT_PAGES_MAX) {
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
					  NULL, NULL);
	} else if (pages >= ms->ckpt_asked_at + CHECKPOINT_PAGES) {
		ms->ckpt_asked_at = pages;
		pthread_mutex_lock(&ms->ckpt_mu);
		ms->ckpt_wanted = 1;
		pthread_cond_signal(&ms->ckpt_cond);
		pthread_mutex_unlock(&ms->ckpt_mu);
	}
	return SQLITE_OK;
}

/* The reserve: what removals may use on a full filesystem.  At most
 * 1/16 of the filesystem, so that a small one is not filled by it. */
#define RESERVE_BYTES (4 << 20)

static off_t reserve_size(const struct statvfs *vfs)
{
	off_t size = (off_t)((uint64_t)vfs->f_blocks * vfs->f_frsize / 16);

	return size > RESERVE_BYTES ? RESERVE_BYTES : size;
}

/* Whether the filesystem of `path` is full: less room than the reserve
 * holds (that it takes to open the manifest: a -shm, pages of WAL). */
static int fs_full(const char *path)
{
	struct statvfs vfs;

	return statvfs(path, &vfs) == 0 &&
	       (uint64_t)vfs.f_bavail * vfs.f_frsize <
		       (uint64_t)reserve_size(&vfs);
}

/* Make the reserve if it is missing and the filesystem has room for it
 * twice over; quietly nothing otherwise (no fallocate, a full disk). */
static void reserve_make(struct manifest_sqlite *ms)
{
	struct statvfs vfs;
	struct stat st;
	off_t size;
	int fd, made;

	if (!ms->reserve_path)
		return;
	pthread_mutex_lock(&ms->reserve_mu);
	made = stat(ms->reserve_path, &st) == 0;
	if (made || statvfs(ms->path, &vfs) < 0)
		goto out;
	size = reserve_size(&vfs);
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize < 2 * (uint64_t)size)
		goto out;
	fd = open(ms->reserve_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  0600);
	if (fd < 0)
		goto out;
	made = posix_fallocate(fd, 0, size) == 0 && fsync(fd) == 0;
	if (!made)
		unlink(ms->reserve_path);
	close(fd);
out:
	__atomic_store_n(&ms->reserve_missing, !made, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ms->reserve_mu);
}

/* A removal found the filesystem full: give up the reserve, so that it
 * can commit and free its object.  1 when there was one to give up. */
static int reserve_release(struct manifest_sqlite *ms)
{
	int released;

	if (!ms->reserve_path)
		return 0;
	pthread_mutex_lock(&ms->reserve_mu);
	released = unlink(ms->reserve_path) == 0;
	__atomic_store_n(&ms->reserve_missing, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ms->reserve_mu);
	if (released)
		log_warn("manifest %s: the filesystem is full: gave up the "
			 "manifest's reserve so that removals can free space; "
			 "it is made again once there is room", ms->path);
	return released;
}

/* The checkpointer: a PASSIVE checkpoint each time a commit asks for one,
 * on its own connection, so it waits for no writer and no writer for it.
 * Requests that arrive during a checkpoint are served by one more. */
static void *checkpointer_main(void *arg)
{
	struct manifest_sqlite *ms = arg;
	int rc;

	pthread_mutex_lock(&ms->ckpt_mu);
	for (;;) {
		while (!ms->ckpt_wanted && !ms->ckpt_stop)
			pthread_cond_wait(&ms->ckpt_cond, &ms->ckpt_mu);
		if (ms->ckpt_stop)
			break;
		ms->ckpt_wanted = 0;
		pthread_mutex_unlock(&ms->ckpt_mu);
		rc = sqlite3_wal_checkpoint_v2(ms->ckpt_db, NULL,
					       SQLITE_CHECKPOINT_PASSIVE, NULL,
					       NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !ms->ckpt_failing)
			log_err("manifest %s: checkpoint failed: %s (the WAL "
				"grows until one succeeds)", ms->path,
				sqlite3_errmsg(ms->ckpt_db));
		else if (rc == SQLITE_OK && ms->ckpt_failing)
			log_info("manifest %s: checkpoints succeed again",
				 ms->path);
		if (rc == SQLITE_OK)
			reserve_make(ms);
		if (rc != SQLITE_BUSY) /* another checkpoint was running */
			ms->ckpt_failing = rc != SQLITE_OK;
		pthread_mutex_lock(&ms->ckpt_mu);
	}
	pthread_mutex_unlock(&ms->ckpt_mu);
	return NULL;
}

/* Open the checkpointer's connection, start its thread, and hand it
 * `db`'s checkpoints. */
static int checkpointer_start(struct manifest_sqlite *ms)
{
	int rc;

	rc = sqlite3_open_v2(ms->path, &ms->ckpt_db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	/* a connection learns that the database is in WAL mode by reading it */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(ms->ckpt_db, "SELECT 1 FROM sqlite_schema",
				  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return fail_on(ms, ms->ckpt_db, "open checkpoint connection",
			       rc);
	rc = pthread_create(&ms->ckpt_thread, NULL, checkpointer_main, ms);
	if (rc != 0) {
		log_err("manifest %s: cannot start the checkpointer: %s",
			ms->path, strerror(rc));
		return -rc;
	}
	ms->ckpt_started = 1;
	sqlite3_wal_hook(ms->db, wal_committed, ms);
	return 0;
}

static void checkpointer_stop(struct manifest_sqlite *ms)
{
	if (ms->ckpt_started) {
		sqlite3_wal_hook(ms->db, NULL, NULL);
		pthread_mutex_lock(&ms->ckpt_mu);
		ms->ckpt_stop = 1;
		pthread_cond_signal(&ms->ckpt_cond);
		pthread_mutex_unlock(&ms->ckpt_mu);
		pthread_join(ms->ckpt_thread, NULL);
		ms->ckpt_started = 0;
	}
	if (ms->ckpt_db)
		sqlite3_close(ms->ckpt_db);
	ms->ckpt_db = NULL;
}

static void sqlite_close(struct manifest *m)
{
	struct manifest_sqlite *ms = ms_of(m);
	int i;

	checkpointer_stop(ms);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(ms->stmt[i]);
	if (ms->scan_db && ms->scan_db != ms->db)
		sqlite3_close(ms->scan_db);
	if (ms->db)
		sqlite3_close(ms->db);
	pthread_mutex_destroy(&ms->scan_mu);
	pthread_cond_destroy(&ms->ckpt_cond);
	pthread_mutex_destroy(&ms->ckpt_mu);
	lock_table_free(ms->locks);
	pthread_mutex_destroy(&ms->mu);
	pthread_mutex_destroy(&ms->reserve_mu);
	if (ms->root_fd >= 0)
		close(ms->root_fd);
	free(ms->reserve_path);
	free(ms->path);
	free(ms);
}

/* Whether `path`, on a read-only filesystem, has a WAL that is not empty
 * but no -shm: SQLite cannot make the one it reads the WAL through
 * there. */
static int wal_unreadable(const char *path)
{
	char name[PATH_MAX + 8];
	struct statvfs vfs;
	struct stat st;

	if (statvfs(path, &vfs) < 0 || !(vfs.f_flag & ST_RDONLY))
		return 0;
	snprintf(name, sizeof(name), "%s-wal", path);
	if (stat(name, &st) < 0 || st.st_size == 0)
		return 0;
	snprintf(name, sizeof(name), "%s-shm", path);
	return stat(name, &st) < 0 && errno == ENOENT;
}

/* SQLite's unix VFS: each connection with a -shm open holds a shared
 * lock on this byte of it (its "dead man switch"). */
#define SHM_DMS_BYTE 128

/* Whether a connection holds -shm file `shm` open: no, when there is none,
 * or none holds its lock (one a failed open left).  Called before this
 * process opens the manifest, whose own locks closing `fd` would drop. */
static int shm_in_use(const char *shm)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = SHM_DMS_BYTE,
		.l_len = 1,
	};
	int fd, rc;

	fd = open(shm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT; /* not to be told: in use */
	rc = fcntl(fd, F_GETLK, &fl);
	close(fd);
	return rc < 0 || fl.l_type != F_UNLCK;
}

/*
 * On a read-only filesystem (a snapshot, a read-only export), or a full
 * one whose -shm no connection holds (nothing has the manifest open), a
 * read-only open names the database as immutable: SQLite then reads it
 * without the -shm and -wal files it could not make there.  Writes `path` as
 * such a URI into `buf` and returns 1; 0 where the filesystem takes
 * them, or the store holds a WAL not yet checkpointed (its last
 * commits, which an immutable read would miss).
 */
static int immutable_uri(const char *path, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char name[PATH_MAX + 8];
	struct statvfs vfs;
	struct stat st;
	size_t o = 0;

	if (statvfs(path, &vfs) < 0)
		return 0;
	snprintf(name, sizeof(name), "%s-shm", path);
	if (!(vfs.f_flag & ST_RDONLY) && !(fs_full(path) && !shm_in_use(name)))
		return 0;
	snprintf(name, sizeof(name), "%s-wal", path);
	if (stat(name, &st) == 0 && st.st_size > 0)
		return 0;
	o = (size_t)snprintf(buf, len, "file:");
	for (; *path && o + 4 < len; path++) {
		unsigned char c = (unsigned char)*path;

		if (isalnum(c) || strchr("/._-~", c)) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (*path || (size_t)snprintf(buf + o, len - o, "?immutable=1") >=
			     len - o)
		return 0;
	return 1;
}

/* A manifest.db, -wal or -shm that exists must be a regular file (or a
 * link to one): SQLite would wait forever to open a FIFO, and a
 * directory or device holds no database.  -EINVAL, logged, otherwise. */
static int check_regular(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char name[PATH_MAX + 8];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
		if (stat(name, &st) < 0 || S_ISREG(st.st_mode))
			continue; /* a missing one is made, or reported */
		log_err("manifest %s is not a regular file; move it away%s",
			name, i == 0 ? " and restore the manifest" : "");
		return -EINVAL;
	}
	return 0;
}

/* Open ms->db on ms->path as `args` ask: read-only (as immutable where
 * SQLite could make no -shm), or read-write, made if missing only when
 * args->may_create.  -ENOENT, logged, for a missing or empty manifest
 * that must not be made. */
static int open_main_connection(struct manifest_sqlite *ms,
				const struct manifest_open_args *args)
{
	char uri_buf[3 * PATH_MAX + 32];
	int flags, rc, version;

	rc = check_regular(ms->path);
	if (rc < 0)
		return rc;
	flags = SQLITE_OPEN_NOMUTEX |
		(args->read_only     ? SQLITE_OPEN_READONLY
		 : args->may_create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
				    : SQLITE_OPEN_READWRITE);
	if (args->read_only && wal_unreadable(ms->path)) {
		log_err("manifest %s: its -wal is not empty (it may hold "
			"commits not yet in the database), and without its -shm "
			"SQLite cannot read it on a read-only filesystem: copy "
			"the store (with manifest.db-wal) to writable storage, "
			"or mount it read-write once, which folds it in",
			ms->path);
		return -EROFS;
	}
	if (args->read_only &&
	    immutable_uri(ms->path, uri_buf, sizeof(uri_buf))) {
		/* SQLite cannot make the -shm it reads WAL through here */
		flags |= SQLITE_OPEN_URI;
		rc = sqlite3_open_v2(uri_buf, &ms->db, flags, NULL);
	} else {
		rc = sqlite3_open_v2(ms->path, &ms->db, flags, NULL);
	}
	if (rc != SQLITE_OK && (args->read_only || !args->may_create) &&
	    access(ms->path, F_OK) < 0 && errno == ENOENT) {
		/* found missing by what must not make one */
		log_err("manifest %s is missing: restore it from a backup, or "
			"mount the store once (which makes an empty one), "
			"unmount, and run fsck -p: it adopts the objects",
			ms->path);
		return -ENOENT;
	}
	if (rc != SQLITE_OK)
		return sqlite_fail(ms, "open", rc);
	sqlite3_busy_timeout(ms->db, SQLITE_BUSY_MS);
	sqlite3_extended_result_codes(ms->db, 1);
	/* an empty file (cut to nothing) is as good as missing: found so
	 * before anything, a WAL header included, is written to it */
	if (!args->read_only && !args->may_create) {
		rc = read_schema_version(ms, &version);
		if (rc < 0)
			return rc; /* logged */
		if (version == 0) {
			log_err("manifest %s is empty: restore it from a "
				"backup, or mount the store once (which makes "
				"the tables), unmount, and run fsck -p: it "
				"adopts the objects", ms->path);
			return -ENOENT;
		}
	}
	return 0;
}

/* Read the schema of a read-only manifest as it is: one that lacks only
 * what later migrations add (a store on read-only media cannot be
 * migrated), or -EPROTO, logged, for one this featurefs cannot read. */
static int read_schema_as_is(struct manifest_sqlite *ms)
{
	int rc, version;

	rc = read_schema_version(ms, &version);
	if (rc < 0)
		return rc;
	if (version > MIGRATIONS) {
		log_err("manifest %s: schema version %d is newer than this "
			"featurefs knows (%d): use a newer featurefs",
			ms->path, version, MIGRATIONS);
		return -EPROTO;
	}
	if (version < 2) {
		log_err("manifest %s: schema version %d, this featurefs "
			"expects %d (mount the store once to migrate)",
			ms->path, version, MIGRATIONS);
		return -EPROTO;
	}
	/* the entries of 2 and 3 through a view that adds the missing
	 * columns as NULL; before 5, without a removals table, nor removals
	 * to finish */
	if (version <= 3) {
		char sql[160];

		snprintf(sql, sizeof(sql),
			 "CREATE TEMP VIEW entries AS SELECT *,%s NULL AS "
			 "sealed_tmp FROM main.entries",
			 version == 2 ? " NULL AS ctime_ns," : "");
		rc = exec_sql(ms, sql, "read an older schema");
	}
	ms->no_removals = version < 5;
	return rc;
}

/* Prepare the hot statements once; a read-only manifest only those that
 * read. */
static int prepare_statements(struct manifest_sqlite *ms)
{
	int i, rc;

	for (i = 0; i < ST_COUNT; i++) {
		if (ms->read_only && !stmt_reads_only(i))
			continue;
		rc = sqlite3_prepare_v3(ms->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &ms->stmt[i],
					NULL);
		if (rc != SQLITE_OK)
			return sqlite_fail(ms, "prepare", rc);
	}
	return 0;
}

/* What a read-write manifest has besides its connection: the scan
 * connection, the checkpointer and the reserve. */
static int open_writer_parts(struct manifest_sqlite *ms)
{
	int rc;

	rc = sqlite3_open_v2(ms->path, &ms->scan_db,
			     SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return fail_on(ms, ms->scan_db, "open scan connection", rc);
	sqlite3_busy_timeout(ms->scan_db, SQLITE_BUSY_MS);
	sqlite3_exec(ms->scan_db, "PRAGMA cache_size = -65536", NULL, NULL,
		     NULL);
	rc = checkpointer_start(ms);
	if (rc < 0)
		return rc;
	reserve_make(ms);
	return 0;
}

static int sqlite_open(const char *uri, const struct manifest_open_args *args,
		       struct manifest **out)
{
	struct manifest_sqlite *ms;
	char path[PATH_MAX];
	struct stat st;
	int rc;

	(void)uri;
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	ms->base.ops = &manifest_sqlite_ops;
	ms->root_fd = -1;
	pthread_mutex_init(&ms->mu, NULL);
	pthread_mutex_init(&ms->scan_mu, NULL);
	pthread_mutex_init(&ms->ckpt_mu, NULL);
	pthread_cond_init(&ms->ckpt_cond, NULL);
	pthread_mutex_init(&ms->reserve_mu, NULL);
	ms->read_only = args->read_only;
	snprintf(path, sizeof(path), "%s/manifest.db", args->store_root);
	ms->path = strdup(path);
	rc = lock_table_new(&ms->locks);
	if (!ms->path || rc < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	if (!args->read_only) {
		snprintf(path, sizeof(path), "%s/manifest.reserve",
			 args->store_root);
		ms->reserve_path = strdup(path);
		if (!ms->reserve_path) {
			rc = -ENOMEM;
			goto fail;
		}
		/* a -shm and pages of WAL come before the first removal */
		if (fs_full(args->store_root))
			reserve_release(ms);
	}
	rc = open_main_connection(ms, args);
	if (rc < 0)
		goto fail;
	if (!args->read_only) {
		rc = exec_sql(ms, "PRAGMA journal_mode = WAL;"
				  "PRAGMA synchronous = NORMAL;"
				  "PRAGMA journal_size_limit = 67108864",
			      "set journal mode");
		if (rc == 0)
			rc = exec_sql(ms, "PRAGMA cache_size = -65536",
				      "set cache size");
		if (rc == 0)
			rc = migrate(ms);
	} else {
		rc = read_schema_as_is(ms);
	}
	if (rc == 0)
		rc = check_uuid(ms, args->store_uuid);
	if (rc == 0)
		rc = prepare_statements(ms);
	if (rc < 0)
		goto fail;
	ms->scan_db = ms->db;
	if (!args->read_only) {
		rc = open_writer_parts(ms);
		if (rc < 0)
			goto fail;
	}
	if (stat(ms->path, &st) == 0) {
		ms->file_dev = st.st_dev;
		ms->file_ino = st.st_ino;
	}
	ms->root_fd = open(args->store_root,
			   O_PATH | O_DIRECTORY | O_CLOEXEC);
	*out = &ms->base;
	return 0;
fail:
	sqlite_close(&ms->base);
	return rc;
}

static int sqlite_get(struct manifest *m, const char *symbol, const char *key,
		      struct manifest_entry *out)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_GET);
	bind_key(st, symbol, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_entry(st, out);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = sqlite_fail(ms, "get entry", rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

/* Insert `e` (and its symbol) in one transaction; caller holds ms->mu. */
static int insert_entry(struct manifest_sqlite *ms,
			const struct manifest_entry *e)
{
	sqlite3_stmt *st;
	int rc;

	rc = tx_begin(ms);
	if (rc < 0)
		return rc;
	st = stmt(ms, ST_SYMBOL_ENSURE);
	sqlite3_bind_text(st, 1, e->symbol, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, e->created_ts);
	rc = step_done(ms, st, "insert symbol");
	if (rc < 0)
		goto fail;
	st = stmt(ms, ST_INSERT);
	bind_entry(st, e);
	/* no row changed: the key is a row of someone else */
	rc = step_change(ms, st, "insert entry", -EEXIST);
	if (rc < 0)
		goto fail;
	return tx_commit(ms);
fail:
	tx_rollback(ms);
	return rc;
}

/* Take the key lock and insert `e`; the lock is kept on success only
 * when `keep_lock` is set. */
static int locked_insert(struct manifest *m, const struct manifest_entry *e,
			 int keep_lock)
{
	struct manifest_sqlite *ms = ms_of(m);
	int64_t id = lock_id_entry(e->symbol, e->key);
	int rc;

	rc = lock_table_try(ms->locks, id);
	if (rc < 0)
		return rc == -EBUSY ? -EEXIST : rc;
	pthread_mutex_lock(&ms->mu);
	rc = insert_entry(ms, e);
	pthread_mutex_unlock(&ms->mu);
	if (rc < 0 || !keep_lock)
		lock_table_release(ms->locks, id);
	return rc;
}

static int sqlite_claim(struct manifest *m, const struct manifest_entry *e)
{
	struct manifest_sqlite *ms = ms_of(m);

	/* space that removals freed goes to the reserve before new entries
	 * take it */
	if (__atomic_load_n(&ms->reserve_missing, __ATOMIC_RELAXED))
		reserve_make(ms);
	return locked_insert(m, e, 1);
}

static int sqlite_adopt(struct manifest *m, const struct manifest_entry *e)
{
	return locked_insert(m, e, 0);
}

static int sqlite_publish(struct manifest *m, const struct manifest_entry *e)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_PUBLISH);
	bind_entry(st, e);
	rc = step_change(ms, st, "publish entry", -ENOENT);
	pthread_mutex_unlock(&ms->mu);
	if (rc == 0)
		lock_table_release(ms->locks, lock_id_entry(e->symbol, e->key));
	return rc;
}

static int sqlite_abandon(struct manifest *m, const char *symbol,
			  const char *key)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_ABANDON);
	bind_key(st, symbol, key);
	rc = step_done(ms, st, "abandon entry");
	pthread_mutex_unlock(&ms->mu);
	lock_table_release(ms->locks, lock_id_entry(symbol, key));
	return rc;
}

static int sqlite_remove(struct manifest *m, const char *symbol,
			 const char *key, enum entry_state state)
{
	struct manifest_sqlite *ms = ms_of(m);
	int64_t id = lock_id_entry(symbol, key);
	sqlite3_stmt *st;
	int rc;

	rc = lock_table_try(ms->locks, id);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&ms->mu);
	do {
		st = stmt(ms, state ? ST_REMOVE_STATE : ST_REMOVE);
		bind_key(st, symbol, key);
		if (state)
			sqlite3_bind_text(st, 3, manifest_state_name(state),
					  -1, SQLITE_STATIC);
		rc = step_change(ms, st, "remove entry", -ENOENT);
	} while (rc == -ENOSPC && reserve_release(ms));
	pthread_mutex_unlock(&ms->mu);
	if (rc < 0)
		lock_table_release(ms->locks, id); /* else: release() */
	return rc;
}

static int sqlite_pin(struct manifest *m, const char *symbol, const char *key)
{
	return lock_table_try(ms_of(m)->locks, lock_id_entry(symbol, key));
}

static void sqlite_release(struct manifest *m, const char *symbol,
			   const char *key)
{
	lock_table_release(ms_of(m)->locks, lock_id_entry(symbol, key));
}

/* Bind what `a` sets as parameters `at` (mtime), `at` + 1 (mode) and
 * `at` + 2 (ctime); an unset one stays NULL, which the statement reads as
 * "as it is". */
static void bind_attrs(sqlite3_stmt *st, int at, const struct manifest_attrs *a)
{
	if (a->set & MANIFEST_SET_MTIME)
		sqlite3_bind_int64(st, at, a->mtime_ns);
	if (a->set & MANIFEST_SET_MODE)
		sqlite3_bind_int64(st, at + 1, a->mode);
	sqlite3_bind_int64(st, at + 2, a->ctime_ns);
}

static int sqlite_set_attrs(struct manifest *m, const char *symbol,
			    const char *key, const struct manifest_attrs *a)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_SET_ATTRS);
	bind_key(st, symbol, key);
	bind_attrs(st, 3, a);
	rc = step_change(ms, st, "set attributes", -ENOENT);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int sqlite_seal(struct manifest *m, const char *symbol,
		       const char *key, const char *tmpname,
		       const struct manifest_attrs *a)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_SEAL);
	bind_key(st, symbol, key);
	bind_text_or_null(st, 3, tmpname);
	if (a)
		bind_attrs(st, 4, a);
	rc = step_change(ms, st, "seal entry", -ENOENT);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int sqlite_record(struct manifest *m, const struct manifest_access *a,
			 size_t na, const struct manifest_symbol_delta *d,
			 size_t nd, unsigned flags)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if (na == 0 && nd == 0)
		return 0;
	pthread_mutex_lock(&ms->mu);
	/* under WAL only BEGIN IMMEDIATE waits for another writer */
	if (flags & MANIFEST_RECORD_BRIEF)
		sqlite3_busy_timeout(ms->db, SQLITE_BRIEF_BUSY_MS);
	rc = tx_begin(ms);
	if (flags & MANIFEST_RECORD_BRIEF)
		sqlite3_busy_timeout(ms->db, SQLITE_BUSY_MS);
	if (rc < 0)
		goto out;
	for (i = 0; i < na && rc == 0; i++) {
		st = stmt(ms, ST_ACCESS);
		bind_key(st, a[i].symbol, a[i].key);
		sqlite3_bind_int64(st, 3, a[i].count);
		sqlite3_bind_int64(st, 4, a[i].last_ts);
		rc = step_done(ms, st, "record access");
	}
	for (i = 0; i < nd && rc == 0; i++) {
		st = stmt(ms, ST_SYMBOL_COUNTS);
		sqlite3_bind_text(st, 1, d[i].symbol, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, d[i].hits);
		sqlite3_bind_int64(st, 3, d[i].misses);
		rc = step_done(ms, st, "record hits");
	}
	rc = tx_end(ms, rc);
out:
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static const char *order_expr(enum manifest_order order)
{
	return order == ORDER_LRU
		       ? "coalesce(last_accessed_ts, created_ts), symbol, key"
		       : "symbol, key";
}

/* " AND" the row's state is one of the bits (1 << ENTRY_*) of `states`. */
static void add_state_filter(struct strbuf *sql, unsigned states)
{
	static const enum entry_state all[] = {
		ENTRY_WRITING, ENTRY_PUBLISHED, ENTRY_UNKNOWN,
	};
	const char *sep = " AND " STATE_NAME " IN (";
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!(states & (1u << all[i])))
			continue;
		sb_addf(sql, "%s'%s'", sep, manifest_state_name(all[i]));
		sep = ", ";
	}
	sb_adds(sql, ")");
}

static int sqlite_list(struct manifest *m, const struct manifest_query *q,
		       manifest_row_fn fn, void *arg)
{
	struct manifest_sqlite *ms = ms_of(m);
	struct strbuf sql = STRBUF_INIT;
	struct manifest_entry e;
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc;

	sb_adds(&sql, "SELECT " ENTRY_COLUMNS " FROM entries WHERE 1");
	if (q->symbol)
		sb_adds(&sql, " AND symbol = :symbol");
	if (q->states == (1u << ENTRY_PUBLISHED))
		sb_adds(&sql, " AND state = 'published'");
	else if (q->states == (1u << ENTRY_WRITING))
		sb_adds(&sql, " AND state = 'writing'"); /* its index's */
	else if (q->states)
		add_state_filter(&sql, q->states);
	if (q->idle_before > 0)
		sb_adds(&sql, " AND coalesce(last_accessed_ts, created_ts) < :idle");
	if (q->after_symbol) {
		/* the first term lets the index start at the cursor */
		if (q->order == ORDER_LRU)
			sb_adds(&sql, " AND coalesce(last_accessed_ts, created_ts) >= :ats"
				      " AND (coalesce(last_accessed_ts, created_ts),"
				      " symbol, key) > (:ats, :asym, :akey)");
		else
			sb_adds(&sql, " AND (symbol, key) > (:asym, :akey)");
	}
	sb_addf(&sql, " ORDER BY %s", order_expr(q->order));
	if (q->limit)
		sb_addf(&sql, " LIMIT %zu", q->limit);
	if (sql.err)
		return sql.err;

	db = scan_begin(ms);
	rc = sqlite3_prepare_v2(db, sb_str(&sql), -1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = fail_on(ms, db, "prepare list", rc);
		goto out;
	}
#define BIND_NAMED_TEXT(name, v)                                                \
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), v, -1, \
			  SQLITE_STATIC)
	if (q->symbol)
		BIND_NAMED_TEXT(":symbol", q->symbol);
	if (q->idle_before > 0)
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":idle"),
				   q->idle_before);
	if (q->after_symbol) {
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":ats"),
				   q->after_ts);
		BIND_NAMED_TEXT(":asym", q->after_symbol);
		BIND_NAMED_TEXT(":akey", q->after_key ? q->after_key : "");
	}
#undef BIND_NAMED_TEXT
	rc = 0;
	for (;;) {
		int step = sqlite3_step(st);

		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = fail_on(ms, db, "list entries", step);
			break;
		}
		read_entry(st, &e);
		rc = fn(arg, &e);
		if (rc)
			break;
	}
out:
	sqlite3_finalize(st);
	scan_end(ms);
	sb_release(&sql);
	return rc;
}

/* Run `sql` with `symbol` bound to ?1 and no result rows; caller holds mu. */
static int exec_with_symbol(struct manifest_sqlite *ms, const char *sql,
			    const char *symbol, int *changes)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(ms->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(ms, "prepare", rc);
	sqlite3_bind_text(st, 1, symbol, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && changes)
		*changes = sqlite3_column_int(st, 0);
	else if (rc == SQLITE_DONE && changes)
		*changes = sqlite3_changes(ms->db);
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_fail(ms, sql, rc);
	sqlite3_finalize(st);
	return rc;
}

#define RECOUNT_SQL                                                    \
	"UPDATE symbols SET (entries, writing, file_bytes, stored_bytes) = " \
	USAGE_OF("symbols") " WHERE symbol = ?1"

static int sqlite_symbol_create(struct manifest *m, const char *symbol)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	rc = tx_begin(ms);
	if (rc < 0)
		goto out;
	st = stmt(ms, ST_SYMBOL_ENSURE);
	sqlite3_bind_text(st, 1, symbol, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_us());
	rc = step_change(ms, st, "create symbol", -EEXIST);
	/* a row made again for entries whose row was lost starts from
	 * what they add up to (the triggers only move it from there), in
	 * the same transaction: never a row with totals of nothing */
	if (rc == 0)
		rc = exec_with_symbol(ms, RECOUNT_SQL, symbol, NULL);
	rc = tx_end(ms, rc);
out:
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int sqlite_usage_recount(struct manifest *m, const char *symbol)
{
	struct manifest_sqlite *ms = ms_of(m);
	int changed = 0, rc;

	pthread_mutex_lock(&ms->mu);
	rc = exec_with_symbol(ms, RECOUNT_SQL, symbol, &changed);
	pthread_mutex_unlock(&ms->mu);
	return rc == 0 && changed == 0 ? -ENOENT : rc;
}

static int sqlite_usage_check(struct manifest *m, manifest_usage_fn fn,
			      void *arg)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc;

	/* one read, one snapshot: a mount's writes meanwhile move both
	 * sides together */
	db = scan_begin(ms);
	rc = sqlite3_prepare_v2(
		db,
		"WITH u (symbol, e, w, f, b) AS (SELECT symbol, " USAGE_SUMS
		"  FROM entries GROUP BY symbol)"
		" SELECT s.symbol, s.entries, s.writing, s.file_bytes,"
		" s.stored_bytes, coalesce(u.e, 0), coalesce(u.w, 0),"
		" coalesce(u.f, 0), coalesce(u.b, 0)"
		" FROM symbols s LEFT JOIN u USING (symbol)"
		" WHERE (s.entries, s.writing, s.file_bytes, s.stored_bytes)"
		"  != (coalesce(u.e, 0), coalesce(u.w, 0), coalesce(u.f, 0),"
		"      coalesce(u.b, 0))"
		" ORDER BY s.symbol",
		-1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = fail_on(ms, db, "prepare usage check", rc);
		goto out;
	}
	for (rc = 0; rc == 0;) {
		struct manifest_usage kept, summed;
		int step = sqlite3_step(st);

		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = fail_on(ms, db, "usage check", step);
			break;
		}
		kept.entries = sqlite3_column_int64(st, 1);
		kept.writing = sqlite3_column_int64(st, 2);
		kept.file_bytes = sqlite3_column_int64(st, 3);
		kept.stored_bytes = sqlite3_column_int64(st, 4);
		summed.entries = sqlite3_column_int64(st, 5);
		summed.writing = sqlite3_column_int64(st, 6);
		summed.file_bytes = sqlite3_column_int64(st, 7);
		summed.stored_bytes = sqlite3_column_int64(st, 8);
		rc = fn(arg, (const char *)sqlite3_column_text(st, 0), &kept,
			&summed);
	}
out:
	sqlite3_finalize(st);
	scan_end(ms);
	return rc;
}


static int sqlite_symbol_remove(struct manifest *m, const char *symbol)
{
	struct manifest_sqlite *ms = ms_of(m);
	int entries = 0, removed = 0, rc;

	pthread_mutex_lock(&ms->mu);
	rc = tx_begin(ms);
	if (rc < 0)
		goto out;
	rc = exec_with_symbol(ms, "SELECT count(*) FROM entries WHERE symbol = ?1",
			      symbol, &entries);
	if (rc == 0 && entries > 0)
		rc = -ENOTEMPTY;
	if (rc == 0)
		rc = exec_with_symbol(ms, "DELETE FROM symbols WHERE symbol = ?1",
				      symbol, &removed);
	if (rc == 0 && removed == 0)
		rc = -ENOENT;
	rc = tx_end(ms, rc);
out:
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

#define SYMBOL_COLUMNS "s.symbol, s.created_ts, s.hits, s.misses"

static void read_symbol(sqlite3_stmt *st, struct manifest_symbol *s)
{
	memset(s, 0, sizeof(*s));
	column_name(st, 0, s->symbol, sizeof(s->symbol));
	s->created_ts = sqlite3_column_int64(st, 1);
	s->hits = sqlite3_column_int64(st, 2);
	s->misses = sqlite3_column_int64(st, 3);
	if (sqlite3_column_count(st) > 4) {
		s->entries = sqlite3_column_int64(st, 4);
		s->stored_bytes = sqlite3_column_int64(st, 5);
	}
}

/* Walk symbols (all, or just `only`), calling fn for each. */
static int walk_symbols(struct manifest_sqlite *ms, const char *only,
			unsigned flags, manifest_symbol_fn fn, void *arg)
{
	struct manifest_symbol s;
	struct strbuf sql = STRBUF_INIT;
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc, step, found = 0;

	sb_adds(&sql, "SELECT " SYMBOL_COLUMNS);
	if (flags & MANIFEST_SYMBOL_USAGE)
		sb_adds(&sql, ", s.entries, s.stored_bytes");
	sb_adds(&sql, " FROM symbols s");
	sb_adds(&sql, only ? " WHERE s.symbol = ?1" : " ORDER BY s.symbol");
	if (sql.err)
		return sql.err;
	db = scan_begin(ms);
	rc = sqlite3_prepare_v2(db, sb_str(&sql), -1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = fail_on(ms, db, "prepare symbols", rc);
		goto out;
	}
	if (only)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		found = 1;
		read_symbol(st, &s);
		rc = fn(arg, &s);
		if (rc)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = fail_on(ms, db, "list symbols", step);
	else if (only && !found)
		rc = -ENOENT;
out:
	sqlite3_finalize(st);
	scan_end(ms);
	sb_release(&sql);
	return rc;
}

static int copy_symbol(void *arg, const struct manifest_symbol *s)
{
	*(struct manifest_symbol *)arg = *s;
	return 0;
}

static int sqlite_symbol_get(struct manifest *m, const char *symbol,
			     struct manifest_symbol *out)
{
	struct manifest_symbol ignored;

	return walk_symbols(ms_of(m), symbol, 0, copy_symbol,
			    out ? out : &ignored);
}

static int sqlite_symbol_list(struct manifest *m, unsigned flags,
			      manifest_symbol_fn fn, void *arg)
{
	return walk_symbols(ms_of(m), NULL, flags, fn, arg);
}

static int sqlite_totals(struct manifest *m, struct manifest_totals *t)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc;

	memset(t, 0, sizeof(*t));
	db = scan_begin(ms);
	/* the symbols' totals, and the first published entry of the
	 * entries_last_accessed index */
	rc = sqlite3_prepare_v2(
		db,
		"SELECT coalesce(sum(entries), 0), coalesce(sum(writing), 0),"
		" " TOTAL_OF("file_bytes") ", " TOTAL_OF("stored_bytes") ","
		" count(*), " TOTAL_OF("hits") ", " TOTAL_OF("misses") ","
		" (SELECT min(coalesce(last_accessed_ts, created_ts))"
		"  FROM entries WHERE state = 'published')"
		" FROM symbols",
		-1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = fail_on(ms, db, "prepare totals", rc);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = fail_on(ms, db, "totals", rc);
		goto out;
	}
	t->entries = sqlite3_column_int64(st, 0);
	t->writing = sqlite3_column_int64(st, 1);
	t->file_bytes = sqlite3_column_int64(st, 2);
	t->stored_bytes = sqlite3_column_int64(st, 3);
	t->symbols = sqlite3_column_int64(st, 4);
	t->hits = sqlite3_column_int64(st, 5);
	t->misses = sqlite3_column_int64(st, 6);
	t->oldest_access_ts = sqlite3_column_int64(st, 7);
	rc = 0;
out:
	sqlite3_finalize(st);
	scan_end(ms);
	return rc;
}

static int sqlite_check(struct manifest *m, char *detail, size_t len)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st = NULL;
	int rc;

	detail[0] = '\0';
	pthread_mutex_lock(&ms->mu);
	rc = sqlite3_prepare_v2(ms->db, "PRAGMA integrity_check", -1, &st,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		char *nl;

		column_text(st, 0, detail, len);
		rc = strcmp(detail, "ok") == 0 ? 0 : -EIO;
		/* "*** in database main ***\nPage 6: ...": one log line */
		while ((nl = strchr(detail, '\n')))
			*nl = ' ';
	} else {
		snprintf(detail, len, "%s", sqlite3_errmsg(ms->db));
		rc = -EIO;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

/* Whether the store's directory the manifest was opened in still holds
 * it, linked: called when the path no longer reaches it, this tells a
 * store moved whole, or whose filesystem was detached (umount -l), from
 * a manifest removed or replaced (or a store removed).  The manifest of
 * a store moved whole keeps what the mount records. */
static int store_moved(struct manifest_sqlite *ms)
{
	struct stat dir, file;

	return ms->root_fd >= 0 && fstat(ms->root_fd, &dir) == 0 &&
	       dir.st_nlink > 0 &&
	       fstatat(ms->root_fd, "manifest.db", &file, 0) == 0 &&
	       file.st_dev == ms->file_dev && file.st_ino == ms->file_ino;
}

/* 1 when manifest.db is no longer the file this manifest opened (moved
 * away, removed or replaced under the mount): what it records is lost
 * when it closes.  Said once. */
static int file_gone(struct manifest_sqlite *ms)
{
	struct stat st;

	if (!ms->file_ino ||
	    (stat(ms->path, &st) == 0 && st.st_dev == ms->file_dev &&
	     st.st_ino == ms->file_ino))
		return 0;
	if (store_moved(ms)) {
		if (!__atomic_exchange_n(&ms->store_moved_said, 1,
					 __ATOMIC_RELAXED))
			log_warn("manifest %s: the path no longer reaches the "
				 "store this mount has open (its filesystem "
				 "was detached, or it moved whole); what the "
				 "mount records goes on into its manifest",
				 ms->path);
		return 0;
	}
	if (!__atomic_exchange_n(&ms->file_gone, 1, __ATOMIC_RELAXED))
		log_err("manifest %s was removed or replaced under the mount: "
			"what is recorded from now on is lost at the unmount; "
			"unmount, put the file back, and mount again",
			ms->path);
	return 1;
}

static int sqlite_schema_version(struct manifest *m, int *version)
{
	struct manifest_sqlite *ms = ms_of(m);
	int rc;

	pthread_mutex_lock(&ms->mu);
	rc = read_schema_version(ms, version);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int sqlite_health(struct manifest *m)
{
	struct manifest_sqlite *ms = ms_of(m);
	pthread_mutex_t *mu = ms->scan_db == ms->db ? &ms->mu : &ms->scan_mu;
	int rc = SQLITE_OK;

	/* a read on the scan connection, which a write lock (ours while
	 * it waits out the busy timeout, or another process's) does not
	 * hold up under WAL; a scan under way answers already */
	if (pthread_mutex_trylock(mu) == 0) {
		rc = sqlite3_exec(ms->scan_db,
				  "SELECT max(version) FROM schema_version",
				  NULL, NULL, NULL);
		pthread_mutex_unlock(mu);
	}
	if (rc != SQLITE_OK || __atomic_load_n(&ms->damaged, __ATOMIC_RELAXED))
		return -EIO;
	if (file_gone(ms))
		return -ESTALE;
	if (__atomic_load_n(&ms->writes_failing, __ATOMIC_RELAXED))
		return -EBUSY;
	return 0;
}

static int sqlite_mount_register(struct manifest *m,
				 const struct manifest_mount *mt)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&ms->mu);
	/* A SQLite store has one mount at a time (the store lock): any
	 * other row is left by a mount that died.  One transaction: a
	 * failed insert leaves the old rows. */
	rc = tx_begin(ms);
	if (rc < 0)
		goto out;
	rc = exec_sql(ms, "DELETE FROM mounts", "clear stale mounts");
	if (rc < 0)
		goto out;
	rc = sqlite3_prepare_v2(ms->db,
				"INSERT OR REPLACE INTO mounts VALUES"
				" (?1, ?2, ?3, ?4, ?5, ?6)",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = sqlite_fail(ms, "prepare mount", rc);
		goto out;
	}
	sqlite3_bind_text(st, 1, mt->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, mt->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, mt->pid);
	sqlite3_bind_text(st, 4, mt->mountpoint, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, mt->mounted_ts);
	sqlite3_bind_int64(st, 6, mt->heartbeat_ts);
	rc = step_done(ms, st, "register mount");
out:
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(ms->db))
		rc = tx_end(ms, rc);
	/* the mount's first write: the health says from the start that
	 * the manifest refuses writes, not once a later one fails */
	__atomic_store_n(&ms->writes_failing, rc < 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int sqlite_mount_heartbeat(struct manifest *m, const char *id,
				  int64_t now)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_HEARTBEAT);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = step_done(ms, st, "heartbeat");
	pthread_mutex_unlock(&ms->mu);
	/* a write of its own: the health learns that writes failed, or
	 * work again, even while nothing else writes */
	__atomic_store_n(&ms->writes_failing, rc < 0, __ATOMIC_RELAXED);
	if (rc == 0 && file_gone(ms))
		rc = -ESTALE;
	return rc;
}

static int sqlite_mount_unregister(struct manifest *m, const char *id)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&ms->mu);
	st = stmt(ms, ST_UNREGISTER);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = step_done(ms, st, "unregister mount");
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

/* -EBUSY when the published row of `e`'s key is there still (read since
 * `e` was listed), else -ENOENT.  ms->mu held. */
static int row_kept_why(struct manifest_sqlite *ms,
			const struct manifest_entry *e)
{
	sqlite3_stmt *st = stmt(ms, ST_GET);
	int rc;

	bind_key(st, e->symbol, e->key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *state = sqlite3_column_text(st, 3);

		rc = state && strcmp((const char *)state, "published") == 0
			     ? -EBUSY
			     : -ENOENT;
	}
	else
		rc = rc == SQLITE_DONE ? -ENOENT : sqlite_fail(ms, "get entry",
							       rc);
	sqlite3_reset(st);
	return rc;
}

/* One transaction removing the published rows[i] whose results[i] is 0,
 * if not read since they were listed (setting it -ENOENT for a row gone
 * already, -EBUSY for one read), each noted in `removals` until
 * sqlite_removals_done(); all or none.  ms->mu held. */
static int remove_batch_tx(struct manifest_sqlite *ms,
			   const struct manifest_entry *rows, size_t n,
			   int *results)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	rc = tx_begin(ms);
	for (i = 0; rc == 0 && i < n; i++) {
		if (results[i] < 0)
			continue;
		st = stmt(ms, ST_REMOVE_UNREAD);
		bind_key(st, rows[i].symbol, rows[i].key);
		sqlite3_bind_int64(st, 3, rows[i].access_count);
		sqlite3_bind_int64(st, 4, rows[i].created_ts);
		rc = step_done(ms, st, "remove entry");
		if (rc == 0 && !sqlite3_changes(ms->db)) {
			rc = row_kept_why(ms, &rows[i]);
			results[i] = rc;
			rc = rc == -EBUSY || rc == -ENOENT ? 0 : rc;
			continue;
		}
		if (rc == 0) {
			st = stmt(ms, ST_REMOVAL_ADD);
			bind_key(st, rows[i].symbol, rows[i].key);
			rc = step_done(ms, st, "note removal");
		}
	}
	rc = tx_end(ms, rc);
	return rc;
}

static int sqlite_remove_batch(struct manifest *m,
			       const struct manifest_entry *rows, size_t n,
			       int *results)
{
	struct manifest_sqlite *ms = ms_of(m);
	unsigned char *locked = calloc(n + 1, 1);
	size_t i;
	int rc;

	if (!locked)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		results[i] = lock_table_try(ms->locks,
					    lock_id_entry(rows[i].symbol,
							  rows[i].key));
		locked[i] = results[i] == 0;
	}
	pthread_mutex_lock(&ms->mu);
	do {
		rc = remove_batch_tx(ms, rows, n, results);
	} while (rc == -ENOSPC && reserve_release(ms));
	pthread_mutex_unlock(&ms->mu);
	for (i = 0; i < n; i++) {
		if (rc < 0 && results[i] == 0)
			results[i] = rc; /* rolled back: nothing removed */
		/* the locks of removed rows are kept until release() */
		if (locked[i] && results[i] < 0)
			lock_table_release(ms->locks,
					   lock_id_entry(rows[i].symbol,
							 rows[i].key));
	}
	free(locked);
	return rc;
}

static int sqlite_removals_done(struct manifest *m,
				const struct manifest_entry *rows, size_t n,
				const int *results)
{
	struct manifest_sqlite *ms = ms_of(m);
	sqlite3_stmt *st;
	size_t i;
	int rc;

	pthread_mutex_lock(&ms->mu);
	do {
		rc = tx_begin(ms);
		for (i = 0; rc == 0 && i < n; i++) {
			if (results && results[i] < 0)
				continue;
			st = stmt(ms, ST_REMOVAL_DONE);
			bind_key(st, rows[i].symbol, rows[i].key);
			rc = step_done(ms, st, "drop removal note");
		}
		rc = tx_end(ms, rc);
	} while (rc == -ENOSPC && reserve_release(ms));
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int sqlite_removals_list(struct manifest *m,
				int (*fn)(void *arg, const char *symbol,
					  const char *key),
				void *arg)
{
	struct manifest_sqlite *ms = ms_of(m);
	struct manifest_entry *keys = NULL, *p;
	sqlite3_stmt *st = NULL;
	size_t n = 0, i;
	int rc;

	if (ms->no_removals)
		return 0;
	/* collected first: `fn` may call back into the manifest */
	pthread_mutex_lock(&ms->mu);
	rc = sqlite3_prepare_v2(ms->db, "SELECT symbol, key FROM removals",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = sqlite_fail(ms, "list removals", rc);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n % 64 == 0) {
			p = realloc(keys, (n + 64) * sizeof(*keys));
			if (!p) {
				rc = -ENOMEM;
				goto out;
			}
			keys = p;
		}
		column_name(st, 0, keys[n].symbol, sizeof(keys[n].symbol));
		column_name(st, 1, keys[n].key, sizeof(keys[n].key));
		n++;
	}
	rc = rc == SQLITE_DONE ? 0 : sqlite_fail(ms, "list removals", rc);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ms->mu);
	for (i = 0; rc == 0 && i < n; i++)
		rc = fn(arg, keys[i].symbol, keys[i].key);
	free(keys);
	return rc;
}

const struct manifest_ops manifest_sqlite_ops = {
	.version = 1,
	.name = "sqlite",
	.accepts = sqlite_accepts,
	.open = sqlite_open,
	.close = sqlite_close,
	.get = sqlite_get,
	.claim = sqlite_claim,
	.publish = sqlite_publish,
	.abandon = sqlite_abandon,
	.adopt = sqlite_adopt,
	.remove = sqlite_remove,
	.set_attrs = sqlite_set_attrs,
	.record = sqlite_record,
	.list = sqlite_list,
	.symbol_create = sqlite_symbol_create,
	.symbol_remove = sqlite_symbol_remove,
	.symbol_get = sqlite_symbol_get,
	.symbol_list = sqlite_symbol_list,
	.totals = sqlite_totals,
	.usage_check = sqlite_usage_check,
	.usage_recount = sqlite_usage_recount,
	.check = sqlite_check,
	.schema_version = sqlite_schema_version,
	.health = sqlite_health,
	.mount_register = sqlite_mount_register,
	.mount_heartbeat = sqlite_mount_heartbeat,
	.mount_unregister = sqlite_mount_unregister,
	.remove_batch = sqlite_remove_batch,
	.removals_done = sqlite_removals_done,
	.removals_list = sqlite_removals_list,
	.pin = sqlite_pin,
	.release = sqlite_release,
	.seal = sqlite_seal,
};
