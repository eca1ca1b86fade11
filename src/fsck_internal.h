/*
 * fsck_internal.h - what the two halves of fsck share: the run's state
 * and the helpers that record findings.  fsck.c holds the run and the
 * manifest-side checks (dead writers, published rows); fsck_objects.c the
 * store-side ones (symbol directories, the objects/ tree).  Not for use
 * outside fsck: the contract is fsck.h.
 */
#ifndef FEATUREFS_FSCK_INTERNAL_H
#define FEATUREFS_FSCK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fsck.h"
#include "htab.h"
#include "manifest.h"
#include "store.h"

/* A growable list of strings (each a copy). */
struct fsck_names {
	char **v;
	size_t n, alloc;
};

/* One run. */
struct fsck {
	struct store *s;
	struct manifest *m;
	const struct fsck_options *o;
	fsck_report_fn fn;
	void *arg;
	struct fsck_result *res;
	char live[STORE_MOUNT_ID_LEN + 1]; /* a live mount's id, or "" */
	int lf_fd;		/* lost+found/, opened on demand, or -1 */
	/* Check mode: "<symbol>/<key>" of dead writers' rows that -p would
	 * drop, whose objects then become orphans. */
	struct htab *dropping;
	/* "<symbol>/<key>" of objects reported as a removal's, which the
	 * object scan leaves alone */
	struct htab *removing;
	struct fsck_names row_symbols;	/* of published rows, sorted */
	struct fsck_names live_orphans;	/* "<symbol>/<key>" to look at
					 * again after the walk */
	int64_t total;			/* published rows, for progress */
	int64_t progress_at;
	int progress_shown;
};

int fsck_names_add(struct fsck_names *l, const char *s);
void fsck_names_release(struct fsck_names *l);
/* The names in directory `dirfd` but "." and "..", sorted. */
int fsck_list_dir(int dirfd, struct fsck_names *out);

/* A set of strings in an htab that owns copies of its keys. */

/* Progress on stderr when asked for, at most every 100 ms. */
void fsck_progress(struct fsck *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fill `x`; `repair` is the least mode that repairs it (FSCK_CHECK:
 * none does). */
void fsck_finding_set(struct fsck_finding *x, enum fsck_kind kind,
		      enum fsck_mode repair, const char *symbol,
		      const char *key, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
/* Does this run's mode repair `x`? */
int fsck_may_repair(const struct fsck *f, const struct fsck_finding *x);
/* Record a repair's outcome: rc 0 and what was done, or why it failed. */
void fsck_repaired(struct fsck_finding *x, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Count `x` and hand it to the caller's callback. */
void fsck_report(struct fsck *f, const struct fsck_finding *x);

/* Open `rel` (relative to STORE) for checking without following a
 * symlink (-ELOOP) or blocking on a FIFO; fills `st`. */
int fsck_open_object(struct fsck *f, const char *rel, struct stat *st);
/* lostfound_move() into this run's lost+found/. */
int fsck_quarantine(struct fsck *f, const char *rel, const char *name_from,
		    const struct manifest_entry *row, const char *reason,
		    char *dest, size_t len);

int fsck_check_symbols(struct fsck *f);
/* Each symbol's kept totals (entries, bytes: what stats, the metrics
 * and the GC quota read) against what its rows add up to; run last, on
 * the repaired rows. */
int fsck_check_usage(struct fsck *f);
int fsck_check_objects(struct fsck *f);

#endif
