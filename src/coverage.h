/*
 * coverage.h - the byte ranges of a file that writes reached: a sorted
 * list of disjoint spans, merged as they touch.  A writer keeps one so
 * that a range no write reached (a download in parts cut short) is told
 * from one written with zeros, which some filesystems store as a hole
 * (ZFS with compression), whatever SEEK_HOLE says.  Not thread-safe.
 */
#ifndef FEATUREFS_COVERAGE_H
#define FEATUREFS_COVERAGE_H

#include <stddef.h>
#include <stdint.h>

/* Spans kept at most (16 bytes each): past them (a writer scattering
 * tiny writes), or out of memory, the coverage is lost and says so. */
#define COVERAGE_MAX_SPANS 65536

struct coverage {
	uint64_t (*span)[2];		/* [start, end), sorted, disjoint,
					 * not touching */
	size_t n, cap;
	int lost;			/* unknown from here on */
	int out_of_order;		/* a write began before the end of the
					 * one before it */
	uint64_t last_end;		/* the end of the last write */
};

#define COVERAGE_INIT { NULL, 0, 0, 0, 0, 0 }

/* Bytes [off, off + len) were written. */
void coverage_add(struct coverage *c, uint64_t off, uint64_t len);
/* The file was cut to `size` bytes: what lies past is gone. */
void coverage_truncate(struct coverage *c, uint64_t size);
/* Whether [0, size) is all written: 1 if so, 0 if not (coverage_gaps()
 * says where), -ENODATA when the coverage is lost. */
int coverage_whole(const struct coverage *c, uint64_t size);
/* The ranges of [0, size) no write reached, in order: a malloc()ed
 * array of *n [start, end) pairs (NULL when none).  0, -ENOMEM, or
 * -EINVAL when the coverage is lost. */
int coverage_gaps(const struct coverage *c, uint64_t size,
		  uint64_t (**gaps)[2], size_t *n);
/* Free the spans; `c` is empty and known again. */
void coverage_free(struct coverage *c);

#endif
