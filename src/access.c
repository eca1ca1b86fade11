/*
 * access.c - the in-memory access log: a table from "<symbol>/<key>" to
 * (count, last access) under one mutex, swapped out whole at each flush.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "htab.h"

struct access_rec {
	char name[LOCK_NAME_MAX + 1];	/* "<symbol>/<key>", the table key */
	struct manifest_access a;
};

struct access_log {
	pthread_mutex_t mu;
	struct htab *table;
	uint64_t dropped;
};

int access_log_new(struct access_log **out)
{
	struct access_log *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	rc = htab_new(&a->table);
	if (rc < 0) {
		free(a);
		return rc;
	}
	pthread_mutex_init(&a->mu, NULL);
	*out = a;
	return 0;
}

void access_log_free(struct access_log *a)
{
	if (!a)
		return;
	htab_free_values(a->table);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* Add `count` accesses; caller holds mu. */
static int add_locked(struct access_log *a, const char *symbol,
		      const char *key, int64_t count, int64_t ts)
{
	char name[LOCK_NAME_MAX + 1];
	struct access_rec *r;

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	r = htab_get(a->table, name);
	if (!r) {
		if (htab_count(a->table) >= ACCESS_PENDING_MAX) {
			a->dropped++;
			return -ENOSPC;
		}
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		memcpy(r->name, name, sizeof(name));
		snprintf(r->a.symbol, sizeof(r->a.symbol), "%s", symbol);
		snprintf(r->a.key, sizeof(r->a.key), "%s", key);
		if (htab_put(a->table, r->name, r) < 0) {
			free(r);
			return -ENOMEM;
		}
	}
	r->a.count += count;
	if (ts > r->a.last_ts)
		r->a.last_ts = ts;
	return 0;
}

int access_log_add(struct access_log *a, const char *symbol, const char *key,
		   int64_t ts)
{
	int rc;

	pthread_mutex_lock(&a->mu);
	rc = add_locked(a, symbol, key, 1, ts);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

struct take_state {
	struct manifest_access *out;
	size_t n;
};

static void take_rec(void *arg, void *value)
{
	struct take_state *t = arg;
	struct access_rec *r = value;

	t->out[t->n++] = r->a;
	free(r);
}

int access_log_take(struct access_log *a, struct manifest_access **out,
		    size_t *n)
{
	struct take_state t = { NULL, 0 };
	struct htab *fresh;
	size_t count;
	int rc;

	*out = NULL;
	*n = 0;
	rc = htab_new(&fresh);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&a->mu);
	count = htab_count(a->table);
	if (count == 0) {
		pthread_mutex_unlock(&a->mu);
		htab_free(fresh);
		return 0;
	}
	t.out = malloc(count * sizeof(*t.out));
	if (!t.out) {
		pthread_mutex_unlock(&a->mu);
		htab_free(fresh);
		return -ENOMEM;
	}
	htab_each(a->table, take_rec, &t);
	htab_free(a->table);
	a->table = fresh;
	pthread_mutex_unlock(&a->mu);
	*out = t.out;
	*n = t.n;
	return 0;
}

void access_log_restore(struct access_log *a,
			const struct manifest_access *recs, size_t n)
{
	size_t i;

	pthread_mutex_lock(&a->mu);
	for (i = 0; i < n; i++)
		add_locked(a, recs[i].symbol, recs[i].key, recs[i].count,
			   recs[i].last_ts);
	pthread_mutex_unlock(&a->mu);
}

int64_t access_log_pending(struct access_log *a, const char *symbol,
			   const char *key, int64_t *last_ts)
{
	char name[LOCK_NAME_MAX + 1];
	struct access_rec *r;
	int64_t count = 0;

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	pthread_mutex_lock(&a->mu);
	r = htab_get(a->table, name);
	if (r) {
		count = r->a.count;
		if (last_ts)
			*last_ts = r->a.last_ts;
	}
	pthread_mutex_unlock(&a->mu);
	return count;
}

uint64_t access_log_dropped(struct access_log *a)
{
	uint64_t n;

	pthread_mutex_lock(&a->mu);
	n = a->dropped;
	pthread_mutex_unlock(&a->mu);
	return n;
}
