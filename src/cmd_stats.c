/*
 * cmd_stats.c - `featurefs stats [--json] STORE|MOUNTPOINT`.
 *
 * A mounted store answers from its /.featurefs/stats files, which include
 * the live figures (lock waits, GC, load failures); an unmounted store is
 * read from its manifest.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "stats.h"

static int copy_file(const char *path)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(f);
	return 0;
}

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
	char path[PATH_MAX];
	int c, json = 0, rc;

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
	if (cli_store_mounted(s, &holder) && holder.mountpoint[0]) {
		snprintf(path, sizeof(path), "%s/.featurefs/%s",
			 holder.mountpoint, json ? "stats.json" : "stats");
		if (copy_file(path) == 0) {
			store_close(s);
			return 0;
		}
	}
	rc = cli_open_manifest(s, 1, &m);
	if (rc == 0) {
		r.store = s->root;
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
	sb_release(&sb);
	stats_release(&r);
	manifest_close(m);
	store_close(s);
	return rc < 0 ? 1 : 0;
}
