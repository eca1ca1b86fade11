/*
 * seekable.h - the zstd seekable format, on top of libzstd's plain API.
 *
 * A compressed object (SPEC §6) is a run of independent zstd frames of
 * at most SEEKABLE_FRAME_SIZE logical bytes each (cut where its reads
 * begin), then one skippable frame holding the seek table, as zstd's
 * contrib/seekable_format specifies:
 *
 *	magic 0x184D2A5E | frame size | per frame: compressed size,
 *	decompressed size (u32 LE; a u32 checksum too when the descriptor
 *	says so) | frames (u32) | descriptor (u8) | magic 0x8F92EAB1
 *
 * `zstd -d` skips the table and decompresses the frames in turn, so a
 * stored object is a plain .zst file too.  A read at any offset
 * decompresses only the frames it touches (frame_cache.c keeps them).
 * Every parser here takes its input from the store as hostile: a table
 * that does not add up to the object is -EIO with a reason, never a read
 * out of bounds.
 */
#ifndef FEATUREFS_SEEKABLE_H
#define FEATUREFS_SEEKABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zstd.h>

#include "fdio.h"

#define SEEKABLE_FRAME_SIZE (1u << 20)	/* logical bytes per frame, at most */
#define SEEKABLE_FRAME_MIN (64u << 10)	/* ... at least, where a plan can */
#define SEEKABLE_FRAME_TAIL (1u << 10)	/* ... in the last frame, at least */
#define SEEKABLE_PAGE 4096u		/* where a planned frame begins */
#define SEEKABLE_FOOTER_SIZE 9
#define SEEKABLE_SKIPPABLE_HEADER 8
#define SEEKABLE_MAGIC 0x8F92EAB1u
#define SEEKABLE_SKIPPABLE_MAGIC 0x184D2A5Eu
#define SEEKABLE_MAX_FRAMES 0x8000000u

/* Where each frame starts, compressed and logical. */
struct seek_table {
	uint32_t frames;
	uint64_t *coff;	/* frames + 1: coff[i] is frame i's first stored
			 * byte, coff[frames] where the table starts */
	uint64_t *doff;	/* frames + 1: doff[frames] is the logical size */
};

/*
 * Parse the seek table of a `stored_size`-byte object whose last `len`
 * bytes are `tail`.  0 and `t` filled; -EAGAIN with *need set when the
 * table is longer than `tail` (call again with the last *need bytes);
 * -EIO with *why set when the bytes are not a seek table that covers the
 * whole object; -ENOMEM.
 */
int seekable_table_parse(const uint8_t *tail, size_t len, uint64_t stored_size,
			 struct seek_table *t, size_t *need, const char **why);

/* Read and parse the seek table of the object open at `fd`: 0, -EIO with
 * *why set, or another negative errno when the object cannot be read. */
int seekable_table_read(int fd, uint64_t stored_size, struct seek_table *t,
			const char **why);

void seekable_table_free(struct seek_table *t);

/* The frame holding logical offset `off` (< t->doff[t->frames]). */
uint32_t seekable_frame_of(const struct seek_table *t, uint64_t off);

/* What decompressing a frame needs, kept from frame to frame: zstd's
 * context and a buffer for the compressed bytes (a fresh one would cost
 * its page faults every time). */
struct seekable_decoder {
	ZSTD_DCtx *dctx;
	void *src;	/* ZSTD_compressBound(SEEKABLE_FRAME_SIZE) bytes */
};

/* NULL when out of memory. */
struct seekable_decoder *seekable_decoder_new(void);
void seekable_decoder_free(struct seekable_decoder *d);

/*
 * Decompress frame `i` of the object at `fd` into `dst`, which holds
 * t->doff[i + 1] - t->doff[i] bytes.  0; -EIO with *why set when the frame
 * is corrupt (zstd's checksum or the size the table gives); another
 * negative errno when it cannot be read.
 */
int seekable_frame_read(int fd, const struct seek_table *t, uint32_t i,
			struct seekable_decoder *d, void *dst,
			const char **why);

/* Where each frame of an object to compress ends, in logical bytes. */
struct seekable_plan {
	uint32_t frames;
	uint64_t *end;		/* frames of them, ascending; the last is the
				 * object's size */
};

/*
 * Plan the frames of `size` logical bytes so that a frame begins where
 * a reader's reads do, at each offset in `cuts` (sorted in place; any
 * values), such as a Parquet file's column chunks and footer (SPEC §6:
 * frames sized to the read unit).  A frame begins on the page of its cut
 * (SEEKABLE_PAGE): the kernel reads a mount's files in whole pages.
 * Frames hold at most SEEKABLE_FRAME_SIZE bytes: a longer stretch is cut
 * in nearly equal parts.  A stretch between cuts shorter than
 * SEEKABLE_FRAME_MIN joins the frame before it (the one after it when
 * that would be too long), and the last frame holds at least
 * SEEKABLE_FRAME_TAIL bytes.  With no cuts, the whole is cut in nearly
 * equal parts.  0, -ENOMEM or -EFBIG; free with seekable_plan_free().
 */
int seekable_plan(uint64_t size, uint64_t *cuts, size_t ncuts,
		  struct seekable_plan *plan);
void seekable_plan_free(struct seekable_plan *plan);

/*
 * Compress the logical bytes at the start of `in`, in the frames `plan`
 * gives, into `out` (written from offset 0) at `level`, each frame with
 * zstd's content checksum, then the seek table; up to `threads` threads
 * (the caller's included) compress frames at once.  0 and *stored_size
 * set, or a negative errno (-ENOSPC from a full store).
 */
int seekable_compress(int in, const struct seekable_plan *plan, int out,
		      int level, unsigned threads, uint64_t *stored_size);

/*
 * A compressed object read whole by a check (fsck, adoption of an object
 * without a row): its logical bytes decompressed a frame at a time on
 * demand and kept nowhere else, so that an object however large it says
 * it is takes no room in the store.  Reads in order decompress each
 * frame once.
 */
struct seekable_reader {
	int fd;			/* the caller's */
	struct seek_table table;
	struct seekable_decoder *d;
	uint8_t *frame;		/* SEEKABLE_FRAME_SIZE bytes: frame `cur` */
	uint32_t cur;		/* UINT32_MAX: none */
	const char *why;	/* why a read failed with -EIO */
};

/*
 * Open the object at `fd` (`stored_size` bytes) for reading.  When it is
 * in the seekable format (a zstd frame first, the seek table last): 1 and
 * *out set.  0 when it is not compressed (*out NULL).  -EIO with *why set
 * when its seek table is corrupt; another negative errno.
 */
int seekable_reader_open(int fd, uint64_t stored_size,
			 struct seekable_reader **out, const char **why);
/* Its logical size, as its seek table gives it. */
uint64_t seekable_reader_size(const struct seekable_reader *r);
/* Decompress every frame: 0; -EIO with r->why set at the first corrupt
 * one; another negative errno. */
int seekable_reader_check(struct seekable_reader *r);
/* Its logical bytes as a byte source (fdio.h); a read of a corrupt frame
 * fails with -EIO and sets r->why. */
struct byte_source seekable_reader_source(struct seekable_reader *r);
void seekable_reader_close(struct seekable_reader *r);

/* A libzstd error code as an errno. */
int zstd_to_errno(size_t code);

#endif
