/*
 * access.c - the in-memory access log: tables from "<symbol>/<key>" to
 * (count, last access), swapped out whole at each flush, and kept as
 * pending until the flush has written them.  The log is cut
 * into shards by a hash of the name, each with its own mutex, so readers
 * of different entries do not queue on one lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "htab.h"

#define ACCESS_SHARDS 16

struct access_rec {
	char name[LOCK_NAME_MAX + 1];	/* "<symbol>/<key>", the table key */
	struct manifest_access a;
};

struct access_shard {
	pthread_mutex_t mu;
	struct htab *table;
	struct htab *in_hand;		/* taken by a flush not settled yet */
};

struct access_log {
	struct access_shard shard[ACCESS_SHARDS];
	uint64_t count;			/* atomic: records in all shards */
	uint64_t dropped;		/* atomic */
};

int access_log_new(struct access_log **out)
{
	struct access_log *a = calloc(1, sizeof(*a));
	int i, rc;

	if (!a)
		return -ENOMEM;
	for (i = 0; i < ACCESS_SHARDS; i++) {
		pthread_mutex_init(&a->shard[i].mu, NULL);
		rc = htab_new(&a->shard[i].table);
		if (rc < 0) {
			access_log_free(a);
			return rc;
		}
	}
	*out = a;
	return 0;
}

void access_log_free(struct access_log *a)
{
	int i;

	if (!a)
		return;
	for (i = 0; i < ACCESS_SHARDS; i++) {
		htab_free_values(a->shard[i].table);
		htab_free_values(a->shard[i].in_hand);
		pthread_mutex_destroy(&a->shard[i].mu);
	}
	free(a);
}

/* The shard of `name` (FNV-1a; any spread will do). */
static struct access_shard *shard_of(struct access_log *a, const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return &a->shard[h % ACCESS_SHARDS];
}

/* Add `count` accesses of `name` (symbol/key) to shard `s`, whose mutex
 * the caller holds. */
static int add_locked(struct access_log *a, struct access_shard *s,
		      const char *name, const char *symbol, const char *key,
		      int64_t count, int64_t ts)
{
	struct access_rec *r = htab_get(s->table, name);

	if (!r) {
		if (__atomic_load_n(&a->count, __ATOMIC_RELAXED) >=
		    ACCESS_PENDING_MAX) {
			__atomic_add_fetch(&a->dropped, 1, __ATOMIC_RELAXED);
			return -ENOSPC;
		}
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		snprintf(r->name, sizeof(r->name), "%s", name);
		snprintf(r->a.symbol, sizeof(r->a.symbol), "%s", symbol);
		snprintf(r->a.key, sizeof(r->a.key), "%s", key);
		if (htab_put(s->table, r->name, r) < 0) {
			free(r);
			return -ENOMEM;
		}
		__atomic_add_fetch(&a->count, 1, __ATOMIC_RELAXED);
	}
	r->a.count += count;
	if (ts > r->a.last_ts)
		r->a.last_ts = ts;
	return 0;
}

static int add(struct access_log *a, const char *symbol, const char *key,
	       int64_t count, int64_t ts)
{
	char name[LOCK_NAME_MAX + 1];
	struct access_shard *s;
	int rc;

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	s = shard_of(a, name);
	pthread_mutex_lock(&s->mu);
	rc = add_locked(a, s, name, symbol, key, count, ts);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int access_log_add(struct access_log *a, const char *symbol, const char *key,
		   int64_t ts)
{
	return add(a, symbol, key, 1, ts);
}

struct take_state {
	struct manifest_access *out;	/* room for every record taken */
	size_t n, alloc;
};

static void take_rec(void *arg, void *value)
{
	struct take_state *t = arg;
	struct access_rec *r = value;

	t->out[t->n++] = r->a;
}

int access_log_take(struct access_log *a, struct manifest_access **out,
		    size_t *n)
{
	struct take_state t = { NULL, 0, 0 };
	struct manifest_access *p;
	struct htab *fresh, *old;
	int i, rc = 0;

	*out = NULL;
	*n = 0;
	for (i = 0; i < ACCESS_SHARDS; i++) {
		struct access_shard *s = &a->shard[i];
		size_t count;

		rc = htab_new(&fresh);
		if (rc < 0)
			break;
		pthread_mutex_lock(&s->mu);
		count = htab_count(s->table);
		if (count == 0) {
			pthread_mutex_unlock(&s->mu);
			htab_free(fresh);
			continue;
		}
		p = realloc(t.out, (t.alloc + count) * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&s->mu);
			htab_free(fresh);
			rc = -ENOMEM;
			break;
		}
		t.out = p;
		t.alloc += count;
		old = s->in_hand;
		s->in_hand = s->table;
		s->table = fresh;
		__atomic_sub_fetch(&a->count, count, __ATOMIC_RELAXED);
		htab_each(s->in_hand, take_rec, &t);
		pthread_mutex_unlock(&s->mu);
		htab_free_values(old); /* a take never settled */
	}
	if (rc < 0) {
		/* out of memory half-way: put back what was taken */
		access_log_restore(a, t.out, t.n);
		access_log_settle(a);
		free(t.out);
		return rc;
	}
	*out = t.out;
	*n = t.n;
	return 0;
}

void access_log_restore(struct access_log *a,
			const struct manifest_access *recs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		add(a, recs[i].symbol, recs[i].key, recs[i].count,
		    recs[i].last_ts);
}

void access_log_settle(struct access_log *a)
{
	struct htab *done;
	int i;

	for (i = 0; i < ACCESS_SHARDS; i++) {
		pthread_mutex_lock(&a->shard[i].mu);
		done = a->shard[i].in_hand;
		a->shard[i].in_hand = NULL;
		pthread_mutex_unlock(&a->shard[i].mu);
		htab_free_values(done);
	}
}

int64_t access_log_pending(struct access_log *a, const char *symbol,
			   const char *key, int64_t *last_ts)
{
	char name[LOCK_NAME_MAX + 1];
	struct access_shard *s;
	struct access_rec *r;
	int64_t count = 0, last = 0;
	int i;

	snprintf(name, sizeof(name), "%s/%s", symbol, key);
	s = shard_of(a, name);
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < 2; i++) {
		struct htab *t = i == 0 ? s->table : s->in_hand;

		r = t ? htab_get(t, name) : NULL;
		if (r) {
			count += r->a.count;
			if (r->a.last_ts > last)
				last = r->a.last_ts;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (last_ts && count)
		*last_ts = last;
	return count;
}

uint64_t access_log_dropped(struct access_log *a)
{
	return __atomic_load_n(&a->dropped, __ATOMIC_RELAXED);
}
