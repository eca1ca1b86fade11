/*
 * test_access.c - the access log: what a flush takes stays pending until
 * the flush settles (GC's "read since the last flush" must see it while
 * the manifest has not taken it yet), and what a failed flush restores is
 * pending again, counted once.
 */
#include <stdlib.h>

#include "access.h"
#include "unit.h"

int main(void)
{
	struct manifest_access *recs;
	struct access_log *a;
	int64_t last = 0;
	size_t n;

	CHECK_INT(access_log_new(&a), 0);
	CHECK_INT(access_log_add(a, "AAPL", "k1", 100), 0);
	CHECK_INT(access_log_add(a, "AAPL", "k1", 300), 0);
	CHECK_INT(access_log_add(a, "MSFT", "k2", 200), 0);
	CHECK_INT(access_log_pending(a, "AAPL", "k1", &last), 2);
	CHECK_INT(last, 300);

	/* taken, not written yet: still pending, and new reads add up */
	CHECK_INT(access_log_take(a, &recs, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(access_log_pending(a, "AAPL", "k1", NULL), 2);
	CHECK_INT(access_log_add(a, "AAPL", "k1", 400), 0);
	CHECK_INT(access_log_pending(a, "AAPL", "k1", &last), 3);
	CHECK_INT(last, 400);

	/* written: only what came since is pending */
	access_log_settle(a);
	CHECK_INT(access_log_pending(a, "AAPL", "k1", NULL), 1);
	CHECK_INT(access_log_pending(a, "MSFT", "k2", NULL), 0);
	free(recs);

	/* a failed flush puts back what it took: pending once, not twice */
	CHECK_INT(access_log_take(a, &recs, &n), 0);
	CHECK_INT(n, 1);
	access_log_restore(a, recs, n);
	access_log_settle(a);
	CHECK_INT(access_log_pending(a, "AAPL", "k1", &last), 1);
	CHECK_INT(last, 400);
	free(recs);

	/* taken again before a settle: the first taking is dropped; an
	 * empty log takes nothing */
	CHECK_INT(access_log_take(a, &recs, &n), 0);
	free(recs);
	CHECK_INT(access_log_take(a, &recs, &n), 0);
	CHECK_INT(n, 0);
	access_log_settle(a);
	CHECK_INT(access_log_pending(a, "AAPL", "k1", NULL), 0);
	free(recs);

	access_log_free(a);
	return unit_report();
}
