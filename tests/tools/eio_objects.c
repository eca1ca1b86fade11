/*
 * eio_objects.c - an LD_PRELOAD library for the tests: every pread(2) of
 * a file under a store's objects/ fails with EIO, as a failing disk's
 * would; every other file reads as usual.  Build it with
 *   cc -shared -fPIC -o eio_objects.so eio_objects.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int is_object(int fd)
{
	char link[64], path[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	return strstr(path, "/objects/") != NULL;
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);

	if (is_object(fd)) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(
			RTLD_NEXT, "pread64");
	return real(fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return pread64(fd, buf, len, off);
}
