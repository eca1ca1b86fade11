/*
 * watchdog.c - aborting a FUSE connection nobody will serve (watchdog.h).
 *
 * The kernel names a connection by the device number of its mount, and
 * offers to abort it through /sys/fs/fuse/connections/<number>/abort
 * (fusectl, writable by whoever mounted).  The watchdog is a child with
 * nothing open but stdio that sleeps until the daemon's main thread
 * dies (PR_SET_PDEATHSIG).  A daemon that exits, cleanly or killed, is
 * gone a moment later; one that is still there after GRACE_US has a
 * thread that cannot leave the kernel, and only the abort frees it.  A
 * daemon that crashes aborts its connection itself, from its handler of
 * the crash's signal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "watchdog.h"

#define FUSECTL_DIR "/sys/fs/fuse/connections"
#define GRACE_US (3 * 1000000)
#define POLL_US 100000

unsigned watchdog_connection(const struct proc_mount *m)
{
	/* the kernel's dev_t: minor in the low 20 bits */
	return m->id ? m->major << 20 | m->minor : 0;
}

int watchdog_abort(unsigned conn)
{
	char path[64];
	FILE *f;
	int rc = 0;

	if (!conn)
		return -ENOENT;
	snprintf(path, sizeof(path), FUSECTL_DIR "/%u/abort", conn);
	f = fopen(path, "we");
	if (!f && errno == ENOENT &&
	    mount("fusectl", FUSECTL_DIR, "fusectl", 0, NULL) == 0)
		f = fopen(path, "we");
	if (!f)
		return -errno;
	if (fputs("1\n", f) == EOF)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Whether a thread of process `pid` is neither dead nor a zombie. */
static int process_lingers(pid_t pid)
{
	char path[64], buf[512], *state;
	struct dirent *de;
	DIR *d;
	int live = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!live && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat",
			 (int)pid, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		/* "tid (comm) S ...": the state follows the last ')' */
		if (fgets(buf, sizeof(buf), f) && (state = strrchr(buf, ')')))
			live = state[1] == ' ' && state[2] != 'Z' &&
			       state[2] != 'X';
		fclose(f);
	}
	closedir(d);
	return live;
}

static void __attribute__((noreturn))
watchdog_main(pid_t daemon_pid, unsigned conn)
{
	sigset_t wake;
	int waited, rc;

	prctl(PR_SET_NAME, "featurefs-watch");
	/* what the daemon's process group is sent is for the daemon */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&wake);
	sigaddset(&wake, SIGUSR1);
	sigprocmask(SIG_BLOCK, &wake, NULL);
	/* /dev/fuse above all: a copy here would keep the mount alive */
	close_range(3, ~0U, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0 && getppid() == daemon_pid)
		while (sigwaitinfo(&wake, NULL) < 0)
			;
	for (waited = 0; waited < GRACE_US; waited += POLL_US) {
		if (!process_lingers(daemon_pid))
			_exit(0);
		usleep(POLL_US);
	}
	rc = watchdog_abort(conn);
	if (rc < 0)
		log_err("daemon %d died with a thread stuck in the kernel; "
			"aborting FUSE connection %u: %s (umount -f the mount)",
			(int)daemon_pid, conn, strerror(-rc));
	else
		log_warn("daemon %d died with a thread stuck in the kernel: "
			 "aborted FUSE connection %u", (int)daemon_pid, conn);
	_exit(0);
}

/*
 * A crash (SIGSEGV, SIGABRT, ...) dumps core only once every thread has
 * stopped, whatever the core size limit: one stuck in the kernel never
 * does, the main thread never dies, and the watchdog is never woken.  So
 * the crashing daemon aborts its own connection first, from the signal
 * handler (open and write are async-signal-safe), then lets the signal
 * take its course.  The one piece of state a handler needs is here.
 */
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE,
				     SIGABRT };

static struct watchdog_crash {
	char abort_path[64];
	struct sigaction old[sizeof(crash_signals) / sizeof(crash_signals[0])];
} watchdog_crash;

static void crash_handler(int sig, siginfo_t *info, void *ucontext)
{
	int fd = open(watchdog_crash.abort_path, O_WRONLY | O_CLOEXEC);
	size_t i;

	(void)ucontext;
	if (fd >= 0) {
		if (write(fd, "1\n", 2) < 0) {
			/* nothing more can be done from here */
		}
		close(fd);
	}
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		if (crash_signals[i] == sig)
			sigaction(sig, &watchdog_crash.old[i], NULL);
	/* a fault comes back as the instruction runs again, and abort(3)
	 * raises its signal again; one sent by kill(2) is raised anew */
	if (info->si_code <= 0)
		raise(sig);
}

static void crash_handlers_install(unsigned conn)
{
	struct sigaction sa;
	size_t i;

	snprintf(watchdog_crash.abort_path, sizeof(watchdog_crash.abort_path),
		 FUSECTL_DIR "/%u/abort", conn);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = crash_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &sa, &watchdog_crash.old[i]);
}

int watchdog_start(unsigned conn)
{
	pid_t daemon_pid = getpid(), pid;

	if (!conn)
		return -ENOENT;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		watchdog_main(daemon_pid, conn);
	crash_handlers_install(conn);
	return 0;
}
