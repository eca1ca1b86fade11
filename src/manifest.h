/*
 * manifest.h - the manifest: one row per entry, the key locks, per-symbol
 * counters (SPEC §5).
 *
 * Every backend (manifest_sqlite.c today; a PostgreSQL one fits the same
 * table) defines one `static const struct manifest_ops` and is chosen at
 * run time from the manifest URI.  Callers use the manifest_*() inline
 * wrappers below and never know which backend they talk to.
 *
 * Conventions for every method:
 *  - Return 0 or a negative errno.  -ENOENT: no such row.  -EEXIST: the
 *    key is claimed or published already.  -EBUSY: the key's lock is held
 *    elsewhere.  -EIO: the database failed (the backend logged why, once).
 *    -ENOTCONN: the database is unreachable now (a networked backend).
 *  - Every method may block on the database; none blocks on a key lock.
 *  - Methods are safe to call from several threads at once.
 *  - Times are microseconds since the Unix epoch, 0 meaning "never";
 *    mtime_ns and ctime_ns are nanoseconds.
 */
#ifndef FEATUREFS_MANIFEST_H
#define FEATUREFS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "store.h"

#define MANIFEST_SCHEMA_VERSION 5
#define MANIFEST_WRITER_MAX 128

enum entry_state {
	ENTRY_WRITING = 1,	/* claimed; its writer holds the key lock */
	ENTRY_PUBLISHED = 2,	/* complete, valid and immutable */
	ENTRY_UNKNOWN = 3,	/* read only: a state no featurefs writes (a
				 * damaged or foreign row) */
};

struct manifest_entry {
	char symbol[SYMBOL_MAX + 1];
	char key[KEY_MAX + 1];
	char path[STORE_REL_MAX];	/* object path relative to STORE */
	enum entry_state state;
	int has_ts;			/* start_ts/end_ts are known */
	int64_t start_ts;
	int64_t end_ts;
	int64_t rows;			/* -1 while writing */
	int64_t file_size;		/* logical bytes */
	int64_t stored_size;		/* bytes of the object on disk */
	char compression[16];		/* "none" */
	char hash_method[16];		/* "full" or "footer" */
	char sha256[65];		/* hex, "" while writing */
	int64_t created_ts;
	int64_t last_accessed_ts;
	int64_t access_count;
	int64_t mtime_ns;		/* modification time shown by stat;
					 * read: created_ts if the row has none */
	int64_t ctime_ns;		/* change time; 0: created_ts */
	uint32_t mode;			/* permission bits shown by stat */
	char writer[MANIFEST_WRITER_MAX]; /* "host pid=N mount=ID" */
	/* A `writing` row whose writer closed it: the tmp/ file holding
	 * its whole, checked and fsynced content; "" otherwise. */
	char sealed_tmp[STORE_TMP_NAME_MAX];
};

/* Accesses of one entry since the last flush. */
struct manifest_access {
	char symbol[SYMBOL_MAX + 1];
	char key[KEY_MAX + 1];
	int64_t count;
	int64_t last_ts;
};

/* What set_attrs() changes in a published row. */
struct manifest_attrs {
	unsigned set;			/* MANIFEST_SET_* bits */
	int64_t mtime_ns;
	uint32_t mode;			/* permission bits */
	int64_t ctime_ns;		/* always set: when this change was */
};
#define MANIFEST_SET_MTIME 1
#define MANIFEST_SET_MODE 2

/* Hits and misses of one symbol since the last flush. */
struct manifest_symbol_delta {
	char symbol[SYMBOL_MAX + 1];
	int64_t hits;
	int64_t misses;
};

struct manifest_symbol {
	char symbol[SYMBOL_MAX + 1];
	int64_t created_ts;
	int64_t hits;
	int64_t misses;
	int64_t entries;		/* published */
	int64_t stored_bytes;		/* published */
};

/* A symbol's usage: what its symbols row keeps, or what its entries add
 * up to. */
struct manifest_usage {
	int64_t entries;		/* published */
	int64_t writing;
	int64_t file_bytes;		/* logical, published */
	int64_t stored_bytes;		/* published */
};

struct manifest_totals {
	int64_t entries;		/* published */
	int64_t writing;
	int64_t file_bytes;		/* logical, published */
	int64_t stored_bytes;		/* published */
	int64_t symbols;
	int64_t hits;
	int64_t misses;
	int64_t oldest_access_ts;	/* min coalesce(last access, created) */
};

struct manifest_mount {
	char id[STORE_MOUNT_ID_LEN + 1];
	char host[256];
	int64_t pid;
	char mountpoint[4096];
	int64_t mounted_ts;
	int64_t heartbeat_ts;
};

enum manifest_order {
	ORDER_KEY = 0,		/* symbol, key */
	ORDER_LRU = 1,		/* coalesce(last_accessed_ts, created_ts), symbol, key */
};

/* Which rows manifest_list() visits. */
struct manifest_query {
	const char *symbol;	/* NULL: every symbol */
	unsigned states;	/* bits (1 << ENTRY_*); 0: every state */
	int64_t idle_before;	/* > 0: only rows idle since before this */
	enum manifest_order order;
	size_t limit;		/* 0: no limit */
	/* Keyset cursor: start after (after_ts, after_symbol, after_key) in
	 * `order`; after_symbol NULL starts at the beginning. */
	int64_t after_ts;
	const char *after_symbol;
	const char *after_key;
};

/* Called once per row; a non-zero return stops the walk and is returned
 * by manifest_list().  It must not call back into the manifest. */
typedef int (*manifest_row_fn)(void *arg, const struct manifest_entry *e);
typedef int (*manifest_symbol_fn)(void *arg, const struct manifest_symbol *s);
typedef int (*manifest_usage_fn)(void *arg, const char *symbol,
				 const struct manifest_usage *kept,
				 const struct manifest_usage *summed);

struct manifest_open_args {
	const char *store_root;	/* absolute path of STORE */
	const char *store_uuid;	/* must match the database's, once set */
	int read_only;		/* no migrations, no writes (fsck -n, ls) */
	int may_create;		/* a missing or empty one is made (init, a
				 * mount), not refused (gc, fsck -p) */
};

struct manifest;

struct manifest_ops {
	int version;		/* 1; methods are only ever appended */
	const char *name;	/* "sqlite" */

	/* 1 when this backend serves `uri`. */
	int (*accepts)(const char *uri);
	/* Connect, check the store uuid, apply pending migrations. */
	int (*open)(const char *uri, const struct manifest_open_args *args,
		    struct manifest **out);
	void (*close)(struct manifest *m);

	int (*get)(struct manifest *m, const char *symbol, const char *key,
		   struct manifest_entry *out);
	/* Take the key lock and insert `e` as a `writing` row; -EEXIST when
	 * a row exists or the lock is held.  The lock stays held until
	 * publish() or abandon() of the same key. */
	int (*claim)(struct manifest *m, const struct manifest_entry *e);
	/* Turn the caller's `writing` row into `published` with e's
	 * metadata, and release the key lock.  On failure the caller
	 * still holds it, for abandon() or release(): until its write is
	 * kept or dropped, no sweep may take the row. */
	int (*publish)(struct manifest *m, const struct manifest_entry *e);
	/* Delete the caller's `writing` row and release the key lock. */
	int (*abandon)(struct manifest *m, const char *symbol,
		       const char *key);
	/* Insert `e` as published when no row has the key (fsck adopting
	 * an orphan, or replacing a dead writer's row); -EEXIST otherwise. */
	int (*adopt)(struct manifest *m, const struct manifest_entry *e);
	/* Delete a row under a try-lock of its key: -EBUSY when the key is
	 * locked (in flight or being deleted elsewhere), -ENOENT when gone.
	 * `state` restricts which state may be deleted (0: any).  On
	 * success the key lock stays held until release(): the caller
	 * removes the object first, so no claim of the key meets it. */
	int (*remove)(struct manifest *m, const char *symbol, const char *key,
		      enum entry_state state);
	/* Change the metadata `a` names, in one statement; -ENOENT when
	 * there is no row. */
	int (*set_attrs)(struct manifest *m, const char *symbol,
			 const char *key, const struct manifest_attrs *a);
	/* One transaction: add access counts and hits/misses.  With
	 * MANIFEST_RECORD_BRIEF it waits a moment, not the busy timeout,
	 * for a manifest another process holds: -EAGAIN then, as any call
	 * after the busy timeout; nothing is recorded, the caller keeps
	 * the records. */
	int (*record)(struct manifest *m, const struct manifest_access *a,
		      size_t na, const struct manifest_symbol_delta *d,
		      size_t nd, unsigned flags);
	/* Call `fn` for each row `q` selects, in its order; a nonzero
	 * return from `fn` stops the scan and is returned.  `fn` must not
	 * call this manifest: the scan holds its connection. */
	int (*list)(struct manifest *m, const struct manifest_query *q,
		    manifest_row_fn fn, void *arg);

	/* -EEXIST when it exists already. */
	int (*symbol_create)(struct manifest *m, const char *symbol);
	/* -ENOTEMPTY when it has entries, -ENOENT when it does not exist. */
	int (*symbol_remove)(struct manifest *m, const char *symbol);
	/* 0 when the symbol has a row (publishing an entry adds one), and
	 * `out` (may be NULL) filled but for its usage; -ENOENT otherwise. */
	int (*symbol_get)(struct manifest *m, const char *symbol,
			  struct manifest_symbol *out);
	/* Every symbol row, by name.  `entries` and `stored_bytes` are
	 * filled only with MANIFEST_SYMBOL_USAGE, which costs a scan of
	 * the entries. */
	int (*symbol_list)(struct manifest *m, unsigned flags,
			   manifest_symbol_fn fn, void *arg);

	int (*totals)(struct manifest *m, struct manifest_totals *out);
	/* fsck: `fn` for each symbol whose kept usage is not what its
	 * entries add up to (one consistent read); then a symbol's usage
	 * set to what they add up to (-ENOENT: no such row). */
	int (*usage_check)(struct manifest *m, manifest_usage_fn fn,
			   void *arg);
	int (*usage_recount)(struct manifest *m, const char *symbol);
	/* Database self-check; 0 when sound, -EIO with `detail` when not. */
	int (*check)(struct manifest *m, char *detail, size_t len);
	int (*schema_version)(struct manifest *m, int *version);
	/* The health's probe, which must never wait on a writer: 0, -EIO
	 * (unreadable, damaged), -ESTALE (its file gone under the mount:
	 * what it records is lost) or -EBUSY (its last write failed:
	 * locked, full; reads go on). */
	int (*health)(struct manifest *m);

	int (*mount_register)(struct manifest *m,
			      const struct manifest_mount *mt);
	int (*mount_heartbeat)(struct manifest *m, const char *id,
			       int64_t now);
	int (*mount_unregister)(struct manifest *m, const char *id);

	/* remove() of many published rows in one transaction: results[i]
	 * gets what remove() would have returned for rows[i], or -EBUSY
	 * when its access_count or created_ts is no longer what rows[i]
	 * says (read, or written again, since it was listed: not idle to
	 * GC; an unlink looks again).
	 * The lock of each removed row stays held until release().  The same
	 * transaction notes each removed key as a removal under way, so
	 * that should the process die before its object is unlinked,
	 * recovery finishes the removal (removals_list()) rather than
	 * adopting the object again. */
	int (*remove_batch)(struct manifest *m,
			    const struct manifest_entry *rows, size_t n,
			    int *results);
	/* Drop the notes of rows[i] (whose results[i] is not negative;
	 * all when `results` is NULL): their objects are unlinked. */
	int (*removals_done)(struct manifest *m,
			     const struct manifest_entry *rows, size_t n,
			     const int *results);
	/* Call `fn` for each removal noted and not done; its error stops
	 * the walk and is returned. */
	int (*removals_list)(struct manifest *m,
			     int (*fn)(void *arg, const char *symbol,
				       const char *key),
			     void *arg);
	/* Take the key lock of a published row, so that no remove() or
	 * claim() of the key meets it until release(): -EBUSY when the key
	 * is locked (in flight, or being removed). */
	int (*pin)(struct manifest *m, const char *symbol, const char *key);
	/* Release the key lock a successful remove(), remove_batch() or
	 * pin() kept. */
	void (*release)(struct manifest *m, const char *symbol,
			const char *key);
	/* Record in the caller's `writing` row that tmp/`tmpname` holds
	 * the entry's whole content, checked and fsynced (its writer's
	 * close() returned 0), with the times and mode `a` gives (NULL:
	 * as they are), so that recovery publishes it should this mount
	 * die first; "" withdraws that (the content changes again).
	 * -ENOENT when there is no such row. */
	int (*seal)(struct manifest *m, const char *symbol, const char *key,
		    const char *tmpname, const struct manifest_attrs *a);
};

#define MANIFEST_SYMBOL_USAGE 1u
#define MANIFEST_RECORD_BRIEF 1u

/* What manifest_time() times. */
enum manifest_timed {
	MANIFEST_TIMED_READ,	/* get */
	MANIFEST_TIMED_INSERT,	/* claim, publish */
};

/* Every backend's handle starts with this. */
struct manifest {
	const struct manifest_ops *ops;
};

typedef void manifest_observer_fn(void *arg, enum manifest_timed what,
				  int64_t us);

/* Have `observe` told how long each read and insert of `m` took (a
 * mount's metrics), whatever the backend: manifest_timed.c wraps its ops.
 * Call before other threads use `m`; manifest_close() undoes it.  0 or
 * -ENOMEM. */
int manifest_time(struct manifest *m, manifest_observer_fn *observe,
		  void *arg);

/* The backends, one file each: manifest_sqlite.c. */
extern const struct manifest_ops manifest_sqlite_ops;

/*
 * Open the manifest named by `uri` ("sqlite" or a backend's URI) with the
 * backend that accepts it.  -EPROTONOSUPPORT (logged) when none does.
 */
int manifest_open(const char *uri, const struct manifest_open_args *args,
		  struct manifest **out);
const char *manifest_backend_name(const struct manifest *m);
/* 0 when a backend serves `uri`; -EPROTONOSUPPORT (logged) otherwise. */
int manifest_uri_check(const char *uri);
/* `uri` as a message may show it: itself when a bare word (a kind, or a
 * mistyped one), else a placeholder, as libpq finds passwords in more
 * spellings than manifest_uri_has_password() knows. */
const char *manifest_uri_shown(const char *uri);

/* 1 when `uri` carries a password (user:pass@ or password=), which is
 * never accepted: secrets belong in ~/.pgpass or a service file. */
int manifest_uri_has_password(const char *uri);

/* "writing", "published" or "unknown". */
const char *manifest_state_name(enum entry_state state);

/* Why published row `e` cannot describe an object (a negative size, or
 * an uncompressed object whose stored size is not its size), or NULL. */
const char *manifest_entry_flaw(const struct manifest_entry *e);

/* The manifest's writer string for this process: "host pid=N mount=ID". */
void manifest_writer_id(const char *mount_id, char *buf, size_t len);
/* 1 when writer string `writer` names mount `mount_id` (NULL: none). */
int manifest_writer_of_mount(const char *writer, const char *mount_id);

static inline void manifest_close(struct manifest *m)
{
	if (m)
		m->ops->close(m);
}

static inline int manifest_get(struct manifest *m, const char *symbol,
			       const char *key, struct manifest_entry *out)
{
	return m->ops->get(m, symbol, key, out);
}

static inline int manifest_claim(struct manifest *m,
				 const struct manifest_entry *e)
{
	return m->ops->claim(m, e);
}

static inline int manifest_publish(struct manifest *m,
				   const struct manifest_entry *e)
{
	return m->ops->publish(m, e);
}

static inline int manifest_abandon(struct manifest *m, const char *symbol,
				   const char *key)
{
	return m->ops->abandon(m, symbol, key);
}

static inline int manifest_seal(struct manifest *m, const char *symbol,
				const char *key, const char *tmpname,
				const struct manifest_attrs *a)
{
	return m->ops->seal(m, symbol, key, tmpname, a);
}

static inline int manifest_adopt(struct manifest *m,
				 const struct manifest_entry *e)
{
	return m->ops->adopt(m, e);
}

static inline int manifest_remove(struct manifest *m, const char *symbol,
				  const char *key, enum entry_state state)
{
	return m->ops->remove(m, symbol, key, state);
}

static inline int manifest_set_attrs(struct manifest *m, const char *symbol,
				     const char *key,
				     const struct manifest_attrs *a)
{
	return m->ops->set_attrs(m, symbol, key, a);
}

static inline int manifest_record(struct manifest *m,
				  const struct manifest_access *a, size_t na,
				  const struct manifest_symbol_delta *d,
				  size_t nd, unsigned flags)
{
	return m->ops->record(m, a, na, d, nd, flags);
}

static inline int manifest_list(struct manifest *m,
				const struct manifest_query *q,
				manifest_row_fn fn, void *arg)
{
	return m->ops->list(m, q, fn, arg);
}

static inline int manifest_symbol_create(struct manifest *m,
					 const char *symbol)
{
	return m->ops->symbol_create(m, symbol);
}

static inline int manifest_symbol_remove(struct manifest *m,
					 const char *symbol)
{
	return m->ops->symbol_remove(m, symbol);
}

static inline int manifest_symbol_get(struct manifest *m, const char *symbol,
				      struct manifest_symbol *out)
{
	return m->ops->symbol_get(m, symbol, out);
}

static inline int manifest_symbol_list(struct manifest *m, unsigned flags,
				       manifest_symbol_fn fn, void *arg)
{
	return m->ops->symbol_list(m, flags, fn, arg);
}

static inline int manifest_totals(struct manifest *m,
				  struct manifest_totals *out)
{
	return m->ops->totals(m, out);
}

static inline int manifest_usage_check(struct manifest *m,
				       manifest_usage_fn fn, void *arg)
{
	return m->ops->usage_check(m, fn, arg);
}

static inline int manifest_usage_recount(struct manifest *m,
					 const char *symbol)
{
	return m->ops->usage_recount(m, symbol);
}

static inline int manifest_check(struct manifest *m, char *detail, size_t len)
{
	return m->ops->check(m, detail, len);
}

static inline int manifest_schema_version(struct manifest *m, int *version)
{
	return m->ops->schema_version(m, version);
}

static inline int manifest_health(struct manifest *m)
{
	return m->ops->health(m);
}

static inline int manifest_mount_register(struct manifest *m,
					  const struct manifest_mount *mt)
{
	return m->ops->mount_register(m, mt);
}

static inline int manifest_mount_heartbeat(struct manifest *m, const char *id,
					   int64_t now)
{
	return m->ops->mount_heartbeat(m, id, now);
}

static inline int manifest_mount_unregister(struct manifest *m, const char *id)
{
	return m->ops->mount_unregister(m, id);
}

static inline int manifest_remove_batch(struct manifest *m,
					const struct manifest_entry *rows,
					size_t n, int *results)
{
	return m->ops->remove_batch(m, rows, n, results);
}

static inline int manifest_removals_done(struct manifest *m,
					 const struct manifest_entry *rows,
					 size_t n, const int *results)
{
	return m->ops->removals_done(m, rows, n, results);
}

static inline int manifest_removals_list(
	struct manifest *m,
	int (*fn)(void *arg, const char *symbol, const char *key), void *arg)
{
	return m->ops->removals_list(m, fn, arg);
}

static inline int manifest_pin(struct manifest *m, const char *symbol,
			       const char *key)
{
	return m->ops->pin(m, symbol, key);
}

static inline void manifest_release(struct manifest *m, const char *symbol,
				    const char *key)
{
	m->ops->release(m, symbol, key);
}

#endif
