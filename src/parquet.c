/*
 * parquet.c - decide whether bytes are a complete Parquet file.
 *
 * A small reader for Thrift's compact protocol decodes the FileMetaData at
 * the end of the file: row count, leaf columns, row groups, and the min/max
 * statistics of the first timestamp column; asked for them, where each
 * column chunk's bytes lie (compression frames follow them), or where its
 * pages lie, by their headers (the ranges a sparse copy may leave
 * unwritten).  It nests at most TC_DEPTH_MAX deep, trusts no declared
 * size beyond the bytes left, and allocates nothing but that list of
 * offsets and a buffer for page headers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "parquet.h"

/* Structs, lists and maps nested deeper than this are refused. */
#define TC_DEPTH_MAX 64

/* Bytes read for a page header: first, and at most. */
#define PAGE_HEADER_GUESS 4096
#define PAGE_HEADER_MAX (1u << 20)
/* Pages walked at most in a file (a hostile one of tiny pages would
 * cost a read each), and bytes read at most, in multiples of its size
 * (a hostile footer may give one chunk many times over). */
#define PAGES_WALKED_MAX (1u << 20)
#define WALK_READ_FACTOR 16
/* CompressionCodec: pages stored as they are */
#define PARQUET_UNCOMPRESSED 0

/*
 * Compact protocol types, as in the low nibble of a field header.  In a
 * field header TRUE and FALSE are a bool field and its value; as the
 * element type of a list either one means "bool, one byte each".
 */
enum tc_type {
	TC_STOP, TC_TRUE, TC_FALSE, TC_BYTE, TC_I16, TC_I32, TC_I64,
	TC_DOUBLE, TC_BINARY, TC_LIST, TC_SET, TC_MAP, TC_STRUCT, TC_UUID,
};

/* Parquet's physical type INT64, and ConvertedType TIMESTAMP_*. */
#define PQ_INT64 2
#define PQ_CONV_TS_MILLIS 9
#define PQ_CONV_TS_MICROS 10

/* TimeUnit union members, used as our unit code (0: not a timestamp). */
enum ts_unit { TS_NONE = 0, TS_MILLIS = 1, TS_MICROS = 2, TS_NANOS = 3 };

struct tc {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	int depth;
	struct parquet_error *err;
};

struct schema_el {
	int64_t type;		/* physical type, -1 if absent */
	int64_t num_children;	/* 0 if absent */
	int64_t converted;	/* ConvertedType, -1 if absent */
	int unit;		/* enum ts_unit, from the LogicalType */
};

/* What the FileMetaData tells us while it is being read. */
struct meta {
	struct schema_el el;	/* the SchemaElement being read */
	int64_t open;		/* schema tree slots not yet filled */
	int64_t leaves;		/* leaf columns in the schema */
	int64_t ts_leaf;	/* leaf index of the first timestamp, or -1 */
	int ts_unit;
	int64_t row_groups;
	int has_min, has_max;
	int64_t min, max;	/* in ts_unit */
	int ts_unknown;		/* a row group with rows has no min or max
				 * of ts_leaf: no range can be claimed */
	int rg_has_min, rg_has_max;	/* of the row group being read */
	int64_t rg_chunks;	/* its column chunks so far */
	int chunk_has_meta;	/* the ColumnChunk being read has meta_data */
	int in_ts_leaf;		/* the ColumnChunk being read is ts_leaf's */
	struct bounds *bounds;	/* NULL unless they are asked for */
	uint64_t data_end;	/* column chunks must lie in [4, data_end):
				 * where the footer begins; 0: unknown */
	struct parquet_error *err;
};

struct stat_val {
	int set;
	int64_t v;
};

/* Where column chunks begin and end, when asked for (parquet_read_bounds),
 * or with `chunks` each one's start, length and codec, three words a
 * chunk (parquet_walk_pages). */
struct bounds {
	uint64_t *v;
	size_t n, cap;
	int full;		/* PARQUET_BOUNDS_MAX reached: the rest dropped */
	int chunks;
};

__attribute__((format(printf, 3, 4)))
static int set_err(struct parquet_error *err, const char *reason,
		   const char *fmt, ...)
{
	va_list ap;

	err->reason = reason;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -EIO;
}

/* Record why the footer is bad and where (offset inside the footer). */
__attribute__((format(printf, 3, 4)))
static int tc_fail(struct tc *r, size_t at, const char *fmt, ...)
{
	struct parquet_error *err = r->err;
	va_list ap;
	size_t n;

	err->reason = "bad_footer";
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	n = strlen(err->detail);
	snprintf(err->detail + n, sizeof(err->detail) - n,
		 " at footer byte %zu", at);
	return -EIO;
}

static size_t tc_left(const struct tc *r)
{
	return r->len - r->pos;
}

static int tc_byte(struct tc *r, uint8_t *b)
{
	if (r->pos >= r->len)
		return tc_fail(r, r->pos, "unexpected end of footer");
	*b = r->buf[r->pos++];
	return 0;
}

/* Point *p at the next n bytes and step over them. */
static int tc_bytes(struct tc *r, size_t n, const uint8_t **p)
{
	if (n > tc_left(r))
		return tc_fail(r, r->pos, "%zu-byte value exceeds the %zu "
			       "bytes left", n, tc_left(r));
	*p = r->buf + r->pos;
	r->pos += n;
	return 0;
}

/* ULEB128, at most 10 bytes, no bits beyond 64. */
static int tc_varint(struct tc *r, uint64_t *out)
{
	size_t start = r->pos;
	uint64_t v = 0;
	uint8_t b = 0;
	int i;

	for (i = 0; i < 10; i++) {
		if (r->pos >= r->len)
			return tc_fail(r, start, "truncated varint");
		b = r->buf[r->pos++];
		if (i == 9 && b > 1)
			break;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return tc_fail(r, start, "overlong varint");
}

/* A zigzag-encoded integer of `width` bits (16, 32 or 64). */
static int tc_int(struct tc *r, int width, int64_t *out)
{
	size_t start = r->pos;
	uint64_t v = 0;
	int rc;

	rc = tc_varint(r, &v);
	if (rc == 0 && width < 64 && (v >> width) != 0)
		rc = tc_fail(r, start, "varint too large for i%d", width);
	if (rc == 0)
		*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	return rc;
}

static int tc_binary(struct tc *r, const uint8_t **p, size_t *n)
{
	size_t start = r->pos;
	uint64_t len = 0;
	int rc;

	rc = tc_varint(r, &len);
	if (rc)
		return rc;
	if (len > INT32_MAX)
		return tc_fail(r, start, "negative binary length");
	*n = (size_t)len;
	return tc_bytes(r, *n, p);
}

static int tc_valid_type(int type)
{
	return type > TC_STOP && type <= TC_UUID;
}

/* Entering a struct, list or map: one level deeper. */
static int tc_enter(struct tc *r)
{
	if (++r->depth > TC_DEPTH_MAX)
		return tc_fail(r, r->pos, "nesting deeper than %d",
			       TC_DEPTH_MAX);
	return 0;
}

static void tc_leave(struct tc *r)
{
	r->depth--;
}

/*
 * Step to the next field of the struct being read.  Returns 1 with *id and
 * *type set, 0 at the struct's stop byte, or -EIO.  *last is the previous
 * field id (0 at the start of a struct), for the delta form.
 */
static int tc_next(struct tc *r, int *last, int *id, int *type)
{
	size_t start = r->pos;
	int64_t v;
	uint8_t b = 0;
	int rc;

	rc = tc_byte(r, &b);
	if (rc)
		return rc;
	*type = b & 0x0f;
	if (b == 0)
		return 0;
	if (!tc_valid_type(*type))
		return tc_fail(r, start, "bad field type %d", *type);
	if (b >> 4) {
		*id = *last + (b >> 4);
		if (*id > INT16_MAX)
			return tc_fail(r, start, "field id overflow");
	} else {
		rc = tc_int(r, 16, &v);
		if (rc)
			return rc;
		*id = (int)v;
	}
	*last = *id;
	return 1;
}

/* Header of a list or set: element type and a count that fits. */
static int tc_list(struct tc *r, int *etype, uint64_t *n)
{
	size_t start = r->pos;
	uint8_t b = 0;
	int rc;

	rc = tc_byte(r, &b);
	if (rc)
		return rc;
	*etype = b & 0x0f;
	*n = b >> 4;
	if (*n == 15) {
		rc = tc_varint(r, n);
		if (rc)
			return rc;
	}
	if (*n > tc_left(r))
		return tc_fail(r, start, "list of %" PRIu64
			       " elements exceeds the %zu bytes left", *n,
			       tc_left(r));
	if (*n > 0 && !tc_valid_type(*etype))
		return tc_fail(r, start, "bad list element type %d", *etype);
	return 0;
}

static int tc_skip(struct tc *r, int type);

/* Skip one element of a list, set or map: there, a bool takes a byte. */
static int tc_skip_elem(struct tc *r, int type)
{
	uint8_t b = 0;

	if (type == TC_TRUE || type == TC_FALSE)
		return tc_byte(r, &b);
	return tc_skip(r, type);
}

static int tc_skip_list(struct tc *r)
{
	uint64_t n, i;
	int etype, rc;

	rc = tc_enter(r);
	if (rc == 0)
		rc = tc_list(r, &etype, &n);
	for (i = 0; rc == 0 && i < n; i++)
		rc = tc_skip_elem(r, etype);
	tc_leave(r);
	return rc;
}

static int tc_skip_map(struct tc *r)
{
	size_t start = r->pos;
	uint64_t n = 0, i;
	int ktype = 0, vtype = 0, rc;
	uint8_t b = 0;

	rc = tc_enter(r);
	if (rc == 0)
		rc = tc_varint(r, &n);
	if (rc == 0 && n > tc_left(r) / 2)
		rc = tc_fail(r, start, "map of %" PRIu64
			     " entries exceeds the %zu bytes left", n,
			     tc_left(r));
	if (rc == 0 && n > 0) {
		rc = tc_byte(r, &b);
		ktype = b >> 4;
		vtype = b & 0x0f;
		if (rc == 0 && (!tc_valid_type(ktype) ||
				!tc_valid_type(vtype)))
			rc = tc_fail(r, start, "bad map types %d/%d", ktype,
				     vtype);
	}
	for (i = 0; rc == 0 && i < n; i++) {
		rc = tc_skip_elem(r, ktype);
		if (rc == 0)
			rc = tc_skip_elem(r, vtype);
	}
	tc_leave(r);
	return rc;
}

static int tc_skip_struct(struct tc *r)
{
	int last = 0, id = 0, type = 0, rc;

	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0)
		rc = tc_skip(r, type);
	tc_leave(r);
	return rc;
}

/* Skip the value of a field of wire type `type`. */
static int tc_skip(struct tc *r, int type)
{
	const uint8_t *p;
	int64_t v;
	size_t n;

	switch (type) {
	case TC_TRUE:
	case TC_FALSE:
		return 0;
	case TC_BYTE:
		return tc_bytes(r, 1, &p);
	case TC_I16:
		return tc_int(r, 16, &v);
	case TC_I32:
		return tc_int(r, 32, &v);
	case TC_I64:
		return tc_int(r, 64, &v);
	case TC_DOUBLE:
		return tc_bytes(r, 8, &p);
	case TC_UUID:
		return tc_bytes(r, 16, &p);
	case TC_BINARY:
		return tc_binary(r, &p, &n);
	case TC_LIST:
	case TC_SET:
		return tc_skip_list(r);
	case TC_MAP:
		return tc_skip_map(r);
	case TC_STRUCT:
		return tc_skip_struct(r);
	}
	return tc_fail(r, r->pos, "bad type %d", type);
}

/*
 * Typed field readers: read the value when the wire type is the expected
 * one (returns 1), skip it otherwise as Thrift's generated code does
 * (returns 0), or fail (-EIO).
 */
static int tc_int_field(struct tc *r, int type, int width, int64_t *v)
{
	int want = width == 64 ? TC_I64 : TC_I32;
	int rc;

	if (type != want)
		return tc_skip(r, type);
	rc = tc_int(r, width, v);
	return rc ? rc : 1;
}

/* Statistics min/max: kept only when it is an 8-byte INT64 value. */
static int tc_stat_field(struct tc *r, int type, struct stat_val *sv)
{
	const uint8_t *p = NULL;
	uint64_t u = 0;
	size_t n = 0;
	int i, rc;

	if (type != TC_BINARY)
		return tc_skip(r, type);
	rc = tc_binary(r, &p, &n);
	if (rc == 0 && n == 8) {
		for (i = 7; i >= 0; i--)
			u = u << 8 | p[i];
		sv->set = 1;
		sv->v = (int64_t)u;
	}
	return rc;
}

/* A callback reading one struct (or list) into the metadata state. */
typedef int (*parse_fn)(struct tc *r, struct meta *m);
/* A callback reading element `i` of a list of structs. */
typedef int (*parse_elem_fn)(struct tc *r, struct meta *m, uint64_t i);

/*
 * Read a struct in which only field `want` of wire type `want_type`
 * matters: `inner` reads it, everything else is skipped.
 */
static int parse_member(struct tc *r, struct meta *m, int want,
			int want_type, parse_fn inner)
{
	int last = 0, id = 0, type = 0, rc;

	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (id == want && type == want_type)
			rc = inner(r, m);
		else
			rc = tc_skip(r, type);
	}
	tc_leave(r);
	return rc;
}

/* Read a list of structs, calling `fn` for each element. */
static int parse_list(struct tc *r, struct meta *m, const char *what,
		      parse_elem_fn fn)
{
	size_t start = r->pos;
	uint64_t n = 0, i;
	int etype = 0, rc;

	rc = tc_enter(r);
	if (rc == 0)
		rc = tc_list(r, &etype, &n);
	if (rc == 0 && n > 0 && etype != TC_STRUCT)
		rc = tc_fail(r, start, "%s is a list of type %d", what, etype);
	for (i = 0; rc == 0 && i < n; i++)
		rc = fn(r, m, i);
	tc_leave(r);
	return rc;
}

/* TimeUnit: a union of empty structs MILLIS(1), MICROS(2), NANOS(3). */
static int parse_time_unit(struct tc *r, struct meta *m)
{
	int last = 0, id = 0, type = 0, rc;

	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (type == TC_STRUCT && id >= TS_MILLIS && id <= TS_NANOS)
			m->el.unit = id;
		rc = tc_skip(r, type);
	}
	tc_leave(r);
	return rc;
}

/* TimestampType { 1: isAdjustedToUTC, 2: unit } */
static int parse_timestamp_type(struct tc *r, struct meta *m)
{
	return parse_member(r, m, 2, TC_STRUCT, parse_time_unit);
}

/* LogicalType: a union, of which only TIMESTAMP(8) matters here. */
static int parse_logical_type(struct tc *r, struct meta *m)
{
	return parse_member(r, m, 8, TC_STRUCT, parse_timestamp_type);
}

/*
 * SchemaElement `i`.  The schema is a tree flattened depth-first, root
 * first: m->open counts the slots its num_children still announce, so a
 * list that is not exactly one tree is refused.  Leaves are counted and
 * the first INT64 timestamp leaf is remembered.
 */
static int parse_schema_el(struct tc *r, struct meta *m, uint64_t i)
{
	struct schema_el *el = &m->el;
	int last = 0, id = 0, type = 0, rc;
	size_t start = r->pos;

	*el = (struct schema_el){ .type = -1, .converted = -1 };
	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (id == 1)
			rc = tc_int_field(r, type, 32, &el->type);
		else if (id == 5)
			rc = tc_int_field(r, type, 32, &el->num_children);
		else if (id == 6)
			rc = tc_int_field(r, type, 32, &el->converted);
		else if (id == 10 && type == TC_STRUCT)
			rc = parse_logical_type(r, m);
		else
			rc = tc_skip(r, type);
	}
	tc_leave(r);
	if (rc == 0 && (el->num_children < 0 || m->open == 0))
		rc = tc_fail(r, start, "schema element %" PRIu64
			     " does not fit the tree", i);
	if (rc < 0)
		return rc;
	m->open += el->num_children - 1;
	if (i == 0 || el->num_children > 0)
		return 0;
	if (el->unit == TS_NONE && el->converted == PQ_CONV_TS_MILLIS)
		el->unit = TS_MILLIS;
	if (el->unit == TS_NONE && el->converted == PQ_CONV_TS_MICROS)
		el->unit = TS_MICROS;
	if (m->ts_leaf < 0 && el->type == PQ_INT64 && el->unit != TS_NONE) {
		m->ts_leaf = m->leaves;
		m->ts_unit = el->unit;
	}
	m->leaves++;
	return 0;
}

static int parse_schema(struct tc *r, struct meta *m)
{
	int rc;

	m->leaves = 0;
	m->ts_leaf = -1;
	m->ts_unit = TS_NONE;
	m->open = 1;
	rc = parse_list(r, m, "schema", parse_schema_el);
	if (rc == 0 && m->open != 0)
		rc = tc_fail(r, r->pos, "schema tree lacks %" PRId64
			     " elements", m->open);
	return rc;
}

/* Statistics: max_value(5)/min_value(6), else the older max(1)/min(2). */
static int parse_statistics(struct tc *r, struct meta *m)
{
	struct stat_val val[7] = { { 0 } };
	int last = 0, id = 0, type = 0, rc;

	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (id == 1 || id == 2 || id == 5 || id == 6)
			rc = tc_stat_field(r, type, &val[id]);
		else
			rc = tc_skip(r, type);
	}
	tc_leave(r);
	if (val[6].set)
		val[2] = val[6];
	if (val[5].set)
		val[1] = val[5];
	m->rg_has_min |= val[2].set;
	m->rg_has_max |= val[1].set;
	if (rc == 0 && val[2].set && (!m->has_min || val[2].v < m->min)) {
		m->has_min = 1;
		m->min = val[2].v;
	}
	if (rc == 0 && val[1].set && (!m->has_max || val[1].v > m->max)) {
		m->has_max = 1;
		m->max = val[1].v;
	}
	return rc;
}

/* Note offset `v` in m->bounds; 0 or -ENOMEM. */
static int bounds_add(struct bounds *b, uint64_t v)
{
	uint64_t *grown;
	size_t cap;

	if (b->n == b->cap) {
		if (b->cap == PARQUET_BOUNDS_MAX) {
			b->full = 1;
			return 0;
		}
		cap = b->cap ? 2 * b->cap : 64;
		grown = realloc(b->v, cap * sizeof(*b->v));
		if (!grown)
			return -ENOMEM;
		b->v = grown;
		b->cap = cap;
	}
	b->v[b->n++] = v;
	return 0;
}

/*
 * ColumnMetaData: statistics(12) of the timestamp leaf; where the chunk's
 * pages lie: from dictionary_page_offset(11) (when set and before the
 * data pages) or data_page_offset(9), for total_compressed_size(7)
 * bytes, and their codec(4).  Pages outside the data (a footer kept from
 * a longer file), or no place given (both fields are required), are
 * refused when the data's end is known; when bounds are asked for the
 * offsets are noted, never trusted: the frames they shape cover the file
 * whatever they say.
 */
static int parse_column_meta(struct tc *r, struct meta *m)
{
	int64_t len = -1, data = -1, dict = -1, codec = 0, start;
	int last = 0, id = 0, type = 0, rc;
	int where = m->bounds || m->data_end;

	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (id == 12 && type == TC_STRUCT && m->in_ts_leaf)
			rc = parse_statistics(r, m);
		else if (id == 7 && where)
			rc = tc_int_field(r, type, 64, &len);
		else if (id == 9 && where)
			rc = tc_int_field(r, type, 64, &data);
		else if (id == 11 && where)
			rc = tc_int_field(r, type, 64, &dict);
		else if (id == 4 && where)
			rc = tc_int_field(r, type, 32, &codec);
		else
			rc = tc_skip(r, type);
	}
	tc_leave(r);
	m->chunk_has_meta = 1;
	if (rc == 0 && m->data_end && (data < 0 || len < 0))
		return set_err(m->err, "bad_footer", "a column chunk of row "
			       "group %" PRId64 " gives no %s",
			       m->row_groups - 1,
			       data < 0 ? "data_page_offset"
					: "total_compressed_size");
	if (rc < 0 || data < 0)
		return rc;
	start = dict > 0 && dict < data ? dict : data;
	if (m->data_end &&
	    (start < 4 || (uint64_t)start >= m->data_end ||
	     (len > 0 && (uint64_t)len > m->data_end - (uint64_t)start)))
		return set_err(m->err, "bad_footer", "a column chunk of row "
			       "group %" PRId64 " lies at bytes %" PRId64
			       "+%" PRId64 ", outside the data (bytes 4 to "
			       "%" PRIu64 ")", m->row_groups - 1, start, len,
			       m->data_end);
	if (!m->bounds)
		return 0;
	rc = bounds_add(m->bounds, (uint64_t)start);
	if (rc == 0 && m->bounds->chunks) {
		rc = bounds_add(m->bounds, len > 0 ? (uint64_t)len : 0);
		if (rc == 0)
			rc = bounds_add(m->bounds, (uint64_t)codec);
	} else if (rc == 0 && len > 0 && len <= INT64_MAX - start)
		rc = bounds_add(m->bounds, (uint64_t)(start + len));
	return rc;
}

/* ColumnChunk `i` of a row group: meta_data(3), of the timestamp leaf
 * only unless bounds are asked for. */
static int parse_column_chunk(struct tc *r, struct meta *m, uint64_t i)
{
	int rc;

	m->rg_chunks = (int64_t)i + 1;
	m->in_ts_leaf = (int64_t)i == m->ts_leaf;
	if (!m->in_ts_leaf && !m->bounds && !m->data_end)
		return tc_skip_struct(r);
	m->chunk_has_meta = 0;
	rc = parse_member(r, m, 3, TC_STRUCT, parse_column_meta);
	if (rc == 0 && m->data_end && !m->chunk_has_meta)
		rc = set_err(m->err, "bad_footer", "column chunk %" PRIu64
			     " of row group %" PRId64 " has no metadata "
			     "(encrypted, or kept elsewhere)", i,
			     m->row_groups - 1);
	return rc;
}

static int parse_columns(struct tc *r, struct meta *m)
{
	return parse_list(r, m, "columns", parse_column_chunk);
}

/* RowGroup: columns(1), a list<ColumnChunk> indexed like the leaves, one
 * for each; num_rows(3). */
static int parse_row_group(struct tc *r, struct meta *m, uint64_t i)
{
	int last = 0, id = 0, type = 0, have_rows = 0, rc;
	int64_t rows = -1;

	m->row_groups = (int64_t)i + 1;
	m->rg_chunks = 0;
	m->rg_has_min = m->rg_has_max = 0;
	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (id == 1 && type == TC_LIST)
			rc = parse_columns(r, m);
		else if (id == 3) {
			have_rows = 1;
			rc = tc_int_field(r, type, 64, &rows);
		} else
			rc = tc_skip(r, type);
	}
	tc_leave(r);
	if (rc < 0)
		return rc;
	/* a reader sizes what it reads by it */
	if (!have_rows)
		return set_err(m->err, "bad_footer", "row group %" PRIu64
			       " lacks required field num_rows", i);
	if (rows < 0)
		return set_err(m->err, "bad_footer", "row group %" PRIu64
			       " has negative num_rows %" PRId64, i, rows);
	if (m->rg_chunks != m->leaves)
		return set_err(m->err, "bad_footer", "row group %" PRIu64
			       " has %" PRId64 " column chunks for %" PRId64
			       " columns", i, m->rg_chunks, m->leaves);
	/* rows whose timestamps nothing bounds */
	if (rows != 0 && !(m->rg_has_min && m->rg_has_max))
		m->ts_unknown = 1;
	return 0;
}

/*
 * Timestamps in µs.  Nanoseconds round outwards (start down, end up) so
 * that [start, end] still covers the data; overflow saturates.
 */
static int64_t to_us(int64_t v, int unit, int round_up)
{
	int64_t us, q;

	switch (unit) {
	case TS_MILLIS:
		if (__builtin_mul_overflow(v, 1000, &us))
			us = v < 0 ? INT64_MIN : INT64_MAX;
		return us;
	case TS_NANOS:
		q = v / 1000;
		if (v % 1000 != 0 && (v < 0) != !!round_up)
			q += round_up ? 1 : -1;
		return q;
	}
	return v;
}

/* parquet_parse_footer(), noting column chunk bounds in `bounds` unless
 * it is NULL, and checking that they end by `data_end` unless it is 0. */
static int parse_footer(const uint8_t *buf, size_t len,
			struct parquet_info *info, struct parquet_error *err,
			struct bounds *bounds, uint64_t data_end)
{
	static const char *const required[] = {
		"version", "schema", "num_rows", "row_groups",
	};
	struct parquet_error local_err;
	struct parquet_info local_info;
	struct meta m = { .ts_leaf = -1, .bounds = bounds,
			  .data_end = data_end };
	struct tc r = { .buf = buf, .len = len };
	int last = 0, id = 0, type = 0, have = 0, rc, i;
	size_t rg_pos = 0;
	int64_t v;

	if (!info)
		info = &local_info;
	if (!err)
		err = &local_err;
	memset(info, 0, sizeof(*info));
	err->reason = NULL;
	err->detail[0] = '\0';
	r.err = err;
	m.err = err;
	if (len > PARQUET_FOOTER_MAX) {
		rc = set_err(err, "bad_footer", "footer of %zu bytes exceeds "
			     "the limit of %u", len, PARQUET_FOOTER_MAX);
		goto out;
	}

	/* Row groups are read once the schema is known, whatever the order. */
	rc = tc_enter(&r);
	while (rc >= 0 && (rc = tc_next(&r, &last, &id, &type)) > 0) {
		switch (id) {
		case 1:
			rc = tc_int_field(&r, type, 32, &v);
			have |= rc > 0 ? 1 : 0;
			break;
		case 2:
			if (type == TC_LIST) {
				rc = parse_schema(&r, &m);
				have |= 2;
			} else {
				rc = tc_skip(&r, type);
			}
			break;
		case 3:
			rc = tc_int_field(&r, type, 64, &info->rows);
			have |= rc > 0 ? 4 : 0;
			break;
		case 4:
			if (type == TC_LIST) {
				rg_pos = r.pos;
				have |= 8;
			}
			rc = tc_skip(&r, type);
			break;
		default:
			rc = tc_skip(&r, type);
		}
	}
	tc_leave(&r);
	if (rc < 0)
		goto out;
	for (i = 0; i < 4; i++) {
		if (!(have & (1 << i))) {
			rc = set_err(err, "bad_footer", "FileMetaData lacks "
				     "required field %s", required[i]);
			goto out;
		}
	}
	if (info->rows < 0) {
		rc = set_err(err, "bad_footer", "negative num_rows %" PRId64,
			     info->rows);
		goto out;
	}
	r.pos = rg_pos;
	rc = parse_list(&r, &m, "row_groups", parse_row_group);
	if (rc < 0)
		goto out;

	info->row_groups = m.row_groups;
	info->columns = m.leaves;
	info->footer_len = (uint32_t)len;
	/* statistics that do not bound every row, or that contradict
	 * themselves, give no range */
	if (m.has_min && m.has_max && !m.ts_unknown && m.min <= m.max) {
		info->has_ts = 1;
		info->start_ts_us = to_us(m.min, m.ts_unit, 0);
		info->end_ts_us = to_us(m.max, m.ts_unit, 1);
	}
out:
	if (rc < 0)
		memset(info, 0, sizeof(*info));
	return rc;
}

int parquet_parse_footer(const uint8_t *buf, size_t len,
			 struct parquet_info *info, struct parquet_error *err)
{
	return parse_footer(buf, len, info, err, NULL, 0);
}

/* Read exactly n bytes at off. */
static int read_full(const struct byte_source *src, void *buf, size_t n,
		     uint64_t off, struct parquet_error *err)
{
	ssize_t got = src->pread(src->arg, buf, n, off);

	if (got < 0) {
		set_err(err, "io", "pread %zu bytes at offset %" PRIu64 ": %s",
			n, off, strerror((int)-got));
		return (int)got;
	}
	if ((size_t)got < n)
		return set_err(err, "truncated", "file ends at byte %" PRIu64
			       ", before its expected size", off + (uint64_t)got);
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* parquet_validate(), noting column chunk bounds in `bounds` unless it
 * is NULL. */
static int validate(const struct byte_source *src, uint64_t size,
		    struct parquet_info *info, struct parquet_error *err,
		    uint8_t **footer_out, struct bounds *bounds)
{
	struct parquet_error local_err;
	struct parquet_info local_info;
	uint8_t head[4], tail[8], *footer = NULL;
	uint32_t flen = 0;
	int rc;

	if (!info)
		info = &local_info;
	if (!err)
		err = &local_err;
	memset(info, 0, sizeof(*info));
	err->reason = NULL;
	err->detail[0] = '\0';
	if (footer_out)
		*footer_out = NULL;

	if (size == 0) {
		rc = set_err(err, "empty", "file is empty");
		goto out;
	}
	if (size < PARQUET_MIN_SIZE) {
		rc = set_err(err, "not_parquet", "file of %" PRIu64
			     " bytes is too small for Parquet", size);
		goto out;
	}
	rc = read_full(src, head, sizeof(head), 0, err);
	if (rc)
		goto out;
	if (memcmp(head, "PAR1", 4) != 0 && memcmp(head, "PARE", 4) != 0) {
		rc = set_err(err, "not_parquet", "no PAR1 magic at start");
		goto out;
	}
	rc = read_full(src, tail, sizeof(tail), size - sizeof(tail), err);
	if (rc)
		goto out;
	if (memcmp(head, "PARE", 4) == 0 || memcmp(tail + 4, "PARE", 4) == 0) {
		rc = set_err(err, "encrypted", "encrypted footer (PARE magic) "
			     "is not supported");
		goto out;
	}
	if (memcmp(tail + 4, "PAR1", 4) != 0) {
		rc = set_err(err, "truncated", "no PAR1 magic at end of file");
		goto out;
	}
	flen = le32(tail);
	if (flen == 0) {
		rc = set_err(err, "bad_footer", "footer length 0");
		goto out;
	}
	if (flen > size - PARQUET_MIN_SIZE) {
		rc = set_err(err, "bad_footer", "footer length %" PRIu32
			     " does not fit in %" PRIu64 " bytes with the "
			     "magic at both ends", flen, size);
		goto out;
	}
	if (flen > PARQUET_FOOTER_MAX) {
		rc = set_err(err, "bad_footer", "footer length %" PRIu32
			     " exceeds the limit of %u", flen,
			     PARQUET_FOOTER_MAX);
		goto out;
	}
	footer = malloc(flen);
	if (!footer) {
		rc = -ENOMEM;
		set_err(err, "io", "cannot allocate %" PRIu32
			" bytes for the footer", flen);
		goto out;
	}
	rc = read_full(src, footer, flen, size - sizeof(tail) - flen, err);
	if (rc)
		goto out;
	rc = parse_footer(footer, flen, info, err, bounds,
			  size - flen - sizeof(tail));
	if (rc)
		goto out;
	if (footer_out) {
		*footer_out = footer;
		footer = NULL;
	}
out:
	free(footer);
	return rc;
}

int parquet_head_refutes(const uint8_t head[4])
{
	static const uint8_t magic[4] = { 'P', 'A', 'R', '1' };
	int i;

	for (i = 0; i < 4; i++)
		if (head[i] != 0 && head[i] != magic[i])
			return 1;
	return 0;
}

int parquet_validate(const struct byte_source *src, uint64_t size,
		     struct parquet_info *info, struct parquet_error *err,
		     uint8_t **footer_out)
{
	return validate(src, size, info, err, footer_out, NULL);
}

int parquet_validate_fd(int fd, uint64_t size, struct parquet_info *info,
			struct parquet_error *err, uint8_t **footer_out)
{
	struct byte_source src = fd_source(&fd);

	return validate(&src, size, info, err, footer_out, NULL);
}

/* What a walk may still do. */
struct walk_budget {
	unsigned pages;
	uint64_t bytes;
};

/* read_full() of a walk, counted against its budget. */
static int walk_read(const struct byte_source *src, uint8_t *buf, size_t n,
		     uint64_t off, struct walk_budget *budget,
		     struct parquet_error *err)
{
	if (n > budget->bytes)
		return set_err(err, "bad_footer", "its pages would take more "
			       "than %u times its size to walk",
			       WALK_READ_FACTOR);
	budget->bytes -= n;
	return read_full(src, buf, n, off, err);
}

/* DataPageHeaderV2: is_compressed(7), true unless it says false. */
static int parse_page_header_v2(struct tc *r, int *compressed)
{
	int last = 0, id = 0, type = 0, rc;

	rc = tc_enter(r);
	while (rc >= 0 && (rc = tc_next(r, &last, &id, &type)) > 0) {
		if (id == 7 && type == TC_FALSE)
			*compressed = 0;
		else
			rc = tc_skip(r, type);
	}
	tc_leave(r);
	return rc;
}

/* PageHeader: compressed_page_size(3), the payload that follows it, and
 * whether a data_page_header_v2(8) says its values are not compressed
 * (*compressed, else left as it is).  The header's length in *hlen: 0,
 * or -EIO when `len` bytes at `buf` do not begin with one (or end before
 * it does). */
static int parse_page_header(const uint8_t *buf, size_t len, size_t *hlen,
			     int64_t *payload, int *compressed,
			     struct parquet_error *err)
{
	struct tc r = { .buf = buf, .len = len, .err = err };
	int last = 0, id = 0, type = 0, rc;

	*payload = -1;
	while ((rc = tc_next(&r, &last, &id, &type)) > 0) {
		if (id == 3)
			rc = tc_int_field(&r, type, 32, payload);
		else if (id == 8 && type == TC_STRUCT)
			rc = parse_page_header_v2(&r, compressed);
		else
			rc = tc_skip(&r, type);
		if (rc < 0)
			break;
	}
	if (rc == 0 && *payload < 0)
		rc = -EIO;
	*hlen = r.pos;
	return rc;
}

/* Walk the pages of the column chunk of `len` bytes at `start`, stored
 * with `codec`, within `budget`, which it counts down. */
static int walk_chunk(const struct byte_source *src, uint64_t start,
		      uint64_t len, uint64_t codec, uint8_t *buf,
		      struct walk_budget *budget, parquet_page_fn *fn,
		      void *arg, struct parquet_error *err)
{
	uint64_t off = start, end = start + len, left;
	size_t want, hlen = 0;
	int64_t payload = -1;
	int compressed, parsed, rc = 0;

	while (rc == 0 && off < end) {
		compressed = codec != PARQUET_UNCOMPRESSED;
		if (budget->pages-- == 0)
			return set_err(err, "bad_footer", "more than %u pages "
				       "to walk", PAGES_WALKED_MAX);
		left = end - off;
		/* most headers are tens of bytes; long statistics may make
		 * one larger, read whole on a second try */
		want = left < PAGE_HEADER_GUESS ? (size_t)left : PAGE_HEADER_GUESS;
		rc = walk_read(src, buf, want, off, budget, err);
		parsed = rc == 0 ? parse_page_header(buf, want, &hlen,
						     &payload, &compressed,
						     err)
				 : rc;
		if (rc == 0 && parsed < 0 && want < left) {
			want = left < PAGE_HEADER_MAX ? (size_t)left
						      : PAGE_HEADER_MAX;
			rc = walk_read(src, buf, want, off, budget, err);
			if (rc == 0)
				parsed = parse_page_header(buf, want, &hlen,
							   &payload,
							   &compressed, err);
		}
		/* a header that does not parse is no page, whatever it set */
		if (rc == 0 && parsed < 0)
			payload = -1;
		if (rc == 0 && (payload < 0 ||
				(uint64_t)payload > left - hlen))
			rc = set_err(err, "truncated", "no page of its column "
				     "chunk (bytes %" PRIu64 " to %" PRIu64
				     ") begins at byte %" PRIu64, start,
				     end - 1, off);
		if (rc == 0)
			rc = fn(arg, off, hlen, (uint64_t)payload, compressed);
		off += hlen + (uint64_t)payload;
	}
	return rc;
}

int parquet_walk_pages(int fd, uint64_t size, parquet_page_fn *fn, void *arg,
		       struct parquet_error *err)
{
	struct byte_source src = fd_source(&fd);
	struct bounds b = { .chunks = 1 };
	struct parquet_info info;
	struct walk_budget budget = {
		PAGES_WALKED_MAX, WALK_READ_FACTOR * size + 2 * PAGE_HEADER_MAX
	};
	uint8_t *buf = NULL;
	size_t i;
	int rc;

	rc = validate(&src, size, &info, err, NULL, &b);
	if (rc == 0 && b.full)
		rc = set_err(err, "bad_footer", "more column chunks than the "
			     "%u whose pages can be walked",
			     PARQUET_BOUNDS_MAX / 3);
	if (rc == 0 && !(buf = malloc(PAGE_HEADER_MAX)))
		rc = -ENOMEM;
	for (i = 0; rc == 0 && i + 2 < b.n; i += 3)
		rc = walk_chunk(&src, b.v[i], b.v[i + 1], b.v[i + 2], buf,
				&budget, fn, arg, err);
	free(buf);
	free(b.v);
	return rc;
}

int parquet_read_bounds(int fd, uint64_t size, uint64_t **out, size_t *n)
{
	struct byte_source src = fd_source(&fd);
	struct bounds b = { 0 };
	struct parquet_info info;
	int rc;

	*out = NULL;
	*n = 0;
	rc = validate(&src, size, &info, NULL, NULL, &b);
	if (rc == 0)	/* where the footer begins */
		rc = bounds_add(&b, size - 8 - info.footer_len);
	if (rc < 0) {
		free(b.v);
		return rc;
	}
	*out = b.v;
	*n = b.n;
	return 0;
}
