/*
 * test_parquet.c - footer parser and file validation.
 *
 * Valid footers are built here with a tiny Thrift compact-protocol writer;
 * bad ones are built by hand or by mutating good ones.  Files live in
 * memfds, so nothing binary is checked in.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parquet.h"
#include "unit.h"

enum {
	T_STOP, T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE,
	T_BINARY, T_LIST, T_SET, T_MAP, T_STRUCT, T_UUID,
};

/* Parquet physical types and converted types used below. */
enum { P_INT32 = 1, P_INT64 = 2, P_INT96 = 3, P_DOUBLE = 5, P_BYTES = 6 };
enum { C_NONE = -1, C_UTF8 = 0, C_TS_MILLIS = 9, C_TS_MICROS = 10 };
enum { U_NONE, U_MILLIS, U_MICROS, U_NANOS };

/* ---- a tiny compact protocol writer ---- */

struct tw {
	uint8_t *buf;
	size_t len, cap;
	int last[32];
	int depth;
};

static void tw_byte(struct tw *w, uint8_t b)
{
	if (w->len == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->buf = realloc(w->buf, w->cap);
		if (!w->buf)
			abort();
	}
	w->buf[w->len++] = b;
}

static void tw_raw(struct tw *w, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		tw_byte(w, b[i]);
}

static void tw_varint(struct tw *w, uint64_t v)
{
	while (v >= 0x80) {
		tw_byte(w, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	tw_byte(w, (uint8_t)v);
}

static void tw_zz(struct tw *w, int64_t v)
{
	uint64_t u = (uint64_t)v & (UINT64_MAX >> 1);

	tw_varint(w, (u << 1) ^ (uint64_t)(v >> 63));
}

static void tw_field(struct tw *w, int id, int type)
{
	int delta = id - w->last[w->depth];

	if (delta > 0 && delta <= 15) {
		tw_byte(w, (uint8_t)(delta << 4 | type));
	} else {
		tw_byte(w, (uint8_t)type);
		tw_zz(w, id);
	}
	w->last[w->depth] = id;
}

static void tw_begin(struct tw *w)
{
	w->last[++w->depth] = 0;
}

static void tw_end(struct tw *w)
{
	tw_byte(w, 0);
	w->depth--;
}

static void tw_list(struct tw *w, int etype, uint32_t n)
{
	if (n < 15) {
		tw_byte(w, (uint8_t)(n << 4 | etype));
	} else {
		tw_byte(w, (uint8_t)(0xf0 | etype));
		tw_varint(w, n);
	}
}

static void tw_bin(struct tw *w, const void *p, size_t n)
{
	tw_varint(w, n);
	tw_raw(w, p, n);
}

static void tw_int(struct tw *w, int id, int type, int64_t v)
{
	tw_field(w, id, type);
	tw_zz(w, v);
}

static void tw_str(struct tw *w, int id, const char *s)
{
	tw_field(w, id, T_BINARY);
	tw_bin(w, s, strlen(s));
}

static void tw_le64(struct tw *w, int id, int64_t v)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (8 * i));
	tw_field(w, id, T_BINARY);
	tw_bin(w, b, 8);
}

/* ---- FileMetaData builder ---- */

struct sel {
	const char *name;
	int type;	/* -1: absent (groups) */
	int children;
	int converted;	/* C_NONE: absent */
	int unit;	/* logical TIMESTAMP unit, U_NONE: no logical type */
};

struct rg {
	int stats;	/* 0 none, 1 min_value/max_value, 2 old min/max,
			 * 3 none, and no rows either, 4 none, and num_rows
			 * -1, 5 none, and no num_rows field */
	int64_t min, max;
};

struct fm {
	const struct sel *schema;
	int nschema;
	int ts_leaf;	/* which leaf the rg stats below belong to */
	const struct rg *rgs;
	int nrg;
	int64_t rows;
	int omit;	/* FileMetaData field not to write */
	int extras;	/* add unknown fields of every type */
	int rg_first;	/* write row_groups before schema */
	int chunk_omit;	/* ColumnChunk field (3: meta_data) or, above 3,
			 * ColumnMetaData field not to write */
	int chunks_short;	/* a chunk fewer than leaves per row group */
};

static void put_schema_el(struct tw *w, const struct sel *e)
{
	tw_begin(w);
	if (e->type >= 0)
		tw_int(w, 1, T_I32, e->type);
	tw_int(w, 3, T_I32, 1);
	tw_str(w, 4, e->name);
	if (e->children)
		tw_int(w, 5, T_I32, e->children);
	if (e->converted != C_NONE)
		tw_int(w, 6, T_I32, e->converted);
	if (e->unit != U_NONE) {
		tw_field(w, 10, T_STRUCT);	/* LogicalType */
		tw_begin(w);
		tw_field(w, 8, T_STRUCT);	/* TIMESTAMP */
		tw_begin(w);
		tw_field(w, 1, T_TRUE);		/* isAdjustedToUTC */
		tw_field(w, 2, T_STRUCT);	/* unit */
		tw_begin(w);
		tw_field(w, e->unit, T_STRUCT);
		tw_begin(w);
		tw_end(w);
		tw_end(w);
		tw_end(w);
		tw_end(w);
	}
	tw_end(w);
}

/* Column chunk `k` of the file: CHUNK_LEN bytes at 4 + k * CHUNK_LEN,
 * the odd ones a dictionary page first. */
#define CHUNK_LEN 16
static void put_chunk(struct tw *w, int64_t rows, const struct rg *st, int k,
		      int omit)
{
	int64_t start = 4 + (int64_t)k * CHUNK_LEN;

	tw_begin(w);
	tw_int(w, 2, T_I64, 4);			/* file_offset */
	if (omit == 3) {
		tw_end(w);
		return;
	}
	tw_field(w, 3, T_STRUCT);		/* meta_data */
	tw_begin(w);
	tw_int(w, 1, T_I32, P_INT64);
	tw_field(w, 2, T_LIST);			/* encodings */
	tw_list(w, T_I32, 2);
	tw_zz(w, 0);
	tw_zz(w, 8);
	tw_field(w, 3, T_LIST);			/* path_in_schema */
	tw_list(w, T_BINARY, 1);
	tw_bin(w, "col", 3);
	tw_int(w, 4, T_I32, 1);			/* codec */
	tw_int(w, 5, T_I64, rows);
	tw_int(w, 6, T_I64, 100);
	if (omit != 7)
		tw_int(w, 7, T_I64, CHUNK_LEN);	/* total_compressed_size */
	if (omit != 9)
		tw_int(w, 9, T_I64, start + (k % 2) * 8); /* data_page_offset */
	if (k % 2)
		tw_int(w, 11, T_I64, start);	/* dictionary_page_offset */
	if (st && (st->stats == 1 || st->stats == 2)) {
		tw_field(w, 12, T_STRUCT);
		tw_begin(w);
		if (st->stats == 2) {
			tw_le64(w, 1, st->max);
			tw_le64(w, 2, st->min);
		} else {
			tw_int(w, 3, T_I64, 0);	/* null_count */
			tw_le64(w, 5, st->max);
			tw_le64(w, 6, st->min);
			tw_field(w, 7, T_TRUE);
			tw_field(w, 8, T_TRUE);
		}
		tw_end(w);
	}
	tw_end(w);
	tw_end(w);
}

static int count_leaves(const struct fm *f)
{
	int i, n = 0;

	for (i = 1; i < f->nschema; i++)
		n += f->schema[i].children == 0;
	return n;
}

static void put_row_groups(struct tw *w, const struct fm *f)
{
	/* Other columns carry statistics too, which must not be used. */
	static const struct rg decoy = { 1, -9000000000000000000, 1 << 30 };
	int i, j, leaves = count_leaves(f), chunks = leaves - f->chunks_short;

	tw_field(w, 4, T_LIST);
	tw_list(w, T_STRUCT, (uint32_t)f->nrg);
	for (i = 0; i < f->nrg; i++) {
		tw_begin(w);
		tw_field(w, 1, T_LIST);
		tw_list(w, T_STRUCT, (uint32_t)chunks);
		for (j = 0; j < chunks; j++)
			put_chunk(w, f->rows, j == f->ts_leaf ? &f->rgs[i] :
				  &decoy, i * leaves + j, f->chunk_omit);
		tw_int(w, 2, T_I64, 1000);
		if (f->rgs[i].stats != 5)
			tw_int(w, 3, T_I64,
			       f->rgs[i].stats == 3   ? 0
			       : f->rgs[i].stats == 4 ? -1
						      : f->rows / (f->nrg ? f->nrg : 1));
		tw_end(w);
	}
}

static void put_schema(struct tw *w, const struct fm *f)
{
	int i;

	tw_field(w, 2, T_LIST);
	tw_list(w, T_STRUCT, (uint32_t)f->nschema);
	for (i = 0; i < f->nschema; i++)
		put_schema_el(w, &f->schema[i]);
}

/* Unknown fields of every wire type, which the parser must skip. */
static void put_extras(struct tw *w)
{
	static const uint8_t uuid[16] = { 1, 2, 3 };
	int i;

	tw_field(w, 5, T_LIST);			/* key_value_metadata */
	tw_list(w, T_STRUCT, 1);
	tw_begin(w);
	tw_str(w, 1, "ARROW:schema");
	tw_str(w, 2, "....");
	tw_end(w);
	tw_str(w, 6, "featurefs test writer");	/* created_by */
	tw_field(w, 7, T_LIST);			/* column_orders */
	tw_list(w, T_STRUCT, 20);
	for (i = 0; i < 20; i++) {
		tw_begin(w);
		tw_field(w, 1, T_STRUCT);
		tw_begin(w);
		tw_end(w);
		tw_end(w);
	}
	tw_field(w, 20, T_MAP);
	tw_varint(w, 2);
	tw_byte(w, T_BINARY << 4 | T_I32);
	tw_bin(w, "a", 1);
	tw_zz(w, 1);
	tw_bin(w, "b", 1);
	tw_zz(w, -1);
	tw_field(w, 21, T_SET);
	tw_list(w, T_I64, 3);
	tw_zz(w, 1);
	tw_zz(w, INT64_MIN);
	tw_zz(w, INT64_MAX);
	tw_field(w, 22, T_DOUBLE);
	tw_raw(w, "\0\0\0\0\0\0\xf0\x3f", 8);
	tw_field(w, 23, T_UUID);
	tw_raw(w, uuid, 16);
	tw_field(w, 24, T_FALSE);
	tw_field(w, 25, T_BYTE);
	tw_byte(w, 0xff);
	tw_int(w, 26, T_I16, -300);
	tw_field(w, 27, T_LIST);		/* list<list<i32>> */
	tw_list(w, T_LIST, 2);
	tw_list(w, T_I32, 1);
	tw_zz(w, 7);
	tw_list(w, T_I32, 0);
	tw_field(w, 28, T_LIST);		/* list<bool> */
	tw_list(w, T_TRUE, 3);
	tw_raw(w, "\1\2\1", 3);
	tw_field(w, 29, T_MAP);			/* empty map */
	tw_varint(w, 0);
	tw_int(w, 300, T_I32, 5);		/* long form id */
	tw_int(w, 301, T_I32, 6);
	tw_int(w, -2, T_I32, 7);		/* negative id */
}

static void build(struct tw *w, const struct fm *f)
{
	memset(w, 0, sizeof(*w));
	tw_begin(w);
	if (f->omit != 1)
		tw_int(w, 1, T_I32, 2);
	if (f->rg_first && f->omit != 4)
		put_row_groups(w, f);
	if (f->omit != 2)
		put_schema(w, f);
	if (f->omit != 3)
		tw_int(w, 3, T_I64, f->rows);
	if (!f->rg_first && f->omit != 4)
		put_row_groups(w, f);
	if (f->extras)
		put_extras(w);
	tw_end(w);
}

static const struct sel schema_basic[] = {
	{ "schema", -1, 3, C_NONE, U_NONE },
	{ "sym", P_BYTES, 0, C_UTF8, U_NONE },
	{ "ts", P_INT64, 0, C_TS_MICROS, U_MICROS },
	{ "price", P_DOUBLE, 0, C_NONE, U_NONE },
};

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))
#define T2024 1704067200000000LL	/* 2024-01-01 in µs */

static int parse_built(const struct fm *f, struct parquet_info *info,
		       struct parquet_error *err)
{
	struct tw w;
	int rc;

	build(&w, f);
	rc = parquet_parse_footer(w.buf, w.len, info, err);
	if (rc == 0 && info)
		CHECK_INT(info->footer_len, w.len);
	free(w.buf);
	return rc;
}

static void test_valid(void)
{
	static const struct rg two[] = {
		{ 1, T2024 + 1000, T2024 + 2000 },
		{ 1, T2024 + 500, T2024 + 3000 },
	};
	struct fm f = { schema_basic, NELEM(schema_basic), 1, two, 2, 1000,
			0, 0, 0, 0, 0 };
	struct parquet_info info;
	struct parquet_error err;

	CHECK_INT(parse_built(&f, &info, &err), 0);
	CHECK(err.reason == NULL);
	CHECK_INT(info.rows, 1000);
	CHECK_INT(info.row_groups, 2);
	CHECK_INT(info.columns, 3);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.start_ts_us, T2024 + 500);
	CHECK_INT(info.end_ts_us, T2024 + 3000);

	/* Unknown fields of every type, and row groups before the schema. */
	f.extras = 1;
	f.rg_first = 1;
	CHECK_INT(parse_built(&f, &info, &err), 0);
	CHECK_INT(info.rows, 1000);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.start_ts_us, T2024 + 500);
	CHECK_INT(info.end_ts_us, T2024 + 3000);

	/* NULL info and err are allowed. */
	f.extras = 0;
	CHECK_INT(parse_built(&f, NULL, NULL), 0);
}

static void test_units(void)
{
	static const struct sel ms[] = {
		{ "schema", -1, 1, C_NONE, U_NONE },
		{ "ts", P_INT64, 0, C_NONE, U_MILLIS },
	};
	static const struct sel ns[] = {
		{ "schema", -1, 1, C_NONE, U_NONE },
		{ "ts", P_INT64, 0, C_NONE, U_NANOS },
	};
	static const struct sel conv_ms[] = {
		{ "schema", -1, 1, C_NONE, U_NONE },
		{ "ts", P_INT64, 0, C_TS_MILLIS, U_NONE },
	};
	static const struct rg r_ms[] = { { 1, 1704067200000, 1704067201234 } };
	static const struct rg r_ns[] = { { 1, -1500, 2500 } };
	static const struct rg r_ns2[] = { { 1, 3000, 4000 } };
	static const struct rg r_big[] = { { 1, INT64_MIN, INT64_MAX } };
	struct fm f = { ms, 2, 0, r_ms, 1, 10, 0, 0, 0, 0, 0 };
	struct parquet_info info;

	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.start_ts_us, 1704067200000000);
	CHECK_INT(info.end_ts_us, 1704067201234000);

	f.schema = conv_ms;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.end_ts_us, 1704067201234000);

	/* Nanoseconds round outwards; exact ones do not move. */
	f.schema = ns;
	f.rgs = r_ns;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.start_ts_us, -2);
	CHECK_INT(info.end_ts_us, 3);
	f.rgs = r_ns2;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.start_ts_us, 3);
	CHECK_INT(info.end_ts_us, 4);

	/* Milliseconds beyond the µs range saturate. */
	f.schema = ms;
	f.rgs = r_big;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.start_ts_us, INT64_MIN);
	CHECK_INT(info.end_ts_us, INT64_MAX);
}

static void test_stats(void)
{
	static const struct rg some[] = {
		{ 0, 0, 0 }, { 1, 10, 20 }, { 0, 0, 0 },
	};
	static const struct rg some_empty[] = {
		{ 3, 0, 0 }, { 1, 10, 20 }, { 3, 0, 0 },
	};
	static const struct rg inverted[] = { { 1, 20, 10 } };
	static const struct rg none[] = { { 0, 0, 0 }, { 0, 0, 0 } };
	static const struct rg old[] = { { 2, 5, 6 }, { 2, -5, 1 } };
	struct fm f = { schema_basic, NELEM(schema_basic), 1, some, 3, 30,
			0, 0, 0, 0, 0 };
	struct parquet_info info;

	/* rows no statistics bound: no range could cover them */
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.row_groups, 3);
	CHECK_INT(info.has_ts, 0);
	/* empty row groups have none to give */
	f.rgs = some_empty;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.start_ts_us, 10);
	CHECK_INT(info.end_ts_us, 20);
	/* statistics that contradict themselves give none either */
	f.rgs = inverted;
	f.nrg = 1;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.has_ts, 0);

	f.rgs = none;
	f.nrg = 2;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.has_ts, 0);
	CHECK_INT(info.start_ts_us, 0);

	f.rgs = old;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.start_ts_us, -5);
	CHECK_INT(info.end_ts_us, 6);

	/* No row groups at all (an empty table). */
	f.nrg = 0;
	f.rows = 0;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.rows, 0);
	CHECK_INT(info.row_groups, 0);
	CHECK_INT(info.columns, 3);
	CHECK_INT(info.has_ts, 0);
}

static void test_schema_shapes(void)
{
	/* A timestamp on INT32 does not count; the INT64 one after it does. */
	static const struct sel wrong_type[] = {
		{ "schema", -1, 3, C_NONE, U_NONE },
		{ "t96", P_INT96, 0, C_NONE, U_NONE },
		{ "t32", P_INT32, 0, C_NONE, U_MILLIS },
		{ "ts", P_INT64, 0, C_NONE, U_MICROS },
	};
	/* Leaves inside a group shift the leaf index. */
	static const struct sel nested[] = {
		{ "schema", -1, 2, C_NONE, U_NONE },
		{ "g", -1, 2, C_NONE, U_NONE },
		{ "a", P_INT64, 0, C_NONE, U_NONE },
		{ "b", P_INT64, 0, C_NONE, U_NANOS },
		{ "c", P_INT64, 0, C_TS_MICROS, U_MICROS },
	};
	static const struct sel no_ts[] = {
		{ "schema", -1, 2, C_NONE, U_NONE },
		{ "a", P_INT64, 0, C_NONE, U_NONE },
		{ "b", P_DOUBLE, 0, C_NONE, U_NONE },
	};
	static const struct sel root_only[] = {
		{ "schema", -1, 0, C_NONE, U_NONE },
	};
	static const struct sel too_few[] = {
		{ "schema", -1, 4, C_NONE, U_NONE },
		{ "a", P_INT64, 0, C_NONE, U_NONE },
	};
	static const struct sel too_many[] = {
		{ "schema", -1, 1, C_NONE, U_NONE },
		{ "a", P_INT64, 0, C_NONE, U_NONE },
		{ "b", P_INT64, 0, C_NONE, U_NONE },
	};
	static const struct sel negative[] = {
		{ "schema", -1, -1, C_NONE, U_NONE },
	};
	static const struct rg r[] = { { 1, 7000, 8000 } };
	struct fm f = { wrong_type, NELEM(wrong_type), 2, r, 1, 5, 0, 0, 0, 0, 0 };
	struct parquet_info info;
	struct parquet_error err;

	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.columns, 3);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.start_ts_us, 7000);

	f.schema = nested;
	f.nschema = NELEM(nested);
	f.ts_leaf = 1;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.columns, 3);
	CHECK_INT(info.has_ts, 1);
	CHECK_INT(info.start_ts_us, 7);
	CHECK_INT(info.end_ts_us, 8);

	f.schema = no_ts;
	f.nschema = NELEM(no_ts);
	f.ts_leaf = 0;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.columns, 2);
	CHECK_INT(info.has_ts, 0);

	f.schema = root_only;
	f.nschema = 1;
	f.nrg = 0;
	CHECK_INT(parse_built(&f, &info, NULL), 0);
	CHECK_INT(info.columns, 0);

	f.nschema = 0;
	CHECK_INT(parse_built(&f, &info, &err), -EIO);
	CHECK_STR(err.reason, "bad_footer");
	CHECK(strstr(err.detail, "schema tree lacks 1 elements") != NULL);

	f.schema = too_few;
	f.nschema = NELEM(too_few);
	CHECK_INT(parse_built(&f, &info, &err), -EIO);
	CHECK(strstr(err.detail, "lacks 3 elements") != NULL);

	f.schema = too_many;
	f.nschema = NELEM(too_many);
	CHECK_INT(parse_built(&f, &info, &err), -EIO);
	CHECK(strstr(err.detail, "schema element 2 does not fit") != NULL);

	f.schema = negative;
	f.nschema = 1;
	CHECK_INT(parse_built(&f, &info, &err), -EIO);
	CHECK(strstr(err.detail, "schema element 0 does not fit") != NULL);
}

static void test_required(void)
{
	static const char *const names[] = {
		"version", "schema", "num_rows", "row_groups",
	};
	static const struct rg r[] = { { 1, 1, 2 } };
	struct fm f = { schema_basic, NELEM(schema_basic), 1, r, 1, 5, 0, 0,
			0, 0, 0 };
	struct parquet_info info;
	struct parquet_error err;
	char want[80];
	int i;

	for (i = 1; i <= 4; i++) {
		f.omit = i;
		CHECK_INT(parse_built(&f, &info, &err), -EIO);
		CHECK_STR(err.reason, "bad_footer");
		snprintf(want, sizeof(want), "lacks required field %s",
			 names[i - 1]);
		CHECK(strstr(err.detail, want) != NULL);
		CHECK_INT(info.rows, 0);
	}
	f.omit = 0;
	f.rows = -1;
	CHECK_INT(parse_built(&f, &info, &err), -EIO);
	CHECK(strstr(err.detail, "negative num_rows -1") != NULL);
}

/* Parse raw bytes; expect failure whose detail contains `want`. */
static void expect_bad(const uint8_t *buf, size_t len, const char *want,
		       int line)
{
	struct parquet_info info;
	struct parquet_error err;
	int rc;

	rc = parquet_parse_footer(buf, len, &info, &err);
	unit_checks++;
	if (rc != -EIO || !err.reason || strcmp(err.reason, "bad_footer") ||
	    !strstr(err.detail, want)) {
		unit_failures++;
		printf("not ok %s:%d: rc %d detail \"%s\", want \"%s\"\n",
		       __FILE__, line, rc, err.detail, want);
	}
}

#define EXPECT_BAD(buf, len, want) expect_bad(buf, len, want, __LINE__)
#define EXPECT_BAD_LIT(lit, want) \
	expect_bad((const uint8_t *)(lit), sizeof(lit) - 1, want, __LINE__)

static void test_bad_thrift(void)
{
	struct tw w = { 0 };
	int i;

	EXPECT_BAD_LIT("", "unexpected end of footer at footer byte 0");
	EXPECT_BAD_LIT("\x15\x80", "truncated varint at footer byte 1");
	EXPECT_BAD_LIT("\x15", "truncated varint at footer byte 1");
	EXPECT_BAD_LIT("\x15\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
		       "overlong varint at footer byte 1");
	EXPECT_BAD_LIT("\x16\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
		       "overlong varint at footer byte 1");
	EXPECT_BAD_LIT("\x15\x80\x80\x80\x80\x20",
		       "varint too large for i32 at footer byte 1");
	/* A 64-bit varint with the top bit set is fine as an i64. */
	EXPECT_BAD_LIT("\x16\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00",
		       "lacks required field version");
	EXPECT_BAD_LIT("\x19\xfc\xff\xff\xff\xff\x0f",
		       "list of 4294967295 elements exceeds the 0 bytes left "
		       "at footer byte 1");
	EXPECT_BAD_LIT("\x19\xfc\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
		       "list of 9223372036854775808 elements");
	EXPECT_BAD_LIT("\x1b\x80\x80\x80\x80\x08\x88",
		       "map of 2147483648 entries exceeds");
	EXPECT_BAD_LIT("\x1b\x01\x08\0\0\0", "bad map types 0/8");
	EXPECT_BAD_LIT("\x1b\x01\xe8\0\0\0", "bad map types 14/8");
	EXPECT_BAD_LIT("\x68\xff\xff\xff\xff\x0f", "negative binary length");
	EXPECT_BAD_LIT("\x68\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		       "negative binary length");
	EXPECT_BAD_LIT("\x68\x05" "abc", "5-byte value exceeds the 3 bytes "
		       "left at footer byte 2");
	EXPECT_BAD_LIT("\x1e", "bad field type 14 at footer byte 0");
	EXPECT_BAD_LIT("\x1f", "bad field type 15");
	EXPECT_BAD_LIT("\x10", "bad field type 0");
	EXPECT_BAD_LIT("\x19\x1e\0\0", "bad list element type 14");
	EXPECT_BAD_LIT("\x05\xfe\xff\x03\x00\x15\x00",
		       "field id overflow at footer byte 5");
	EXPECT_BAD_LIT("\x05\x80\x80\x04\x00", "varint too large for i16");
	EXPECT_BAD_LIT("\x15\x02\x19\x15\x02\x00",
		       "schema is a list of type 5");
	EXPECT_BAD_LIT("\x17\x01\x02\x03", "8-byte value exceeds");
	EXPECT_BAD_LIT("\x1d\x01\x02\x03", "16-byte value exceeds");
	EXPECT_BAD_LIT("\x15\x02\x00\xff", "lacks required field schema");

	/* 10,000 nested structs, lists and maps. */
	for (i = 0; i < 10000; i++)
		tw_byte(&w, 0x1c);
	for (i = 0; i < 10000; i++)
		tw_byte(&w, 0);
	EXPECT_BAD(w.buf, w.len, "nesting deeper than 64");
	w.len = 0;
	tw_byte(&w, 0x19);
	for (i = 0; i < 10000; i++)
		tw_byte(&w, 0x19);
	EXPECT_BAD(w.buf, w.len, "nesting deeper than 64");
	w.len = 0;
	tw_byte(&w, 0x1b);
	for (i = 0; i < 10000; i++) {
		tw_byte(&w, 0x01);
		tw_byte(&w, 0x8b);	/* map<binary, map> */
		tw_byte(&w, 0x00);	/* empty key */
	}
	EXPECT_BAD(w.buf, w.len, "nesting deeper than 64");
	/* 63 levels below FileMetaData are still fine. */
	w.len = 0;
	for (i = 0; i < 63; i++)
		tw_byte(&w, 0x1c);
	for (i = 0; i < 64; i++)
		tw_byte(&w, 0);
	EXPECT_BAD(w.buf, w.len, "lacks required field version");
	free(w.buf);

	{
		static const uint8_t b[1] = { 0 };

		EXPECT_BAD(b, (size_t)PARQUET_FOOTER_MAX + 1,
			   "exceeds the limit");
	}
}

/* Cut-off and mutated versions of a valid footer never crash. */
static void test_mutations(void)
{
	static const struct rg two[] = { { 1, 1, 2 }, { 2, 3, 4 } };
	struct fm f = { schema_basic, NELEM(schema_basic), 1, two, 2, 1000,
			0, 1, 0, 0, 0 };
	struct parquet_info info;
	struct parquet_error err;
	int bad_prefix = 0, odd = 0, rc;
	struct tw w;
	size_t i, n;
	uint8_t *copy;

	build(&w, &f);
	copy = malloc(w.len);
	for (n = 0; n < w.len; n++) {
		memcpy(copy, w.buf, n);
		if (parquet_parse_footer(copy, n, &info, &err) != -EIO ||
		    strcmp(err.reason, "bad_footer") != 0)
			bad_prefix++;
	}
	CHECK_INT(bad_prefix, 0);
	for (i = 0; i < w.len; i++) {
		for (n = 0; n < 256; n++) {
			memcpy(copy, w.buf, w.len);
			copy[i] = (uint8_t)n;
			rc = parquet_parse_footer(copy, w.len, &info, &err);
			if (rc != 0 && (rc != -EIO || !err.reason))
				odd++;
			if (rc == 0 && (err.reason || info.footer_len != w.len))
				odd++;
		}
	}
	CHECK_INT(odd, 0);
	free(copy);
	free(w.buf);
}

/* ---- fd-based validation ---- */

static int memfd_with(const void *p, size_t n)
{
	int fd = memfd_create("test_parquet", MFD_CLOEXEC);

	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
		abort();
	return fd;
}

/* A whole file: magic, 100 bytes of "column data" (`data`, or bytes 0 to
 * 99), footer, length, magic. */
static void make_file_with(struct tw *file, const struct tw *footer,
			   const uint8_t *data)
{
	uint8_t len[4];
	int i;

	memset(file, 0, sizeof(*file));
	tw_raw(file, "PAR1", 4);
	for (i = 0; i < 100; i++)
		tw_byte(file, data ? data[i] : (uint8_t)i);
	tw_raw(file, footer->buf, footer->len);
	for (i = 0; i < 4; i++)
		len[i] = (uint8_t)(footer->len >> (8 * i));
	tw_raw(file, len, 4);
	tw_raw(file, "PAR1", 4);
}

static void make_file(struct tw *file, const struct tw *footer)
{
	make_file_with(file, footer, NULL);
}

static int validate_bytes(const void *p, size_t n, uint64_t size,
			  struct parquet_info *info, struct parquet_error *err)
{
	int fd = memfd_with(p, n), rc;

	rc = parquet_validate_fd(fd, size, info, err, NULL);
	close(fd);
	return rc;
}

#define CHECK_REFUSED(p, n, size, want_reason, want_detail)                  \
	do {                                                                 \
		CHECK_INT(validate_bytes(p, n, size, &info, &err), -EIO);    \
		CHECK_STR(err.reason, want_reason);                          \
		CHECK(strstr(err.detail, want_detail) != NULL);              \
	} while (0)

static void test_fd(void)
{
	static const struct rg two[] = {
		{ 1, T2024, T2024 + 10 }, { 1, T2024 + 5, T2024 + 99 },
	};
	static const char text[] = "symbol,ts,price\nAAPL,1,2\nMSFT,3,4\n";
	struct fm f = { schema_basic, NELEM(schema_basic), 1, two, 2, 77,
			0, 0, 0, 0, 0 };
	struct parquet_info info;
	struct parquet_error err;
	struct tw footer, file;
	uint8_t *out = NULL;
	int fd, p[2];
	size_t n;

	build(&footer, &f);
	make_file(&file, &footer);
	n = file.len;

	fd = memfd_with(file.buf, n);
	CHECK_INT(parquet_validate_fd(fd, n, &info, &err, &out), 0);
	CHECK(err.reason == NULL);
	CHECK_INT(info.rows, 77);
	CHECK_INT(info.footer_len, footer.len);
	CHECK_INT(info.start_ts_us, T2024);
	CHECK_INT(info.end_ts_us, T2024 + 99);
	CHECK(out != NULL && memcmp(out, footer.buf, footer.len) == 0);
	free(out);
	CHECK_INT(parquet_validate_fd(fd, n, NULL, NULL, NULL), 0);
	/* A size larger than the file: the tail read finds its end. */
	CHECK_INT(parquet_validate_fd(fd, n + 100, &info, &err, &out), -EIO);
	CHECK_STR(err.reason, "truncated");
	CHECK(out == NULL);
	close(fd);

	CHECK_REFUSED("", 0, 0, "empty", "empty");
	CHECK_REFUSED(text, sizeof(text) - 1, sizeof(text) - 1, "not_parquet",
		      "no PAR1 magic at start");
	CHECK_REFUSED("PAR1", 4, 4, "not_parquet", "too small");
	CHECK_REFUSED("PAR1\0\0\0\0PAR", 11, 11, "not_parquet", "too small");

	/* Cut in half: no magic at the end. */
	CHECK_REFUSED(file.buf, n / 2, n / 2, "truncated",
		      "no PAR1 magic at end");
	CHECK_REFUSED(file.buf, n - 1, n - 1, "truncated", "no PAR1 magic");

	/* Encrypted footer. */
	memcpy(file.buf + n - 4, "PARE", 4);
	CHECK_REFUSED(file.buf, n, n, "encrypted", "PARE");
	memcpy(file.buf, "PARE", 4);
	CHECK_REFUSED(file.buf, n, n, "encrypted", "PARE");
	memcpy(file.buf, "PAR1", 4);
	memcpy(file.buf + n - 4, "PAR1", 4);

	/* Footer lengths that do not fit. */
	memcpy(file.buf + n - 8, "\x9f\x86\x01\x00", 4);	/* 99999 */
	{
		char want[80];

		snprintf(want, sizeof(want),
			 "footer length 99999 does not fit in %zu bytes "
			 "with the magic at both ends", n);
		CHECK_REFUSED(file.buf, n, n, "bad_footer", want);
	}
	memcpy(file.buf + n - 8, "\0\0\0\0", 4);
	CHECK_REFUSED(file.buf, n, n, "bad_footer", "footer length 0");
	CHECK_REFUSED("PAR1\0\0\0\0PAR1", 12, 12, "bad_footer",
		      "footer length 0");
	CHECK_REFUSED("PAR1\1\0\0\0PAR1", 12, 12, "bad_footer",
		      "footer length 1 does not fit in 12 bytes with the "
		      "magic at both ends");
	CHECK_REFUSED("PAR1\x15\1\0\0\0PAR1", 13, 13, "bad_footer",
		      "truncated varint at footer byte 1");

	/* PAR1 at both ends, garbage in between. */
	{
		static const char junk[] =
			"PAR1this is not thrift\x12\0\0\0PAR1";

		CHECK_REFUSED(junk, sizeof(junk) - 1, sizeof(junk) - 1,
			      "bad_footer", "at footer byte");
	}

	/* A footer length above the limit, in a sparse 70 MiB file. */
	fd = memfd_create("big", MFD_CLOEXEC);
	CHECK(fd >= 0 && ftruncate(fd, 70 << 20) == 0);
	CHECK(pwrite(fd, "PAR1", 4, 0) == 4);
	CHECK(pwrite(fd, "\0\0\x10\x04PAR1", 8, (70 << 20) - 8) == 8);
	CHECK_INT(parquet_validate_fd(fd, 70 << 20, &info, &err, NULL), -EIO);
	CHECK_STR(err.reason, "bad_footer");
	CHECK(strstr(err.detail, "exceeds the limit") != NULL);
	close(fd);

	/* Read errors are not invalid content. */
	CHECK_INT(parquet_validate_fd(-1, 100, &info, &err, NULL), -EBADF);
	CHECK_STR(err.reason, "io");
	CHECK(pipe(p) == 0);
	CHECK_INT(parquet_validate_fd(p[0], 100, &info, &err, NULL), -ESPIPE);
	CHECK_STR(err.reason, "io");
	CHECK(strstr(err.detail, "pread 4 bytes at offset 0") != NULL);
	close(p[0]);
	close(p[1]);
	fd = open("/", O_RDONLY | O_DIRECTORY);
	CHECK_INT(parquet_validate_fd(fd, 100, &info, &err, NULL), -EISDIR);
	CHECK_STR(err.reason, "io");
	close(fd);

	free(file.buf);
	free(footer.buf);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Where each column chunk begins and ends, a dictionary page first or
 * not, and where the footer begins. */
static void test_bounds(void)
{
	static const struct rg two[] = {
		{ 1, T2024, T2024 + 10 }, { 1, T2024 + 5, T2024 + 99 },
	};
	struct fm f = { schema_basic, NELEM(schema_basic), 1, two, 2, 77,
			0, 1, 0, 0, 0 };
	struct tw footer, file;
	uint64_t *b = NULL;
	size_t n = 0, i;
	int fd;

	build(&footer, &f);
	make_file(&file, &footer);
	fd = memfd_with(file.buf, file.len);
	CHECK_INT(parquet_read_bounds(fd, file.len, &b, &n), 0);
	CHECK_INT(n, 2 * 6 + 1);	/* two row groups of three columns */
	if (b && n == 13) {
		qsort(b, n, sizeof(*b), cmp_u64);
		for (i = 0; i < 12; i++)
			CHECK_INT(b[i], 4 + ((i + 1) / 2) * CHUNK_LEN);
		CHECK_INT(b[12], 4 + 100);
	}
	free(b);
	close(fd);
	/* not Parquet: nothing */
	fd = memfd_with("PAR1\0\0\0\0PAR1", 12);
	CHECK_INT(parquet_read_bounds(fd, 12, &b, &n), -EIO);
	CHECK(b == NULL && n == 0);
	close(fd);
	free(footer.buf);
	free(file.buf);
}

/* Each row group gives every column a chunk, and each chunk where its
 * pages lie: else there is nothing to check against the data. */
static void test_chunks(void)
{
	static const struct rg two[] = {
		{ 1, T2024, T2024 + 10 }, { 1, T2024 + 5, T2024 + 99 },
	};
	static const struct rg negative[] = {
		{ 1, T2024, T2024 + 10 }, { 4, 0, 0 },
	};
	static const struct rg rowless[] = {
		{ 5, 0, 0 }, { 1, T2024, T2024 + 10 },
	};
	static const struct {
		int omit, short_by;
		const char *says;
	} bad[] = {
		{ 9, 0, "row group 0 gives no data_page_offset" },
		{ 7, 0, "row group 0 gives no total_compressed_size" },
		{ 3, 0, "column chunk 0 of row group 0 has no metadata" },
		{ 0, 1, "row group 0 has 2 column chunks for 3 columns" },
	};
	struct fm f = { schema_basic, NELEM(schema_basic), 1, two, 2, 77,
			0, 0, 0, 0, 0 };
	struct parquet_error err;
	struct tw footer, file;
	size_t i;
	int fd;

	for (i = 0; i < NELEM(bad); i++) {
		f.chunk_omit = bad[i].omit;
		f.chunks_short = bad[i].short_by;
		build(&footer, &f);
		make_file(&file, &footer);
		fd = memfd_with(file.buf, file.len);
		CHECK_INT(parquet_validate_fd(fd, file.len, NULL, &err, NULL),
			  -EIO);
		CHECK(strstr(err.detail, bad[i].says) != NULL);
		close(fd);
		free(footer.buf);
		free(file.buf);
	}
	/* a row group's count of rows is no less checked than the file's */
	f.chunk_omit = f.chunks_short = 0;
	for (i = 0; i < 2; i++) {
		f.rgs = i == 0 ? negative : rowless;
		build(&footer, &f);
		make_file(&file, &footer);
		fd = memfd_with(file.buf, file.len);
		CHECK_INT(parquet_validate_fd(fd, file.len, NULL, &err, NULL),
			  -EIO);
		CHECK(strstr(err.detail,
			     i == 0 ? "row group 1 has negative num_rows -1"
				    : "row group 0 lacks required field "
				      "num_rows") != NULL);
		close(fd);
		free(footer.buf);
		free(file.buf);
	}
}

struct walked {
	uint64_t off, hlen, payload;
	int compressed;
};

static int note_page(void *arg, uint64_t off, uint64_t hlen,
		     uint64_t payload, int compressed)
{
	struct walked *w = arg;

	while (w->hlen) /* the first free slot */
		w++;
	*w = (struct walked){ off, hlen, payload, compressed };
	return 0;
}

/* The file of `footer` and column chunks `data` does not walk: a chunk
 * has bytes where no page begins. */
static void check_no_page(const struct tw *footer, const uint8_t *data)
{
	struct walked got[8];
	struct parquet_error err;
	struct tw file;
	int fd;

	make_file_with(&file, footer, data);
	fd = memfd_with(file.buf, file.len);
	memset(got, 0, sizeof(got));
	CHECK_INT(parquet_walk_pages(fd, file.len, note_page, got, &err),
		  -EIO);
	CHECK(strstr(err.detail, "no page of its column chunk") != NULL);
	close(fd);
	free(file.buf);
}

/* The pages of each column chunk (put_chunk's: 16 bytes each, a
 * dictionary page first in the odd ones, codec SNAPPY), by their
 * headers; a v2 data page may say its values are not compressed. */
static void test_walk(void)
{
	static const struct rg one[] = { { 1, T2024, T2024 + 10 } };
	static const uint8_t pages[48] = {
		/* chunk 0: DataPageHeaderV2, is_compressed false; 6 bytes */
		0x15, 0x06, 0x15, 0x0c, 0x15, 0x0c, 0x5c, 0x72, 0x00, 0x00,
		1, 2, 3, 4, 5, 6,
		/* chunk 1: a dictionary page and a data page, 1 byte each */
		0x15, 0x04, 0x15, 0x02, 0x15, 0x02, 0x00, 7,
		0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x00, 8,
		/* chunk 2: a data page of 9 bytes */
		0x15, 0x00, 0x15, 0x12, 0x15, 0x12, 0x00,
		1, 2, 3, 4, 5, 6, 7, 8, 9,
	};
	static const struct walked want[] = {
		{ 4, 10, 6, 0 }, { 20, 7, 1, 1 }, { 28, 7, 1, 1 }, { 36, 7, 9, 1 },
	};
	struct fm f = { schema_basic, NELEM(schema_basic), 1, one, 1, 77,
			0, 0, 0, 0, 0 };
	struct walked got[NELEM(want) + 1];
	struct parquet_error err;
	struct tw footer, file;
	uint8_t data[100] = { 0 };
	size_t i;
	int fd;

	memcpy(data, pages, sizeof(pages));
	build(&footer, &f);
	make_file_with(&file, &footer, data);
	fd = memfd_with(file.buf, file.len);
	memset(got, 0, sizeof(got));
	CHECK_INT(parquet_walk_pages(fd, file.len, note_page, got, &err), 0);
	for (i = 0; i < NELEM(want); i++) {
		CHECK_INT(got[i].off, want[i].off);
		CHECK_INT(got[i].hlen, want[i].hlen);
		CHECK_INT(got[i].payload, want[i].payload);
		CHECK_INT(got[i].compressed, want[i].compressed);
	}
	CHECK_INT(got[NELEM(want)].hlen, 0);
	close(fd);
	free(file.buf);
	/* a page past its chunk's end */
	data[5] = 0x0e;
	check_no_page(&footer, data);
	/* the last header of a chunk, read whole at once, that does not
	 * parse after its sizes (a field of no Thrift type where its stop
	 * byte was) is no page either */
	data[5] = 0x0c;
	data[38] = 0x1d;
	check_no_page(&footer, data);
	free(footer.buf);
}

/* What the first bytes of a file being written say before it is done. */
static void test_head(void)
{
	CHECK_INT(parquet_head_refutes((const uint8_t *)"PAR1"), 0);
	/* holes a write out of order has not filled in yet */
	CHECK_INT(parquet_head_refutes((const uint8_t *)"\0\0\0\0"), 0);
	CHECK_INT(parquet_head_refutes((const uint8_t *)"\0\0R1"), 0);
	CHECK_INT(parquet_head_refutes((const uint8_t *)"PA\0\0"), 0);
	CHECK_INT(parquet_head_refutes((const uint8_t *)"SQLi"), 1);
	CHECK_INT(parquet_head_refutes((const uint8_t *)"PARE"), 1);
	CHECK_INT(parquet_head_refutes((const uint8_t *)"\0\0\0\x01"), 1);
}

int main(void)
{
	test_valid();
	test_units();
	test_stats();
	test_schema_shapes();
	test_required();
	test_bad_thrift();
	test_mutations();
	test_fd();
	test_bounds();
	test_chunks();
	test_walk();
	test_head();
	return unit_report();
}
