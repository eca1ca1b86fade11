/*
 * stampede.c - PROCS processes miss one key at the same moment.
 *
 *   stampede [-l] [-p PROCS] [-d DELAY_MS] -s SOURCE PATH
 *
 * Each process runs the single-flight protocol of SPEC §3 (as
 * tests/tools/claim_or_wait.py does): open(PATH, O_CREAT|O_EXCL|O_WRONLY);
 * on success it "computes" (sleeps DELAY_MS, then writes SOURCE) and
 * closes; on EEXIST it opens PATH read-only, which waits while the entry
 * is in flight.  Every process then reads PATH to the end.  Prints one
 * JSON object: how many computed, how many failed, the latency from the
 * computer's close() returning to each waiter's open() returning, and the
 * total time from the start gate to the last process done.
 *
 * With -l, PATH is on a plain filesystem and the processes run what a
 * library does there instead, as the baseline: the first to take
 * flock(PATH.lock, LOCK_EX) computes, writes PATH.tmp, fsyncs and renames
 * it to PATH, then unlocks; the others wait in flock(LOCK_SH) and open
 * PATH.  A waiter's latency counts from the computer's close() of PATH.tmp,
 * as the publish work (fsync, rename) follows it in both.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

struct result {
	int role;		/* 1 computed, 2 waited, -errno failed */
	int64_t t_close;	/* computer: close() returned */
	int64_t t_open;		/* waiter: read-open returned */
	int64_t t_done;		/* read to the end */
	int64_t bytes;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len > (1u << 20) ? (1u << 20) : len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_to_end(const char *path, char *buf, int64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	*bytes = 0;
	while ((n = read(fd, buf, 1u << 20)) > 0)
		*bytes += n;
	close(fd);
	return n < 0 ? -errno : 0;
}

/* The baseline's claim: 1 this process computes (the lock is held), 0 it
 * waited for the lock, -errno failed. */
static int lockfile_claim(const char *path, int *lock_fd)
{
	char lock[4096];

	snprintf(lock, sizeof(lock), "%s.lock", path);
	*lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*lock_fd < 0)
		return -errno;
	if (flock(*lock_fd, LOCK_EX | LOCK_NB) == 0) {
		if (access(path, F_OK) < 0)
			return 1;
		flock(*lock_fd, LOCK_UN); /* published meanwhile */
		return 0;
	}
	if (errno != EWOULDBLOCK || flock(*lock_fd, LOCK_SH) < 0)
		return -errno;
	return 0;
}

/* The baseline's publish: PATH.tmp written and closed, then fsync'ed and
 * renamed into place; the lock is released after. */
static int lockfile_publish(const char *path, const char *data, size_t len,
			    int64_t *t_close)
{
	char tmp[4096];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	close(fd);
	*t_close = now_ns();
	if (rc == 0) {
		fd = open(tmp, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0 || rename(tmp, path) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

static void run(const char *path, const char *data, size_t len, int delay_ms,
		int lockfile, struct result *r)
{
	char *buf = malloc(1u << 20);
	int fd, rc, lock_fd = -1, claim;

	if (!buf) {
		r->role = -ENOMEM;
		return;
	}
	if (lockfile) {
		claim = lockfile_claim(path, &lock_fd);
		if (claim < 0) {
			rc = claim;
		} else if (claim == 1) {
			r->role = 1;
			usleep((useconds_t)delay_ms * 1000);
			rc = lockfile_publish(path, data, len, &r->t_close);
			flock(lock_fd, LOCK_UN);
			if (rc == 0)
				rc = read_to_end(path, buf, &r->bytes);
		} else {
			r->role = 2;
			fd = open(path, O_RDONLY | O_CLOEXEC);
			r->t_open = now_ns();
			if (fd >= 0)
				close(fd);
			rc = fd < 0 ? -errno : read_to_end(path, buf, &r->bytes);
		}
		close(lock_fd);
		goto done;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0) {
		r->role = 1;
		usleep((useconds_t)delay_ms * 1000);
		rc = write_all(fd, data, len);
		if (close(fd) < 0 && rc == 0)
			rc = -errno;
		r->t_close = now_ns();
		if (rc < 0) {
			r->role = rc;
			return;
		}
		rc = read_to_end(path, buf, &r->bytes);
	} else if (errno == EEXIST) {
		r->role = 2;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		r->t_open = now_ns();
		if (fd < 0) {
			r->role = -errno;
			return;
		}
		rc = 0;
		while ((len = (size_t)read(fd, buf, 1u << 20)) > 0 &&
		       len != (size_t)-1)
			r->bytes += (int64_t)len;
		if (len == (size_t)-1)
			rc = -errno;
		close(fd);
	} else {
		rc = -errno;
	}
done:
	r->t_done = now_ns();
	if (rc < 0)
		r->role = rc;
	free(buf);
}

int main(int argc, char **argv)
{
	int procs = 32, delay_ms = 200, c, gate[2], computed = 0, waited = 0,
	    failed = 0, first_err = 0, lockfile = 0;
	const char *source = NULL, *path;
	struct result *res;
	struct stat st;
	char *data;
	int64_t t0, t_close = 0, t_last = 0, *lat;
	size_t nlat = 0;
	int fd;

	while ((c = getopt(argc, argv, "p:d:s:l")) != -1) {
		switch (c) {
		case 'l': lockfile = 1; break;
		case 'p': procs = atoi(optarg); break;
		case 'd': delay_ms = atoi(optarg); break;
		case 's': source = optarg; break;
		default: goto usage;
		}
	}
	if (!source || optind != argc - 1 || procs < 1 || procs > 4096)
		goto usage;
	path = argv[optind];
	fd = open(source, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(source);
		return 1;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data || read(fd, data, (size_t)st.st_size) != st.st_size) {
		perror(source);
		return 1;
	}
	close(fd);
	res = mmap(NULL, (size_t)procs * sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	lat = malloc((size_t)procs * sizeof(*lat));
	if (res == MAP_FAILED || !lat || pipe(gate) < 0) {
		perror("stampede: setup");
		return 1;
	}
	memset(res, 0, (size_t)procs * sizeof(*res));
	for (c = 0; c < procs; c++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("stampede: fork");
			return 1;
		}
		if (pid == 0) {
			char b;

			close(gate[1]);
			if (read(gate[0], &b, 1) < 0)
				_exit(1);
			run(path, data, (size_t)st.st_size, delay_ms, lockfile,
			    &res[c]);
			_exit(0);
		}
	}
	close(gate[0]);
	usleep(100000);
	t0 = now_ns();
	close(gate[1]);
	while (wait(NULL) > 0)
		;
	for (c = 0; c < procs; c++) {
		if (res[c].role == 1) {
			computed++;
			t_close = res[c].t_close;
		} else if (res[c].role == 2) {
			waited++;
		} else {
			failed++;
			if (!first_err)
				first_err = -res[c].role;
		}
		if (res[c].t_done > t_last)
			t_last = res[c].t_done;
	}
	for (c = 0; c < procs; c++)
		if (res[c].role == 2 && t_close)
			lat[nlat++] = res[c].t_open - t_close;
	qsort(lat, nlat, sizeof(*lat), cmp_i64);
	printf("{\"procs\": %d, \"computations\": %d, \"waiters\": %d, "
	       "\"failed\": %d, \"first_error\": \"%s\", \"delay_ms\": %d, "
	       "\"bytes\": %lld, \"total_ms\": %.3f, \"compute_close_ms\": %.3f",
	       procs, computed, waited, failed,
	       first_err ? strerror(first_err) : "", delay_ms,
	       (long long)st.st_size, (t_last - t0) / 1e6,
	       t_close ? (t_close - t0) / 1e6 : 0.0);
	if (nlat)
		printf(", \"wake_p50_ms\": %.3f, \"wake_p99_ms\": %.3f, "
		       "\"wake_max_ms\": %.3f, \"wake_min_ms\": %.3f",
		       lat[nlat / 2] / 1e6,
		       lat[(size_t)((double)(nlat - 1) * 0.99 + 0.5)] / 1e6,
		       lat[nlat - 1] / 1e6, lat[0] / 1e6);
	printf(", \"wake_samples_ms\": [");
	for (size_t i = 0; i < nlat; i++)
		printf("%s%.3f", i ? ", " : "", lat[i] / 1e6);
	printf("]}\n");
	return 0;
usage:
	fprintf(stderr,
		"usage: stampede [-l] [-p PROCS] [-d DELAY_MS] -s SOURCE PATH\n");
	return 2;
}
