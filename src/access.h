/*
 * access.h - access records gathered in memory and flushed in batches
 * (SPEC §3 step 5): a hit never writes to the database.
 */
#ifndef FEATUREFS_ACCESS_H
#define FEATUREFS_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

/* Records kept when the manifest cannot take them; beyond this, the
 * oldest are dropped and counted. */
#define ACCESS_PENDING_MAX 1000000

struct access_log;

int access_log_new(struct access_log **out);
void access_log_free(struct access_log *a);

/* Count one access of <symbol>/<key> at `ts` (µs since the epoch). */
int access_log_add(struct access_log *a, const char *symbol, const char *key,
		   int64_t ts);

/* Copy everything gathered into a malloc()ed array (NULL when empty)
 * and empty the log; what was taken still counts as pending until
 * access_log_settle(). */
int access_log_take(struct access_log *a, struct manifest_access **out,
		    size_t *n);

/* Put back records a failed flush could not write. */
void access_log_restore(struct access_log *a,
			const struct manifest_access *recs, size_t n);

/* The records taken last are written (or restored): no longer pending
 * as taken. */
void access_log_settle(struct access_log *a);

/* Accesses of <symbol>/<key> not flushed yet (gathered, or taken by a
 * flush not settled), and the latest of them. */
int64_t access_log_pending(struct access_log *a, const char *symbol,
			   const char *key, int64_t *last_ts);

/* Records dropped because the log was full. */
uint64_t access_log_dropped(struct access_log *a);

#endif
