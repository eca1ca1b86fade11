/*
 * test_slo.c - /slo's window and quantiles: the window starts at the
 * newest sample a window old, quantiles interpolate inside their bucket as
 * Prometheus's histogram_quantile() does, and an objective with no events
 * holds.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "slo.h"
#include "unit.h"

static char *render(struct slo_window *w, const struct ffs_counters *c)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len;

	slo_render(w, c, &sb);
	return sb_detach(&sb, &len);
}

int main(void)
{
	static struct ffs_counters c;
	static struct slo_window w;
	char *out;
	int i;

	/* nothing observed: every objective holds, none is measured */
	slo_window_init(&w);
	slo_sample(&w, &c);
	out = render(&w, &c);
	CHECK(strstr(out, "\"name\": \"hit_ratio\", \"target\": 0.95, "
			  "\"compare\": \">=\", \"measured\": null, "
			  "\"events\": 0, \"pass\": true") != NULL);
	CHECK(strstr(out, "], \"pass\": true}") != NULL);
	free(out);

	/* 100 inserts in (250 µs, 500 µs]: p95 is 95 % of the way through
	 * that bucket, 487.5 µs; p99 497.5 µs */
	for (i = 0; i < 100; i++)
		hist_observe(&c.manifest_insert, 300);
	c.hits = 95;
	c.misses = 5;
	out = render(&w, &c);
	CHECK(strstr(out, "\"manifest_insert_p95_seconds\", \"target\": "
			  "0.005, \"compare\": \"<=\", \"measured\": "
			  "0.0004875, \"events\": 100, \"pass\": true") != NULL);
	CHECK(strstr(out, "\"measured\": 0.0004975, \"events\": 100") != NULL);
	CHECK(strstr(out, "\"measured\": 0.95, \"events\": 100, \"pass\": "
			  "true") != NULL);
	free(out);

	/* one read past the last bound: the highest finite bound, failing */
	hist_observe(&c.manifest_read, 60 * 1000000LL);
	out = render(&w, &c);
	CHECK(strstr(out, "\"manifest_read_p95_seconds\", \"target\": 0.002, "
			  "\"compare\": \"<=\", \"measured\": 10, \"events\": "
			  "1, \"pass\": false") != NULL);
	CHECK(strstr(out, "], \"pass\": false}") != NULL);
	free(out);
	slo_window_destroy(&w);

	/* the window starts at the newest sample at least 5 minutes old:
	 * 400 s ago nothing had happened, 200 s ago 90 hits */
	memset(&c, 0, sizeof(c));
	slo_window_init(&w);
	slo_sample(&w, &c);
	w.ring[0].mono_us = mono_us() - 400 * 1000000LL;
	c.hits = 90;
	slo_sample(&w, &c);
	w.ring[1].mono_us = mono_us() - 200 * 1000000LL;
	c.hits = 95;
	c.misses = 5;
	out = render(&w, &c);
	CHECK(strstr(out, "\"measured\": 0.95, \"events\": 100") != NULL);
	CHECK(strstr(out, "{\"window_seconds\": 400.") != NULL);
	free(out);
	/* on a younger mount, the oldest sample it has */
	w.ring[0].mono_us = mono_us() - 250 * 1000000LL;
	out = render(&w, &c);
	CHECK(strstr(out, "\"measured\": 0.95, \"events\": 100") != NULL);
	CHECK(strstr(out, "{\"window_seconds\": 250.") != NULL);
	free(out);
	slo_window_destroy(&w);
	return unit_report();
}
