/*
 * openlat.c - open + 4 KiB pread + close latency of many readers at once.
 *
 *   openlat [-S] [-p PROCS] [-t SECONDS] [-s BYTES] -l LISTFILE
 *
 * Forks PROCS readers that wait on one barrier, then each loops over the
 * files named in LISTFILE (one path a line, each reader starting at its
 * own offset) doing open(O_RDONLY) + pread(BYTES at 0) + close and
 * recording each iteration's latency, until SECONDS pass.  With -S each
 * reader starts its own session (setsid), as independent jobs do, so
 * that a scheduler grouping tasks by session (autogroup) sees 32 groups.  The parent
 * touches every file once first (warm dentries and page cache), then
 * prints one JSON object: counts, ops/s and latency percentiles in µs.
 * A benchmark tool: it reports, it never judges.
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define MAX_OPS_PER_PROC 400000

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static char **read_list(const char *path, size_t *count)
{
	char **paths = NULL, line[4096];
	size_t n = 0, cap = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (n == cap) {
			char **p;

			cap = cap ? cap * 2 : 64;
			p = realloc(paths, cap * sizeof(*paths));
			if (!p)
				goto fail;
			paths = p;
		}
		paths[n] = strdup(line);
		if (!paths[n])
			goto fail;
		n++;
	}
	fclose(f);
	*count = n;
	return paths;
fail:
	fclose(f);
	free(paths);
	return NULL;
}

/* One reader: fill `lat` (ns) until `deadline`; returns ops or -errno. */
static long reader(char **paths, size_t npaths, size_t start, size_t bytes,
		   int64_t deadline, uint32_t *lat, char *buf)
{
	size_t i = start;
	long ops = 0;

	while (ops < MAX_OPS_PER_PROC) {
		int64_t t0 = now_ns(), t1;
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return -errno;
		if (pread(fd, buf, bytes, 0) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		close(fd);
		t1 = now_ns();
		lat[ops++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX
							      : t1 - t0);
		if (++i == npaths)
			i = 0;
		if (t1 >= deadline)
			break;
	}
	return ops;
}

int main(int argc, char **argv)
{
	int procs = 1, c, gate[2], ret = 1, own_session = 0;
	double seconds = 2.0;
	size_t bytes = 4096, npaths = 0, i, total = 0;
	const char *list = NULL;
	char **paths, *buf;
	uint32_t *lat, *all;
	long *ops;
	int64_t t_start, t_end;

	while ((c = getopt(argc, argv, "Sp:t:s:l:")) != -1) {
		switch (c) {
		case 'S': own_session = 1; break;
		case 'p': procs = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 's': bytes = (size_t)atol(optarg); break;
		case 'l': list = optarg; break;
		default: goto usage;
		}
	}
	if (!list || procs < 1 || procs > 1024 || seconds <= 0)
		goto usage;
	paths = read_list(list, &npaths);
	if (!paths || npaths == 0) {
		fprintf(stderr, "openlat: no paths in %s\n", list);
		return 1;
	}
	buf = malloc(bytes);
	lat = mmap(NULL, (size_t)procs * MAX_OPS_PER_PROC * sizeof(*lat),
		   PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ops = mmap(NULL, (size_t)procs * sizeof(*ops), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!buf || lat == MAP_FAILED || ops == MAP_FAILED || pipe(gate) < 0) {
		perror("openlat: setup");
		return 1;
	}
	/* warm: every name resolved and its first page read once */
	for (i = 0; i < npaths; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || pread(fd, buf, bytes, 0) < 0) {
			fprintf(stderr, "openlat: %s: %s\n", paths[i],
				strerror(errno));
			return 1;
		}
		close(fd);
	}
	for (c = 0; c < procs; c++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("openlat: fork");
			return 1;
		}
		if (pid == 0) {
			char b;
			int64_t deadline;

			close(gate[1]);
			if (own_session && setsid() < 0)
				_exit(1);
			if (read(gate[0], &b, 1) < 0)
				_exit(1);
			deadline = now_ns() + (int64_t)(seconds * 1e9);
			ops[c] = reader(paths, npaths,
					(size_t)c * npaths / (size_t)procs, bytes,
					deadline, lat + (size_t)c * MAX_OPS_PER_PROC,
					buf);
			_exit(0);
		}
	}
	close(gate[0]);
	usleep(100000); /* let every reader reach the gate */
	t_start = now_ns();
	close(gate[1]);
	while (wait(NULL) > 0)
		;
	t_end = now_ns();
	for (c = 0; c < procs; c++) {
		if (ops[c] < 0) {
			fprintf(stderr, "openlat: reader %d: %s\n", c,
				strerror((int)-ops[c]));
			goto out;
		}
		total += (size_t)ops[c];
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		goto out;
	for (c = 0, i = 0; c < procs; c++) {
		memcpy(all + i, lat + (size_t)c * MAX_OPS_PER_PROC,
		       (size_t)ops[c] * sizeof(*all));
		i += (size_t)ops[c];
	}
	qsort(all, total, sizeof(*all), cmp_u32);
	printf("{\"procs\": %d, \"files\": %zu, \"read_bytes\": %zu, "
	       "\"ops\": %zu, \"seconds\": %.3f, \"ops_per_s\": %.1f, "
	       "\"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, "
	       "\"p999_us\": %.2f, \"max_us\": %.2f}\n",
	       procs, npaths, bytes, total, (t_end - t_start) / 1e9,
	       total / ((t_end - t_start) / 1e9), pct(all, total, 50),
	       pct(all, total, 90), pct(all, total, 99), pct(all, total, 99.9),
	       pct(all, total, 100));
	free(all);
	ret = 0;
out:
	return ret;
usage:
	fprintf(stderr, "usage: openlat [-S] [-p PROCS] [-t SECONDS] [-s BYTES] "
			"-l LISTFILE\n");
	return 2;
}
