/*
 * test_coverage.c - the ranges writes reached: appends, writes out of
 * order that meet, rewrites, truncation, the first range never written and
 * all of them, and a coverage too scattered to keep, which says so.
 */
#include <errno.h>
#include <stdlib.h>

#include "coverage.h"
#include "unit.h"

/* coverage_whole() of `c` over `size`, with the first gap coverage_gaps()
 * gives as "from-to". */
static int whole(const struct coverage *c, uint64_t size, char *gap)
{
	uint64_t (*gaps)[2] = NULL;
	size_t n = 0;
	int rc = coverage_whole(c, size);

	snprintf(gap, 64, "none");
	if (rc == 0 && coverage_gaps(c, size, &gaps, &n) == 0 && n)
		snprintf(gap, 64, "%llu-%llu", (unsigned long long)gaps[0][0],
			 (unsigned long long)gaps[0][1]);
	free(gaps);
	return rc;
}

int main(void)
{
	struct coverage c = COVERAGE_INIT;
	char gap[64];
	uint64_t i;

	/* nothing written: an empty file is whole, a longer one is not */
	CHECK_INT(whole(&c, 0, gap), 1);
	CHECK_INT(whole(&c, 10, gap), 0);
	CHECK_STR(gap, "0-10");

	/* appends */
	for (i = 0; i < 100; i++)
		coverage_add(&c, i * 10, 10);
	CHECK_INT(c.n, 1);
	CHECK_INT(whole(&c, 1000, gap), 1);
	CHECK_INT(whole(&c, 1001, gap), 0);
	CHECK_STR(gap, "1000-1001");
	coverage_free(&c);

	/* appends and skips are in order; a cut then writes after it too */
	CHECK_INT(c.out_of_order, 0);
	coverage_add(&c, 0, 100);
	coverage_add(&c, 200, 100);
	coverage_truncate(&c, 250);
	coverage_add(&c, 250, 10);
	CHECK_INT(c.out_of_order, 0);
	coverage_truncate(&c, 0);

	/* the end, then the start, as a download in parts: the middle is
	 * missing until it comes, overlapping both */
	coverage_add(&c, 700, 300);
	coverage_add(&c, 0, 100);
	CHECK_INT(c.out_of_order, 1);
	CHECK_INT(c.n, 2);
	CHECK_INT(whole(&c, 1000, gap), 0);
	CHECK_STR(gap, "100-700");
	coverage_add(&c, 300, 100);
	CHECK_INT(c.n, 3);
	coverage_add(&c, 50, 700);
	CHECK_INT(c.n, 1);
	CHECK_INT(whole(&c, 1000, gap), 1);

	/* a rewrite inside changes nothing; a cut keeps what is left */
	coverage_add(&c, 10, 10);
	CHECK_INT(c.n, 1);
	coverage_truncate(&c, 500);
	CHECK_INT(whole(&c, 500, gap), 1);
	/* extended by a truncate: the new bytes were never written */
	CHECK_INT(whole(&c, 800, gap), 0);
	CHECK_STR(gap, "500-800");
	coverage_free(&c);

	/* spans that only touch merge; one written before the first */
	coverage_add(&c, 200, 100);
	coverage_add(&c, 400, 100);
	coverage_add(&c, 300, 100);
	CHECK_INT(c.n, 1);
	CHECK_INT(whole(&c, 500, gap), 0);
	CHECK_STR(gap, "0-200");
	coverage_add(&c, 0, 150);
	CHECK_INT(c.n, 2);
	CHECK_INT(whole(&c, 500, gap), 0);
	CHECK_STR(gap, "150-200");
	/* a gap past the size asked about does not count */
	CHECK_INT(whole(&c, 150, gap), 1);
	coverage_free(&c);

	/* the ranges no write reached, in order, up to the size */
	{
		uint64_t (*g)[2];
		size_t n;

		coverage_add(&c, 100, 100);
		coverage_add(&c, 300, 100);
		CHECK_INT(coverage_gaps(&c, 500, &g, &n), 0);
		CHECK_INT(n, 3);
		CHECK(g[0][0] == 0 && g[0][1] == 100);
		CHECK(g[1][0] == 200 && g[1][1] == 300);
		CHECK(g[2][0] == 400 && g[2][1] == 500);
		free(g);
		CHECK_INT(coverage_gaps(&c, 350, &g, &n), 0);
		CHECK_INT(n, 2);
		CHECK(g[1][0] == 200 && g[1][1] == 300);
		free(g);
		coverage_add(&c, 0, 500);
		CHECK_INT(coverage_gaps(&c, 500, &g, &n), 0);
		CHECK_INT(n, 0);
		CHECK(g == NULL);
		coverage_free(&c);
	}

	/* every other byte, past the spans kept: lost, until emptied */
	for (i = 0; i < 2 * COVERAGE_MAX_SPANS + 2; i += 2)
		coverage_add(&c, i, 1);
	CHECK_INT(c.lost, 1);
	CHECK_INT(whole(&c, 10, gap), -ENODATA);
	coverage_truncate(&c, 0);
	CHECK_INT(c.lost, 0);
	coverage_add(&c, 0, 10);
	CHECK_INT(whole(&c, 10, gap), 1);
	coverage_free(&c);
	return unit_report();
}
