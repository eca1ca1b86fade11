/*
 * htab.h - a chained hash table from strings to pointers.
 *
 * Keys are borrowed, not copied: the caller keeps each key alive while it
 * is in the table (nodes store their own key).  Not thread-safe; callers
 * hold their own lock.
 */
#ifndef FEATUREFS_HTAB_H
#define FEATUREFS_HTAB_H

#include <stddef.h>

struct htab;

int htab_new(struct htab **out);
void htab_free(struct htab *h);

void *htab_get(struct htab *h, const char *key);
/* Insert or replace; 0 or -ENOMEM. */
int htab_put(struct htab *h, const char *key, void *value);
/* Remove `key` if it maps to `value` (NULL: whatever it maps to). */
void htab_del(struct htab *h, const char *key, const void *value);
size_t htab_count(const struct htab *h);

/* As a set of strings: add a copy of `s` (owned by the table) unless
 * present; 0 or -ENOMEM. */
int htab_add_string(struct htab *h, const char *s);
/* free(3) every value, then the table (NULL is fine). */
void htab_free_values(struct htab *h);

/* Call fn for each value; fn must not change the table. */
void htab_each(struct htab *h, void (*fn)(void *arg, void *value), void *arg);

#endif
