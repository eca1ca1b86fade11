/*
 * test_lock.c - lock ids (SPEC §5) and the process-local lock table.
 */
#include <errno.h>

#include "lock.h"
#include "unit.h"

int main(void)
{
	struct lock_table *t;

	/* sha256("") = e3b0c442 98fc1c14 ...: the first 8 bytes, big-endian */
	CHECK_INT(lock_id("") , (int64_t)0xe3b0c44298fc1c14LL);
	CHECK_INT(lock_id_entry("AAPL", "0123456789abcdef"),
		  lock_id("AAPL/0123456789abcdef"));
	CHECK(lock_id("a") != lock_id("b"));

	CHECK_INT(lock_table_new(&t), 0);
	CHECK_INT(lock_table_try(t, 42), 0);
	CHECK_INT(lock_table_try(t, 42), -EBUSY);
	CHECK_INT(lock_table_try(t, 42 + 1024), 0);
	CHECK_INT(lock_table_count(t), 2);
	lock_table_release(t, 42);
	CHECK_INT(lock_table_try(t, 42), 0);
	lock_table_release(t, 42);
	lock_table_release(t, 42 + 1024);
	lock_table_release(t, 7); /* not held: no-op */
	CHECK_INT(lock_table_count(t), 0);
	lock_table_free(t);
	return unit_report();
}
