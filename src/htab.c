/*
 * htab.c - chained hash table (FNV-1a), doubling when the load passes 1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"

struct htab_item {
	const char *key;
	void *value;
	uint64_t hash;
	struct htab_item *next;
};

struct htab {
	struct htab_item **bucket;
	size_t nbucket;
	size_t count;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

int htab_new(struct htab **out)
{
	struct htab *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->nbucket = 64;
	h->bucket = calloc(h->nbucket, sizeof(*h->bucket));
	if (!h->bucket) {
		free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void htab_free(struct htab *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->nbucket; i++) {
		struct htab_item *it = h->bucket[i], *next;

		for (; it; it = next) {
			next = it->next;
			free(it);
		}
	}
	free(h->bucket);
	free(h);
}

static struct htab_item **find(struct htab *h, const char *key, uint64_t hash)
{
	struct htab_item **pp = &h->bucket[hash & (h->nbucket - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == hash && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

void *htab_get(struct htab *h, const char *key)
{
	struct htab_item *it = *find(h, key, hash_str(key));

	return it ? it->value : NULL;
}

static void grow(struct htab *h)
{
	size_t n = h->nbucket * 2, i;
	struct htab_item **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* keep working with longer chains */
	for (i = 0; i < h->nbucket; i++) {
		struct htab_item *it = h->bucket[i], *next;

		for (; it; it = next) {
			next = it->next;
			it->next = b[it->hash & (n - 1)];
			b[it->hash & (n - 1)] = it;
		}
	}
	free(h->bucket);
	h->bucket = b;
	h->nbucket = n;
}

int htab_put(struct htab *h, const char *key, void *value)
{
	uint64_t hash = hash_str(key);
	struct htab_item **pp = find(h, key, hash), *it;

	if (*pp) {
		(*pp)->key = key;
		(*pp)->value = value;
		return 0;
	}
	it = malloc(sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->key = key;
	it->value = value;
	it->hash = hash;
	it->next = NULL;
	*pp = it;
	if (++h->count > h->nbucket)
		grow(h);
	return 0;
}

void htab_del(struct htab *h, const char *key, const void *value)
{
	struct htab_item **pp = find(h, key, hash_str(key)), *it = *pp;

	if (!it || (value && it->value != value))
		return;
	*pp = it->next;
	free(it);
	h->count--;
}

size_t htab_count(const struct htab *h)
{
	return h->count;
}

void htab_each(struct htab *h, void (*fn)(void *arg, void *value), void *arg)
{
	size_t i;

	for (i = 0; i < h->nbucket; i++) {
		struct htab_item *it;

		for (it = h->bucket[i]; it; it = it->next)
			fn(arg, it->value);
	}
}

int htab_add_string(struct htab *h, const char *s)
{
	char *copy;

	if (htab_get(h, s))
		return 0;
	copy = strdup(s);
	if (!copy || htab_put(h, copy, copy) < 0) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

static void free_value(void *arg, void *value)
{
	(void)arg;
	free(value);
}

void htab_free_values(struct htab *h)
{
	if (!h)
		return;
	htab_each(h, free_value, NULL);
	htab_free(h);
}
