/*
 * proc.c - what /proc says about the processes that use a mount.
 *
 * FUSE names the thread behind a request and nothing of the descriptors
 * behind it.  A writer's close(2) ends its writing only if nothing else
 * holds the same open file: a child it started to write into it
 * (subprocess.Popen(stdout=f) and then f.close()), a dup, or a shared
 * writable map (numpy.memmap closes its descriptor once the map is made).
 * Those are read from /proc here: when a close finds the content
 * invalid, when a process opens an entry in flight for writing, and
 * (maps only) when a rename publishes a scratch file.  A descriptor or
 * map counts only on the mount asked about: the same name on another
 * mount, or on an earlier mount of the store, has the same inode
 * number.
 * Reading /proc never reaches a filesystem: links and maps are names the
 * kernel keeps.  So is /proc/self/mountinfo, which says what is mounted
 * where without asking a mount whose daemon may not answer.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sysmacros.h>

#include "proc.h"

/* Undo the octal escapes of a /proc/self/mountinfo field in place. */
static void mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* One line of /proc/self/mountinfo, "id parent maj:min root mountpoint
 * opts [optional...] - fstype source superopts", into `m`, `mp` and
 * `src` (PATH_MAX + 1 bytes each) and `type` (64): 1, or 0 if it is not
 * one. */
static int mountinfo_parse(const char *line, struct proc_mount *m, char *mp,
			   char *type, char *src)
{
	const char *tail;

	if (sscanf(line, "%d %*s %u:%u %*s %4096s", &m->id, &m->major,
		   &m->minor, mp) != 4)
		return 0;
	tail = strstr(line, " - ");
	if (!tail || sscanf(tail, " - %63s %4096s", type, src) != 2)
		return 0;
	mountinfo_unescape(mp);
	mountinfo_unescape(src);
	return 1;
}

/* The last mount in /proc/self/mountinfo (the one on top) whose
 * mountpoint, type and source are those given, each when not NULL:
 * 1 with its fields in `m`, `mp_out` and `src_out` (PATH_MAX + 1 bytes)
 * and `type_out` (64), each when not NULL; 0 when there is none. */
static int mountinfo_last(const char *mountpoint, const char *fstype,
			  const char *source, struct proc_mount *m,
			  char *mp_out, char *type_out, char *src_out)
{
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char mp[PATH_MAX + 1], type[64], src[PATH_MAX + 1];
		struct proc_mount here;

		if (!mountinfo_parse(line, &here, mp, type, src) ||
		    (mountpoint && strcmp(mp, mountpoint) != 0) ||
		    (fstype && strcmp(type, fstype) != 0) ||
		    (source && strcmp(src, source) != 0))
			continue;
		found = 1;
		if (m)
			*m = here;
		if (mp_out)
			snprintf(mp_out, PATH_MAX + 1, "%s", mp);
		if (type_out)
			snprintf(type_out, 64, "%s", type);
		if (src_out)
			snprintf(src_out, PATH_MAX + 1, "%s", src);
	}
	free(line);
	fclose(f);
	return found;
}

int proc_mount_at(const char *mountpoint, struct proc_mount *m,
		  char *fstype, char *source)
{
	return mountinfo_last(mountpoint, NULL, NULL, m, NULL, fstype, source);
}

int proc_mount_of(const char *fstype, const char *source, char *mountpoint,
		  size_t len)
{
	char mp[PATH_MAX + 1];

	if (!mountinfo_last(NULL, fstype, source, NULL, mp, NULL, NULL))
		return 0;
	snprintf(mountpoint, len, "%s", mp);
	return 1;
}

pid_t proc_flock_holder(dev_t dev, ino_t ino)
{
	char *line = NULL;
	size_t cap = 0;
	pid_t holder = 0;
	FILE *f = fopen("/proc/locks", "re");

	if (!f)
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a waiter's
	 * line has " -> " after the number */
	while (!holder && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		unsigned long long i;
		long pid;

		if (sscanf(line, "%*d: FLOCK %*s %*s %ld %x:%x:%llu", &pid,
			   &maj, &min, &i) == 4 &&
		    makedev(maj, min) == dev && (ino_t)i == ino)
			holder = (pid_t)pid;
	}
	free(line);
	fclose(f);
	return holder;
}

/* The fields of /proc/PID/stat after "pid (comm) " in `buf` (`len`
 * bytes): the state first.  NULL when it cannot be read. */
static const char *stat_fields(pid_t pid, char *buf, size_t len)
{
	char path[64], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	/* comm may hold anything, ')' included */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' ? paren + 2 : NULL;
}

/* Field `field` (1-based, as proc(5) counts) of the fields stat_fields()
 * returned, which start at field 3; NULL when there are fewer. */
static const char *stat_field(const char *f, int field)
{
	int at;

	for (at = 3; f && at < field; at++) {
		f = strchr(f, ' ');
		f = f ? f + 1 : NULL;
	}
	return f && *f ? f : NULL;
}

uint64_t proc_start_time(pid_t pid)
{
	char buf[1024];
	const char *f = stat_field(stat_fields(pid, buf, sizeof(buf)), 22);

	return f ? strtoull(f, NULL, 10) : 0;
}

int proc_is_task(pid_t pid, uint64_t start)
{
	return start == 0 || proc_start_time(pid) == start;
}

int proc_is_stopped(pid_t pid)
{
	char buf[1024];
	const char *f = stat_fields(pid, buf, sizeof(buf));

	return f && (f[0] == 'T' || f[0] == 't');
}

#define PF_EXITING 0x00000004 /* the kernel's flag of a dying task */

int proc_killed_by(pid_t pid)
{
	char buf[1024];
	const char *f = stat_fields(pid, buf, sizeof(buf));
	const char *flags = stat_field(f, 9), *code = stat_field(f, 52);

	/* exit_code is set as a task starts to exit, before it closes the
	 * task's files */
	if (!flags || !code || !(strtoull(flags, NULL, 10) & PF_EXITING))
		return 0;
	return atoi(code) & 0x7f;
}

/* Processes looked at in one writer's tree, the writer included. */
#define PROC_TREE_MAX 256

/* Field `name` ("Tgid:") of /proc/PID/status, or `dflt` when /proc
 * cannot tell. */
static pid_t status_field(pid_t pid, const char *name, pid_t dflt)
{
	char path[64], line[128];
	size_t len = strlen(name);
	pid_t v = dflt;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return dflt;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) == 0) {
			v = (pid_t)atol(line + len);
			break;
		}
	}
	fclose(f);
	return v;
}

pid_t proc_tgid_of(pid_t pid)
{
	return status_field(pid, "Tgid:", pid);
}

pid_t proc_parent_of(pid_t pid)
{
	return status_field(pid, "PPid:", 0);
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
	size_t slen = strlen(suffix);

	return len >= slen && memcmp(s + len - slen, suffix, slen) == 0;
}

#define DELETED_MARK " (deleted)"

/* Whether the name the kernel gives an open file (a descriptor's link, a
 * map's path) is one of file `pf`: its suffix, or that and " (deleted)",
 * which the kernel adds once the dentry is unhashed (an invalidation of
 * the name, as much as an unlink) though the file is still that one. */
static int names_file(const char *s, size_t len, const struct proc_file *pf)
{
	size_t mark = sizeof(DELETED_MARK) - 1;

	if (ends_with(s, len, pf->suffix))
		return 1;
	return !pf->deleted_is_other && ends_with(s, len, DELETED_MARK) &&
	       ends_with(s, len - mark, pf->suffix);
}

/* Whether mount `id`, as process `pid` sees it, is mount `m`: the same
 * mount, or one of the same device (a bind mount, or its copy in the
 * process's mount namespace).  A mount detached since (a lazy unmount)
 * is no longer listed, and only the same mount matches it. */
static int mount_is(pid_t pid, int id, const struct proc_mount *m)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	if (!m || id == m->id)
		return 1;
	snprintf(path, sizeof(path), "/proc/%ld/mountinfo", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		struct proc_mount here;

		if (sscanf(line, "%d %*s %u:%u", &here.id, &here.major,
			   &here.minor) == 3 && here.id == id)
			found = here.major == m->major && here.minor == m->minor
					? 1
					: -1;
	}
	free(line);
	fclose(f);
	return found > 0;
}

/* Whether descriptor `name` of process `pid` (its /proc fd and fdinfo
 * directories open as `fd_dir` and `info_dir`) is open for writing on
 * file `pf`.  fdinfo's "ino:" and "mnt_id:" lines are checked where the
 * kernel has them. */
static int fd_writes_file(pid_t pid, int fd_dir, int info_dir,
			  const char *name, const struct proc_file *pf)
{
	char target[PATH_MAX], line[128];
	unsigned long long fd_ino = pf->ino;
	unsigned int flags = 0;
	int info, found_flags = 0, mnt_id = pf->mount ? pf->mount->id : 0;
	ssize_t len;
	FILE *f;

	len = readlinkat(fd_dir, name, target, sizeof(target) - 1);
	if (len <= 0 || !names_file(target, (size_t)len, pf))
		return 0;
	info = openat(info_dir, name, O_RDONLY | O_CLOEXEC);
	if (info < 0)
		return 0;
	f = fdopen(info, "re");
	if (!f) {
		close(info);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "flags: %o", &flags) == 1)
			found_flags = 1;
		else if (sscanf(line, "ino: %llu", &fd_ino) != 1)
			sscanf(line, "mnt_id: %d", &mnt_id);
	}
	fclose(f);
	return found_flags && (flags & O_ACCMODE) != O_RDONLY &&
	       fd_ino == pf->ino && mount_is(pid, mnt_id, pf->mount);
}

/* Whether process `pid` has a writable descriptor on file `pf`. */
static int fds_write_file(pid_t pid, const struct proc_file *pf)
{
	char path[64];
	int info_dir, found = 0;
	struct dirent *d;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	fds = opendir(path);
	if (!fds)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/fdinfo", (long)pid);
	info_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (info_dir >= 0 && !found && (d = readdir(fds)))
		found = d->d_name[0] != '.' &&
			fd_writes_file(pid, dirfd(fds), info_dir, d->d_name,
				       pf);
	if (info_dir >= 0)
		close(info_dir);
	closedir(fds);
	return found;
}

/* Whether process `pid` maps file `pf` shared and writable
 * ("start-end perms offset dev inode   path" in /proc/PID/maps, the
 * device in hexadecimal). */
static int maps_write_file(pid_t pid, const struct proc_file *pf)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		unsigned long long map_ino;
		unsigned major, minor;
		char perms[8];
		int at = 0;

		if (sscanf(line, "%*s %7s %*s %x:%x %llu %n", perms, &major,
			   &minor, &map_ino, &at) < 4 || at == 0 ||
		    strlen(perms) < 4)
			continue;
		found = perms[1] == 'w' && perms[3] == 's' &&
			map_ino == pf->ino &&
			(!pf->mount || (major == pf->mount->major &&
					minor == pf->mount->minor)) &&
			names_file(line + at, strcspn(line + at, "\n"), pf);
	}
	free(line);
	fclose(f);
	return found;
}

/* Append the children of every thread of `pid` to `pids`, which holds
 * `n` and may hold `max`; returns the new count. */
static size_t add_children(pid_t pid, pid_t *pids, size_t n, size_t max)
{
	char path[PATH_MAX];
	struct dirent *d;
	long child;
	DIR *tasks;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	tasks = opendir(path);
	if (!tasks)
		return n;
	while (n < max && (d = readdir(tasks))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task/%s/children",
			 (long)pid, d->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (n < max && fscanf(f, "%ld", &child) == 1)
			pids[n++] = (pid_t)child;
		fclose(f);
	}
	closedir(tasks);
	return n;
}

/* The pid of the first process of `tgid`'s tree that maps the file
 * shared and writable, or (with `fds`) has a writable descriptor on it;
 * 0 when none does. */
static pid_t tree_find_writer(pid_t tgid, const struct proc_file *pf,
			      int fds)
{
	pid_t pids[PROC_TREE_MAX];
	size_t n = 1, i;

	pids[0] = tgid;
	for (i = 0; i < n; i++) {
		if ((fds && fds_write_file(pids[i], pf)) ||
		    maps_write_file(pids[i], pf))
			return pids[i];
		n = add_children(pids[i], pids, n, PROC_TREE_MAX);
	}
	return 0;
}

int proc_writes_file(pid_t tgid, const struct proc_file *pf)
{
	return fds_write_file(tgid, pf);
}

int proc_tree_writes_file(pid_t tgid, const struct proc_file *pf)
{
	return tree_find_writer(tgid, pf, 1) != 0;
}

pid_t proc_tree_maps_file(pid_t tgid, const struct proc_file *pf)
{
	return tree_find_writer(tgid, pf, 0);
}
