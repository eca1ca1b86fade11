/*
 * frame_cache.c - decompressed frames of compressed objects (frame_cache.h).
 *
 * A hash table from "<object id>/<frame>" to a frame, and a list from the
 * most to the least recently used.  A frame being copied out is pinned by
 * a reference: eviction unlinks it and its last reader frees it.  A frame
 * is decompressed once: the first reader to miss inserts it unfilled and
 * decompresses it outside the lock, readers of the same frame meanwhile
 * wait for it (the kernel's readahead asks for several pieces of one
 * frame at once).  Frames live in buffers of a few sizes (BUF_CLASSES,
 * 128 KiB to a whole frame), carved from huge-page sized chunks, advised
 * for transparent huge pages and kept for reuse until the cache is freed:
 * a megabyte of fresh small pages costs 256 page faults, more than
 * decompressing into it.  A frame counts as its whole buffer against the
 * budget; the chunks of one size never hold more buffers than the most
 * ever held at once (the budget, plus those pinned by reads).  A frame
 * under SEEKABLE_FRAME_MIN (of the objects featurefs writes, only the
 * last can be) is allocated with its header.
 *
 * Frames read whole: once reads have taken as many bytes of a frame as it
 * holds, the kernel's page cache has them, and the frame goes to the end
 * of the list.  A frame that needs a buffer takes one of those before any
 * fresh memory, so a sequential reader cycles through a few buffers and
 * the frames others are still reading stay.
 *
 * Reads ahead: a read that starts in the frame where the last read of its
 * object ended, or in the next one, is sequential; once such reads have
 * read AHEAD_RUN bytes in a row (a Parquet reader's read of one column
 * chunk of a few hundred KiB, with the kernel's readahead past it, comes
 * to under 2 MiB), each queues the frames that begin within AHEAD_BYTES
 * after it for the cache's threads, which decompress them as a miss
 * would.  A reader that gets there first decompresses the frame itself
 * and the thread skips it; one that gets there while the thread works
 * waits for it, as for any frame being filled.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "frame_cache.h"
#include "htab.h"

#define DECODER_POOL 8	/* decoders kept for reuse */
#define CHUNK_SIZE (2u << 20)	/* a huge page: two whole frames */
#define BUF_MIN (128u << 10)	/* the smallest pooled buffer */
#define BUF_CLASSES 4		/* pooled buffers: 128 KiB to 1 MiB */
#define AHEAD_BYTES (2u << 20)	/* decompressed ahead of a reader */
#define AHEAD_RUN (4u << 20)	/* ... once it has read this much in order */
#define AHEAD_QUEUE 64		/* frames asked ahead and not yet begun */

struct cached_frame {
	char key[96];
	size_t len;
	size_t cost;		/* against the budget: its buffer, or len */
	int cls;		/* its buffer's size class, or -1 */
	size_t served;		/* bytes copied out of it by reads */
	unsigned refs;
	int evicted;
	int filled;		/* 0 while its first reader decompresses it,
				 * 1 once done, or the negative errno it got */
	struct cached_frame *prev, *next;
	unsigned char *data;	/* len bytes: a pooled buffer of class cls,
				 * or the bytes after the struct */
};

/* A frame to decompress ahead; holds a reference to its object. */
struct ahead_job {
	struct zobject *z;
	uint32_t frame;
};

/* A chunk of whole-frame buffers, unmapped with the cache. */
struct chunk {
	struct chunk *next;
	void *mem;
};

struct frame_cache {
	pthread_mutex_t mu;
	pthread_cond_t filled;	/* a frame was decompressed (or failed) */
	struct htab *index;
	struct cached_frame *head, *tail; /* most recently used first */
	uint64_t budget, used, frames;
	uint64_t hits, misses, evictions;
	struct seekable_decoder *decoder[DECODER_POOL];
	unsigned ndecoder;
	void *free_bufs[BUF_CLASSES]; /* buffers to reuse, per size class,
				 * each holding the next one's address */
	struct chunk *chunks;

	pthread_cond_t queued;	/* a job was queued, or the cache stops */
	struct ahead_job queue[AHEAD_QUEUE]; /* a ring */
	unsigned qhead, qlen;
	unsigned qmax;		/* a quarter of the budget's whole frames, at
				 * most AHEAD_QUEUE: many readers' frames
				 * ahead must not push out what they are on */
	unsigned ahead_bytes;	/* AHEAD_BYTES, or 0 with no threads */
	int stopping;
	pthread_t *threads;
	unsigned nthreads;
	uint64_t ahead;
};

static void *ahead_main(void *arg);

int frame_cache_new(uint64_t budget, struct frame_cache **out)
{
	struct frame_cache *fc = calloc(1, sizeof(*fc));

	if (!fc)
		return -ENOMEM;
	if (htab_new(&fc->index) < 0) {
		free(fc);
		return -ENOMEM;
	}
	pthread_mutex_init(&fc->mu, NULL);
	pthread_cond_init(&fc->filled, NULL);
	pthread_cond_init(&fc->queued, NULL);
	fc->budget = budget;
	*out = fc;
	return 0;
}

unsigned frame_cache_read_ahead(struct frame_cache *fc, unsigned threads)
{
	uint64_t quarter = fc->budget / SEEKABLE_FRAME_SIZE / 4;

	/* under a few frames, frames read ahead would push out the ones
	 * their readers are on */
	if (fc->threads || fc->budget / 4 < AHEAD_BYTES)
		return 0;
	pthread_mutex_lock(&fc->mu);
	fc->qmax = quarter < AHEAD_QUEUE ? (unsigned)quarter : AHEAD_QUEUE;
	pthread_mutex_unlock(&fc->mu);
	if (threads)
		fc->threads = calloc(threads, sizeof(*fc->threads));
	while (fc->threads && fc->nthreads < threads &&
	       pthread_create(&fc->threads[fc->nthreads], NULL, ahead_main,
			      fc) == 0)
		fc->nthreads++;
	__atomic_store_n(&fc->ahead_bytes, fc->nthreads ? AHEAD_BYTES : 0,
			 __ATOMIC_RELAXED);
	return fc->nthreads;
}

void frame_cache_free(struct frame_cache *fc)
{
	struct cached_frame *f, *next;
	struct chunk *c, *cnext;
	unsigned i;

	if (!fc)
		return;
	pthread_mutex_lock(&fc->mu);
	fc->stopping = 1;
	pthread_cond_broadcast(&fc->queued);
	pthread_mutex_unlock(&fc->mu);
	for (i = 0; i < fc->nthreads; i++)
		pthread_join(fc->threads[i], NULL);
	free(fc->threads);
	for (; fc->qlen; fc->qlen--, fc->qhead = (fc->qhead + 1) % AHEAD_QUEUE)
		zobject_close(fc->queue[fc->qhead].z);
	for (f = fc->head; f; f = next) {
		next = f->next;
		free(f);
	}
	for (i = 0; i < fc->ndecoder; i++)
		seekable_decoder_free(fc->decoder[i]);
	for (c = fc->chunks; c; c = cnext) {
		cnext = c->next;
		munmap(c->mem, CHUNK_SIZE);
		free(c);
	}
	htab_free(fc->index);
	pthread_cond_destroy(&fc->queued);
	pthread_cond_destroy(&fc->filled);
	pthread_mutex_destroy(&fc->mu);
	free(fc);
}

int zobject_open(int fd, uint64_t stored_size, uint64_t logical_size,
		 struct zobject **out, const char **why)
{
	struct zobject *z = calloc(1, sizeof(*z));
	struct stat st;
	int rc;

	if (!z)
		return -ENOMEM;
	z->fd = -1;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((uint64_t)st.st_size != stored_size) {
		*why = "the object's size is not the stored size its manifest "
		       "row gives";
		rc = -EIO;
		goto fail;
	}
	rc = seekable_table_read(fd, stored_size, &z->table, why);
	if (rc < 0)
		goto fail;
	if (z->table.doff[z->table.frames] != logical_size) {
		*why = "the seek table's frames do not add up to the entry's "
		       "size";
		rc = -EIO;
		goto fail;
	}
	/* its own descriptor: a read ahead may outlive the caller's */
	z->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (z->fd < 0) {
		rc = -errno;
		goto fail;
	}
	z->refs = 1;
	snprintf(z->id, sizeof(z->id), "%llx:%llx:%lld.%09ld",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	*out = z;
	return 0;
fail:
	seekable_table_free(&z->table);
	free(z);
	return rc;
}

void zobject_close(struct zobject *z)
{
	if (!z || __atomic_sub_fetch(&z->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	close(z->fd);
	seekable_table_free(&z->table);
	free(z);
}

static void lru_unlink(struct frame_cache *fc, struct cached_frame *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		fc->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		fc->tail = f->prev;
	f->prev = f->next = NULL;
}

static void lru_push(struct frame_cache *fc, struct cached_frame *f)
{
	f->prev = NULL;
	f->next = fc->head;
	if (fc->head)
		fc->head->prev = f;
	fc->head = f;
	if (!fc->tail)
		fc->tail = f;
}

static void lru_append(struct frame_cache *fc, struct cached_frame *f)
{
	f->next = NULL;
	f->prev = fc->tail;
	if (fc->tail)
		fc->tail->next = f;
	fc->tail = f;
	if (!fc->head)
		fc->head = f;
}

/* A frame as many bytes of which reads have taken as it holds has been
 * read whole, and the kernel's page cache holds it now. */
static int read_whole(const struct cached_frame *f)
{
	return f->served >= f->len;
}

/* Note that a read takes `take` bytes of `f`, which is out of the list:
 * put it back first in line to stay, or, read whole, first to go. */
static void lru_touch(struct frame_cache *fc, struct cached_frame *f,
		      size_t take)
{
	f->served += take;
	if (read_whole(f))
		lru_append(fc, f);
	else
		lru_push(fc, f);
}

/* The size class of a buffer for a frame of `len` bytes (BUF_MIN << cls
 * bytes), or -1 for a frame allocated with its header. */
static int buf_class(size_t len)
{
	int cls = 0;

	if (len < SEEKABLE_FRAME_MIN)
		return -1;
	while ((size_t)BUF_MIN << cls < len)
		cls++;
	return cls;
}

static void buf_put_locked(struct frame_cache *fc, int cls, void *buf)
{
	*(void **)buf = fc->free_bufs[cls];
	fc->free_bufs[cls] = buf;
}

/* CHUNK_SIZE bytes at a CHUNK_SIZE boundary, which a transparent huge
 * page can back; short of address space for that, anywhere; or NULL. */
static void *chunk_map(void)
{
	size_t len = 2 * (size_t)CHUNK_SIZE;
	char *p, *a;

	if (fault_inject("frame_chunk") < 0)
		return NULL; /* as under a memory limit */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		p = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	a = (char *)(((uintptr_t)p + CHUNK_SIZE - 1) &
		     ~(uintptr_t)(CHUNK_SIZE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + CHUNK_SIZE, (size_t)(p + len - (a + CHUNK_SIZE)));
	(void)madvise(a, CHUNK_SIZE, MADV_HUGEPAGE); /* advice only */
	return a;
}

/* Free frame `f`, which nobody holds, keeping its buffer if pooled. */
static void frame_drop_locked(struct frame_cache *fc, struct cached_frame *f)
{
	if (f->cls >= 0 && f->data)
		buf_put_locked(fc, f->cls, f->data);
	free(f);
}

/* Take frame `f` out of the table and the list; its last reader drops it. */
static void unlink_locked(struct frame_cache *fc, struct cached_frame *f)
{
	lru_unlink(fc, f);
	htab_del(fc->index, f->key, f);
	fc->used -= f->cost;
	fc->frames--;
	f->evicted = 1;
	if (!f->refs)
		frame_drop_locked(fc, f);
}

/* Drop frames read whole from the end of the list until one frees a
 * buffer of class `cls`: a frame a reader has passed is worth less than
 * memory already faulted in. */
static void evict_read_locked(struct frame_cache *fc, int cls)
{
	struct cached_frame *f = fc->tail, *prev;

	for (; f && read_whole(f) && !fc->free_bufs[cls]; f = prev) {
		prev = f->prev;
		if (f->refs)
			continue;
		fc->evictions++;
		unlink_locked(fc, f);
	}
}

/* No memory for a new chunk (a daemon under a memory limit): drop the
 * least recently used frames of class `cls` nobody reads now until one
 * frees its buffer. */
static void evict_class_locked(struct frame_cache *fc, int cls)
{
	struct cached_frame *f = fc->tail, *prev;

	for (; f && !fc->free_bufs[cls]; f = prev) {
		prev = f->prev;
		if (f->refs || f->cls != cls)
			continue;
		fc->evictions++;
		unlink_locked(fc, f);
	}
}

/* A buffer of class `cls`: a reused one, one of a frame read whole, or
 * one of a new chunk (mapped outside the lock), or NULL. */
static void *buf_get(struct frame_cache *fc, int cls)
{
	size_t size = (size_t)BUF_MIN << cls, at;
	struct chunk *c;
	void *buf;

	pthread_mutex_lock(&fc->mu);
	if (!fc->free_bufs[cls])
		evict_read_locked(fc, cls);
	buf = fc->free_bufs[cls];
	if (buf)
		fc->free_bufs[cls] = *(void **)buf;
	pthread_mutex_unlock(&fc->mu);
	if (buf)
		return buf;
	c = malloc(sizeof(*c));
	if (!c || !(c->mem = chunk_map())) {
		free(c);
		pthread_mutex_lock(&fc->mu);
		evict_class_locked(fc, cls);
		buf = fc->free_bufs[cls];
		if (buf)
			fc->free_bufs[cls] = *(void **)buf;
		pthread_mutex_unlock(&fc->mu);
		return buf;
	}
	pthread_mutex_lock(&fc->mu);
	c->next = fc->chunks;
	fc->chunks = c;
	for (at = size; at < CHUNK_SIZE; at += size)
		buf_put_locked(fc, cls, (char *)c->mem + at);
	pthread_mutex_unlock(&fc->mu);
	return c->mem;
}

/* Drop least recently used frames until the cache fits its budget. */
static void evict_locked(struct frame_cache *fc)
{
	while (fc->used > fc->budget && fc->tail) {
		fc->evictions++;
		unlink_locked(fc, fc->tail);
	}
}

static void frame_put(struct frame_cache *fc, struct cached_frame *f)
{
	pthread_mutex_lock(&fc->mu);
	if (--f->refs == 0 && f->evicted)
		frame_drop_locked(fc, f);
	pthread_mutex_unlock(&fc->mu);
}

static struct seekable_decoder *decoder_get(struct frame_cache *fc)
{
	struct seekable_decoder *d = NULL;

	pthread_mutex_lock(&fc->mu);
	if (fc->ndecoder)
		d = fc->decoder[--fc->ndecoder];
	pthread_mutex_unlock(&fc->mu);
	return d ? d : seekable_decoder_new();
}

static void decoder_put(struct frame_cache *fc, struct seekable_decoder *d)
{
	pthread_mutex_lock(&fc->mu);
	if (fc->ndecoder < DECODER_POOL) {
		fc->decoder[fc->ndecoder++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&fc->mu);
	seekable_decoder_free(d);
}

/* Frame `i` of `z`, pinned: release it with frame_put().  A read takes
 * `take` bytes of it; a read ahead takes none, and gets -EEXIST if the
 * cache has the frame, somebody fills it already, or a read has asked for
 * it since (that read decompresses it, and once it is read whole it may
 * be gone again). */
static int frame_get(struct frame_cache *fc, const struct zobject *z,
		     uint32_t i, size_t take, struct cached_frame **out,
		     const char **why)
{
	struct cached_frame *f;
	char key[sizeof(f->key)];
	struct seekable_decoder *d;
	int ahead = take == 0;
	size_t len;
	int cls, rc;

	snprintf(key, sizeof(key), "%s/%u", z->id, i);
	pthread_mutex_lock(&fc->mu);
	f = htab_get(fc->index, key);
	if (ahead && (f || i < z->next_frame)) {
		pthread_mutex_unlock(&fc->mu);
		return -EEXIST;
	}
	if (f) {
		f->refs++;
		fc->hits++;
		lru_unlink(fc, f);
		lru_touch(fc, f, take);
		while (!f->filled)
			pthread_cond_wait(&fc->filled, &fc->mu);
		rc = f->filled < 0 ? f->filled : 0;
		if (rc < 0) {
			/* its reader logs the reason; ours is the same */
			*why = "the frame failed to decompress for another read";
			if (--f->refs == 0 && f->evicted)
				frame_drop_locked(fc, f);
		}
		pthread_mutex_unlock(&fc->mu);
		*out = f;
		return rc;
	}
	if (ahead)
		fc->ahead++;
	else
		fc->misses++;
	len = (size_t)(z->table.doff[i + 1] - z->table.doff[i]);
	cls = buf_class(len);
	f = malloc(sizeof(*f) + (cls < 0 ? len : 0));
	if (!f) {
		pthread_mutex_unlock(&fc->mu);
		return -ENOMEM;
	}
	memcpy(f->key, key, sizeof(key));
	f->len = len;
	f->cls = cls;
	f->cost = cls < 0 ? len : (size_t)BUF_MIN << cls;
	f->served = 0;
	f->refs = 1;
	f->evicted = 0;
	f->filled = 0;
	f->data = cls < 0 ? (unsigned char *)(f + 1) : NULL;
	if (htab_put(fc->index, f->key, f) < 0) {
		frame_drop_locked(fc, f);
		pthread_mutex_unlock(&fc->mu);
		return -ENOMEM;
	}
	lru_touch(fc, f, take);
	fc->used += f->cost;
	fc->frames++;
	pthread_mutex_unlock(&fc->mu);

	rc = -ENOMEM;
	if (!f->data)
		f->data = buf_get(fc, f->cls);
	d = f->data ? decoder_get(fc) : NULL;
	if (d) {
		rc = seekable_frame_read(z->fd, &z->table, i, d, f->data, why);
		decoder_put(fc, d);
	}

	pthread_mutex_lock(&fc->mu);
	f->filled = rc < 0 ? rc : 1;
	if (rc < 0) {
		/* not kept: the next read tries again (and fails again);
		 * whoever holds it last drops it */
		f->refs--;
		if (!f->evicted)
			unlink_locked(fc, f);
		else if (!f->refs)
			frame_drop_locked(fc, f);
	} else {
		evict_locked(fc);
	}
	pthread_cond_broadcast(&fc->filled);
	pthread_mutex_unlock(&fc->mu);
	*out = f;
	return rc;
}

/* A cache thread: decompress queued frames until the cache stops. */
static void *ahead_main(void *arg)
{
	struct frame_cache *fc = arg;
	struct cached_frame *f;
	struct ahead_job job;
	const char *why;

	pthread_mutex_lock(&fc->mu);
	for (;;) {
		while (!fc->qlen && !fc->stopping)
			pthread_cond_wait(&fc->queued, &fc->mu);
		if (fc->stopping)
			break;
		job = fc->queue[fc->qhead];
		fc->qhead = (fc->qhead + 1) % AHEAD_QUEUE;
		fc->qlen--;
		pthread_mutex_unlock(&fc->mu);
		/* a frame that fails is not kept: its reader meets and
		 * logs the failure itself */
		if (frame_get(fc, job.z, job.frame, 0, &f, &why) == 0)
			frame_put(fc, f);
		zobject_close(job.z);
		pthread_mutex_lock(&fc->mu);
	}
	pthread_mutex_unlock(&fc->mu);
	return NULL;
}

/* Note that a read of `size` bytes in frames first..last of `z` begins;
 * if it ends a run of AHEAD_RUN bytes or more read in order, queue the
 * frames after it that are not yet asked for. */
static void ahead_queue(struct frame_cache *fc, struct zobject *z,
			size_t size, uint32_t first, uint32_t last)
{
	unsigned ahead = __atomic_load_n(&fc->ahead_bytes, __ATOMIC_RELAXED);
	uint64_t until;
	uint32_t i;
	int in_order, sequential;

	if (!ahead)
		return;
	pthread_mutex_lock(&fc->mu);
	in_order = first == z->next_frame || first + 1 == z->next_frame;
	z->next_frame = last + 1;
	z->run = in_order ? z->run + size : size;
	sequential = z->run >= AHEAD_RUN;
	i = last + 1;
	if (sequential && z->ahead_end > i)
		i = z->ahead_end;
	until = z->table.doff[last + 1] + ahead;
	for (; sequential && i < z->table.frames && z->table.doff[i] < until &&
	       fc->qlen < fc->qmax;
	     i++) {
		__atomic_add_fetch(&z->refs, 1, __ATOMIC_RELAXED);
		fc->queue[(fc->qhead + fc->qlen++) % AHEAD_QUEUE] =
			(struct ahead_job){ z, i };
		pthread_cond_signal(&fc->queued);
	}
	z->ahead_end = i;
	pthread_mutex_unlock(&fc->mu);
}

/* Pin the frames of `z` that hold `size` bytes at `off` (within the
 * object), FRAME_SPAN_MAX frames at most: the bytes pinned. */
static ssize_t pin_range(struct frame_cache *fc, struct zobject *z,
			 size_t size, uint64_t off, struct frame_span *span,
			 const char **why)
{
	size_t done = 0;

	span->n = 0;
	while (done < size && span->n < FRAME_SPAN_MAX) {
		uint64_t pos = off + done;
		uint32_t i = seekable_frame_of(&z->table, pos);
		uint64_t left = z->table.doff[i + 1] - pos;
		size_t skip = (size_t)(pos - z->table.doff[i]);
		size_t n = left < size - done ? (size_t)left : size - done;
		struct cached_frame *f;
		int rc;

		rc = frame_get(fc, z, i, n, &f, why);
		if (rc < 0)
			return rc;
		span->pin[span->n] = f;
		span->iov[span->n++] = (struct iovec){ f->data + skip, n };
		done += n;
	}
	return (ssize_t)done;
}

/* Clamp a read of `*size` bytes at `off` to the object; 0 when nothing
 * is left to read, else 1 with its first and last frames set. */
static int read_begins(const struct zobject *z, size_t *size, uint64_t off,
		       uint32_t *first, uint32_t *last)
{
	uint64_t end = z->table.doff[z->table.frames];

	if (off >= end || *size == 0)
		return 0;
	if (*size > end - off)
		*size = (size_t)(end - off);
	*first = seekable_frame_of(&z->table, off);
	*last = seekable_frame_of(&z->table, off + *size - 1);
	return 1;
}

ssize_t frame_cache_pin(struct frame_cache *fc, struct zobject *z,
			size_t size, uint64_t off, struct frame_span *span,
			const char **why)
{
	uint32_t first, last;

	span->n = 0;
	if (!read_begins(z, &size, off, &first, &last))
		return 0;
	if (last - first >= FRAME_SPAN_MAX)
		return -E2BIG;
	ahead_queue(fc, z, size, first, last);
	return pin_range(fc, z, size, off, span, why);
}

void frame_cache_unpin(struct frame_cache *fc, struct frame_span *span)
{
	while (span->n > 0)
		frame_put(fc, span->pin[--span->n]);
}

ssize_t frame_cache_pread(struct frame_cache *fc, struct zobject *z,
			  void *buf, size_t size, uint64_t off,
			  const char **why)
{
	struct frame_span span;
	uint32_t first, last;
	size_t done = 0;
	ssize_t n = 0;
	int i;

	if (!read_begins(z, &size, off, &first, &last))
		return 0;
	ahead_queue(fc, z, size, first, last);
	while (done < size) {
		n = pin_range(fc, z, size - done, off + done, &span, why);
		for (i = 0; i < span.n; i++) {
			memcpy((char *)buf + done, span.iov[i].iov_base,
			       span.iov[i].iov_len);
			done += span.iov[i].iov_len;
		}
		frame_cache_unpin(fc, &span);
		if (n < 0)
			return n;
	}
	return (ssize_t)done;
}

void frame_cache_figures(struct frame_cache *fc,
			 struct frame_cache_figures *out)
{
	pthread_mutex_lock(&fc->mu);
	out->bytes = fc->used;
	out->frames = fc->frames;
	out->hits = fc->hits;
	out->misses = fc->misses;
	out->evictions = fc->evictions;
	out->ahead = fc->ahead;
	pthread_mutex_unlock(&fc->mu);
}
