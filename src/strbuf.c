/*
 * strbuf.c - growable text buffer with a sticky allocation error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"

static int sb_grow(struct strbuf *sb, size_t extra)
{
	size_t want;
	char *p;

	if (sb->err)
		return sb->err;
	if (sb->len + extra + 1 <= sb->alloc)
		return 0;
	want = sb->alloc ? sb->alloc : 64;
	while (want < sb->len + extra + 1)
		want *= 2;
	p = realloc(sb->buf, want);
	if (!p) {
		sb->err = -ENOMEM;
		return sb->err;
	}
	sb->buf = p;
	sb->alloc = want;
	return 0;
}

void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	if (sb_grow(sb, n))
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_adds(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb_grow(sb, 64))
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sb->alloc - sb->len) {
		if (sb_grow(sb, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
		va_end(ap);
	}
	sb->len += (size_t)n;
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void sb_release(struct strbuf *sb)
{
	free(sb->buf);
	memset(sb, 0, sizeof(*sb));
}

const char *sb_str(const struct strbuf *sb)
{
	return sb->len ? sb->buf : "";
}

char *sb_detach(struct strbuf *sb, size_t *len)
{
	char *p = sb->buf;

	if (!p)
		p = calloc(1, 1);
	if (len)
		*len = sb->len;
	memset(sb, 0, sizeof(*sb));
	return p;
}

void sb_json_str(struct strbuf *sb, const char *s)
{
	const unsigned char *p;

	sb_add(sb, "\"", 1);
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			sb_add(sb, "\\\"", 2);
			break;
		case '\\':
			sb_add(sb, "\\\\", 2);
			break;
		case '\n':
			sb_add(sb, "\\n", 2);
			break;
		case '\t':
			sb_add(sb, "\\t", 2);
			break;
		default:
			if (*p < 0x20)
				sb_addf(sb, "\\u%04x", *p);
			else
				sb_add(sb, (const char *)p, 1);
		}
	}
	sb_add(sb, "\"", 1);
}

void sb_iso_time(struct strbuf *sb, int64_t us, const char *none)
{
	int64_t frac = us % 1000000;
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;

	if (none && us <= 0) {
		sb_adds(sb, none);
		return;
	}
	if (frac < 0) { /* before 1970: the second before, plus a fraction */
		frac += 1000000;
		secs--;
	}
	if (!gmtime_r(&secs, &tm)) {
		sb_adds(sb, none ? none : "");
		return;
	}
	sb_addf(sb, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		(int)frac);
}
