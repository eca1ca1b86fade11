/*
 * seekable.c - write and read the zstd seekable format (seekable.h).
 *
 * The writer plans the frames of a finished tmp file (to begin where a
 * reader's reads do, when the caller knows where), then compresses it
 * frame by frame, on several threads when asked; the reader parses the
 * seek table once per open and decompresses single frames; a check that
 * reads a whole object (fsck, adoption) does so through a reader that
 * holds one frame at a time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd_errors.h>

#include "fdio.h"
#include "seekable.h"

#define DESCRIPTOR_CHECKSUM 0x80
#define DESCRIPTOR_RESERVED 0x7c

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int zstd_to_errno(size_t code)
{
	switch (ZSTD_getErrorCode(code)) {
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

void seekable_table_free(struct seek_table *t)
{
	free(t->coff);
	free(t->doff);
	memset(t, 0, sizeof(*t));
}

int seekable_table_parse(const uint8_t *tail, size_t len, uint64_t stored_size,
			 struct seek_table *t, size_t *need, const char **why)
{
	const uint8_t *footer, *entry;
	uint32_t frames, i;
	uint64_t table_len, esize, c = 0, d = 0;
	uint8_t desc;

	memset(t, 0, sizeof(*t));
	*need = 0;
	if (stored_size < SEEKABLE_SKIPPABLE_HEADER + SEEKABLE_FOOTER_SIZE ||
	    len < SEEKABLE_FOOTER_SIZE || len > stored_size) {
		*why = "too short for a seek table";
		return -EIO;
	}
	footer = tail + len - SEEKABLE_FOOTER_SIZE;
	if (get_le32(footer + 5) != SEEKABLE_MAGIC) {
		*why = "no seek table at the end (bad magic number)";
		return -EIO;
	}
	desc = footer[4];
	if (desc & DESCRIPTOR_RESERVED) {
		*why = "the seek table's descriptor sets reserved bits";
		return -EIO;
	}
	frames = get_le32(footer);
	esize = desc & DESCRIPTOR_CHECKSUM ? 12 : 8;
	table_len = SEEKABLE_SKIPPABLE_HEADER + (uint64_t)frames * esize +
		    SEEKABLE_FOOTER_SIZE;
	if (frames > SEEKABLE_MAX_FRAMES || table_len > stored_size) {
		*why = "the seek table is longer than the object";
		return -EIO;
	}
	if (table_len > len) {
		*need = (size_t)table_len;
		return -EAGAIN;
	}
	tail += len - table_len;
	if (get_le32(tail) != SEEKABLE_SKIPPABLE_MAGIC ||
	    get_le32(tail + 4) != table_len - SEEKABLE_SKIPPABLE_HEADER) {
		*why = "the seek table's frame header is wrong (truncated?)";
		return -EIO;
	}
	t->coff = malloc(((size_t)frames + 1) * sizeof(*t->coff));
	t->doff = malloc(((size_t)frames + 1) * sizeof(*t->doff));
	if (!t->coff || !t->doff) {
		seekable_table_free(t);
		return -ENOMEM;
	}
	entry = tail + SEEKABLE_SKIPPABLE_HEADER;
	for (i = 0; i < frames; i++, entry += esize) {
		uint32_t csize = get_le32(entry), dsize = get_le32(entry + 4);

		if (csize == 0 || dsize > SEEKABLE_FRAME_SIZE ||
		    csize > ZSTD_compressBound(SEEKABLE_FRAME_SIZE)) {
			seekable_table_free(t);
			*why = "a seek table entry gives an impossible frame size";
			return -EIO;
		}
		t->coff[i] = c;
		t->doff[i] = d;
		c += csize;
		d += dsize;
	}
	t->coff[frames] = c;
	t->doff[frames] = d;
	t->frames = frames;
	if (c != stored_size - table_len) {
		seekable_table_free(t);
		*why = "the frames the seek table lists do not fill the object";
		return -EIO;
	}
	return 0;
}

int seekable_table_read(int fd, uint64_t stored_size, struct seek_table *t,
			const char **why)
{
	uint8_t small[4096], *buf = small;
	size_t len = stored_size < sizeof(small) ? (size_t)stored_size
						 : sizeof(small);
	size_t need = 0;
	ssize_t n;
	int rc;

	memset(t, 0, sizeof(*t));
	for (;;) {
		n = pread_full(fd, buf, len, stored_size - len);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if ((size_t)n < len) {
			*why = "the object is shorter than its manifest row says";
			rc = -EIO;
			break;
		}
		rc = seekable_table_parse(buf, len, stored_size, t, &need, why);
		if (rc != -EAGAIN || buf != small)
			break;
		buf = malloc(need);
		if (!buf) {
			rc = -ENOMEM;
			break;
		}
		len = need;
	}
	if (rc == -EAGAIN) { /* cannot happen: need is what it read */
		*why = "the seek table changed while it was read";
		rc = -EIO;
	}
	if (buf != small)
		free(buf);
	return rc;
}

uint32_t seekable_frame_of(const struct seek_table *t, uint64_t off)
{
	uint32_t lo = 0, hi = t->frames;

	/* the last frame whose start is <= off */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->doff[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

struct seekable_decoder *seekable_decoder_new(void)
{
	struct seekable_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->dctx = ZSTD_createDCtx();
	d->src = malloc(ZSTD_compressBound(SEEKABLE_FRAME_SIZE));
	if (!d->dctx || !d->src) {
		seekable_decoder_free(d);
		return NULL;
	}
	return d;
}

void seekable_decoder_free(struct seekable_decoder *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->dctx);
	free(d->src);
	free(d);
}

int seekable_frame_read(int fd, const struct seek_table *t, uint32_t i,
			struct seekable_decoder *d, void *dst,
			const char **why)
{
	/* the table's parser bounds csize by ZSTD_compressBound() */
	size_t csize = (size_t)(t->coff[i + 1] - t->coff[i]);
	size_t dsize = (size_t)(t->doff[i + 1] - t->doff[i]);
	ssize_t n;
	size_t r;

	n = pread_full(fd, d->src, csize, t->coff[i]);
	if (n < 0)
		return (int)n;
	if ((size_t)n < csize) {
		*why = "the object ends inside a frame";
		return -EIO;
	}
	r = ZSTD_decompressDCtx(d->dctx, dst, dsize, d->src, csize);
	if (ZSTD_isError(r)) {
		*why = ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall
			       ? "a frame holds more than the seek table says"
			       : ZSTD_getErrorName(r);
		return zstd_to_errno(r);
	}
	if (r != dsize) {
		*why = "a frame holds less than the seek table says";
		return -EIO;
	}
	return 0;
}

/* Append the seek table for `frames` frames of sizes `sizes` (compressed,
 * logical pairs) at `off`. */
static int write_table(int out, const uint32_t *sizes, uint32_t frames,
		       uint64_t off, uint64_t *end)
{
	size_t len = SEEKABLE_SKIPPABLE_HEADER + (size_t)frames * 8 +
		     SEEKABLE_FOOTER_SIZE;
	uint8_t *buf = malloc(len), *p;
	uint32_t i;
	int rc;

	if (!buf)
		return -ENOMEM;
	put_le32(buf, SEEKABLE_SKIPPABLE_MAGIC);
	put_le32(buf + 4, (uint32_t)(len - SEEKABLE_SKIPPABLE_HEADER));
	p = buf + SEEKABLE_SKIPPABLE_HEADER;
	for (i = 0; i < frames; i++, p += 8) {
		put_le32(p, sizes[2 * i]);
		put_le32(p + 4, sizes[2 * i + 1]);
	}
	put_le32(p, frames);
	p[4] = 0; /* no checksums in the table: each frame carries zstd's */
	put_le32(p + 5, SEEKABLE_MAGIC);
	rc = pwrite_full(out, buf, len, off);
	free(buf);
	if (rc == 0)
		*end = off + len;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Round `off` down to a page. */
static uint64_t page_floor(uint64_t off)
{
	return off & ~(uint64_t)(SEEKABLE_PAGE - 1);
}

/*
 * Frame ends for [start, end) cut into nearly equal frames of at most
 * SEEKABLE_FRAME_SIZE, each but the last ending on a page (`start` is on
 * one): the fewest such frames when `end` is on a page too.
 */
static uint32_t plan_split(uint64_t *ends, uint32_t nf, uint64_t start,
			   uint64_t end)
{
	uint64_t len = end - start, unit = SEEKABLE_FRAME_SIZE, k, j;

	/* an end off a page makes the last frame up to a page longer */
	if (end % SEEKABLE_PAGE)
		unit -= SEEKABLE_PAGE;
	k = (len + unit - 1) / unit;
	for (j = 1; j < k; j++)
		ends[nf++] = start + page_floor(len / k * j + len % k * j / k);
	ends[nf++] = end;
	return nf;
}

int seekable_plan(uint64_t size, uint64_t *cuts, size_t ncuts,
		  struct seekable_plan *plan)
{
	uint64_t cap = size / SEEKABLE_FRAME_MIN + 2, start = 0, c;
	size_t i;
	uint32_t nf = 0;

	plan->frames = 0;
	plan->end = NULL;
	if (cap > SEEKABLE_MAX_FRAMES)
		return -EFBIG;
	plan->end = malloc(cap * sizeof(*plan->end));
	if (!plan->end)
		return -ENOMEM;
	if (ncuts)
		qsort(cuts, ncuts, sizeof(*cuts), cmp_u64);
	for (i = 0; i <= ncuts && start < size; i++) {
		c = i < ncuts && cuts[i] < size ? cuts[i] : size;
		/* the last frame (a Parquet footer) is never under a KiB;
		 * a frame begins on a page, the kernel's unit of reads */
		if (c < size) {
			if (size - c < SEEKABLE_FRAME_TAIL)
				c = size > SEEKABLE_FRAME_TAIL
					    ? size - SEEKABLE_FRAME_TAIL : 0;
			c = page_floor(c);
		}
		if (c <= start)
			continue;
		if (c - start > SEEKABLE_FRAME_SIZE) {
			nf = plan_split(plan->end, nf, start, c);
			start = c;
		} else if (c - start >= SEEKABLE_FRAME_MIN || c == size) {
			plan->end[nf++] = c;
			start = c;
		} else if (nf > 0 && c - (nf > 1 ? plan->end[nf - 2] : 0) <=
					     SEEKABLE_FRAME_SIZE) {
			/* a short stretch joins the frame before it, so that
			 * the next cut still begins one */
			plan->end[nf - 1] = c;
			start = c;
		}
	}
	plan->frames = nf;
	return 0;
}

void seekable_plan_free(struct seekable_plan *plan)
{
	free(plan->end);
	plan->end = NULL;
	plan->frames = 0;
}

/*
 * One object being compressed by several threads: each takes the next
 * frame and compresses it on its own, then writes it once every frame
 * before it is written (a frame's place is the sum of the sizes before
 * it).  The first error stops them all.
 */
struct compress_run {
	pthread_mutex_t mu;
	pthread_cond_t turn;	/* a frame was written, or one failed */
	int in, out, level;
	const struct seekable_plan *plan;
	uint32_t next, written;	/* frames taken, and written in order */
	uint64_t off;		/* where the next frame to write goes */
	uint32_t *sizes;	/* compressed and logical size, per frame */
	int err;
};

/* A compressing thread's loop, the caller's own included. */
static void *compress_frames(void *arg)
{
	struct compress_run *r = arg;
	size_t bound = ZSTD_compressBound(SEEKABLE_FRAME_SIZE);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	void *src = malloc(SEEKABLE_FRAME_SIZE), *dst = malloc(bound);
	int rc = 0;

	if (!cctx || !src || !dst)
		rc = -ENOMEM;
	else if (ZSTD_isError(ZSTD_CCtx_setParameter(
			 cctx, ZSTD_c_compressionLevel, r->level)) ||
		 ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag,
						     1)))
		rc = -EINVAL;
	for (;;) {
		uint64_t pos;
		size_t len, c = 0;
		ssize_t n;
		uint32_t i;

		pthread_mutex_lock(&r->mu);
		if (rc < 0 && !r->err) {
			r->err = rc;
			pthread_cond_broadcast(&r->turn);
		}
		if (r->err || r->next == r->plan->frames) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		i = r->next++;
		pthread_mutex_unlock(&r->mu);

		pos = i ? r->plan->end[i - 1] : 0;
		len = (size_t)(r->plan->end[i] - pos);
		n = pread_full(r->in, src, len, pos);
		if (n < 0)
			rc = (int)n;
		else if ((size_t)n < len) /* the tmp file shrank under us */
			rc = -EIO;
		if (rc == 0) {
			c = ZSTD_compress2(cctx, dst, bound, src, len);
			if (ZSTD_isError(c))
				rc = zstd_to_errno(c);
		}

		pthread_mutex_lock(&r->mu);
		while (rc == 0 && !r->err && r->written != i)
			pthread_cond_wait(&r->turn, &r->mu);
		if (rc == 0 && !r->err) {
			rc = pwrite_full(r->out, dst, c, r->off);
			if (rc == 0) {
				r->sizes[2 * i] = (uint32_t)c;
				r->sizes[2 * i + 1] = (uint32_t)len;
				r->off += c;
				r->written++;
				pthread_cond_broadcast(&r->turn);
			}
		}
		pthread_mutex_unlock(&r->mu);
	}
	ZSTD_freeCCtx(cctx);
	free(src);
	free(dst);
	return NULL;
}

int seekable_compress(int in, const struct seekable_plan *plan, int out,
		      int level, unsigned threads, uint64_t *stored_size)
{
	uint32_t frames = plan->frames;
	struct compress_run r = {
		.in = in, .out = out, .level = level, .plan = plan,
	};
	pthread_t *helper = NULL;
	unsigned nhelper = 0, i;
	int rc;

	r.sizes = malloc(((size_t)frames + 1) * 2 * sizeof(*r.sizes));
	if (!r.sizes)
		return -ENOMEM;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.turn, NULL);
	if (threads > frames)
		threads = frames;
	if (threads > 1)
		helper = calloc(threads - 1, sizeof(*helper));
	/* fewer helpers than asked (none at all) only take longer */
	while (helper && nhelper < threads - 1 &&
	       pthread_create(&helper[nhelper], NULL, compress_frames, &r) == 0)
		nhelper++;
	compress_frames(&r);
	for (i = 0; i < nhelper; i++)
		pthread_join(helper[i], NULL);
	rc = r.err;
	if (rc == 0)
		rc = write_table(out, r.sizes, frames, r.off, stored_size);
	free(helper);
	pthread_cond_destroy(&r.turn);
	pthread_mutex_destroy(&r.mu);
	free(r.sizes);
	return rc;
}

int seekable_reader_open(int fd, uint64_t stored_size,
			 struct seekable_reader **out, const char **why)
{
	struct seekable_reader *r;
	uint8_t head[4];
	ssize_t n;
	int rc;

	*out = NULL;
	n = pread_full(fd, head, sizeof(head), 0);
	if (n < 0)
		return (int)n;
	/* a zstd frame first, or the table alone for an empty object */
	if (n < (ssize_t)sizeof(head) ||
	    (get_le32(head) != ZSTD_MAGICNUMBER &&
	     get_le32(head) != SEEKABLE_SKIPPABLE_MAGIC))
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = fd;
	r->cur = UINT32_MAX;
	rc = seekable_table_read(fd, stored_size, &r->table, why);
	if (rc < 0) {
		free(r);
		return rc;
	}
	r->d = seekable_decoder_new();
	r->frame = malloc(SEEKABLE_FRAME_SIZE);
	if (!r->d || !r->frame) {
		seekable_reader_close(r);
		return -ENOMEM;
	}
	*out = r;
	return 1;
}

uint64_t seekable_reader_size(const struct seekable_reader *r)
{
	return r->table.doff[r->table.frames];
}

/* Make frame `i` the one in r->frame. */
static int reader_load(struct seekable_reader *r, uint32_t i)
{
	int rc;

	if (r->cur == i)
		return 0;
	r->cur = UINT32_MAX;
	rc = seekable_frame_read(r->fd, &r->table, i, r->d, r->frame, &r->why);
	if (rc == 0)
		r->cur = i;
	return rc;
}

int seekable_reader_check(struct seekable_reader *r)
{
	uint32_t i;
	int rc;

	for (i = 0; i < r->table.frames; i++) {
		rc = reader_load(r, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static ssize_t reader_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct seekable_reader *r = arg;
	uint64_t size = seekable_reader_size(r);
	size_t done = 0;

	while (done < len && off < size) {
		uint32_t i = seekable_frame_of(&r->table, off);
		uint64_t in = off - r->table.doff[i];
		uint64_t have = r->table.doff[i + 1] - off;
		size_t n = len - done < have ? len - done : (size_t)have;
		int rc = reader_load(r, i);

		if (rc < 0)
			return rc;
		memcpy((char *)buf + done, r->frame + in, n);
		done += n;
		off += n;
	}
	return (ssize_t)done;
}

struct byte_source seekable_reader_source(struct seekable_reader *r)
{
	struct byte_source src = { reader_pread, r };

	return src;
}

void seekable_reader_close(struct seekable_reader *r)
{
	if (!r)
		return;
	seekable_decoder_free(r->d);
	free(r->frame);
	seekable_table_free(&r->table);
	free(r);
}
