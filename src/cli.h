/*
 * cli.h - the command table and helpers shared by the cmd_*.c files.
 *
 * `featurefs NAME ...` runs the command NAME from the table in
 * featurefs.c; anything else is a mount (`featurefs STORE MOUNTPOINT`).
 * `featurefs help` is generated from the same table.
 */
#ifndef FEATUREFS_CLI_H
#define FEATUREFS_CLI_H

#include "manifest.h"
#include "store.h"

#define EXIT_USAGE 2

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;	/* arguments after the name */
	const char *summary;	/* one line */
	const char *help;	/* option lines, each "  -x, --long  text\n" */
};

extern const struct command commands[];

int cmd_mount(int argc, char **argv);
/* Print the table of mount options (-o), with their defaults. */
void mount_options_help(void);
int cmd_init(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_lock_key(int argc, char **argv);
int cmd_help(int argc, char **argv);

const struct command *command_find(const char *name);

/* Print the help of command `name` to stdout; returns 0. */
int cli_help(const char *name);

/* Print "usage: featurefs NAME SYNOPSIS" and a hint; returns EXIT_USAGE. */
int cli_usage(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Open the store named by `path`, which may also be the mountpoint of a
 * mounted store (found through its /.featurefs/config).  Logs why not.
 */
int cli_open_store(const char *path, struct store **out);
/* 1 when `path` is the mountpoint of a featurefs mount, live or with
 * its daemon gone; else 0. */
int cli_is_mount(const char *path);
/* Open the store's manifest as store.conf names it; a missing or empty
 * one is made only when `may_create` (init), else refused. */
int cli_open_manifest(struct store *s, int read_only, int may_create,
		      struct manifest **out);

/* The store holds a live mount: 1 (and `holder`), or 0. */
int cli_store_mounted(struct store *s, struct store_holder *holder);

#endif
