/*
 * cmd_init.c - `featurefs init STORE [--manifest URI] [--compress MODE]`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "options.h"

int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "manifest", required_argument, NULL, 'm' },
		{ "compress", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *manifest = "sqlite", *compress = "none";
	enum compress_mode mode;
	struct manifest *m = NULL;
	struct store *s = NULL;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			manifest = optarg;
			break;
		case 'c':
			compress = optarg;
			break;
		case 'h':
			return cli_help("init");
		default:
			return cli_usage("init", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage("init", "exactly one STORE is required");
	if (parse_compress_mode(compress, &mode) < 0) {
		log_err("init: --compress %s: expected none, zstd or auto",
			compress);
		return EXIT_USAGE;
	}
	if (manifest_uri_has_password(manifest)) {
		log_err("init: a password in the manifest URI is refused; use "
			"~/.pgpass, PGPASSFILE or a service file");
		return EXIT_USAGE;
	}
	if (manifest_uri_check(manifest) < 0)
		return EXIT_USAGE;
	if (cli_is_mount(argv[optind])) {
		log_err("init: %s is a featurefs mount; a store goes beside "
			"its mountpoint, not in it", argv[optind]);
		return 1;
	}
	rc = store_init(argv[optind], manifest, compress);
	if (rc == -EEXIST) {
		log_err("init: %s is already a featurefs store", argv[optind]);
		return 1;
	}
	if (rc == -ENOTEMPTY) {
		store_log_not_empty(argv[optind], "init: ");
		return 1;
	}
	if (rc == -EINVAL)
		return 1; /* store_init() said why */
	if (rc < 0) {
		log_err("init: %s: %s", argv[optind], strerror(-rc));
		return 1;
	}
	rc = store_open(argv[optind], &s);
	if (rc == 0)
		rc = cli_open_manifest(s, 0, 1, &m);
	manifest_close(m);
	if (rc == 0)
		printf("initialized featurefs store %s (uuid %s, manifest %s)\n",
		       s->root, s->conf.uuid, s->conf.manifest);
	store_close(s);
	/* a manifest that could not be made (a full disk): what this init
	 * made goes, so that it can simply be run again */
	if (rc < 0)
		store_unmake(argv[optind], 0);
	return rc < 0 ? 1 : 0;
}
