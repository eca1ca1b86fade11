/*
 * cli.c - helpers the maintenance commands share: finding a store from a
 * path that may be a mountpoint, opening its manifest.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "proc.h"

/* `path` made absolute with its directory resolved, but not its last
 * component: resolving that would ask the mount there.  0 or -errno. */
static int absolute_unresolved(const char *path, char *out, size_t len)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *base = strrchr(path, '/');
	size_t dlen = base ? (size_t)(base - path) : 0;

	base = base ? base + 1 : path;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	    dlen >= sizeof(dir))
		return -EINVAL;
	if (dlen)
		snprintf(dir, sizeof(dir), "%.*s", (int)dlen, path);
	else
		snprintf(dir, sizeof(dir), "%s", path[0] == '/' ? "/" : ".");
	if (!realpath(dir, real))
		return -errno;
	if (snprintf(out, len, "%s/%s", strcmp(real, "/") ? real : "",
		     base) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* When `path` is a FUSE mount of a store (its source in mountinfo)
 * whose daemon is stopped, fill `store` with it and return 1: reading its
 * config would wait for the daemon forever. */
static int stopped_mount_store(const char *path, char *store, size_t len)
{
	char abs[PATH_MAX], fstype[64], src[PATH_MAX + 1];
	struct store_holder holder;
	struct store *s = NULL;
	int stopped = 0;

	if (absolute_unresolved(path, abs, sizeof(abs)) < 0 ||
	    proc_mount_at(abs, NULL, fstype, src) != 1 ||
	    strncmp(fstype, "fuse", 4) != 0 || store_probe(src) != 1 ||
	    store_open(src, &s) < 0)
		return 0;
	stopped = store_lock_probe(s, &holder) == 1 &&
		  strcmp(holder.mountpoint, abs) == 0 &&
		  proc_is_stopped(holder.pid);
	store_close(s);
	if (stopped)
		snprintf(store, len, "%s", src);
	return stopped;
}

/*
 * When `path` is a mountpoint of featurefs, fill `store` and `uuid` from
 * its /.featurefs/config (or, its daemon stopped, from mountinfo, with no
 * uuid) and return 1; 0 when it is not one; -ENOTCONN (logged) when it is
 * a mount whose daemon is gone.
 */
static int store_of_mountpoint(const char *path, char *store, size_t len,
			       char *uuid, size_t uuid_len)
{
	char conf[PATH_MAX], line[PATH_MAX + 32];
	FILE *f;
	int found = 0;

	uuid[0] = '\0';
	if (stopped_mount_store(path, store, len))
		return 1;
	if (snprintf(conf, sizeof(conf), "%s/.featurefs/config", path) >=
	    (int)sizeof(conf))
		return 0;
	f = fopen(conf, "re");
	if (!f && errno == ENOTCONN) {
		log_err("%s: a featurefs mount whose daemon is gone; "
			"unmount it with fusermount3 -u %s", path, path);
		return -ENOTCONN;
	}
	if (!f)
		return 0;
	uuid[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "store = ", 8) == 0) {
			snprintf(store, len, "%s", line + 8);
			found = 1;
		} else if (strncmp(line, "store_uuid = ", 13) == 0) {
			snprintf(uuid, uuid_len, "%s", line + 13);
		}
	}
	fclose(f);
	return found;
}

int cli_is_mount(const char *path)
{
	char store[PATH_MAX], uuid[64];

	return store_of_mountpoint(path, store, sizeof(store), uuid,
				   sizeof(uuid)) != 0;
}

int cli_open_store(const char *path, struct store **out)
{
	char store[PATH_MAX], uuid[sizeof((*out)->conf.uuid)];
	int mounted, rc;

	mounted = store_of_mountpoint(path, store, sizeof(store), uuid,
				      sizeof(uuid));
	if (mounted < 0)
		return mounted;
	if (mounted && store_probe(store) != 1) {
		log_err("%s: its store %s is gone (moved or removed while "
			"mounted)", path, store);
		return -ENOENT;
	}
	if (mounted)
		path = store;
	rc = store_probe(path);
	if (rc < 0 && rc != -ENOTEMPTY) {
		log_err("store %s: %s", path, strerror(-rc));
		return rc;
	}
	if (rc != 1) {
		log_err("%s is not a featurefs store (no store.conf)", path);
		return -ENOENT;
	}
	rc = store_open(path, out);
	/* the mount's store was moved and another put in its place */
	if (rc == 0 && mounted && uuid[0] &&
	    strcmp(uuid, (*out)->conf.uuid) != 0) {
		log_err("%s holds store %s, not the one mounted (%s): that "
			"store was moved while mounted; refused", store,
			(*out)->conf.uuid, uuid);
		store_close(*out);
		*out = NULL;
		rc = -ESTALE;
	}
	return rc;
}

int cli_open_manifest(struct store *s, int read_only, int may_create,
		      struct manifest **out)
{
	struct manifest_open_args a = {
		.store_root = s->root,
		.store_uuid = s->conf.uuid,
		.read_only = read_only,
		.may_create = may_create,
	};

	return manifest_open(s->conf.manifest, &a, out);
}

int cli_store_mounted(struct store *s, struct store_holder *holder)
{
	return store_lock_probe(s, holder) == 1 &&
	       strcmp(holder->role, "mount") == 0;
}
