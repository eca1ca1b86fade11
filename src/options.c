/*
 * options.c - defaults and value parsers for mount options.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

void options_defaults(struct ffs_options *o)
{
	memset(o, 0, sizeof(*o));
	o->gc_older_than_us = GC_OLDER_THAN_DEFAULT_US;
	o->gc_interval_us = 3600 * US_PER_SEC;
	o->lock_timeout_us = 30 * US_PER_SEC;
	o->hash = HASH_FULL;
	o->compress = COMPRESS_STORE;
	o->compress_level = 3;
	o->frame_cache = 64ULL << 20;
	o->passthrough = 1;
}

void options_release(struct ffs_options *o)
{
	free(o->manifest);
	free(o->metrics);
	o->manifest = NULL;
	o->metrics = NULL;
}

/* Parse the leading unsigned decimal of `s`; 0 or -EINVAL. */
static int parse_number(const char **s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*s = p;
	*out = v;
	return 0;
}

static const struct unit {
	const char *suffix;
	uint64_t factor;
} duration_units[] = {
	{ "", 1000000 },	  { "us", 1 },		{ "ms", 1000 },
	{ "s", 1000000 },	  { "m", 60000000ULL },
	{ "h", 3600000000ULL },	  { "d", 86400000000ULL },
	{ "w", 604800000000ULL }, { NULL, 0 },
};

static const struct unit size_units[] = {
	{ "", 1 },	    { "B", 1 },
	{ "K", 1ULL << 10 }, { "KB", 1ULL << 10 }, { "KiB", 1ULL << 10 },
	{ "M", 1ULL << 20 }, { "MB", 1ULL << 20 }, { "MiB", 1ULL << 20 },
	{ "G", 1ULL << 30 }, { "GB", 1ULL << 30 }, { "GiB", 1ULL << 30 },
	{ "T", 1ULL << 40 }, { "TB", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	{ "P", 1ULL << 50 }, { "PB", 1ULL << 50 }, { "PiB", 1ULL << 50 },
	{ NULL, 0 },
};

/* Parse "<n><unit>" with a unit from `units`; the product must fit in
 * `max`.  0 or -EINVAL. */
static int parse_with_units(const char *s, const struct unit *units,
			    uint64_t max, uint64_t *out)
{
	const struct unit *u;
	uint64_t n;

	if (!s || parse_number(&s, &n) < 0)
		return -EINVAL;
	for (u = units; u->suffix; u++) {
		if (strcmp(s, u->suffix) == 0) {
			if (n > max / u->factor)
				return -EINVAL;
			*out = n * u->factor;
			return 0;
		}
	}
	return -EINVAL;
}

int parse_duration(const char *s, int64_t *us)
{
	uint64_t v;
	int rc = parse_with_units(s, duration_units, DURATION_MAX_US, &v);

	if (rc == 0)
		*us = (int64_t)v;
	return rc;
}

int parse_size(const char *s, uint64_t *bytes)
{
	return parse_with_units(s, size_units, INT64_MAX, bytes);
}

int parse_hash_mode(const char *s, enum hash_mode *mode)
{
	if (strcmp(s, "full") == 0)
		*mode = HASH_FULL;
	else if (strcmp(s, "footer") == 0)
		*mode = HASH_FOOTER;
	else
		return -EINVAL;
	return 0;
}

const char *hash_mode_name(enum hash_mode mode)
{
	return mode == HASH_FOOTER ? "footer" : "full";
}

static const char *const compress_names[] = { "none", "zstd", "auto" };

int parse_compress_mode(const char *s, enum compress_mode *mode)
{
	int i;

	for (i = 0; i < 3; i++) {
		if (strcmp(s, compress_names[i]) == 0) {
			*mode = (enum compress_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *compress_mode_name(enum compress_mode mode)
{
	return mode >= COMPRESS_NONE && mode <= COMPRESS_AUTO
		       ? compress_names[mode]
		       : "store.conf's";
}

/* Append `v` in the largest unit of `units` that divides it exactly, or
 * as a plain number followed by `base`. */
static void sb_with_units(struct strbuf *sb, uint64_t v,
			  const struct unit *units, size_t n, const char *base)
{
	size_t i;

	for (i = n; i-- > 0;) {
		if (units[i].factor > 1 && v % units[i].factor == 0 && v) {
			sb_addf(sb, "%llu%s",
				(unsigned long long)(v / units[i].factor),
				units[i].suffix);
			return;
		}
	}
	sb_addf(sb, "%llu%s", (unsigned long long)v, base);
}

void sb_duration(struct strbuf *sb, int64_t us)
{
	static const struct unit ladder[] = {
		{ "ms", 1000 },		 { "s", 1000000 },
		{ "m", 60000000ULL },	 { "h", 3600000000ULL },
		{ "d", 86400000000ULL }, { "w", 604800000000ULL },
	};

	if (us == 0) {
		sb_adds(sb, "0");
		return;
	}
	sb_with_units(sb, (uint64_t)us, ladder,
		      sizeof(ladder) / sizeof(ladder[0]), "us");
}

void sb_size(struct strbuf *sb, uint64_t bytes)
{
	static const struct unit ladder[] = {
		{ "K", 1ULL << 10 }, { "M", 1ULL << 20 }, { "G", 1ULL << 30 },
		{ "T", 1ULL << 40 }, { "P", 1ULL << 50 },
	};

	sb_with_units(sb, bytes, ladder, sizeof(ladder) / sizeof(ladder[0]),
		      "");
}
