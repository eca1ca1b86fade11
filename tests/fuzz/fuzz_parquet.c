/*
 * fuzz_parquet.c - libFuzzer target for the Parquet footer parser.
 *
 * Each input is parsed as a bare FileMetaData and, written to a memfd, as
 * a whole file, whose column chunk bounds then plan compression frames,
 * and whose pages are walked by their headers.
 * Seeds: tests/fuzz/corpus/parquet/ (footers and small
 * files written by DuckDB).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parquet.h"
#include "seekable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(int rc, const struct parquet_info *info,
			 const struct parquet_error *err)
{
	if (rc == 0 && err->reason != NULL)
		abort();
	if (rc != 0 && (rc != -EIO || err->reason == NULL))
		abort();
	if (rc == 0 && (info->rows < 0 || info->columns < 0 ||
			info->row_groups < 0))
		abort();
	if (rc != 0 && info->rows != 0)
		abort();
	if (memchr(err->detail, '\0', sizeof(err->detail)) == NULL)
		abort();
}

/* Frames cut where the footer says column chunks lie still cover the
 * whole file, in order, none too big, whatever offsets it gives. */
static void check_frames(int fd, size_t size)
{
	struct seekable_plan plan;
	uint64_t *cuts = NULL, start = 0;
	size_t n = 0;
	uint32_t i;

	if (parquet_read_bounds(fd, size, &cuts, &n) != 0 ||
	    seekable_plan(size, cuts, n, &plan) != 0)
		abort();
	for (i = 0; i < plan.frames; i++) {
		if (plan.end[i] <= start ||
		    plan.end[i] - start > SEEKABLE_FRAME_SIZE)
			abort();
		start = plan.end[i];
	}
	if (start != size)
		abort();
	seekable_plan_free(&plan);
	free(cuts);
}

/* A page walked lies in the file, whatever its headers say. */
static int check_page(void *arg, uint64_t off, uint64_t hlen,
		      uint64_t payload, int compressed)
{
	(void)compressed;
	size_t size = *(const size_t *)arg;

	if (hlen == 0 || off > size || hlen > size - off ||
	    payload > size - off - hlen)
		abort();
	return 0;
}

static void check_walk(int fd, size_t size)
{
	struct parquet_error err = { NULL, "" };
	int rc = parquet_walk_pages(fd, size, check_page, &size, &err);

	if (rc != 0 && (rc != -EIO || err.reason == NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct parquet_info info;
	struct parquet_error err;
	uint8_t *footer = NULL;
	int rc;

	rc = parquet_parse_footer(data, size, &info, &err);
	check_result(rc, &info, &err);

	if (fd < 0)
		fd = memfd_create("fuzz_parquet", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) != 0)
		abort();
	if (size && pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	rc = parquet_validate_fd(fd, size, &info, &err, &footer);
	check_result(rc, &info, &err);
	if (rc == 0 && (footer == NULL || info.footer_len > size ||
			memcmp(footer, data + size - 8 - info.footer_len,
			       info.footer_len) != 0))
		abort();
	if (rc != 0 && footer != NULL)
		abort();
	free(footer);
	if (rc == 0) {
		check_frames(fd, size);
		check_walk(fd, size);
	}
	return 0;
}
