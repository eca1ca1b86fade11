/*
 * clock.h - wall-clock and monotonic time in the units featurefs uses.
 */
#ifndef FEATUREFS_CLOCK_H
#define FEATUREFS_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Microseconds since the Unix epoch (manifest timestamps). */
static inline int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Microseconds on the monotonic clock (durations, deadlines). */
static inline int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Nanoseconds since the Unix epoch, as entries' mtime_ns keeps them: an
 * int64 spans 1677 to 2262, and a time outside is clamped to that span,
 * as the kernel clamps a time to what a filesystem can store.
 */
#define TIME_NS_MAX_SEC (INT64_MAX / 1000000000 - 1)

static inline int64_t timespec_to_ns(const struct timespec *ts)
{
	int64_t sec = ts->tv_sec;

	if (sec > TIME_NS_MAX_SEC)
		sec = TIME_NS_MAX_SEC;
	else if (sec < -TIME_NS_MAX_SEC)
		sec = -TIME_NS_MAX_SEC;
	return sec * 1000000000 + ts->tv_nsec;
}

/* Microseconds (created_ts and the like) as nanoseconds, clamped the
 * same way: a row's time may come from an edited manifest. */
static inline int64_t us_to_ns(int64_t us)
{
	const int64_t max_us = TIME_NS_MAX_SEC * 1000000;

	return (us > max_us ? max_us : us < -max_us ? -max_us : us) * 1000;
}

/* The inverse, with tv_nsec in [0, 1e9) before 1970 too. */
static inline struct timespec ns_to_timespec(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

/* A condition variable whose timed waits take a deadline on mono_us()'s
 * clock (mono_deadline()): a step of the wall clock neither stretches
 * nor cuts them short. */
static inline void cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

/* mono_us() deadline `us`, for a cond_init_monotonic() wait. */
static inline struct timespec mono_deadline(int64_t us)
{
	return ns_to_timespec(us * 1000);
}

#endif
