/*
 * lostfound.h - STORE/lost+found/, where fsck puts what it takes out of
 * objects/ (SPEC §4, §8).  Nothing is deleted on the way: an object keeps
 * its bytes under a name made from its path ("objects/AAPL/<key>.parquet"
 * becomes "AAPL.<key>.parquet"; "<name>.1", "<name>.2", ... when taken),
 * and the manifest row it had is saved beside it as "<name>.row.json"
 * (the row's columns in the manifest's units, plus why and when).
 *
 * The caller holds the store lock: nothing else writes objects/ or
 * lost+found/ meanwhile.
 */
#ifndef FEATUREFS_LOSTFOUND_H
#define FEATUREFS_LOSTFOUND_H

#include <stddef.h>

#include "manifest.h"
#include "store.h"

#define LOSTFOUND_DIR "lost+found"

/* Open STORE/lost+found/, creating it (0700) when missing; returns the
 * directory descriptor or a negative errno. */
int lostfound_open(struct store *s);

/*
 * Move `rel` (relative to STORE: a file or a directory; NULL when there
 * is no object to move) into lost+found/ (descriptor `lf`) under a free
 * name made from `name_from` (a path like `rel`), and save `row` (NULL:
 * none) beside it as "<name>.row.json" with `reason`.  Both are durable
 * (fsynced) on return.  Fills `dest` with the new path relative to STORE
 * (the object's, or the row file's when there is no object).  On failure
 * nothing has moved and no row file is left.
 */
int lostfound_move(struct store *s, int lf, const char *rel,
		   const char *name_from, const struct manifest_entry *row,
		   const char *reason, char *dest, size_t len);

/* lostfound_move() of object `rel` alone, with lost+found/ opened for
 * it: what a publish or a recovery does with an object in its way. */
int lostfound_move_object(struct store *s, const char *rel,
			  const char *reason, char *dest, size_t len);

#endif
