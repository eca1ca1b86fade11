/*
 * metrics.c - Prometheus text for /.featurefs/metrics.
 *
 * Each family is written whole: its HELP and TYPE lines, then every
 * sample of it.  Counters end in _total and durations are seconds.
 * Histograms are stats.c's fixed buckets, made cumulative as the format
 * wants, with _count equal to the +Inf bucket.  Symbols beyond
 * METRICS_SYMBOLS_MAX add up in symbol="_other", so a store of many
 * symbols stays a bounded scrape; which ones is struct metrics_labels'.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define OTHER_SYMBOLS "_other"

static void family(struct strbuf *sb, const char *name, const char *type,
		   const char *help)
{
	sb_addf(sb, "# HELP featurefs_%s %s\n# TYPE featurefs_%s %s\n", name,
		help, name, type);
}

/* `{label="value"` escaped as the format asks, or nothing for no label;
 * the caller closes the brace (after an `le` of its own, maybe). */
static void labels_open(struct strbuf *sb, const char *label,
			const char *value)
{
	if (!label)
		return;
	sb_addf(sb, "{%s=\"", label);
	for (; *value; value++) {
		size_t n = utf8_char_len(value);

		if (*value == '\\' || *value == '"')
			sb_addf(sb, "\\%c", *value);
		else if (*value == '\n')
			sb_adds(sb, "\\n");
		else if (n == 0) /* a damaged row's: the scrape stays valid */
			sb_adds(sb, UTF8_REPLACEMENT);
		else
			sb_add(sb, value, n);
		value += n ? n - 1 : 0;
	}
	sb_adds(sb, "\"");
}

static void sample_int(struct strbuf *sb, const char *name, const char *label,
		       const char *value, uint64_t v)
{
	sb_addf(sb, "featurefs_%s", name);
	labels_open(sb, label, value);
	sb_addf(sb, "%s %" PRIu64 "\n", label ? "}" : "", v);
}

static void sample_real(struct strbuf *sb, const char *name,
			const char *label, const char *value, double v)
{
	char text[32];

	/* the shortest of 15 or 17 digits that reads back as `v`: a
	 * timestamp in seconds keeps its microseconds, 0.1 stays 0.1 */
	snprintf(text, sizeof(text), "%.15g", v);
	if (strtod(text, NULL) != v)
		snprintf(text, sizeof(text), "%.17g", v);
	sb_addf(sb, "featurefs_%s", name);
	labels_open(sb, label, value);
	sb_addf(sb, "%s %s\n", label ? "}" : "", text);
}

/* A whole-mount counter or gauge: its family and its one sample. */
static void single_int(struct strbuf *sb, const char *name, const char *type,
		       const char *help, uint64_t v)
{
	family(sb, name, type, help);
	sample_int(sb, name, NULL, NULL, v);
}

static void single_real(struct strbuf *sb, const char *name,
			const char *help, double v)
{
	family(sb, name, "gauge", help);
	sample_real(sb, name, NULL, NULL, v);
}

/* The samples of histogram `h` (its family written by the caller). */
static void histogram(struct strbuf *sb, const char *name, const char *label,
		      const char *value, const struct histogram *h)
{
	uint64_t cumulative = 0;
	int i;

	for (i = 0; i <= HIST_BUCKETS; i++) {
		cumulative += CTR_GET(h->bucket[i]);
		sb_addf(sb, "featurefs_%s_bucket", name);
		if (label) {
			labels_open(sb, label, value);
			sb_adds(sb, ",");
		} else {
			sb_adds(sb, "{");
		}
		if (i < HIST_BUCKETS)
			sb_addf(sb, "le=\"%g\"} %" PRIu64 "\n",
				(double)hist_bounds_us[i] / 1e6, cumulative);
		else
			sb_addf(sb, "le=\"+Inf\"} %" PRIu64 "\n", cumulative);
	}
	sb_addf(sb, "featurefs_%s_sum", name);
	labels_open(sb, label, value);
	sb_addf(sb, "%s %.6f\n", label ? "}" : "",
		(double)CTR_GET(h->sum_us) / 1e6);
	sb_addf(sb, "featurefs_%s_count", name);
	labels_open(sb, label, value);
	sb_addf(sb, "%s %" PRIu64 "\n", label ? "}" : "", cumulative);
}

static void hist_add(struct histogram *dst, const struct histogram *src)
{
	int i;

	for (i = 0; i <= HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum_us += src->sum_us;
}

/* The symbols that get labels of their own, and the sum of the rest. */
struct symbol_rows {
	size_t *order;		/* indexes, most misses first */
	size_t shown;		/* order[0..shown) are labelled */
	int has_other;		/* some symbols add up in "_other" */
	int64_t other_hits, other_misses;
	struct histogram other_wait;
};

int metrics_labels_init(struct metrics_labels *l)
{
	int rc;

	pthread_mutex_init(&l->mu, NULL);
	rc = htab_new(&l->own);
	if (rc == 0)
		rc = htab_new(&l->other);
	return rc;
}

void metrics_labels_destroy(struct metrics_labels *l)
{
	htab_free_values(l->own);
	htab_free_values(l->other);
	pthread_mutex_destroy(&l->mu);
}

/* Order and group `r`'s symbols for labelling, as `l` has placed them
 * and placing those it has not: 0, or -ENOMEM.  `l` is made anew from
 * the report's symbols, so that a removed one is forgotten: made again,
 * it is placed as any new one, and the cap holds. */
static int symbol_rows_make(const struct stats_report *r,
			    struct metrics_labels *l, struct symbol_rows *rows)
{
	struct htab *own = NULL, *other = NULL;
	size_t i, n = 0, owned = 0;
	int rc;

	memset(rows, 0, sizeof(*rows));
	rows->order = stats_sorted_symbols(r);
	rc = rows->order ? htab_new(&own) : -ENOMEM;
	if (rc == 0)
		rc = htab_new(&other);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&l->mu);
	/* those placed before count first: new ones fill what is left */
	for (i = 0; i < r->nsymbols; i++)
		if (htab_get(l->own, r->symbols[i].symbol))
			owned++;
	for (i = 0; i < r->nsymbols && rc == 0; i++) {
		size_t k = rows->order[i];
		const char *name = r->symbols[k].symbol;
		int64_t h, m;
		int labelled;

		if (htab_get(l->own, name))
			labelled = 1;
		else if (htab_get(l->other, name))
			labelled = 0;
		else {
			/* a symbol called "_other" would be taken for the
			 * rest */
			labelled = owned < METRICS_SYMBOLS_MAX &&
				   strcmp(name, OTHER_SYMBOLS) != 0;
			owned += (size_t)labelled;
		}
		rc = htab_add_string(labelled ? own : other, name);
		if (labelled) {
			rows->order[n++] = k;
			continue;
		}
		stats_symbol_figures(r, k, &h, &m);
		rows->has_other = 1;
		rows->other_hits = stats_figure_add(rows->other_hits, h);
		rows->other_misses = stats_figure_add(rows->other_misses, m);
		if (r->symbol_live)
			hist_add(&rows->other_wait,
				 &r->symbol_live[k].lock_wait);
	}
	if (rc == 0) {
		htab_free_values(l->own);
		htab_free_values(l->other);
		l->own = own;
		l->other = other;
		own = other = NULL;
	}
	pthread_mutex_unlock(&l->mu);
	rows->shown = n;
out:
	htab_free_values(own);
	htab_free_values(other);
	if (rc < 0) {
		free(rows->order);
		rows->order = NULL;
	}
	return rc;
}

static void symbol_counts(struct strbuf *sb, const struct stats_report *r,
			  const struct symbol_rows *rows, int hits)
{
	const char *name = hits ? "hits_total" : "misses_total";
	size_t i;

	family(sb, name, "counter",
	       hits ? "Opens of published entries, by symbol."
		    : "Lookups of well-formed names that found no entry, "
		      "by symbol.");
	for (i = 0; i < rows->shown; i++) {
		int64_t h, m;

		stats_symbol_figures(r, rows->order[i], &h, &m);
		sample_int(sb, name, "symbol",
			   r->symbols[rows->order[i]].symbol,
			   (uint64_t)(hits ? h : m));
	}
	if (rows->has_other)
		sample_int(sb, name, "symbol", OTHER_SYMBOLS,
			   (uint64_t)(hits ? rows->other_hits
					   : rows->other_misses));
}

static void symbol_waits(struct strbuf *sb, const struct stats_report *r,
			 const struct symbol_rows *rows)
{
	static const struct histogram none;
	const char *name = "lock_wait_duration_seconds";
	size_t i;

	family(sb, name, "histogram",
	       "How long opens waited for an entry in flight, by symbol.");
	for (i = 0; i < rows->shown; i++)
		histogram(sb, name, "symbol", r->symbols[rows->order[i]].symbol,
			  r->symbol_live ? &r->symbol_live[rows->order[i]]
						    .lock_wait
					 : &none);
	if (rows->has_other)
		histogram(sb, name, "symbol", OTHER_SYMBOLS,
			  &rows->other_wait);
}

/* The mount's counters and gauges of one sample each, in the order they
 * are written: a uint64_t of struct ffs_counters at `offset`. */
static const struct scalar {
	const char *name;
	const char *type;
	const char *help;
	size_t offset;
} scalars[] = {
#define FIELD(f) offsetof(struct ffs_counters, f)
	{ "creates_total", "counter",
	  "Creates of keys (claims); scratch files are not counted.",
	  FIELD(creates) },
	{ "publishes_total", "counter", "Entries published.",
	  FIELD(publishes) },
	{ "unlinks_total", "counter", "Entries unlinked.", FIELD(unlinks) },
	{ "written_bytes_total", "counter",
	  "Bytes written into entries and scratch files.",
	  FIELD(bytes_written) },
	{ "daemon_read_bytes_total", "counter",
	  "Bytes of reads the daemon served (passthrough reads are the "
	  "kernel's and not counted).",
	  FIELD(bytes_read) },
	{ "passthrough_opens_total", "counter",
	  "Opens whose reads the kernel serves from the object.",
	  FIELD(passthrough_opens) },
	{ "backing_files", "gauge",
	  "Backing files registered with the kernel now.",
	  FIELD(backing_files) },
	{ "singleflight_waits_total", "counter",
	  "Opens that waited for an entry in flight.", FIELD(waits) },
	{ "singleflight_timeouts_total", "counter",
	  "Waits that ended at lock_timeout (ETIMEDOUT).",
	  FIELD(wait_timeouts) },
	{ "access_flushes_total", "counter",
	  "Batches of access records written to the manifest.",
	  FIELD(access_flushes) },
	{ "access_flush_errors_total", "counter",
	  "Batches of access records the manifest refused.",
	  FIELD(access_flush_errors) },
	{ "access_records_dropped_total", "counter",
	  "Access records dropped: a million waited for the manifest.",
	  FIELD(access_dropped) },
	{ "gc_runs_total", "counter", "Garbage-collection passes.",
	  FIELD(gc.runs) },
	{ "gc_failures_total", "counter",
	  "Garbage-collection passes that failed.", FIELD(gc.failures) },
	{ "gc_removed_entries_total", "counter",
	  "Entries the garbage collector removed.",
	  FIELD(gc.removed_entries) },
	{ "gc_removed_bytes_total", "counter",
	  "Stored bytes the garbage collector freed.",
	  FIELD(gc.removed_bytes) },
	{ "gc_skipped_busy_total", "counter",
	  "Idle entries kept because they were open or locked.",
	  FIELD(gc.skipped_busy) },
	{ "gc_scratch_removed_total", "counter",
	  "Idle scratch files the garbage collector removed.",
	  FIELD(gc.tmp_removed) },
	{ "gc_dead_writer_rows_removed_total", "counter",
	  "Claims of writers that died, removed.", FIELD(gc.rows_removed) },
#undef FIELD
};

static void live_figures(struct strbuf *sb, const struct stats_report *r)
{
	const struct ffs_counters *c = r->live;
	size_t i;
	int k;

	for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		const uint64_t *v = (const uint64_t *)((const char *)c +
						       scalars[i].offset);

		single_int(sb, scalars[i].name, scalars[i].type,
			   scalars[i].help, CTR_GET(*v));
	}
	single_int(sb, "frame_cache_bytes", "gauge",
		   "Decompressed frames of compressed entries held in memory.",
		   r->frames.bytes);
	single_int(sb, "frame_cache_hits_total", "counter",
		   "Reads of compressed entries served from a cached frame.",
		   r->frames.hits);
	single_int(sb, "frame_cache_misses_total", "counter",
		   "Frames decompressed for a read.", r->frames.misses);
	single_int(sb, "frame_cache_read_ahead_total", "counter",
		   "Frames decompressed ahead of a sequential reader.",
		   r->frames.ahead);
	single_int(sb, "frame_cache_evictions_total", "counter",
		   "Frames dropped to keep the cache under frame_cache, "
		   "or read whole and their buffer wanted for another.",
		   r->frames.evictions);
	single_real(sb, "gc_last_run_timestamp_seconds",
		    "When the last pass ended (Unix time; 0: never).",
		    (double)CTR_GET(c->gc.last_run_ts) / 1e6);
	single_real(sb, "gc_last_duration_seconds",
		    "How long the last pass took.",
		    (double)CTR_GET(c->gc.last_duration_us) / 1e6);
	family(sb, "publish_duration_seconds", "histogram",
	       "From a writer's last close to its entry published.");
	histogram(sb, "publish_duration_seconds", NULL, NULL, &c->publish);
	family(sb, "manifest_insert_duration_seconds", "histogram",
	       "Manifest claims and publishes of entries.");
	histogram(sb, "manifest_insert_duration_seconds", "backend",
		  r->backend, &c->manifest_insert);
	family(sb, "manifest_read_duration_seconds", "histogram",
	       "Manifest reads of one entry.");
	histogram(sb, "manifest_read_duration_seconds", "backend", r->backend,
		  &c->manifest_read);
	family(sb, "load_failures_total", "counter",
	       "Files not published, by reason.");
	for (k = 0; k < LOAD_REASONS; k++)
		sample_int(sb, "load_failures_total", "reason",
			   load_failure_name((enum load_failure)k),
			   CTR_GET(c->load_failures[k]));
}

/* The store's figures, from the manifest: totals and per-symbol. */
static void store_figures(struct strbuf *sb, const struct stats_report *r,
			  struct metrics_labels *labels)
{
	struct symbol_rows rows;
	int64_t hits, misses;
	int rc;

	single_int(sb, "entries", "gauge", "Published entries.",
		   (uint64_t)r->totals.entries);
	single_int(sb, "symbols", "gauge", "Symbol directories.",
		   (uint64_t)r->totals.symbols);
	single_int(sb, "file_bytes", "gauge",
		   "Bytes of the published entries, as read.",
		   (uint64_t)r->totals.file_bytes);
	single_int(sb, "stored_bytes", "gauge",
		   "Bytes the published entries take in the store.",
		   (uint64_t)r->totals.stored_bytes);
	stats_total_figures(r, &hits, &misses);
	single_real(sb, "hit_ratio",
		    "Hits over hits and misses since the store was made "
		    "(0 before any).",
		    stats_hit_ratio(hits, misses));
	rc = symbol_rows_make(r, labels, &rows);
	if (rc == 0) {
		symbol_counts(sb, r, &rows, 1);
		symbol_counts(sb, r, &rows, 0);
		symbol_waits(sb, r, &rows);
		free(rows.order);
	} else if (!sb->err) {
		sb->err = rc; /* the reader gets ENOMEM, not half a scrape */
	}
}

void metrics_render(struct strbuf *sb, const struct stats_report *r,
		    const struct metrics_health *health,
		    struct metrics_labels *labels)
{
	family(sb, "build_info", "gauge", "The featurefs version serving.");
	sample_int(sb, "build_info", "version", FEATUREFS_VERSION, 1);
	single_real(sb, "uptime_seconds", "Time since the mount.",
		    (double)r->uptime_us / 1e6);
	family(sb, "health_status", "gauge",
	       "1 when a component is healthy, 0 when not.");
	sample_int(sb, "health_status", "component", "manifest",
		   (uint64_t)health->manifest);
	sample_int(sb, "health_status", "component", "storage",
		   (uint64_t)health->storage);
	if (health->gc >= 0)
		sample_int(sb, "health_status", "component", "gc",
			   (uint64_t)health->gc);
	single_int(sb, "entries_in_flight", "gauge",
		   "Entries being written now.", (uint64_t)r->inflight);
	/* made-up zeros would read as a store emptied */
	if (!r->totals_unread)
		store_figures(sb, r, labels);
	if (r->live)
		live_figures(sb, r);
}
