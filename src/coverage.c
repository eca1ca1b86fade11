/*
 * coverage.c - the byte ranges of a file that writes reached (see
 * coverage.h).  Writers append in order nearly always: the new span then
 * extends the last one, in constant time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coverage.h"

/* The index of the first span that ends at or after `off`: the first
 * one a write at `off` may touch. */
static size_t first_touching(const struct coverage *c, uint64_t off)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->span[mid][1] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void lose(struct coverage *c)
{
	free(c->span);
	c->span = NULL;
	c->n = c->cap = 0;
	c->lost = 1;
}

void coverage_add(struct coverage *c, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	size_t i, j;

	if (len == 0)
		return;
	if (off < c->last_end)
		c->out_of_order = 1;
	c->last_end = end;
	if (c->lost)
		return;
	if (c->n && c->span[c->n - 1][0] <= off &&
	    off <= c->span[c->n - 1][1]) {
		/* the common case: an append to, or a rewrite in, the end */
		if (end > c->span[c->n - 1][1])
			c->span[c->n - 1][1] = end;
		return;
	}
	i = first_touching(c, off);
	/* spans i..j-1 touch [off, end): they merge into one */
	for (j = i; j < c->n && c->span[j][0] <= end; j++)
		;
	if (j > i) {
		if (c->span[i][0] < off)
			off = c->span[i][0];
		if (c->span[j - 1][1] > end)
			end = c->span[j - 1][1];
		c->span[i][0] = off;
		c->span[i][1] = end;
		memmove(&c->span[i + 1], &c->span[j],
			(c->n - j) * sizeof(*c->span));
		c->n -= j - i - 1;
		return;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 4;
		void *p;

		if (cap > COVERAGE_MAX_SPANS ||
		    !(p = realloc(c->span, cap * sizeof(*c->span)))) {
			lose(c);
			return;
		}
		c->span = p;
		c->cap = cap;
	}
	memmove(&c->span[i + 1], &c->span[i], (c->n - i) * sizeof(*c->span));
	c->span[i][0] = off;
	c->span[i][1] = end;
	c->n++;
}

void coverage_truncate(struct coverage *c, uint64_t size)
{
	if (size == 0) {
		/* emptied (O_TRUNC): known again, whatever was lost */
		free(c->span);
		c->span = NULL;
		c->n = c->cap = 0;
		c->lost = c->out_of_order = 0;
		c->last_end = 0;
		return;
	}
	if (size < c->last_end)
		c->last_end = size;
	while (c->n && c->span[c->n - 1][0] >= size)
		c->n--;
	if (c->n && c->span[c->n - 1][1] > size)
		c->span[c->n - 1][1] = size;
}

int coverage_whole(const struct coverage *c, uint64_t size)
{
	if (c->lost)
		return -ENODATA;
	return size == 0 ||
	       (c->n && c->span[0][0] == 0 && c->span[0][1] >= size);
}

int coverage_gaps(const struct coverage *c, uint64_t size,
		  uint64_t (**gaps)[2], size_t *n)
{
	uint64_t at = 0, (*g)[2];
	size_t i, k = 0;

	*gaps = NULL;
	*n = 0;
	if (c->lost)
		return -EINVAL;
	g = malloc((c->n + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	for (i = 0; i <= c->n && at < size; i++) {
		uint64_t next = i < c->n && c->span[i][0] < size ? c->span[i][0]
								 : size;

		if (next > at) {
			g[k][0] = at;
			g[k++][1] = next;
		}
		if (i < c->n)
			at = c->span[i][1];
	}
	if (k == 0) {
		free(g);
		return 0;
	}
	*gaps = g;
	*n = k;
	return 0;
}

void coverage_free(struct coverage *c)
{
	free(c->span);
	*c = (struct coverage)COVERAGE_INIT;
}
