/*
 * manifest_bench.c - latency of the manifest's insert and read paths,
 * measured on the backend itself (linked against libfeaturefs-core.a).
 *
 *   manifest_bench [-p PREFILL] [-n OPS] [-a ACCESSES] STORE
 *
 * STORE is an unmounted store made by `featurefs init`.  Inserts PREFILL
 * rows untimed, then times OPS inserts the way a publish does them
 * (claim = INSERT of a `writing` row in BEGIN IMMEDIATE, then publish =
 * UPDATE to `published`), OPS reads of random published keys and OPS
 * reads of unknown keys, and ACCESSES access records written as one
 * batched record() call against one call per record.  Prints one JSON
 * object with p50/p95/p99 in µs per operation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "manifest.h"

/* A 64-hex-digit key derived from `n` (distinct per n and salt). */
static void key_of(uint64_t n, uint64_t salt, char *key)
{
	uint64_t s = n * 2654435761u + salt;
	int i;

	for (i = 0; i < 4; i++)
		snprintf(key + 16 * i, 17, "%016llx",
			 (unsigned long long)next_rand(&s));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_stats(const char *name, int64_t *v, size_t n, int last)
{
	double sum = 0;
	size_t i;

	qsort(v, n, sizeof(*v), cmp_i64);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
	printf("  \"%s\": {\"n\": %zu, \"mean_us\": %.2f, \"p50_us\": %.2f, "
	       "\"p95_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f}%s\n",
	       name, n, sum / (double)n / 1e3, v[n / 2] / 1e3,
	       v[(size_t)((double)(n - 1) * 0.95 + 0.5)] / 1e3,
	       v[(size_t)((double)(n - 1) * 0.99 + 0.5)] / 1e3, v[n - 1] / 1e3,
	       last ? "" : ",");
}

static int read_uuid(const char *store, char *uuid, size_t len)
{
	char path[4096], line[256];
	FILE *f;
	int rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/store.conf", store);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "uuid = %36s", uuid) == 1 && strlen(uuid) < len) {
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

static void fill_entry(struct manifest_entry *e, const char *symbol,
		       const char *key, enum entry_state state)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->symbol, sizeof(e->symbol), "%s", symbol);
	snprintf(e->key, sizeof(e->key), "%s", key);
	store_object_relpath(symbol, key, e->path, sizeof(e->path));
	e->state = state;
	e->rows = state == ENTRY_PUBLISHED ? 86000 : -1;
	e->has_ts = state == ENTRY_PUBLISHED;
	e->start_ts = 1704187800000000;
	e->end_ts = 1704188660000000;
	e->file_size = e->stored_size = 1 << 20;
	snprintf(e->compression, sizeof(e->compression), "none");
	snprintf(e->hash_method, sizeof(e->hash_method), "full");
	if (state == ENTRY_PUBLISHED)
		memset(e->sha256, 'a', 64);
	e->created_ts = (int64_t)time(NULL) * 1000000;
	e->mode = 0644;
	snprintf(e->writer, sizeof(e->writer), "benchhost pid=%ld mount=bench",
		 (long)getpid());
}

static const char *const symbols[] = { "AAPL", "MSFT", "ES^F", "BTC-USD" };
#define NSYM 4

static int insert(struct manifest *m, uint64_t n, uint64_t salt,
		  int64_t *claim_ns, int64_t *publish_ns)
{
	struct manifest_entry e;
	char key[65];
	int64_t t0, t1, t2;
	int rc;

	key_of(n, salt, key);
	fill_entry(&e, symbols[n % NSYM], key, ENTRY_WRITING);
	t0 = now_ns();
	rc = manifest_claim(m, &e);
	t1 = now_ns();
	if (rc == 0) {
		fill_entry(&e, symbols[n % NSYM], key, ENTRY_PUBLISHED);
		rc = manifest_publish(m, &e);
	}
	t2 = now_ns();
	if (claim_ns)
		*claim_ns = t1 - t0;
	if (publish_ns)
		*publish_ns = t2 - t1;
	return rc;
}

int main(int argc, char **argv)
{
	struct manifest_open_args args = { 0 };
	struct manifest *m = NULL;
	struct manifest_entry e;
	struct manifest_access *acc;
	char uuid[64], key[65];
	long prefill = 10000, ops = 2000, accesses = 2000, i;
	int64_t *claim, *publish, *both, *hit, *miss, t0, batched, single;
	uint64_t salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	uint64_t rnd = 42;
	int c, rc;

	while ((c = getopt(argc, argv, "p:n:a:")) != -1) {
		switch (c) {
		case 'p': prefill = atol(optarg); break;
		case 'n': ops = atol(optarg); break;
		case 'a': accesses = atol(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || ops < 1 || prefill < 0 || accesses < 1)
		goto usage;
	if (read_uuid(argv[optind], uuid, sizeof(uuid)) < 0) {
		fprintf(stderr, "manifest_bench: no uuid in %s/store.conf\n",
			argv[optind]);
		return 1;
	}
	args.store_root = argv[optind];
	args.store_uuid = uuid;
	rc = manifest_open("sqlite", &args, &m);
	if (rc < 0) {
		fprintf(stderr, "manifest_bench: open: %s\n", strerror(-rc));
		return 1;
	}
	claim = calloc((size_t)ops, sizeof(*claim));
	publish = calloc((size_t)ops, sizeof(*publish));
	both = calloc((size_t)ops, sizeof(*both));
	hit = calloc((size_t)ops, sizeof(*hit));
	miss = calloc((size_t)ops, sizeof(*miss));
	acc = calloc((size_t)accesses, sizeof(*acc));
	if (!claim || !publish || !both || !hit || !miss || !acc)
		return 1;
	for (i = 0; i < prefill; i++) {
		rc = insert(m, (uint64_t)i, salt, NULL, NULL);
		if (rc < 0)
			goto fail;
	}
	for (i = 0; i < ops; i++) {
		rc = insert(m, (uint64_t)(prefill + i), salt, &claim[i],
			    &publish[i]);
		if (rc < 0)
			goto fail;
		both[i] = claim[i] + publish[i];
	}
	for (i = 0; i < ops; i++) {
		uint64_t n = next_rand(&rnd) % (uint64_t)(prefill + ops);

		key_of(n, salt, key);
		t0 = now_ns();
		rc = manifest_get(m, symbols[n % NSYM], key, &e);
		hit[i] = now_ns() - t0;
		if (rc < 0)
			goto fail;
		key_of(n, salt ^ 0x5555, key);
		t0 = now_ns();
		rc = manifest_get(m, symbols[n % NSYM], key, &e);
		miss[i] = now_ns() - t0;
		if (rc != -ENOENT)
			goto fail;
	}
	for (i = 0; i < accesses; i++) {
		uint64_t n = next_rand(&rnd) % (uint64_t)(prefill + ops);

		snprintf(acc[i].symbol, sizeof(acc[i].symbol), "%s",
			 symbols[n % NSYM]);
		key_of(n, salt, acc[i].key);
		acc[i].count = 1;
		acc[i].last_ts = (int64_t)time(NULL) * 1000000;
	}
	t0 = now_ns();
	rc = manifest_record(m, acc, (size_t)accesses, NULL, 0, 0);
	batched = now_ns() - t0;
	if (rc < 0)
		goto fail;
	t0 = now_ns();
	for (i = 0; i < accesses && rc == 0; i++)
		rc = manifest_record(m, &acc[i], 1, NULL, 0, 0);
	single = now_ns() - t0;
	if (rc < 0)
		goto fail;
	printf("{\n  \"backend\": \"%s\", \"prefill\": %ld, \"ops\": %ld,\n",
	       manifest_backend_name(m), prefill, ops);
	printf("  \"access_records\": {\"n\": %ld, \"batched_s\": %.6f, "
	       "\"one_each_s\": %.6f, \"batched_per_s\": %.0f, "
	       "\"one_each_per_s\": %.0f, \"speedup\": %.1f},\n",
	       accesses, batched / 1e9, single / 1e9, accesses / (batched / 1e9),
	       accesses / (single / 1e9), (double)single / (double)batched);
	print_stats("insert_claim", claim, (size_t)ops, 0);
	print_stats("insert_publish", publish, (size_t)ops, 0);
	print_stats("insert", both, (size_t)ops, 0);
	print_stats("read_hit", hit, (size_t)ops, 0);
	print_stats("read_miss", miss, (size_t)ops, 1);
	printf("}\n");
	manifest_close(m);
	return 0;
fail:
	fprintf(stderr, "manifest_bench: %s\n", strerror(-rc));
	manifest_close(m);
	return 1;
usage:
	fprintf(stderr, "usage: manifest_bench [-p PREFILL] [-n OPS] "
			"[-a ACCESSES] STORE\n");
	return 2;
}
