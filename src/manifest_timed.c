/*
 * manifest_timed.c - times a manifest's reads and inserts, whatever its
 * backend.
 *
 * A wrapper, as sshfs wraps a filesystem's operations in its cache: the
 * handle's ops table is replaced by a copy of its own in which get,
 * claim and publish are timed around the backend's, and close undoes
 * it.  The backends know nothing of it.
 */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "manifest.h"

struct timed_ops {
	struct manifest_ops ops;	 /* first: the handle's m->ops */
	const struct manifest_ops *inner; /* the backend's own */
	manifest_observer_fn *observe;
	void *arg;
};

static const struct timed_ops *timed_of(const struct manifest *m)
{
	return (const struct timed_ops *)m->ops;
}

static void observe_since(const struct timed_ops *t, enum manifest_timed what,
			  int64_t t0)
{
	t->observe(t->arg, what, mono_us() - t0);
}

static int timed_get(struct manifest *m, const char *symbol, const char *key,
		     struct manifest_entry *out)
{
	const struct timed_ops *t = timed_of(m);
	int64_t t0 = mono_us();
	int rc = t->inner->get(m, symbol, key, out);

	observe_since(t, MANIFEST_TIMED_READ, t0);
	return rc;
}

static int timed_claim(struct manifest *m, const struct manifest_entry *e)
{
	const struct timed_ops *t = timed_of(m);
	int64_t t0 = mono_us();
	int rc = t->inner->claim(m, e);

	observe_since(t, MANIFEST_TIMED_INSERT, t0);
	return rc;
}

static int timed_publish(struct manifest *m, const struct manifest_entry *e)
{
	const struct timed_ops *t = timed_of(m);
	int64_t t0 = mono_us();
	int rc = t->inner->publish(m, e);

	observe_since(t, MANIFEST_TIMED_INSERT, t0);
	return rc;
}

static void timed_close(struct manifest *m)
{
	struct timed_ops *t = (struct timed_ops *)m->ops;

	m->ops = t->inner;
	free(t);
	m->ops->close(m);
}

int manifest_time(struct manifest *m, manifest_observer_fn *observe,
		  void *arg)
{
	struct timed_ops *t = malloc(sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->ops = *m->ops;
	t->ops.get = timed_get;
	t->ops.claim = timed_claim;
	t->ops.publish = timed_publish;
	t->ops.close = timed_close;
	t->inner = m->ops;
	t->observe = observe;
	t->arg = arg;
	m->ops = &t->ops;
	return 0;
}
