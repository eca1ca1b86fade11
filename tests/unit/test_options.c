/*
 * test_options.c - duration and size parsers, and their spelling back.
 */
#include <errno.h>

#include "options.h"
#include "unit.h"

static void check_duration(const char *s, int64_t want)
{
	int64_t us = -1;

	CHECK_INT(parse_duration(s, &us), 0);
	CHECK_INT(us, want);
}

static void check_spelling(int64_t us, const char *want)
{
	struct strbuf sb = STRBUF_INIT;

	sb_duration(&sb, us);
	CHECK_STR(sb_str(&sb), want);
	sb_release(&sb);
}

int main(void)
{
	int64_t us;
	uint64_t bytes;
	struct strbuf sb = STRBUF_INIT;

	check_duration("30s", 30 * US_PER_SEC);
	check_duration("15m", 15 * 60 * US_PER_SEC);
	check_duration("12h", 12 * 3600 * US_PER_SEC);
	check_duration("4w", 4 * 7 * 86400 * US_PER_SEC);
	check_duration("2d", 2 * 86400 * US_PER_SEC);
	check_duration("500ms", 500000);
	check_duration("7", 7 * US_PER_SEC);
	check_duration("0", 0);
	CHECK_INT(parse_duration("", &us), -EINVAL);
	CHECK_INT(parse_duration("s", &us), -EINVAL);
	CHECK_INT(parse_duration("-5s", &us), -EINVAL);
	CHECK_INT(parse_duration("5x", &us), -EINVAL);
	CHECK_INT(parse_duration("5 s", &us), -EINVAL);
	CHECK_INT(parse_duration("99999999999999999999s", &us), -EINVAL);
	CHECK_INT(parse_duration("9999999999999w", &us), -EINVAL);
	/* a deadline is now plus a duration: none may overflow it */
	check_duration("5200w", DURATION_MAX_US);
	CHECK_INT(parse_duration("5201w", &us), -EINVAL);
	CHECK_INT(parse_duration("9223372036854775807us", &us), -EINVAL);

	CHECK_INT(parse_size("512M", &bytes), 0);
	CHECK_INT(bytes, 512LL << 20);
	CHECK_INT(parse_size("100G", &bytes), 0);
	CHECK_INT(bytes, 100LL << 30);
	CHECK_INT(parse_size("2T", &bytes), 0);
	CHECK_INT(bytes, 2LL << 40);
	CHECK_INT(parse_size("1KiB", &bytes), 0);
	CHECK_INT(bytes, 1024);
	CHECK_INT(parse_size("4096", &bytes), 0);
	CHECK_INT(bytes, 4096);
	CHECK_INT(parse_size("1.5G", &bytes), -EINVAL);
	CHECK_INT(parse_size("G", &bytes), -EINVAL);
	CHECK_INT(parse_size("99999999P", &bytes), -EINVAL);

	check_spelling(4 * 7 * 86400 * US_PER_SEC, "4w");
	check_spelling(3600 * US_PER_SEC, "1h");
	check_spelling(90 * US_PER_SEC, "90s");
	check_spelling(1500000, "1500ms");
	check_spelling(0, "0");
	check_spelling(7, "7us");
	sb_size(&sb, 512ULL << 20);
	CHECK_STR(sb_str(&sb), "512M");
	sb_release(&sb);
	return unit_report();
}
