/*
 * lostfound.c - moving objects (and the rows they had) into
 * STORE/lost+found/ without ever replacing what is there (lostfound.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fdio.h"
#include "log.h"
#include "lostfound.h"
#include "strbuf.h"

/* Longest name made from a path, leaving room for ".999.row.json". */
#define BASE_MAX 200

int lostfound_open(struct store *s)
{
	int fd;

	if (mkdirat(s->root_fd, LOSTFOUND_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(s->root_fd, LOSTFOUND_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int name_free(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	       errno == ENOENT;
}

/* A name in lost+found/ that is free, with its ".row.json" too: `base`,
 * else "<base>.1", "<base>.2", ... */
static int pick_name(int lf, const char *base, char *name, size_t len)
{
	char json[NAME_MAX + 1];
	int i;

	for (i = 0; i < 1000; i++) {
		if (i)
			snprintf(name, len, "%s.%d", base, i);
		else
			snprintf(name, len, "%s", base);
		snprintf(json, sizeof(json), "%s.row.json", name);
		if (name_free(lf, name) && name_free(lf, json))
			return 0;
	}
	return -EEXIST;
}

/* "<symbol>.<key>.parquet" from "objects/<symbol>/<key>.parquet", any
 * other path the same way: one file name, never "." or "..". */
static void base_name(const char *rel, char *out, size_t len)
{
	size_t i, n = 0;

	if (strncmp(rel, "objects/", 8) == 0)
		rel += 8;
	for (i = 0; rel[i] && n + 1 < len && n < BASE_MAX; i++)
		out[n++] = rel[i] == '/' ? '.' : rel[i];
	out[n] = '\0';
	if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
		snprintf(out, len, "unnamed");
}

/* The row file's JSON: the row in the manifest's units, why and when. */
static void row_json(struct strbuf *sb, const struct manifest_entry *e,
		     const char *reason, const char *object)
{
	sb_adds(sb, "{\"symbol\": ");
	sb_json_str(sb, e->symbol);
	sb_adds(sb, ", \"key\": ");
	sb_json_str(sb, e->key);
	sb_adds(sb, ", \"path\": ");
	sb_json_str(sb, e->path);
	sb_addf(sb, ", \"state\": \"%s\"", manifest_state_name(e->state));
	if (e->has_ts)
		sb_addf(sb, ", \"start_ts\": %lld, \"end_ts\": %lld",
			(long long)e->start_ts, (long long)e->end_ts);
	else
		sb_adds(sb, ", \"start_ts\": null, \"end_ts\": null");
	sb_addf(sb, ", \"rows\": %lld, \"file_size_bytes\": %lld, "
		    "\"stored_size_bytes\": %lld, \"compression\": ",
		(long long)e->rows, (long long)e->file_size,
		(long long)e->stored_size);
	sb_json_str(sb, e->compression);
	sb_adds(sb, ", \"hash_method\": ");
	sb_json_str(sb, e->hash_method);
	sb_adds(sb, ", \"sha256\": ");
	sb_json_str(sb, e->sha256);
	sb_addf(sb, ", \"created_ts\": %lld, \"last_accessed_ts\": %lld, "
		    "\"access_count\": %lld, \"mtime_ns\": %lld, "
		    "\"ctime_ns\": %lld, \"mode\": %u, \"writer\": ",
		(long long)e->created_ts, (long long)e->last_accessed_ts,
		(long long)e->access_count, (long long)e->mtime_ns,
		(long long)e->ctime_ns, e->mode);
	sb_json_str(sb, e->writer);
	sb_addf(sb, ", \"quarantined_ts\": %lld, \"reason\": ",
		(long long)now_us());
	sb_json_str(sb, reason);
	sb_adds(sb, ", \"object\": ");
	if (object)
		sb_json_str(sb, object);
	else
		sb_adds(sb, "null");
	sb_adds(sb, "}\n");
}

/* Create `name` in `dirfd` holding `sb`, fsynced; nothing left on error. */
static int write_new_file(int dirfd, const char *name, const struct strbuf *sb)
{
	int fd, rc;

	if (sb->err)
		return sb->err;
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = pwrite_full(fd, sb_str(sb), sb->len, 0);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		unlinkat(dirfd, name, 0);
	return rc;
}

/* rename(2) that never replaces, on filesystems with or without
 * RENAME_NOREPLACE (under the store lock, the fallback's check then
 * rename has nobody to race with). */
static int move_noreplace(int from_dir, const char *from, int to_dir,
			  const char *to)
{
	if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (!name_free(to_dir, to))
		return -EEXIST;
	return renameat(from_dir, from, to_dir, to) < 0 ? -errno : 0;
}

/* Move `rel` (relative to STORE, never through a symlink on the way)
 * into lost+found as `name`, and make both directories' change durable
 * as far as the source's goes. */
static int move_in(struct store *s, const char *rel, int lf, const char *name)
{
	const char *leaf;
	int dirfd, rc;

	dirfd = store_parent_open(s, rel, &leaf);
	if (dirfd < 0)
		return dirfd;
	rc = move_noreplace(dirfd, leaf, lf, name);
	if (rc == 0 && fsync(dirfd) < 0)
		log_warn("fsck: fsync of the directory of %s: %s", rel,
			 strerror(errno));
	close(dirfd);
	return rc;
}

int lostfound_move(struct store *s, int lf, const char *rel,
		   const char *name_from, const struct manifest_entry *row,
		   const char *reason, char *dest, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	char base[NAME_MAX + 1], name[NAME_MAX + 1], json[NAME_MAX + 1];
	char object[NAME_MAX + 16];
	int rc;

	base_name(name_from, base, sizeof(base));
	rc = pick_name(lf, base, name, sizeof(name));
	if (rc < 0)
		return rc;
	snprintf(json, sizeof(json), "%s.row.json", name);
	snprintf(object, sizeof(object), LOSTFOUND_DIR "/%s", name);
	if (row) {
		row_json(&sb, row, reason, rel ? object : NULL);
		rc = write_new_file(lf, json, &sb);
		sb_release(&sb);
		if (rc < 0)
			return rc;
	}
	if (rel) {
		rc = move_in(s, rel, lf, name);
		if (rc < 0) {
			if (row)
				unlinkat(lf, json, 0);
			return rc;
		}
	}
	if (fsync(lf) < 0)
		log_warn("fsck: fsync " LOSTFOUND_DIR "/: %s", strerror(errno));
	snprintf(dest, len, LOSTFOUND_DIR "/%s", rel ? name : json);
	return 0;
}

int lostfound_move_object(struct store *s, const char *rel,
			  const char *reason, char *dest, size_t len)
{
	int lf, rc;

	lf = lostfound_open(s);
	if (lf < 0)
		return lf;
	rc = lostfound_move(s, lf, rel, rel, NULL, reason, dest, len);
	close(lf);
	return rc;
}
