/*
 * gc.h - garbage collection (SPEC §7): one pass removes published entries
 * nobody has read for `older_than`, then least-recently-read ones until
 * stored bytes are under 90 % of `max_size`, then the leftovers of dead
 * writers.  The same pass runs in the mount's GC thread, through the
 * mount's control socket, and on an unmounted store.
 */
#ifndef FEATUREFS_GC_H
#define FEATUREFS_GC_H

#include <errno.h>
#include <stdint.h>

#include "manifest.h"
#include "store.h"
#include "strbuf.h"

/* Rows removed per manifest transaction.  A mount's GC keeps them short:
 * creates wait while a batch is removed.  With no mount nobody waits, and
 * bigger batches write each B-tree page less often and checkpoint the WAL
 * fewer times; past ~20000 rows a batch no longer fits SQLite's page
 * cache and gets slower again (docs/performance.md, change 13). */
#define GC_BATCH 1000
#define GC_BATCH_UNMOUNTED 20000

enum gc_list {
	GC_LIST_NONE = 0,
	GC_LIST_JSON = 1,
	GC_LIST_TEXT = 2,	/* "SYMBOL/KEY.parquet  BYTES  REASON" lines */
};

#define GC_MAX_SIZE_MOUNT UINT64_MAX

struct gc_options {
	int64_t older_than_us;	/* 0: no age limit */
	uint64_t max_size;	/* 0: no quota; GC_MAX_SIZE_MOUNT: the
				 * mount's own (a request to a mount) */
	int dry_run;
	int scan_orphans;	/* walk objects/ for files without a row */
	int list;		/* record each removed entry in the result:
				 * a GC_LIST_* */
};

struct gc_result {
	int64_t removed_entries;
	int64_t removed_bytes;
	int64_t skipped_busy;
	int64_t tmp_removed;
	int64_t rows_removed;	/* dead writers' rows dropped */
	int64_t rows_adopted;	/* dead writers' complete objects kept */
	int64_t removals_finished; /* objects of rows a crash had removed */
	int64_t orphans;
	int64_t stored_before;
	int64_t stored_after;
	int64_t duration_us;
	int interrupted;
	struct strbuf listing;	/* GC_LIST_JSON: JSON objects, comma-
				 * separated; GC_LIST_TEXT: one per line */
};

/* Where a pass runs and how it removes what it chose. */
struct gc_env {
	struct store *store;
	struct manifest *manifest;
	/* Our own mount's id: its tmp files and rows are alive.  NULL when
	 * no mount is alive (the caller holds the store lock). */
	const char *live_mount_id;
	/* Remove published entries, rows first, then objects: results[i]
	 * is 0, -EBUSY (skip: locked) or -ENOENT (gone already). */
	int (*remove)(void *arg, const struct manifest_entry *rows, size_t n,
		      int *results);
	/* Whether a row is in use, so that remove() would skip it (-EBUSY):
	 * what a dry run asks.  NULL: none is. */
	int (*in_use)(void *arg, const struct manifest_entry *e);
	void *arg;
	/* Set non-zero to stop the pass early (unmount). */
	const int *stop;
	/* Rows per batch; 0: GC_BATCH. */
	size_t batch;
};

/*
 * One GC pass: entries idle past o->older_than_us (least recently used
 * first), then, over o->max_size, more until 90% of it is left; then dead
 * writers' rows and tmp files, and with o->scan_orphans a count of
 * objects without a row.  `res` (zeroed by the caller; release it with
 * gc_result_release()) counts what was done, a failure included: 0 or
 * the first -errno, after which the pass goes no further.  A stop
 * (env->stop) ends it early with res->interrupted set.
 */
int gc_pass(const struct gc_env *env, const struct gc_options *o,
	    struct gc_result *res);
void gc_result_release(struct gc_result *res);

/* Remove published entries as gc_env.remove does: rows first (results[i]
 * as there; -EINVAL for a row with a malformed symbol or key, left for
 * fsck; -EBUSY for one `in_use` says is, if not NULL), then the removed
 * rows' objects at objects/<symbol>/<key>.parquet, several at a time (a
 * failed unlink is logged: fsck finds the orphan); then for each removed
 * row call `removed` (if not NULL) and release its key lock.  A negative
 * errno when nothing was removed because of it. */
int gc_remove_rows(struct manifest *m, struct store *s,
		   const struct manifest_entry *rows, size_t n, int *results,
		   int (*in_use)(void *arg, const struct manifest_entry *e),
		   void (*removed)(void *arg, const struct manifest_entry *e),
		   void *arg);

/* gc_env.remove for a store with no mount: `arg` is the gc_env. */
int gc_remove_direct(void *arg, const struct manifest_entry *rows, size_t n,
		     int *results);

/*
 * Settle the `writing` rows and tmp files of writers that are gone (all
 * but `live_mount_id`'s): an object that reached objects/ is validated and
 * adopted as published (the crash hit between rename and manifest update),
 * and so is the tmp file a row names as closed by its writer (the crash
 * hit after close() returned, before the publish); otherwise the row is
 * dropped.  Stale tmp files are removed.  With `dry_run`, only counts.
 */
int gc_reclaim_dead_writers(struct store *s, struct manifest *m,
			    const char *live_mount_id, int dry_run,
			    struct gc_result *res);

/*
 * Remove the `writing` rows of live mount `mount_id` that no write holds
 * any more: their key lock is free (a claim holds it until its publish
 * or abandon) and `kept` says 0 (a closed write kept for the next mount
 * is 1).  They are the rows of writes discarded while the manifest
 * refused to drop them (locked, or on a full disk).  Counts them in
 * `*dropped`.
 */
int gc_drop_stale_claims(struct manifest *m, const char *mount_id,
			 int (*kept)(void *arg, const char *symbol,
				     const char *key),
			 void *arg, int64_t *dropped);

/*
 * What a process that died left half done besides its writes, for a
 * mount's recovery before it serves the store: the removals whose objects
 * are still there (gc_finish_removal()), counted in `res`, and the empty
 * directories of symbols whose row an rmdir had removed.  Only while no
 * process serves or changes the store: a live one's removals are under
 * way, not cut short.
 */
int gc_finish_interrupted(struct store *s, struct manifest *m,
			  struct gc_result *res);

/* Finish the removal of symbol/key that the manifest notes as under way
 * (manifest_remove_batch(); a crash cut it short): unlink its object
 * unless a row holds the key again, then drop the note.  1 when an
 * object was unlinked, 0 when there was none to unlink, or a negative
 * errno (the note stays). */
int gc_finish_removal(struct store *s, struct manifest *m, const char *symbol,
		      const char *key);

/* Build a published row for the valid object at `relpath` (adoption),
 * compressed or not; its SHA-256 (a read of every byte) only when
 * `with_sha256`, as a check needs none.  -EBADMSG with `why` filled when
 * it does not validate; another negative errno, `why` filled too, when it
 * could not be checked (-EIO of a failed read, no memory): a caller keeps
 * such an object, and reads it again later. */
int gc_describe_object(struct store *s, const char *symbol, const char *key,
		       const char *relpath, int with_sha256,
		       struct manifest_entry *e, char *why, size_t why_len);

/* gc_describe_object() of the tmp file a dead writer's `writing` row
 * names as closed (its sealed_tmp): -EINVAL when the row's writer is not
 * the mount that made that file, or the name is not a tmp file's. */
int gc_describe_sealed(struct store *s, const struct manifest_entry *row,
		       int with_sha256, struct manifest_entry *e, char *why,
		       size_t why_len);

/* Whether a gc_describe_*() failure `rc` rules the file out for good
 * (invalid, not its writer's, gone), rather than that it could not be
 * read now. */
static inline int gc_describe_rules_out(int rc)
{
	return rc == -EBADMSG || rc == -EINVAL || rc == -ENOENT;
}

void gc_render_text(struct strbuf *sb, const struct gc_result *r,
		    const struct gc_options *o);
void gc_render_json(struct strbuf *sb, const struct gc_result *r,
		    const struct gc_options *o);

#endif
