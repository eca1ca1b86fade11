/*
 * fsck_objects.c - the store side of fsck: symbol rows against objects/
 * directories, and every file under objects/ against the manifest
 * (orphans to adopt or quarantine, names that do not belong there).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsck_internal.h"
#include "gc.h"
#include "log.h"
#include "names.h"
#include "parquet.h"

/* ---- symbols --------------------------------------------------------- */

#define LIVE_ORPHAN_PAUSE_US 200000

static int lstat_at(int dirfd, const char *name, struct stat *st)
{
	return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* 1 when objects/<name> is where another filesystem is mounted (a mount
 * of another store, say): nothing of this store, and no place to
 * repair anything. */
static int mounted_over(struct fsck *f, const char *name)
{
	struct stat top, st;

	return fstat(f->s->objects_fd, &top) == 0 &&
	       lstat_at(f->s->objects_fd, name, &st) == 0 &&
	       st.st_dev != top.st_dev;
}

static int rmdir_at(int dirfd, const char *name)
{
	return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

struct symbol_rows {
	struct htab *valid;
	struct fsck_names malformed;
};

static int add_symbol_row(void *arg, const struct manifest_symbol *s)
{
	struct symbol_rows *r = arg;

	if (name_check_symbol(s->symbol) < 0)
		return fsck_names_add(&r->malformed, s->symbol);
	return htab_add_string(r->valid, s->symbol);
}

/* A symbol row under a name featurefs would not write: mounts leave it
 * out of listings; -y drops it once no entry row names it, unless its
 * name read back cut short (see the backend). */
static void symbol_malformed(struct fsck *f, const char *symbol)
{
	struct fsck_finding x;
	int rc;

	if (manifest_symbol_get(f->m, symbol, NULL) == -ENOENT)
		fsck_finding_set(&x, FSCK_BAD_ROW, FSCK_CHECK, symbol, NULL,
				 NULL, "symbol row with a name too long or "
				 "holding a NUL; delete it from the manifest "
				 "by hand");
	else
		fsck_finding_set(&x, FSCK_BAD_ROW, FSCK_YES, symbol, NULL,
				 NULL, "symbol row with a malformed name");
	if (fsck_may_repair(f, &x)) {
		rc = manifest_symbol_remove(f->m, symbol);
		fsck_repaired(&x, rc, "row dropped");
	}
	fsck_report(f, &x);
}

/* 1 when directory objects/<symbol>/ holds nothing. */
static int dir_empty(struct fsck *f, const char *symbol)
{
	struct fsck_names l = { 0 };
	int fd, rc;

	fd = openat(f->s->objects_fd, symbol,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	rc = fsck_list_dir(fd, &l);
	close(fd);
	rc = rc == 0 && l.n == 0;
	fsck_names_release(&l);
	return rc;
}

static int stop_at_first_row(void *arg, const struct manifest_entry *e)
{
	(void)arg;
	(void)e;
	return 1;
}

/* Whether `symbol` has published rows or objects now (1 on doubt). */
static int symbol_in_use(struct fsck *f, const char *symbol)
{
	struct manifest_query q = { .symbol = symbol,
				    .states = 1u << ENTRY_PUBLISHED,
				    .limit = 1 };
	struct stat st;

	if (manifest_list(f->m, &q, stop_at_first_row, NULL) != 0)
		return 1;
	return lstat_at(f->s->objects_fd, symbol, &st) == 0 &&
	       !dir_empty(f, symbol);
}

static void symbol_missing(struct fsck *f, const char *symbol, const char *why)
{
	struct fsck_finding x;
	char rel[SYMBOL_MAX + 16];
	int rc;

	/* the live mount may have made the row, or emptied and removed the
	 * symbol, since the rows and directories were read */
	if (f->live[0] && (manifest_symbol_get(f->m, symbol, NULL) == 0 ||
			   !symbol_in_use(f, symbol)))
		return;
	snprintf(rel, sizeof(rel), "objects/%s", symbol);
	fsck_finding_set(&x, FSCK_SYMBOL_MISSING, FSCK_PREEN, symbol, NULL, rel,
			 "%s but no symbol row", why);
	if (fsck_may_repair(f, &x)) {
		rc = manifest_symbol_create(f->m, symbol);
		fsck_repaired(&x, rc == -EEXIST ? 0 : rc, "symbol row created");
	}
	fsck_report(f, &x);
}

/*
 * Symbol rows against published rows and objects/ directories.  An empty
 * directory without a row is what a crash in rmdir leaves between the
 * row's removal and the directory's: -p finishes the rmdir.
 */
int fsck_check_symbols(struct fsck *f)
{
	struct symbol_rows r = { 0 };
	struct fsck_names dirs = { 0 };
	struct fsck_finding x;
	struct stat st;
	size_t i, j;
	int rc;

	rc = htab_new(&r.valid);
	if (rc == 0)
		rc = manifest_symbol_list(f->m, 0, add_symbol_row, &r);
	if (rc == 0)
		rc = fsck_list_dir(f->s->objects_fd, &dirs);
	if (rc < 0)
		goto out;
	f->res->symbols = (int64_t)htab_count(r.valid);
	for (i = 0; i < r.malformed.n; i++)
		symbol_malformed(f, r.malformed.v[i]);
	for (i = 0; i < f->row_symbols.n; i++)
		if (!htab_get(r.valid, f->row_symbols.v[i]))
			symbol_missing(f, f->row_symbols.v[i],
				       "published entries");
	for (i = 0, j = 0; i < dirs.n; i++) {
		const char *sym = dirs.v[i];
		char rel[SYMBOL_MAX + 16];

		if (name_check_symbol(sym) < 0 ||
		    lstat_at(f->s->objects_fd, sym, &st) < 0 ||
		    !S_ISDIR(st.st_mode) || htab_get(r.valid, sym) ||
		    mounted_over(f, sym))
			continue;
		/* both lists are sorted: skip symbols reported above */
		while (j < f->row_symbols.n &&
		       strcmp(f->row_symbols.v[j], sym) < 0)
			j++;
		if (j < f->row_symbols.n &&
		    strcmp(f->row_symbols.v[j], sym) == 0)
			continue;
		if (!dir_empty(f, sym)) {
			symbol_missing(f, sym, "objects/ holds files");
			continue;
		}
		if (f->live[0] && (manifest_symbol_get(f->m, sym, NULL) == 0 ||
				   lstat_at(f->s->objects_fd, sym, &st) < 0))
			continue; /* made or removed by the live mount */
		snprintf(rel, sizeof(rel), "objects/%s", sym);
		fsck_finding_set(&x, FSCK_EMPTY_SYMBOL_DIR, FSCK_PREEN, sym,
				 NULL, rel,
				 "empty directory without a symbol row");
		if (fsck_may_repair(f, &x))
			fsck_repaired(&x, rmdir_at(f->s->objects_fd, sym),
				      "directory removed");
		fsck_report(f, &x);
	}
out:
	htab_free_values(r.valid);
	fsck_names_release(&r.malformed);
	fsck_names_release(&dirs);
	return rc;
}

struct usage_mismatch {
	char symbol[SYMBOL_MAX + 1];
	struct manifest_usage kept, summed;
};

struct usage_mismatches {
	struct usage_mismatch *v;
	size_t n;
};

static int add_usage_mismatch(void *arg, const char *symbol,
			      const struct manifest_usage *kept,
			      const struct manifest_usage *summed)
{
	struct usage_mismatches *l = arg;
	struct usage_mismatch *v;

	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	snprintf(v[l->n].symbol, sizeof(v[l->n].symbol), "%s", symbol);
	v[l->n].kept = *kept;
	v[l->n].summed = *summed;
	l->n++;
	return 0;
}

int fsck_check_usage(struct fsck *f)
{
	struct usage_mismatches l = { NULL, 0 };
	struct fsck_finding x;
	size_t i;
	int rc;

	/* listed first, repaired after: the list reads in one snapshot */
	rc = manifest_usage_check(f->m, add_usage_mismatch, &l);
	for (i = 0; rc == 0 && i < l.n; i++) {
		const struct usage_mismatch *u = &l.v[i];

		fsck_finding_set(&x, FSCK_USAGE_MISMATCH, FSCK_PREEN,
				 u->symbol, NULL, NULL,
				 "its totals say %lld published (%lld bytes, "
				 "%lld stored) and %lld in flight; its rows "
				 "hold %lld (%lld bytes, %lld stored) and %lld",
				 (long long)u->kept.entries,
				 (long long)u->kept.file_bytes,
				 (long long)u->kept.stored_bytes,
				 (long long)u->kept.writing,
				 (long long)u->summed.entries,
				 (long long)u->summed.file_bytes,
				 (long long)u->summed.stored_bytes,
				 (long long)u->summed.writing);
		if (fsck_may_repair(f, &x))
			fsck_repaired(&x, manifest_usage_recount(f->m, u->symbol),
				      "totals recounted");
		fsck_report(f, &x);
	}
	free(l.v);
	return rc;
}

/* ---- the objects/ tree ----------------------------------------------- */

static void stray(struct fsck *f, const char *symbol, const char *rel,
		  const char *why)
{
	struct fsck_finding x;
	char dest[STORE_REL_MAX + 64];
	int rc;

	fsck_finding_set(&x, FSCK_STRAY, FSCK_YES, symbol, NULL, rel, "%s",
			 why);
	if (fsck_may_repair(f, &x)) {
		rc = fsck_quarantine(f, rel, rel, NULL, why, dest,
				     sizeof(dest));
		fsck_repaired(&x, rc, "moved to %s", dest);
	}
	fsck_report(f, &x);
}

/* A regular <key>.parquet without a row; `dropping`: it has a dead
 * writer's row that -p would drop (check mode). */
static void orphan(struct fsck *f, const char *symbol, const char *key,
		   const char *rel, int dropping)
{
	struct manifest_entry e;
	struct fsck_finding x;
	char dest[STORE_REL_MAX + 64], why[256];
	struct stat st;
	int fd, rc;

	if (f->live[0] && !dropping &&
	    manifest_get(f->m, symbol, key, &e) != -ENOENT)
		return; /* published or claimed meanwhile */
	fd = fsck_open_object(f, rel, &st);
	if (fd == -ENOENT)
		return; /* gone meanwhile */
	if (fd < 0) {
		fsck_finding_set(&x, FSCK_UNVERIFIABLE, FSCK_CHECK, symbol, key,
				 rel, "object without a manifest row, cannot "
				 "open it: %s", strerror(-fd));
		fsck_report(f, &x);
		return;
	}
	close(fd);
	rc = gc_describe_object(f->s, symbol, key, rel, 0, &e, why,
				sizeof(why));
	if (rc == -ENOENT)
		return; /* gone meanwhile */
	if (rc == 0) {
		fsck_finding_set(&x, FSCK_ORPHAN, FSCK_PREEN, symbol, key, rel,
				 "valid object without a manifest row");
		if (fsck_may_repair(f, &x)) {
			rc = gc_describe_object(f->s, symbol, key, rel, 1, &e,
						why, sizeof(why));
			if (rc == 0)
				rc = manifest_adopt(f->m, &e);
			fsck_repaired(&x, rc, "adopted");
		}
	} else if (rc != -EBADMSG) {
		fsck_finding_set(&x, FSCK_UNVERIFIABLE, FSCK_CHECK, symbol, key,
				 rel, "object without a manifest row, cannot "
				 "check it: %s", why);
	} else {
		fsck_finding_set(
			&x, FSCK_INVALID_ORPHAN, FSCK_YES, symbol, key, rel,
			"object without a manifest row, not valid Parquet: %s",
			why);
		if (fsck_may_repair(f, &x)) {
			rc = fsck_quarantine(f, rel, rel, NULL, x.detail, dest,
					     sizeof(dest));
			fsck_repaired(&x, rc, "moved to %s", dest);
		}
	}
	fsck_report(f, &x);
}

static int add_key(void *arg, const struct manifest_entry *e)
{
	return htab_add_string(arg, e->key);
}

/* Files of objects/<symbol>/ against the symbol's rows. */
static int scan_symbol_dir(struct fsck *f, const char *symbol)
{
	struct manifest_query q = { .symbol = symbol };
	struct htab *keys = NULL;
	struct fsck_names files = { 0 };
	char key[KEY_MAX + 1], rel[STORE_REL_MAX + 256];
	char lockname[LOCK_NAME_MAX + 1];
	struct stat st;
	size_t i;
	int dirfd, dropping, rc;

	dirfd = openat(f->s->objects_fd, symbol,
		       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = htab_new(&keys);
	if (rc == 0)
		rc = manifest_list(f->m, &q, add_key, keys);
	if (rc == 0)
		rc = fsck_list_dir(dirfd, &files);
	for (i = 0; rc == 0 && i < files.n; i++) {
		const char *name = files.v[i];

		f->res->objects++;
		fsck_progress(f, "scanning objects/%s (%zu/%zu)", symbol, i + 1,
			      files.n);
		snprintf(rel, sizeof(rel), "objects/%s/%s", symbol, name);
		if (lstat_at(dirfd, name, &st) < 0)
			continue; /* gone meanwhile */
		if (name_parse_child(name, key) != NAME_ENTRY) {
			stray(f, symbol, rel, "not a <key>.parquet name");
			continue;
		}
		snprintf(lockname, sizeof(lockname), "%s/%s", symbol, key);
		if (htab_get(f->removing, lockname))
			continue; /* reported as a removal's */
		dropping = htab_get(f->dropping, lockname) != NULL;
		if (htab_get(keys, key) && !dropping)
			continue; /* its row was checked above */
		if (!S_ISREG(st.st_mode))
			stray(f, symbol, rel, "not a regular file");
		else if (f->live[0] && !dropping)
			rc = fsck_names_add(&f->live_orphans, lockname);
		else
			orphan(f, symbol, key, rel, dropping);
	}
	close(dirfd);
	htab_free_values(keys);
	fsck_names_release(&files);
	return rc;
}

int fsck_check_objects(struct fsck *f)
{
	struct fsck_names top = { 0 };
	char rel[NAME_MAX + 16];
	struct stat st;
	size_t i;
	int rc;

	rc = fsck_list_dir(f->s->objects_fd, &top);
	for (i = 0; rc == 0 && i < top.n; i++) {
		const char *name = top.v[i];

		snprintf(rel, sizeof(rel), "objects/%s", name);
		if (lstat_at(f->s->objects_fd, name, &st) < 0)
			continue;
		if (mounted_over(f, name))
			log_warn("fsck: %s: another filesystem is mounted there; "
				 "left alone", rel);
		else if (!S_ISDIR(st.st_mode))
			stray(f, NULL, rel, "not a symbol directory");
		else if (name_check_symbol(name) < 0)
			stray(f, NULL, rel, "not a valid symbol name");
		else
			rc = scan_symbol_dir(f, name);
	}
	/* Beside a live mount, an object without a row is looked at again
	 * after the walk and a pause: GC removes a batch's rows, then
	 * unlinks their objects, and a publish links the object before its
	 * row, each within milliseconds. */
	if (rc == 0 && f->live_orphans.n)
		usleep(LIVE_ORPHAN_PAUSE_US);
	for (i = 0; rc == 0 && i < f->live_orphans.n; i++) {
		char *key = strchr(f->live_orphans.v[i], '/');

		*key++ = '\0';
		store_object_relpath(f->live_orphans.v[i], key, rel,
				     sizeof(rel));
		orphan(f, f->live_orphans.v[i], key, rel, 0);
	}
	fsck_names_release(&top);
	return rc;
}
