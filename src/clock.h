/*
 * clock.h - wall-clock and monotonic time in the units featurefs uses.
 */
#ifndef FEATUREFS_CLOCK_H
#define FEATUREFS_CLOCK_H

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

#endif
