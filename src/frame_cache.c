/*
 * frame_cache.c - decompressed frames of compressed objects (frame_cache.h).
 *
 * A hash table from "<object id>/<frame>" to a frame, and a list from the
 * most to the least recently used.  A frame being copied out is pinned by
 * a reference: eviction unlinks it and its last reader frees it.  A frame
 * is decompressed once: the first reader to miss inserts it unfilled and
 * decompresses it outside the lock, readers of the same frame meanwhile
 * wait for it (the kernel's readahead asks for several pieces of one
 * frame at once).  Frame buffers are kept for reuse rather than freed: a
 * fresh megabyte costs 256 page faults, more than decompressing into it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame_cache.h"
#include "htab.h"

#define DECODER_POOL 8	/* decoders kept for reuse */
#define SPARE_MAX 8	/* whole-frame buffers kept beyond the budget */

struct cached_frame {
	char key[96];
	size_t len;
	unsigned refs;
	int evicted;
	int filled;		/* 0 while its first reader decompresses it */
	struct cached_frame *prev, *next;
	unsigned char data[];	/* len bytes */
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
	struct cached_frame *spare[SPARE_MAX]; /* buffers to reuse */
	unsigned nspare;
};

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
	fc->budget = budget;
	*out = fc;
	return 0;
}

void frame_cache_free(struct frame_cache *fc)
{
	struct cached_frame *f, *next;
	unsigned i;

	if (!fc)
		return;
	for (f = fc->head; f; f = next) {
		next = f->next;
		free(f);
	}
	for (i = 0; i < fc->ndecoder; i++)
		seekable_decoder_free(fc->decoder[i]);
	for (i = 0; i < fc->nspare; i++)
		free(fc->spare[i]);
	htab_free(fc->index);
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
	z->fd = fd;
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
	if (!z)
		return;
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

/* A frame of `len` bytes: a whole frame's buffer is reused if one is
 * spare (most frames are whole; the last of an object is shorter). */
static struct cached_frame *frame_alloc_locked(struct frame_cache *fc,
					       size_t len)
{
	if (len == SEEKABLE_FRAME_SIZE && fc->nspare)
		return fc->spare[--fc->nspare];
	return malloc(sizeof(struct cached_frame) + len);
}

/* Keep the buffer of a frame nobody holds for the next miss, or free it. */
static void frame_drop_locked(struct frame_cache *fc, struct cached_frame *f)
{
	if (f->len == SEEKABLE_FRAME_SIZE && fc->nspare < SPARE_MAX)
		fc->spare[fc->nspare++] = f;
	else
		free(f);
}

/* Take frame `f` out of the table and the list; its last reader drops it. */
static void unlink_locked(struct frame_cache *fc, struct cached_frame *f)
{
	lru_unlink(fc, f);
	htab_del(fc->index, f->key, f);
	fc->used -= f->len;
	fc->frames--;
	f->evicted = 1;
	if (!f->refs)
		frame_drop_locked(fc, f);
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

/* Frame `i` of `z`, pinned: release it with frame_put(). */
static int frame_get(struct frame_cache *fc, const struct zobject *z,
		     uint32_t i, struct cached_frame **out, const char **why)
{
	struct cached_frame *f;
	char key[sizeof(f->key)];
	struct seekable_decoder *d;
	size_t len;
	int rc;

	snprintf(key, sizeof(key), "%s/%u", z->id, i);
	pthread_mutex_lock(&fc->mu);
	f = htab_get(fc->index, key);
	if (f) {
		f->refs++;
		fc->hits++;
		lru_unlink(fc, f);
		lru_push(fc, f);
		while (!f->filled)
			pthread_cond_wait(&fc->filled, &fc->mu);
		rc = f->filled < 0 ? -EIO : 0;
		if (rc < 0) {
			/* its reader logs the reason; ours is the same */
			*why = "the frame failed to decompress for another read";
			if (--f->refs == 0)
				frame_drop_locked(fc, f);
		}
		pthread_mutex_unlock(&fc->mu);
		*out = f;
		return rc;
	}
	fc->misses++;
	len = (size_t)(z->table.doff[i + 1] - z->table.doff[i]);
	f = frame_alloc_locked(fc, len);
	if (!f) {
		pthread_mutex_unlock(&fc->mu);
		return -ENOMEM;
	}
	memcpy(f->key, key, sizeof(key));
	f->len = len;
	f->refs = 1;
	f->evicted = 0;
	f->filled = 0;
	if (htab_put(fc->index, f->key, f) < 0) {
		frame_drop_locked(fc, f);
		pthread_mutex_unlock(&fc->mu);
		return -ENOMEM;
	}
	lru_push(fc, f);
	fc->used += f->len;
	fc->frames++;
	pthread_mutex_unlock(&fc->mu);

	d = decoder_get(fc);
	rc = d ? seekable_frame_read(z->fd, &z->table, i, d, f->data, why)
	       : -ENOMEM;
	if (d)
		decoder_put(fc, d);

	pthread_mutex_lock(&fc->mu);
	f->filled = rc < 0 ? -1 : 1;
	if (rc < 0) {
		/* not kept: the next read tries again (and fails again) */
		if (!f->evicted)
			unlink_locked(fc, f);
		if (--f->refs == 0)
			frame_drop_locked(fc, f);
	} else {
		evict_locked(fc);
	}
	pthread_cond_broadcast(&fc->filled);
	pthread_mutex_unlock(&fc->mu);
	*out = f;
	return rc;
}

ssize_t frame_cache_pread(struct frame_cache *fc, const struct zobject *z,
			  void *buf, size_t size, uint64_t off,
			  const char **why)
{
	uint64_t end = z->table.doff[z->table.frames];
	size_t done = 0;

	if (off >= end)
		return 0;
	if (size > end - off)
		size = (size_t)(end - off);
	while (done < size) {
		uint64_t pos = off + done;
		uint32_t i = seekable_frame_of(&z->table, pos);
		struct cached_frame *f;
		size_t skip, n;
		int rc;

		rc = frame_get(fc, z, i, &f, why);
		if (rc < 0)
			return rc;
		skip = (size_t)(pos - z->table.doff[i]);
		n = f->len - skip < size - done ? f->len - skip : size - done;
		memcpy((char *)buf + done, f->data + skip, n);
		frame_put(fc, f);
		done += n;
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
	pthread_mutex_unlock(&fc->mu);
}
