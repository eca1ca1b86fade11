/*
 * cmd_fsck.c - `featurefs fsck [-n|-p|-y] [--verify] [--json] STORE`:
 * options, output and fsck(8) exit codes around fsck_run() (fsck.c).
 *
 * Text output is one line per finding on stdout as it is found
 * ("fsck: AAPL/<key>: object missing (row dropped)") and a summary line;
 * --json prints one document at the end instead.  Why a run could not
 * complete goes to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fsck.h"
#include "log.h"
#include "strbuf.h"

#define FSCK_EXIT_USAGE 16

struct output {
	const struct fsck_options *o;
	int json;
	struct strbuf findings;	/* JSON objects, comma-separated */
	size_t count;
};

static const char *mode_flag(enum fsck_mode mode)
{
	return mode == FSCK_YES ? "-y" : mode == FSCK_PREEN ? "-p" : "-n";
}

/* What happened to `x`, in words: "row dropped", "left; run fsck -p". */
static void outcome(struct strbuf *sb, const struct output *out,
		    const struct fsck_finding *x)
{
	if (x->corrected)
		sb_adds(sb, x->action);
	else if (x->action[0])
		sb_addf(sb, "left: %s", x->action);
	else if (x->repair == FSCK_CHECK)
		sb_adds(sb, "left; fsck cannot repair this");
	else if (out->o->mode < x->repair)
		sb_addf(sb, "left; run fsck %s", mode_flag(x->repair));
	else
		sb_adds(sb, "left");
}

static void json_str_or_null(struct strbuf *sb, const char *s)
{
	if (s[0])
		sb_json_str(sb, s);
	else
		sb_adds(sb, "null");
}

/* Print a report line: names found in the store are escaped as the log
 * escapes them (a name may hold a newline or an escape sequence). */
static void print_escaped(const char *line)
{
	struct strbuf safe = STRBUF_INIT;

	sb_add_escaped(&safe, line);
	printf("%s\n", safe.err ? "(a report line: out of memory)"
				: sb_str(&safe));
	fflush(stdout);
	sb_release(&safe);
}

static void on_finding(void *arg, const struct fsck_finding *x)
{
	struct output *out = arg;
	struct strbuf sb = STRBUF_INIT;

	if (out->json) {
		sb_adds(&out->findings, out->count ? ",\n  " : "\n  ");
		sb_addf(&out->findings, "{\"kind\": \"%s\", \"symbol\": ",
			fsck_kind_name(x->kind));
		json_str_or_null(&out->findings, x->symbol);
		sb_adds(&out->findings, ", \"key\": ");
		json_str_or_null(&out->findings, x->key);
		sb_adds(&out->findings, ", \"path\": ");
		json_str_or_null(&out->findings, x->path);
		sb_adds(&out->findings, ", \"detail\": ");
		sb_json_str(&out->findings, x->detail);
		outcome(&sb, out, x);
		sb_adds(&out->findings, ", \"action\": ");
		sb_json_str(&out->findings, sb_str(&sb));
		sb_addf(&out->findings, ", \"corrected\": %s, \"repair\": ",
			x->corrected ? "true" : "false");
		if (x->repair == FSCK_CHECK)
			sb_adds(&out->findings, "null}");
		else
			sb_addf(&out->findings, "\"fsck %s\"}",
				mode_flag(x->repair));
	} else {
		if (x->key[0])
			sb_addf(&sb, "fsck: %s/%s: %s (", x->symbol, x->key,
				x->detail);
		else
			sb_addf(&sb, "fsck: %s: %s (",
				x->path[0] ? x->path : x->symbol, x->detail);
		outcome(&sb, out, x);
		sb_adds(&sb, ")");
		print_escaped(sb_str(&sb));
	}
	out->count++;
	sb_release(&sb);
}

static void print_summary(const struct store *s, const struct fsck_result *r,
			  int verify, int status)
{
	printf("fsck: %s: %lld %s checked%s, %lld %s, %lld %s in objects/",
	       s->root, (long long)r->entries,
	       plural(r->entries, "entry", "entries"),
	       verify ? " and verified" : "", (long long)r->symbols,
	       plural(r->symbols, "symbol", "symbols"), (long long)r->objects,
	       plural(r->objects, "file", "files"));
	if (r->in_flight)
		printf(", %lld in flight", (long long)r->in_flight);
	if (!r->findings)
		printf(": clean");
	else
		printf(": %lld %s, %lld corrected, %lld left",
		       (long long)r->findings,
		       plural(r->findings, "problem", "problems"),
		       (long long)r->corrected, (long long)r->uncorrected);
	if (status & 8)
		printf(" (incomplete)");
	printf("\n");
}

static void print_json(const char *root, const struct output *out,
		       const struct fsck_result *r, int status)
{
	static const char *const modes[] = { "check", "preen", "yes" };
	struct strbuf sb = STRBUF_INIT;
	int k, first = 1;

	sb_adds(&sb, "{\"store\": ");
	sb_json_str(&sb, root);
	sb_addf(&sb, ", \"mode\": \"%s\", \"verify\": %s, \"exit_status\": %d, "
		     "\"error\": ",
		modes[out->o->mode], out->o->verify ? "true" : "false", status);
	json_str_or_null(&sb, r->error);
	sb_addf(&sb, ",\n \"findings\": [%s%s],\n", sb_str(&out->findings),
		out->count ? "\n " : "");
	sb_addf(&sb, " \"counts\": {\"entries\": %lld, \"verified\": %lld, "
		     "\"in_flight\": %lld, \"objects\": %lld, "
		     "\"symbols\": %lld, "
		     "\"findings\": %lld, \"corrected\": %lld, "
		     "\"uncorrected\": %lld, \"by_kind\": {",
		(long long)r->entries, (long long)r->verified,
		(long long)r->in_flight, (long long)r->objects,
		(long long)r->symbols, (long long)r->findings,
		(long long)r->corrected, (long long)r->uncorrected);
	for (k = 0; k < FSCK_KIND_COUNT; k++) {
		if (!r->by_kind[k])
			continue;
		sb_addf(&sb, "%s\"%s\": %lld", first ? "" : ", ",
			fsck_kind_name((enum fsck_kind)k),
			(long long)r->by_kind[k]);
		first = 0;
	}
	sb_adds(&sb, "}}}\n");
	fputs(sb_str(&sb), stdout);
	sb_release(&sb);
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "verify", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck_options o = { .mode = FSCK_CHECK };
	struct output out = { .o = &o, .findings = STRBUF_INIT };
	struct fsck_result res;
	struct store *s = NULL;
	char mode = 0;
	int c, rc, status;

	optind = 1;
	while ((c = getopt_long(argc, argv, "npyh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
		case 'p':
		case 'y':
			if (mode && mode != c) {
				cli_usage("fsck", "only one of -n, -p and -y "
					  "may be given");
				return FSCK_EXIT_USAGE;
			}
			mode = (char)c;
			o.mode = c == 'y'   ? FSCK_YES
				 : c == 'p' ? FSCK_PREEN
					    : FSCK_CHECK;
			break;
		case 'v':
			o.verify = 1;
			break;
		case 'j':
			out.json = 1;
			break;
		case 'h':
			cli_help("fsck");
			return 0;
		default:
			cli_usage("fsck", NULL);
			return FSCK_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cli_usage("fsck", "exactly one STORE is required");
		return FSCK_EXIT_USAGE;
	}
	o.progress = isatty(STDERR_FILENO);
	memset(&res, 0, sizeof(res));
	if (cli_open_store(argv[optind], &s) < 0) {
		snprintf(res.error, sizeof(res.error), "cannot open the store");
		rc = -ENOENT;
	} else {
		rc = fsck_run(s, &o, on_finding, &out, &res);
	}
	status = fsck_exit_status(rc, &res);
	if (rc < 0 && s)
		log_err("fsck %s: %s", s->root, res.error);
	if (out.json)
		print_json(s ? s->root : argv[optind], &out, &res, status);
	else if (s && !(rc < 0 && !res.entries && !res.findings))
		print_summary(s, &res, o.verify, status);
	sb_release(&out.findings);
	store_close(s);
	return status;
}
