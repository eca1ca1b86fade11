/*
 * test_seekable.c - the zstd seekable format and the frame cache.
 *
 * Frame plans (where frames begin, for column chunks at any offsets),
 * round trips at the sizes where frames begin and end (0 and 1 byte,
 * one byte either side of a frame, whole frames, 100 MiB), thousands of
 * random reads against the original through a cache smaller than the
 * object, and the damage a store can hold: a corrupt frame is -EIO for
 * reads that touch it only, a truncated or corrupt seek table is -EIO at
 * open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame_cache.h"
#include "seekable.h"
#include "unit.h"

#define MIB (1u << 20)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Compressible but not trivial: runs of a few random bytes. */
static void fill(unsigned char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)next_random();
		size_t run = 1 + next_random() % 16;

		while (run-- && i < len)
			buf[i++] = c;
	}
}

static int memfd_with(const void *buf, size_t len)
{
	int fd = memfd_create("test", 0);

	if (fd < 0 || (len && pwrite(fd, buf, len, 0) != (ssize_t)len))
		abort();
	return fd;
}

static uint64_t fd_size(int fd)
{
	return (uint64_t)lseek(fd, 0, SEEK_END);
}

/* Compress `len` bytes at the start of `in` into `out`, in frames that
 * begin at `cuts` (none: equal frames), on `threads` threads. */
static int compress_cut(int in, size_t len, uint64_t *cuts, size_t ncuts,
			int out, unsigned threads, uint64_t *stored)
{
	struct seekable_plan plan;
	int rc;

	rc = seekable_plan(len, cuts, ncuts, &plan);
	if (rc == 0)
		rc = seekable_compress(in, &plan, out, 3, threads, stored);
	seekable_plan_free(&plan);
	return rc;
}

/* Compress `len` bytes of `data` into a new memfd, frames cut at `cuts`. */
static int compressed_cut(const unsigned char *data, size_t len,
			  uint64_t *cuts, size_t ncuts, uint64_t *stored)
{
	int in = memfd_with(data, len), out = memfd_create("z", 0);

	/* one thread for small files, three for big ones: same bytes */
	CHECK_INT(compress_cut(in, len, cuts, ncuts, out,
			       len > 2 * MIB ? 3 : 1, stored), 0);
	CHECK_INT(fd_size(out), *stored);
	close(in);
	return out;
}

static int compressed(const unsigned char *data, size_t len, uint64_t *stored)
{
	return compressed_cut(data, len, NULL, 0, stored);
}

/* Whether `plan` is a plan for `size` bytes: frames in order, each
 * beginning on a page, none over SEEKABLE_FRAME_SIZE, all but the last
 * SEEKABLE_FRAME_MIN or more. */
static int plan_valid(const struct seekable_plan *plan, uint64_t size)
{
	uint64_t start = 0, len = 0;
	uint32_t i;

	if (size == 0)
		return plan->frames == 0;
	for (i = 0; i < plan->frames; i++) {
		len = plan->end[i] - start;
		if (plan->end[i] <= start || len > SEEKABLE_FRAME_SIZE ||
		    start % SEEKABLE_PAGE ||
		    (i + 1 < plan->frames && len < SEEKABLE_FRAME_MIN))
			return 0;
		start = plan->end[i];
	}
	return plan->frames > 0 && start == size &&
	       (len >= SEEKABLE_FRAME_TAIL || size < SEEKABLE_FRAME_TAIL);
}

/* Whether a frame of `plan` begins at `off`. */
static int plan_begins(const struct seekable_plan *plan, uint64_t off)
{
	uint32_t i;

	for (i = 0; i < plan->frames; i++)
		if ((i ? plan->end[i - 1] : 0) == off)
			return 1;
	return 0;
}

/* Frames cut where a Parquet file's column chunks and footer begin,
 * whatever offsets its footer gives. */
static void plans(void)
{
	const uint64_t K = 1024, size = 10 * MIB;
	uint64_t cuts[] = {
		4, 100 * K, 3 * MIB / 2, 3 * MIB / 2, 5 * MIB, 20 * MIB, 0,
		size - 300, UINT64_MAX,
	};
	uint64_t fuzz[64];
	struct seekable_plan plan;
	int round, bad = 0;
	size_t i, n;

	/* no cuts: the fewest frames, of equal length */
	CHECK_INT(seekable_plan(0, NULL, 0, &plan), 0);
	CHECK_INT(plan.frames, 0);
	seekable_plan_free(&plan);
	CHECK_INT(seekable_plan(3 * MIB + 1, NULL, 0, &plan), 0);
	CHECK_INT(plan.frames, 4);
	CHECK(plan_valid(&plan, 3 * MIB + 1));
	CHECK_INT(plan.end[0], 3 * MIB / 4);
	seekable_plan_free(&plan);

	CHECK_INT(seekable_plan(size, cuts, NELEM(cuts), &plan), 0);
	CHECK(plan_valid(&plan, size));
	CHECK(plan_begins(&plan, 100 * K));
	CHECK(plan_begins(&plan, 3 * MIB / 2));
	CHECK(plan_begins(&plan, 5 * MIB));
	CHECK(!plan_begins(&plan, 4)); /* too close to the start */
	/* a footer shorter than a KiB is in a frame of a KiB or more, on
	 * the page where that KiB begins */
	CHECK(plan_begins(&plan, size - 4 * K));
	CHECK_INT(plan.end[plan.frames - 1] - plan.end[plan.frames - 2], 4 * K);
	seekable_plan_free(&plan);

	/* the page of a cut SEEKABLE_FRAME_MIN or more after the one before
	 * and before the one after (or the ends) begins a frame */
	for (round = 0; round < 2000; round++) {
		uint64_t len = next_random() % (round % 2 ? 64 * K : 20 * MIB);
		uint64_t page[NELEM(fuzz) + 2];
		size_t np = 0;

		n = 1 + next_random() % NELEM(fuzz);
		for (i = 0; i < n; i++)
			fuzz[i] = round % 3 ? next_random() % (len + 2)
					    : next_random();
		if (seekable_plan(len, fuzz, n, &plan) < 0 ||
		    !plan_valid(&plan, len))
			bad++;
		page[np++] = 0;
		for (i = 0; i < n && fuzz[i] < len; i++) {
			uint64_t c = fuzz[i] + K <= len ? fuzz[i]
				     : len > K ? len - K : 0;

			c = c / SEEKABLE_PAGE * SEEKABLE_PAGE;
			if (c > page[np - 1])
				page[np++] = c;
		}
		page[np++] = len;
		for (i = 1; i + 1 < np; i++)
			if (page[i] - page[i - 1] >= SEEKABLE_FRAME_MIN &&
			    page[i + 1] - page[i] >= SEEKABLE_FRAME_MIN &&
			    !plan_begins(&plan, page[i]))
				bad++;
		seekable_plan_free(&plan);
	}
	CHECK_INT(bad, 0);
}

static void round_trip(const unsigned char *data, size_t len)
{
	struct frame_cache *fc;
	struct zobject *z = NULL;
	struct seekable_reader *zr = NULL;
	const char *why = NULL;
	unsigned char *back = malloc(len + 1);
	uint64_t stored;
	int fd;

	fd = compressed(data, len, &stored);
	CHECK_INT(zobject_open(fd, stored, len, &z, &why), 0);
	if (!z) {
		free(back);
		close(fd);
		return;
	}
	CHECK_INT(z->table.frames, (len + MIB - 1) / MIB);
	CHECK_INT(frame_cache_new(4 * MIB, &fc), 0);
	CHECK_INT(frame_cache_pread(fc, z, back, len + 1, 0, &why), len);
	CHECK(memcmp(back, data, len) == 0);
	CHECK_INT(frame_cache_pread(fc, z, back, 10, len, &why), 0);
	/* what fsck and adoption read: the whole logical file, in any
	 * order, without writing it anywhere */
	CHECK_INT(seekable_reader_open(fd, stored, &zr, &why), 1);
	if (zr) {
		struct byte_source src = seekable_reader_source(zr);

		CHECK_INT(seekable_reader_size(zr), len);
		CHECK_INT(seekable_reader_check(zr), 0);
		memset(back, 0, len + 1);
		CHECK_INT(src.pread(src.arg, back, len + 1, 0), len);
		CHECK(memcmp(back, data, len) == 0);
		if (len > 10) {
			CHECK_INT(src.pread(src.arg, back, 10, len - 10), 10);
			CHECK(memcmp(back, data + len - 10, 10) == 0);
			CHECK_INT(src.pread(src.arg, back, 5, 3), 5);
			CHECK(memcmp(back, data + 3, 5) == 0);
		}
		CHECK_INT(src.pread(src.arg, back, 10, len), 0);
		seekable_reader_close(zr);
	}
	frame_cache_free(fc);
	zobject_close(z);
	close(fd);
	free(back);
}

static void random_reads(const unsigned char *data, size_t len)
{
	struct frame_cache_figures fig;
	struct frame_cache *fc;
	struct zobject *z = NULL;
	const char *why = NULL;
	unsigned char *buf = malloc(3 * MIB);
	uint64_t stored;
	int fd, i, bad = 0;

	fd = compressed(data, len, &stored);
	CHECK_INT(zobject_open(fd, stored, len, &z, &why), 0);
	CHECK_INT(frame_cache_new(3 * MIB, &fc), 0); /* smaller than data */
	for (i = 0; z && i < 4000; i++) {
		uint64_t off = next_random() % (len + 100);
		size_t n = 1 + next_random() % (i % 10 ? 65536 : 3 * MIB);
		size_t want = off >= len ? 0 : len - off < n ? len - off : n;
		ssize_t got = frame_cache_pread(fc, z, buf, n, off, &why);

		if (got != (ssize_t)want || memcmp(buf, data + off, want) != 0)
			bad++;
	}
	CHECK_INT(bad, 0);
	/* pinned in place, as a reply is written from them */
	for (i = 0; z && i < 200; i++) {
		uint64_t off = next_random() % (len + 100);
		size_t n = 1 + next_random() % (3 * MIB), got = 0;
		size_t want = off >= len ? 0 : len - off < n ? len - off : n;
		struct frame_span span;
		ssize_t rc = frame_cache_pin(fc, z, n, off, &span, &why);
		int k;

		for (k = 0; k < span.n; k++) {
			if (memcmp(span.iov[k].iov_base, data + off + got,
				   span.iov[k].iov_len) != 0)
				bad++;
			got += span.iov[k].iov_len;
		}
		if (rc != (ssize_t)want || got != want)
			bad++;
		frame_cache_unpin(fc, &span);
	}
	CHECK_INT(bad, 0);
	frame_cache_figures(fc, &fig);
	CHECK(fig.bytes <= 3 * MIB);
	CHECK(fig.hits > 0 && fig.misses > 0 && fig.evictions > 0);
	frame_cache_free(fc);
	zobject_close(z);
	close(fd);
	free(buf);
}

/* Frames cut at column chunks of 64 KiB and more, on pages: a chunk
 * read is one frame; a read over more frames than a span pins is -E2BIG to pin and
 * whole to pread. */
static void cut_reads(const unsigned char *data)
{
	size_t len = 6 * MIB, got;
	uint64_t cuts[64], stored, off = 0;
	struct frame_cache_figures fig;
	struct frame_span span;
	struct frame_cache *fc;
	struct zobject *z = NULL;
	const char *why;
	unsigned char *buf = malloc(len);
	size_t n = 0, i;
	int fd, bad = 0;

	for (; n < NELEM(cuts) && off + 2 * SEEKABLE_FRAME_MIN < len; n++) {
		cuts[n] = off;
		off += SEEKABLE_FRAME_MIN + next_random() % 20 * SEEKABLE_PAGE;
	}
	fd = compressed_cut(data, len, cuts, n, &stored);
	CHECK_INT(zobject_open(fd, stored, len, &z, &why), 0);
	CHECK_INT(frame_cache_new(64 * MIB, &fc), 0);
	for (i = 1; z && i + 1 < n; i++) {
		size_t chunk = (size_t)(cuts[i + 1] - cuts[i]);
		ssize_t rc = frame_cache_pin(fc, z, chunk, cuts[i], &span,
					     &why);

		if (rc != (ssize_t)chunk || span.n != 1 ||
		    memcmp(span.iov[0].iov_base, data + cuts[i], chunk) != 0)
			bad++;
		frame_cache_unpin(fc, &span);
	}
	CHECK_INT(bad, 0);
	frame_cache_figures(fc, &fig);
	CHECK_INT(fig.misses, n - 2);
	if (z) {
		CHECK_INT(frame_cache_pin(fc, z, len, 0, &span, &why), -E2BIG);
		frame_cache_unpin(fc, &span);
		got = (size_t)frame_cache_pread(fc, z, buf, len, 0, &why);
		CHECK_INT(got, len);
		CHECK(memcmp(buf, data, len) == 0);
	}
	frame_cache_free(fc);
	zobject_close(z);
	close(fd);
	free(buf);
}

struct reader_arg {
	struct frame_cache *fc;
	struct zobject *z;
	const unsigned char *data;
	size_t len;
	unsigned seed;
	int bad;
};

/* One of several threads reading the same frames at once. */
static void *reader(void *p)
{
	struct reader_arg *a = p;
	unsigned char *buf = malloc(256 * 1024);
	const char *why;
	int i;

	for (i = 0; i < 400; i++) {
		uint64_t off = rand_r(&a->seed) % a->len;
		size_t n = 1 + (size_t)rand_r(&a->seed) % (256 * 1024);
		size_t want = a->len - off < n ? a->len - off : n;

		if (frame_cache_pread(a->fc, a->z, buf, n, off, &why) !=
			    (ssize_t)want ||
		    memcmp(buf, a->data + off, want) != 0)
			a->bad++;
	}
	free(buf);
	return NULL;
}

/* Four readers over a cache that holds two frames of eight: each frame
 * decompressed is either read from the cache or decompressed again after
 * its eviction, never twice at once. */
static void concurrent_reads(const unsigned char *data)
{
	struct reader_arg a[4];
	pthread_t t[4];
	struct frame_cache *fc;
	struct zobject *z = NULL;
	const char *why;
	uint64_t stored;
	int fd, i, bad = 0;

	fd = compressed(data, 8 * MIB, &stored);
	CHECK_INT(zobject_open(fd, stored, 8 * MIB, &z, &why), 0);
	CHECK_INT(frame_cache_new(2 * MIB, &fc), 0);
	for (i = 0; z && i < 4; i++) {
		a[i] = (struct reader_arg){ fc, z, data, 8 * MIB, i + 1, 0 };
		pthread_create(&t[i], NULL, reader, &a[i]);
	}
	for (i = 0; z && i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += a[i].bad;
	}
	CHECK_INT(bad, 0);
	frame_cache_free(fc);
	zobject_close(z);
	close(fd);
}

/* Several threads write the same object as one; a source shorter than
 * it claims fails them all, whichever thread meets the end. */
static void parallel_compress(const unsigned char *data)
{
	size_t len = 9 * MIB + 333;
	int in = memfd_with(data, len), one = memfd_create("1", 0);
	int four = memfd_create("4", 0);
	uint64_t s1 = 0, s4 = 0;
	unsigned char *a = malloc(len), *b = malloc(len);

	CHECK_INT(compress_cut(in, len, NULL, 0, one, 1, &s1), 0);
	CHECK_INT(compress_cut(in, len, NULL, 0, four, 4, &s4), 0);
	CHECK_INT(s4, s1);
	CHECK(s1 > 0 && s1 <= len);
	CHECK_INT(pread(one, a, s1, 0), s1);
	CHECK_INT(pread(four, b, s4, 0), s4);
	CHECK(memcmp(a, b, s1) == 0);
	CHECK_INT(compress_cut(in, len + 3 * MIB, NULL, 0, four, 4, &s4), -EIO);
	CHECK_INT(compress_cut(in, len, NULL, 0, four, 64, &s4), 0);
	close(in);
	close(one);
	close(four);
	free(a);
	free(b);
}

/* Frames decompressed ahead so far. */
static uint64_t frames_ahead(struct frame_cache *fc)
{
	struct frame_cache_figures fig;

	frame_cache_figures(fc, &fig);
	return fig.ahead;
}

/* A sequential reader with two threads reading ahead of it once it has
 * read 4 MiB in order: each frame is decompressed once, by the reader or
 * ahead of it, and an object may be closed while frames of it wait in
 * the queue. */
static void read_ahead(const unsigned char *data)
{
	const size_t piece = 128 * 1024;
	struct frame_cache_figures fig;
	struct frame_cache *fc;
	struct zobject *z = NULL;
	const char *why;
	unsigned char *buf = malloc(piece);
	uint64_t stored, off;
	int fd, i, bad = 0;

	CHECK_INT(frame_cache_new(4 * MIB, &fc), 0);
	CHECK_INT(frame_cache_read_ahead(fc, 2), 0); /* too small a budget */
	frame_cache_free(fc);
	CHECK_INT(frame_cache_new(16 * MIB, &fc), 0);
	CHECK_INT(frame_cache_read_ahead(fc, 2), 2);

	fd = compressed(data, 8 * MIB, &stored);
	CHECK_INT(zobject_open(fd, stored, 8 * MIB, &z, &why), 0);
	close(fd); /* the object keeps a descriptor of its own */
	for (off = 0; z && off < 8 * MIB; off += piece) {
		if (frame_cache_pread(fc, z, buf, piece, off, &why) !=
			    (ssize_t)piece ||
		    memcmp(buf, data + off, piece) != 0)
			bad++;
		/* nothing is read ahead of a reader until it has read
		 * 4 MiB in order; the read that ends them (in frame 3) asks
		 * for frames 4 and 5, which come without any other read (not
		 * a timing: a wait, bounded) */
		if (off + piece < 4 * MIB && frames_ahead(fc) != 0)
			bad++;
		for (i = 0; off + piece == 4 * MIB && frames_ahead(fc) < 2 &&
			    i < 3000;
		     i++)
			usleep(10000);
	}
	CHECK_INT(bad, 0);
	zobject_close(z);
	frame_cache_figures(fc, &fig);
	CHECK(fig.ahead >= 2);
	CHECK_INT(fig.misses + fig.ahead, 8);

	/* closed, and the cache freed, while frames are still queued */
	fd = compressed(data, 8 * MIB, &stored);
	z = NULL;
	CHECK_INT(zobject_open(fd, stored, 8 * MIB, &z, &why), 0);
	close(fd);
	if (z)
		CHECK_INT(frame_cache_pread(fc, z, buf, 4096, 0, &why), 4096);
	zobject_close(z);
	frame_cache_free(fc);
	free(buf);
}

/* Frames read whole make way first: a sequential reader of an 8 MiB
 * object cycles through two buffers, and the frame another reader has
 * read half of stays, under a budget that would hold them all. */
static void read_whole_frames(const unsigned char *data)
{
	const size_t piece = 128 * 1024;
	struct frame_cache_figures fig;
	struct frame_cache *fc;
	struct zobject *a = NULL, *b = NULL;
	const char *why;
	unsigned char *buf = malloc(piece);
	uint64_t stored, off;
	int fd, bad = 0;

	CHECK_INT(frame_cache_new(16 * MIB, &fc), 0);
	fd = compressed(data, 8 * MIB, &stored);
	CHECK_INT(zobject_open(fd, stored, 8 * MIB, &a, &why), 0);
	close(fd);
	fd = compressed(data + 8 * MIB, 8 * MIB, &stored);
	CHECK_INT(zobject_open(fd, stored, 8 * MIB, &b, &why), 0);
	close(fd);
	if (!a || !b)
		goto out;
	CHECK_INT(frame_cache_pread(fc, a, buf, piece, 0, &why), piece);
	for (off = 0; off < 8 * MIB; off += piece)
		if (frame_cache_pread(fc, b, buf, piece, off, &why) !=
			    (ssize_t)piece ||
		    memcmp(buf, data + 8 * MIB + off, piece) != 0)
			bad++;
	CHECK_INT(bad, 0);
	frame_cache_figures(fc, &fig);
	/* each of b's frames but the last gave its buffer to the next */
	CHECK_INT(fig.misses, 9);
	CHECK_INT(fig.evictions, 7);
	CHECK_INT(fig.bytes, 2 * MIB);
	/* a's frame is still there, and the rest of it comes from memory */
	CHECK_INT(frame_cache_pread(fc, a, buf, piece, piece, &why), piece);
	CHECK(memcmp(buf, data + piece, piece) == 0);
	frame_cache_figures(fc, &fig);
	CHECK_INT(fig.misses, 9);
out:
	zobject_close(a);
	zobject_close(b);
	frame_cache_free(fc);
	free(buf);
}

/* Damage: a flipped byte inside frame 1 of 3, then a cut-off table. */
static void corruption(const unsigned char *data)
{
	size_t len = 3 * MIB;
	struct frame_cache *fc;
	struct zobject *z = NULL;
	struct seekable_reader *zr = NULL;
	const char *why = NULL;
	unsigned char *buf = malloc(len), byte;
	uint64_t stored, mid;
	int fd;

	fd = compressed(data, len, &stored);
	CHECK_INT(zobject_open(fd, stored, len, &z, &why), 0);
	CHECK_INT(frame_cache_new(0, &fc), 0); /* every read decompresses */
	mid = (z->table.coff[1] + z->table.coff[2]) / 2;
	CHECK_INT(pread(fd, &byte, 1, (off_t)mid), 1);
	byte ^= 0x55;
	CHECK_INT(pwrite(fd, &byte, 1, (off_t)mid), 1);
	CHECK_INT(frame_cache_pread(fc, z, buf, 4096, 10, &why), 4096);
	CHECK(memcmp(buf, data + 10, 4096) == 0);
	CHECK_INT(frame_cache_pread(fc, z, buf, 4096, 2 * MIB + 5, &why), 4096);
	why = NULL;
	CHECK_INT(frame_cache_pread(fc, z, buf, 4096, MIB + 7, &why), -EIO);
	CHECK(why != NULL);
	CHECK_INT(frame_cache_pread(fc, z, buf, len, 0, &why), -EIO);
	CHECK_INT(seekable_reader_open(fd, stored, &zr, &why), 1);
	if (zr) {
		struct byte_source src = seekable_reader_source(zr);

		CHECK_INT(seekable_reader_check(zr), -EIO);
		CHECK(zr->why != NULL);
		zr->why = NULL;
		CHECK_INT(src.pread(src.arg, buf, 4096, 2 * MIB + 5), 4096);
		CHECK(memcmp(buf, data + 2 * MIB + 5, 4096) == 0);
		CHECK_INT(src.pread(src.arg, buf, 4096, MIB + 7), -EIO);
		CHECK(zr->why != NULL);
		seekable_reader_close(zr);
	}
	zobject_close(z);
	z = NULL;

	/* a truncated table, and one whose magic number is gone */
	CHECK_INT(ftruncate(fd, (off_t)stored - 5), 0);
	CHECK_INT(zobject_open(fd, stored - 5, len, &z, &why), -EIO);
	CHECK_INT(zobject_open(fd, stored, len, &z, &why), -EIO);
	CHECK(z == NULL);
	close(fd);
	fd = compressed(data, len, &stored);
	byte = 0;
	CHECK_INT(pwrite(fd, &byte, 1, (off_t)stored - 1), 1);
	why = NULL;
	CHECK_INT(zobject_open(fd, stored, len, &z, &why), -EIO);
	CHECK(why && strstr(why, "magic"));
	/* the logical size the manifest gives must be the table's */
	close(fd);
	fd = compressed(data, len, &stored);
	CHECK_INT(zobject_open(fd, stored, len - 1, &z, &why), -EIO);
	CHECK_INT(zobject_open(fd, stored + 1, len, &z, &why), -EIO);
	close(fd);
	frame_cache_free(fc);
	free(buf);
}

/* Seek tables built by hand: what the parser must refuse. */
static void hostile_tables(void)
{
	unsigned char t[64];
	struct seek_table st;
	const char *why;
	size_t need;

	/* one frame of 10 bytes, table right after it: 8 + 8 + 9 bytes */
	memset(t, 0, sizeof(t));
	t[0] = 0x5e, t[1] = 0x2a, t[2] = 0x4d, t[3] = 0x18; /* skippable */
	t[4] = 17;				/* 8 + 9 */
	t[8] = 10;				/* compressed */
	t[12] = 20;				/* logical */
	t[16] = 1;				/* frames */
	t[21] = 0xb1, t[22] = 0xea, t[23] = 0x92, t[24] = 0x8f;
	CHECK_INT(seekable_table_parse(t, 25, 35, &st, &need, &why), 0);
	CHECK_INT(st.frames, 1);
	CHECK_INT(st.doff[1], 20);
	seekable_table_free(&st);
	/* frames that do not fill the object, or overrun it */
	CHECK_INT(seekable_table_parse(t, 25, 36, &st, &need, &why), -EIO);
	CHECK_INT(seekable_table_parse(t, 25, 34, &st, &need, &why), -EIO);
	/* more frames than the bytes could hold */
	t[19] = 0x7f;
	CHECK_INT(seekable_table_parse(t, 25, 35, &st, &need, &why), -EIO);
	t[19] = 0;
	/* a table longer than what was read: ask for more */
	CHECK_INT(seekable_table_parse(t + 16, 9, 35, &st, &need, &why),
		  -EAGAIN);
	CHECK_INT(need, 25);
	/* reserved descriptor bits, a wrong frame size, a frame too big */
	t[20] = 0x04;
	CHECK_INT(seekable_table_parse(t, 25, 35, &st, &need, &why), -EIO);
	t[20] = 0;
	t[4] = 18;
	CHECK_INT(seekable_table_parse(t, 25, 35, &st, &need, &why), -EIO);
	t[4] = 17;
	t[14] = 0x20; /* 2 MiB logical */
	CHECK_INT(seekable_table_parse(t, 25, 35, &st, &need, &why), -EIO);
	t[14] = 0;
	CHECK_INT(seekable_table_parse(t, 8, 35, &st, &need, &why), -EIO);
	CHECK_INT(seekable_table_parse(t, 25, 10, &st, &need, &why), -EIO);
}

int main(void)
{
	static const size_t sizes[] = {
		0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB + 12345,
	};
	size_t big = 100 * (size_t)MIB, i;
	unsigned char *data = malloc(big);
	int fd;

	fill(data, big);
	plans();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(data, sizes[i]);
	round_trip(data, big);
	random_reads(data, 9 * MIB + 333);
	cut_reads(data);
	concurrent_reads(data);
	parallel_compress(data);
	read_ahead(data);
	read_whole_frames(data);
	corruption(data);
	hostile_tables();
	/* not compressed: nothing to decompress */
	fd = memfd_with("PAR1....PAR1", 12);
	{
		struct seekable_reader *zr = (void *)1;
		const char *why;

		CHECK_INT(seekable_reader_open(fd, 12, &zr, &why), 0);
		CHECK(zr == NULL);
	}
	close(fd);
	free(data);
	return unit_report();
}
