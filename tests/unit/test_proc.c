/*
 * test_proc.c - what /proc tells about a writer's process tree: a child
 * holding the file open for writing, or mapping it shared and writable,
 * counts; a reading descriptor, a private map, another file or the same
 * file on another mount does not.  And whether a process is stopped.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "unit.h"

enum hold { HOLD_WRITE_FD, HOLD_READ_FD, HOLD_SHARED_MAP, HOLD_PRIVATE_MAP };

/* Fork a child that holds `path` as `how`, then waits; the parent keeps
 * no descriptor of it.  Returns the child's pid once it holds it. */
static pid_t child_holding(const char *path, enum hold how)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = open(path, how == HOLD_WRITE_FD || how == HOLD_SHARED_MAP
					    ? O_RDWR : O_RDONLY);

		if (how == HOLD_SHARED_MAP || how == HOLD_PRIVATE_MAP) {
			if (mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				 how == HOLD_SHARED_MAP ? MAP_SHARED
							: MAP_PRIVATE,
				 fd, 0) == MAP_FAILED)
				_exit(1);
			close(fd);
		}
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (pid < 0 || read(ready[0], &c, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

/* The mount `path` is on, as /proc names it. */
static struct proc_mount mount_of(const char *path)
{
	struct proc_mount m = { 0, 0, 0 };
	char info[64], line[128];
	struct stat st;
	FILE *f;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return m;
	snprintf(info, sizeof(info), "/proc/self/fdinfo/%d", fd);
	f = fopen(info, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "mnt_id: %d", &m.id);
	if (f)
		fclose(f);
	close(fd);
	m.major = major(st.st_dev);
	m.minor = minor(st.st_dev);
	return m;
}

/* proc_tree_writes_file() (or, with `maps_only`, whether
 * proc_tree_maps_file() names the child) while a child holds `path`,
 * asked of it on `mount`. */
static int tree_writes(const char *path, const struct proc_mount *mount,
		       enum hold how, const char *suffix, int maps_only)
{
	struct proc_file pf = { mount, 0, suffix, 0 };
	struct stat st;
	pid_t child;
	int found;

	if (stat(path, &st) < 0)
		return -1;
	pf.ino = (uint64_t)st.st_ino;
	child = child_holding(path, how);
	if (child < 0)
		return -1;
	if (maps_only)
		found = proc_tree_maps_file(getpid(), &pf) == child;
	else
		found = proc_tree_writes_file(getpid(), &pf);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return found;
}

/* proc_writes_file() of a descriptor this process holds on `path` once
 * `path` is unlinked, its name marked " (deleted)" then, told that such a
 * name is another file's (`deleted_is_other`) or not.  `path` is made
 * again, a new file, for the checks after. */
static int unlinked_writes(const char *path, const struct proc_mount *mount,
			   const char *suffix, int deleted_is_other)
{
	struct proc_file pf = { mount, 0, suffix, deleted_is_other };
	int fd = open(path, O_RDWR), again, found = -1;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || unlink(path) < 0)
		goto out;
	pf.ino = (uint64_t)st.st_ino;
	found = proc_writes_file(getpid(), &pf);
	again = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (again < 0)
		found = -1;
	else
		close(again);
out:
	if (fd >= 0)
		close(fd);
	return found;
}

/* proc_is_stopped() of a child stopped, then continued. */
static void check_stopped(void)
{
	pid_t child = fork();
	int status;

	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECK(child > 0);
	CHECK_INT(proc_is_stopped(child), 0);
	kill(child, SIGSTOP);
	CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status));
	CHECK_INT(proc_is_stopped(child), 1);
	kill(child, SIGCONT);
	CHECK(waitpid(child, &status, WCONTINUED) == child &&
	      WIFCONTINUED(status));
	CHECK_INT(proc_is_stopped(child), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* gone: /proc cannot tell */
	CHECK_INT(proc_is_stopped(child), 0);
}

int main(void)
{
	char dir[] = "/tmp/featurefs-test-proc-XXXXXX", sym[64], path[96];
	const char *name = "/AAPL/0123456789abcdef.parquet";
	struct proc_mount here, bound, other;
	struct proc_file nobody = { NULL, 1, name, 0 };
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sym, sizeof(sym), "%s/AAPL", dir);
	snprintf(path, sizeof(path), "%s/0123456789abcdef.parquet", sym);
	CHECK(mkdir(sym, 0700) == 0);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 4096) == 0);
	close(fd);

	here = mount_of(path);
	CHECK(here.id > 0);
	/* a bind mount, or the mount's copy in another namespace: another
	 * id, the same device; another mount: another device */
	bound = here;
	bound.id = here.id + 1000000;
	other = bound;
	other.minor = here.minor + 1;

	CHECK_INT(proc_tgid_of(getpid()), getpid());
	CHECK_INT(proc_parent_of(getpid()), getppid());
	CHECK_INT(tree_writes(path, &here, HOLD_WRITE_FD, name, 0), 1);
	CHECK_INT(tree_writes(path, &here, HOLD_SHARED_MAP, name, 0), 1);
	CHECK_INT(tree_writes(path, &here, HOLD_READ_FD, name, 0), 0);
	CHECK_INT(tree_writes(path, &here, HOLD_PRIVATE_MAP, name, 0), 0);
	CHECK_INT(tree_writes(path, &bound, HOLD_WRITE_FD, name, 0), 1);
	CHECK_INT(tree_writes(path, &bound, HOLD_SHARED_MAP, name, 0), 1);
	CHECK_INT(tree_writes(path, NULL, HOLD_WRITE_FD, name, 0), 1);
	/* the same inode and name on another mount is another file */
	CHECK_INT(tree_writes(path, &other, HOLD_WRITE_FD, name, 0), 0);
	CHECK_INT(tree_writes(path, &other, HOLD_SHARED_MAP, name, 0), 0);
	/* the same inode under another name is another file */
	CHECK_INT(tree_writes(path, &here, HOLD_WRITE_FD,
			      "/MSFT/0123456789abcdef.parquet", 0), 0);
	/* a rename looks at shared writable maps only, and names the mapper */
	CHECK_INT(tree_writes(path, &here, HOLD_SHARED_MAP, name, 1), 1);
	CHECK_INT(tree_writes(path, &here, HOLD_WRITE_FD, name, 1), 0);
	CHECK_INT(tree_writes(path, &here, HOLD_PRIVATE_MAP, name, 1), 0);
	/* a name marked deleted is the file's, unless an earlier life of
	 * the name may be the one so marked */
	CHECK_INT(unlinked_writes(path, &here, name, 0), 1);
	CHECK_INT(unlinked_writes(path, &here, name, 1), 0);
	check_stopped();
	/* nobody: the parent holds nothing itself */
	CHECK_INT(proc_tree_writes_file(getpid(), &nobody), 0);
	CHECK_INT(proc_writes_file(getpid(), &nobody), 0);

	unlink(path);
	rmdir(sym);
	rmdir(dir);
	return unit_report();
}
