/*
 * ctl.c - the control socket: a mount serves one-line requests from its
 * own maintenance commands (server), and those commands send them
 * (client).  The socket lives in the store directory, which is 0700; the
 * peer's uid is checked as well.  Paths go through /proc/self/fd so a
 * deep store path cannot overflow sun_path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "control.h"
#include "ctl.h"
#include "daemon.h"
#include "fault.h"
#include "ffs.h"
#include "log.h"
#include "proc.h"

#define CTL_LINE_MAX 512
/* how long a client has to send its whole request line */
#define CTL_TIMEOUT_S 5
/* how long a command waits on a daemon that is stopped */
#define CTL_STOPPED_S 5
/* how long accept() waits for descriptors to come back */
#define CTL_ACCEPT_RETRY_MS 100

static void socket_addr(int root_fd, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s",
		 root_fd, CTL_SOCKET);
}

/* Send all `len` bytes on socket `fd`: 0 or -errno (-EPIPE, not SIGPIPE,
 * when the peer has closed). */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Parse the arguments of "gc [older_than=N] [max_size=N] dry_run=B
 * json=B ..." into `o`, whose defaults are the mount's own GC options. */
static int parse_gc_args(struct ffs *ffs, char *args, struct gc_options *o,
			 int *json)
{
	char *word, *save = NULL;

	memset(o, 0, sizeof(*o));
	o->older_than_us = ffs->opt.gc_older_than_us;
	o->max_size = ffs->opt.gc_max_size;
	*json = 0;
	for (word = strtok_r(args, " ", &save); word;
	     word = strtok_r(NULL, " ", &save)) {
		char *name = word, *value = strchr(word, '='), *end;
		long long v;

		if (!value || value[1] < '0' || value[1] > '9')
			return -EINVAL;
		*value++ = '\0';
		errno = 0;
		v = strtoll(value, &end, 10);
		if (*end || errno)
			return -EINVAL;
		if (strcmp(name, "older_than") == 0)
			o->older_than_us = v;
		else if (strcmp(name, "max_size") == 0)
			o->max_size = (uint64_t)v;
		else if (strcmp(name, "dry_run") == 0)
			o->dry_run = v != 0;
		else if (strcmp(name, "json") == 0)
			*json = v != 0;
		else if (strcmp(name, "orphans") == 0)
			o->scan_orphans = v != 0;
		else if (strcmp(name, "list") == 0 && v <= GC_LIST_TEXT)
			o->list = (int)v;
		else
			return -EINVAL;
	}
	return 0;
}

/* Whether the client of `fd` has gone: a command killed, or one that
 * gave up on a stopped daemon, no longer wants its request carried out. */
static int client_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
}

static void serve_gc(struct ffs *ffs, int fd, char *args, struct strbuf *out)
{
	struct gc_result res = { 0 };
	struct gc_options o;
	int json, rc;

	if (parse_gc_args(ffs, args, &o, &json) < 0) {
		log_warn("control socket: refused a gc request whose "
			 "arguments are not name=number");
		sb_adds(out, "16 message\nbad control request\n");
		return;
	}
	if (client_gone(fd)) {
		log_info("control socket: a gc request was withdrawn before "
			 "it could start");
		return;
	}
	if (ffs->opt.read_only && !o.dry_run) {
		log_info("gc: refused through a read-only mount");
		sb_addf(out, "1 message\ngc: %s is mounted read-only (-o "
			     "ro): nothing is removed through it (--dry-run "
			     "lists what would go)\n", ffs->mountpoint);
		return;
	}
	rc = daemon_gc_pass(ffs, &o, &res);
	if (rc < 0) {
		sb_addf(out, "1 message\ngc failed: %s\n", strerror(-rc));
	} else {
		/* an interrupted pass (the mount stopping) did not finish */
		sb_adds(out, res.interrupted ? "1\n" : "0\n");
		if (json)
			gc_render_json(out, &res, &o);
		else
			gc_render_text(out, &res, &o);
	}
	gc_result_release(&res);
}

/* "stats [json=1]": what /.featurefs/stats or stats.json shows. */
static void serve_stats(struct ffs *ffs, char *args, struct strbuf *out)
{
	int json = strcmp(args, "json=1") == 0;

	if (!json && args[0] && strcmp(args, "json=0") != 0) {
		log_warn("control socket: refused a stats request with "
			 "arguments other than json=0|1");
		sb_adds(out, "16 message\nbad control request\n");
		return;
	}
	sb_adds(out, "0\n");
	control_render_stats(ffs, json, out);
}

/*
 * Read client `fd`'s request line into `line` (`size` bytes), its newline
 * dropped.  0; -ETIMEDOUT when the whole line has not come within
 * CTL_TIMEOUT_S seconds, -ESHUTDOWN when the mount stops meanwhile (a
 * slow client must not hold up the unmount), -E2BIG when it is too long,
 * -EPIPE when the client closed before its newline, or another -errno.
 */
static int read_request(struct ffs *ffs, int fd, char *line, size_t size)
{
	int64_t deadline = mono_us() + CTL_TIMEOUT_S * 1000000LL;
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		/* written once at the stop, never drained */
		{ .fd = ffs->ctl_wake[0], .events = POLLIN },
	};
	size_t got = 0;
	char *nl;

	for (;;) {
		int64_t left = deadline - mono_us();
		ssize_t n;
		int rc;

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(p, 2, (int)((left + 999) / 1000));
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents)
			return -ESHUTDOWN;
		if (rc <= 0)
			continue;
		n = read(fd, line + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
		line[got] = '\0';
		nl = memchr(line, '\n', got);
		if (nl) {
			*nl = '\0';
			return 0;
		}
		if (got == size - 1)
			return -E2BIG;
	}
}

static void serve_client(struct ffs *ffs, int fd)
{
	struct strbuf out = STRBUF_INIT;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char line[CTL_LINE_MAX], *verb, *args;
	int rc;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != ffs->uid)) {
		/* a store opened to others lets anyone connect: one line a
		 * minute, as for HTTP clients */
		int64_t held_back = log_limit_pass(&ffs->ctl_log);

		if (held_back == 0)
			log_warn("control socket: refused uid %ld",
				 (long)cred.uid);
		else if (held_back > 0)
			log_warn("control socket: refused uid %ld (and %lld "
				 "more such connections not logged)",
				 (long)cred.uid, (long long)held_back);
		return;
	}
	rc = read_request(ffs, fd, line, sizeof(line));
	if (rc == -ESHUTDOWN) {
		log_info("control socket: the mount is stopping: a request "
			 "still being sent is not served");
		sb_addf(&out, "1 message\n%s is being unmounted\n",
			ffs->mountpoint);
		goto reply;
	}
	if (rc < 0) {
		/* a request cut short may mean something else in full
		 * ("gc older_than=3" of "gc older_than=3600000000") */
		if (rc == -ETIMEDOUT)
			log_warn("control socket: refused a request line not "
				 "finished within %d s", CTL_TIMEOUT_S);
		else
			log_warn("control socket: refused a request line: %s",
				 rc == -E2BIG   ? "too long"
				 : rc == -EPIPE ? "the client closed before "
						  "its end"
						: strerror(-rc));
		sb_adds(&out, "16 message\nbad control request\n");
		goto reply;
	}
	verb = line;
	args = line + strcspn(line, " ");
	if (*args)
		*args++ = '\0';
	if (strcmp(verb, "gc") == 0) {
		serve_gc(ffs, fd, args, &out);
	} else if (strcmp(verb, "stats") == 0) {
		serve_stats(ffs, args, &out);
	} else {
		log_warn("control socket: refused a request that is neither "
			 "gc nor stats (%zu bytes)", strlen(line));
		sb_adds(&out, "16 message\nbad control request\n");
	}
reply:
	if (!out.err)
		write_all(fd, out.buf, out.len);
	sb_release(&out);
}

/* Each request is served on a thread of its own: a GC pass may take
 * minutes, and stats asked meanwhile must not wait for it. */
struct ctl_client {
	struct ffs *ffs;
	int fd;
};

static void client_done(struct ffs *ffs)
{
	pthread_mutex_lock(&ffs->ctl_mu);
	if (--ffs->ctl_clients == 0)
		pthread_cond_broadcast(&ffs->ctl_idle);
	pthread_mutex_unlock(&ffs->ctl_mu);
}

static void *client_main(void *arg)
{
	struct ctl_client *c = arg;

	serve_client(c->ffs, c->fd);
	close(c->fd);
	client_done(c->ffs);
	free(c);
	return NULL;
}

/* Serve client `fd` on a thread of its own, or here when none can be
 * made; closes `fd`. */
static void start_client(struct ffs *ffs, int fd)
{
	struct ctl_client *c = malloc(sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;
	int rc = -1;

	pthread_mutex_lock(&ffs->ctl_mu);
	ffs->ctl_clients++;
	pthread_mutex_unlock(&ffs->ctl_mu);
	if (c) {
		c->ffs = ffs;
		c->fd = fd;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &attr, client_main, c);
		pthread_attr_destroy(&attr);
	}
	if (rc == 0)
		return;
	free(c);
	serve_client(ffs, fd);
	close(fd);
	client_done(ffs);
}

/* accept(2) a connection on the control socket (a test may fail it). */
/* The descriptor of the next connection, or a negative errno. */
static int accept_client(struct ffs *ffs)
{
	int fd = fault_inject("ctl_accept");

	if (fd < 0)
		return fd;
	fd = accept4(ffs->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Out of descriptors, a connection would wait in the socket's queue,
 * its command with it: give up the spare descriptor to accept it, answer
 * -EMFILE, and take the spare again.  -errno when that cannot be done. */
static int refuse_client(struct ffs *ffs)
{
	char answer[16];
	int fd, rc = 0;

	if (ffs->ctl_spare_fd < 0)
		ffs->ctl_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ffs->ctl_spare_fd < 0)
		return -errno;
	close(ffs->ctl_spare_fd);
	fd = accept_client(ffs);
	if (fd >= 0) {
		snprintf(answer, sizeof(answer), "%d\n", -EMFILE);
		write_all(fd, answer, strlen(answer));
		close(fd);
	} else {
		rc = fd;
	}
	ffs->ctl_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return rc;
}

static void *ctl_main(void *arg)
{
	struct ffs *ffs = arg;
	struct pollfd p[2] = {
		{ .fd = ffs->ctl_fd, .events = POLLIN },
		{ .fd = ffs->ctl_wake[0], .events = POLLIN },
	};

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control socket: poll: %s; maintenance "
				"commands reach this mount no more",
				strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept_client(ffs);
		if (fd >= 0) {
			start_client(ffs, fd);
			continue;
		}
		if (fd == -EMFILE || fd == -ENFILE) {
			ffs_log_out_of_fds(ffs, "control socket: accept");
			/* else the connection stays queued, and poll() says
			 * so at once: wait for descriptors to come back (or
			 * for the stop) instead of spinning */
			if (refuse_client(ffs) < 0)
				poll(&p[1], 1, CTL_ACCEPT_RETRY_MS);
		}
	}
	return NULL;
}

int ctl_start(struct ffs *ffs)
{
	struct sockaddr_un sa;
	int rc;

	socket_addr(ffs->store->root_fd, &sa);
	unlinkat(ffs->store->root_fd, CTL_SOCKET, 0);
	ffs->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ffs->ctl_fd < 0)
		return -errno;
	if (bind(ffs->ctl_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fchmodat(ffs->store->root_fd, CTL_SOCKET, 0600, 0) < 0 ||
	    listen(ffs->ctl_fd, 8) < 0 ||
	    pipe2(ffs->ctl_wake, O_CLOEXEC) < 0) {
		rc = -errno;
		log_err("control socket %s/%s: %s", ffs->store->root,
			CTL_SOCKET, strerror(-rc));
		return rc;
	}
	ffs->ctl_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	rc = pthread_create(&ffs->ctl_thread, NULL, ctl_main, ffs);
	if (rc != 0)
		return -rc;
	ffs->ctl_started = 1;
	return 0;
}

void ctl_stop(struct ffs *ffs)
{
	if (ffs->ctl_started) {
		if (write(ffs->ctl_wake[1], "x", 1) < 0)
			log_debug("control socket: wake: %s", strerror(errno));
		pthread_join(ffs->ctl_thread, NULL);
		ffs->ctl_started = 0;
	}
	/* a GC pass sees the mount stopping and ends early */
	pthread_mutex_lock(&ffs->ctl_mu);
	while (ffs->ctl_clients)
		pthread_cond_wait(&ffs->ctl_idle, &ffs->ctl_mu);
	pthread_mutex_unlock(&ffs->ctl_mu);
	if (ffs->ctl_fd >= 0) {
		close(ffs->ctl_fd);
		unlinkat(ffs->store->root_fd, CTL_SOCKET, 0);
		ffs->ctl_fd = -1;
	}
	if (ffs->ctl_spare_fd >= 0) {
		close(ffs->ctl_spare_fd);
		ffs->ctl_spare_fd = -1;
	}
	if (ffs->ctl_wake[0] >= 0) {
		close(ffs->ctl_wake[0]);
		close(ffs->ctl_wake[1]);
		ffs->ctl_wake[0] = ffs->ctl_wake[1] = -1;
	}
}

/* Send request line `req` to the mount of store `s`, whose daemon is
 * `daemon`, and read its reply into `out`, status line dropped; *message
 * (if given) says whether it is a message for stderr (a refusal) rather
 * than the command's output.  Returns the status, -EAGAIN when the
 * daemon stays stopped CTL_STOPPED_S seconds (SIGSTOP: it would never
 * answer), or another -errno. */
static int ctl_request(struct store *s, pid_t daemon, const char *req,
		       struct strbuf *out, int *message)
{
	struct sockaddr_un sa;
	struct pollfd p;
	char buf[4096], *nl;
	int fd, rc, status, stopped_s = 0;

	socket_addr(s->root_fd, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, req, strlen(req));
	/* a daemon refusing the connection (out of descriptors) answers
	 * and closes without reading the request */
	if (rc < 0 && rc != -EPIPE)
		goto out;
	p.fd = fd;
	p.events = POLLIN;
	for (;;) {
		ssize_t n;

		rc = poll(&p, 1, 1000);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			/* a pass may take long; a stopped daemon, forever */
			stopped_s = proc_is_stopped(daemon) ? stopped_s + 1 : 0;
			if (stopped_s >= CTL_STOPPED_S) {
				rc = -EAGAIN;
				goto out;
			}
			continue;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		sb_add(out, buf, (size_t)n);
	}
	nl = out->len ? strchr(out->buf, '\n') : NULL;
	if (!nl || sscanf(out->buf, "%d", &status) != 1) {
		rc = -EPROTO;
		goto out;
	}
	if (message)
		*message = strncmp(strpbrk(out->buf, " \n"), " message\n",
				   9) == 0;
	/* drop the status line */
	memmove(out->buf, nl + 1, out->len - (size_t)(nl + 1 - out->buf) + 1);
	out->len -= (size_t)(nl + 1 - out->buf);
	rc = status;
out:
	close(fd);
	return rc;
}

int ctl_request_gc(struct store *s, pid_t daemon, const struct gc_options *o,
		   int json, struct strbuf *out, int *message)
{
	char req[CTL_LINE_MAX];

	snprintf(req, sizeof(req), "gc dry_run=%d json=%d orphans=%d list=%d",
		 o->dry_run, json, o->scan_orphans, o->list);
	/* what is not given, the mount takes from its own options */
	if (o->older_than_us >= 0)
		snprintf(req + strlen(req), sizeof(req) - strlen(req),
			 " older_than=%lld", (long long)o->older_than_us);
	if (o->max_size != GC_MAX_SIZE_MOUNT)
		snprintf(req + strlen(req), sizeof(req) - strlen(req),
			 " max_size=%llu", (unsigned long long)o->max_size);
	strcat(req, "\n");
	return ctl_request(s, daemon, req, out, message);
}

int ctl_request_stats(struct store *s, pid_t daemon, int json,
		      struct strbuf *out)
{
	return ctl_request(s, daemon, json ? "stats json=1\n" : "stats\n",
			   out, NULL);
}
