/*
 * cmd_stats.c - `featurefs stats [--json] STORE|MOUNTPOINT`.
 *
 * A mounted store answers through its control socket with what its
 * /.featurefs/stats files show, live figures included (lock waits, GC,
 * load failures).  An unmounted store, or one whose daemon is stopped, is
 * read from its manifest.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "log.h"
#include "stats.h"

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stats_report r = { 0 };
	struct strbuf sb = STRBUF_INIT;
	struct store_holder holder;
	struct manifest *m = NULL;
	struct store *s = NULL;
	int c, json = 0, mounted, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			return cli_help("stats");
		default:
			return cli_usage("stats", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage("stats", "exactly one STORE or MOUNTPOINT");
	rc = cli_open_store(argv[optind], &s);
	if (rc < 0)
		return 1;
	mounted = cli_store_mounted(s, &holder);
	/* a mount of read-only media has no control socket: a record
	 * that names its mount is one through a writable path */
	if (mounted && s->read_only_fs && !holder.mount_id[0]) {
		r.mountpoint = holder.mountpoint;
		r.unanswered = 1;
		r.why_unanswered = "a store on a read-only filesystem has no "
				   "control socket; its live figures are in "
				   "MOUNTPOINT/.featurefs/stats";
	} else if (mounted) {
		rc = ctl_request_stats(s, holder.pid, json, &sb);
		if (rc == 0) {
			fputs(sb_str(&sb), stdout);
			goto out;
		}
		if (rc == -EAGAIN)
			log_warn("stats: the daemon of the mount of %s (pid %ld) "
				 "is stopped: figures from the manifest, without "
				 "its live ones", s->root, (long)holder.pid);
		else
			log_warn("stats: cannot reach the mount of %s (pid %ld): "
				 "%s; figures from the manifest, without its "
				 "live ones", s->root, (long)holder.pid,
				 strerror(rc < 0 ? -rc : EPROTO));
		sb_release(&sb);
		r.mountpoint = holder.mountpoint;
		r.unanswered = 1;
	}
	rc = cli_open_manifest(s, 1, 0, &m);
	if (rc == 0) {
		r.store = s->root;
		if (!r.mountpoint)
			r.mountpoint = "";
		rc = stats_collect(m, &r);
	}
	if (rc == 0) {
		if (json)
			stats_render_json(&sb, &r);
		else
			stats_render_text(&sb, &r);
		fputs(sb_str(&sb), stdout);
	}
out:
	sb_release(&sb);
	stats_release(&r);
	manifest_close(m);
	store_close(s);
	return rc < 0 ? 1 : 0;
}
