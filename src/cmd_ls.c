/*
 * cmd_ls.c - `featurefs ls [--symbol S] [--json] STORE`: manifest rows.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "names.h"
#include "strbuf.h"

struct ls_state {
	int json;
	int count;
};

static int print_row(void *arg, const struct manifest_entry *e)
{
	struct ls_state *st = arg;
	struct strbuf sb = STRBUF_INIT;
	const char *state = manifest_state_name(e->state);

	if (st->json) {
		sb_adds(&sb, st->count ? ",\n {\"symbol\": " : " {\"symbol\": ");
		sb_json_str(&sb, e->symbol);
		sb_adds(&sb, ", \"key\": ");
		sb_json_str(&sb, e->key);
		sb_adds(&sb, ", \"path\": ");
		sb_json_str(&sb, e->path);
		sb_addf(&sb, ", \"state\": \"%s\", \"start_ts\": ", state);
		if (e->has_ts) {
			sb_adds(&sb, "\"");
			sb_iso_time(&sb, e->start_ts, NULL);
			sb_adds(&sb, "\", \"end_ts\": \"");
			sb_iso_time(&sb, e->end_ts, NULL);
			sb_adds(&sb, "\"");
		} else {
			sb_adds(&sb, "null, \"end_ts\": null");
		}
		sb_adds(&sb, ", \"rows\": ");
		if (e->rows >= 0)
			sb_addf(&sb, "%lld", (long long)e->rows);
		else
			sb_adds(&sb, "null");
		sb_addf(&sb, ", \"file_size_bytes\": %lld, "
			     "\"stored_size_bytes\": %lld, \"compression\": ",
			(long long)e->file_size, (long long)e->stored_size);
		sb_json_str(&sb, e->compression);
		sb_adds(&sb, ", \"hash_method\": ");
		sb_json_str(&sb, e->hash_method);
		sb_adds(&sb, ", \"sha256\": ");
		sb_json_str(&sb, e->sha256);
		sb_adds(&sb, ", \"created_ts\": \"");
		sb_iso_time(&sb, e->created_ts, "");
		sb_adds(&sb, "\", \"last_accessed_ts\": ");
		if (e->last_accessed_ts > 0) {
			sb_adds(&sb, "\"");
			sb_iso_time(&sb, e->last_accessed_ts, "");
			sb_adds(&sb, "\"");
		} else {
			sb_adds(&sb, "null");
		}
		sb_addf(&sb, ", \"access_count\": %lld, \"writer\": ",
			(long long)e->access_count);
		sb_json_str(&sb, e->writer);
		sb_adds(&sb, "}");
	} else {
		/* a damaged row's names may hold tabs or escape sequences */
		sb_add_escaped(&sb, e->symbol);
		sb_adds(&sb, "\t");
		sb_add_escaped(&sb, e->key);
		sb_addf(&sb, "\t%s\t%lld\t", state, (long long)e->file_size);
		if (e->rows >= 0)
			sb_addf(&sb, "%lld\t", (long long)e->rows);
		else
			sb_adds(&sb, "-\t");
		sb_iso_time(&sb, e->created_ts, "-");
		sb_adds(&sb, "\t");
		sb_iso_time(&sb, e->last_accessed_ts, "-");
		sb_addf(&sb, "\t%lld\t", (long long)e->access_count);
		if (e->sha256[0])
			sb_add_escaped(&sb, e->sha256);
		else
			sb_adds(&sb, "-");
		sb_adds(&sb, "\n");
	}
	fputs(sb_str(&sb), stdout);
	sb_release(&sb);
	st->count++;
	return 0;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "symbol", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct manifest_query q = { 0 };
	struct ls_state st = { 0, 0 };
	struct manifest *m = NULL;
	struct store *s = NULL;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (name_check_symbol(optarg) < 0)
				return cli_usage("ls", "'%s' is not a symbol",
						 optarg);
			q.symbol = optarg;
			break;
		case 'j':
			st.json = 1;
			break;
		case 'h':
			return cli_help("ls");
		default:
			return cli_usage("ls", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage("ls", "exactly one STORE is required");
	rc = cli_open_store(argv[optind], &s);
	if (rc == 0)
		rc = cli_open_manifest(s, 1, 0, &m);
	if (rc == 0) {
		if (st.json)
			fputs("[\n", stdout);
		else
			fputs("symbol\tkey\tstate\tsize\trows\tcreated\t"
			      "last_accessed\taccess_count\tsha256\n",
			      stdout);
		rc = manifest_list(m, &q, print_row, &st);
		if (st.json)
			fputs(st.count ? "\n]\n" : "]\n", stdout);
	}
	manifest_close(m);
	store_close(s);
	return rc < 0 ? 1 : 0;
}
