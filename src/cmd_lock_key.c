/*
 * cmd_lock_key.c - `featurefs lock-key NAME...`: the advisory-lock id of
 * each name, one per line, as PostgreSQL's pg_advisory_lock() takes it.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lock.h"

int cmd_lock_key(int argc, char **argv)
{
	int i;

	if (argc < 2)
		return cli_usage("lock-key", "a NAME is required");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return cli_help("lock-key");
	}
	for (i = 1; i < argc; i++)
		printf("%lld\n", (long long)lock_id(argv[i]));
	return 0;
}
