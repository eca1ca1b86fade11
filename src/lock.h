/*
 * lock.h - advisory-lock ids and a process-local lock table (SPEC §5).
 *
 * The lock name of an entry is "<symbol>/<key>"; its id is the first 8
 * bytes of SHA-256(name) read as a big-endian signed 64-bit integer, the
 * same number PostgreSQL's pg_advisory_lock() takes.  Backends without
 * shared locks (SQLite) keep held ids in a lock_table.
 */
#ifndef FEATUREFS_LOCK_H
#define FEATUREFS_LOCK_H

#include <pthread.h>
#include <stdint.h>

/* The lock id of an arbitrary name. */
int64_t lock_id(const char *name);

/* The lock id of entry <symbol>/<key>. */
int64_t lock_id_entry(const char *symbol, const char *key);

struct lock_table;

int lock_table_new(struct lock_table **out);
void lock_table_free(struct lock_table *t);

/* Take `id` if nobody holds it: 0, or -EBUSY.  Never blocks. */
int lock_table_try(struct lock_table *t, int64_t id);

/* Release a held id; releasing an id not held is a no-op. */
void lock_table_release(struct lock_table *t, int64_t id);

/* Number of ids held now. */
unsigned lock_table_count(struct lock_table *t);

#endif
