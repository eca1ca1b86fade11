/*
 * fdio.h - whole reads and writes at an offset: pread(2) and pwrite(2)
 * repeated across short transfers and EINTR; and byte sources, what the
 * checks that read a whole entry (Parquet validation, SHA-256) read.
 */
#ifndef FEATUREFS_FDIO_H
#define FEATUREFS_FDIO_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

/* Read up to `len` bytes at `off`: the count read, short only at the end
 * of the file, or a negative errno. */
static inline ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Write all `len` bytes at `off`: 0 or a negative errno. */
static inline int pwrite_full(int fd, const void *buf, size_t len,
			      uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* no progress, and no errno to say why */
		done += (size_t)n;
	}
	return 0;
}

/*
 * Something read like a file: a descriptor (fd_source()), or a compressed
 * object's logical bytes (seekable_reader_source(), seekable.h).
 * `pread` returns what pread_full() does.
 */
struct byte_source {
	ssize_t (*pread)(void *arg, void *buf, size_t len, uint64_t off);
	void *arg;
};

static inline ssize_t fd_source_pread(void *arg, void *buf, size_t len,
				      uint64_t off)
{
	return pread_full(*(const int *)arg, buf, len, off);
}

/* The bytes of descriptor *fd, which must outlive the source. */
static inline struct byte_source fd_source(const int *fd)
{
	struct byte_source src = { fd_source_pread, (void *)fd };

	return src;
}

#endif
