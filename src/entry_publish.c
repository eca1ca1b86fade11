/*
 * entry_publish.c - how a write ends (SPEC §3): the claim of its key,
 * validation and the seal on close, publish on the last release, discard
 * as soon as it can never be published (on close, unlink or a failed
 * publish); a closed write whose publish failed is kept, tried again by
 * the recorder thread and left for the next mount at unmount.  Part of
 * the entry module (entry.c); entry_remove.c publishes a renamed scratch
 * file through entry_publish_writer().
 *
 * Publish order is what makes a crash harmless: fsync the tmp file,
 * link it into objects/ (never over an existing object), then flip the
 * manifest row to `published`.  A crash before the flip leaves an object
 * whose row says `writing`: fsck -p adopts it; nothing partial is visible.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "entry_int.h"
#include "fault.h"
#include "ffs.h"
#include "gc.h"
#include "hash.h"
#include "htab.h"
#include "log.h"
#include "lostfound.h"
#include "names.h"
#include "proc.h"
#include "seekable.h"

/* Take `w` away from node `n` and drop the node's reference. */
static void writer_detach(struct ffs *ffs, struct node *n, struct writer *w)
{
	int attached;

	pthread_mutex_lock(&ffs->lock);
	attached = n->w == w;
	if (attached) /* entry_open reads it without the lock */
		__atomic_store_n(&n->w, NULL, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ffs->lock);
	if (attached)
		writer_unref(w);
}

/* Log and count why `symbol/name` was not published. */
static void count_failure(struct ffs *ffs, enum load_failure reason,
			  const char *symbol, const char *name,
			  const char *detail)
{
	CTR_ADD(ffs->ctr.load_failures[reason], 1);
	log_warn("discard %s/%s: %s (%s)", symbol, name, detail,
		 load_failure_name(reason));
}

/* ---- claims and kept writes ----------------------------------------- */

/* A tmp file entry_discard() kept for the next mount (ffs->kept). */
struct kept_tmp {
	char key[LOCK_NAME_MAX + 1];	/* "symbol/key": its table key */
	char tmpname[STORE_TMP_NAME_MAX];
};

/* Remember that tmp/`tmpname` is kept for symbol/key. */
static void kept_add(struct ffs *ffs, const char *symbol, const char *key,
		     const char *tmpname)
{
	struct kept_tmp *k = calloc(1, sizeof(*k));
	int rc = -ENOMEM;

	if (k) {
		snprintf(k->key, sizeof(k->key), "%s/%s", symbol, key);
		snprintf(k->tmpname, sizeof(k->tmpname), "%s", tmpname);
		pthread_mutex_lock(&ffs->lock);
		rc = htab_put(ffs->kept, k->key, k); /* a key's claim is one */
		pthread_mutex_unlock(&ffs->lock);
	}
	if (rc < 0) /* a new write of the key would leave it to the next
		     * mount's sweep */
		free(k);
}

/* The tmp file kept for symbol/key, if it is tmp/`tmpname` (any name
 * when NULL); NULL if none.  ffs->lock held. */
static struct kept_tmp *kept_get_locked(struct ffs *ffs, const char *symbol,
					const char *key, const char *tmpname)
{
	char name[LOCK_NAME_MAX + 1];
	struct kept_tmp *k;

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	k = htab_get(ffs->kept, name);
	return k && (!tmpname || strcmp(k->tmpname, tmpname) == 0) ? k : NULL;
}

/* Whether tmp/`tmpname` (any, when NULL) is kept for symbol/key. */
static int kept_is(struct ffs *ffs, const char *symbol, const char *key,
		   const char *tmpname)
{
	int kept;

	pthread_mutex_lock(&ffs->lock);
	kept = kept_get_locked(ffs, symbol, key, tmpname) != NULL;
	pthread_mutex_unlock(&ffs->lock);
	return kept;
}

/* Take the tmp file kept for symbol/key (if it is tmp/`tmpname`, any
 * when NULL) out of ffs->kept: the caller frees it; NULL if none is. */
static struct kept_tmp *kept_take(struct ffs *ffs, const char *symbol,
				  const char *key, const char *tmpname)
{
	struct kept_tmp *k;

	pthread_mutex_lock(&ffs->lock);
	k = kept_get_locked(ffs, symbol, key, tmpname);
	if (k)
		htab_del(ffs->kept, k->key, k);
	pthread_mutex_unlock(&ffs->lock);
	return k;
}

/* A claim of symbol/key took over its row: the tmp file kept for it is
 * no write's any more, and goes. */
void entry_kept_supersede(struct ffs *ffs, const char *symbol,
			  const char *key)
{
	struct kept_tmp *k = kept_take(ffs, symbol, key, NULL);

	if (!k)
		return;
	store_tmp_unlink(ffs->store, k->tmpname);
	log_info("%s: a new write of the key replaces tmp/%s, kept since its "
		 "publish failed", k->key, k->tmpname);
	free(k);
}

/* 1 when a closed write of symbol/key is kept (gc_drop_stale_claims()). */
static int kept_has(void *arg, const char *symbol, const char *key)
{
	return kept_is(arg, symbol, key, NULL);
}

/* Give up the claim of symbol/key.  A manifest that refuses (locked, a
 * full disk) leaves its row behind, taken over by the key's next claim
 * meanwhile, and dropped by entry_drop_stale_claims() later. */
void entry_abandon_claim(struct ffs *ffs, const char *symbol,
			 const char *key)
{
	if (manifest_abandon(ffs->manifest, symbol, key) < 0)
		__atomic_store_n(&ffs->stale_claims, 1, __ATOMIC_RELAXED);
}

int entry_drop_stale_claims(struct ffs *ffs)
{
	int64_t dropped = 0;
	int rc;

	if (!__atomic_exchange_n(&ffs->stale_claims, 0, __ATOMIC_RELAXED))
		return 0;
	rc = gc_drop_stale_claims(ffs->manifest, ffs->store->mount_id,
				  kept_has, ffs, &dropped);
	if (rc < 0)
		__atomic_store_n(&ffs->stale_claims, 1, __ATOMIC_RELAXED);
	if (dropped)
		log_info("dropped the rows of %lld discarded %s that the "
			 "manifest could not drop at the time",
			 (long long)dropped,
			 plural(dropped, "write", "writes"));
	return rc;
}

/* Start manifest row `e` of `symbol`/`key` in `state`. */
static void row_init(struct manifest_entry *e, const char *symbol,
		     const char *key, enum entry_state state)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->symbol, sizeof(e->symbol), "%s", symbol);
	snprintf(e->key, sizeof(e->key), "%s", key);
	store_object_relpath(symbol, key, e->path, sizeof(e->path));
	e->state = state;
}

/* Claim `symbol`/`key` for writer `w` (SPEC §3 step 2), its row made in
 * `e`: manifest_claim()'s result, -EEXIST when the key is taken, -EIO
 * (logged) when a row in a state no featurefs writes takes it: no writer
 * will ever publish it, and a waiter would wait for nothing. */
int entry_claim_key(struct ffs *ffs, const struct writer *w,
		    const char *symbol, const char *key, int64_t created_ts,
		    struct manifest_entry *e)
{
	struct manifest_entry taken;
	int rc;

	row_init(e, symbol, key, ENTRY_WRITING);
	e->rows = -1;
	e->created_ts = created_ts;
	e->mode = w->mode;
	snprintf(e->writer, sizeof(e->writer), "%s", ffs->writer_id);
	rc = manifest_claim(ffs->manifest, e);
	if (rc == -EEXIST &&
	    manifest_get(ffs->manifest, symbol, key, &taken) == 0 &&
	    taken.state == ENTRY_UNKNOWN) {
		log_err("claim %s/%s: its manifest row is in a state no "
			"featurefs writes (a damaged or foreign row); fsck -y "
			"drops it (EIO)", symbol, key);
		rc = -EIO;
	}
	return rc;
}

/* ---- close: check and seal ------------------------------------------ */

/* The times and mode writer `w` shows, as a row takes them. */
void writer_attrs(struct writer *w, struct manifest_attrs *a)
{
	a->set = MANIFEST_SET_MTIME | MANIFEST_SET_MODE;
	a->mtime_ns = CTR_GET(w->mtime_ns);
	a->mode = CTR_GET(w->mode);
	a->ctime_ns = CTR_GET(w->ctime_ns);
}

/*
 * Record in the manifest that in-flight entry `n`'s tmp file holds what
 * its writer closed, checked and fsynced.  close() returns 0 on it, so a
 * daemon that dies before the publish must not lose it: recovery
 * publishes a sealed tmp file.  0, or the manifest's error.  w->mu held.
 */
static int writer_seal(struct ffs *ffs, struct node *n, struct writer *w)
{
	struct manifest_attrs a;
	int rc;

	if (w->sealed || w->published || w->abandoned ||
	    node_kind(n) != NODE_ENTRY)
		return 0;
	/* what recovery publishes carries the times and mode set so far
	 * (cp -p and rsync -a set them before close; setattr_writer()
	 * records later changes) */
	writer_attrs(w, &a);
	rc = fault_inject("seal");
	if (rc == 0)
		rc = manifest_seal(ffs->manifest, n->parent->name, n->key,
				   w->tmpname, &a);
	if (rc == 0)
		w->sealed = 1;
	return rc;
}

/* writer_seal() where close() has returned 0 already: a failure is only
 * logged, and the publish goes on.  w->mu held. */
static void writer_seal_late(struct ffs *ffs, struct node *n,
			     struct writer *w)
{
	int rc = writer_seal(ffs, n, w);

	if (rc < 0)
		log_warn("%s: recording its tmp file as closed failed (%s): "
			 "the daemon dying before the publish would lose it",
			 n->hkey, strerror(-rc));
}

/* The content of sealed writer `w` is about to change: withdraw the seal
 * first, so that recovery never publishes a mix of old and new.  0, or
 * the manifest's error, which refuses the change.  w->mu held. */
int writer_unseal(struct ffs *ffs, struct node *n, struct writer *w)
{
	int rc;

	if (!w->sealed)
		return 0;
	rc = manifest_seal(ffs->manifest, n->parent->name, n->key, "", NULL);
	if (rc < 0 && rc != -ENOENT) {
		log_err("write %s: withdrawing its closed state failed: %s",
			n->hkey, strerror(-rc));
		return rc;
	}
	w->sealed = 0;
	return 0;
}

/* A run of zeros this long never comes out of a compressor: in a
 * compressed page, a range that long no write reached is a part its
 * writer skipped, not zeros a sparse writer left unwritten. */
#define COMPRESSED_ZEROS_MAX 64

/* The ranges of a file no write reached, and the first one refused:
 * [from, to), none while `to` is 0. */
struct gap_walk {
	uint64_t (*gap)[2];
	size_t n;
	uint64_t from, to;
};

/* parquet_walk_pages() callback: note a range no write reached of at
 * least COMPRESSED_ZEROS_MAX bytes inside a compressed page's payload,
 * and stop there (1). */
static int find_skipped_in_compressed(void *arg, uint64_t off, uint64_t hlen,
				      uint64_t payload, int compressed)
{
	struct gap_walk *g = arg;
	uint64_t start = off + hlen, end = start + payload, from, to;
	size_t lo = 0, hi = g->n;

	if (!compressed)
		return 0;
	while (lo < hi) { /* the first gap that ends after the start */
		size_t mid = lo + (hi - lo) / 2;

		if (g->gap[mid][1] <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < g->n && g->gap[lo][0] < end; lo++) {
		from = g->gap[lo][0] > start ? g->gap[lo][0] : start;
		to = g->gap[lo][1] < end ? g->gap[lo][1] : end;
		if (to - from >= COMPRESSED_ZEROS_MAX) {
			g->from = from;
			g->to = to;
			return 1;
		}
	}
	return 0;
}

/* The holes the filesystem reports in the first `size` bytes of `fd`, a
 * block at a time, as coverage_gaps() gives ranges: for a writer whose
 * writes were too scattered to keep.  At most COVERAGE_MAX_SPANS. */
static int holes_by_seek(int fd, uint64_t size, uint64_t (**gaps)[2],
			 size_t *n)
{
	uint64_t (*v)[2] = NULL;
	off_t hole, data = 0;
	size_t cap = 0;

	*n = 0;
	while (*n < COVERAGE_MAX_SPANS) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole >= size)
			break;
		data = lseek(fd, hole, SEEK_DATA);
		if (*n == cap) {
			void *p = realloc(v, (cap = cap ? 2 * cap : 16) *
						     sizeof(*v));

			if (!p) {
				free(v);
				return -ENOMEM;
			}
			v = p;
		}
		v[*n][0] = (uint64_t)hole;
		v[*n][1] = data < 0 || (uint64_t)data > size ? size
							     : (uint64_t)data;
		if (v[(*n)++][1] == size)
			break;
	}
	*gaps = v;
	return 0;
}

/*
 * Whether writer `w`'s bytes have a hole: a range no write reached that
 * is not zeros the writer meant.  A writer that wrote out of order (a
 * download in parts) and left a range is missing a part: refused at
 * its first gap.  A writer that wrote front to back left zeros it
 * skipped, as sparse writers do (cp and dd conv=sparse skip zero blocks,
 * rsync -S the zeros at the ends of each write, zstd -d zero words):
 * what reads as zeros there is what it meant, as long as the file's
 * pages still walk, header to header (a header no write reached would
 * read as zeros, and not parse), and no compressed page misses a run of
 * zeros no compressor makes.  -EIO with `perr` saying where, or the
 * read's error.  The writes seen tell the ranges, to the byte; where
 * they were too scattered to keep, SEEK_HOLE does, a block at a time.
 */
static int check_no_hole(struct writer *w, struct parquet_error *perr)
{
	struct parquet_error walk_err = { "io", "" };
	struct gap_walk g = { NULL, 0, 0, 0 };
	int rc;

	rc = coverage_whole(&w->covered, w->size);
	if (rc == 1)
		return 0;
	rc = rc < 0 ? holes_by_seek(w->fd, w->size, &g.gap, &g.n)
		    : coverage_gaps(&w->covered, w->size, &g.gap, &g.n);
	if (rc < 0 || g.n == 0)
		goto out;
	if (!w->covered.out_of_order) {
		rc = fault_inject("page_walk");
		if (rc == 0)
			rc = parquet_walk_pages(w->fd, w->size,
						find_skipped_in_compressed, &g,
						&walk_err);
		if (rc < 0 &&
		    (rc != -EIO || !parquet_error_is_content(&walk_err))) {
			*perr = walk_err; /* the disk failed, not the content */
			goto out;
		}
	}
	/* a part not come, or pages that do not walk (a header in a gap):
	 * the first gap is one */
	if (w->covered.out_of_order || rc < 0) {
		g.from = g.gap[0][0];
		g.to = g.gap[0][1];
	}
	rc = 0;
	if (g.to) {
		perr->reason = "truncated";
		snprintf(perr->detail, sizeof(perr->detail),
			 "bytes %llu to %llu were never written (a hole)",
			 (unsigned long long)g.from,
			 (unsigned long long)g.to - 1);
		rc = -EIO;
	}
out:
	free(g.gap);
	return rc;
}

/*
 * Validate and fsync the writer's data unless nothing changed since the
 * last check.  0 when publishable; -EIO when not Parquet (w->why says
 * why); another errno when the data could not be made durable.  w->mu held.
 */
int writer_check(struct ffs *ffs, struct writer *w)
{
	struct parquet_error perr = { "io", "" };
	int rc;

	if (w->checked && w->valid_gen == w->gen)
		return w->check_rc;
	if (w->write_err) {
		/* bytes the writer meant to write are missing: whatever the
		 * footer says, this is not the file it wrote */
		rc = w->write_err;
		w->why = rc == -ENOSPC || rc == -EDQUOT ? LOAD_NOSPACE : LOAD_IO;
		snprintf(w->why_detail, sizeof(w->why_detail),
			 "a write failed: %s", strerror(-rc));
		goto done;
	}
	rc = fault_inject("validate");
	if (rc == 0)
		rc = parquet_validate_fd(w->fd, w->size, &w->info, &perr, NULL);
	if (rc == 0)
		rc = check_no_hole(w, &perr);
	if (rc == 0) {
		rc = store_fsync(w->fd);
		if (rc < 0)
			snprintf(perr.detail, sizeof(perr.detail), "fsync: %s",
				 strerror(-rc));
	}
	if (rc < 0) {
		w->why = rc == -ENOSPC || rc == -EDQUOT
				 ? LOAD_NOSPACE
				 : load_failure_of(perr.reason);
		snprintf(w->why_detail, sizeof(w->why_detail), "%s",
			 perr.detail[0] ? perr.detail : strerror(-rc));
	}
done:
	(void)ffs;
	w->checked = 1;
	w->valid_gen = w->gen;
	w->check_rc = rc;
	return rc;
}

/* Whether `why` is about the bytes written, not about a write, an fsync
 * or the manifest failing. */
static int load_failure_is_content(enum load_failure why)
{
	return why == LOAD_EMPTY || why == LOAD_NOT_PARQUET ||
	       why == LOAD_TRUNCATED || why == LOAD_BAD_FOOTER ||
	       why == LOAD_ENCRYPTED;
}

/* The creator of in-flight entry `n` is dying of signal `sig` with it
 * open: what it wrote was cut short, even where no hole shows, and is
 * discarded, unless it is what an earlier close of it accepted.  The
 * dying close's result. */
static int writer_killed(struct ffs *ffs, struct node *n, struct writer *w,
			 int sig)
{
	int mine;

	pthread_mutex_lock(&w->mu);
	if (w->accepted && w->accepted_gen == w->gen) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	mine = writer_abandon_locked(ffs, n, w);
	if (mine) {
		w->why = LOAD_TRUNCATED;
		snprintf(w->why_detail, sizeof(w->why_detail),
			 "its writer was killed (signal %d) before it closed "
			 "it", sig);
	}
	pthread_mutex_unlock(&w->mu);
	if (mine)
		entry_discard(ffs, n, w, w->why, w->why_detail, 0);
	return -EIO;
}

/* Whether writer `w` was written to since it held generation `gen`: a
 * close that read /proc meanwhile judged content that is gone. */
static int writer_changed_since(struct writer *w, uint64_t gen)
{
	int changed;

	pthread_mutex_lock(&w->mu);
	changed = w->gen != gen;
	pthread_mutex_unlock(&w->mu);
	return changed;
}

int entry_flush(struct ffs *ffs, struct handle *h, pid_t pid)
{
	struct node_in_proc in_proc;
	const struct proc_file *file;
	struct writer *w = h->w;
	int rc, bad_content, mine, sig, abandoned, own_unlink, i;
	uint64_t gen;
	pid_t closer;

	if (h->kind != HANDLE_WRITER || node_kind(h->node) != NODE_ENTRY)
		return 0;
	closer = proc_tgid_of(pid);
	/* Either close below judges the content before it reads /proc, and
	 * another holder may finish the file and close it meanwhile (a
	 * child and its parent closing at once), or discard it: then all
	 * is judged again. */
again:
	rc = 0;
	pthread_mutex_lock(&w->mu);
	abandoned = w->abandoned;
	for (i = 0, own_unlink = 0; closer > 0 && i < WRITER_UNLINKERS; i++)
		own_unlink |= w->unlinked_by[i] == closer;
	pthread_mutex_unlock(&w->mu);
	if (abandoned) {
		/* close() returns 0 only for what is published, or kept to
		 * be: whoever closes a discarded write learns it was, but
		 * for the process that unlinked it, or started the one that
		 * did, which knows (a writer cleaning up after a failure,
		 * itself or with `rm`, then leaving its `with`) */
		if (own_unlink)
			return 0;
		log_info("close %s: its write was discarded: %s (EIO)",
			 h->node->hkey, w->why_detail);
		return -EIO;
	}
	/* only the creator's death: a child killed with an inherited
	 * descriptor may never have written to it */
	if (closer == w->tgid && (sig = proc_killed_by(pid)) != 0)
		return writer_killed(ffs, h->node, w, sig);
	/* A close in another process shuts an inherited descriptor (a shell
	 * child writing to its parent's file): the writer may not be done,
	 * and the last close is checked at release anyway.  But the child
	 * may have written it all (Popen(stdout=f)): valid content is sealed
	 * now, as its close() returns 0.  And when nothing else holds the
	 * file for writing (the writer closed first), invalid content is
	 * reported to this last close; release discards it. */
	if (closer != w->tgid) {
		pthread_mutex_lock(&w->mu);
		if (!w->abandoned && !w->published &&
		    (rc = writer_check(ffs, w)) == 0) {
			writer_seal_late(ffs, h->node, w);
			w->accepted = 1;
			w->accepted_gen = w->gen;
		}
		bad_content = rc < 0 && load_failure_is_content(w->why);
		gen = w->gen;
		pthread_mutex_unlock(&w->mu);
		if (!bad_content)
			return 0;
		file = entry_node_in_proc(ffs, h->node, &in_proc);
		if (proc_tree_writes_file(w->tgid, file) ||
		    proc_writes_file(closer, file))
			return 0;
		if (writer_changed_since(w, gen))
			goto again;
		log_info("close %s: %s; no other process writes it (EIO)",
			 h->node->hkey, w->why_detail);
		return rc;
	}
	pthread_mutex_lock(&w->mu);
	if (!w->abandoned && !w->published)
		rc = writer_check(ffs, w);
	/* close() may return 0 only once the content is recorded as closed:
	 * a manifest that cannot take that (locked by another process past
	 * its timeout, on a full disk) fails the close */
	if (rc == 0 && (rc = writer_seal(ffs, h->node, w)) < 0) {
		w->why = LOAD_MANIFEST;
		snprintf(w->why_detail, sizeof(w->why_detail),
			 "recording it as closed: %s", strerror(-rc));
	}
	if (rc == 0) {
		w->closed = w->accepted = 1;
		w->closed_gen = w->accepted_gen = w->gen;
	}
	bad_content = rc < 0 && load_failure_is_content(w->why);
	gen = w->gen;
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		return 0;
	/* while the writer or a child it started still holds the file for
	 * writing, more content is to come: it is checked at release, where
	 * a discard is logged; a failed write or fsync is reported now */
	if (bad_content) {
		file = entry_node_in_proc(ffs, h->node, &in_proc);
		if (proc_tree_writes_file(w->tgid, file)) {
			log_debug("close %s: %s; still open for writing, "
				  "checked at release", h->node->hkey,
				  w->why_detail);
			return 0;
		}
	}
	/* it can never be published: its name goes now, not at release,
	 * so that the writer's retry finds the key free */
	pthread_mutex_lock(&w->mu);
	if (bad_content && w->gen != gen) {
		pthread_mutex_unlock(&w->mu);
		goto again;
	}
	log_debug("close %s: %s", h->node->hkey, w->why_detail);
	mine = writer_abandon_locked(ffs, h->node, w);
	pthread_mutex_unlock(&w->mu);
	if (mine)
		entry_discard(ffs, h->node, w, w->why, w->why_detail, 0);
	return rc;
}

/* ---- publish and discard -------------------------------------------- */

/* Fill `e` with everything known about the finished writer `w`. */
static int describe_writer(struct ffs *ffs, struct writer *w,
			   const char *symbol, const char *key,
			   struct manifest_entry *e)
{
	struct byte_source src = fd_source(&w->fd);
	int rc;

	row_init(e, symbol, key, ENTRY_PUBLISHED);
	e->has_ts = w->info.has_ts;
	e->start_ts = w->info.start_ts_us;
	e->end_ts = w->info.end_ts_us;
	e->rows = w->info.rows;
	e->file_size = (int64_t)w->size;
	e->stored_size = (int64_t)w->size;
	snprintf(e->compression, sizeof(e->compression), "none");
	snprintf(e->hash_method, sizeof(e->hash_method), "%s",
		 hash_mode_name(ffs->opt.hash));
	e->created_ts = now_us();
	e->mtime_ns = w->mtime_ns;
	e->ctime_ns = w->ctime_ns;
	e->mode = w->mode;
	snprintf(e->writer, sizeof(e->writer), "%s", ffs->writer_id);
	if (ffs->opt.hash == HASH_FOOTER)
		rc = hash_footer(&src, w->size, w->info.footer_len, e->sha256);
	else if (!w->hash_broken && w->hashed == w->size) {
		rc = hash_finish(w->sha, e->sha256);
		/* the digest is final: should this publish fail, the next
		 * one (a rename again) hashes the file */
		w->hash_broken = 1;
	} else
		rc = hash_fd(w->fd, w->size, e->sha256);
	return rc;
}

/*
 * Compress checked writer `w`'s data into a new tmp file when the mount
 * stores objects compressed.  1 with `ztmp` named and `e` saying so when
 * the object is to be stored compressed; 0 when it stays as written
 * (compress=none, compress=auto saving less than 10 %, or a compressed
 * copy that could not be made, logged: the data is whole, and close()
 * has returned).  w->mu held.
 */
static int compress_writer(struct ffs *ffs, struct writer *w,
			   struct manifest_entry *e, char *ztmp, size_t len)
{
	struct seekable_plan plan;
	uint64_t stored = 0, *cuts = NULL;
	size_t ncuts = 0;
	int fd, rc, keep;

	if (ffs->opt.compress != COMPRESS_ZSTD &&
	    ffs->opt.compress != COMPRESS_AUTO)
		return 0;
	/* frames begin where column chunks do, so that a read of one
	 * decompresses its own frames only; without the bounds (the file
	 * was checked: only memory or the disk can fail), frames are cut
	 * in equal parts */
	(void)parquet_read_bounds(w->fd, w->size, &cuts, &ncuts);
	rc = seekable_plan(w->size, cuts, ncuts, &plan);
	free(cuts);
	if (rc < 0)
		goto as_written;
	fd = store_tmp_create(ffs->store, "zst", ztmp, len);
	if (fd < 0) {
		seekable_plan_free(&plan);
		rc = entry_fd_errno(fd);
		goto as_written;
	}
	rc = fault_inject("compress");
	if (rc == 0)
		rc = seekable_compress(w->fd, &plan, fd,
				       ffs->opt.compress_level,
				       1 + ffs->spare_cpus, &stored);
	seekable_plan_free(&plan);
	keep = ffs->opt.compress == COMPRESS_ZSTD || stored * 10 <= w->size * 9;
	if (rc == 0 && keep)
		rc = store_fsync(fd);
	close(fd);
	if (rc < 0 || !keep) {
		store_tmp_unlink(ffs->store, ztmp);
		goto as_written;
	}
	snprintf(e->compression, sizeof(e->compression), "zstd");
	e->stored_size = (int64_t)stored;
	return 1;
as_written:
	/* the data is whole and checked, and close() has returned 0: no
	 * failure of the copy is a reason to lose it */
	if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG)
		log_warn("publish %s/%s: no room to compress it (%s): stored "
			 "as written", e->symbol, e->key, strerror(-rc));
	else if (rc < 0)
		log_warn("publish %s/%s: compressing it failed (%s): stored as "
			 "written", e->symbol, e->key, strerror(-rc));
	return 0;
}

/* Entry `e`'s object path is taken, though its key is claimed here, so
 * no row names that object: its row was lost (a publish cut short by a
 * crash, a manifest restored from a backup).  Move the object to
 * lost+found/, as fsck -p would, so that the key can be published.  Two
 * publishes never share a key, so nothing else moves it meanwhile. */
static int quarantine_orphan(struct ffs *ffs, const struct manifest_entry *e)
{
	char dest[STORE_REL_MAX + 32];
	int rc;

	rc = lostfound_move_object(ffs->store, e->path,
				   "no manifest row named it when its key was "
				   "published again",
				   dest, sizeof(dest));
	if (rc == 0)
		log_warn("publish %s/%s: %s had no manifest row: moved it to "
			 "%s", e->symbol, e->key, e->path, dest);
	else
		log_err("publish %s/%s: %s exists without a manifest row, and "
			"moving it to lost+found/ failed: %s; fsck -p adopts or "
			"quarantines it", e->symbol, e->key, e->path,
			strerror(-rc));
	return rc;
}

/* Move tmp/`tmpname` into objects/ as entry `e`'s object; an orphan in
 * its place goes to lost+found/ first (quarantine_orphan()). */
static int install_object(struct ffs *ffs, const char *tmpname,
			  const struct manifest_entry *e)
{
	int rc = store_object_install(ffs->store, tmpname, e->symbol, e->key);

	if (rc == -EEXIST && quarantine_orphan(ffs, e) == 0)
		rc = store_object_install(ffs->store, tmpname, e->symbol,
					  e->key);
	return rc;
}

/* Node `n` of writer `w` names published entry `e` now, whose content
 * w's tmp file held: that file goes, and `n` is the entry, whose mode
 * w's process may still set when `writer_keeps_mode`.  w->mu held. */
static void writer_became_entry(struct ffs *ffs, struct node *n,
				struct writer *w,
				const struct manifest_entry *e,
				int writer_keeps_mode)
{
	w->published = 1;
	store_tmp_unlink(ffs->store, w->tmpname); /* the object has it */
	pthread_mutex_lock(&ffs->lock);
	if (n->kind == NODE_ENTRY)
		ffs->inflight--;
	node_set_published(ffs, n, e);
	n->writer_tgid = writer_keeps_mode ? w->tgid : 0;
	n->writer_start = writer_keeps_mode ? w->tgid_start : 0;
	pthread_mutex_unlock(&ffs->lock);
	writer_unref(w); /* the node's; the caller holds another */
}

int entry_same_as_published(struct ffs *ffs, struct writer *w,
			    const char *symbol, const char *key,
			    struct manifest_entry *e)
{
	char mine[SHA256_HEX_LEN + 1], why[256];
	struct manifest_entry obj;
	int rc;

	/* no removal of the row, nor claim of the key, until it is settled */
	rc = manifest_pin(ffs->manifest, symbol, key);
	if (rc < 0)
		return rc == -EBUSY ? -EEXIST : rc; /* in flight, or going */
	rc = manifest_get(ffs->manifest, symbol, key, e);
	if (rc == 0 && (e->state != ENTRY_PUBLISHED ||
			(uint64_t)e->file_size != w->size))
		rc = -EEXIST;
	if (rc == 0)
		rc = hash_fd(w->fd, w->size, mine);
	/* the object's own bytes, not the row's word for them: a damaged
	 * object is other bytes, and the file renamed stays */
	if (rc == 0 && gc_describe_object(ffs->store, symbol, key, e->path, 1,
					  &obj, why, sizeof(why)) < 0) {
		log_warn("%s/%s: its object does not read back: %s", symbol,
			 key, why);
		rc = -EEXIST;
	}
	if (rc == 0 && strcmp(mine, obj.sha256) != 0)
		rc = -EEXIST;
	if (rc < 0)
		manifest_release(ffs->manifest, symbol, key);
	return rc;
}

void entry_publish_same(struct ffs *ffs, struct node *n, struct writer *w,
			struct manifest_entry *e)
{
	struct manifest_attrs a = { MANIFEST_SET_MTIME,
				    CTR_GET(w->mtime_ns), 0, now_us() * 1000 };
	int rc;

	/* a rename gives the name the renamed file's modification time
	 * (rsync set it on its temporary file, and looks at it next time)
	 * and a new change time; the mode stays the entry's, which only
	 * the entry's writer may change */
	rc = manifest_set_attrs(ffs->manifest, e->symbol, e->key, &a);
	if (rc < 0) {
		log_warn("%s/%s: setting its times: %s", e->symbol, e->key,
			 strerror(-rc));
	} else {
		e->mtime_ns = a.mtime_ns;
		e->ctime_ns = a.ctime_ns;
		pthread_mutex_lock(&ffs->lock);
		ffs->rows_changed++;
		pthread_mutex_unlock(&ffs->lock);
	}
	/* written again, as it were: no GC pass takes it for idle now (an
	 * access, not a hit) */
	access_log_add(ffs->access, e->symbol, e->key, now_us());
	writer_became_entry(ffs, n, w, e, 0);
	log_debug("%s: its bytes are those published as %s/%s already, "
		  "which stays", w->tmpname, e->symbol, e->key);
}

/*
 * Publish checked writer `w` (the key is claimed) as <symbol>/<key>, then
 * make node `n` that published entry.  On failure nothing is left in
 * objects/, w->tmpname is still there, and the claim is the caller's to
 * settle.  w->mu held.
 */
int entry_publish_writer(struct ffs *ffs, struct node *n, struct writer *w,
			 struct node *symbol, const char *key)
{
	char ztmp[STORE_TMP_NAME_MAX];
	struct manifest_entry e;
	int64_t start = mono_us();
	enum load_failure why = LOAD_IO;
	const char *step = "hash";
	int rc, compressed = 0;

	rc = describe_writer(ffs, w, symbol->name, key, &e);
	if (rc == 0) {
		compressed = compress_writer(ffs, w, &e, ztmp, sizeof(ztmp));
		step = "install";
		rc = install_object(ffs, compressed > 0 ? ztmp : w->tmpname,
				    &e);
		if (rc == -ENOSPC || rc == -EDQUOT)
			why = LOAD_NOSPACE;
	}
	if (rc == 0) {
		rc = fault_inject("after_rename");
		step = "manifest";
		why = LOAD_MANIFEST;
		if (rc == 0)
			rc = fault_inject("manifest_publish");
		if (rc == 0)
			rc = manifest_publish(ffs->manifest, &e);
		if (rc < 0) {
			int urc = store_object_unlink(ffs->store, e.path);

			if (urc < 0)
				log_err("publish %s/%s: remove %s after failed "
					"manifest update: %s", symbol->name,
					key, e.path, strerror(-urc));
		}
	}
	if (compressed > 0) /* in objects/ now, or of no use */
		store_tmp_unlink(ffs->store, ztmp);
	if (rc < 0) {
		snprintf(w->why_detail, sizeof(w->why_detail), "%s: %s", step,
			 strerror(-rc));
		w->why = why;
		return rc;
	}
	writer_became_entry(ffs, n, w, &e, 1);
	CTR_ADD(ffs->ctr.publishes, 1);
	hist_observe(&ffs->ctr.publish, mono_us() - start);
	log_debug("published %s/%s (%lld bytes, %lld stored, %s, %lld rows)",
		  symbol->name, key, (long long)e.file_size,
		  (long long)e.stored_size, e.compression, (long long)e.rows);
	return 0;
}

/*
 * Publish kept write symbol/key (kept_add()) now: claim its row back,
 * check tmp/`tmpname` again, install it as written and publish the row,
 * as the next mount's recovery would.  1 when published; 0 when it is no
 * longer this mount's to publish, and is dropped; else a negative errno,
 * and it stays kept for the next try.
 */
static int publish_kept(struct ffs *ffs, const char *symbol, const char *key,
			const char *tmpname)
{
	const char *gone = "its row went, or moved on to another write";
	struct manifest_entry row, e;
	struct kept_tmp *k;
	char why[256];
	int rc;

	rc = fault_inject("publish_kept");
	if (rc == 0)
		rc = manifest_get(ffs->manifest, symbol, key, &row);
	if (rc == 0 && (row.state != ENTRY_WRITING ||
			strcmp(row.sealed_tmp, tmpname) != 0))
		rc = -ENOENT;
	if (rc == 0) {
		rc = manifest_claim(ffs->manifest, &row);
		if (rc == -EEXIST)
			return -EBUSY; /* a claim of the key in progress */
	}
	if (rc == -ENOENT)
		goto drop;
	if (rc < 0)
		return rc;
	/* the key is held now, so no claim can take the file out of
	 * ffs->kept; one that took the row over before has done so */
	if (!kept_is(ffs, symbol, key, tmpname)) {
		entry_abandon_claim(ffs, symbol, key);
		return 0;
	}
	rc = gc_describe_sealed(ffs->store, &row, 1, &e, why, sizeof(why));
	if (rc < 0 && !gc_describe_rules_out(rc)) {
		/* a read that failed, no memory: not the content's fault,
		 * so it stays kept for the next try */
		manifest_release(ffs->manifest, symbol, key);
		return rc;
	}
	if (rc < 0) {
		entry_abandon_claim(ffs, symbol, key);
		gone = why;
		goto drop;
	}
	rc = install_object(ffs, tmpname, &e);
	if (rc == 0) {
		e.mode = row.mode;
		e.mtime_ns = row.mtime_ns;
		e.ctime_ns = row.ctime_ns;
		snprintf(e.writer, sizeof(e.writer), "%s", row.writer);
		rc = fault_inject("manifest_publish");
		if (rc == 0)
			rc = manifest_publish(ffs->manifest, &e);
		if (rc < 0)
			store_object_unlink(ffs->store, e.path);
	}
	if (rc < 0) {
		manifest_release(ffs->manifest, symbol, key);
		return rc;
	}
	free(kept_take(ffs, symbol, key, tmpname));
	store_tmp_unlink(ffs->store, tmpname); /* the object has it */
	CTR_ADD(ffs->ctr.publishes, 1);
	log_info("published %s/%s, kept since its publish failed: the "
		 "manifest takes it now", symbol, key);
	return 1;
drop:
	k = kept_take(ffs, symbol, key, tmpname);
	if (k) {
		store_tmp_unlink(ffs->store, tmpname);
		log_warn("%s/%s: tmp/%s, kept since its publish failed, is "
			 "given up: %s", symbol, key, tmpname, gone);
		free(k);
	}
	return 0;
}

static void kept_collect(void *arg, void *value)
{
	struct kept_tmp **next = arg;

	*(*next)++ = *(struct kept_tmp *)value;
}

int entry_publish_kept(struct ffs *ffs)
{
	struct kept_tmp *todo, *next;
	size_t n, i;
	int rc = 0, one;

	pthread_mutex_lock(&ffs->lock);
	n = htab_count(ffs->kept);
	todo = n ? malloc(n * sizeof(*todo)) : NULL;
	next = todo;
	if (todo)
		htab_each(ffs->kept, kept_collect, &next);
	pthread_mutex_unlock(&ffs->lock);
	if (!todo)
		return n ? -ENOMEM : 0;
	for (i = 0; i < n; i++) {
		char symbol[SYMBOL_MAX + 1];
		char *slash = strchr(todo[i].key, '/');

		if (!slash)
			continue;
		snprintf(symbol, sizeof(symbol), "%.*s",
			 (int)(slash - todo[i].key), todo[i].key);
		one = publish_kept(ffs, symbol, slash + 1, todo[i].tmpname);
		if (one < 0 && one != -EBUSY) {
			int64_t held_back = log_limit_pass(&ffs->kept_log);

			if (held_back >= 0)
				log_warn("%s: tmp/%s, kept since its publish "
					 "failed, is still refused: %s%s",
					 todo[i].key, todo[i].tmpname,
					 strerror(-one),
					 held_back ? " (and more since)" : "");
			rc = one; /* the rest would meet the same refusal */
			break;
		}
	}
	free(todo);
	return rc;
}

static void kept_report(void *arg, void *value)
{
	const struct kept_tmp *k = value;

	(void)arg;
	log_warn("%s: tmp/%s, kept since its publish failed, is left with "
		 "its row for the next mount, or fsck -p, to publish",
		 k->key, k->tmpname);
}

void entry_report_kept(struct ffs *ffs)
{
	pthread_mutex_lock(&ffs->lock);
	htab_each(ffs->kept, kept_report, NULL);
	pthread_mutex_unlock(&ffs->lock);
}

/* Claim the discard of `w`, the writer of entry `n`: 1 when the caller
 * is the one to discard it, 0 when it is published or discarded already.
 * The name goes at once, under the same hold of ffs->lock, so that no
 * lookup finds a write being discarded (an open that met it gets ESTALE,
 * and the kernel's second look must not meet it again).  w->mu held. */
int writer_abandon_locked(struct ffs *ffs, struct node *n,
			  struct writer *w)
{
	if (w->published || w->abandoned)
		return 0;
	pthread_mutex_lock(&ffs->lock);
	__atomic_store_n(&w->abandoned, 1, __ATOMIC_RELAXED);
	if (w->handles > 0) {
		w->open_abandoned = 1;
		CTR_ADD(ffs->abandoned_open, 1);
	}
	ffs->inflight--;
	node_unlink(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
	pthread_cond_broadcast(&w->settled);
	return 1;
}

/* Drop in-flight entry `n`, whose name is gone: tmp data and claim;
 * waiting readers get ENOENT.
 * With `keep` (its writer's close() returned 0 on content it sealed, and
 * this mount could not publish it), the tmp file and its row stay for
 * the next mount's recovery, or fsck -p, to publish.  Only the caller
 * that won writer_abandon_locked() calls this. */
void entry_discard(struct ffs *ffs, struct node *n, struct writer *w,
		   enum load_failure why, const char *detail, int keep)
{
	if (keep) {
		kept_add(ffs, n->parent->name, n->key, w->tmpname);
		manifest_release(ffs->manifest, n->parent->name, n->key);
		log_warn("%s: its writer's close() returned 0: tmp/%s stays, "
			 "with its row, and is published once the manifest and "
			 "the store take it (by this mount, the next, or fsck "
			 "-p)", n->hkey, w->tmpname);
	} else {
		store_tmp_unlink(ffs->store, w->tmpname);
		entry_abandon_claim(ffs, n->parent->name, n->key);
	}
	entry_wake_waiters(ffs, n, -ENOENT);
	ffs->hooks->inval_entry(ffs, n->parent, n->name);
	count_failure(ffs, why, n->parent->name, n->name, detail);
}

/* The last write handle of in-flight entry `n` closed: publish or
 * discard.  w->mu held since that close, so whoever takes it next (a
 * getxattr, a setattr) sees the outcome; dropped here. */
static void finish_entry(struct ffs *ffs, struct node *n, struct writer *w)
{
	int rc;

	rc = writer_check(ffs, w);
	if (rc == 0) {
		writer_seal_late(ffs, n, w); /* while it compresses */
		rc = entry_publish_writer(ffs, n, w, n->parent, n->key);
	}
	if (rc < 0)
		/* ours to discard: w->mu was held throughout */
		writer_abandon_locked(ffs, n, w);
	pthread_cond_broadcast(&w->settled);
	pthread_mutex_unlock(&w->mu);
	if (rc == 0) {
		ffs->hooks->inval_inode(ffs, n);
		entry_wake_waiters(ffs, n, 0);
	} else {
		/* sealed: w->mu is no longer held, but nothing changes a
		 * writer that is abandoned */
		entry_discard(ffs, n, w, w->why, w->why_detail, w->sealed);
		writer_detach(ffs, n, w);
	}
}

/* How often writer_lock_settled() tries for a lock held by a publish */
#define PUBLISH_POLL_US 1000

void writer_wait_closed(struct writer *w, int64_t us)
{
	struct timespec until = mono_deadline(mono_us() + us);

	while (!w->published && !w->abandoned && w->closed &&
	       w->closed_gen == w->gen)
		if (pthread_cond_timedwait(&w->settled, &w->mu, &until) ==
		    ETIMEDOUT)
			break;
}

int writer_lock_settled(struct writer *w)
{
	int64_t deadline = mono_us() + CLOSE_WAIT_US;

	/* polled: the thread sanitizer of this toolchain does not know
	 * pthread_mutex_clocklock */
	while (pthread_mutex_trylock(&w->mu) != 0) {
		if (mono_us() >= deadline)
			return -ETIMEDOUT;
		usleep(PUBLISH_POLL_US);
	}
	writer_wait_closed(w, deadline - mono_us());
	return 0;
}

void entry_release_writer_ref(struct ffs *ffs, struct node *n,
			      struct writer *w)
{
	int last, finish, abandoned;

	pthread_mutex_lock(&w->mu);
	CTR_SET(w->touched_us, mono_us());
	last = --w->handles == 0;
	finish = last && !w->abandoned && !w->published &&
		 n->kind == NODE_ENTRY;
	abandoned = last && w->abandoned;
	if (last && w->open_abandoned) {
		w->open_abandoned = 0;
		CTR_ADD(ffs->abandoned_open, -1);
	}
	if (finish) {
		finish_entry(ffs, n, w);
	} else {
		pthread_mutex_unlock(&w->mu);
		if (abandoned)
			writer_detach(ffs, n, w);
	}
	writer_unref(w);
}

void entry_discard_all(struct ffs *ffs)
{
	struct node *n;
	struct writer *w;

	for (;;) {
		pthread_mutex_lock(&ffs->lock);
		for (n = ffs->all; n; n = n->next_all)
			if (n->w && n->linked)
				break;
		w = n ? n->w : NULL;
		if (w)
			writer_ref(w); /* under ffs->lock: n->w holds it */
		pthread_mutex_unlock(&ffs->lock);
		if (!n)
			break;
		if (node_kind(n) == NODE_ENTRY) {
			int mine;

			pthread_mutex_lock(&w->mu);
			if (w->sealed && !w->published && !w->abandoned) {
				/* close() accepted it, and no write reaches
				 * it any more (a descriptor still open, or
				 * a release the session ended before):
				 * published now, or kept if that fails */
				finish_entry(ffs, n, w);
				writer_detach(ffs, n, w);
				writer_unref(w);
				continue;
			}
			mine = writer_abandon_locked(ffs, n, w);
			pthread_mutex_unlock(&w->mu);
			if (mine)
				entry_discard(ffs, n, w, LOAD_ABANDONED,
					      "unmounted before its writer "
					      "closed it", 0);
		} else {
			store_tmp_unlink(ffs->store, w->tmpname);
			pthread_mutex_lock(&ffs->lock);
			node_unlink(ffs, n);
			pthread_mutex_unlock(&ffs->lock);
		}
		writer_detach(ffs, n, w);
		writer_unref(w);
	}
}
