/*
 * manifest.c - choosing a manifest backend from its URI.
 *
 * A new backend is one file defining a `struct manifest_ops`, declared in
 * manifest.h, and one line in `backends` below.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"

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

	/* the options are checked before a store records them; this is
	 * for a store.conf edited by hand */
	if (manifest_uri_has_password(uri)) {
		log_err("manifest: the store's store.conf names a manifest "
			"with a password, which is refused; move it to "
			"~/.pgpass, PGPASSFILE or a service file");
		return -EACCES;
	}
	if (ops)
		return ops->open(uri, args, out);
	return manifest_uri_check(uri);
}

const char *manifest_uri_shown(const char *uri)
{
	size_t n = strspn(uri, "abcdefghijklmnopqrstuvwxyz"
			       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");

	return n > 0 && n <= 32 && uri[n] == '\0'
		       ? uri
		       : "(a URI, not shown: it may hold a secret)";
}

int manifest_uri_check(const char *uri)
{
	if (backend_for(uri))
		return 0;
	/* a URI is not echoed: libpq finds passwords in more spellings
	 * than manifest_uri_has_password() knows */
	if (strncmp(uri, "postgres", 8) == 0 || strchr(uri, '='))
		log_err("manifest: a PostgreSQL URI or connection string, and "
			"this featurefs has no PostgreSQL backend yet; use "
			"manifest=sqlite");
	else
		log_err("manifest %s: unknown manifest kind (expected sqlite)",
			manifest_uri_shown(uri));
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

const char *manifest_state_name(enum entry_state state)
{
	switch (state) {
	case ENTRY_WRITING:
		return "writing";
	case ENTRY_PUBLISHED:
		return "published";
	default:
		return "unknown";
	}
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

static int hex_digit(char c)
{
	return isdigit((unsigned char)c) ? c - '0'
					 : tolower((unsigned char)c) - 'a' + 10;
}

int manifest_uri_has_password(const char *uri)
{
	char *flat = malloc(strlen(uri) + 1), *o;
	const char *p, *scheme, *at, *colon;
	int found;

	if (!flat)
		return 1; /* refused: nothing could check it */
	/* as libpq reads keywords: a URI's %XX decoded, blanks around a
	 * conninfo's '=' allowed, case kept only in values */
	for (p = uri, o = flat; *p; p++) {
		if (*p == '%' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2])) {
			*o++ = (char)tolower(hex_digit(p[1]) * 16 +
					     hex_digit(p[2]));
			p += 2;
		} else if (!isspace((unsigned char)*p)) {
			*o++ = (char)tolower((unsigned char)*p);
		}
	}
	*o = '\0';
	found = strstr(flat, "password=") != NULL;
	scheme = strstr(flat, "://");
	if (!found && scheme) {
		scheme += 3;
		at = strchr(scheme, '@');
		colon = strchr(scheme, ':');
		found = at && colon && colon < at;
	}
	free(flat);
	return found;
}
