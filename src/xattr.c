/*
 * xattr.c - the read-only extended attributes of entries (SPEC §2):
 * user.featurefs.{sha256,rows,created,last_accessed,access_count,
 * compression,stored_size,state,start_ts,end_ts}.  Values are text: times
 * in ISO 8601 UTC, numbers in decimal.  They come from the manifest plus
 * the accesses not flushed yet, so they are never older than the mount's
 * own view.  They are read by name only: listxattr(2) lists none
 * (fs_listxattr says why).
 */
#include <errno.h>
#include <string.h>

#include "access.h"
#include "ffs.h"
#include "log.h"

#define XATTR_PREFIX "user.featurefs."

static const char *const xattr_names[] = {
	"sha256",	"rows",	       "created",    "last_accessed",
	"access_count", "compression", "stored_size", "state",
	"start_ts",	"end_ts",      NULL,
};

/* The value of attribute `attr` of row `e`, appended to `out`; -ENODATA
 * if it has none. */
static int render_value(const struct manifest_entry *e, const char *attr,
			struct strbuf *out)
{
	if (strcmp(attr, "state") == 0)
		sb_adds(out, manifest_state_name(e->state));
	else if (strcmp(attr, "created") == 0)
		sb_iso_time(out, e->created_ts, NULL);
	else if (e->state != ENTRY_PUBLISHED)
		return -ENODATA;
	else if (strcmp(attr, "sha256") == 0)
		sb_adds(out, e->sha256);
	else if (strcmp(attr, "rows") == 0)
		sb_addf(out, "%lld", (long long)e->rows);
	else if (strcmp(attr, "last_accessed") == 0 && e->last_accessed_ts > 0)
		sb_iso_time(out, e->last_accessed_ts, "");
	else if (strcmp(attr, "access_count") == 0)
		sb_addf(out, "%lld", (long long)e->access_count);
	else if (strcmp(attr, "compression") == 0)
		sb_adds(out, e->compression);
	else if (strcmp(attr, "stored_size") == 0)
		sb_addf(out, "%lld", (long long)e->stored_size);
	else if (strcmp(attr, "start_ts") == 0 && e->has_ts)
		sb_iso_time(out, e->start_ts, NULL);
	else if (strcmp(attr, "end_ts") == 0 && e->has_ts)
		sb_iso_time(out, e->end_ts, NULL);
	else
		return -ENODATA;
	return 0;
}

/* Append attribute `attr` of row `e` to `out`; -ENODATA if it has none
 * (a time no calendar date renders, which only a damaged row holds,
 * included: never an empty value). */
static int render_attr(const struct manifest_entry *e, const char *attr,
		       struct strbuf *out)
{
	size_t len = out->len;
	int rc = render_value(e, attr, out);

	if (rc == 0 && !out->err && out->len == len)
		return -ENODATA;
	return rc < 0 ? rc : out->err;
}

/* The manifest view of node `n`, which must be an entry, with the reads
 * not written to it yet. */
static int describe_node(struct ffs *ffs, struct node *n,
			 struct manifest_entry *e)
{
	int64_t pending_ts = 0;
	struct writer *w;
	int writing = 0, linked, rc;

	if (node_kind(n) != NODE_ENTRY)
		return -ENODATA;
	pthread_mutex_lock(&ffs->lock);
	w = n->w;
	if (w)
		writer_ref(w);
	linked = n->linked;
	pthread_mutex_unlock(&ffs->lock);
	if (w) {
		/* a publish stuck past the wait is still writing */
		writing = 1;
		if (writer_lock_settled(w) == 0) {
			writing = !w->published;
			pthread_mutex_unlock(&w->mu);
		}
		writer_unref(w);
	} else if (!linked) {
		return -ENODATA; /* removed: the row is another entry's */
	}
	if (writing) {
		memset(e, 0, sizeof(*e));
		e->state = ENTRY_WRITING;
		e->created_ts = n->created_ts;
		return 0;
	}
	/* a flush under way has its reads in the row or in the log, never
	 * in both: seen half-way, they would count twice */
	pthread_mutex_lock(&ffs->flush_mu);
	rc = manifest_get(ffs->manifest, n->parent->name, n->key, e);
	if (rc == 0 && e->state == ENTRY_PUBLISHED) {
		e->access_count += access_log_pending(ffs->access, e->symbol,
						      e->key, &pending_ts);
		if (pending_ts > e->last_accessed_ts)
			e->last_accessed_ts = pending_ts;
	}
	pthread_mutex_unlock(&ffs->flush_mu);
	return rc == 0 ? 0 : -ENODATA;
}

int entry_xattr_get(struct ffs *ffs, struct node *n, const char *name,
		    struct strbuf *out)
{
	struct manifest_entry e;
	int i, rc;

	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0)
		return -ENODATA;
	name += strlen(XATTR_PREFIX);
	for (i = 0; xattr_names[i]; i++)
		if (strcmp(name, xattr_names[i]) == 0)
			break;
	if (!xattr_names[i])
		return -ENODATA;
	rc = describe_node(ffs, n, &e);
	if (rc == 0)
		rc = render_attr(&e, name, out);
	return rc;
}

int entry_xattr_refuse(struct ffs *ffs, struct node *n, const char *verb,
		       const char *name)
{
	static const char why[] =
		"files here carry no attributes but featurefs's own";
	char path[NAME_MAX * 2 + 2];

	/* a rename may replace the node's name meanwhile */
	pthread_mutex_lock(&ffs->lock);
	snprintf(path, sizeof(path), "%s", n->hkey ? n->hkey : "");
	pthread_mutex_unlock(&ffs->lock);
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0) {
		log_info("%s %s on /%s: featurefs attributes are read-only",
			 verb, name, path);
		return -EPERM;
	}
	/* cp -a and mv try ACLs and security labels on every file they copy
	 * and take ENOTSUP quietly: only a user.* name is worth info level,
	 * once a minute (rsync -X tries it on every file) */
	if (strncmp(name, "user.", 5) != 0) {
		log_debug("%s %s on /%s: %s", verb, name, path, why);
	} else {
		int64_t held_back = log_limit_pass(&ffs->xattr_log);

		if (held_back == 0)
			log_info("%s %s on /%s: %s", verb, name, path, why);
		else if (held_back > 0)
			log_info("%s %s on /%s: %s (and %lld more such refusals "
				 "in the last minute)", verb, name, path, why,
				 (long long)held_back);
	}
	return -ENOTSUP;
}
