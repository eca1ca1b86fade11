/*
 * frame_cache.h - reads of compressed objects, through one bounded cache
 * of decompressed frames per mount.
 *
 * A Parquet reader reads the footer, then column chunks (each in frames
 * of its own, seekable.h), often in reads smaller than a frame; a
 * sequential reader asks for the same frame many
 * times over.  Each frame is decompressed once and kept, least recently
 * used first out, while the cache holds less than its budget
 * (-o frame_cache=SIZE).  Frames are cached under the object file's
 * identity (device, inode, change time), so a key published anew never
 * sees its old frames.  A reader that goes through an object in order has
 * its next frames decompressed ahead of it, by threads of the cache's own,
 * while it copies out the current one.  Thread-safe.
 */
#ifndef FEATUREFS_FRAME_CACHE_H
#define FEATUREFS_FRAME_CACHE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "seekable.h"

/* One open compressed object: a descriptor of its own and its table.
 * Reads ahead hold a reference, so it outlives its handle's close. */
struct zobject {
	int fd;
	unsigned refs;		/* atomic */
	char id[64];		/* the object file's identity */
	struct seek_table table;
	/* the cache's, under its lock: */
	uint32_t next_frame;	/* the frame after the last one read */
	uint32_t ahead_end;	/* frames before it are read or asked ahead */
	uint64_t run;		/* bytes read in order up to next_frame */
};

struct frame_cache;

/* 0 or -ENOMEM.  A budget of 0 caches nothing: every read decompresses. */
int frame_cache_new(uint64_t budget, struct frame_cache **out);

/*
 * Start up to `threads` threads that decompress frames ahead of
 * sequential readers (after any fork: threads do not survive it).  None
 * start when the budget is under a few frames.  Returns how many did.
 */
unsigned frame_cache_read_ahead(struct frame_cache *fc, unsigned threads);

/* Stops the threads; no read may be under way. */
void frame_cache_free(struct frame_cache *fc);

/*
 * Open the compressed object at `fd` (which stays the caller's), of
 * `stored_size` bytes on disk and `logical_size` bytes to its readers.
 * 0; -EIO with *why set when its seek table is missing, corrupt or does
 * not give `logical_size`; another negative errno.
 */
int zobject_open(int fd, uint64_t stored_size, uint64_t logical_size,
		 struct zobject **out, const char **why);
/* Drop the caller's reference: the last one closes and frees it. */
void zobject_close(struct zobject *z);

/*
 * Read up to `size` logical bytes at `off` of `z` into `buf`: the bytes
 * read (fewer only at the end of the object), -EIO with *why set when a
 * frame it touches is corrupt, or another negative errno.
 */
ssize_t frame_cache_pread(struct frame_cache *fc, struct zobject *z,
			  void *buf, size_t size, uint64_t off,
			  const char **why);

/* The frames a read spans, pinned so a reply can be written from them. */
#define FRAME_SPAN_MAX 32
struct frame_span {
	struct iovec iov[FRAME_SPAN_MAX];	/* n of them, in order */
	struct cached_frame *pin[FRAME_SPAN_MAX];
	int n;
};

/*
 * As frame_cache_pread, for a read of FRAME_SPAN_MAX frames at most
 * (-E2BIG for more), but the bytes stay in the cache: `span` points at
 * them.  Release them with frame_cache_unpin(), whatever this returns.
 */
ssize_t frame_cache_pin(struct frame_cache *fc, struct zobject *z,
			size_t size, uint64_t off, struct frame_span *span,
			const char **why);
void frame_cache_unpin(struct frame_cache *fc, struct frame_span *span);

/* What the cache holds and has done, for stats and metrics. */
struct frame_cache_figures {
	uint64_t bytes, frames, hits, misses, evictions;
	uint64_t ahead;		/* frames decompressed ahead of a reader */
};
void frame_cache_figures(struct frame_cache *fc,
			 struct frame_cache_figures *out);

#endif
