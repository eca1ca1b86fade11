/*
 * lock.c - lock ids (OpenSSL SHA-256) and the process-local lock table
 * used by the SQLite manifest, a small chained hash set under one mutex.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lock.h"
#include "names.h"

#define LOCK_BUCKETS 1024

int64_t lock_id(const char *name)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t v = 0;
	int i;

	EVP_Digest(name, strlen(name), md, NULL, EVP_sha256(), NULL);
	for (i = 0; i < 8; i++)
		v = (v << 8) | md[i];
	return (int64_t)v;
}

int64_t lock_id_entry(const char *symbol, const char *key)
{
	char name[LOCK_NAME_MAX + 1];

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	return lock_id(name);
}

struct lock_slot {
	int64_t id;
	struct lock_slot *next;
};

struct lock_table {
	pthread_mutex_t mu;
	unsigned count;
	struct lock_slot *bucket[LOCK_BUCKETS];
};

static unsigned bucket_of(int64_t id)
{
	return (unsigned)((uint64_t)id % LOCK_BUCKETS);
}

int lock_table_new(struct lock_table **out)
{
	struct lock_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return 0;
}

void lock_table_free(struct lock_table *t)
{
	unsigned i;

	if (!t)
		return;
	for (i = 0; i < LOCK_BUCKETS; i++) {
		struct lock_slot *s = t->bucket[i], *next;

		for (; s; s = next) {
			next = s->next;
			free(s);
		}
	}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

int lock_table_try(struct lock_table *t, int64_t id)
{
	struct lock_slot *s;
	unsigned b = bucket_of(id);
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	for (s = t->bucket[b]; s; s = s->next) {
		if (s->id == id) {
			rc = -EBUSY;
			goto out;
		}
	}
	s = malloc(sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->id = id;
	s->next = t->bucket[b];
	t->bucket[b] = s;
	t->count++;
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void lock_table_release(struct lock_table *t, int64_t id)
{
	struct lock_slot **pp, *s;

	pthread_mutex_lock(&t->mu);
	for (pp = &t->bucket[bucket_of(id)]; (s = *pp); pp = &s->next) {
		if (s->id == id) {
			*pp = s->next;
			free(s);
			t->count--;
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

unsigned lock_table_count(struct lock_table *t)
{
	unsigned n;

	pthread_mutex_lock(&t->mu);
	n = t->count;
	pthread_mutex_unlock(&t->mu);
	return n;
}
