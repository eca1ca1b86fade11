/*
 * fsck.c - check a store against its manifest and repair what the mode
 * allows (see fsck.h for the contract, docs/fsck.md for the checks).
 *
 * A run goes: the store lock (repairs) or a probe for a live mount
 * (check), the manifest opened read-only and its integrity checked
 * before anything is written, then dead writers, published rows, symbol
 * rows and the objects/ tree, in that order, so each step sees what the
 * earlier repairs left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsck_internal.h"
#include "gc.h"
#include "hash.h"
#include "htab.h"
#include "log.h"
#include "lostfound.h"
#include "manifest.h"
#include "parquet.h"
#include "seekable.h"
#include "strbuf.h"

#define FSCK_BATCH 1000
#define PROGRESS_EVERY_US 100000

static const char *const kind_names[FSCK_KIND_COUNT] = {
	[FSCK_LAYOUT] = "layout",
	[FSCK_BAD_ROW] = "bad_row",
	[FSCK_OBJECT_MISSING] = "object_missing",
	[FSCK_NOT_REGULAR] = "not_regular",
	[FSCK_SIZE_MISMATCH] = "size_mismatch",
	[FSCK_INVALID_PARQUET] = "invalid_parquet",
	[FSCK_CHECKSUM_MISMATCH] = "checksum_mismatch",
	[FSCK_UNVERIFIABLE] = "unverifiable",
	[FSCK_DEAD_WRITER] = "dead_writer",
	[FSCK_STALE_TMP] = "stale_tmp",
	[FSCK_UNFINISHED_REMOVAL] = "unfinished_removal",
	[FSCK_SYMBOL_MISSING] = "symbol_missing",
	[FSCK_EMPTY_SYMBOL_DIR] = "empty_symbol_dir",
	[FSCK_USAGE_MISMATCH] = "usage_mismatch",
	[FSCK_ORPHAN] = "orphan",
	[FSCK_INVALID_ORPHAN] = "invalid_orphan",
	[FSCK_STRAY] = "stray",
};

const char *fsck_kind_name(enum fsck_kind kind)
{
	return kind < FSCK_KIND_COUNT ? kind_names[kind] : "unknown";
}

int fsck_exit_status(int rc, const struct fsck_result *res)
{
	return (res->corrected ? 1 : 0) | (res->uncorrected ? 4 : 0) |
	       (rc < 0 ? 8 : 0);
}

/* ---- small helpers --------------------------------------------------- */

int fsck_names_add(struct fsck_names *l, const char *s)
{
	char *d;

	if (l->n == l->alloc) {
		size_t n = l->alloc ? 2 * l->alloc : 64;
		char **p = realloc(l->v, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->v = p;
		l->alloc = n;
	}
	d = strdup(s);
	if (!d)
		return -ENOMEM;
	l->v[l->n++] = d;
	return 0;
}

void fsck_names_release(struct fsck_names *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory `dirfd` but "." and "..", sorted. */
int fsck_list_dir(int dirfd, struct fsck_names *out)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = fsck_names_add(out, de->d_name);
	closedir(d);
	if (rc == 0 && out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return rc;
}

/* ---- progress and findings ------------------------------------------- */

static void progress_clear(struct fsck *f)
{
	if (f->progress_shown) {
		fputs("\r\033[K", stderr);
		f->progress_shown = 0;
	}
}

void fsck_progress(struct fsck *f, const char *fmt, ...)
{
	int64_t now;
	va_list ap;

	if (!f->o->progress)
		return;
	now = mono_us();
	if (now - f->progress_at < PROGRESS_EVERY_US)
		return;
	f->progress_at = now;
	fputs("\r\033[Kfsck: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	f->progress_shown = 1;
}

void fsck_finding_set(struct fsck_finding *x, enum fsck_kind kind,
		      enum fsck_mode repair, const char *symbol,
		      const char *key, const char *path, const char *fmt, ...)
{
	va_list ap;

	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->repair = repair;
	snprintf(x->symbol, sizeof(x->symbol), "%s", symbol ? symbol : "");
	snprintf(x->key, sizeof(x->key), "%s", key ? key : "");
	snprintf(x->path, sizeof(x->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
	va_end(ap);
}

/* Does this run's mode repair `x`? */
int fsck_may_repair(const struct fsck *f, const struct fsck_finding *x)
{
	return x->repair != FSCK_CHECK && f->o->mode >= x->repair;
}

void fsck_repaired(struct fsck_finding *x, int rc, const char *fmt, ...)
{
	va_list ap;

	if (rc < 0) {
		snprintf(x->action, sizeof(x->action), "repair failed: %s",
			 strerror(-rc));
		return;
	}
	x->corrected = 1;
	va_start(ap, fmt);
	vsnprintf(x->action, sizeof(x->action), fmt, ap);
	va_end(ap);
}

void fsck_report(struct fsck *f, const struct fsck_finding *x)
{
	progress_clear(f);
	f->res->findings++;
	f->res->by_kind[x->kind]++;
	if (x->corrected)
		f->res->corrected++;
	else
		f->res->uncorrected++;
	f->fn(f->arg, x);
}

/*
 * While a mount is live (check mode), a row may change between the walk
 * and the check: report only what still holds.
 */
static int row_still_there(struct fsck *f, const struct manifest_entry *e)
{
	struct manifest_entry now;

	if (!f->live[0])
		return 1;
	return manifest_get(f->m, e->symbol, e->key, &now) == 0 &&
	       now.state == e->state && now.created_ts == e->created_ts &&
	       strcmp(now.path, e->path) == 0;
}

/* ---- objects and lost+found ------------------------------------------ */

/* Open `rel` (relative to STORE) for checking without following a
 * symlink or blocking on a FIFO; fills `st`.  -ELOOP for a symlink,
 * -ENOTDIR for a symlink on the way (objects/<symbol> a link). */
int fsck_open_object(struct fsck *f, const char *rel, struct stat *st)
{
	const char *leaf;
	int dirfd, fd, rc;

	dirfd = store_parent_open(f->s, rel, &leaf);
	if (dirfd < 0)
		return dirfd;
	fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	rc = fd < 0 ? -errno : 0;
	close(dirfd);
	if (rc < 0)
		return rc;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int fsck_quarantine(struct fsck *f, const char *rel, const char *name_from,
		    const struct manifest_entry *row, const char *reason,
		    char *dest, size_t len)
{
	if (f->lf_fd < 0) {
		int fd = lostfound_open(f->s);

		if (fd < 0)
			return fd;
		f->lf_fd = fd;
	}
	return lostfound_move(f->s, f->lf_fd, rel, name_from, row, reason, dest,
			      len);
}

/* Quarantine a published row's object (or only the row, `rel` NULL)
 * and drop the row. */
static void quarantine_row(struct fsck *f, struct fsck_finding *x,
			   const struct manifest_entry *e, const char *rel)
{
	char dest[STORE_REL_MAX + 64];
	char base[STORE_REL_MAX + 256];
	int rc;

	snprintf(base, sizeof(base), "%s/%s" ENTRY_SUFFIX, e->symbol, e->key);
	rc = fsck_quarantine(f, rel, rel ? rel : base, e, x->detail, dest,
			     sizeof(dest));
	if (rc == 0) {
		rc = manifest_remove(f->m, e->symbol, e->key, e->state);
		if (rc == 0)
			manifest_release(f->m, e->symbol, e->key);
		if (rc == -ENOENT)
			rc = 0;
		if (rc < 0) {
			snprintf(x->action, sizeof(x->action),
				 "moved to %s, but the row could not be "
				 "dropped: %s",
				 dest, strerror(-rc));
			return;
		}
	}
	fsck_repaired(x, rc, "quarantined: %s, row dropped", dest);
}

/* ---- dead writers ---------------------------------------------------- */

struct rows {
	struct manifest_entry *v;
	size_t n, alloc;
};

static int rows_add(void *arg, const struct manifest_entry *e)
{
	struct rows *r = arg;

	if (r->n == r->alloc) {
		size_t n = r->alloc ? 2 * r->alloc : 64;
		struct manifest_entry *p = realloc(r->v, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->v = p;
		r->alloc = n;
	}
	r->v[r->n++] = *e;
	return 0;
}

/* 1 when `e`'s names and path are what featurefs writes. */
static int row_well_formed(const struct manifest_entry *e)
{
	char want[STORE_REL_MAX];

	if (name_check_symbol(e->symbol) < 0 || name_check_key(e->key) < 0)
		return 0;
	store_object_relpath(e->symbol, e->key, want, sizeof(want));
	return strcmp(e->path, want) == 0;
}

/* 1 when a valid Parquet object, raw or compressed, is at row `e`'s path:
 * what adoption needs. */
static int object_adoptable(struct fsck *f, const struct manifest_entry *e)
{
	struct manifest_entry row;
	char why[256];

	return gc_describe_object(f->s, e->symbol, e->key, e->path, 0, &row,
				  why, sizeof(why)) == 0;
}

/* Whether dead writer row `e` names a valid tmp file as closed. */
static int sealed_adoptable(struct fsck *f, const struct manifest_entry *e)
{
	struct manifest_entry row;
	char why[256];

	return e->sealed_tmp[0] &&
	       gc_describe_sealed(f->s, e, 0, &row, why, sizeof(why)) == 0;
}

/* Whether `e`'s sealed tmp file is its object too: linked into place
 * before the row could say so. */
static int sealed_is_object(struct fsck *f, const struct manifest_entry *e)
{
	char rel[STORE_REL_MAX];
	struct stat tmp, obj;
	const char *leaf;
	int dirfd, same;

	store_object_relpath(e->symbol, e->key, rel, sizeof(rel));
	dirfd = store_parent_open(f->s, rel, &leaf);
	if (dirfd < 0)
		return 0;
	same = fstatat(f->s->tmp_fd, e->sealed_tmp, &tmp,
		       AT_SYMLINK_NOFOLLOW) == 0 &&
	       fstatat(dirfd, leaf, &obj, AT_SYMLINK_NOFOLLOW) == 0 &&
	       tmp.st_dev == obj.st_dev && tmp.st_ino == obj.st_ino;
	close(dirfd);
	return same;
}

static int gone(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	       errno == ENOENT;
}

static int tmp_is_live(const struct fsck *f, const char *name)
{
	size_t len = strlen(f->live);

	return len && strncmp(name, f->live, len) == 0 && name[len] == '.';
}

/* Whether tmp file `name` is what one of `rows` that adoptable[] marks 2
 * names as closed: it is reported, and published, with its row. */
static int sealed_by(const struct rows *rows, const char *adoptable,
		     const char *name)
{
	size_t i;

	for (i = 0; i < rows->n; i++)
		if (adoptable[i] == 2 &&
		    strcmp(rows->v[i].sealed_tmp, name) == 0)
			return 1;
	return 0;
}

/* manifest_removals_list() callback: collect "<symbol>/<key>". */
static int removal_add(void *arg, const char *symbol, const char *key)
{
	char name[SYMBOL_MAX + KEY_MAX + 2];

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	return fsck_names_add(arg, name);
}

/*
 * Removals a crash cut short (manifest_remove_batch()): the row is gone
 * and the object may not be.  Adopting it as an orphan would bring back
 * what was removed: -p finishes the removal.  A live mount's are under
 * way, not cut short.
 */
static int check_removals(struct fsck *f)
{
	struct fsck_names keys = { 0 };
	struct fsck_finding x;
	struct manifest_entry row;
	char rel[STORE_REL_MAX];
	int rc, fix = f->o->mode >= FSCK_PREEN;
	size_t i;

	if (f->live[0])
		return 0;
	rc = manifest_removals_list(f->m, removal_add, &keys);
	for (i = 0; rc == 0 && i < keys.n; i++) {
		char symbol[SYMBOL_MAX + 1], *key = strchr(keys.v[i], '/');

		snprintf(symbol, sizeof(symbol), "%.*s",
			 (int)(key - keys.v[i]), keys.v[i]);
		key++;
		store_object_relpath(symbol, key, rel, sizeof(rel));
		if (name_check_symbol(symbol) < 0 || name_check_key(key) < 0 ||
		    manifest_get(f->m, symbol, key, &row) != -ENOENT ||
		    faccessat(f->s->root_fd, rel, F_OK,
			      AT_SYMLINK_NOFOLLOW) < 0) {
			/* nothing to finish but the note */
			if (fix)
				gc_finish_removal(f->s, f->m, symbol, key);
			continue;
		}
		fsck_finding_set(&x, FSCK_UNFINISHED_REMOVAL, FSCK_PREEN,
				 symbol, key, rel,
				 "its row was removed, its object was not (a "
				 "removal cut short)");
		if (fix) {
			int done = gc_finish_removal(f->s, f->m, symbol, key);

			fsck_repaired(&x, done < 0 ? done : 0, "removed");
		}
		/* not an orphan to adopt, whether removed now or not */
		rc = htab_add_string(f->removing, keys.v[i]);
		fsck_report(f, &x);
	}
	fsck_names_release(&keys);
	return rc;
}

/*
 * `writing` rows and tmp files of writers that are gone.  Repairs go
 * through gc_reclaim_dead_writers() (the mount's recovery does the same);
 * each row and file is then looked at again to report what became of it.
 */
static int check_writers(struct fsck *f)
{
	struct manifest_query q = { 0 };
	struct rows rows = { 0 };
	struct fsck_names tmp = { 0 }, dead_tmp = { 0 };
	struct gc_result gres = { 0 };
	struct fsck_finding x;
	char lockname[LOCK_NAME_MAX + 1];
	size_t i, dead = 0;
	int rc, fix = f->o->mode >= FSCK_PREEN;
	char *adoptable = NULL;

	q.states = 1u << ENTRY_WRITING;
	rc = manifest_list(f->m, &q, rows_add, &rows);
	if (rc == 0)
		rc = fsck_list_dir(f->s->tmp_fd, &tmp);
	if (rc < 0)
		goto out;
	adoptable = calloc(rows.n + 1, 1);
	if (!adoptable) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < rows.n; i++) {
		struct manifest_entry *e = &rows.v[i];

		if (manifest_writer_of_mount(e->writer, f->live)) {
			f->res->in_flight++;
			continue;
		}
		dead++;
		/* 2: its tmp file is closed (recovery prefers it to another
		 * object at its path); 1: its object is in place */
		if (row_well_formed(e))
			adoptable[i] = sealed_adoptable(f, e) &&
						       !sealed_is_object(f, e)
					       ? 2
				       : object_adoptable(f, e) ? 1
								: 0;
	}
	for (i = 0; rc == 0 && i < tmp.n; i++)
		if (tmp.v[i][0] != '.' && !tmp_is_live(f, tmp.v[i]) &&
		    !sealed_by(&rows, adoptable, tmp.v[i]))
			rc = fsck_names_add(&dead_tmp, tmp.v[i]);
	if (rc < 0)
		goto out;
	if (fix && (dead || dead_tmp.n)) {
		rc = gc_reclaim_dead_writers(f->s, f->m, NULL, 0, &gres);
		if (rc < 0)
			goto out;
	}
	for (i = 0; i < rows.n; i++) {
		struct manifest_entry *e = &rows.v[i], now;

		if (manifest_writer_of_mount(e->writer, f->live))
			continue;
		fsck_finding_set(&x, FSCK_DEAD_WRITER, FSCK_PREEN, e->symbol,
				 e->key, e->path, "writer %s is gone; %s",
				 e->writer,
				 adoptable[i] == 1 ? "its object is complete"
				 : adoptable[i] == 2
					 ? "it was closed, and its tmp file is "
					   "complete"
					 : "the write was unfinished");
		if (fix) {
			rc = manifest_get(f->m, e->symbol, e->key, &now);
			if (rc == -ENOENT)
				fsck_repaired(&x, 0, "row dropped");
			else if (rc == 0 && now.state == ENTRY_PUBLISHED)
				fsck_repaired(&x, 0, "adopted");
			else if (rc == 0)
				snprintf(x.action, sizeof(x.action),
					 "the row could not be settled");
			else
				goto out;
			rc = 0;
		} else if (!adoptable[i]) {
			/* -p drops the row: the object scan below must
			 * then see the object as the orphan it becomes */
			snprintf(lockname, sizeof(lockname), "%s/%s", e->symbol,
				 e->key);
			rc = htab_add_string(f->dropping, lockname);
			if (rc < 0)
				goto out;
		}
		if (!row_still_there(f, e))
			continue;
		fsck_report(f, &x);
	}
	for (i = 0; i < dead_tmp.n; i++) {
		char rel[NAME_MAX + 8];

		snprintf(rel, sizeof(rel), "tmp/%s", dead_tmp.v[i]);
		if (f->live[0] && gone(f->s->tmp_fd, dead_tmp.v[i]))
			continue; /* gone meanwhile */
		fsck_finding_set(&x, FSCK_STALE_TMP, FSCK_PREEN, NULL, NULL,
				 rel, "tmp file of a writer that is gone");
		if (fix) {
			/* the sweep above removed it, or logged why not:
			 * one more try tells the errno */
			int left = gone(f->s->tmp_fd, dead_tmp.v[i])
					   ? 0
					   : store_tmp_unlink(f->s,
							      dead_tmp.v[i]);

			fsck_repaired(&x, left == -ENOENT ? 0 : left,
				      "removed");
		}
		fsck_report(f, &x);
	}
out:
	free(adoptable);
	free(rows.v);
	fsck_names_release(&tmp);
	fsck_names_release(&dead_tmp);
	gc_result_release(&gres);
	return rc;
}

/* ---- published rows -------------------------------------------------- */

/* Recompute `e`'s checksum from `src`; 0 when it matches, 1 when not. */
static int verify_sum(struct fsck *f, struct fsck_finding *x,
		      const struct manifest_entry *e,
		      const struct byte_source *src, uint64_t size,
		      const struct parquet_info *info)
{
	char hex[SHA256_HEX_LEN + 1];
	int rc;

	if (!e->sha256[0]) {
		fsck_finding_set(x, FSCK_UNVERIFIABLE, FSCK_CHECK, e->symbol,
				 e->key, e->path, "no checksum recorded");
		return 1;
	}
	if (strcmp(e->hash_method, "full") == 0)
		rc = hash_source(src, size, hex);
	else if (strcmp(e->hash_method, "footer") == 0)
		rc = hash_footer(src, size, info->footer_len, hex);
	else {
		fsck_finding_set(x, FSCK_UNVERIFIABLE, FSCK_CHECK, e->symbol,
				 e->key, e->path, "unknown hash method '%s'",
				 e->hash_method);
		return 1;
	}
	f->res->verified++;
	if (rc < 0) {
		fsck_finding_set(x, FSCK_UNVERIFIABLE, FSCK_CHECK, e->symbol,
				 e->key, e->path, "cannot read the object: %s",
				 strerror(-rc));
		return 1;
	}
	if (strcmp(hex, e->sha256) == 0)
		return 0;
	fsck_finding_set(x, FSCK_CHECKSUM_MISMATCH, FSCK_YES, e->symbol, e->key,
			 e->path,
			 "checksum mismatch (%s sha256 %.12s..., the row has "
			 "%.12s...)",
			 e->hash_method, hex, e->sha256);
	return 1;
}

/* Check the content of the object of row `e`, open at `fd`: a seek table
 * and frames that decompress (compressed), valid Parquet, and with
 * --verify its checksum over the logical bytes.  1 with `x` filled when
 * something is wrong. */
static int check_content(struct fsck *f, const struct manifest_entry *e,
			 int fd, uint64_t stored, struct fsck_finding *x)
{
	struct parquet_error perr = { NULL, "" };
	struct parquet_info info;
	struct seekable_reader *zr = NULL;
	struct byte_source src = fd_source(&fd);
	const char *why = NULL; /* set for the bytes' faults only */
	uint64_t size = stored;
	int rc, bad = 1;

	if (strcmp(e->compression, "zstd") == 0) {
		rc = seekable_reader_open(fd, stored, &zr, &why);
		if (rc == 0)
			why = "no seek table (not compressed)";
		if (rc > 0) {
			/* told from the seek table: nothing decompressed */
			size = seekable_reader_size(zr);
			if (size != (uint64_t)e->file_size) {
				fsck_finding_set(x, FSCK_SIZE_MISMATCH,
						 FSCK_YES, e->symbol, e->key,
						 e->path, "object "
						 "decompresses to %llu bytes, "
						 "the row says %lld",
						 (unsigned long long)size,
						 (long long)e->file_size);
				goto out;
			}
			rc = seekable_reader_check(zr);
			why = zr->why;
			if (rc == 0)
				rc = 1;
		}
		if (rc <= 0) {
			/* a failed read is no verdict on the object */
			if (rc == 0 || (rc == -EIO && why))
				fsck_finding_set(x, FSCK_INVALID_PARQUET,
						 FSCK_YES, e->symbol, e->key,
						 e->path, "a corrupt compressed "
						 "object: %s", why);
			else
				fsck_finding_set(x, FSCK_UNVERIFIABLE,
						 FSCK_CHECK, e->symbol, e->key,
						 e->path, "cannot decompress "
						 "the object: %s",
						 strerror(-rc));
			goto out;
		}
		src = seekable_reader_source(zr);
	}
	rc = parquet_validate(&src, size, &info, &perr, NULL);
	if (rc == -EIO && parquet_error_is_content(&perr))
		fsck_finding_set(x, FSCK_INVALID_PARQUET, FSCK_YES, e->symbol,
				 e->key, e->path, "not valid Parquet: %s",
				 perr.detail);
	else if (rc < 0)
		fsck_finding_set(x, FSCK_UNVERIFIABLE, FSCK_CHECK, e->symbol,
				 e->key, e->path, "cannot read the object: %s",
				 perr.detail[0] ? perr.detail : strerror(-rc));
	else if (f->o->verify)
		bad = verify_sum(f, x, e, &src, size, &info);
	else
		bad = 0;
out:
	seekable_reader_close(zr);
	return bad;
}

/* Check one published row against its object; fills `x` and returns 1
 * when something is wrong. */
static int check_row(struct fsck *f, const struct manifest_entry *e,
		     struct fsck_finding *x)
{
	struct stat st;
	int fd, bad = 1;

	if (!row_well_formed(e)) {
		struct manifest_entry same;

		/* a name too long or holding a NUL reads back cut short
		 * (see the backend) and reaches no row to drop */
		if (manifest_get(f->m, e->symbol, e->key, &same) == -ENOENT)
			fsck_finding_set(x, FSCK_BAD_ROW, FSCK_CHECK,
					 e->symbol, e->key, e->path,
					 "malformed row: a symbol or key too "
					 "long or holding a NUL; delete it "
					 "from the manifest by hand");
		else
			fsck_finding_set(x, FSCK_BAD_ROW, FSCK_YES, e->symbol,
					 e->key, e->path,
					 "malformed row (symbol, key or path)");
		return 1;
	}
	if (e->state == ENTRY_UNKNOWN) {
		fsck_finding_set(x, FSCK_BAD_ROW, FSCK_YES, e->symbol, e->key,
				 e->path, "malformed row: a state no featurefs "
				 "writes (neither writing nor published)");
		return 1;
	}
	if (manifest_entry_flaw(e)) {
		fsck_finding_set(x, FSCK_SIZE_MISMATCH, FSCK_YES, e->symbol,
				 e->key, e->path, "the row gives %s",
				 manifest_entry_flaw(e));
		return 1;
	}
	fd = fsck_open_object(f, e->path, &st);
	if (fd == -ENOENT) {
		fsck_finding_set(x, FSCK_OBJECT_MISSING, FSCK_PREEN, e->symbol,
				 e->key, e->path, "object missing");
		return 1;
	}
	if (fd == -ENOTDIR) {
		fsck_finding_set(x, FSCK_OBJECT_MISSING, FSCK_PREEN, e->symbol,
				 e->key, e->path,
				 "object missing: objects/%s is not a directory "
				 "(a symbolic link?), and nothing is read "
				 "through it", e->symbol);
		return 1;
	}
	if (fd == -ELOOP) {
		fsck_finding_set(x, FSCK_NOT_REGULAR, FSCK_YES, e->symbol,
				 e->key, e->path,
				 "the object is a symbolic link");
		return 1;
	}
	if (fd < 0) {
		fsck_finding_set(x, FSCK_UNVERIFIABLE, FSCK_CHECK, e->symbol,
				 e->key, e->path, "cannot open the object: %s",
				 strerror(-fd));
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		fsck_finding_set(x, FSCK_NOT_REGULAR, FSCK_YES, e->symbol,
				 e->key, e->path,
				 "the object is not a regular file");
	} else if (st.st_size != e->stored_size) {
		fsck_finding_set(
			x, FSCK_SIZE_MISMATCH, FSCK_YES, e->symbol, e->key,
			e->path, "object has %lld bytes, the row says %lld",
			(long long)st.st_size, (long long)e->stored_size);
	} else if (strcmp(e->compression, "none") != 0 &&
		   strcmp(e->compression, "zstd") != 0) {
		fsck_finding_set(x, FSCK_UNVERIFIABLE, FSCK_CHECK, e->symbol,
				 e->key, e->path,
				 "compression '%s' is not known to this "
				 "featurefs",
				 e->compression);
	} else {
		bad = check_content(f, e, fd, (uint64_t)st.st_size, x);
	}
	close(fd);
	return bad;
}

static void repair_row(struct fsck *f, struct fsck_finding *x,
		       const struct manifest_entry *e)
{
	int rc;

	switch (x->kind) {
	case FSCK_OBJECT_MISSING:
		rc = manifest_remove(f->m, e->symbol, e->key, ENTRY_PUBLISHED);
		if (rc == 0)
			manifest_release(f->m, e->symbol, e->key);
		fsck_repaired(x, rc == -ENOENT ? 0 : rc, "row dropped");
		break;
	case FSCK_BAD_ROW:
		quarantine_row(f, x, e, NULL);
		break;
	default:
		quarantine_row(f, x, e, e->path);
		break;
	}
}

static int note_symbol(struct fsck *f, const char *symbol)
{
	struct fsck_names *l = &f->row_symbols;

	if (name_check_symbol(symbol) < 0)
		return 0; /* its rows are reported as malformed */
	if (l->n && strcmp(l->v[l->n - 1], symbol) == 0)
		return 0;
	return fsck_names_add(l, symbol);
}

/* Every published row, in keyset-paged batches (repairs may delete rows
 * of the batch in hand; the cursor is the last row seen). */
static int check_published(struct fsck *f)
{
	struct manifest_query q = { 0 };
	struct rows b = { 0 };
	char after_symbol[SYMBOL_MAX + 1], after_key[KEY_MAX + 1];
	struct fsck_finding x;
	size_t i;
	int bad, rc;

	q.states = (1u << ENTRY_PUBLISHED) | (1u << ENTRY_UNKNOWN);
	q.order = ORDER_KEY;
	q.limit = FSCK_BATCH;
	for (;;) {
		b.n = 0;
		rc = manifest_list(f->m, &q, rows_add, &b);
		if (rc < 0 || b.n == 0)
			break;
		for (i = 0; i < b.n; i++) {
			const struct manifest_entry *e = &b.v[i];

			f->res->entries++;
			fsck_progress(f, "checking entries %lld/%lld",
				      (long long)f->res->entries,
				      (long long)f->total);
			bad = check_row(f, e, &x);
			/* a live mount never reaches a malformed row */
			if (bad && (x.kind == FSCK_BAD_ROW ||
				    row_still_there(f, e))) {
				if (fsck_may_repair(f, &x))
					repair_row(f, &x, e);
				fsck_report(f, &x);
			}
			/* every repair drops the row: a symbol no row is
			 * left under needs no symbols row made for it */
			rc = bad && x.corrected ? 0 : note_symbol(f, e->symbol);
			if (rc < 0)
				goto out;
		}
		snprintf(after_symbol, sizeof(after_symbol), "%s",
			 b.v[b.n - 1].symbol);
		snprintf(after_key, sizeof(after_key), "%s", b.v[b.n - 1].key);
		q.after_symbol = after_symbol;
		q.after_key = after_key;
		if (b.n < FSCK_BATCH)
			break;
	}
out:
	free(b.v);
	return rc;
}

/* ---- the run --------------------------------------------------------- */

/* lost+found/ exists (objects/ and tmp/ were checked by store_open()). */
static int check_layout(struct fsck *f)
{
	struct fsck_finding x;
	struct stat st;
	int fd;

	if (fstatat(f->s->root_fd, LOSTFOUND_DIR, &st, AT_SYMLINK_NOFOLLOW)) {
		fsck_finding_set(&x, FSCK_LAYOUT, FSCK_PREEN, NULL, NULL,
				 LOSTFOUND_DIR, "lost+found/ is missing");
		if (fsck_may_repair(f, &x)) {
			fd = lostfound_open(f->s);
			if (fd >= 0)
				f->lf_fd = fd;
			fsck_repaired(&x, fd < 0 ? fd : 0, "created");
		}
	} else if (!S_ISDIR(st.st_mode)) {
		fsck_finding_set(&x, FSCK_LAYOUT, FSCK_CHECK, NULL, NULL,
				 LOSTFOUND_DIR,
				 "lost+found is not a directory");
	} else {
		return 0;
	}
	fsck_report(f, &x);
	return 0;
}

/* Take the store lock for repairs, or learn who holds it for a check. */
static int lock_store(struct fsck *f)
{
	struct store_holder h;
	char who[128];
	int rc;

	if (f->o->mode == FSCK_CHECK) {
		if (store_lock_probe(f->s, &h) != 1)
			return 0;
		if (strcmp(h.role, "mount") == 0)
			snprintf(f->live, sizeof(f->live), "%s", h.mount_id);
		else if (!f->s->read_only_fs) {
			/* read-only media record no holder */
			store_holder_describe(f->s, &h, who, sizeof(who));
			log_warn("fsck: store %s is in use by %s; findings "
				 "may be out of date", f->s->root, who);
		}
		return 0;
	}
	if (f->s->read_only_fs) {
		snprintf(f->res->error, sizeof(f->res->error),
			 "store is on a read-only filesystem: fsck -n checks "
			 "it, repairs need it writable");
		return -EROFS;
	}
	memset(&h, 0, sizeof(h));
	rc = store_lock(f->s, "fsck", NULL, &h);
	if (rc == -EBUSY && strcmp(h.role, "mount") == 0)
		snprintf(f->res->error, sizeof(f->res->error),
			 "store is mounted by pid %ld%s%s; unmount it before "
			 "repairing (fsck -n checks a mounted store)",
			 (long)h.pid, h.mountpoint[0] ? " at " : "",
			 h.mountpoint);
	else if (rc == -EBUSY) {
		store_holder_describe(f->s, &h, who, sizeof(who));
		snprintf(f->res->error, sizeof(f->res->error),
			 "store is in use by %s", who);
	}
	else if (rc < 0)
		snprintf(f->res->error, sizeof(f->res->error),
			 "cannot lock the store: %s", strerror(-rc));
	return rc;
}

/* Say why the manifest cannot be used; `detail` may be "". */
static void manifest_error(struct fsck *f, int rc, const char *detail)
{
	/* another manifest's URI is not echoed: it may hold a secret */
	const char *db = strcmp(f->s->conf.manifest, "sqlite") == 0
				 ? "manifest.db"
				 : "the manifest named in store.conf";
	char *e = f->res->error;
	size_t len = sizeof(f->res->error);

	if (rc == -EIO)
		snprintf(e, len, "%s is corrupt or unreadable%s%s; nothing was "
			 "changed: restore it from a backup, or move it aside "
			 "with its -wal and -shm, mount and unmount once, and "
			 "run fsck -p, which adopts the objects",
			 db, detail[0] ? ": " : "", detail);
	else if (rc == -EAGAIN)
		snprintf(e, len, "%s is locked by another process, which "
			 "did not let go of it in time; nothing was changed: "
			 "run fsck again once it is free", db);
	else if (rc == -EPROTO)
		snprintf(e, len, "%s is not at schema version %d, the one "
			 "this featurefs uses; nothing was changed (a mount "
			 "migrates an older one; a newer one needs a newer "
			 "featurefs)",
			 db, MANIFEST_SCHEMA_VERSION);
	else if (rc == -EXDEV)
		snprintf(e, len, "%s belongs to another store; nothing was "
			 "changed", db);
	else
		snprintf(e, len, "cannot use %s: %s; nothing was changed", db,
			 strerror(-rc));
}

/*
 * Open the manifest read-only and check it before anything is written:
 * a damaged database is reported, never "repaired" by opening it for
 * writing.  Repairs then reopen it read-write.
 */
static int open_manifest(struct fsck *f)
{
	struct manifest_open_args a = {
		.store_root = f->s->root,
		.store_uuid = f->s->conf.uuid,
		.read_only = 1,
	};
	struct manifest_totals t;
	char detail[256] = "";
	int rc, version = 0;

	rc = manifest_open(f->s->conf.manifest, &a, &f->m);
	if (rc == 0)
		rc = manifest_schema_version(f->m, &version);
	/* a check reads schemas 2 and 3 as they are (manifest_sqlite.c);
	 * repairs write, and want the store mounted once to migrate it */
	if (rc == 0 && version != MANIFEST_SCHEMA_VERSION &&
	    (version < 2 || f->o->mode != FSCK_CHECK))
		rc = -EPROTO;
	if (rc == 0)
		rc = manifest_check(f->m, detail, sizeof(detail));
	if (rc == 0)
		detail[0] = '\0'; /* its "ok" is no detail of what fails next */
	if (rc == 0 && f->o->mode != FSCK_CHECK) {
		manifest_close(f->m);
		f->m = NULL;
		a.read_only = 0;
		rc = manifest_open(f->s->conf.manifest, &a, &f->m);
	}
	if (rc == 0)
		rc = manifest_totals(f->m, &t);
	if (rc < 0) {
		manifest_error(f, rc, detail);
		return rc;
	}
	f->total = t.entries;
	return 0;
}

int fsck_run(struct store *s, const struct fsck_options *o, fsck_report_fn fn,
	     void *arg, struct fsck_result *res)
{
	struct fsck f = {
		.s = s, .o = o, .fn = fn, .arg = arg, .res = res, .lf_fd = -1,
	};
	static const struct {
		const char *name;
		int (*run)(struct fsck *f);
	} steps[] = {
		{ "layout", check_layout },
		{ "removals", check_removals },
		{ "dead writers", check_writers },
		{ "published entries", check_published },
		{ "symbols", fsck_check_symbols },
		{ "objects", fsck_check_objects },
		{ "usage", fsck_check_usage },
	};
	const char *step = "setup";
	size_t i;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = lock_store(&f);
	if (rc < 0)
		return rc;
	rc = open_manifest(&f);
	if (rc < 0)
		goto out;
	rc = htab_new(&f.dropping);
	if (rc == 0)
		rc = htab_new(&f.removing);
	for (i = 0; rc == 0 && i < sizeof(steps) / sizeof(steps[0]); i++) {
		step = steps[i].name;
		rc = steps[i].run(&f);
	}
	if (rc < 0)
		snprintf(res->error, sizeof(res->error),
			 "checking %s failed: %s; the run stopped there", step,
			 strerror(-rc));
out:
	progress_clear(&f);
	htab_free_values(f.dropping);
	htab_free_values(f.removing);
	fsck_names_release(&f.row_symbols);
	fsck_names_release(&f.live_orphans);
	if (f.lf_fd >= 0)
		close(f.lf_fd);
	manifest_close(f.m);
	store_unlock(s);
	return rc;
}
