/*
 * parquet.h - validation of a Parquet file by its footer.
 *
 * An entry is published only if its bytes look like a complete Parquet
 * file: "PAR1" at both ends, a footer length that fits, and a Thrift
 * (compact protocol) FileMetaData that parses.  The parser is ours, bounded
 * and allocation-free, so hostile input can cost at most the footer's size.
 */
#ifndef FEATUREFS_PARQUET_H
#define FEATUREFS_PARQUET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct byte_source;

/* Largest footer we agree to read; a bigger declared length is refused. */
#define PARQUET_FOOTER_MAX (64u << 20)

/* Most column chunk bounds parquet_read_bounds() gives; more are dropped. */
#define PARQUET_BOUNDS_MAX (1u << 20)

/* "PAR1" + 4-byte footer length + "PAR1": the smallest possible file. */
#define PARQUET_MIN_SIZE 12

struct parquet_info {
	int64_t rows;		/* FileMetaData.num_rows */
	int64_t row_groups;	/* number of row groups */
	int64_t columns;	/* number of leaf columns in the schema */
	uint32_t footer_len;	/* length of the Thrift FileMetaData */
	int has_ts;		/* 1 when start_ts/end_ts below are known */
	int64_t start_ts_us;	/* min of the first timestamp column, µs since epoch */
	int64_t end_ts_us;	/* max of the first timestamp column, µs since epoch */
};

/*
 * Why a file was refused.  `reason` is a short static label usable as a
 * metric label ("empty", "not_parquet", "truncated", "bad_footer",
 * "encrypted", "io"); `detail` is a sentence for the log.
 */
struct parquet_error {
	const char *reason;
	char detail[160];
};

/* Whether the -EIO that filled `err` is the bytes' fault, not a read's
 * that failed (or an allocation's): only then is the file invalid. */
static inline int parquet_error_is_content(const struct parquet_error *err)
{
	return err->reason && strcmp(err->reason, "io") != 0;
}

/*
 * Parse a serialized FileMetaData (the `len` bytes that sit before the
 * trailing length and magic).  Returns 0 and fills `info`, or -EIO with
 * `err` filled when the bytes are not a valid FileMetaData.
 */
int parquet_parse_footer(const uint8_t *buf, size_t len,
			 struct parquet_info *info, struct parquet_error *err);

/*
 * Whether `head`, the first 4 bytes of a file still being written, rule
 * it out as a file featurefs publishes, whatever comes later: a byte
 * that is not the leading "PAR1"'s, nor a zero, which may be a hole
 * that a write out of order still fills in.
 */
int parquet_head_refutes(const uint8_t head[4]);

/*
 * Validate the file open on `fd` whose size is `size`: magic at both ends,
 * footer length, footer parse.  Reads with pread(2) only (the descriptor's
 * offset is not used).  Returns 0, -EIO for invalid content (`err` says
 * why), or another negative errno when reading failed (err->reason "io").
 * When `footer_out` is not NULL, the footer bytes are returned in a
 * malloc()ed buffer of length info->footer_len that the caller frees.
 */
int parquet_validate_fd(int fd, uint64_t size, struct parquet_info *info,
			struct parquet_error *err, uint8_t **footer_out);
/* The same, of the bytes of `src` (fdio.h): a compressed object's. */
int parquet_validate(const struct byte_source *src, uint64_t size,
		     struct parquet_info *info, struct parquet_error *err,
		     uint8_t **footer_out);

/*
 * Where the reads of a Parquet reader begin and end in the valid Parquet
 * file at `fd` (`size` bytes): each column chunk's first byte and the byte
 * after its last, as its footer says, and where the footer begins.  *out
 * is malloc()ed, *n offsets long, in no order; offsets are the footer's
 * word, not checked against `size`.  0; -EIO when the file is not valid
 * Parquet; another negative errno.
 */
int parquet_read_bounds(int fd, uint64_t size, uint64_t **out, size_t *n);

/* A page of a column chunk: its header's `hlen` bytes at `off`, then its
 * `payload` bytes, `compressed` when its chunk's codec compresses its
 * values.  Nonzero stops the walk, which returns it. */
typedef int parquet_page_fn(void *arg, uint64_t off, uint64_t hlen,
			    uint64_t payload, int compressed);

/*
 * Walk every page of every column chunk of the valid Parquet file at `fd`
 * (`size` bytes), from each chunk's first page by the sizes the headers
 * give, calling `fn` for each.  -EIO (`err` says why) when the file is not
 * valid Parquet, or a chunk's pages do not fill it: a header that does not
 * parse, a page past its chunk's end; another negative errno when a read
 * failed; or what `fn` returned.
 */
int parquet_walk_pages(int fd, uint64_t size, parquet_page_fn *fn, void *arg,
		       struct parquet_error *err);

#endif
