/*
 * fsck.h - checking a store against its manifest, and repairing it
 * (SPEC §8, docs/fsck.md).  FUSE-free: it works on an unmounted store, or
 * read-only beside a live mount.
 *
 * A run reports every inconsistency as one finding, through a callback,
 * as soon as it is known, and repairs what the mode allows:
 *  - FSCK_CHECK (-n) changes nothing and opens the manifest read-only;
 *  - FSCK_PREEN (-p) makes the safe repairs: adopt valid orphans, drop
 *    rows whose object is gone, settle dead writers' rows and tmp files,
 *    create missing symbol rows, remove empty symbol directories that
 *    have no row;
 *  - FSCK_YES (-y) also moves corrupt objects and anything else that does
 *    not belong in objects/ into lost+found/, and drops their rows.
 * Nothing is deleted outright but tmp data of writers that are gone.
 */
#ifndef FEATUREFS_FSCK_H
#define FEATUREFS_FSCK_H

#include <stdint.h>

#include "names.h"
#include "store.h"

enum fsck_mode {
	FSCK_CHECK = 0,		/* -n */
	FSCK_PREEN = 1,		/* -p */
	FSCK_YES = 2,		/* -y */
};

enum fsck_kind {
	FSCK_LAYOUT,		/* a directory of the layout is missing */
	FSCK_BAD_ROW,		/* malformed symbol, key or path in a row */
	FSCK_OBJECT_MISSING,	/* published row, no object */
	FSCK_NOT_REGULAR,	/* the object is not a regular file */
	FSCK_SIZE_MISMATCH,	/* object size differs from the row's */
	FSCK_INVALID_PARQUET,	/* the object does not validate */
	FSCK_CHECKSUM_MISMATCH,	/* --verify: sha256 differs */
	FSCK_UNVERIFIABLE,	/* --verify: no usable checksum or codec */
	FSCK_DEAD_WRITER,	/* a `writing` row whose writer is gone */
	FSCK_STALE_TMP,		/* a tmp file of a writer that is gone */
	FSCK_UNFINISHED_REMOVAL, /* an object whose row a removal dropped */
	FSCK_SYMBOL_MISSING,	/* entries or objects of a symbol with no row */
	FSCK_EMPTY_SYMBOL_DIR,	/* empty objects/<symbol>/ with no row */
	FSCK_USAGE_MISMATCH,	/* a symbol's kept totals are not its rows' */
	FSCK_ORPHAN,		/* valid object without a row */
	FSCK_INVALID_ORPHAN,	/* invalid object without a row */
	FSCK_STRAY,		/* a name in objects/ that is not an object */
	FSCK_KIND_COUNT
};

struct fsck_options {
	enum fsck_mode mode;
	int verify;		/* recompute and compare every sha256 */
	int progress;		/* a progress line on stderr */
};

/* One inconsistency and what became of it. */
struct fsck_finding {
	enum fsck_kind kind;
	char symbol[SYMBOL_MAX + 1];	/* "" when not about one symbol */
	char key[KEY_MAX + 1];		/* "" when not about one entry */
	char path[STORE_REL_MAX + 256];	/* relative to STORE */
	char detail[256];		/* what is wrong, one phrase */
	/* The least mode that repairs it; FSCK_CHECK when none does. */
	enum fsck_mode repair;
	int corrected;
	/* What was done ("row dropped", "adopted", ...), or why a repair
	 * failed; "" when the mode left it alone. */
	char action[STORE_REL_MAX + 64];
};

struct fsck_result {
	int64_t entries;	/* published rows checked */
	int64_t verified;	/* checksums recomputed */
	int64_t in_flight;	/* `writing` rows of a live mount */
	int64_t objects;	/* files seen under objects/ */
	int64_t symbols;	/* symbol rows */
	int64_t findings;
	int64_t corrected;
	int64_t uncorrected;
	int64_t by_kind[FSCK_KIND_COUNT];
	/* Set when fsck_run() fails: one sentence saying why and whether
	 * anything was changed. */
	char error[512];
};

/* Called once per finding, after the repair (if any) was attempted. */
typedef void (*fsck_report_fn)(void *arg, const struct fsck_finding *f);

/*
 * Check (and with PREEN/YES repair) the store `s`.  Repairs take the store
 * lock (role "fsck") for the whole run and refuse with -EBUSY when anyone
 * holds it (a mount: the error names its pid).  CHECK takes no lock; the
 * tmp files and `writing` rows of a live mount are then in flight, not
 * stale.  Returns 0 when the run completed (findings or not), or a
 * negative errno with res->error set when it could not (store in use,
 * manifest unreadable or corrupt, a failing disk).  Findings reported
 * before a failure stay counted.
 */
int fsck_run(struct store *s, const struct fsck_options *o,
	     fsck_report_fn fn, void *arg, struct fsck_result *res);

/* "object_missing", ...: the JSON name of a kind. */
const char *fsck_kind_name(enum fsck_kind kind);

/* fsck(8) exit status of a run: 0, or 1 (corrected) | 4 (uncorrected) |
 * 8 (operational error, `rc` < 0). */
int fsck_exit_status(int rc, const struct fsck_result *res);

#endif
