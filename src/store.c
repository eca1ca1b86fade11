/*
 * store.c - store layout, store.conf, the store lock and object files.
 *
 * This file knows where bytes live on disk and nothing about the manifest
 * or FUSE.  Crash safety rests on two rules kept here: data reaches
 * objects/ only by rename(2) of a fsynced tmp file, and objects are never
 * overwritten.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fault.h"
#include "fdio.h"
#include "log.h"
#include "proc.h"
#include "store.h"

#define STORE_CONF "store.conf"
#define STORE_LOCK "store.lock"

/* Names a half-finished init may have left, all made before store.conf;
 * anything else makes a directory "not empty" for store_probe(). */
static const char *const init_names[] = {
	"objects", "tmp", "lost+found", STORE_LOCK, STORE_CONF ".tmp", NULL,
};

/* What a store made by a mount that then failed holds besides (the
 * manifest is made after store.conf: a directory holding one without
 * store.conf is a store that lost it, not a half-finished init). */
static const char *const start_names[] = {
	"manifest.db", "manifest.db-wal", "manifest.db-shm",
	"manifest.reserve", STORE_CONF, "control.sock", NULL,
};

ssize_t store_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int rc = fault_inject("tmp_write");

	if (rc == 0)
		rc = pwrite_full(fd, buf, len, (uint64_t)off);
	return rc < 0 ? rc : (ssize_t)len;
}

int store_fsync(int fd)
{
	int rc = fault_inject("tmp_fsync");

	if (rc < 0)
		return rc;
	return fsync(fd) < 0 ? -errno : 0;
}

static int is_init_name(const char *name)
{
	int i;

	for (i = 0; init_names[i]; i++)
		if (strcmp(name, init_names[i]) == 0)
			return 1;
	return 0;
}

int store_probe(const char *path)
{
	char conf[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (snprintf(conf, sizeof(conf), "%s/" STORE_CONF, path) >=
	    (int)sizeof(conf))
		return -ENAMETOOLONG;
	if (access(conf, F_OK) == 0)
		return 1;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!is_init_name(de->d_name)) {
			rc = -ENOTEMPTY;
			break;
		}
	}
	closedir(d);
	return rc;
}

void store_log_not_empty(const char *path, const char *who)
{
	char db[PATH_MAX];

	snprintf(db, sizeof(db), "%s/manifest.db", path);
	if (access(db, F_OK) == 0)
		log_err("%s%s holds a manifest but no store.conf: a store that "
			"lost it; restore store.conf from a backup (nothing "
			"was changed)", who, path);
	else
		log_err("%s%s is not a featurefs store (no store.conf) and is "
			"not empty", who, path);
}

/* `n` bytes from the kernel's generator: 0, or -errno (logged, with
 * `what` the bytes are for). */
static int random_bytes(unsigned char *buf, size_t n, const char *what)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);

		if (r < 0 && errno != EINTR) {
			int rc = -errno;

			log_err("%s: no random bytes: %s", what,
				strerror(-rc));
			return rc;
		}
		if (r > 0)
			got += (size_t)r;
	}
	return 0;
}

/* A version 4 UUID for a new store: 0 or -errno (logged). */
static int new_uuid(char out[37])
{
	unsigned char b[16];
	int rc = random_bytes(b, sizeof(b), "store uuid");

	if (rc < 0)
		return rc;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

static int write_conf(int root_fd, const struct store_conf *c)
{
	char text[1024];
	int fd, n, rc = 0;

	n = snprintf(text, sizeof(text),
		     "# featurefs store configuration (see featurefs(1))\n"
		     "format = %d\n"
		     "uuid = %s\n"
		     "manifest = %s\n"
		     "compression = %s\n",
		     c->format, c->uuid, c->manifest, c->compression);
	if (n < 0 || n >= (int)sizeof(text))
		return -ENAMETOOLONG;
	fd = openat(root_fd, STORE_CONF ".tmp",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = pwrite_full(fd, text, (size_t)n, 0);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(root_fd, STORE_CONF ".tmp", root_fd,
				STORE_CONF) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync(root_fd) < 0 ? -errno : 0;
	return rc;
}

/* Remove `names` from directory `root_fd`: files, and directories when
 * empty. */
static void unlink_names(int root_fd, const char *const *names)
{
	for (; *names; names++)
		if (unlinkat(root_fd, *names, 0) < 0 && errno == EISDIR)
			unlinkat(root_fd, *names, AT_REMOVEDIR);
}

void store_unmake(const char *path, int with_dir)
{
	int root_fd;

	root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return;
	/* store.conf last: until it goes, no init takes this for its own */
	unlink_names(root_fd, init_names);
	unlink_names(root_fd, start_names);
	close(root_fd);
	if (with_dir && rmdir(path) < 0)
		log_warn("store %s: left in place: %s", path, strerror(errno));
}

/* Cut the last component off absolute path `p`; 0 at "/". */
static int path_up(char *p)
{
	char *slash = strrchr(p, '/');

	if (!slash || strcmp(p, "/") == 0)
		return 0;
	slash[slash == p] = '\0'; /* "/x" -> "/" */
	return 1;
}

/* 1 when directory `dir` (a real path) is the root of a store. */
static int is_store_root(const char *dir)
{
	char conf[PATH_MAX + sizeof("/" STORE_CONF)];
	char objects[PATH_MAX + sizeof("/objects")];
	struct stat st;

	snprintf(conf, sizeof(conf), "%s/" STORE_CONF,
		 strcmp(dir, "/") ? dir : "");
	snprintf(objects, sizeof(objects), "%s/objects",
		 strcmp(dir, "/") ? dir : "");
	return stat(conf, &st) == 0 && S_ISREG(st.st_mode) &&
	       stat(objects, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether `path` (made or not; through links, with trailing slashes)
 * lies in another store: 1 with that store's root in `outer` (PATH_MAX
 * bytes), else 0. */
static int store_enclosing(const char *path, char *outer)
{
	char dir[PATH_MAX];
	size_t len = strlen(path);

	if (realpath(path, outer)) {
		if (!path_up(outer)) /* it exists: look above it */
			return 0;
	} else {
		if (len >= sizeof(dir))
			return 0;
		memcpy(dir, path, len + 1);
		while (len > 1 && dir[len - 1] == '/')
			dir[--len] = '\0';
		if (!strchr(dir, '/'))
			snprintf(dir, sizeof(dir), ".");
		else
			path_up(dir);
		if (!realpath(dir, outer))
			return 0; /* mkdir() says why */
	}
	do {
		if (is_store_root(outer))
			return 1;
	} while (path_up(outer));
	return 0;
}

int store_check_not_nested(const char *path)
{
	char outer[PATH_MAX];

	if (!store_enclosing(path, outer))
		return 0;
	log_err("%s is inside the featurefs store %s, whose fsck and gc "
		"would take its files for their own; put it elsewhere", path,
		outer);
	return -EINVAL;
}

/* An empty directory made a store is its owner's alone (0700), as one
 * featurefs creates: whoever can write it can replace the cache. */
static int store_make_private(int root_fd, const char *path)
{
	struct stat st;

	if (fstat(root_fd, &st) < 0)
		return -errno;
	if ((st.st_mode & 07777) == 0700)
		return 0;
	if (fchmod(root_fd, 0700) < 0) {
		int rc = -errno;

		log_err("%s: cannot make it private (0700) for a store: %s",
			path, strerror(-rc));
		return rc;
	}
	log_info("%s: mode %04o set to 0700, as a store's", path,
		 (unsigned)(st.st_mode & 07777));
	return 0;
}

/* Leave `fd`'s holder record empty: one newline rather than nothing,
 * so that store.lock keeps its block for the next holder's record.  Cut
 * first: whatever fails next, no line of the old record is left. */
static void write_empty_record(int fd)
{
	if (ftruncate(fd, 1) == 0 && pwrite(fd, "\n", 1, 0) == 1)
		return;
	log_debug("store lock: empty the record: %s", strerror(errno));
	if (ftruncate(fd, 0) < 0)
		log_debug("store lock: cut the record: %s", strerror(errno));
}

/* How long an init waits for another init of the same directory (the
 * flock of store.lock is held only while the layout is made). */
#define INIT_WAIT_MS 10000

/* Open store.lock under `root_fd` for init, made if missing (*made set),
 * and flock it: two inits, or two mounts of a missing store, at once make
 * one store.  The descriptor, or a negative errno (-EINVAL, logged, for
 * a lock that is no regular file). */
static int init_lock(int root_fd, const char *path, int *made)
{
	struct stat st;
	int fd, waited;

	fd = openat(root_fd, STORE_LOCK, O_RDWR | O_CREAT | O_EXCL |
						 O_NOFOLLOW | O_CLOEXEC, 0600);
	*made = fd >= 0;
	/* never a link or a FIFO someone put there */
	if (fd < 0 && errno == EEXIST)
		fd = openat(root_fd, STORE_LOCK, O_RDONLY | O_NOFOLLOW |
							 O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno != ELOOP)
		return -errno;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		log_err("%s/%s is not a regular file", path, STORE_LOCK);
		return -EINVAL;
	}
	for (waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 10) {
		if (errno != EWOULDBLOCK || waited >= INIT_WAIT_MS) {
			int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

			close(fd);
			return rc;
		}
		usleep(10000);
	}
	if (*made)
		write_empty_record(fd);
	return fd;
}

int store_init(const char *path, const char *manifest,
	       const char *compression)
{
	static const char *const dirs[] = { "objects", "tmp", "lost+found" };
	int root_fd = -1, lock_fd = -1, made_root = 0, made_lock = 0;
	int made_dir[3] = { 0, 0, 0 };
	struct store_conf c;
	int rc, i;

	rc = store_probe(path);
	if (rc == 1)
		return -EEXIST;
	if (rc < 0)
		return rc;
	rc = store_check_not_nested(path);
	if (rc < 0)
		return rc;
	if (mkdir(path, 0700) == 0)
		made_root = 1;
	else if (errno != EEXIST)
		return -errno;
	root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = store_make_private(root_fd, path);
	if (rc < 0)
		goto out;
	/* there from the start: a copy on read-only media has one to lock */
	lock_fd = init_lock(root_fd, path, &made_lock);
	if (lock_fd < 0) {
		rc = lock_fd;
		goto out;
	}
	/* made meanwhile by the init we waited for */
	if (faccessat(root_fd, STORE_CONF, F_OK, 0) == 0) {
		rc = -EEXIST;
		goto out;
	}
	for (i = 0; i < 3; i++) {
		if (mkdirat(root_fd, dirs[i], 0700) == 0)
			made_dir[i] = 1;
		else if (errno != EEXIST) {
			rc = -errno;
			goto out;
		}
	}
	memset(&c, 0, sizeof(c));
	c.format = STORE_FORMAT;
	rc = new_uuid(c.uuid);
	if (rc < 0)
		goto out;
	snprintf(c.manifest, sizeof(c.manifest), "%s", manifest);
	snprintf(c.compression, sizeof(c.compression), "%s", compression);
	rc = write_conf(root_fd, &c);
out:
	/* what this call made goes again (a directory made under a mount
	 * that refused it its mode, say); nothing another made, nor a
	 * directory given */
	if (rc < 0 && root_fd >= 0) {
		unlinkat(root_fd, STORE_CONF ".tmp", 0);
		for (i = 0; i < 3; i++)
			if (made_dir[i])
				unlinkat(root_fd, dirs[i], AT_REMOVEDIR);
		if (made_lock)
			unlinkat(root_fd, STORE_LOCK, 0);
	}
	if (lock_fd >= 0)
		close(lock_fd);
	if (root_fd >= 0)
		close(root_fd);
	/* (made by this call, and filled by the init it waited for) */
	if (rc < 0 && rc != -EEXIST && made_root && rmdir(path) < 0)
		log_warn("store %s: left in place: %s", path, strerror(errno));
	return rc;
}

/* Open `rel` under `dirfd` for reading when it is a regular file of
 * ours: never follow a link out of the store, never block on a FIFO
 * someone put there; -EINVAL for anything else. */
static int open_regular(int dirfd, const char *rel)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

static int conf_key_twice(const char *root, const char *key, int first,
			  int again)
{
	log_err("open store %s: %s:%d: %s is given again (first at line %d)",
		root, STORE_CONF, again, key, first);
	return -EINVAL;
}

/* Parse store.conf's "key = value" lines into `c`; a key given twice, or
 * a compression featurefs does not know, is refused. */
static int read_conf(int root_fd, const char *root, struct store_conf *c)
{
	char *line = NULL;
	size_t line_size = 0;
	FILE *f;
	int fd, lineno = 0, rc = 0, seen[4] = { 0 };
	ssize_t n;

	fd = open_regular(root_fd, STORE_CONF);
	if (fd < 0) {
		log_err("open store %s: %s: %s", root, STORE_CONF,
			fd == -EINVAL ? "not a regular file" : strerror(-fd));
		return fd;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	while ((n = getline(&line, &line_size, f)) > 0) {
		const struct {
			const char *key;
			char *field;
			size_t size;
		} fields[] = {
			{ "uuid", c->uuid, sizeof(c->uuid) },
			{ "manifest", c->manifest, sizeof(c->manifest) },
			{ "compression", c->compression,
			  sizeof(c->compression) },
		};
		char *key = line, *eq, *val, *end;
		size_t i;

		lineno++;
		/* it would end the value there, unseen */
		if (memchr(line, '\0', (size_t)n)) {
			log_err("open store %s: %s:%d: holds a NUL byte", root,
				STORE_CONF, lineno);
			rc = -EINVAL;
			goto out;
		}
		while (*key == ' ' || *key == '\t')
			key++;
		if (*key == '#' || *key == '\n' || *key == '\0')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			log_err("open store %s: %s:%d: expected key = value",
				root, STORE_CONF, lineno);
			rc = -EINVAL;
			goto out;
		}
		for (end = eq; end > key && (end[-1] == ' ' || end[-1] == '\t');)
			end--;
		*end = '\0';
		for (val = eq + 1; *val == ' ' || *val == '\t'; val++)
			;
		val[strcspn(val, "\r\n")] = '\0';
		if (strcmp(key, "format") == 0) {
			char *num_end;

			if (seen[3]) {
				rc = conf_key_twice(root, key, seen[3], lineno);
				goto out;
			}
			seen[3] = lineno;
			long format = strtol(val, &num_end, 10);

			if (num_end == val || *num_end || format <= 0 ||
			    format > INT_MAX) {
				log_err("open store %s: %s:%d: format \"%s\" is "
					"not a positive number", root,
					STORE_CONF, lineno, val);
				rc = -EINVAL;
				goto out;
			}
			c->format = (int)format;
			continue;
		}
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(key, fields[i].key) == 0)
				break;
		if (i == sizeof(fields) / sizeof(fields[0])) {
			/* a newer featurefs may add keys; format guards
			 * the ones that matter.  Not echoed unless a word:
			 * a hand-edited line may hold a secret. */
			if (strspn(key, "abcdefghijklmnopqrstuvwxyz_0123456789") ==
			    strlen(key))
				log_warn("open store %s: %s:%d: unknown key "
					 "\"%.64s%s\" ignored", root, STORE_CONF,
					 lineno, key,
					 strlen(key) > 64 ? "..." : "");
			else
				log_warn("open store %s: %s:%d: an unknown key "
					 "(not a word, not shown) ignored",
					 root, STORE_CONF, lineno);
			continue;
		}
		if (seen[i]) {
			rc = conf_key_twice(root, key, seen[i], lineno);
			goto out;
		}
		seen[i] = lineno;
		if (strlen(val) >= fields[i].size) {
			log_err("open store %s: %s:%d: %s is longer than %zu "
				"bytes", root, STORE_CONF, lineno, key,
				fields[i].size - 1);
			rc = -EINVAL;
			goto out;
		}
		strcpy(fields[i].field, val);
		if (fields[i].field == c->compression &&
		    strcmp(val, "none") != 0 && strcmp(val, "zstd") != 0 &&
		    strcmp(val, "auto") != 0) {
			log_err("open store %s: %s:%d: compression = %s: "
				"expected none, zstd or auto", root, STORE_CONF,
				lineno, val);
			rc = -EINVAL;
			goto out;
		}
	}
	if (c->format <= 0 || !c->uuid[0] || !c->manifest[0]) {
		log_err("open store %s: %s: format, uuid and manifest are required",
			root, STORE_CONF);
		rc = -EINVAL;
	} else if (c->format > STORE_FORMAT) {
		log_err("open store %s: store format %d is newer than this "
			"featurefs supports (%d)", root, c->format, STORE_FORMAT);
		rc = -EPROTO;
	}
	if (!c->compression[0])
		snprintf(c->compression, sizeof(c->compression), "none");
out:
	free(line);
	fclose(f);
	return rc;
}

int store_open(const char *path, struct store **out)
{
	struct store *s;
	unsigned char rnd[STORE_MOUNT_ID_LEN / 2];
	char real[PATH_MAX];
	struct statvfs vfs;
	int rc, i;

	if (!realpath(path, real)) {
		rc = -errno;
		log_err("open store %s: %s", path, strerror(-rc));
		return rc;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->root_fd = s->objects_fd = s->tmp_fd = s->lock_fd = -1;
	s->root = strdup(real);
	if (!s->root) {
		rc = -ENOMEM;
		goto fail;
	}
	s->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		rc = -errno;
		log_err("open store %s: %s", real, strerror(-rc));
		goto fail;
	}
	rc = read_conf(s->root_fd, real, &s->conf);
	if (rc < 0)
		goto fail;
	if (fstatvfs(s->root_fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
		s->read_only_fs = 1;
	s->objects_fd = openat(s->root_fd, "objects",
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->tmp_fd = openat(s->root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->objects_fd < 0 || s->tmp_fd < 0) {
		rc = -errno;
		log_err("open store %s: %s/: %s%s", real,
			s->objects_fd < 0 ? "objects" : "tmp", strerror(-rc),
			rc == -ENOENT ? " (a mount makes it again)" : "");
		goto fail;
	}
	rc = random_bytes(rnd, sizeof(rnd), "mount id");
	if (rc < 0)
		goto fail;
	for (i = 0; i < (int)sizeof(rnd); i++)
		snprintf(s->mount_id + 2 * i, 3, "%02x", rnd[i]);
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_unlock(s);
	if (s->tmp_fd >= 0)
		close(s->tmp_fd);
	if (s->objects_fd >= 0)
		close(s->objects_fd);
	if (s->root_fd >= 0)
		close(s->root_fd);
	free(s->root);
	free(s);
}

/* Parse the holder record of lock file `fd` into `h` (left empty when
 * there is none). */
static void parse_holder(int fd, struct store_holder *h)
{
	char text[8192];
	char *line, *save = NULL;
	ssize_t n;

	memset(h, 0, sizeof(*h));
	n = pread(fd, text, sizeof(text) - 1, 0);
	if (n <= 0)
		return;
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "pid=", 4) == 0)
			h->pid = (pid_t)atol(line + 4);
		else if (strncmp(line, "role=", 5) == 0)
			snprintf(h->role, sizeof(h->role), "%s", line + 5);
		else if (strncmp(line, "mount_id=", 9) == 0)
			snprintf(h->mount_id, sizeof(h->mount_id), "%s",
				 line + 9);
		else if (strncmp(line, "mountpoint=", 11) == 0)
			snprintf(h->mountpoint, sizeof(h->mountpoint), "%s",
				 line + 11);
	}
}

/* Read the holder record of lock file `fd` into `h`.  On a read-only
 * filesystem the record names its holder only if that process holds
 * the flock now (a mount through a writable path to the same store);
 * else it was written before the store became read-only, and /proc
 * names the mount that locks it there. */
static void read_holder(const struct store *s, int fd, struct store_holder *h)
{
	struct stat st;
	pid_t pid;

	parse_holder(fd, h);
	if (!s->read_only_fs)
		return;
	pid = fstat(fd, &st) == 0 ? proc_flock_holder(st.st_dev, st.st_ino)
				  : 0;
	if (pid > 0 && pid == h->pid)
		return;
	memset(h, 0, sizeof(*h));
	/* only a mount locks a store there (gc and fsck's repairs refuse
	 * it) */
	if (pid > 0) {
		h->pid = pid;
		snprintf(h->role, sizeof(h->role), "mount");
		proc_mount_of("fuse.featurefs", s->root, h->mountpoint,
			      sizeof(h->mountpoint));
	}
}

int store_lock_update(struct store *s, const char *role,
		      const char *mountpoint)
{
	char text[8192];
	int n, rc;

	if (s->lock_fd < 0)
		return -ENOLCK;
	if (s->read_only_fs)
		return 0; /* nobody can write there to need the record */
	n = snprintf(text, sizeof(text),
		     "pid=%ld\nrole=%s\nmount_id=%s\nmountpoint=%s\n",
		     (long)getpid(), role, s->mount_id,
		     mountpoint ? mountpoint : "");
	if (n < 0 || n >= (int)sizeof(text))
		return -ENAMETOOLONG;
	/* written over the block the empty record keeps, then cut to size:
	 * on a full filesystem a record of up to a block still fits */
	rc = pwrite_full(s->lock_fd, text, (size_t)n, 0);
	if (rc == 0 && ftruncate(s->lock_fd, n) < 0)
		rc = -errno;
	if (rc < 0)
		write_empty_record(s->lock_fd);
	s->unrecorded = rc < 0;
	return rc;
}

/* Open store.lock with `flags`, never through a link and only if it is
 * a regular file: the holder record is written there, and emptied at
 * unlock, wherever a link would lead.  -EINVAL, logged, otherwise. */
static int lock_file_open(struct store *s, int flags)
{
	struct stat st;
	int fd;

	fd = openat(s->root_fd, STORE_LOCK,
		    flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0 && errno != ELOOP)
		return -errno;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		log_err("store %s: %s is not a regular file (a symbolic link, "
			"a FIFO?); move it away", s->root, STORE_LOCK);
		return -EINVAL;
	}
	return fd;
}

/* Whether `fd`, just locked, is still the store's store.lock, and the
 * store still has its store.conf. */
static int lock_is_current(const struct store *s, int fd)
{
	struct stat held, named;

	return fstat(fd, &held) == 0 &&
	       fstatat(s->root_fd, STORE_LOCK, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
	       held.st_dev == named.st_dev && held.st_ino == named.st_ino &&
	       faccessat(s->root_fd, STORE_CONF, F_OK, 0) == 0;
}

int store_lock(struct store *s, const char *role, const char *mountpoint,
	       struct store_holder *holder)
{
	int fd, rc;

	if (s->lock_fd >= 0)
		return 0;
	fd = lock_file_open(s, s->read_only_fs ? O_RDONLY : O_RDWR | O_CREAT);
	if (fd == -ENOENT && s->read_only_fs)
		/* another path to the store may be writable, and a lock of
		 * anything else would not keep its users out */
		log_err("store %s: %s is missing, and cannot be made on a "
			"read-only filesystem: copy the store with it (init "
			"makes it)", s->root, STORE_LOCK);
	else if (fd < 0 && fd != -EINVAL) /* lock_file_open() said why */
		log_err("store %s: open %s: %s", s->root, STORE_LOCK,
			strerror(-fd));
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (rc != -EBUSY)
			log_err("store %s: lock %s: %s", s->root, STORE_LOCK,
				strerror(-rc));
		if (holder)
			read_holder(s, fd, holder);
		close(fd);
		return rc;
	}
	/* a mount that made the store and failed removes it again once it
	 * lets go of the lock: what was locked must still be the store */
	if (!lock_is_current(s, fd)) {
		log_err("store %s was removed while it was being locked (a "
			"mount that made it failed); nothing was done",
			s->root);
		close(fd);
		return -ESTALE;
	}
	s->lock_fd = fd;
	rc = store_lock_update(s, role, mountpoint);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		/* the flock is the lock; the record only names its holder,
		 * and a store whose disk is full must still mount to be
		 * read and collected */
		log_warn("store %s: %s has no room for its holder record (%s): "
			 "locked, but whoever finds it locked is not told by "
			 "whom until there is", s->root, STORE_LOCK,
			 strerror(-rc));
		rc = 0;
	}
	if (rc < 0) {
		log_err("store %s: write %s: %s", s->root, STORE_LOCK,
			strerror(-rc));
		store_unlock(s);
	}
	return rc;
}

void store_unlock(struct store *s)
{
	if (s->lock_fd < 0)
		return;
	if (!s->read_only_fs)
		write_empty_record(s->lock_fd);
	close(s->lock_fd); /* closing the last descriptor drops the flock */
	s->lock_fd = -1;
}

int store_check_one_fs(const struct store *s)
{
	struct stat objects, tmp;

	if (fstat(s->objects_fd, &objects) < 0 || fstat(s->tmp_fd, &tmp) < 0)
		return -errno;
	if (objects.st_dev == tmp.st_dev)
		return 0;
	log_err("store %s: objects/ and tmp/ are on different filesystems; "
		"objects are installed by a hard link from tmp/, so both must "
		"be on one (move the link that leads elsewhere)", s->root);
	return -EXDEV;
}

int store_health(const struct store *s, int writable)
{
	struct statvfs vfs;
	struct stat root;
	int fd;

	/* a store directory removed under the mount has no links left:
	 * what is written there is lost at unmount */
	if (fstat(s->root_fd, &root) < 0)
		return -errno;
	if (root.st_nlink == 0)
		return -ENOENT;
	if (!writable)
		return 0;
	if (faccessat(s->tmp_fd, ".", W_OK, AT_EACCESS) < 0)
		return -errno;
	if (fstatvfs(s->tmp_fd, &vfs) < 0)
		return -errno;
	if (vfs.f_bavail == 0)
		return -ENOSPC;
	/* a filesystem that stopped taking writes after an error (ext4's
	 * errors=remount-ro) still passes both: make a file, unnamed, as
	 * a write does */
	fd = openat(s->tmp_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == EIO || errno == EROFS || errno == ENOSPC ||
	    errno == EDQUOT)
		return -errno;
	return 0; /* no O_TMPFILE there, or out of descriptors: no verdict */
}

void store_holder_describe(const struct store *s,
			   const struct store_holder *holder, char *buf,
			   size_t len)
{
	if (holder->role[0])
		snprintf(buf, len, "pid %ld (featurefs %s)", (long)holder->pid,
			 holder->role);
	else if (s->read_only_fs)
		snprintf(buf, len, "another featurefs");
	else
		snprintf(buf, len, "a process that left no featurefs record "
			 "in " STORE_LOCK " (another program's flock, or a "
			 "featurefs out of disk space)");
}

int store_lock_probe(struct store *s, struct store_holder *holder)
{
	int fd, held = 0;

	if (s->lock_fd >= 0) {
		read_holder(s, s->lock_fd, holder);
		return 1;
	}
	fd = lock_file_open(s, O_RDONLY);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		held = 1;
		read_holder(s, fd, holder);
	} else {
		flock(fd, LOCK_UN);
	}
	close(fd);
	return held;
}

void store_object_relpath(const char *symbol, const char *key, char *buf,
			  size_t len)
{
	snprintf(buf, len, "objects/%s/%s" ENTRY_SUFFIX, symbol, key);
}

int store_remake_layout(const char *path)
{
	static const char *const dirs[] = { "objects", "tmp" };
	int root_fd, made = 0, rc = 0;
	size_t i;

	root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && rc == 0; i++) {
		if (mkdirat(root_fd, dirs[i], 0700) == 0) {
			made = 1;
			log_warn("store %s: %s/ was missing; made it again",
				 path, dirs[i]);
		} else if (errno != EEXIST) {
			rc = -errno;
		}
	}
	if (rc == 0 && made && fsync(root_fd) < 0)
		rc = -errno;
	close(root_fd);
	return rc;
}

/*
 * Make the store's directory `name` (tmp or objects) again when it was
 * removed behind the mount (a cleaner of old files took it while empty),
 * and point its descriptor `dirfd` at the new one: dup3() keeps the
 * number, so no other thread ever holds a closed descriptor.  0, or
 * -ENOENT when the directory `dirfd` names is still there.
 */
static int store_remake_dir(struct store *s, const char *name, int dirfd)
{
	struct stat st;
	int fd, rc;

	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (st.st_nlink > 0)
		return -ENOENT;
	if (mkdirat(s->root_fd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(s->root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = dup3(fd, dirfd, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0 && fsync(s->root_fd) < 0)
		rc = -errno;
	if (rc == 0)
		log_warn("store %s: %s/ was removed behind the mount; made "
			 "it again", s->root, name);
	return rc;
}

int store_tmp_create(struct store *s, const char *kind, char *name,
		     size_t len)
{
	uint64_t seq = __atomic_add_fetch(&s->tmp_seq, 1, __ATOMIC_RELAXED);
	const int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
	int fd;

	snprintf(name, len, "%s.%llu.%s", s->mount_id, (unsigned long long)seq,
		 kind);
	fd = openat(s->tmp_fd, name, flags, 0600);
	if (fd < 0 && errno == ENOENT &&
	    store_remake_dir(s, "tmp", s->tmp_fd) == 0)
		fd = openat(s->tmp_fd, name, flags, 0600);
	return fd < 0 ? -errno : fd;
}

int store_tmp_open_named(struct store *s, const char *name)
{
	if (!name[0] || name[0] == '.' || strchr(name, '/'))
		return -EINVAL;
	return open_regular(s->tmp_fd, name);
}

int store_tmp_unlink(struct store *s, const char *name)
{
	return unlinkat(s->tmp_fd, name, 0) < 0 ? -errno : 0;
}

/* Open directory `name` in `dirfd` without following a link: a symbol
 * directory replaced by a symlink must not send an open, link or unlink
 * out of the store.  -ENOTDIR when it is a link, or no directory. */
static int dir_open_nofollow(int dirfd, const char *name)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return errno == ELOOP ? -ENOTDIR : -errno;
	return fd;
}

/* How long an install waits for a descriptor the process has none of:
 * the writers in flight hold them, and give them back as they finish.
 * Failing instead would turn a write close() accepted into a miss. */
#define INSTALL_FD_WAIT_MS 2000

int store_object_install(struct store *s, const char *tmpname,
			 const char *symbol, const char *key)
{
	char leaf[KEY_MAX + sizeof(ENTRY_SUFFIX)];
	int created = 1, waited = 0, dirfd, rc;

	rc = mkdirat(s->objects_fd, symbol, 0700) < 0 ? -errno : 0;
	if (rc == -ENOENT &&
	    store_remake_dir(s, "objects", s->objects_fd) == 0)
		rc = mkdirat(s->objects_fd, symbol, 0700) < 0 ? -errno : 0;
	if (rc == -EEXIST)
		created = 0;
	else if (rc < 0)
		return rc;
	rc = fault_inject("publish_rename");
	if (rc < 0)
		return rc;
	while ((dirfd = dir_open_nofollow(s->objects_fd, symbol)) == -EMFILE ||
	       dirfd == -ENFILE) {
		if (waited >= INSTALL_FD_WAIT_MS)
			break;
		usleep(10000);
		waited += 10;
	}
	if (dirfd < 0) {
		log_err("publish %s/%s: objects/%s: %s", symbol, key, symbol,
			dirfd == -ENOTDIR ? "not a directory (a symlink?); "
					    "fsck -y moves it away"
					  : strerror(-dirfd));
		return dirfd;
	}
	snprintf(leaf, sizeof(leaf), "%s" ENTRY_SUFFIX, key);
	/* renameat2(RENAME_NOREPLACE) would be exact, but is missing on some
	 * network filesystems; linkat fails with EEXIST the same way. */
	if (linkat(s->tmp_fd, tmpname, dirfd, leaf, 0) < 0) {
		rc = -errno;
		close(dirfd);
		return rc;
	}
	/* The object is in place.  What follows makes that durable; failing
	 * the install for it would leave an object no row names. */
	rc = fault_inject("objects_fsync");
	if (rc == 0 && fsync(dirfd) < 0)
		rc = -errno;
	close(dirfd);
	if (rc == 0 && created)
		rc = fsync(s->objects_fd) < 0 ? -errno : 0;
	if (rc < 0)
		log_warn("publish %s/%s: fsync of objects/%s: %s; published, "
			 "but a crash before the filesystem commits its "
			 "directory could lose it", symbol, key, symbol,
			 strerror(-rc));
	return 0;
}

int store_parent_open(struct store *s, const char *rel, const char **leaf)
{
	char dir[NAME_MAX + 1];
	const char *rest = rel, *slash;
	int base = s->root_fd, fd;

	if (strncmp(rel, "objects/", 8) == 0) {
		base = s->objects_fd;
		rest = rel + 8;
	} else if (strncmp(rel, "tmp/", 4) == 0) {
		base = s->tmp_fd;
		rest = rel + 4;
	}
	slash = strchr(rest, '/');
	if (!slash) {
		*leaf = rest;
		fd = fcntl(base, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	if (slash == rest || (size_t)(slash - rest) > NAME_MAX ||
	    strchr(slash + 1, '/'))
		return -EINVAL;
	memcpy(dir, rest, (size_t)(slash - rest));
	dir[slash - rest] = '\0';
	*leaf = slash + 1;
	return dir_open_nofollow(base, dir);
}

/* Open the symbol directory of `relpath`, "objects/<symbol>/<key>.parquet"
 * with names that pass names.h, and point `leaf` at the file's name in
 * it.  Paths come from manifest rows: a row must never send an open or
 * an unlink outside objects/ ("../", an absolute path, a symlink);
 * -EINVAL, logged, for any other path. */
static int object_dir_open(struct store *s, const char *relpath,
			   const char *op, const char **leaf)
{
	char sym[SYMBOL_MAX + 1], key[KEY_MAX + 1];
	const char *p = relpath + 8, *slash = NULL;

	if (strncmp(relpath, "objects/", 8) == 0)
		slash = strchr(p, '/');
	if (!slash || slash == p || (size_t)(slash - p) > SYMBOL_MAX)
		goto refuse;
	memcpy(sym, p, (size_t)(slash - p));
	sym[slash - p] = '\0';
	if (name_check_symbol(sym) < 0 ||
	    name_parse_child(slash + 1, key) != NAME_ENTRY)
		goto refuse;
	return store_parent_open(s, relpath, leaf);
refuse:
	log_err("%s %s: not an object path; refused", op, relpath);
	return -EINVAL;
}

int store_object_open(struct store *s, const char *relpath)
{
	const char *leaf;
	int dirfd, fd;

	dirfd = object_dir_open(s, relpath, "open", &leaf);
	if (dirfd < 0) /* a symbol directory that is a link: no object */
		return dirfd == -ENOTDIR ? -EINVAL : dirfd;
	fd = open_regular(dirfd, leaf);
	close(dirfd);
	return fd;
}

int store_object_unlink(struct store *s, const char *relpath)
{
	const char *leaf;
	int dirfd, rc;

	dirfd = object_dir_open(s, relpath, "unlink", &leaf);
	if (dirfd < 0)
		return dirfd;
	rc = unlinkat(dirfd, leaf, 0) < 0 ? -errno : 0;
	close(dirfd);
	return rc;
}

#define UNLINK_THREADS 8
#define UNLINKS_PER_THREAD 64	/* fewer are not worth a thread */

struct unlink_work {
	struct store *s;
	const char *const *paths;
	int *rcs;
	size_t n;
	size_t next;		/* atomic: the next index to take */
};

static void *unlink_worker(void *arg)
{
	struct unlink_work *w = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED)) < w->n)
		w->rcs[i] = w->paths[i] ? store_object_unlink(w->s, w->paths[i])
					: 0;
	return NULL;
}

void store_objects_unlink(struct store *s, const char *const *paths,
			  size_t n, int *rcs)
{
	struct unlink_work w = { s, paths, rcs, n, 0 };
	pthread_t helpers[UNLINK_THREADS - 1];
	size_t want = n / UNLINKS_PER_THREAD, started = 0, i;

	if (want > UNLINK_THREADS - 1)
		want = UNLINK_THREADS - 1;
	for (i = 0; i < want; i++)
		if (pthread_create(&helpers[started], NULL, unlink_worker,
				   &w) == 0)
			started++;
	unlink_worker(&w); /* this thread takes its share, or all of it */
	for (i = 0; i < started; i++)
		pthread_join(helpers[i], NULL);
}

int store_symbol_dir_sync(struct store *s, const char *symbol)
{
	int fd = dir_open_nofollow(s->objects_fd, symbol), rc;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	rc = fault_inject("symbol_dir_sync");
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void store_symbol_dir_remove(struct store *s, const char *symbol)
{
	if (unlinkat(s->objects_fd, symbol, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
		log_warn("remove objects/%s: %s", symbol, strerror(errno));
}
