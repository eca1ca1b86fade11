/*
 * gc.c - one garbage-collection pass over a store.
 *
 * Candidates are read from the manifest in keyset-paged batches (GC_BATCH
 * rows for a mount), each batch is removed in one transaction, and the
 * stop flag is checked between batches, so a pass over a million entries
 * never holds the manifest for long and unmount can cut it short.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fault.h"
#include "gc.h"
#include "hash.h"
#include "htab.h"
#include "log.h"
#include "lostfound.h"
#include "names.h"
#include "options.h"
#include "parquet.h"
#include "seekable.h"

struct batch {
	struct manifest_entry *rows;
	size_t n;
};

static int batch_add(void *arg, const struct manifest_entry *e)
{
	struct batch *b = arg;

	b->rows[b->n++] = *e;
	return 0;
}

static int stopped(const struct gc_env *env)
{
	return env->stop && __atomic_load_n(env->stop, __ATOMIC_RELAXED);
}

static void record(struct gc_result *res, const struct gc_options *o,
		   const struct manifest_entry *e, const char *why)
{
	if (o->list == GC_LIST_TEXT) {
		sb_addf(&res->listing, "  %s/%s" ENTRY_SUFFIX "  %lld  %s\n",
			e->symbol, e->key, (long long)e->stored_size, why);
		return;
	}
	if (o->list != GC_LIST_JSON)
		return;
	if (res->listing.len)
		sb_adds(&res->listing, ", ");
	sb_adds(&res->listing, "{\"symbol\": ");
	sb_json_str(&res->listing, e->symbol);
	sb_adds(&res->listing, ", \"key\": ");
	sb_json_str(&res->listing, e->key);
	sb_addf(&res->listing, ", \"stored_bytes\": %lld, \"reason\": \"%s\"}",
		(long long)e->stored_size, why);
}

/* 1 when row `e` names an object featurefs could have written: its
 * object is objects/<symbol>/<key>.parquet, whatever its path says. */
static int row_names_ok(const struct manifest_entry *e)
{
	return name_check_symbol(e->symbol) == 0 && name_check_key(e->key) == 0;
}

/* What a pass would make of row `e`: 0 removed, -EINVAL left for fsck
 * (gc_remove_rows()), -EBUSY skipped as in use. */
static int dry_run_result(const struct gc_env *env,
			  const struct manifest_entry *e)
{
	if (!row_names_ok(e))
		return -EINVAL;
	if (env->in_use && env->in_use(env->arg, e))
		return -EBUSY;
	return 0;
}

/* A row's stored size as the quota counts it: a damaged row's negative
 * one as nothing (fsck reports the row). */
static int64_t row_bytes(const struct manifest_entry *e)
{
	return e->stored_size > 0 ? e->stored_size : 0;
}

/* How many of the `n` candidates the pass should take: all, unless the
 * quota is reached before.  The estimate assumes every removal works;
 * for one that does not, the pass takes the candidates after them. */
static size_t batch_take(const struct manifest_entry *rows, size_t n,
			 int64_t stored, int64_t target)
{
	size_t i;

	if (target < 0)
		return n;
	for (i = 0; i < n && stored > target; i++)
		stored -= row_bytes(&rows[i]);
	return i;
}

/*
 * Remove the rows `q` matches, batch by batch in its order, until there
 * are no more or stored bytes are at `target` (-1: no target).
 */
static int remove_matching(const struct gc_env *env, const struct gc_options *o,
			   struct manifest_query *q, struct gc_result *res,
			   int64_t *stored, int64_t target, const char *why)
{
	size_t per_batch = env->batch ? env->batch : GC_BATCH;
	struct batch b = { NULL, 0 };
	char after_symbol[SYMBOL_MAX + 1], after_key[KEY_MAX + 1];
	int *results = NULL;
	size_t i, from, take;
	int rc = 0;

	b.rows = malloc(per_batch * sizeof(*b.rows));
	results = calloc(per_batch, sizeof(*results));
	if (!b.rows || !results) {
		rc = -ENOMEM;
		goto out;
	}
	q->limit = per_batch;
	for (;;) {
		if (stopped(env)) {
			res->interrupted = 1;
			break;
		}
		b.n = 0;
		rc = manifest_list(env->manifest, q, batch_add, &b);
		if (rc < 0 || b.n == 0)
			break;
		/* the quota may be met half-way through the batch on paper;
		 * what failed to go is made up for by the rows after */
		for (from = 0; from < b.n; from += take) {
			struct manifest_entry *rows = b.rows + from;

			take = batch_take(rows, b.n - from, *stored, target);
			if (take == 0)
				goto out;
			if (!o->dry_run) {
				rc = env->remove(env->arg, rows, take, results);
				if (rc < 0)
					goto out;
			}
			for (i = 0; i < take; i++) {
				/* a dry run can tell of the rows a pass
				 * leaves alone (gc_remove_rows()) */
				if (o->dry_run)
					results[i] = dry_run_result(env,
								    &rows[i]);
				if (results[i] == -EBUSY)
					res->skipped_busy++;
				if (results[i] < 0)
					continue;
				res->removed_entries++;
				if (__builtin_add_overflow(res->removed_bytes,
							   row_bytes(&rows[i]),
							   &res->removed_bytes))
					res->removed_bytes = INT64_MAX;
				/* not below 0 where damaged rows claim more
				 * than the totals hold */
				*stored -= row_bytes(&rows[i]);
				if (*stored < 0)
					*stored = 0;
				record(res, o, &rows[i], why);
			}
		}
		if (b.n < per_batch)
			break;
		/* continue after the last row seen: removed or skipped */
		snprintf(after_symbol, sizeof(after_symbol), "%s",
			 b.rows[b.n - 1].symbol);
		snprintf(after_key, sizeof(after_key), "%s", b.rows[b.n - 1].key);
		q->after_ts = b.rows[b.n - 1].last_accessed_ts
				      ? b.rows[b.n - 1].last_accessed_ts
				      : b.rows[b.n - 1].created_ts;
		q->after_symbol = after_symbol;
		q->after_key = after_key;
	}
out:
	free(results);
	free(b.rows);
	return rc;
}

/* Make the unlinks of removed rows' objects (unlinked[i] == 0) durable,
 * one fsync a symbol directory: their removal notes go next, and a note
 * dropped over an unlink that a power loss undid would bring the entry
 * back as an orphan.  A directory that fails keeps its rows' notes
 * (unlinked[i] set to why), for the next recovery to finish. */
static void sync_unlinks(struct store *s, const struct manifest_entry *rows,
			 size_t n, int *unlinked)
{
	struct htab *synced;
	size_t i, j;
	int rc;

	if (htab_new(&synced) < 0)
		synced = NULL; /* each row's directory, then */
	for (i = 0; i < n; i++) {
		if (unlinked[i] < 0 ||
		    (synced && htab_get(synced, rows[i].symbol)))
			continue;
		if (synced && htab_add_string(synced, rows[i].symbol) < 0) {
			htab_free_values(synced);
			synced = NULL;
		}
		rc = store_symbol_dir_sync(s, rows[i].symbol);
		if (rc == 0)
			continue;
		log_err("gc: fsync of objects/%s: %s; the next recovery "
			"finishes its removals again", rows[i].symbol,
			strerror(-rc));
		for (j = i; j < n; j++)
			if (unlinked[j] == 0 &&
			    strcmp(rows[j].symbol, rows[i].symbol) == 0)
				unlinked[j] = rc;
	}
	htab_free_values(synced);
}

int gc_remove_rows(struct manifest *m, struct store *s,
		   const struct manifest_entry *rows, size_t n, int *results,
		   int (*in_use)(void *arg, const struct manifest_entry *e),
		   void (*removed)(void *arg, const struct manifest_entry *e),
		   void *arg)
{
	const char **paths = calloc(n + 1, sizeof(*paths));
	int *unlinked = calloc(n + 1, sizeof(*unlinked));
	char (*rel)[STORE_REL_MAX] = calloc(n + 1, sizeof(*rel));
	size_t i, j, malformed = 0;
	int rc, removed_any = 0;

	rc = paths && unlinked && rel ? 0 : -ENOMEM;
	if (rc < 0)
		goto out;
	/* each run of rows to remove in one transaction: a row of an edited
	 * manifest is fsck's to judge, and its path is not trusted */
	for (i = 0; i < n; i = j) {
		for (j = i; j < n; j++) {
			if (!row_names_ok(&rows[j]))
				results[j] = -EINVAL;
			else if (in_use && in_use(arg, &rows[j]))
				results[j] = -EBUSY;
			else
				continue;
			break;
		}
		if (j > i && rc == 0)
			rc = manifest_remove_batch(m, rows + i, j - i,
						   results + i);
		if (rc < 0) /* -ENOMEM: this run and the rest stay */
			for (; i < j; i++)
				results[i] = rc;
		if (j < n && results[j++] == -EINVAL)
			malformed++;
	}
	if (malformed)
		log_warn("gc: %zu rows with malformed names left alone; fsck "
			 "reports them", malformed);
	for (i = 0; i < n; i++) {
		if (results[i] < 0)
			continue;
		store_object_relpath(rows[i].symbol, rows[i].key, rel[i],
				     sizeof(rel[i]));
		paths[i] = rel[i];
		removed_any = 1;
	}
	if (!removed_any)
		goto out; /* rc: why nothing was removed, or 0 */
	rc = 0;
	fault_inject("remove_unlink"); /* a crash here: rows gone, not objects */
	store_objects_unlink(s, paths, n, unlinked);
	for (i = 0; i < n; i++) {
		if (results[i] < 0) {
			unlinked[i] = results[i];
			continue;
		}
		if (unlinked[i] == -ENOENT)
			unlinked[i] = 0;
		if (unlinked[i] < 0)
			log_err("unlink %s: %s (row removed; the next recovery "
				"tries again)", paths[i],
				strerror(-unlinked[i]));
	}
	sync_unlinks(s, rows, n, unlinked);
	/* done, but for the objects that are still there: should that fail,
	 * the next recovery finds the objects gone */
	manifest_removals_done(m, rows, n, unlinked);
	for (i = 0; i < n; i++) {
		if (results[i] < 0)
			continue;
		if (removed)
			removed(arg, &rows[i]);
		manifest_release(m, rows[i].symbol, rows[i].key);
	}
out:
	free(rel);
	free(unlinked);
	free(paths);
	return rc;
}

int gc_finish_removal(struct store *s, struct manifest *m, const char *symbol,
		      const char *key)
{
	struct manifest_entry e, row;
	char rel[STORE_REL_MAX];
	const char *path = rel;
	int unlinked = 0, rc;

	memset(&e, 0, sizeof(e));
	snprintf(e.symbol, sizeof(e.symbol), "%s", symbol);
	snprintf(e.key, sizeof(e.key), "%s", key);
	/* a name featurefs could not have written names no object */
	rc = row_names_ok(&e) ? manifest_get(m, symbol, key, &row) : 0;
	if (rc == -ENOENT) {
		store_object_relpath(symbol, key, rel, sizeof(rel));
		store_objects_unlink(s, &path, 1, &rc);
		if (rc == -EISDIR) {
			char dest[STORE_REL_MAX + 64];

			/* a directory no featurefs made: whatever is in it
			 * is kept, out of objects/ */
			rc = lostfound_move_object(
				s, rel, "a directory where a removed entry's "
				"object was", dest, sizeof(dest));
			if (rc == 0)
				log_warn("%s/%s: its removal found a directory "
					 "at %s; moved to %s", symbol, key, rel,
					 dest);
		}
		if (rc == 0)
			unlinked = 1;
		else if (rc != -ENOENT)
			return rc;
		/* the unlink on disk before the note goes (sync_unlinks()) */
		rc = store_symbol_dir_sync(s, symbol);
		if (rc < 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	/* rc == 0 and a row: the key lives again, and the object is its */
	rc = manifest_removals_done(m, &e, 1, NULL);
	return rc < 0 ? rc : unlinked;
}

struct finish_ctx {
	struct store *s;
	struct manifest *m;
	struct gc_result *res;
};

/* manifest_removals_list() callback of gc_finish_interrupted(). */
static int finish_noted_removal(void *arg, const char *symbol,
				const char *key)
{
	struct finish_ctx *c = arg;
	int rc = gc_finish_removal(c->s, c->m, symbol, key);

	if (rc > 0) {
		log_info("removed %s/%s: its row had been removed, and the "
			 "process removing it died before its object",
			 symbol, key);
		c->res->removals_finished++;
	} else if (rc < 0) {
		log_warn("%s/%s: cannot finish its removal: %s; the next "
			 "recovery tries again", symbol, key, strerror(-rc));
	}
	return 0;
}

int gc_remove_direct(void *arg, const struct manifest_entry *rows, size_t n,
		     int *results)
{
	const struct gc_env *env = arg;

	return gc_remove_rows(env->manifest, env->store, rows, n, results,
			      NULL, NULL, NULL);
}

/* gc_describe_object() of the file open at `fd`. */
static int describe_file(int fd, const char *symbol, const char *key,
			 const char *relpath, int with_sha256,
			 struct manifest_entry *e, char *why, size_t why_len)
{
	struct parquet_error perr = { NULL, "" };
	struct parquet_info info;
	struct seekable_reader *zr = NULL;
	struct byte_source src = fd_source(&fd);
	const char *zwhy = NULL;
	uint64_t size = 0;
	struct stat st;
	int compressed, rc;

	memset(e, 0, sizeof(*e));
	rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0)
		rc = seekable_reader_open(fd, (uint64_t)st.st_size, &zr,
					  &zwhy);
	compressed = zr != NULL;
	if (rc == 0) {
		size = (uint64_t)st.st_size;
	} else if (rc > 0) {
		size = seekable_reader_size(zr);
		src = seekable_reader_source(zr);
		/* every frame must decompress: a hash reads them all */
		rc = with_sha256 ? 0 : seekable_reader_check(zr);
	}
	if (rc == 0)
		rc = parquet_validate(&src, size, &info, &perr, NULL);
	if (rc == 0 && with_sha256)
		rc = hash_source(&src, size, e->sha256);
	if (zr && zr->why)
		zwhy = zr->why;
	seekable_reader_close(zr);
	if (rc < 0) {
		if (zwhy && rc == -EIO)
			snprintf(why, why_len, "a corrupt compressed object: "
				 "%s", zwhy);
		else
			snprintf(why, why_len, "%s",
				 perr.detail[0] ? perr.detail : strerror(-rc));
		/* the seekable reader says why only of its bytes, the
		 * validation names a failed read "io": those are not the
		 * object's fault, and a caller must not treat them so */
		if (rc == -EIO && (zwhy || parquet_error_is_content(&perr)))
			rc = -EBADMSG;
		return rc;
	}
	snprintf(e->symbol, sizeof(e->symbol), "%s", symbol);
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->path, sizeof(e->path), "%s", relpath);
	e->state = ENTRY_PUBLISHED;
	e->has_ts = info.has_ts;
	e->start_ts = info.start_ts_us;
	e->end_ts = info.end_ts_us;
	e->rows = info.rows;
	e->file_size = (int64_t)size;
	e->stored_size = st.st_size;
	snprintf(e->compression, sizeof(e->compression), "%s",
		 compressed ? "zstd" : "none");
	snprintf(e->hash_method, sizeof(e->hash_method), "full");
	e->created_ts = (int64_t)st.st_mtim.tv_sec * 1000000 +
			st.st_mtim.tv_nsec / 1000;
	e->mtime_ns = timespec_to_ns(&st.st_mtim);
	e->mode = 0644;
	snprintf(e->writer, sizeof(e->writer), "adopted");
	return 0;
}

int gc_describe_object(struct store *s, const char *symbol, const char *key,
		       const char *relpath, int with_sha256,
		       struct manifest_entry *e, char *why, size_t why_len)
{
	int fd, rc;

	fd = store_object_open(s, relpath);
	if (fd < 0) {
		memset(e, 0, sizeof(*e));
		snprintf(why, why_len, "%s", strerror(-fd));
		return fd;
	}
	rc = describe_file(fd, symbol, key, relpath, with_sha256, e, why,
			   why_len);
	close(fd);
	return rc;
}

int gc_describe_sealed(struct store *s, const struct manifest_entry *row,
		       int with_sha256, struct manifest_entry *e, char *why,
		       size_t why_len)
{
	char rel[STORE_REL_MAX], mount_id[STORE_MOUNT_ID_LEN + 1];
	const char *dot = strchr(row->sealed_tmp, '.');
	int fd, rc;

	memset(e, 0, sizeof(*e));
	/* tmp files are named "<mount id>.<n>.<kind>": the row's writer
	 * must be that mount's, so that no row publishes another's file */
	if (!dot || (size_t)(dot - row->sealed_tmp) >= sizeof(mount_id)) {
		snprintf(why, why_len, "not a tmp file name");
		return -EINVAL;
	}
	snprintf(mount_id, sizeof(mount_id), "%.*s",
		 (int)(dot - row->sealed_tmp), row->sealed_tmp);
	if (!manifest_writer_of_mount(row->writer, mount_id)) {
		snprintf(why, why_len, "tmp/%s is not its writer's",
			 row->sealed_tmp);
		return -EINVAL;
	}
	fd = store_tmp_open_named(s, row->sealed_tmp);
	if (fd < 0) {
		snprintf(why, why_len, "tmp/%s: %s", row->sealed_tmp,
			 strerror(-fd));
		return fd;
	}
	store_object_relpath(row->symbol, row->key, rel, sizeof(rel));
	rc = describe_file(fd, row->symbol, row->key, rel, with_sha256, e,
			   why, why_len);
	close(fd);
	return rc;
}

static int collect_writing(void *arg, const struct manifest_entry *e)
{
	struct batch *b = arg;
	struct manifest_entry *p;

	if (b->n % 64 == 0) {
		p = realloc(b->rows, (b->n + 64) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->rows = p;
	}
	b->rows[b->n++] = *e;
	return 0;
}

/* Remove stale tmp/<name>, saying why not when `report`.  featurefs
 * never makes a directory there: one (planted, or an operator's) is moved
 * to lost+found/, not deleted with whatever it holds. */
static int remove_stale_tmp(struct store *s, const char *name, int report)
{
	char rel[NAME_MAX + 8], dest[STORE_REL_MAX + 32];
	int rc = store_tmp_unlink(s, name);

	if (rc < 0 && rc != -EISDIR && rc != -ENOENT && report)
		log_err("tmp/%s: a file of a writer that is gone; cannot "
			"remove it: %s", name, strerror(-rc));
	if (rc != -EISDIR)
		return rc;
	snprintf(rel, sizeof(rel), "tmp/%s", name);
	rc = lostfound_move_object(s, rel,
				   "a directory in tmp/, where featurefs makes "
				   "none", dest, sizeof(dest));
	if (rc == 0)
		log_warn("%s: a directory, where featurefs makes none: moved "
			 "it to %s", rel, dest);
	else if (report)
		log_err("%s: a directory, where featurefs makes none; moving "
			"it to lost+found/ failed: %s", rel, strerror(-rc));
	return rc;
}

/*
 * Dead writer row `e` names a sealed tmp file: its writer's close()
 * returned 0 on that content, and the mount died before it was published.
 * `drc` and `adopted` say what gc_describe_object() found at `rel`.  What
 * is there already is this write's own object when it holds the same
 * bytes (linked, or compressed, before the row could say so): it stays.
 * Anything else there (an object a lost row left behind, an invalid one)
 * goes to lost+found/, and the sealed file takes its place.  Returns what
 * is to be adopted (0 with `adopted` filled) and sets `how`; sets `kept`
 * when the sealed file could not be read, or is valid but could not be
 * put in place (the store's trouble, not the write's: it stays for
 * another try).
 */
static int prefer_sealed(struct store *s, const struct manifest_entry *e,
			 const char *rel, int drc,
			 struct manifest_entry *adopted, char *why,
			 size_t why_len, const char **how, int *kept)
{
	struct manifest_entry sealed;
	char dest[STORE_REL_MAX + 32];
	int rc;

	rc = gc_describe_sealed(s, e, 1, &sealed, why, why_len);
	if (rc < 0 && !gc_describe_rules_out(rc)) {
		/* unread (the disk, no memory): it may be good */
		*kept = 1;
		log_warn("%s/%s: its writer closed it, but it cannot be read "
			 "now: %s", e->symbol, e->key, why);
		return rc;
	}
	if (rc < 0) {
		if (drc != 0)
			log_warn("%s/%s: its writer closed it, but it cannot "
				 "be published: %s", e->symbol, e->key, why);
		return drc;
	}
	if (drc == 0 && strcmp(adopted->sha256, sealed.sha256) == 0)
		return 0;
	*kept = 1;
	if (drc != -ENOENT) {
		rc = lostfound_move_object(s, rel,
					   "a dead writer's closed file was "
					   "published in its place",
					   dest, sizeof(dest));
		if (rc < 0) {
			snprintf(why, why_len, "moving %s to lost+found/: %s",
				 rel, strerror(-rc));
			return rc;
		}
		log_warn("%s/%s: %s was not what its writer closed: moved it "
			 "to %s", e->symbol, e->key, rel, dest);
	}
	rc = store_object_install(s, e->sealed_tmp, e->symbol, e->key);
	if (rc < 0) {
		snprintf(why, why_len, "moving tmp/%s into objects/: %s",
			 e->sealed_tmp, strerror(-rc));
		log_warn("%s/%s: its writer closed it, but it cannot be "
			 "published: %s", e->symbol, e->key, why);
		return rc;
	}
	*kept = 0;
	*adopted = sealed;
	*how = "its writer had closed it, and the mount stopped before "
	       "publishing it";
	return 0;
}

/* Whether the loop below would publish dead writer row `e` rather than
 * drop it: its object at `rel`, or the file its writer closed, is valid
 * (what a dry run tells; it moves nothing). */
static int dead_writer_publishable(struct store *s,
				   const struct manifest_entry *e,
				   const char *rel)
{
	struct manifest_entry found;
	char why[256];

	if (!row_names_ok(e))
		return 0;
	if (gc_describe_object(s, e->symbol, e->key, rel, 0, &found, why,
			       sizeof(why)) == 0)
		return 1;
	return e->sealed_tmp[0] &&
	       gc_describe_sealed(s, e, 0, &found, why, sizeof(why)) == 0;
}

/* Whether tmp/`name` is the sealed file of a row in `b`: the loop of
 * gc_reclaim_dead_writers() clears `sealed_tmp` of every row it does not
 * keep. */
static int sealed_kept(const struct batch *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->rows[i].sealed_tmp, name) == 0)
			return 1;
	return 0;
}

int gc_drop_stale_claims(struct manifest *m, const char *mount_id,
			 int (*kept)(void *arg, const char *symbol,
				     const char *key),
			 void *arg, int64_t *dropped)
{
	struct manifest_query q = { 0 };
	struct batch b = { NULL, 0 };
	size_t i;
	int rc, drc;

	q.states = 1u << ENTRY_WRITING;
	rc = manifest_list(m, &q, collect_writing, &b);
	for (i = 0; rc == 0 && i < b.n; i++) {
		const struct manifest_entry *e = &b.rows[i];

		if (!manifest_writer_of_mount(e->writer, mount_id) ||
		    kept(arg, e->symbol, e->key))
			continue;
		drc = manifest_remove(m, e->symbol, e->key, ENTRY_WRITING);
		if (drc == 0) {
			manifest_release(m, e->symbol, e->key);
			(*dropped)++;
		} else if (drc != -EBUSY && drc != -ENOENT) {
			rc = drc; /* the manifest still refuses */
		}
	}
	free(b.rows);
	return rc;
}

/* A directory stream on a duplicate of `dirfd` (which stays the
 * caller's), from its first entry; NULL with errno set. */
static DIR *dir_stream(int dirfd)
{
	int fd = dup(dirfd), saved;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d && fd >= 0) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	if (d)
		rewinddir(d);
	return d;
}

/* Remove the files in tmp/ of writers that are gone but those that the
 * rows in `b` keep (sealed_kept()); count them in `res`.  A sweep that is
 * not `last` of its pass leaves what it cannot remove to the last one to
 * try again, and to say why not. */
static int sweep_tmp(struct store *s, const struct batch *b,
		     const char *live_mount_id, int dry_run, int last,
		     struct gc_result *res)
{
	struct dirent *de;
	DIR *d = dir_stream(s->tmp_fd);

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (live_mount_id &&
		    strncmp(de->d_name, live_mount_id, strlen(live_mount_id)) == 0)
			continue;
		if (sealed_kept(b, de->d_name))
			continue;
		if (dry_run || remove_stale_tmp(s, de->d_name, last) == 0)
			res->tmp_removed++;
	}
	closedir(d);
	return 0;
}

/* Remove the empty directories of objects/ whose symbol has no row: an
 * rmdir the process died in (the row goes first).  unlinkat() leaves
 * any that holds something. */
static int sweep_removed_symbols(struct store *s, struct manifest *m)
{
	struct dirent *de;
	DIR *d = dir_stream(s->objects_fd);

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		/* unlinkat() refuses what is not a directory, which a
		 * filesystem without d_type does not say */
		if ((de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) ||
		    name_check_symbol(de->d_name) < 0 ||
		    manifest_symbol_get(m, de->d_name, NULL) != -ENOENT)
			continue;
		if (unlinkat(s->objects_fd, de->d_name, AT_REMOVEDIR) == 0)
			log_info("removed objects/%s: empty, and its symbol "
				 "had been removed", de->d_name);
	}
	closedir(d);
	return 0;
}

int gc_reclaim_dead_writers(struct store *s, struct manifest *m,
			    const char *live_mount_id, int dry_run,
			    struct gc_result *res)
{
	struct manifest_query q = { 0 };
	struct batch b = { NULL, 0 };
	size_t i;
	int rc;

	q.states = 1u << ENTRY_WRITING;
	rc = manifest_list(m, &q, collect_writing, &b);
	/* What the dead writers had not closed can never be published: it
	 * goes first, so that the publishes below have the room it took
	 * (every row's closed file is kept by name until then). */
	if (rc == 0 && !dry_run)
		rc = sweep_tmp(s, &b, live_mount_id, 0, 0, res);
	for (i = 0; rc == 0 && i < b.n; i++) {
		struct manifest_entry *e = &b.rows[i], adopted;
		char why[256], rel[STORE_REL_MAX];
		const char *how = NULL;
		int drc = -EINVAL, kept = 0;

		store_object_relpath(e->symbol, e->key, rel, sizeof(rel));
		if (manifest_writer_of_mount(e->writer, live_mount_id)) {
			/* in flight: not settled here, so not kept (the
			 * sweep leaves the live mount's tmp/ alone anyway) */
			e->sealed_tmp[0] = '\0';
			continue;
		}
		if (dry_run) {
			if (dead_writer_publishable(s, e, rel))
				res->rows_adopted++;
			else
				res->rows_removed++;
			e->sealed_tmp[0] = '\0'; /* as the loop leaves it */
			continue;
		}
		/* publish() turns the writing row into the published one
		 * in one statement: no moment without a row */
		if (row_names_ok(e)) {
			drc = gc_describe_object(s, e->symbol, e->key, rel, 1,
						 &adopted, why, sizeof(why));
			how = "its writer died after the object was in place";
			if (e->sealed_tmp[0])
				drc = prefer_sealed(s, e, rel, drc, &adopted,
						    why, sizeof(why), &how,
						    &kept);
			else if (drc < 0 && drc != -ENOENT && drc != -EBADMSG)
				log_warn("%s: cannot check it: %s; its "
					 "writer's row goes, the object stays "
					 "for fsck -p", rel, why);
		}
		if (kept) {
			log_warn("%s/%s: tmp/%s and its row stay for the next "
				 "recovery", e->symbol, e->key, e->sealed_tmp);
			continue;
		}
		if (drc == -EBADMSG)
			log_warn("%s: not valid Parquet: %s", rel, why);
		if (drc == 0) {
			adopted.mode = e->mode;
			snprintf(adopted.writer, sizeof(adopted.writer), "%s",
				 e->writer);
			/* a closed write's row has the times its writer set */
			if (e->sealed_tmp[0]) {
				adopted.mtime_ns = e->mtime_ns;
				adopted.ctime_ns = e->ctime_ns;
			}
		}
		if (drc == 0) {
			drc = fault_inject("recover_publish");
			if (drc == 0)
				drc = manifest_publish(m, &adopted);
			if (drc < 0) {
				/* not dropped: a full disk, a locked
				 * manifest, do not make it a lost write */
				log_warn("%s/%s: cannot publish it now: %s; "
					 "its row stays for the next recovery",
					 e->symbol, e->key, strerror(-drc));
				continue;
			}
			/* its tmp name, if any, goes with the sweep below */
			e->sealed_tmp[0] = '\0';
			log_info("adopted %s/%s: %s", e->symbol, e->key, how);
			res->rows_adopted++;
			continue;
		}
		e->sealed_tmp[0] = '\0'; /* the sweep takes it */
		if (manifest_remove(m, e->symbol, e->key, ENTRY_WRITING) == 0) {
			manifest_release(m, e->symbol, e->key);
			res->rows_removed++;
		}
	}
	if (rc == 0)
		rc = sweep_tmp(s, &b, live_mount_id, dry_run, 1, res);
	free(b.rows);
	return rc;
}

int gc_finish_interrupted(struct store *s, struct manifest *m,
			  struct gc_result *res)
{
	struct finish_ctx c = { s, m, res };
	int rc;

	rc = manifest_removals_list(m, finish_noted_removal, &c);
	if (rc == 0)
		rc = sweep_removed_symbols(s, m);
	return rc;
}

static int key_of_object(const char *file, char *key)
{
	return name_parse_child(file, key) == NAME_ENTRY ? 0 : -EINVAL;
}

static int add_key(void *arg, const struct manifest_entry *e)
{
	return htab_add_string(arg, e->key);
}

/* Count objects without a row, one symbol directory at a time. */
struct noted_key {
	const char *symbol, *key;
	int found;
};

/* manifest_removals_list() callback: whether the key asked is noted. */
static int is_noted(void *arg, const char *symbol, const char *key)
{
	struct noted_key *nk = arg;

	if (strcmp(symbol, nk->symbol) == 0 && strcmp(key, nk->key) == 0)
		nk->found = 1;
	return 0;
}

/* Whether objects/<symbol>/<key>.parquet (`name` in `dirfd`), which had
 * no row when the walk listed the symbol's rows, is an orphan: not the
 * object of a claim made since (a row now), of a removal under way (a
 * note, until the object is gone), nor gone.  Asked in that order, as
 * those change in the other. */
static int still_orphan(const struct gc_env *env, int dirfd,
			const char *name, const char *symbol, const char *key)
{
	struct noted_key nk = { symbol, key, 0 };
	struct manifest_entry row;
	struct stat st;

	if (manifest_get(env->manifest, symbol, key, &row) != -ENOENT)
		return 0;
	if (manifest_removals_list(env->manifest, is_noted, &nk) < 0 ||
	    nk.found)
		return 0;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Count into res->orphans, and log, each objects/<symbol>/<key>.parquet
 * that still_orphan(): what fsck -p would adopt.  0 or a negative errno. */
static int count_orphans(const struct gc_env *env, struct gc_result *res)
{
	struct dirent *sd, *od;
	DIR *top, *dir;
	int fd, rc = 0;

	top = dir_stream(env->store->objects_fd);
	if (!top)
		return -errno;
	while (rc == 0 && (sd = readdir(top))) {
		struct manifest_query q = { 0 };
		struct htab *keys = NULL;
		char key[KEY_MAX + 1];

		if (sd->d_name[0] == '.' || name_check_symbol(sd->d_name) < 0)
			continue;
		fd = openat(env->store->objects_fd, sd->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		dir = fdopendir(fd);
		if (!dir) {
			close(fd);
			continue;
		}
		rc = htab_new(&keys);
		q.symbol = sd->d_name;
		if (rc == 0)
			rc = manifest_list(env->manifest, &q, add_key, keys);
		while (rc == 0 && (od = readdir(dir))) {
			if (key_of_object(od->d_name, key) < 0)
				continue;
			if (!htab_get(keys, key) &&
			    still_orphan(env, dirfd(dir), od->d_name,
					 sd->d_name, key)) {
				res->orphans++;
				log_info("gc: objects/%s/%s has no manifest row "
					 "(fsck -p adopts it)", sd->d_name,
					 od->d_name);
			}
		}
		closedir(dir);
		htab_free_values(keys);
	}
	closedir(top);
	return rc;
}

int gc_pass(const struct gc_env *env, const struct gc_options *o,
	    struct gc_result *res)
{
	struct manifest_totals t;
	struct manifest_query q;
	int64_t start = mono_us(), stored;
	int rc = 0;

	/* stored bytes matter for the quota only */
	res->stored_before = stored = -1;
	if (o->max_size > 0) {
		rc = manifest_totals(env->manifest, &t);
		if (rc < 0)
			return rc;
		res->stored_before = stored = t.stored_bytes;
	}
	/* an age beyond the clock's (durations go up to 5200w) leaves no
	 * entry old enough, where idle_before 0 would mean no limit */
	if (o->older_than_us > 0 && o->older_than_us < now_us()) {
		memset(&q, 0, sizeof(q));
		q.states = 1u << ENTRY_PUBLISHED;
		q.order = ORDER_LRU;
		q.idle_before = now_us() - o->older_than_us;
		rc = remove_matching(env, o, &q, res, &stored, -1, "age");
		if (rc < 0)
			goto out;
	}
	if (o->max_size > 0 && stored > (int64_t)o->max_size &&
	    !res->interrupted) {
		memset(&q, 0, sizeof(q));
		q.states = 1u << ENTRY_PUBLISHED;
		q.order = ORDER_LRU;
		rc = remove_matching(env, o, &q, res, &stored,
				     (int64_t)(o->max_size / 10 * 9), "size");
		if (rc < 0)
			goto out;
	}
	if (!res->interrupted)
		rc = gc_reclaim_dead_writers(env->store, env->manifest,
					     env->live_mount_id, o->dry_run, res);
	if (rc == 0 && o->scan_orphans && !res->interrupted)
		rc = count_orphans(env, res);
out:
	res->stored_after = o->max_size > 0 ? stored : -1;
	res->duration_us = mono_us() - start;
	return rc;
}

void gc_result_release(struct gc_result *res)
{
	sb_release(&res->listing);
}

void gc_render_text(struct strbuf *sb, const struct gc_result *r,
		    const struct gc_options *o)
{
	sb_addf(sb, "%s %lld %s (%lld %s)%s\n",
		o->dry_run ? "would remove" : "removed",
		(long long)r->removed_entries,
		plural(r->removed_entries, "entry", "entries"),
		(long long)r->removed_bytes,
		plural(r->removed_bytes, "byte", "bytes"),
		r->interrupted ? ", interrupted" : "");
	if (r->stored_before >= 0)
		sb_addf(sb, "stored bytes %lld -> %lld\n",
			(long long)r->stored_before, (long long)r->stored_after);
	sb_addf(sb, "skipped busy %lld, stale tmp files %lld, dead writers' "
		    "rows %lld dropped / %lld adopted, orphans %lld\n",
		(long long)r->skipped_busy, (long long)r->tmp_removed,
		(long long)r->rows_removed, (long long)r->rows_adopted,
		(long long)r->orphans);
	sb_addf(sb, "duration %.3fs\n", (double)r->duration_us / 1e6);
	if (o->list == GC_LIST_TEXT && r->listing.len)
		sb_addf(sb, "%s:\n%s", o->dry_run ? "would remove" : "removed",
			sb_str(&r->listing));
}

void gc_render_json(struct strbuf *sb, const struct gc_result *r,
		    const struct gc_options *o)
{
	sb_addf(sb, "{\"dry_run\": %s, \"interrupted\": %s, "
		    "\"removed_entries\": %lld, \"removed_bytes\": %lld, "
		    "\"skipped_busy\": %lld, \"tmp_removed\": %lld, "
		    "\"rows_removed\": %lld, \"rows_adopted\": %lld, "
		    "\"orphans\": %lld, \"duration_seconds\": %.6f, ",
		o->dry_run ? "true" : "false", r->interrupted ? "true" : "false",
		(long long)r->removed_entries, (long long)r->removed_bytes,
		(long long)r->skipped_busy, (long long)r->tmp_removed,
		(long long)r->rows_removed, (long long)r->rows_adopted,
		(long long)r->orphans, (double)r->duration_us / 1e6);
	/* stored bytes are known when a quota made the pass count them */
	if (r->stored_before >= 0)
		sb_addf(sb, "\"stored_bytes_before\": %lld, "
			    "\"stored_bytes_after\": %lld, ",
			(long long)r->stored_before, (long long)r->stored_after);
	else
		sb_adds(sb, "\"stored_bytes_before\": null, "
			    "\"stored_bytes_after\": null, ");
	sb_addf(sb, "\"entries\": [%s]}\n", sb_str(&r->listing));
}
