/*
 * cmd_gc.c - `featurefs gc [--older-than DUR] [--max-size SIZE]
 * [--dry-run] [--json] STORE|MOUNTPOINT`: one pass now.  A mounted store
 * runs it inside the mount (through the control socket), so the kernel's
 * caches learn what went; an unmounted one is locked and collected here.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "gc.h"
#include "log.h"
#include "options.h"

int cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "orphans", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_options o = { 0 };
	struct gc_result res = { 0 };
	struct strbuf out = STRBUF_INIT;
	struct store_holder holder;
	char who[128];
	struct manifest *m = NULL;
	struct store *s = NULL;
	struct gc_env env = { 0 };
	int c, json = 0, older_given = 0, max_given = 0, rc, ret = 1;
	int message = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (parse_duration(optarg, &o.older_than_us) < 0)
				return cli_usage("gc", "bad duration '%s'",
						 optarg);
			older_given = 1;
			break;
		case 'm':
			if (parse_size(optarg, &o.max_size) < 0)
				return cli_usage("gc", "bad size '%s'", optarg);
			max_given = 1;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'r':
			o.scan_orphans = 1;
			break;
		case 'h':
			return cli_help("gc");
		default:
			return cli_usage("gc", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage("gc", "exactly one STORE or MOUNTPOINT");
	/* JSON carries every entry; text lists what a dry run would take */
	o.list = json ? GC_LIST_JSON : o.dry_run ? GC_LIST_TEXT : GC_LIST_NONE;
	if (cli_open_store(argv[optind], &s) < 0)
		return 1;
	/* its store.lock names whoever held it when it was made read-only:
	 * no mount of it can be asked, nothing there removed */
	if (!o.dry_run && s->read_only_fs) {
		log_err("gc: store %s is on a read-only filesystem: nothing "
			"can be removed there (--dry-run lists what would go)",
			s->root);
		goto out;
	}
	if (cli_store_mounted(s, &holder) && !s->read_only_fs) {
		/* the mount applies its own gc_older_than and gc_max_size
		 * unless told (0 included: that rule left out) */
		o.older_than_us = older_given ? o.older_than_us : -1;
		o.max_size = max_given ? o.max_size : GC_MAX_SIZE_MOUNT;
		rc = ctl_request_gc(s, holder.pid, &o, json, &out, &message);
		if (rc == -EAGAIN)
			log_err("gc: the daemon of the mount of %s (pid %ld) is "
				"stopped and cannot answer: continue it (kill "
				"-CONT %ld) and run gc again", s->root,
				(long)holder.pid, (long)holder.pid);
		else if (rc < 0)
			log_err("gc: cannot reach the mount of %s (pid %ld): %s",
				s->root, (long)holder.pid, strerror(-rc));
		else
			fprintf(message ? stderr : stdout, "%s%s",
				message ? "featurefs: " : "", sb_str(&out));
		ret = rc < 0 ? 1 : rc;
		goto out;
	}
	if (!older_given)
		o.older_than_us = GC_OLDER_THAN_DEFAULT_US;
	if (!o.dry_run) {
		memset(&holder, 0, sizeof(holder));
		rc = store_lock(s, "gc", NULL, &holder);
		if (rc == -EBUSY) {
			store_holder_describe(s, &holder, who, sizeof(who));
			log_err("gc: store %s is in use by %s", s->root, who);
		}
		if (rc < 0)
			goto out;
	}
	if (cli_open_manifest(s, o.dry_run, 0, &m) < 0)
		goto out;
	env.store = s;
	env.manifest = m;
	env.remove = gc_remove_direct;
	env.arg = &env;
	env.batch = GC_BATCH_UNMOUNTED;
	rc = gc_pass(&env, &o, &res);
	if (rc < 0) {
		log_err("gc: %s", strerror(-rc));
		goto out;
	}
	if (json)
		gc_render_json(&out, &res, &o);
	else
		gc_render_text(&out, &res, &o);
	fputs(sb_str(&out), stdout);
	ret = 0;
out:
	gc_result_release(&res);
	sb_release(&out);
	manifest_close(m);
	store_close(s);
	return ret;
}
