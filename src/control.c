/*
 * control.c - content of /.featurefs/{stats,stats.json,config,health}.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "control.h"
#include "fault.h"
#include "ffs.h"
#include "htab.h"
#include "log.h"
#include "metrics.h"

enum control_file {
	CONTROL_STATS,
	CONTROL_STATS_JSON,
	CONTROL_CONFIG,
	CONTROL_HEALTH,
	CONTROL_METRICS,
	CONTROL_FILES
};

/* each file's path in the mount: its name follows the directory's */
#define CONTROL_PATH(name) CONTROL_DIR_NAME "/" name
static const char *const control_paths[CONTROL_FILES] = {
	[CONTROL_STATS] = CONTROL_PATH("stats"),
	[CONTROL_STATS_JSON] = CONTROL_PATH("stats.json"),
	[CONTROL_CONFIG] = CONTROL_PATH("config"),
	[CONTROL_HEALTH] = CONTROL_PATH("health"),
	[CONTROL_METRICS] = CONTROL_PATH("metrics"),
};

size_t control_file_count(void)
{
	return CONTROL_FILES;
}

const char *control_file_path(size_t i)
{
	return i < CONTROL_FILES ? control_paths[i] : "";
}

const char *control_file_name(size_t i)
{
	return control_file_path(i) + (i < CONTROL_FILES
					       ? sizeof(CONTROL_DIR_NAME)
					       : 0);
}

int control_refuse(const char *op, const char *name, int rc)
{
	log_info("%s %s%s%s: the control directory is read-only", op,
		 CONTROL_DIR_NAME, name ? "/" : "", name ? name : "");
	return rc;
}

int control_stats_report(struct ffs *ffs, struct stats_report *r)
{
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	r->store = ffs->store->root;
	r->mountpoint = ffs->mountpoint ? ffs->mountpoint : "";
	r->live = &ffs->ctr;
	frame_cache_figures(ffs->frames, &r->frames);
	r->passthrough = ffs->hooks && ffs->hooks->passthrough_state
				 ? ffs->hooks->passthrough_state(ffs)
				 : "off";
	r->uptime_us = mono_us() - ffs->mounted_mono_us;
	/* live, so read even when the manifest's figures cannot be */
	pthread_mutex_lock(&ffs->lock);
	r->inflight = (int64_t)ffs->inflight;
	pthread_mutex_unlock(&ffs->lock);
	/* flush_mu: a flush moves counts from memory to the manifest; seen
	 * half-way it would count them twice */
	pthread_mutex_lock(&ffs->flush_mu);
	rc = stats_collect(ffs->manifest, r);
	if (rc == 0)
		rc = fault_inject("stats_report");
	if (rc < 0)
		goto out;
	r->symbol_live = calloc(r->nsymbols + 1, sizeof(*r->symbol_live));
	if (!r->symbol_live) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&ffs->lock);
	for (i = 0; i < r->nsymbols; i++) {
		struct node *n = htab_get(ffs->names, r->symbols[i].symbol);

		if (n && n->kind == NODE_SYMBOL)
			symbol_counters_load(&r->symbol_live[i], n->ctr);
	}
	pthread_mutex_unlock(&ffs->lock);
out:
	pthread_mutex_unlock(&ffs->flush_mu);
	if (rc < 0) {
		log_warn("stats: cannot gather them: %s", strerror(-rc));
		stats_release(r);
	}
	return rc;
}

void ffs_render_config(struct ffs *ffs, struct strbuf *sb)
{
	const struct ffs_options *o = &ffs->opt;

	sb_addf(sb, "store = %s\n", ffs->store->root);
	sb_addf(sb, "store_uuid = %s\n", ffs->store->conf.uuid);
	sb_addf(sb, "mountpoint = %s\n", ffs->mountpoint ? ffs->mountpoint : "");
	sb_addf(sb, "manifest = %s\n", ffs->store->conf.manifest);
	sb_addf(sb, "compress = %s\n", compress_mode_name(o->compress));
	sb_addf(sb, "compress_level = %d\n", o->compress_level);
	sb_adds(sb, "frame_cache = ");
	sb_size(sb, o->frame_cache);
	sb_adds(sb, "\n");
	sb_addf(sb, "hash = %s\n", hash_mode_name(o->hash));
	sb_addf(sb, "passthrough = %s\n", o->passthrough ? "auto" : "off");
	sb_adds(sb, "gc_older_than = ");
	sb_duration(sb, o->gc_older_than_us);
	sb_adds(sb, "\ngc_interval = ");
	/* what is in effect: an ro mount runs no GC */
	sb_duration(sb, o->read_only ? 0 : o->gc_interval_us);
	sb_adds(sb, "\ngc_max_size = ");
	if (o->gc_max_size)
		sb_size(sb, o->gc_max_size);
	else
		sb_adds(sb, "none");
	sb_adds(sb, "\nlock_timeout = ");
	sb_duration(sb, o->lock_timeout_us);
	sb_addf(sb, "\nro = %s\n", o->read_only ? "yes" : "no");
	sb_addf(sb, "allow_other = %s\n", o->allow_other ? "yes" : "no");
	sb_addf(sb, "default_permissions = %s\n",
		o->default_permissions ? "yes" : "no");
	sb_addf(sb, "metrics = %s\n",
		ffs->metrics_bound[0] ? ffs->metrics_bound : "off");
	sb_addf(sb, "pid = %ld\n", (long)getpid());
}

void control_health(struct ffs *ffs, struct metrics_health *h)
{
	int rc = manifest_health(ffs->manifest);

	/* a read-only mount takes no entries: failing writes (its access
	 * records) leave it ready */
	h->manifest = rc == 0 || (rc == -EBUSY && ffs->opt.read_only);
	h->storage = store_health(ffs->store, !ffs->opt.read_only) == 0;
	if (ffs->opt.gc_interval_us > 0 && !ffs->opt.read_only)
		h->gc = !CTR_GET(ffs->ctr.gc.last_failed);
	else
		h->gc = -1;
}

/* /.featurefs/health: JSON with the overall status and each component. */
static void render_health(const struct metrics_health *h, struct strbuf *sb)
{
	sb_addf(sb, "{\"status\": \"%s\", \"components\": {\"manifest\": "
		    "\"%s\", \"storage\": \"%s\", \"gc\": \"%s\"}}\n",
		h->manifest && h->storage ? "ok" : "error",
		h->manifest ? "ok" : "error", h->storage ? "ok" : "error",
		h->gc > 0 ? "ok" : h->gc == 0 ? "error" : "disabled");
}

void control_render_stats(struct ffs *ffs, int json, struct strbuf *sb)
{
	struct stats_report r;

	int rc = control_stats_report(ffs, &r);

	if (rc < 0) {
		sb_addf(sb, json ? "{\"error\": \"%s\"}\n" : "error: %s\n",
			strerror(-rc));
		return;
	}
	if (json)
		stats_render_json(sb, &r);
	else
		stats_render_text(sb, &r);
	stats_release(&r);
}

void control_render(struct ffs *ffs, int i, struct strbuf *sb)
{
	struct metrics_health health;
	struct stats_report r;

	switch (i) {
	case CONTROL_STATS:
	case CONTROL_STATS_JSON:
		control_render_stats(ffs, i == CONTROL_STATS_JSON, sb);
		break;
	case CONTROL_CONFIG:
		ffs_render_config(ffs, sb);
		break;
	case CONTROL_HEALTH:
		control_health(ffs, &health);
		render_health(&health, sb);
		break;
	case CONTROL_METRICS:
		control_health(ffs, &health);
		if (control_stats_report(ffs, &r) < 0) {
			/* the live figures still say the mount lives; the
			 * store's are left out, not shown as zeros */
			memset(&r.totals, 0, sizeof(r.totals));
			r.totals_unread = 1;
			r.backend = manifest_backend_name(ffs->manifest);
			health.manifest = 0;
		}
		metrics_render(sb, &r, &health, &ffs->metrics_labels);
		stats_release(&r);
		break;
	}
}

char *control_snapshot(struct ffs *ffs, int i, size_t *len)
{
	struct strbuf sb = STRBUF_INIT;

	control_render(ffs, i, &sb);
	if (sb.err) {
		sb_release(&sb);
		return NULL;
	}
	return sb_detach(&sb, len);
}
