/*
 * strbuf.h - a growable text buffer for reports, JSON and SQL.
 *
 * Appends never fail loudly: the first allocation failure is remembered in
 * `err` (-ENOMEM) and later appends do nothing, so a caller builds a whole
 * document and checks once at the end, as with stdio's ferror().
 */
#ifndef FEATUREFS_STRBUF_H
#define FEATUREFS_STRBUF_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf;	/* NUL-terminated when len > 0 */
	size_t len;
	size_t alloc;
	int err;	/* 0, or -ENOMEM after a failed append */
};

#define STRBUF_INIT { NULL, 0, 0, 0 }

void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_release(struct strbuf *sb);

/* Return the text (never NULL; "" when empty). */
const char *sb_str(const struct strbuf *sb);

/* Hand the buffer to the caller (malloc()ed, NUL-terminated) and reset. */
char *sb_detach(struct strbuf *sb, size_t *len);

/* Byte `c` as the log and the text reports write it: a backslash, n or t
 * after a backslash, \xHH for another control byte, else itself.  Its
 * length (1 to 4) in `out`. */
size_t escape_byte(unsigned char c, char out[4]);
/* Append `s` with each byte as escape_byte() writes it: a name or path
 * may hold any bytes, and a report goes to a terminal. */
void sb_add_escaped(struct strbuf *sb, const char *s);

/* Append `s` as a JSON string literal, quotes and escapes included. */
void sb_json_str(struct strbuf *sb, const char *s);
/* The length of the UTF-8 character that NUL-terminated `s` starts with
 * (1 to 4), or 0 when its bytes are not one: a damaged row or a path
 * can hold any bytes, and JSON and Prometheus text take only UTF-8. */
size_t utf8_char_len(const char *s);
/* What stands for a byte that is not UTF-8: U+FFFD. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* Append a UTC time (µs since the epoch) as ISO 8601, e.g.
 * 2026-11-25T20:31:00.123456Z; `us` <= 0 appends `none` unless it is
 * NULL (a data time, which may be before 1970), as does a time gmtime()
 * cannot break down. */
void sb_iso_time(struct strbuf *sb, int64_t us, const char *none);

/* The noun for a count in a message: `one` when n is 1, else `many`. */
static inline const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

#endif
