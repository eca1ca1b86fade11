/*
 * stats.h - counters and latency histograms of a mount, and the report
 * that /.featurefs/stats, stats.json, metrics and `featurefs stats` print.
 *
 * Counters are plain integers updated with atomic builtins: no lock on the
 * read path.  Histograms use fixed buckets (seconds) that resolve the SLO
 * thresholds of SPEC §9.
 */
#ifndef FEATUREFS_STATS_H
#define FEATUREFS_STATS_H

#include <stdint.h>

#include "frame_cache.h"
#include "manifest.h"
#include "strbuf.h"

#define CTR_ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define CTR_SUB(field, n) __atomic_sub_fetch(&(field), (n), __ATOMIC_RELAXED)
#define CTR_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define CTR_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

#define HIST_BUCKETS 15

/* Upper bounds of the buckets, in microseconds; the last bucket is +Inf. */
extern const int64_t hist_bounds_us[HIST_BUCKETS];

struct histogram {
	uint64_t bucket[HIST_BUCKETS + 1];
	uint64_t count;
	uint64_t sum_us;
};

void hist_observe(struct histogram *h, int64_t us);
/* Estimated quantile q (0..1) in microseconds: the upper bound of the
 * bucket holding it; 0 when empty. */
int64_t hist_quantile(const struct histogram *h, double q);

/* Why an entry was not published. */
enum load_failure {
	LOAD_EMPTY,
	LOAD_NOT_PARQUET,
	LOAD_TRUNCATED,
	LOAD_BAD_FOOTER,
	LOAD_ENCRYPTED,
	LOAD_IO,
	LOAD_NOSPACE,
	LOAD_MANIFEST,
	LOAD_ABANDONED,
	LOAD_REASONS
};

const char *load_failure_name(enum load_failure r);
/* Map a parquet_error reason label to the enum. */
enum load_failure load_failure_of(const char *reason);

/* Per-symbol figures that live only in the daemon. */
struct symbol_counters {
	uint64_t hits;
	uint64_t misses;
	uint64_t hits_flushed;		/* already added to the manifest */
	uint64_t misses_flushed;
	uint64_t waits;			/* single-flight waits */
	struct histogram lock_wait;
};

/* Copy counters that other threads update, one atomic load each. */
void symbol_counters_load(struct symbol_counters *dst,
			  const struct symbol_counters *src);

struct gc_counters {
	uint64_t runs;
	uint64_t failures;		/* passes that failed */
	uint64_t last_failed;		/* 1: the last pass failed */
	uint64_t removed_entries;
	uint64_t removed_bytes;
	uint64_t skipped_busy;
	uint64_t tmp_removed;
	uint64_t rows_removed;		/* dead writers' rows */
	uint64_t orphans_seen;
	int64_t last_run_ts;
	int64_t last_duration_us;
};

/* Whole-mount figures. */
struct ffs_counters {
	uint64_t hits;
	uint64_t misses;
	uint64_t creates;
	uint64_t publishes;
	uint64_t unlinks;
	uint64_t waits;			/* single-flight waits */
	uint64_t wait_timeouts;
	uint64_t bytes_written;
	uint64_t bytes_read;		/* reads that reached the daemon */
	uint64_t passthrough_opens;	/* opens the kernel serves itself */
	uint64_t backing_files;		/* of passthrough, registered now */
	uint64_t load_failures[LOAD_REASONS];
	uint64_t access_flushes;
	uint64_t access_flush_errors;
	uint64_t access_dropped;	/* records dropped: the log was full */
	struct histogram lock_wait;
	struct histogram publish;	/* release() to published */
	struct histogram manifest_read;	/* manifest_get() */
	struct histogram manifest_insert; /* manifest_claim(), _publish() */
	struct gc_counters gc;
};

/* A manifest observer (manifest_time) that feeds the manifest
 * histograms of `arg`, a struct ffs_counters. */
void stats_observe_manifest(void *arg, enum manifest_timed what, int64_t us);

/* What a report shows; `live` is NULL for a store that is not mounted. */
struct stats_report {
	const char *store;
	const char *backend;
	const char *mountpoint;		/* "" when not mounted */
	int unanswered;			/* mounted, but its daemon did not
					 * answer: no live figures */
	const char *why_unanswered;	/* ... why, if not that it is not
					 * answering */
	int totals_unread;		/* the manifest failed: no totals or
					 * symbols, only live figures */
	struct manifest_totals totals;
	struct manifest_symbol *symbols;
	size_t nsymbols;
	const struct ffs_counters *live;
	const char *passthrough;	/* with `live`: passthrough_state */
	struct frame_cache_figures frames; /* with `live` */
	/* copies of the live per-symbol counters, parallel to `symbols`
	 * (malloc()ed); NULL for a store that is not mounted */
	struct symbol_counters *symbol_live;
	int64_t inflight;
	int64_t uptime_us;
};

/* Fill totals and symbols from the manifest; the caller frees symbols. */
int stats_collect(struct manifest *m, struct stats_report *r);
void stats_release(struct stats_report *r);

/* a + b for figures a manifest holds, which a damaged one can make huge
 * or negative: saturated rather than overflowed. */
int64_t stats_figure_add(int64_t a, int64_t b);
/* Hits over hits and misses, in [0, 1]; 0 before any (or for figures
 * below 0, which only a damaged manifest holds). */
double stats_hit_ratio(int64_t hits, int64_t misses);

/* Hits and misses of symbol i, and of all: what the manifest holds plus
 * the live counts not flushed to it yet. */
void stats_symbol_figures(const struct stats_report *r, size_t i,
			  int64_t *hits, int64_t *misses);
void stats_total_figures(const struct stats_report *r, int64_t *hits,
			 int64_t *misses);
/* Symbol indexes sorted by misses, most first (malloc()ed; NULL when out
 * of memory). */
size_t *stats_sorted_symbols(const struct stats_report *r);

void stats_render_text(struct strbuf *sb, const struct stats_report *r);
void stats_render_json(struct strbuf *sb, const struct stats_report *r);

#endif
