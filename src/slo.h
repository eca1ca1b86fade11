/*
 * slo.h - the service-level objectives of SPEC §9, measured over the last
 * five minutes, for the HTTP endpoint's /slo.
 *
 * The ticker (daemon.c) copies the mount's counters into a ring every
 * SLO_SAMPLE_US; a report compares now with the sample about a window
 * ago (or the first one, on a younger mount).  The figures are the
 * difference: hit ratio, and p95/p99 of the latency histograms estimated
 * as Prometheus's histogram_quantile() does, by linear interpolation in
 * the bucket that holds the rank.
 */
#ifndef FEATUREFS_SLO_H
#define FEATUREFS_SLO_H

#include <pthread.h>
#include <stdint.h>

#include "stats.h"
#include "strbuf.h"

#define SLO_WINDOW_US (300 * 1000000LL)
#define SLO_SAMPLE_US (10 * 1000000LL)
#define SLO_SAMPLES (SLO_WINDOW_US / SLO_SAMPLE_US + 2)

struct slo_sample {
	int64_t mono_us;
	uint64_t hits, misses;
	struct histogram insert, read, lock_wait;
};

struct slo_window {
	pthread_mutex_t mu;
	struct slo_sample ring[SLO_SAMPLES];
	unsigned next;		/* slot the next sample goes to */
	unsigned count;		/* samples taken, up to SLO_SAMPLES */
};

void slo_window_init(struct slo_window *w);
void slo_window_destroy(struct slo_window *w);

/* Record the counters `c` now (the ticker, every SLO_SAMPLE_US). */
void slo_sample(struct slo_window *w, const struct ffs_counters *c);

/* Append /slo's JSON: each objective's target, what the window measured
 * and whether it holds (an objective with no events holds). */
void slo_render(struct slo_window *w, const struct ffs_counters *c,
		struct strbuf *sb);

#endif
