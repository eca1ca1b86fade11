/*
 * hash.c - SHA-256 digests of entries through OpenSSL EVP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fdio.h"
#include "hash.h"

#define HASH_CHUNK (1 << 20)

static void to_hex(const unsigned char *md, unsigned len, char *hex)
{
	unsigned i;

	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int hash_finish(EVP_MD_CTX *ctx, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!EVP_DigestFinal_ex(ctx, md, &len))
		return -EIO;
	to_hex(md, len, hex);
	return 0;
}

/* Feed bytes [off, off + len) of `src` to `ctx`. */
static int digest_range(EVP_MD_CTX *ctx, const struct byte_source *src,
			uint64_t off, uint64_t len)
{
	unsigned char *buf = malloc(HASH_CHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < HASH_CHUNK ? (size_t)len : HASH_CHUNK;
		ssize_t n = src->pread(src->arg, buf, want, off);

		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n)) {
			rc = -EIO;
			break;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	free(buf);
	return rc;
}

int hash_source(const struct byte_source *src, uint64_t size, char *hex)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc;

	if (!ctx)
		return -ENOMEM;
	rc = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -EIO;
	if (rc == 0)
		rc = digest_range(ctx, src, 0, size);
	if (rc == 0)
		rc = hash_finish(ctx, hex);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int hash_fd(int fd, uint64_t size, char *hex)
{
	struct byte_source src = fd_source(&fd);

	return hash_source(&src, size, hex);
}

int hash_footer(const struct byte_source *src, uint64_t size,
		uint32_t footer_len, char *hex)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char le[8];
	uint64_t tail = (uint64_t)footer_len + 8;
	int i, rc;

	if (!ctx)
		return -ENOMEM;
	if (tail > size)
		tail = size;
	for (i = 0; i < 8; i++)
		le[i] = (unsigned char)(size >> (8 * i));
	rc = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -EIO;
	if (rc == 0)
		rc = digest_range(ctx, src, size - tail, tail);
	if (rc == 0 && !EVP_DigestUpdate(ctx, le, sizeof(le)))
		rc = -EIO;
	if (rc == 0)
		rc = hash_finish(ctx, hex);
	EVP_MD_CTX_free(ctx);
	return rc;
}
