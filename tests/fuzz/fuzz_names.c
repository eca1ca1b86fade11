/*
 * fuzz_names.c - libFuzzer target for the name validator (names.h).
 *
 * Each input, cut at its first NUL, is checked as a symbol, as a key and
 * as a child of a symbol directory.  Beyond "no crash", the verdicts must
 * agree with SPEC §2 restated independently here: symbols 1-64 of
 * [A-Za-z0-9._^=-] not starting with '.', keys 8-128 of [A-Za-z0-9_-],
 * entries "<key>.parquet", scratch names ".<anything>" and
 * "<key>.parquet.<anything>", and nothing
 * longer than NAME_BYTES_MAX (when names.h defines it).  Seeds:
 * tests/fuzz/corpus/names/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int key_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int all_of(const char *s, size_t n, int symbol)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!key_char((unsigned char)s[i]) &&
		    !(symbol && (s[i] == '.' || s[i] == '^' || s[i] == '=')))
			return 0;
	return 1;
}

/* "<key>.parquet.<tail>" with a tail: an entry's temporary name */
static int entry_temp(const char *s, size_t n)
{
	size_t k = 0;

	while (k < n && key_char((unsigned char)s[k]))
		k++;
	return k >= KEY_MIN && k <= KEY_MAX &&
	       n > k + ENTRY_SUFFIX_LEN + 1 &&
	       memcmp(s + k, ENTRY_SUFFIX ".", ENTRY_SUFFIX_LEN + 1) == 0;
}

static void check_symbol(const char *s, size_t n)
{
	int rc = name_check_symbol(s);
	int ok = n >= 1 && n <= SYMBOL_MAX && s[0] != '.' && all_of(s, n, 1);

	if (rc != 0 && rc != -EINVAL && rc != -ENAMETOOLONG)
		abort();
	if ((rc == 0) != ok)
		abort();
	if (rc == -ENAMETOOLONG && n <= SYMBOL_MAX)
		abort();
}

static void check_key(const char *s, size_t n)
{
	int rc = name_check_key(s);
	int ok = n >= KEY_MIN && n <= KEY_MAX && all_of(s, n, 0);

	if (rc != 0 && rc != -EINVAL && rc != -ENAMETOOLONG)
		abort();
	if ((rc == 0) != ok)
		abort();
	if (rc == -ENAMETOOLONG && n <= KEY_MAX)
		abort();
}

static void check_child(const char *s, size_t n)
{
	char key[KEY_MAX + 1];
	size_t klen;
	int rc;

	memset(key, 0x5a, sizeof(key));
	rc = name_parse_child(s, key);
#ifdef NAME_BYTES_MAX
	if (n > NAME_BYTES_MAX && rc != -ENAMETOOLONG)
		abort();
#endif
	switch (rc) {
	case NAME_SCRATCH:
		if (n == 0 || (s[0] != '.' && !entry_temp(s, n)))
			abort();
		break;
	case NAME_ENTRY:
		if (n <= ENTRY_SUFFIX_LEN ||
		    strcmp(s + n - ENTRY_SUFFIX_LEN, ENTRY_SUFFIX) != 0)
			abort();
		klen = n - ENTRY_SUFFIX_LEN;
		if (klen < KEY_MIN || klen > KEY_MAX || !all_of(s, klen, 0))
			abort();
		if (strlen(key) != klen || memcmp(key, s, klen) != 0)
			abort();
		break;
	case -EINVAL:
	case -ENAMETOOLONG:
		/* a name that parses as neither must not be a valid one */
		if (n > 0 && s[0] == '.' && rc == -EINVAL)
			abort();
		if (entry_temp(s, n)
#ifdef NAME_BYTES_MAX
		    && n <= NAME_BYTES_MAX
#endif
		)
			abort();
		if (n > ENTRY_SUFFIX_LEN && s[0] != '.' &&
		    strcmp(s + n - ENTRY_SUFFIX_LEN, ENTRY_SUFFIX) == 0 &&
		    n - ENTRY_SUFFIX_LEN >= KEY_MIN &&
		    n - ENTRY_SUFFIX_LEN <= KEY_MAX &&
		    all_of(s, n - ENTRY_SUFFIX_LEN, 0)
#ifdef NAME_BYTES_MAX
		    && n <= NAME_BYTES_MAX
#endif
		)
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t n;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	n = strlen(s);
	check_symbol(s, n);
	check_key(s, n);
	check_child(s, n);
	free(s);
	return 0;
}
