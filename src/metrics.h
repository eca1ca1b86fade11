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

#include <pthread.h>

#include "htab.h"
#include "stats.h"
#include "strbuf.h"

/* Symbols with labels of their own; the rest add up in symbol="_other". */
#define METRICS_SYMBOLS_MAX 1000

/*
 * Which symbols have labels of their own, kept from scrape to scrape for
 * as long as a symbol exists: one moving in or out of "_other" would
 * make that counter jump or fall between two scrapes.  The first scrape
 * labels the METRICS_SYMBOLS_MAX with the most misses; a symbol seen
 * later (a removed one made again too) gets a label while fewer than
 * that many labelled ones exist.
 */
struct metrics_labels {
	pthread_mutex_t mu;
	struct htab *own;	/* names with a label of their own */
	struct htab *other;	/* names counted under "_other" */
};

int metrics_labels_init(struct metrics_labels *l);
void metrics_labels_destroy(struct metrics_labels *l);

/* How each part of the mount is, as /.featurefs/health reports it. */
struct metrics_health {
	int manifest;		/* 1: answers */
	int storage;		/* 1: tmp/ writable with space left */
	int gc;			/* 1: the GC thread runs (gc_interval > 0,
				 * not ro) and the last pass did not fail;
				 * 0: it failed; -1: no GC thread */
};

/* Append the exposition of report `r` (a mounted store's: r->live set),
 * its symbols labelled as `labels` has them. */
void metrics_render(struct strbuf *sb, const struct stats_report *r,
		    const struct metrics_health *health,
		    struct metrics_labels *labels);

#endif
