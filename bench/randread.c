/*
 * randread.c - Parquet-like random reads: the footer, then column chunks.
 *
 *   randread [-f] [-n OPS] [-b BYTES] [-S SEED] FILE
 *   randread -s [-n PASSES] [-b BYTES] FILE
 *
 * Reads the last 8 bytes, the footer they describe (as a Parquet reader
 * does), then OPS preads of BYTES at pseudo-random offsets drawn from
 * SEED, so two runs with one seed read the same ranges of two copies.
 * With -s it reads the whole file in order instead, PASSES times, in
 * preads of BYTES (one open for all passes).  With -f every random read
 * is preceded by an fstat, timed with it, as readers that ask the file's
 * size around their reads do (DuckDB's Parquet reader).
 * Prints one JSON object: time, MB/s and per-read latency percentiles.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static ssize_t pread_all(int fd, char *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int main(int argc, char **argv)
{
	long ops = 1000, i;
	size_t bytes = 65536;
	uint64_t seed = 1;
	int c, fd, seq = 0, with_fstat = 0;
	struct stat st;
	char *buf, tail[8];
	int64_t *lat, t0, t1;
	uint32_t footer_len = 0;
	uint64_t span, total = 0;

	while ((c = getopt(argc, argv, "n:b:S:sf")) != -1) {
		switch (c) {
		case 's': seq = 1; break;
		case 'f': with_fstat = 1; break;
		case 'n': ops = atol(optarg); break;
		case 'b': bytes = (size_t)atol(optarg); break;
		case 'S': seed = strtoull(optarg, NULL, 0); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || ops < 1 || bytes < 1)
		goto usage;
	buf = malloc(bytes > (1u << 20) ? bytes : (1u << 20));
	if (!buf)
		return 1;
	t0 = now_ns();
	fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && seq && fstat(fd, &st) == 0) {
		/* every pass reads [0, size) in order */
		ops *= (st.st_size + (off_t)bytes - 1) / (off_t)bytes;
	}
	lat = malloc((size_t)ops * sizeof(*lat));
	if (!lat)
		return 1;
	if (fd < 0 || fstat(fd, &st) < 0 || (!seq && st.st_size < 16 + (off_t)bytes)) {
		fprintf(stderr, "randread: %s: %s\n", argv[optind],
			fd < 0 ? strerror(errno) : "too small");
		return 1;
	}
	if (seq)
		goto sequential;
	if (pread_all(fd, tail, 8, st.st_size - 8) != 8)
		goto io;
	if (memcmp(tail + 4, "PAR1", 4) == 0) {
		memcpy(&footer_len, tail, 4); /* little-endian, as on x86 */
		if (footer_len > (1u << 20) || footer_len + 12 > st.st_size)
			footer_len = 0;
		if (footer_len &&
		    pread_all(fd, buf, footer_len,
			      st.st_size - 8 - footer_len) != (ssize_t)footer_len)
			goto io;
	}
	span = (uint64_t)(st.st_size - 8 - footer_len) - bytes - 4;
	for (i = 0; i < ops; i++) {
		off_t off = 4 + (off_t)(next_rand(&seed) % (span + 1));
		int64_t a = now_ns();
		struct stat now;
		ssize_t n;

		if (with_fstat && fstat(fd, &now) < 0)
			goto io;
		n = pread_all(fd, buf, bytes, off);
		if (n < 0)
			goto io;
		lat[i] = now_ns() - a;
		total += (uint64_t)n;
	}
	goto done;
sequential:
	for (i = 0; i < ops; i++) {
		off_t off = (off_t)(i % ((st.st_size + (off_t)bytes - 1) /
					 (off_t)bytes)) * (off_t)bytes;
		int64_t a = now_ns();
		ssize_t n = pread_all(fd, buf, bytes, off);

		if (n < 0)
			goto io;
		lat[i] = now_ns() - a;
		total += (uint64_t)n;
	}
done:
	close(fd);
	t1 = now_ns();
	qsort(lat, (size_t)ops, sizeof(*lat), cmp_i64);
	printf("{\"ops\": %ld, \"bytes_total\": %llu, \"read_bytes\": %zu, \"file_bytes\": %lld, "
	       "\"footer_bytes\": %u, \"seconds\": %.6f, \"mb_per_s\": %.1f, "
	       "\"ops_per_s\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
	       "\"max_us\": %.2f}\n",
	       ops, (unsigned long long)total, bytes, (long long)st.st_size, footer_len, (t1 - t0) / 1e9,
	       total / 1e6 / ((t1 - t0) / 1e9), ops / ((t1 - t0) / 1e9),
	       lat[ops / 2] / 1e3, lat[(size_t)((ops - 1) * 0.99)] / 1e3,
	       lat[ops - 1] / 1e3);
	return 0;
io:
	fprintf(stderr, "randread: %s: %s\n", argv[optind], strerror(errno));
	return 1;
usage:
	fprintf(stderr, "usage: randread [-f] [-n OPS] [-b BYTES] [-S SEED] FILE\n"
		"       randread -s [-n PASSES] [-b BYTES] FILE\n");
	return 2;
}
