/*
 * fuzz_seekable.c - libFuzzer target for the zstd seek-table parser and
 * the frame reader.
 *
 * Each input is a whole stored object, written to a memfd: its seek table
 * is parsed, checked against what the parser promises (offsets in order,
 * inside the object), and its first frames are decompressed.  Seeds:
 * tests/fuzz/corpus/seekable/ (objects written by seekable_compress()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "seekable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seekable_decoder *dec;
	static void *frame;
	static int fd = -1;
	struct seek_table t;
	const char *why = NULL;
	uint32_t i;
	int rc;

	if (fd < 0) {
		fd = memfd_create("fuzz_seekable", MFD_CLOEXEC);
		dec = seekable_decoder_new();
		frame = malloc(SEEKABLE_FRAME_SIZE);
	}
	if (fd < 0 || !dec || !frame || ftruncate(fd, 0) != 0)
		abort();
	if (size && pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	rc = seekable_table_read(fd, size, &t, &why);
	if (rc != 0) {
		if (rc != -EIO || !why || t.coff || t.doff)
			abort();
		return 0;
	}
	if (t.coff[0] != 0 || t.doff[0] != 0 || t.coff[t.frames] > size)
		abort();
	for (i = 0; i < t.frames; i++)
		if (t.coff[i + 1] <= t.coff[i] || t.doff[i + 1] < t.doff[i] ||
		    t.doff[i + 1] - t.doff[i] > SEEKABLE_FRAME_SIZE)
			abort();
	if (t.frames && t.doff[t.frames] > 0) {
		uint64_t off = t.doff[t.frames] - 1;

		i = seekable_frame_of(&t, off);
		if (i >= t.frames || t.doff[i] > off || t.doff[i + 1] <= off)
			abort();
	}
	for (i = 0; i < t.frames && i < 8; i++) {
		why = NULL;
		rc = seekable_frame_read(fd, &t, i, dec, frame, &why);
		if (rc != 0 && (rc != -EIO || !why))
			abort();
	}
	seekable_table_free(&t);
	return 0;
}
