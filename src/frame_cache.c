/*
 * frame_cache.c - decompressed frames of compressed objects (frame_cache.h).
 *
 * A hash table from "<object id>/<frame>" to a frame, and a list from the
 * most to the least recently used.  A frame being copied out is pinned by
 * a reference: eviction unlinks it and its last reader frees it.  Frames
 * are decompressed outside the lock; two readers missing the same frame
 * at once both decompress it and the second copy is dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame_cache.h"
#include "htab.h"

#define DCTX_POOL 8	/* decompression contexts kept for reuse */

struct cached_frame {
	char key[96];
	size_t len;
	unsigned refs;
	int evicted;
	struct cached_frame *prev, *next;
	unsigned char data[];
};

struct frame_cache {
	pthread_mutex_t mu;
	struct htab *index;
	struct cached_frame *head, *tail; /* most recently used first */
	uint64_t budget, used, frames;
	uint64_t hits, misses, evictions;
	ZSTD_DCtx *dctx[DCTX_POOL];
	unsigned ndctx;
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
	for (i = 0; i < fc->ndctx; i++)
		ZSTD_freeDCtx(fc->dctx[i]);
	htab_free(fc->index);
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

/* Drop least recently used frames until the cache fits its budget. */
static void evict_locked(struct frame_cache *fc)
{
	while (fc->used > fc->budget && fc->tail) {
		struct cached_frame *f = fc->tail;

		lru_unlink(fc, f);
		htab_del(fc->index, f->key, f);
		fc->used -= f->len;
		fc->frames--;
		fc->evictions++;
		if (f->refs)
			f->evicted = 1; /* its last reader frees it */
		else
			free(f);
	}
}

static void frame_put(struct frame_cache *fc, struct cached_frame *f)
{
	pthread_mutex_lock(&fc->mu);
	if (--f->refs == 0 && f->evicted)
		free(f);
	pthread_mutex_unlock(&fc->mu);
}

static ZSTD_DCtx *dctx_get(struct frame_cache *fc)
{
	ZSTD_DCtx *d = NULL;

	pthread_mutex_lock(&fc->mu);
	if (fc->ndctx)
		d = fc->dctx[--fc->ndctx];
	pthread_mutex_unlock(&fc->mu);
	return d ? d : ZSTD_createDCtx();
}

static void dctx_put(struct frame_cache *fc, ZSTD_DCtx *d)
{
	pthread_mutex_lock(&fc->mu);
	if (fc->ndctx < DCTX_POOL) {
		fc->dctx[fc->ndctx++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&fc->mu);
	ZSTD_freeDCtx(d);
}

/* Frame `i` of `z`, pinned: release it with frame_put(). */
static int frame_get(struct frame_cache *fc, const struct zobject *z,
		     uint32_t i, struct cached_frame **out, const char **why)
{
	size_t len = (size_t)(z->table.doff[i + 1] - z->table.doff[i]);
	struct cached_frame *f, *other;
	char key[sizeof(f->key)];
	ZSTD_DCtx *d;
	int rc;

	snprintf(key, sizeof(key), "%s/%u", z->id, i);
	pthread_mutex_lock(&fc->mu);
	f = htab_get(fc->index, key);
	if (f) {
		f->refs++;
		fc->hits++;
		lru_unlink(fc, f);
		lru_push(fc, f);
	} else {
		fc->misses++;
	}
	pthread_mutex_unlock(&fc->mu);
	if (f) {
		*out = f;
		return 0;
	}

	f = malloc(sizeof(*f) + len);
	d = dctx_get(fc);
	if (!f || !d) {
		free(f);
		ZSTD_freeDCtx(d);
		return -ENOMEM;
	}
	rc = seekable_frame_read(z->fd, &z->table, i, d, f->data, why);
	dctx_put(fc, d);
	if (rc < 0) {
		free(f);
		return rc;
	}
	memcpy(f->key, key, sizeof(key));
	f->len = len;
	f->refs = 1;
	f->evicted = 0;

	pthread_mutex_lock(&fc->mu);
	other = htab_get(fc->index, key);
	if (other) {
		/* decompressed meanwhile by another reader: use theirs */
		other->refs++;
		free(f);
		f = other;
	} else if (htab_put(fc->index, f->key, f) == 0) {
		lru_push(fc, f);
		fc->used += len;
		fc->frames++;
		evict_locked(fc);
	} else {
		f->evicted = 1; /* not cached: freed once read */
	}
	pthread_mutex_unlock(&fc->mu);
	*out = f;
	return 0;
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
