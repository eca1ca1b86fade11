/*
 * entry_int.h - the entry module's internal interface: what its files
 * (entry.c, entry_wait.c, entry_publish.c, entry_remove.c, entry_attr.c)
 * share with each other.  Not for other modules: theirs is ffs.h.
 */
#ifndef FEATUREFS_ENTRY_INT_H
#define FEATUREFS_ENTRY_INT_H

#include <stdint.h>

#include "ffs.h"
#include "proc.h"
#include "stats.h"

/* ---- entry.c -------------------------------------------------------- */

/* The errno for a descriptor the daemon could not get: running out of
 * its own is ENFILE to the caller, whose limit it is not. */
int entry_fd_errno(int rc);

/* Node `n` as /proc shows it to the processes that use this mount (a
 * descriptor of another mount, or of an earlier mount of this store, is
 * not it); the name is kept in `p`. */
struct node_in_proc {
	struct proc_file file;
	char suffix[NODE_HKEY_MAX + 2];
};

const struct proc_file *entry_node_in_proc(struct ffs *ffs,
					   const struct node *n,
					   struct node_in_proc *p);

/* A write through a descriptor still open after a rename published its
 * file: EPERM, logged once per file.  w->mu held. */
int entry_refuse_late_write(struct ffs *ffs, struct writer *w,
			    struct handle *h, const char *op);

/* ---- entry_wait.c --------------------------------------------------- */

/* Answer every waiter on `n` with `err` (0: published). */
void entry_wake_waiters(struct ffs *ffs, struct node *n, int err);

/* ---- entry_publish.c ------------------------------------------------ */

/* A claim of symbol/key took over its row: the tmp file kept for it is
 * no write's any more, and goes. */
void entry_kept_supersede(struct ffs *ffs, const char *symbol, const char *key);

/* Give up the claim of symbol/key.  A manifest that refuses (locked, a
 * full disk) leaves its row behind, taken over by the key's next claim
 * meanwhile, and dropped by entry_drop_stale_claims() later. */
void entry_abandon_claim(struct ffs *ffs, const char *symbol, const char *key);

/* Claim `symbol`/`key` for writer `w` (SPEC §3 step 2), its row made in
 * `e`: manifest_claim()'s result, -EEXIST when the key is taken. */
int entry_claim_key(struct ffs *ffs, const struct writer *w,
		    const char *symbol, const char *key, int64_t created_ts,
		    struct manifest_entry *e);

/* The times and mode writer `w` shows, as a row takes them. */
void writer_attrs(struct writer *w, struct manifest_attrs *a);

/* The content of sealed writer `w` is about to change: withdraw the seal
 * first, so that recovery never publishes a mix of old and new.  0, or
 * the manifest's error, which refuses the change.  w->mu held. */
int writer_unseal(struct ffs *ffs, struct node *n, struct writer *w);

/*
 * Validate and fsync the writer's data unless nothing changed since the
 * last check.  0 when publishable; -EIO when not Parquet (w->why says
 * why); another errno when the data could not be made durable.  w->mu held.
 */
int writer_check(struct ffs *ffs, struct writer *w);

/*
 * Publish checked writer `w` (the key is claimed) as <symbol>/<key>, then
 * make node `n` that published entry.  On failure nothing is left in
 * objects/, w->tmpname is still there, and the claim is the caller's to
 * settle.  w->mu held.
 */
int entry_publish_writer(struct ffs *ffs, struct node *n, struct writer *w,
			 struct node *symbol, const char *key);

/*
 * Whether the published entry <symbol>/<key> holds the very bytes of
 * checked writer `w`, its object read back: 0 with its row in `e` and
 * the key pinned (manifest_pin(): the caller releases it) if so;
 * -EEXIST if it holds other bytes, cannot be read, or is in flight;
 * -ENOENT if it is gone since; another negative errno when a read of
 * w's file failed.  w->mu held.
 */
int entry_same_as_published(struct ffs *ffs, struct writer *w,
			    const char *symbol, const char *key,
			    struct manifest_entry *e);

/* Scratch node `n`, renamed onto published entry `e`, whose bytes its
 * writer `w` holds (entry_same_as_published()), becomes that entry: w's
 * tmp file goes; the entry takes w's modification time and keeps its
 * mode, row and object.  w->mu held. */
void entry_publish_same(struct ffs *ffs, struct node *n, struct writer *w,
			struct manifest_entry *e);

/* Claim the discard of `w`, the writer of entry `n`: 1 when the caller
 * is the one to discard it, 0 when it is published or discarded already.
 * The name goes at once, under the same hold of ffs->lock, so that no
 * lookup finds a write being discarded (an open that met it gets ESTALE,
 * and the kernel's second look must not meet it again).  w->mu held. */
int writer_abandon_locked(struct ffs *ffs, struct node *n,
			  struct writer *w);

/* Drop in-flight entry `n`, whose name is gone: tmp data and claim;
 * waiting readers get ENOENT.
 * With `keep` (its writer's close() returned 0 on content it sealed, and
 * this mount could not publish it), the tmp file and its row stay for
 * the next mount's recovery, or fsck -p, to publish.  Only the caller
 * that won writer_abandon_locked() calls this. */
void entry_discard(struct ffs *ffs, struct node *n, struct writer *w,
		   enum load_failure why, const char *detail, int keep);

#endif
