/*
 * slo.c - the five-minute window behind /slo (slo.h).
 */
#include <string.h>

#include "clock.h"
#include "slo.h"

enum slo_histogram { SLO_INSERT, SLO_READ, SLO_LOCK_WAIT };

/* SPEC §9's latency objectives: a quantile of a histogram, in seconds. */
static const struct objective {
	const char *name;
	enum slo_histogram hist;
	double q;
	double target_s;
} objectives[] = {
	{ "manifest_insert_p95_seconds", SLO_INSERT, 0.95, 0.005 },
	{ "manifest_insert_p99_seconds", SLO_INSERT, 0.99, 0.025 },
	{ "manifest_read_p95_seconds", SLO_READ, 0.95, 0.002 },
	{ "lock_wait_p95_seconds", SLO_LOCK_WAIT, 0.95, 0.010 },
};

#define HIT_RATIO_TARGET 0.95

void slo_window_init(struct slo_window *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
}

void slo_window_destroy(struct slo_window *w)
{
	pthread_mutex_destroy(&w->mu);
}

static void hist_copy(struct histogram *dst, const struct histogram *src)
{
	int i;

	for (i = 0; i <= HIST_BUCKETS; i++)
		dst->bucket[i] = CTR_GET(src->bucket[i]);
	dst->count = CTR_GET(src->count);
	dst->sum_us = CTR_GET(src->sum_us);
}

static void take(struct slo_sample *s, const struct ffs_counters *c)
{
	s->mono_us = mono_us();
	s->hits = CTR_GET(c->hits);
	s->misses = CTR_GET(c->misses);
	hist_copy(&s->insert, &c->manifest_insert);
	hist_copy(&s->read, &c->manifest_read);
	hist_copy(&s->lock_wait, &c->lock_wait);
}

void slo_sample(struct slo_window *w, const struct ffs_counters *c)
{
	struct slo_sample s;

	take(&s, c);
	pthread_mutex_lock(&w->mu);
	w->ring[w->next] = s;
	w->next = (w->next + 1) % SLO_SAMPLES;
	if (w->count < SLO_SAMPLES)
		w->count++;
	pthread_mutex_unlock(&w->mu);
}

/* The newest sample at least a window older than `now`, or else the
 * oldest; 0, or -1 when there is none. */
static int window_start(struct slo_window *w, int64_t now,
			struct slo_sample *out)
{
	unsigned k, i = 0;
	int rc = -1;

	pthread_mutex_lock(&w->mu);
	for (k = 0; k < w->count; k++) {
		i = (w->next + SLO_SAMPLES - 1 - k) % SLO_SAMPLES;
		if (now - w->ring[i].mono_us >= SLO_WINDOW_US)
			break;
	}
	if (w->count) {
		*out = w->ring[i]; /* the oldest when the loop ran out */
		rc = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Quantile `q` in seconds of what histogram went from `then` to `now`,
 * interpolated in its bucket; -1 when nothing was observed. */
static double quantile(const struct histogram *now,
		       const struct histogram *then, double q,
		       uint64_t *events)
{
	uint64_t d[HIST_BUCKETS + 1], total = 0, seen = 0;
	double rank, lower, upper;
	int i;

	for (i = 0; i <= HIST_BUCKETS; i++) {
		d[i] = now->bucket[i] - then->bucket[i];
		total += d[i];
	}
	*events = total;
	if (total == 0)
		return -1;
	rank = q * (double)total;
	for (i = 0; i < HIST_BUCKETS; i++) {
		if (d[i] && (double)(seen + d[i]) >= rank) {
			lower = i ? (double)hist_bounds_us[i - 1] : 0;
			upper = (double)hist_bounds_us[i];
			return (lower + (upper - lower) * (rank - (double)seen) /
						(double)d[i]) /
			       1e6;
		}
		seen += d[i];
	}
	/* in +Inf: the highest finite bound, as Prometheus answers */
	return (double)hist_bounds_us[HIST_BUCKETS - 1] / 1e6;
}

static const struct histogram *pick(const struct slo_sample *s,
				    enum slo_histogram h)
{
	return h == SLO_INSERT ? &s->insert
	       : h == SLO_READ ? &s->read
			       : &s->lock_wait;
}

static void objective_json(struct strbuf *sb, const char *name,
			   const char *compare, double target,
			   double measured, uint64_t events, int pass)
{
	sb_addf(sb, "{\"name\": \"%s\", \"target\": %g, \"compare\": \"%s\", "
		    "\"measured\": ",
		name, target, compare);
	if (events)
		sb_addf(sb, "%.6g", measured);
	else
		sb_adds(sb, "null");
	sb_addf(sb, ", \"events\": %llu, \"pass\": %s}",
		(unsigned long long)events, pass ? "true" : "false");
}

void slo_render(struct slo_window *w, const struct ffs_counters *c,
		struct strbuf *sb)
{
	struct slo_sample now, then;
	uint64_t hits, misses, events;
	double ratio, v;
	int all = 1, pass;
	size_t i;

	take(&now, c);
	if (window_start(w, now.mono_us, &then) < 0)
		then = (struct slo_sample){ .mono_us = now.mono_us };
	hits = now.hits - then.hits;
	misses = now.misses - then.misses;
	ratio = hits + misses ? (double)hits / (double)(hits + misses) : 0;
	pass = hits + misses == 0 || ratio >= HIT_RATIO_TARGET;
	all &= pass;
	sb_addf(sb, "{\"window_seconds\": %.3f, \"objectives\": [",
		(double)(now.mono_us - then.mono_us) / 1e6);
	objective_json(sb, "hit_ratio", ">=", HIT_RATIO_TARGET, ratio,
		       hits + misses, pass);
	for (i = 0; i < sizeof(objectives) / sizeof(objectives[0]); i++) {
		const struct objective *o = &objectives[i];

		v = quantile(pick(&now, o->hist), pick(&then, o->hist), o->q,
			     &events);
		pass = events == 0 || v <= o->target_s;
		all &= pass;
		sb_adds(sb, ", ");
		objective_json(sb, o->name, "<=", o->target_s, v, events, pass);
	}
	sb_addf(sb, "], \"pass\": %s}\n", all ? "true" : "false");
}
