/*
 * hash.h - SHA-256 of entries (SPEC §6), with OpenSSL's EVP interface.
 *
 * hash=full is streamed over the logical bytes while they are written
 * (hash_finish); a writer that wrote out of order is hashed again from its
 * file (hash_fd).  hash=footer covers the Parquet footer, its length and
 * magic, followed by the file size as 8 little-endian bytes (hash_footer).
 * Digests are lowercase hex, 64 characters and a NUL.
 */
#ifndef FEATUREFS_HASH_H
#define FEATUREFS_HASH_H

#include <stdint.h>

#include <openssl/evp.h>

struct byte_source;

#define SHA256_HEX_LEN 64

/* Finish a streaming digest into `hex`; 0 or -EIO. */
int hash_finish(EVP_MD_CTX *ctx, char *hex);
/* SHA-256 of bytes [0, size) of `fd`, read with pread. */
int hash_fd(int fd, uint64_t size, char *hex);
/* The same, of the bytes of `src` (fdio.h): a compressed object's. */
int hash_source(const struct byte_source *src, uint64_t size, char *hex);
/* The hash=footer digest of the `size` bytes of `src`. */
int hash_footer(const struct byte_source *src, uint64_t size,
		uint32_t footer_len, char *hex);

#endif
