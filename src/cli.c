/*
 * cli.c - helpers the maintenance commands share: finding a store from a
 * path that may be a mountpoint, opening its manifest.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

/* If `path` is a featurefs mountpoint, copy its store path to `store`. */
static int store_of_mountpoint(const char *path, char *store, size_t len)
{
	char conf[PATH_MAX], line[PATH_MAX + 32];
	FILE *f;
	int found = 0;

	if (snprintf(conf, sizeof(conf), "%s/.featurefs/config", path) >=
	    (int)sizeof(conf))
		return 0;
	f = fopen(conf, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "store = ", 8) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(store, len, "%s", line + 8);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

int cli_open_store(const char *path, struct store **out)
{
	char store[PATH_MAX];

	if (store_of_mountpoint(path, store, sizeof(store)))
		path = store;
	if (store_probe(path) != 1) {
		log_err("%s is not a featurefs store (no store.conf)", path);
		return -ENOENT;
	}
	return store_open(path, out);
}

int cli_open_manifest(struct store *s, int read_only, struct manifest **out)
{
	struct manifest_open_args a = {
		.store_root = s->root,
		.store_uuid = s->conf.uuid,
		.read_only = read_only,
	};

	return manifest_open(s->conf.manifest, &a, out);
}

int cli_store_mounted(struct store *s, struct store_holder *holder)
{
	return store_lock_probe(s, holder) == 1 &&
	       strcmp(holder->role, "mount") == 0;
}
