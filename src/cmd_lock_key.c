/*
 * cmd_lock_key.c - `featurefs lock-key NAME...`: the advisory-lock id of
 * each entry, one per line, as PostgreSQL's pg_advisory_lock() takes it.
 * A NAME is SYMBOL/KEY, or a path ending in SYMBOL/KEY.parquet (an
 * entry under a mount): the id is that of "SYMBOL/KEY" either way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lock.h"
#include "names.h"

/* The symbol and key `name` gives; 0, or -EINVAL when it names no entry. */
static int entry_of(const char *name, char *symbol, char *key)
{
	const char *file = strrchr(name, '/'), *dir;
	size_t len;

	if (!file || file == name)
		return -EINVAL;
	for (dir = file; dir > name && dir[-1] != '/'; dir--)
		;
	len = (size_t)(file - dir);
	if (len > SYMBOL_MAX)
		return -EINVAL;
	memcpy(symbol, dir, len);
	symbol[len] = '\0';
	file++;
	if (name_check_symbol(symbol) < 0)
		return -EINVAL;
	if (name_parse_child(file, key) == NAME_ENTRY)
		return 0;
	if (strlen(file) > KEY_MAX || name_check_key(file) < 0)
		return -EINVAL;
	strcpy(key, file);
	return 0;
}

int cmd_lock_key(int argc, char **argv)
{
	char symbol[SYMBOL_MAX + 1], key[KEY_MAX + 1];
	int i;

	if (argc < 2)
		return cli_usage("lock-key", "a NAME is required");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return cli_help("lock-key");
		if (entry_of(argv[i], symbol, key) < 0)
			return cli_usage("lock-key",
					 "'%s' is not SYMBOL/KEY or a path "
					 "ending in SYMBOL/KEY.parquet",
					 argv[i]);
	}
	for (i = 1; i < argc; i++) {
		entry_of(argv[i], symbol, key);
		printf("%lld\n", (long long)lock_id_entry(symbol, key));
	}
	return 0;
}
