/*
 * manifest.c - choosing a manifest backend from its URI.
 *
 * A new backend is one file defining a `struct manifest_ops` and one line
 * in `backends` below.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"

extern const struct manifest_ops manifest_sqlite_ops;

static const struct manifest_ops *const backends[] = {
	&manifest_sqlite_ops,
	NULL,
};

static const struct manifest_ops *backend_for(const char *uri)
{
	int i;

	for (i = 0; backends[i]; i++)
		if (backends[i]->accepts(uri))
			return backends[i];
	return NULL;
}

int manifest_open(const char *uri, const struct manifest_open_args *args,
		  struct manifest **out)
{
	const struct manifest_ops *ops = backend_for(uri);

	if (ops)
		return ops->open(uri, args, out);
	return manifest_uri_check(uri);
}

int manifest_uri_check(const char *uri)
{
	if (backend_for(uri))
		return 0;
	if (strncmp(uri, "postgres", 8) == 0 || strncmp(uri, "service=", 8) == 0)
		log_err("manifest %s: this featurefs has no PostgreSQL backend "
			"yet; use manifest=sqlite", uri);
	else
		log_err("manifest %s: unknown manifest kind (expected sqlite)",
			uri);
	return -EPROTONOSUPPORT;
}

const char *manifest_backend_name(const struct manifest *m)
{
	return m->ops->name;
}

void manifest_writer_id(const char *mount_id, char *buf, size_t len)
{
	char host[256] = "localhost";

	gethostname(host, sizeof(host) - 1);
	snprintf(buf, len, "%.64s pid=%ld mount=%s", host, (long)getpid(),
		 mount_id);
}

const char *manifest_entry_flaw(const struct manifest_entry *e)
{
	if (e->file_size < 0 || e->stored_size < 0)
		return "a negative size";
	if (strcmp(e->compression, "none") == 0 && e->stored_size &&
	    e->stored_size != e->file_size)
		return "an uncompressed object whose stored and logical "
		       "sizes differ";
	return NULL;
}

int manifest_writer_of_mount(const char *writer, const char *mount_id)
{
	const char *m = strstr(writer, "mount=");
	size_t len = mount_id ? strlen(mount_id) : 0;

	return len && m && strncmp(m + 6, mount_id, len) == 0 &&
	       (m[6 + len] == '\0' || m[6 + len] == ' ');
}

int manifest_uri_has_password(const char *uri)
{
	const char *scheme = strstr(uri, "://"), *at, *colon;

	if (strstr(uri, "password="))
		return 1;
	if (!scheme)
		return 0;
	scheme += 3;
	at = strchr(scheme, '@');
	colon = strchr(scheme, ':');
	return at && colon && colon < at;
}
