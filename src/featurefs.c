/*
 * featurefs.c - main(): the command table and its dispatch.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

#ifndef FEATUREFS_VERSION
#define FEATUREFS_VERSION "unknown"
#endif

const struct command commands[] = {
	{ "mount", cmd_mount, "STORE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]",
	  "mount a store (the same as featurefs STORE MOUNTPOINT)",
	  "  -o OPTIONS     comma-separated mount options (featurefs(1))\n"
	  "  -f             stay in the foreground, log to stderr\n"
	  "  -d             debug: foreground, log every request\n"
	  "  -s             serve requests with a single thread\n" },
	{ "init", cmd_init, "STORE [--manifest URI] [--compress MODE]",
	  "create a store explicitly",
	  "  --manifest URI   manifest backend: sqlite (the default)\n"
	  "  --compress MODE  compression of new objects: none (the default),\n"
	  "                   zstd, or auto (zstd where it saves 10 %)\n" },
	{ "fsck", cmd_fsck, "[-n|-p|-y] [--verify] [--json] STORE",
	  "check a store and repair it",
	  "  -n         report only, change nothing (default)\n"
	  "  -p         preen: safe repairs (adopt orphans, drop rows of\n"
	  "             missing objects, clean dead writers' leftovers)\n"
	  "  -y         also quarantine corrupt objects into lost+found/\n"
	  "  --verify   recompute every object's SHA-256\n"
	  "  --json     print findings as JSON\n" },
	{ "gc", cmd_gc,
	  "[--older-than DUR] [--max-size SIZE] [--dry-run] [--orphans] "
	  "[--json] STORE|MOUNTPOINT",
	  "run one garbage-collection pass now",
	  "  --older-than DUR  remove entries not read for DUR (default: the\n"
	  "                    mount's gc_older_than, or 4w)\n"
	  "  --max-size SIZE   then remove least recently read entries until\n"
	  "                    stored bytes are under 90% of SIZE\n"
	  "  --dry-run         list what would go, change nothing\n"
	  "  --orphans         also walk objects/ and count files without a\n"
	  "                    row (left for fsck -p)\n"
	  "  --json            print the result as JSON\n" },
	{ "stats", cmd_stats, "[--json] STORE|MOUNTPOINT",
	  "entries, bytes, hits and misses per symbol, GC and lock figures",
	  "  --json   print JSON instead of text\n" },
	{ "ls", cmd_ls, "[--symbol S] [--json] STORE|MOUNTPOINT",
	  "list manifest rows, for scripts",
	  "  --symbol S   only entries of symbol S\n"
	  "  --json       print a JSON array\n" },
	{ "lock-key", cmd_lock_key, "NAME...",
	  "print the advisory-lock id of each NAME (<symbol>/<key>, or a "
	  "path ending in <symbol>/<key>.parquet)",
	  "" },
	{ "help", cmd_help, "[COMMAND]", "show help for featurefs or a command",
	  "" },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct command *command_find(const char *name)
{
	const struct command *c;

	for (c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Edit distance between `a` and `b`, stopping at 3 ("more than 2"). */
static int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	int row[32], prev, tmp;

	if (la >= 32 || lb >= 32 || (la > lb ? la - lb : lb - la) > 2)
		return 3;
	for (j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (int)i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = a[i - 1] == b[j - 1] ? prev : 1 + prev;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb] < 3 ? row[lb] : 3;
}

/* `featurefs statz /mnt` would make a store named "statz" here and mount
 * it: a first word that is no path, and nearly a command's name, is taken
 * for a mistyped command.  The command meant, or NULL. */
static const struct command *mistyped_command(const char *word)
{
	const struct command *c;

	if (word[0] == '-' || strchr(word, '/') || access(word, F_OK) == 0)
		return NULL;
	for (c = commands; c->name; c++)
		if (edit_distance(word, c->name) <= (strlen(c->name) > 3 ? 2 : 1))
			return c;
	return NULL;
}

int cli_usage(const char *name, const char *fmt, ...)
{
	const struct command *c = command_find(name);
	va_list ap;

	if (fmt) {
		fprintf(stderr, "featurefs %s: ", name);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	if (c)
		fprintf(stderr, "usage: featurefs %s %s\n", c->name,
			c->synopsis);
	fprintf(stderr, "Try 'featurefs help %s' for more.\n", name);
	return EXIT_USAGE;
}

static void print_overview(FILE *out)
{
	const struct command *c;

	fprintf(out,
		"usage: featurefs STORE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]\n"
		"       featurefs COMMAND [ARGS]\n\n"
		"featurefs serves a cache of Parquet feature files as a "
		"filesystem:\n"
		"/MOUNTPOINT/<symbol>/<key>.parquet\n\ncommands:\n");
	for (c = commands; c->name; c++)
		fprintf(out, "  %-9s %s\n", c->name, c->summary);
	fprintf(out, "\nSee featurefs(1) and 'featurefs help COMMAND'.\n");
}

int cli_help(const char *name)
{
	const struct command *c = command_find(name);

	printf("usage: featurefs %s %s\n\n%s\n", c->name, c->synopsis,
	       c->summary);
	if (*c->help)
		printf("\noptions:\n%s", c->help);
	if (strcmp(c->name, "mount") == 0) {
		printf("\n");
		mount_options_help();
	}
	return 0;
}

int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		print_overview(stdout);
		return 0;
	}
	if (!command_find(argv[1])) {
		fprintf(stderr, "featurefs help: no command '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	return cli_help(argv[1]);
}

int main(int argc, char **argv)
{
	const struct command *c;
	char name[32];

	if (argc < 2) {
		print_overview(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("featurefs %s\n", FEATUREFS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_overview(stdout);
		return 0;
	}
	c = command_find(argv[1]);
	/* what getopt's messages start with, "featurefs gc: ..." */
	if (c && strcmp(c->name, "mount") != 0) {
		snprintf(name, sizeof(name), "featurefs %s", c->name);
		argv[1] = name;
	}
	if (c)
		return c->run(argc - 1, argv + 1);
	/* SPEC's command for PostgreSQL stores, which this featurefs does
	 * not serve: say so rather than mount a store of that name */
	if (strcmp(argv[1], "migrate") == 0 && access(argv[1], F_OK) < 0) {
		fprintf(stderr, "featurefs: 'migrate' is not provided: this "
				"featurefs has no PostgreSQL backend to move a "
				"manifest to (a store of that name: ./migrate)\n");
		return EXIT_USAGE;
	}
	c = mistyped_command(argv[1]);
	if (c) {
		fprintf(stderr, "featurefs: '%s' is not a command; did you mean "
				"'%s'? (A new store of that name: ./%s)\n",
			argv[1], c->name, argv[1]);
		return EXIT_USAGE;
	}
	/* featurefs STORE MOUNTPOINT ...: what mount.fuse3 runs */
	return cmd_mount(argc, argv);
}
