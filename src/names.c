/*
 * names.c - validation of symbols, keys and scratch names.
 */
#include <errno.h>
#include <string.h>

#include "names.h"

static int is_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int is_symbol_char(char c)
{
	return is_key_char(c) || c == '.' || c == '^' || c == '=';
}

int name_check_symbol(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || name[0] == '.')
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!is_symbol_char(name[i]))
			return -EINVAL;
	return len > SYMBOL_MAX ? -ENAMETOOLONG : 0;
}

int name_check_key(const char *key)
{
	size_t i, len = strlen(key);

	for (i = 0; i < len; i++)
		if (!is_key_char(key[i]))
			return -EINVAL;
	if (len > KEY_MAX)
		return -ENAMETOOLONG;
	return len < KEY_MIN ? -EINVAL : 0;
}

int name_parse_child(const char *name, char *key)
{
	size_t len = strlen(name);
	size_t klen;
	char buf[KEY_MAX + 2];
	const char *dot, *tail;
	int kind, rc;

	if (len == 0)
		return -EINVAL;
	if (len > NAME_BYTES_MAX)
		return -ENAMETOOLONG;
	if (name[0] == '.')
		return NAME_SCRATCH;
	/* a key holds no dot: the first one ends it */
	dot = strchr(name, '.');
	if (!dot || strncmp(dot, ENTRY_SUFFIX, ENTRY_SUFFIX_LEN) != 0)
		return -EINVAL;
	tail = dot + ENTRY_SUFFIX_LEN;
	if (*tail == '\0')
		kind = NAME_ENTRY;
	else if (tail[0] == '.' && tail[1] != '\0')
		kind = NAME_SCRATCH; /* "<key>.parquet.<tail>" */
	else
		return -EINVAL;
	klen = (size_t)(dot - name);
	if (klen > KEY_MAX) {
		/* Over-long, unless it is malformed anyway. */
		size_t i;

		for (i = 0; i < klen; i++)
			if (!is_key_char(name[i]))
				return -EINVAL;
		return -ENAMETOOLONG;
	}
	memcpy(buf, name, klen);
	buf[klen] = '\0';
	rc = name_check_key(buf);
	if (rc < 0)
		return rc;
	if (kind == NAME_ENTRY)
		memcpy(key, buf, klen + 1);
	return kind;
}
