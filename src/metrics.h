/*
 * metrics.h - the Prometheus text exposition (format 0.0.4) of a mount's
 * figures, served as /.featurefs/metrics (SPEC §9).
 *
 * It renders the same report as /.featurefs/stats.json (stats.h): the
 * manifest's totals and per-symbol counts plus the daemon's live
 * counters and histograms, names prefixed `featurefs_`, times in seconds.
 */
#ifndef FEATUREFS_METRICS_H
#define FEATUREFS_METRICS_H

#include "stats.h"
#include "strbuf.h"

/* Symbols with labels of their own; the rest add up in symbol="_other". */
#define METRICS_SYMBOLS_MAX 1000

/* How each part of the mount is, as /.featurefs/health reports it. */
struct metrics_health {
	int manifest;		/* 1: answers */
	int storage;		/* 1: tmp/ writable with space left */
	int gc;			/* 1: the GC thread runs (gc_interval > 0,
				 * not ro) */
};

/* Append the exposition of report `r` (a mounted store's: r->live set). */
void metrics_render(struct strbuf *sb, const struct stats_report *r,
		    const struct metrics_health *health);

#endif
