/*
 * entry_remove.c - names that go or move: unlink(2) of a published entry
 * (its row, then its object), of one in flight (discarded) or of a
 * scratch file; GC's removal of published entries and expiry of idle
 * scratch files; and rename(2), which moves a scratch file, or publishes
 * it when renamed to <key>.parquet.  Part of the entry module (entry.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "control.h"
#include "entry_int.h"
#include "ffs.h"
#include "gc.h"
#include "htab.h"
#include "log.h"
#include "names.h"
#include "proc.h"

/* an unlink that meets a GC pass removing the same entry waits this long
 * for it, in steps */
#define UNLINK_BUSY_TRIES 200
#define UNLINK_BUSY_WAIT_US 10000

/* The node of entry `e`, if the namespace holds one.  Lock held. */
static struct node *entry_node_locked(struct ffs *ffs,
				      const struct manifest_entry *e)
{
	char hkey[NODE_HKEY_MAX];

	snprintf(hkey, sizeof(hkey), "%s/%s" ENTRY_SUFFIX, e->symbol, e->key);
	return htab_get(ffs->names, hkey);
}

/* gc_remove_rows() callback: the row and object of published entry `e`
 * are gone; forget its node and tell the kernel. */
static void forget_removed(void *arg, const struct manifest_entry *e)
{
	struct ffs *ffs = arg;
	char name[KEY_MAX + ENTRY_SUFFIX_LEN + 1];
	struct node *sym, *n;

	snprintf(name, sizeof(name), "%s" ENTRY_SUFFIX, e->key);
	pthread_mutex_lock(&ffs->lock);
	ffs->rows_changed++;
	n = entry_node_locked(ffs, e);
	if (n && n->kind == NODE_ENTRY && !n->w) {
		node_unlink(ffs, n);
		node_release_locked(ffs, n);
	}
	sym = htab_get(ffs->names, e->symbol);
	pthread_mutex_unlock(&ffs->lock);
	CTR_ADD(ffs->ctr.unlinks, 1);
	/* only its node id is used: the symbol may be gone by now */
	if (sym)
		ffs->hooks->inval_entry(ffs, sym, name);
}

int entry_in_use(void *arg, const struct manifest_entry *e)
{
	struct ffs *ffs = arg;
	struct node *n;
	int open;

	if (access_log_pending(ffs->access, e->symbol, e->key, NULL) > 0)
		return 1;
	pthread_mutex_lock(&ffs->lock);
	n = entry_node_locked(ffs, e);
	open = n && n->kind == NODE_ENTRY && n->opens > 0;
	pthread_mutex_unlock(&ffs->lock);
	return open;
}

int entry_remove_batch(struct ffs *ffs, const struct manifest_entry *rows,
		       size_t n, int *results)
{
	return gc_remove_rows(ffs->manifest, ffs->store, rows, n, results,
			      entry_in_use, forget_removed, ffs);
}

/* Unlink scratch node `n`; lock held, dropped.  Its tmp file's name goes
 * first: a store that refuses it (turned read-only) keeps the name, and
 * the error is returned.  The node keeps its writer, and so its data,
 * for the descriptors still open on it, as an unlinked file on any
 * filesystem does: the last one's close and the kernel's forget free
 * them. */
static int remove_scratch_locked(struct ffs *ffs, struct node *n)
{
	struct writer *w = n->w;
	int rc;

	/* all under the lock: once it drops, a forget may free the node */
	if (w) {
		rc = store_tmp_unlink(ffs->store, w->tmpname);
		if (rc < 0 && rc != -ENOENT) {
			log_err("unlink %s: tmp/%s: %s", n->hkey, w->tmpname,
				strerror(-rc));
			pthread_mutex_unlock(&ffs->lock);
			return rc;
		}
	}
	node_unlink(ffs, n);
	node_release_locked(ffs, n);
	pthread_mutex_unlock(&ffs->lock);
	return 0;
}

int entry_expire_scratch(struct ffs *ffs, int64_t idle_us, int dry_run)
{
	int64_t now = mono_us();
	struct node *n;
	int count = 0, found;

	do {
		found = 0;
		pthread_mutex_lock(&ffs->lock);
		for (n = ffs->all; n; n = n->next_all) {
			if (n->kind == NODE_SCRATCH_DIR && n->linked &&
			    !n->children && now - n->touched_us >= idle_us) {
				/* no tmp file: not counted */
				if (dry_run)
					continue;
				log_info("gc: removing empty scratch directory "
					 "%s, unused for %llds", n->hkey,
					 (long long)((now - n->touched_us) /
						     1000000));
				ffs->hooks->inval_entry(ffs, n->parent,
							n->name);
				node_unlink(ffs, n);
				node_release_locked(ffs, n);
				pthread_mutex_unlock(&ffs->lock);
				found = 1;
				break;
			}
			/* handles is written under w->mu: a racy read only
			 * delays a removal to the next pass */
			if (n->kind != NODE_SCRATCH || !n->linked || !n->w ||
			    n->opens || n->renaming || CTR_GET(n->w->handles) ||
			    now - CTR_GET(n->w->touched_us) < idle_us)
				continue;
			count++;
			if (dry_run)
				continue;
			log_info("gc: removing scratch file %s, unused for "
				 "%llds", n->hkey,
				 (long long)((now - n->w->touched_us) / 1000000));
			ffs->hooks->inval_entry(ffs, n->parent, n->name);
			found = 1;
			/* drops the lock; a store that refuses ends the pass */
			if (remove_scratch_locked(ffs, n) < 0)
				return count - 1;
			break;
		}
		if (!found)
			pthread_mutex_unlock(&ffs->lock);
	} while (found);
	return count;
}

/* Note in `w` the process of thread `pid`, which unlinks it, and those
 * that started it.  w->mu held. */
static void unlinked_by(struct writer *w, pid_t pid)
{
	int i;

	for (i = 0, pid = proc_tgid_of(pid); i < WRITER_UNLINKERS && pid > 1;
	     i++) {
		w->unlinked_by[i] = pid;
		pid = proc_parent_of(pid);
	}
}

int entry_unlink(struct ffs *ffs, struct node *parent, const char *name,
		 pid_t pid)
{
	struct manifest_entry e;
	char key[KEY_MAX + 1];
	struct node *n;
	struct writer *w;
	int kind, removed, rc, tries;

	if (parent->kind == NODE_CONTROL_DIR)
		return control_refuse("unlink", name, -EPERM);
	if (!node_holds_files(parent)) {
		log_info("unlink %s: %s", name,
			 parent->kind == NODE_ROOT
				 ? "a symbol directory is removed with rmdir "
				   "(EISDIR)"
				 : "only files in symbol directories are "
				   "removed (EPERM)");
		return parent->kind == NODE_ROOT ? -EISDIR : -EPERM;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("unlink", name);
	kind = node_child_kind(parent, name, key);
	if (kind < 0)
		return -ENOENT;
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, parent, name);
	if (n && n->kind == NODE_SCRATCH)
		return remove_scratch_locked(ffs, n);
	if (n && n->kind == NODE_SCRATCH_DIR) {
		pthread_mutex_unlock(&ffs->lock);
		return -EISDIR;
	}
	if (n && n->w) {
		/* an in-flight entry: abandon it, as unlinking a file that
		 * is still being written discards what it would become */
		int mine, published;

		w = n->w;
		writer_ref(w); /* its last release may free it meanwhile */
		pthread_mutex_unlock(&ffs->lock);
		pthread_mutex_lock(&w->mu);
		mine = writer_abandon_locked(ffs, n, w);
		if (mine) { /* what its writer's next close says */
			w->why = LOAD_ABANDONED;
			snprintf(w->why_detail, sizeof(w->why_detail),
				 "unlinked while being written");
			unlinked_by(w, pid);
		}
		published = w->published;
		pthread_mutex_unlock(&w->mu);
		if (mine)
			entry_discard(ffs, n, w, w->why, w->why_detail, 0);
		writer_unref(w);
		if (!published)
			return mine ? 0 : -ENOENT;
		/* published while we waited for it: unlink the entry */
	} else {
		pthread_mutex_unlock(&ffs->lock);
	}
	if (kind == NAME_SCRATCH)
		return -ENOENT;
	for (tries = 0;; tries++) {
		rc = manifest_get(ffs->manifest, parent->name, key, &e);
		if (rc == 0 && e.state != ENTRY_PUBLISHED)
			rc = -ENOENT;
		if (rc < 0)
			return rc;
		/* the user's unlink: read or not, it goes (its readers
		 * keep their descriptors), unlike an idle entry GC takes */
		rc = gc_remove_rows(ffs->manifest, ffs->store, &e, 1,
				    &removed, NULL, forget_removed, ffs);
		if (rc == 0)
			rc = removed;
		if (rc != -EBUSY || tries == UNLINK_BUSY_TRIES)
			break;
		/* a GC pass removes it right now: once it is done, the row
		 * is gone (ENOENT, which rm -f takes as done) or free */
		usleep(UNLINK_BUSY_WAIT_US);
	}
	if (rc == -EBUSY)
		log_info("unlink %s/%s: busy (being removed elsewhere)",
			 parent->name, name);
	return rc;
}

/* Wait for the outcome of the write of <parent>/<name> if its writer has
 * closed it: the kernel sends the RELEASE that publishes it after close()
 * returns, and a rename onto the key right after that close must meet
 * the entry published (or the key free), not the write in flight.
 * Bounded: the kernel holds the directory meanwhile.  ffs->lock not
 * held. */
static void wait_closed_write(struct ffs *ffs, struct node *parent,
			      const char *name)
{
	struct writer *w = NULL;
	struct node *t;

	pthread_mutex_lock(&ffs->lock);
	t = node_find_locked(ffs, parent, name);
	if (t && node_kind(t) == NODE_ENTRY && t->w) {
		w = t->w;
		writer_ref(w);
	}
	pthread_mutex_unlock(&ffs->lock);
	if (!w)
		return;
	if (writer_lock_settled(w) == 0)
		pthread_mutex_unlock(&w->mu);
	writer_unref(w);
}

/*
 * Publish scratch node `n` under `newname` in `newparent`, a rename
 * asked for by thread `pid` with `flags`.  A key published already is
 * EEXIST (entries are immutable) unless it holds the very bytes of the
 * scratch file and the rename may replace: then the rename replaces the
 * entry with itself, and the scratch file goes (rsync -a again after a
 * touch, two atomic writes of one key).
 */
static int publish_scratch(struct ffs *ffs, struct node *n,
			   struct node *newparent, const char *newname,
			   const char *key, unsigned int flags, pid_t pid)
{
	struct manifest_entry row; /* claimed, or published with its bytes */
	struct writer *w = n->w; /* pinned by the caller */
	struct node_in_proc in_proc;
	const struct proc_file *f = entry_node_in_proc(ffs, n, &in_proc);
	pid_t mapper, renamer;
	int same = 0, rc;

	/* the kernel holds a shared map's stores until it writes them back:
	 * published now, the entry would miss them, or change under its
	 * readers when they come.  The maps looked for are those of the
	 * file's creator and of the renamer, and of their children. */
	mapper = proc_tree_maps_file(w->tgid, f);
	renamer = mapper ? 0 : proc_tgid_of(pid);
	if (renamer > 0 && renamer != w->tgid)
		mapper = proc_tree_maps_file(renamer, f);
	if (mapper) {
		log_warn("rename %s to %s/%s: process %ld still maps it shared "
			 "and writable, so its stores may not have reached "
			 "featurefs; refused (EBUSY): munmap it first",
			 n->hkey, newparent->name, newname, (long)mapper);
		return -EBUSY;
	}
	wait_closed_write(ffs, newparent, newname);
	pthread_mutex_lock(&w->mu);
	rc = writer_check(ffs, w);
	if (rc < 0) {
		pthread_mutex_unlock(&w->mu);
		CTR_ADD(ffs->ctr.load_failures[w->why], 1);
		log_warn("rename %s to %s/%s: not published: %s (%s)",
			 n->hkey, newparent->name, newname,
			 w->why_detail, load_failure_name(w->why));
		return rc;
	}
	rc = entry_claim_key(ffs, w, newparent->name, key, now_us(), &row);
	if (rc == -EEXIST && !(flags & RENAME_NOREPLACE)) {
		rc = entry_same_as_published(ffs, w, newparent->name, key,
					     &row);
		same = rc == 0;
		if (rc == -ENOENT) /* removed since: the key is free */
			rc = entry_claim_key(ffs, w, newparent->name, key,
					     now_us(), &row);
		else if (rc < 0 && rc != -EEXIST)
			log_warn("rename %s to %s/%s: comparing it with the "
				 "published entry: %s", n->hkey,
				 newparent->name, newname, strerror(-rc));
	}
	if (rc == -EEXIST)
		log_info("rename %s to %s/%s: the key is being written, or "
			 "published with other bytes, and entries are "
			 "immutable (EEXIST)",
			 n->hkey, newparent->name, newname);
	if (rc == 0) {
		struct node *oldparent = n->parent;
		char *oldname = strdup(n->name);

		if (!same)
			entry_kept_supersede(ffs, row.symbol, row.key);
		/* the entry's node, if any, node_rename() drops from the name */
		pthread_mutex_lock(&ffs->lock);
		rc = oldname ? node_rename(ffs, n, newparent, newname) : -ENOMEM;
		pthread_mutex_unlock(&ffs->lock);
		if (rc == 0 && same)
			entry_publish_same(ffs, n, w, &row);
		else if (rc == 0) {
			rc = entry_publish_writer(ffs, n, w, newparent, key);
			if (rc < 0) {
				/* a failed rename changes nothing: the scratch
				 * file keeps its name and its tmp file */
				pthread_mutex_lock(&ffs->lock);
				node_rename(ffs, n, oldparent, oldname);
				pthread_mutex_unlock(&ffs->lock);
			}
		}
		if (rc < 0 && !same) {
			entry_abandon_claim(ffs, newparent->name, key);
			log_warn("rename to %s/%s: not published: %s",
				 newparent->name, newname, w->why_detail);
		}
		if (same)
			manifest_release(ffs->manifest, newparent->name, key);
		free(oldname);
	}
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		ffs->hooks->inval_inode(ffs, n);
	return rc;
}

int entry_rename(struct ffs *ffs, struct node *oldparent, const char *oldname,
		 struct node *newparent, const char *newname,
		 unsigned int flags, pid_t pid)
{
	char key[KEY_MAX + 1], oldkey[KEY_MAX + 1];
	struct node *n, *target;
	int kind, rc;

	if (flags & ~RENAME_NOREPLACE) {
		log_info("rename %s to %s: %s is not supported", oldname,
			 newname, flags & RENAME_EXCHANGE ? "RENAME_EXCHANGE"
							  : "RENAME_WHITEOUT");
		return -EINVAL;
	}
	if (oldparent->kind == NODE_ROOT && newparent->kind == NODE_ROOT &&
	    name_check_symbol(oldname) == 0) {
		rc = name_check_symbol(newname);
		if (rc < 0) {
			/* as mkdir of that name says */
			log_info("rename %s to %s: not a symbol name (%s)",
				 oldname, newname, strerror(-rc));
			return rc;
		}
		if (ffs->opt.read_only)
			return ffs_refuse_read_only("rename", oldname);
		log_info("rename %s to %s: a symbol directory is moved by "
			 "copying it (EXDEV)", oldname, newname);
		return -EXDEV;
	}
	if (oldparent->kind == NODE_CONTROL_DIR)
		return control_refuse("rename", oldname, -EPERM);
	if (newparent->kind == NODE_CONTROL_DIR)
		return control_refuse("rename to", newname, -EPERM);
	if (!node_holds_files(oldparent) || !node_holds_files(newparent)) {
		log_info("rename %s/%s to %s/%s: only scratch files in symbol "
			 "directories can be renamed",
			 oldparent->hkey ? oldparent->hkey : "", oldname,
			 newparent->hkey ? newparent->hkey : "", newname);
		return -EPERM;
	}
	if (ffs->opt.read_only)
		return ffs_refuse_read_only("rename", oldname);
	kind = node_child_kind(newparent, newname, key);
	if (node_child_kind(oldparent, oldname, oldkey) == NAME_ENTRY) {
		/* mv copies on EXDEV, then unlinks: a copy under a scratch
		 * name would be discarded and the entry lost (a name that
		 * is neither fails at the copy's create) */
		if (kind >= 0 &&
		    (newparent->kind != NODE_SYMBOL || kind != NAME_ENTRY)) {
			log_info("rename %s/%s to %s/%s: an entry moves only "
				 "to another <key>.parquet", oldparent->hkey,
				 oldname, newparent->hkey, newname);
			return -EPERM;
		}
		pthread_mutex_lock(&ffs->lock);
		target = node_find_locked(ffs, newparent, newname);
		rc = target && target->linked ? -EEXIST : -EXDEV;
		pthread_mutex_unlock(&ffs->lock);
		log_info("rename %s/%s to %s/%s: %s", oldparent->hkey, oldname,
			 newparent->hkey, newname,
			 rc == -EEXIST ? "the entry exists, and entries are "
					 "immutable (EEXIST: remove it first)"
				       : "entries are immutable, one is moved "
					 "by copying it (EXDEV)");
		return rc;
	}
	if (kind < 0) {
		log_info("rename to %s/%s: not <key>.parquet nor a scratch "
			 "name", newparent->hkey, newname);
		return kind;
	}
	pthread_mutex_lock(&ffs->lock);
	n = node_find_locked(ffs, oldparent, oldname);
	if (n && n->kind == NODE_SCRATCH_DIR) {
		pthread_mutex_unlock(&ffs->lock);
		log_info("rename %s/%s: a scratch directory is moved by "
			 "copying it (EXDEV)", oldparent->hkey, oldname);
		return -EXDEV;
	}
	if (!n || n->kind != NODE_SCRATCH) {
		pthread_mutex_unlock(&ffs->lock);
		return -ENOENT;
	}
	if (kind == NAME_ENTRY) {
		struct writer *w = n->w;

		/* the kernel holds the directories' locks against an unlink;
		 * GC's expiry of idle scratch files must be told */
		writer_ref(w);
		n->renaming = 1;
		pthread_mutex_unlock(&ffs->lock);
		rc = publish_scratch(ffs, n, newparent, newname, key, flags,
				     pid);
		pthread_mutex_lock(&ffs->lock);
		n->renaming = 0;
		pthread_mutex_unlock(&ffs->lock);
		writer_unref(w);
		return rc;
	}
	target = node_find_locked(ffs, newparent, newname);
	if (target == n) {
		pthread_mutex_unlock(&ffs->lock);
		return 0;
	}
	if (target && (flags & RENAME_NOREPLACE)) {
		pthread_mutex_unlock(&ffs->lock);
		return -EEXIST;
	}
	if (target && target->kind == NODE_SCRATCH_DIR) {
		pthread_mutex_unlock(&ffs->lock);
		return -EISDIR;
	}
	if (target) {
		rc = remove_scratch_locked(ffs, target);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&ffs->lock);
	}
	rc = node_rename(ffs, n, newparent, newname);
	pthread_mutex_unlock(&ffs->lock);
	return rc;
}
