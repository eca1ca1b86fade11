/*
 * daemon.c - the threads of a mounted store besides FUSE's: the ticker
 * (waiter timeouts, /slo's samples), the recorder (access flushes at most
 * every second, the heartbeat), the GC thread (every gc_interval, first
 * shortly after mount), the control socket's (ctl.c), and the frame
 * cache's threads that decompress ahead of readers, one per spare CPU.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "clock.h"
#include "ctl.h"
#include "daemon.h"
#include "fault.h"
#include "ffs.h"
#include "frame_cache.h"
#include "log.h"
#include "strbuf.h"

#define FLUSH_INTERVAL_US 1000000
#define BACKOFF_MAX_US (60 * 1000000)
#define HEARTBEAT_INTERVAL_US (10 * 1000000)
#define GC_FIRST_DELAY_US (2 * 1000000)
#define SPARE_CPUS_MAX 4
#define UNMOUNT_WRITE_RETRIES 2

/* The next interval after a failed try of what runs every `us`: twice
 * as long, up to a minute. */
static int64_t backoff(int64_t us)
{
	return us * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US : us * 2;
}

struct symbol_delta {
	struct symbol_counters *ctr;
	struct manifest_symbol_delta d;
};

/* Count, and say once a minute, the access records the log dropped
 * while the manifest took none.  flush_mu held; runs with each flush,
 * so the count and the log line are as fresh as the last flush. */
static void note_dropped(struct ffs *ffs)
{
	uint64_t dropped = access_log_dropped(ffs->access);

	if (dropped == CTR_GET(ffs->ctr.access_dropped))
		return;
	CTR_SET(ffs->ctr.access_dropped, dropped);
	if (log_limit_pass(&ffs->dropped_log) >= 0)
		log_warn("access records: %llu dropped so far: at most %d wait "
			 "for a manifest that takes none, and reads past them "
			 "go unrecorded (GC may take those entries for idle)",
			 (unsigned long long)dropped, ACCESS_PENDING_MAX);
}

/* Write gathered access records and hit/miss counts to the manifest;
 * `flags` as manifest_record()'s.  What fails to be written is kept for
 * the next flush. */
static int flush_access(struct ffs *ffs, unsigned flags)
{
	struct manifest_access *recs = NULL;
	struct manifest_symbol_delta *deltas = NULL;
	struct symbol_delta *sd = NULL;
	size_t nrecs = 0, nsym = 0, i;
	struct node *n;
	int rc;

	pthread_mutex_lock(&ffs->flush_mu);
	note_dropped(ffs);
	rc = access_log_take(ffs->access, &recs, &nrecs);
	if (rc < 0 || ffs->store->read_only_fs)
		goto out; /* a store on read-only media keeps no records */
	pthread_mutex_lock(&ffs->lock);
	for (n = ffs->symbols; n; n = n->next_symbol)
		nsym++;
	sd = calloc(nsym + 1, sizeof(*sd));
	deltas = calloc(nsym + 1, sizeof(*deltas));
	nsym = 0;
	for (n = ffs->symbols; sd && deltas && n; n = n->next_symbol) {
		uint64_t h = CTR_GET(n->ctr->hits), m = CTR_GET(n->ctr->misses);

		if (h == n->ctr->hits_flushed && m == n->ctr->misses_flushed)
			continue;
		sd[nsym].ctr = n->ctr;
		snprintf(sd[nsym].d.symbol, sizeof(sd[nsym].d.symbol), "%s",
			 n->name);
		sd[nsym].d.hits = (int64_t)(h - n->ctr->hits_flushed);
		sd[nsym].d.misses = (int64_t)(m - n->ctr->misses_flushed);
		deltas[nsym] = sd[nsym].d;
		nsym++;
	}
	pthread_mutex_unlock(&ffs->lock);
	if (!sd || !deltas) {
		access_log_restore(ffs->access, recs, nrecs);
		rc = -ENOMEM;
		goto out;
	}
	rc = fault_inject("access_flush");
	if (rc == 0)
		rc = manifest_record(ffs->manifest, recs, nrecs, deltas, nsym,
				     flags);
	if (rc < 0) {
		/* keep them for the next flush; counts stay unflushed */
		access_log_restore(ffs->access, recs, nrecs);
		CTR_ADD(ffs->ctr.access_flush_errors, 1);
		goto out;
	}
	/* a symbol's counters live as long as the mount, passed from the
	 * node of one life of it to the next: the pointers hold */
	for (i = 0; i < nsym; i++) {
		sd[i].ctr->hits_flushed += (uint64_t)sd[i].d.hits;
		sd[i].ctr->misses_flushed += (uint64_t)sd[i].d.misses;
	}
	if (nrecs || nsym)
		CTR_ADD(ffs->ctr.access_flushes, 1);
out:
	access_log_settle(ffs->access);
	pthread_mutex_unlock(&ffs->flush_mu);
	free(recs);
	free(sd);
	free(deltas);
	return rc;
}

static int is_stopping(struct ffs *ffs)
{
	return __atomic_load_n(&ffs->stopping, __ATOMIC_RELAXED);
}

/* Sleep on tick_cond until `deadline_mono` (µs) or a broadcast.  With
 * `kick` (the ticker's ffs->tick_kick), return at once if it is set,
 * clearing it: a waiter came with an earlier deadline. */
static void tick_wait(struct ffs *ffs, int64_t deadline_mono, int *kick)
{
	struct timespec ts = mono_deadline(deadline_mono);

	pthread_mutex_lock(&ffs->tick_mu);
	if (!is_stopping(ffs) && !(kick && *kick) &&
	    deadline_mono > mono_us())
		pthread_cond_timedwait(&ffs->tick_cond, &ffs->tick_mu, &ts);
	if (kick)
		*kick = 0;
	pthread_mutex_unlock(&ffs->tick_mu);
}

/* The ticker: ends waits at their deadline (entry_wait.c) and takes
 * /slo's samples.  It never touches the manifest, which another process
 * may hold for seconds: the recorder below does. */
static void *ticker_main(void *arg)
{
	struct ffs *ffs = arg;
	int64_t next_slo = mono_us() + SLO_SAMPLE_US;

	while (!is_stopping(ffs)) {
		int64_t now = mono_us(), wake, deadline;

		deadline = entry_expire_waiters(ffs, now);
		if (now >= next_slo) {
			slo_sample(&ffs->slo, &ffs->ctr);
			next_slo = now + SLO_SAMPLE_US;
		}
		wake = next_slo;
		if (deadline && deadline < wake)
			wake = deadline;
		tick_wait(ffs, wake, &ffs->tick_kick);
	}
	return NULL;
}

/* The recorder: what the mount writes to the manifest on its own, the
 * access flushes and the heartbeat, and after a heartbeat the rows of
 * discarded writes and the kept writes the manifest refused before. */
static void *recorder_main(void *arg)
{
	struct ffs *ffs = arg;
	int64_t next_flush = mono_us() + FLUSH_INTERVAL_US;
	int64_t flush_every = FLUSH_INTERVAL_US;
	int64_t next_beat = mono_us() + HEARTBEAT_INTERVAL_US;
	int64_t beat_every = HEARTBEAT_INTERVAL_US;

	while (!is_stopping(ffs)) {
		int64_t now = mono_us();

		if (now >= next_flush) {
			/* a manifest that keeps failing (locked, an I/O
			 * error) is tried, and logged, less and less often,
			 * down to once a minute; the records wait in memory.
			 * Brief: the stats wait for a flush under way */
			if (flush_access(ffs, MANIFEST_RECORD_BRIEF) < 0)
				flush_every = backoff(flush_every);
			else
				flush_every = FLUSH_INTERVAL_US;
			next_flush = now + flush_every;
		}
		if (now >= next_beat && !ffs->store->read_only_fs) {
			/* backs off as the flush does: what follows it
			 * writes to the manifest too */
			if (manifest_mount_heartbeat(ffs->manifest,
						     ffs->store->mount_id,
						     now_us()) < 0) {
				beat_every = backoff(beat_every);
			} else {
				beat_every = HEARTBEAT_INTERVAL_US;
				entry_drop_stale_claims(ffs);
				entry_publish_kept(ffs);
			}
			next_beat = now + beat_every;
		}
		/* the flush's back-off does not delay the heartbeat */
		tick_wait(ffs, next_flush < next_beat ? next_flush : next_beat,
			  NULL);
	}
	return NULL;
}

static int remove_through_mount(void *arg, const struct manifest_entry *rows,
				size_t n, int *results)
{
	return entry_remove_batch(arg, rows, n, results);
}

int daemon_gc_pass(struct ffs *ffs, const struct gc_options *o,
		   struct gc_result *res)
{
	struct gc_env env = {
		.store = ffs->store,
		.manifest = ffs->manifest,
		.live_mount_id = ffs->store->mount_id,
		.remove = remove_through_mount,
		.in_use = entry_in_use,
		.arg = ffs,
		.stop = &ffs->stopping,
	};
	struct gc_counters *g = &ffs->ctr.gc;
	int rc;

	/* what was read a moment ago must count as read; reads a manifest
	 * held elsewhere does not take now stay in the access log, where
	 * the removal looks too (entry_in_use()), so no wait here */
	flush_access(ffs, MANIFEST_RECORD_BRIEF);
	pthread_mutex_lock(&ffs->gc_mu);
	rc = fault_inject("gc_pass");
	if (rc == 0)
		rc = gc_pass(&env, o, res);
	if (rc == 0 && o->older_than_us > 0)
		res->tmp_removed += entry_expire_scratch(ffs, o->older_than_us,
							 o->dry_run);
	pthread_mutex_unlock(&ffs->gc_mu);
	if (o->dry_run)
		return rc;
	CTR_ADD(g->runs, 1);
	CTR_ADD(g->removed_entries, (uint64_t)res->removed_entries);
	CTR_ADD(g->removed_bytes, (uint64_t)res->removed_bytes);
	CTR_ADD(g->skipped_busy, (uint64_t)res->skipped_busy);
	CTR_ADD(g->tmp_removed, (uint64_t)res->tmp_removed);
	CTR_ADD(g->rows_removed, (uint64_t)res->rows_removed);
	CTR_SET(g->orphans_seen, (uint64_t)res->orphans);
	CTR_SET(g->last_run_ts, now_us());
	CTR_SET(g->last_duration_us, res->duration_us);
	CTR_SET(g->last_failed, rc < 0);
	if (rc < 0) {
		CTR_ADD(g->failures, 1);
		log_err("gc: pass failed: %s", strerror(-rc));
	} else if (res->removed_entries || res->tmp_removed || res->rows_removed)
		log_info("gc: removed %lld %s (%lld bytes), %lld tmp %s, "
			 "%lld dead writers' %s in %.3fs",
			 (long long)res->removed_entries,
			 plural(res->removed_entries, "entry", "entries"),
			 (long long)res->removed_bytes,
			 (long long)res->tmp_removed,
			 plural(res->tmp_removed, "file", "files"),
			 (long long)res->rows_removed,
			 plural(res->rows_removed, "row", "rows"),
			 (double)res->duration_us / 1e6);
	return rc;
}

static void *gc_main(void *arg)
{
	struct ffs *ffs = arg;
	int64_t next = mono_us() + GC_FIRST_DELAY_US;

	while (!is_stopping(ffs)) {
		if (mono_us() >= next) {
			struct gc_options o = {
				.older_than_us = ffs->opt.gc_older_than_us,
				.max_size = ffs->opt.gc_max_size,
			};
			struct gc_result res = { 0 };

			daemon_gc_pass(ffs, &o, &res);
			gc_result_release(&res);
			next = mono_us() + ffs->opt.gc_interval_us;
		}
		tick_wait(ffs, next, NULL);
	}
	return NULL;
}

int daemon_recover(struct ffs *ffs)
{
	struct gc_result res = { 0 };
	int rc;

	/* removals first: a key removed and claimed again is then looked
	 * at as it is now */
	rc = gc_finish_interrupted(ffs->store, ffs->manifest, &res);
	if (rc == 0)
		rc = gc_reclaim_dead_writers(ffs->store, ffs->manifest,
					     ffs->store->mount_id, 0, &res);
	if (rc < 0)
		log_err("recover %s: %s", ffs->store->root, strerror(-rc));
	else if (res.rows_removed || res.rows_adopted || res.tmp_removed ||
		 res.removals_finished)
		log_info("recovered what earlier mounts left: %lld unfinished "
			 "entries dropped, %lld published, %lld tmp files "
			 "removed, %lld removals finished",
			 (long long)res.rows_removed,
			 (long long)res.rows_adopted,
			 (long long)res.tmp_removed,
			 (long long)res.removals_finished);
	gc_result_release(&res);
	return rc;
}

/* CPUs this daemon may run on beyond the one a request runs on, at most
 * SPARE_CPUS_MAX: that many threads decompress ahead of readers, and as
 * many help compress an entry being published. */
static unsigned spare_cpus(void)
{
	cpu_set_t set;
	int cpus = 1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		cpus = CPU_COUNT(&set);
	if (cpus - 1 > SPARE_CPUS_MAX)
		return SPARE_CPUS_MAX;
	return cpus > 1 ? (unsigned)(cpus - 1) : 0;
}

int daemon_start(struct ffs *ffs)
{
	int rc;

	slo_sample(&ffs->slo, &ffs->ctr); /* where /slo's window starts */
	rc = pthread_create(&ffs->ticker, NULL, ticker_main, ffs);
	if (rc != 0)
		return -rc;
	ffs->ticker_started = 1;
	rc = pthread_create(&ffs->recorder, NULL, recorder_main, ffs);
	if (rc != 0)
		return -rc;
	ffs->recorder_started = 1;
	if (ffs->opt.gc_interval_us > 0 && !ffs->opt.read_only) {
		rc = pthread_create(&ffs->gc_thread, NULL, gc_main, ffs);
		if (rc != 0)
			return -rc;
		ffs->gc_started = 1;
	}
	ffs->spare_cpus = spare_cpus();
	frame_cache_read_ahead(ffs->frames, ffs->spare_cpus);
	/* no socket can be made on read-only media, nor GC run there */
	return ffs->store->read_only_fs ? 0 : ctl_start(ffs);
}

void daemon_stop(struct ffs *ffs)
{
	int rc, drc, tries;

	__atomic_store_n(&ffs->stopping, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&ffs->tick_mu);
	pthread_cond_broadcast(&ffs->tick_cond);
	pthread_mutex_unlock(&ffs->tick_mu);
	ctl_stop(ffs);
	if (ffs->gc_started)
		pthread_join(ffs->gc_thread, NULL);
	if (ffs->ticker_started)
		pthread_join(ffs->ticker, NULL);
	if (ffs->recorder_started)
		pthread_join(ffs->recorder, NULL);
	ffs->gc_started = ffs->ticker_started = ffs->recorder_started = 0;
	entry_discard_all(ffs);
	/* readers still waiting get their answer from the discard above;
	 * expire whatever is left (answers go nowhere once unmounted) */
	entry_expire_waiters(ffs, INT64_MAX);
	entry_release_all(ffs);
	entry_publish_kept(ffs); /* a last try */
	entry_report_kept(ffs);
	/* the last writes (the reads since the last flush, the rows of
	 * discarded writes the manifest refused to drop): a manifest locked
	 * past its busy timeout gets a little longer */
	for (tries = 0;; tries++) {
		rc = flush_access(ffs, 0);
		drc = entry_drop_stale_claims(ffs);
		if ((rc == 0 && drc == 0) || tries == UNMOUNT_WRITE_RETRIES)
			break;
		log_warn("unmount: writing to the manifest failed (%s); "
			 "trying again", strerror(rc < 0 ? -rc : -drc));
	}
	if (rc < 0)
		log_err("unmount: could not flush access records (%s): the "
			"reads since the last flush go unrecorded",
			strerror(-rc));
	if (drc < 0)
		log_err("unmount: could not drop the rows of discarded writes "
			"(%s): the next mount drops them", strerror(-drc));
}
