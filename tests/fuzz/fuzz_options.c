/*
 * fuzz_options.c - libFuzzer target for the duration and size parsers
 * (options.h), the values of gc_older_than=, gc_interval=, lock_timeout=
 * and gc_max_size= that reach the daemon from fstab or a command line.
 *
 * Each input, cut at its first NUL, is parsed as a duration, a size and a
 * hash mode.  Beyond "no crash": a value that parses is never negative,
 * and the daemon's own spelling of it (sb_duration, sb_size, as shown in
 * /.featurefs/config) parses back to exactly the same value.  A failed
 * parse leaves the output untouched.  Seeds: tests/fuzz/corpus/options/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_duration(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	int64_t us = -7, again = -7;

	if (parse_duration(s, &us) != 0) {
		if (us != -7)
			abort();
		return;
	}
	if (us < 0)
		abort();
	sb_duration(&sb, us);
	if (sb.err || parse_duration(sb_str(&sb), &again) != 0 ||
	    again != us)
		abort();
	sb_release(&sb);
}

static void check_size(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	uint64_t bytes = 7, again = 8;

	if (parse_size(s, &bytes) != 0) {
		if (bytes != 7)
			abort();
		return;
	}
	if (bytes > INT64_MAX)
		abort();
	sb_size(&sb, bytes);
	if (sb.err || parse_size(sb_str(&sb), &again) != 0 || again != bytes)
		abort();
	sb_release(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum hash_mode mode;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_duration(s);
	check_size(s);
	if (parse_hash_mode(s, &mode) == 0 &&
	    strcmp(hash_mode_name(mode), s) != 0)
		abort();
	free(s);
	return 0;
}
