/*
 * stats.c - histograms and the stats report, as text for people and JSON
 * for scripts.  The same renderers serve /.featurefs/stats{,.json} (with
 * the daemon's live counters) and `featurefs stats STORE` (manifest only).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "stats.h"

const int64_t hist_bounds_us[HIST_BUCKETS] = {
	100,	250,	500,	1000,	 2500,	  5000,	   10000,   25000,
	50000,	100000, 250000, 500000, 1000000, 2500000, 10000000,
};

void hist_observe(struct histogram *h, int64_t us)
{
	int i;

	if (us < 0)
		us = 0;
	for (i = 0; i < HIST_BUCKETS; i++)
		if (us <= hist_bounds_us[i])
			break;
	CTR_ADD(h->bucket[i], 1);
	CTR_ADD(h->count, 1);
	CTR_ADD(h->sum_us, (uint64_t)us);
}

void stats_observe_manifest(void *arg, enum manifest_timed what, int64_t us)
{
	struct ffs_counters *c = arg;

	hist_observe(what == MANIFEST_TIMED_READ ? &c->manifest_read
						 : &c->manifest_insert,
		     us);
}

void symbol_counters_load(struct symbol_counters *dst,
			  const struct symbol_counters *src)
{
	int i;

	dst->hits = CTR_GET(src->hits);
	dst->misses = CTR_GET(src->misses);
	dst->hits_flushed = CTR_GET(src->hits_flushed);
	dst->misses_flushed = CTR_GET(src->misses_flushed);
	dst->waits = CTR_GET(src->waits);
	for (i = 0; i <= HIST_BUCKETS; i++)
		dst->lock_wait.bucket[i] = CTR_GET(src->lock_wait.bucket[i]);
	dst->lock_wait.count = CTR_GET(src->lock_wait.count);
	dst->lock_wait.sum_us = CTR_GET(src->lock_wait.sum_us);
}

int64_t hist_quantile(const struct histogram *h, double q)
{
	uint64_t total = CTR_GET(h->count), seen = 0, rank;
	int i;

	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank == 0)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += CTR_GET(h->bucket[i]);
		if (seen >= rank)
			return hist_bounds_us[i];
	}
	return hist_bounds_us[HIST_BUCKETS - 1] * 10; /* beyond the last */
}

static const char *const failure_names[LOAD_REASONS] = {
	[LOAD_EMPTY] = "empty",		  [LOAD_NOT_PARQUET] = "not_parquet",
	[LOAD_TRUNCATED] = "truncated",	  [LOAD_BAD_FOOTER] = "bad_footer",
	[LOAD_ENCRYPTED] = "encrypted",	  [LOAD_IO] = "io",
	[LOAD_NOSPACE] = "nospace",	  [LOAD_MANIFEST] = "manifest",
	[LOAD_ABANDONED] = "abandoned",
};

const char *load_failure_name(enum load_failure r)
{
	return r < LOAD_REASONS ? failure_names[r] : "io";
}

enum load_failure load_failure_of(const char *reason)
{
	int i;

	for (i = 0; reason && i < LOAD_REASONS; i++)
		if (strcmp(failure_names[i], reason) == 0)
			return (enum load_failure)i;
	return LOAD_IO;
}

struct symbol_vec {
	struct manifest_symbol *v;
	size_t n, alloc;
};

static int collect_symbol(void *arg, const struct manifest_symbol *s)
{
	struct symbol_vec *sv = arg;

	if (sv->n == sv->alloc) {
		size_t n = sv->alloc ? sv->alloc * 2 : 16;
		struct manifest_symbol *p = realloc(sv->v, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		sv->v = p;
		sv->alloc = n;
	}
	sv->v[sv->n++] = *s;
	return 0;
}

int stats_collect(struct manifest *m, struct stats_report *r)
{
	struct symbol_vec sv = { NULL, 0, 0 };
	int rc;

	rc = manifest_totals(m, &r->totals);
	if (rc == 0)
		rc = manifest_symbol_list(m, MANIFEST_SYMBOL_USAGE, collect_symbol,
					  &sv);
	if (rc < 0) {
		free(sv.v);
		return rc;
	}
	r->symbols = sv.v;
	r->nsymbols = sv.n;
	r->backend = manifest_backend_name(m);
	return 0;
}

void stats_release(struct stats_report *r)
{
	free(r->symbols);
	free(r->symbol_live);
	r->symbols = NULL;
	r->symbol_live = NULL;
	r->nsymbols = 0; /* a released report reads as one of no symbols */
}

int64_t stats_figure_add(int64_t a, int64_t b)
{
	int64_t sum;

	if (!__builtin_add_overflow(a, b, &sum))
		return sum;
	return b < 0 ? INT64_MIN : INT64_MAX;
}

double stats_hit_ratio(int64_t hits, int64_t misses)
{
	double h = hits > 0 ? (double)hits : 0.0;
	double m = misses > 0 ? (double)misses : 0.0;

	return h + m > 0.0 ? h / (h + m) : 0.0;
}

void stats_symbol_figures(const struct stats_report *r, size_t i,
			  int64_t *hits, int64_t *misses)
{
	*hits = r->symbols[i].hits;
	*misses = r->symbols[i].misses;
	if (r->symbol_live) {
		const struct symbol_counters *c = &r->symbol_live[i];

		*hits = stats_figure_add(*hits,
					 (int64_t)(c->hits - c->hits_flushed));
		*misses = stats_figure_add(
			*misses, (int64_t)(c->misses - c->misses_flushed));
	}
}

void stats_total_figures(const struct stats_report *r, int64_t *hits,
			 int64_t *misses)
{
	size_t i;

	*hits = *misses = 0;
	for (i = 0; i < r->nsymbols; i++) {
		int64_t h, m;

		stats_symbol_figures(r, i, &h, &m);
		*hits = stats_figure_add(*hits, h);
		*misses = stats_figure_add(*misses, m);
	}
}

static int by_misses(const void *a, const void *b, void *arg)
{
	const struct stats_report *r = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int64_t hi, mi, hj, mj;

	stats_symbol_figures(r, i, &hi, &mi);
	stats_symbol_figures(r, j, &hj, &mj);
	if (mi != mj)
		return mi < mj ? 1 : -1;
	return strcmp(r->symbols[i].symbol, r->symbols[j].symbol);
}

size_t *stats_sorted_symbols(const struct stats_report *r)
{
	size_t *order = malloc((r->nsymbols + 1) * sizeof(*order)), i;

	if (!order)
		return NULL;
	for (i = 0; i < r->nsymbols; i++)
		order[i] = i;
	qsort_r(order, r->nsymbols, sizeof(*order), by_misses, (void *)r);
	return order;
}

static void sb_bytes(struct strbuf *sb, int64_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		sb_addf(sb, "%lld B", (long long)n);
	else
		sb_addf(sb, "%.1f %s", v, unit[u]);
}

void stats_render_text(struct strbuf *sb, const struct stats_report *r)
{
	const struct ffs_counters *c = r->live;
	size_t *order, i;
	int64_t hits, misses;
	int any, k;
	uint64_t gc_runs, gc_removed;

	stats_total_figures(r, &hits, &misses);
	sb_adds(sb, "store          ");
	sb_add_escaped(sb, r->store);
	sb_addf(sb, "\nmanifest       %s\n", r->backend);
	sb_adds(sb, "mounted at     ");
	if (r->mountpoint && *r->mountpoint) {
		sb_add_escaped(sb, r->mountpoint);
		if (r->unanswered)
			sb_addf(sb, " (%s: figures from the manifest)\n",
				r->why_unanswered ? r->why_unanswered
						  : "its daemon is not answering");
		else
			sb_addf(sb, " (up %llds)\n",
				(long long)(r->uptime_us / 1000000));
	} else {
		sb_adds(sb, "(not mounted)\n");
	}
	sb_addf(sb, "entries        %lld published, %lld in flight\n",
		(long long)r->totals.entries,
		(long long)(c ? r->inflight : r->totals.writing));
	sb_adds(sb, "bytes          ");
	sb_bytes(sb, r->totals.file_bytes);
	sb_adds(sb, " logical, ");
	sb_bytes(sb, r->totals.stored_bytes);
	sb_adds(sb, " stored\n");
	sb_addf(sb, "hits           %lld\n", (long long)hits);
	sb_addf(sb, "misses         %lld\n", (long long)misses);
	sb_addf(sb, "hit ratio      %.3f\n", stats_hit_ratio(hits, misses));
	sb_adds(sb, "oldest access  ");
	sb_iso_time(sb, r->totals.oldest_access_ts, "none");
	sb_adds(sb, "\n");
	if (c) {
		sb_addf(sb, "single-flight  %llu waits, %llu timeouts; lock wait"
			    " p50 %.4fs p95 %.4fs p99 %.4fs\n",
			(unsigned long long)CTR_GET(c->waits),
			(unsigned long long)CTR_GET(c->wait_timeouts),
			(double)hist_quantile(&c->lock_wait, 0.50) / 1e6,
			(double)hist_quantile(&c->lock_wait, 0.95) / 1e6,
			(double)hist_quantile(&c->lock_wait, 0.99) / 1e6);
		sb_addf(sb, "writes         %llu created, %llu published, "
			    "%llu unlinked\n",
			(unsigned long long)CTR_GET(c->creates),
			(unsigned long long)CTR_GET(c->publishes),
			(unsigned long long)CTR_GET(c->unlinks));
		sb_addf(sb, "reads          passthrough %s, %llu opens "
			    "passed through, %llu backing files, ",
			r->passthrough,
			(unsigned long long)CTR_GET(c->passthrough_opens),
			(unsigned long long)CTR_GET(c->backing_files));
		sb_bytes(sb, (int64_t)CTR_GET(c->bytes_read));
		sb_adds(sb, " read through the daemon\n");
		sb_addf(sb, "frame cache    %llu frames, ",
			(unsigned long long)r->frames.frames);
		sb_bytes(sb, (int64_t)r->frames.bytes);
		sb_addf(sb, ", %llu hits, %llu misses, %llu read ahead, "
			    "%llu evictions\n",
			(unsigned long long)r->frames.hits,
			(unsigned long long)r->frames.misses,
			(unsigned long long)r->frames.ahead,
			(unsigned long long)r->frames.evictions);
		sb_adds(sb, "load failures  ");
		for (any = 0, k = 0; k < LOAD_REASONS; k++) {
			uint64_t n = CTR_GET(c->load_failures[k]);

			if (n)
				sb_addf(sb, "%s%s %llu", any++ ? ", " : "",
					failure_names[k],
					(unsigned long long)n);
		}
		sb_adds(sb, any ? "\n" : "none\n");
		gc_runs = CTR_GET(c->gc.runs);
		gc_removed = CTR_GET(c->gc.removed_entries);
		sb_addf(sb, "gc             %llu %s, removed %llu %s (",
			(unsigned long long)gc_runs,
			plural((int64_t)gc_runs, "run", "runs"),
			(unsigned long long)gc_removed,
			plural((int64_t)gc_removed, "entry", "entries"));
		sb_bytes(sb, (int64_t)CTR_GET(c->gc.removed_bytes));
		sb_addf(sb, "), %llu busy skipped, %llu tmp files removed; "
			    "last run ",
			(unsigned long long)CTR_GET(c->gc.skipped_busy),
			(unsigned long long)CTR_GET(c->gc.tmp_removed));
		sb_iso_time(sb, CTR_GET(c->gc.last_run_ts), "never");
		sb_addf(sb, " (%.3fs)\n",
			(double)CTR_GET(c->gc.last_duration_us) / 1e6);
	}
	if (!r->nsymbols)
		return;
	order = stats_sorted_symbols(r);
	if (!order)
		return;
	sb_addf(sb, "\n%-20s %10s %12s %10s %10s %7s\n", "symbol", "entries",
		"stored", "hits", "misses", "ratio");
	for (i = 0; i < r->nsymbols; i++) {
		const struct manifest_symbol *s = &r->symbols[order[i]];
		char name[4 * sizeof(s->symbol)]; /* a damaged row's, escaped */
		struct strbuf size = STRBUF_INIT;
		int64_t h, m;

		stats_symbol_figures(r, order[i], &h, &m);
		sb_bytes(&size, s->stored_bytes);
		log_escape(s->symbol, name);
		sb_addf(sb, "%-20s %10lld %12s %10lld %10lld %7.3f\n", name,
			(long long)s->entries, sb_str(&size), (long long)h,
			(long long)m, stats_hit_ratio(h, m));
		sb_release(&size);
	}
	free(order);
}

static void json_hist(struct strbuf *sb, const struct histogram *h)
{
	sb_addf(sb, "{\"count\": %llu, \"p50\": %.6f, \"p95\": %.6f, "
		    "\"p99\": %.6f}",
		(unsigned long long)CTR_GET(h->count),
		(double)hist_quantile(h, 0.50) / 1e6,
		(double)hist_quantile(h, 0.95) / 1e6,
		(double)hist_quantile(h, 0.99) / 1e6);
}

static void json_time(struct strbuf *sb, int64_t us)
{
	if (us <= 0) {
		sb_adds(sb, "null");
		return;
	}
	sb_adds(sb, "\"");
	sb_iso_time(sb, us, "");
	sb_adds(sb, "\"");
}

void stats_render_json(struct strbuf *sb, const struct stats_report *r)
{
	const struct ffs_counters *c = r->live;
	size_t *order, i;
	int64_t hits, misses;
	int k;

	stats_total_figures(r, &hits, &misses);
	sb_adds(sb, "{\"store\": ");
	sb_json_str(sb, r->store);
	sb_adds(sb, ", \"manifest\": ");
	sb_json_str(sb, r->backend);
	sb_addf(sb, ", \"mounted\": %s, \"mountpoint\": ",
		r->mountpoint && *r->mountpoint ? "true" : "false");
	sb_json_str(sb, r->mountpoint ? r->mountpoint : "");
	if (r->unanswered)
		sb_adds(sb, ", \"daemon_answering\": false");
	sb_addf(sb, ", \"uptime_seconds\": %.3f", (double)r->uptime_us / 1e6);
	sb_addf(sb, ", \"entries\": %lld, \"in_flight\": %lld",
		(long long)r->totals.entries,
		(long long)(c ? r->inflight : r->totals.writing));
	sb_addf(sb, ", \"file_bytes\": %lld, \"stored_bytes\": %lld",
		(long long)r->totals.file_bytes,
		(long long)r->totals.stored_bytes);
	sb_addf(sb, ", \"symbols_count\": %lld", (long long)r->totals.symbols);
	sb_addf(sb, ", \"hits\": %lld, \"misses\": %lld, \"hit_ratio\": %.6f",
		(long long)hits, (long long)misses, stats_hit_ratio(hits, misses));
	sb_adds(sb, ", \"oldest_access\": ");
	json_time(sb, r->totals.oldest_access_ts);
	if (c) {
		sb_addf(sb, ", \"creates\": %llu, \"publishes\": %llu, "
			    "\"unlinks\": %llu",
			(unsigned long long)CTR_GET(c->creates),
			(unsigned long long)CTR_GET(c->publishes),
			(unsigned long long)CTR_GET(c->unlinks));
		sb_adds(sb, ", \"reads\": {\"passthrough\": ");
		sb_json_str(sb, r->passthrough);
		sb_addf(sb, ", \"passthrough_opens\": %llu, "
			    "\"backing_files\": %llu, \"daemon_bytes\": %llu}",
			(unsigned long long)CTR_GET(c->passthrough_opens),
			(unsigned long long)CTR_GET(c->backing_files),
			(unsigned long long)CTR_GET(c->bytes_read));
		sb_addf(sb, ", \"frame_cache\": {\"frames\": %llu, "
			    "\"bytes\": %llu, \"hits\": %llu, \"misses\": %llu, "
			    "\"read_ahead\": %llu, \"evictions\": %llu}",
			(unsigned long long)r->frames.frames,
			(unsigned long long)r->frames.bytes,
			(unsigned long long)r->frames.hits,
			(unsigned long long)r->frames.misses,
			(unsigned long long)r->frames.ahead,
			(unsigned long long)r->frames.evictions);
		sb_addf(sb, ", \"singleflight\": {\"waits\": %llu, "
			    "\"timeouts\": %llu, \"lock_wait_seconds\": ",
			(unsigned long long)CTR_GET(c->waits),
			(unsigned long long)CTR_GET(c->wait_timeouts));
		json_hist(sb, &c->lock_wait);
		sb_adds(sb, "}, \"publish_seconds\": ");
		json_hist(sb, &c->publish);
		sb_adds(sb, ", \"load_failures\": {");
		for (k = 0; k < LOAD_REASONS; k++)
			sb_addf(sb, "%s\"%s\": %llu", k ? ", " : "",
				failure_names[k],
				(unsigned long long)CTR_GET(c->load_failures[k]));
		sb_addf(sb, "}, \"gc\": {\"runs\": %llu, \"removed_entries\": "
			    "%llu, \"removed_bytes\": %llu, \"skipped_busy\": "
			    "%llu, \"tmp_removed\": %llu, \"rows_removed\": "
			    "%llu, \"orphans_seen\": %llu, \"last_run\": ",
			(unsigned long long)CTR_GET(c->gc.runs),
			(unsigned long long)CTR_GET(c->gc.removed_entries),
			(unsigned long long)CTR_GET(c->gc.removed_bytes),
			(unsigned long long)CTR_GET(c->gc.skipped_busy),
			(unsigned long long)CTR_GET(c->gc.tmp_removed),
			(unsigned long long)CTR_GET(c->gc.rows_removed),
			(unsigned long long)CTR_GET(c->gc.orphans_seen));
		json_time(sb, CTR_GET(c->gc.last_run_ts));
		sb_addf(sb, ", \"last_duration_seconds\": %.6f}",
			(double)CTR_GET(c->gc.last_duration_us) / 1e6);
	}
	sb_adds(sb, ", \"symbols\": [");
	order = stats_sorted_symbols(r);
	for (i = 0; order && i < r->nsymbols; i++) {
		const struct manifest_symbol *s = &r->symbols[order[i]];
		int64_t h, m;

		stats_symbol_figures(r, order[i], &h, &m);
		sb_adds(sb, i ? ", {\"symbol\": " : "{\"symbol\": ");
		sb_json_str(sb, s->symbol);
		sb_addf(sb, ", \"entries\": %lld, \"stored_bytes\": %lld, "
			    "\"hits\": %lld, \"misses\": %lld, "
			    "\"hit_ratio\": %.6f",
			(long long)s->entries, (long long)s->stored_bytes,
			(long long)h, (long long)m, stats_hit_ratio(h, m));
		if (r->symbol_live) {
			const struct symbol_counters *sc =
				&r->symbol_live[order[i]];

			sb_addf(sb, ", \"waits\": %llu, \"lock_wait_seconds\": ",
				(unsigned long long)sc->waits);
			json_hist(sb, &sc->lock_wait);
		}
		sb_adds(sb, "}");
	}
	free(order);
	sb_adds(sb, "]}\n");
}
