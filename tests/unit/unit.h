/*
 * unit.h - the few macros the C unit tests share.
 *
 * Each test program is a main() that calls CHECK*() and ends with
 * `return unit_report();`.  Output follows TAP loosely: one "not ok" line
 * per failed check, a summary at the end, exit status 1 on any failure.
 */
#ifndef FEATUREFS_UNIT_H
#define FEATUREFS_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int unit_checks, unit_failures;

#define CHECK(cond)                                                          \
	do {                                                                 \
		unit_checks++;                                               \
		if (!(cond)) {                                               \
			unit_failures++;                                     \
			printf("not ok %s:%d: %s\n", __FILE__, __LINE__,     \
			       #cond);                                       \
		}                                                            \
	} while (0)

#define CHECK_INT(got, want)                                                 \
	do {                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);     \
		unit_checks++;                                               \
		if (g_ != w_) {                                              \
			unit_failures++;                                     \
			printf("not ok %s:%d: %s == %lld, want %lld\n",      \
			       __FILE__, __LINE__, #got, g_, w_);            \
		}                                                            \
	} while (0)

#define CHECK_STR(got, want)                                                 \
	do {                                                                 \
		const char *g_ = (got), *w_ = (want);                        \
		unit_checks++;                                               \
		if (!g_ || strcmp(g_, w_) != 0) {                            \
			unit_failures++;                                     \
			printf("not ok %s:%d: %s == \"%s\", want \"%s\"\n",  \
			       __FILE__, __LINE__, #got, g_ ? g_ : "(null)", \
			       w_);                                          \
		}                                                            \
	} while (0)

static inline int unit_report(void)
{
	printf("%d checks, %d failed\n", unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif
