/*
 * options.h - mount options (SPEC §1) and the parsers for their values.
 *
 * Durations are "<n>[ms|s|m|h|d|w]" (a bare number is seconds), sizes are
 * "<n>[K|M|G|T|P][i][B]" in powers of 1024 (a bare number is bytes).  The
 * parsers reject empty input, signs, overflow and trailing garbage.
 */
#ifndef FEATUREFS_OPTIONS_H
#define FEATUREFS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define US_PER_SEC 1000000LL
/* gc_older_than, for a mount and for `featurefs gc` alike: 4w */
#define GC_OLDER_THAN_DEFAULT_US (4 * 7 * 24 * 3600 * US_PER_SEC)

enum hash_mode {
	HASH_FULL = 0,	 /* SHA-256 of every logical byte, streamed */
	HASH_FOOTER = 1, /* SHA-256 of the Parquet footer and the length */
};

enum compress_mode {
	COMPRESS_STORE = -1, /* not given: store.conf's */
	COMPRESS_NONE = 0,   /* objects stored as written */
	COMPRESS_ZSTD = 1,   /* zstd seekable format (seekable.h) */
	COMPRESS_AUTO = 2,   /* zstd when it saves at least 10 % */
};

#define COMPRESS_LEVEL_MIN 1
#define COMPRESS_LEVEL_MAX 22

/* The options of one mount; all durations in microseconds. */
struct ffs_options {
	char *manifest;		  /* -o manifest=; NULL means store.conf's */
	char *metrics;		  /* -o metrics=[ADDR:]PORT; NULL: no HTTP */
	int64_t gc_older_than_us; /* default 4w */
	int64_t gc_interval_us;	  /* default 1h; 0 disables the GC thread */
	uint64_t gc_max_size;	  /* 0: no size quota */
	int64_t lock_timeout_us;  /* default 30s */
	enum hash_mode hash;	  /* default full */
	enum compress_mode compress; /* of new objects */
	int compress_level;	  /* zstd level, default 3 */
	uint64_t frame_cache;	  /* decompressed frames kept, default 64M */
	int read_only;		  /* -o ro */
	int passthrough;	  /* -o passthrough=auto (1, default) or off */
	int allow_other;	  /* informational: passed to the kernel */
	int default_permissions;  /* informational: passed to the kernel */
};

void options_defaults(struct ffs_options *o);
void options_release(struct ffs_options *o);

/* The longest duration taken: 5200 weeks, about 100 years.  A deadline
 * or a next run is now plus a duration, in microseconds or nanoseconds,
 * and must not overflow. */
#define DURATION_MAX_US (5200 * 604800000000LL)

/* 0 or -EINVAL (a duration over DURATION_MAX_US too). */
int parse_duration(const char *s, int64_t *us);
int parse_size(const char *s, uint64_t *bytes);
int parse_hash_mode(const char *s, enum hash_mode *mode);
int parse_compress_mode(const char *s, enum compress_mode *mode);

/* Shortest exact spelling of a duration ("4w", "90s", "1500ms"). */
void sb_duration(struct strbuf *sb, int64_t us);

/* Shortest exact spelling of a size ("512M", "1000"). */
void sb_size(struct strbuf *sb, uint64_t bytes);

const char *hash_mode_name(enum hash_mode mode);
const char *compress_mode_name(enum compress_mode mode);

#endif
