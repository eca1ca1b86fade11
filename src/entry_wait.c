/*
 * entry_wait.c - readers waiting for an in-flight entry (SPEC §3): an
 * open of it by a process other than its writer's queues a waiter (fs.c
 * answers it), woken when the entry is published or discarded
 * (entry_publish.c), or with ETIMEDOUT by the ticker (daemon.c) once
 * lock_timeout passes.  Part of the entry module (entry.c).
 */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "entry_int.h"
#include "ffs.h"
#include "htab.h"
#include "log.h"

/* How soon after a signal ended a wait its retry must come to take it
 * up (a retry loop's, as Python's for EINTR) */
#define RESUME_WINDOW_US 1000000

/* Give `w`, a wait for writer `wr`, the start and deadline of the wait
 * for that same write a signal ended that it retries, if any: 1 if so.
 * ffs->lock held. */
static int resume_interrupted_locked(struct ffs *ffs, struct waiter *w,
				     const struct writer *wr)
{
	struct interrupted_wait *iw;
	unsigned i;

	for (i = 0; i < INTERRUPTED_WAITS; i++) {
		iw = &ffs->interrupted[i];
		if (!iw->pid || iw->pid != w->pid ||
		    strcmp(iw->life, wr->tmpname) != 0 ||
		    w->start_us - iw->at_us > RESUME_WINDOW_US)
			continue;
		w->deadline_us -= w->start_us - iw->start_us;
		w->start_us = iw->start_us;
		memset(iw, 0, sizeof(*iw));
		return 1;
	}
	return 0;
}

/* Wait `iw` was not taken up (its process killed, say): it ended at
 * its signal, and goes into the lock-wait histograms of the mount and
 * of its symbol (found by name: its node may be gone).  ffs->lock
 * held. */
static void end_interrupted_locked(struct ffs *ffs,
				   struct interrupted_wait *iw)
{
	int64_t waited = iw->at_us - iw->start_us;
	struct node *s = htab_get(ffs->names, iw->symbol);

	hist_observe(&ffs->ctr.lock_wait, waited);
	if (s && s->kind == NODE_SYMBOL)
		hist_observe(&s->ctr->lock_wait, waited);
	memset(iw, 0, sizeof(*iw));
}

/* Have the ticker look at its deadlines again, one having come earlier:
 * the GC thread and the recorder sleep on tick_cond too, so wake all,
 * and leave word in case the ticker is not asleep yet. */
static void kick_ticker(struct ffs *ffs)
{
	pthread_mutex_lock(&ffs->tick_mu);
	ffs->tick_kick = 1;
	pthread_cond_broadcast(&ffs->tick_cond);
	pthread_mutex_unlock(&ffs->tick_mu);
}

/* Make `us` (monotonic) the ticker's next deadline if it is earlier:
 * 1 if so, and the ticker must be kicked.  ffs->lock held. */
static int earlier_deadline_locked(struct ffs *ffs, int64_t us)
{
	if (ffs->next_deadline_us && ffs->next_deadline_us <= us)
		return 0;
	ffs->next_deadline_us = us;
	return 1;
}

void entry_wait_interrupted(struct ffs *ffs, struct waiter *w)
{
	struct interrupted_wait *iw = NULL;
	int64_t now = mono_us();
	int kick = 0;

	pthread_mutex_lock(&ffs->lock);
	/* a thread outside the mount's pid namespace has no pid to tell it
	 * by; a write published meanwhile has no wait to take up: either
	 * wait ends here */
	if (w->pid && w->node->w) {
		iw = &ffs->interrupted[ffs->interrupted_next++ %
				       INTERRUPTED_WAITS];
		if (iw->pid)
			end_interrupted_locked(ffs, iw);
		iw->pid = w->pid;
		snprintf(iw->symbol, sizeof(iw->symbol), "%s",
			 w->node->parent->name);
		snprintf(iw->life, sizeof(iw->life), "%s",
			 w->node->w->tmpname);
		iw->start_us = w->start_us;
		iw->at_us = now;
		/* the ticker ends it if no retry takes it up */
		kick = earlier_deadline_locked(ffs, now + RESUME_WINDOW_US);
	}
	pthread_mutex_unlock(&ffs->lock);
	if (kick)
		kick_ticker(ffs);
	if (!iw)
		entry_wait_done(ffs, w, -EINTR);
}

int entry_wait(struct ffs *ffs, struct waiter *w)
{
	struct node *n = w->node;
	int rc = 0, kick = 0;

	pthread_mutex_lock(&ffs->lock);
	/* w->abandoned is written under w->mu: an atomic read suffices,
	 * as a discard unlinks the node under ffs->lock before it wakes */
	if (n->kind == NODE_ENTRY && n->w && n->linked &&
	    !__atomic_load_n(&n->w->abandoned, __ATOMIC_RELAXED)) {
		/* a retry after EINTR is the same wait, counted once */
		if (!resume_interrupted_locked(ffs, w, n->w)) {
			CTR_ADD(ffs->ctr.waits, 1);
			CTR_ADD(n->parent->ctr->waits, 1);
		}
		w->next = ffs->waiters;
		w->prev = NULL;
		if (ffs->waiters)
			ffs->waiters->prev = w;
		ffs->waiters = w;
		kick = earlier_deadline_locked(ffs, w->deadline_us);
	} else if (n->kind == NODE_ENTRY && !n->w && n->linked) {
		rc = -EAGAIN;
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&ffs->lock);
	if (kick)
		kick_ticker(ffs);
	return rc;
}

static void waiter_unlink_locked(struct ffs *ffs, struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		ffs->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

int entry_cancel_wait(struct ffs *ffs, struct waiter *w)
{
	struct waiter *it;
	int found = 0;

	pthread_mutex_lock(&ffs->lock);
	/* compare pointers only: `w` may already be answered and freed */
	for (it = ffs->waiters; it; it = it->next) {
		if (it == w) {
			waiter_unlink_locked(ffs, w);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&ffs->lock);
	return found;
}

/* Answer every waiter on `n` with `err` (0: published). */
void entry_wake_waiters(struct ffs *ffs, struct node *n, int err)
{
	struct waiter *it, *next, *woken = NULL;

	pthread_mutex_lock(&ffs->lock);
	for (it = ffs->waiters; it; it = next) {
		next = it->next;
		if (it->node != n)
			continue;
		waiter_unlink_locked(ffs, it);
		it->next = woken;
		woken = it;
	}
	pthread_mutex_unlock(&ffs->lock);
	for (it = woken; it; it = next) {
		next = it->next;
		ffs->hooks->wake(ffs, it, err);
	}
}

int64_t entry_expire_waiters(struct ffs *ffs, int64_t now_mono)
{
	struct waiter *it, *next, *expired = NULL;
	int64_t next_deadline = 0, end;
	unsigned i;

	pthread_mutex_lock(&ffs->lock);
	for (i = 0; i < INTERRUPTED_WAITS; i++) {
		if (!ffs->interrupted[i].pid)
			continue;
		end = ffs->interrupted[i].at_us + RESUME_WINDOW_US;
		if (end <= now_mono)
			end_interrupted_locked(ffs, &ffs->interrupted[i]);
		else if (!next_deadline || end < next_deadline)
			next_deadline = end;
	}
	for (it = ffs->waiters; it; it = next) {
		next = it->next;
		if (it->deadline_us <= now_mono) {
			waiter_unlink_locked(ffs, it);
			it->next = expired;
			expired = it;
		} else if (!next_deadline || it->deadline_us < next_deadline) {
			next_deadline = it->deadline_us;
		}
	}
	ffs->next_deadline_us = next_deadline;
	pthread_mutex_unlock(&ffs->lock);
	for (it = expired; it; it = next) {
		int64_t held_back = log_limit_pass(&ffs->wait_log);

		next = it->next;
		CTR_ADD(ffs->ctr.wait_timeouts, 1);
		/* readers retrying a short lock_timeout would repeat it */
		if (held_back == 0)
			log_info("open %s/%s: still being written after "
				 "lock_timeout", it->node->parent->name,
				 it->node->name);
		else if (held_back > 0)
			log_info("open %s/%s: still being written after "
				 "lock_timeout (and %lld more timeouts in the "
				 "last minute)", it->node->parent->name,
				 it->node->name, (long long)held_back);
		ffs->hooks->wake(ffs, it, -ETIMEDOUT);
	}
	return next_deadline;
}

void entry_wait_done(struct ffs *ffs, struct waiter *w, int err)
{
	int64_t waited = mono_us() - w->start_us;

	(void)err;
	hist_observe(&ffs->ctr.lock_wait, waited);
	hist_observe(&w->node->parent->ctr->lock_wait, waited);
}
