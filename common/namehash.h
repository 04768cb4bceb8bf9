/* namehash.h - intrusive hash table of objects by a name string, chained,
 * doubling as it fills.  For registries a daemon of ten thousand maps looks
 * names up in on every probe or open, where a list walk made the cost grow
 * with the square of the count (bench/scale.sh).  The caller locks. */
#ifndef UMPATH_NAMEHASH_H
#define UMPATH_NAMEHASH_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct name_node {
	struct name_node *next;		/* in its bucket */
	const char *name;		/* owned by the object; set before add */
};

struct name_hash {
	struct name_node **b;		/* nb buckets, a power of two */
	size_t nb, n;
};

#define NAME_HASH_MIN 64u

static inline uint64_t name_hash_fn(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3u;
	return h;
}

static inline int name_hash_init(struct name_hash *t)
{
	t->n = 0;
	t->nb = NAME_HASH_MIN;
	t->b = calloc(t->nb, sizeof(*t->b));
	return t->b ? 0 : -ENOMEM;
}

static inline void name_hash_free(struct name_hash *t)
{
	free(t->b);
	t->b = NULL;
	t->nb = t->n = 0;
}

static inline struct name_node *name_hash_find(const struct name_hash *t, const char *name)
{
	struct name_node *e;

	for (e = t->b[name_hash_fn(name) & (t->nb - 1)]; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

/* Never fails: if the bigger table cannot be had, chains grow instead. */
static inline void name_hash_add(struct name_hash *t, struct name_node *e)
{
	struct name_node **b = t->b;

	if (t->n >= t->nb && (b = calloc(2 * t->nb, sizeof(*b)))) {
		for (size_t i = 0; i < t->nb; i++) {
			while (t->b[i]) {
				struct name_node *x = t->b[i];
				size_t j = name_hash_fn(x->name) & (2 * t->nb - 1);

				t->b[i] = x->next;
				x->next = b[j];
				b[j] = x;
			}
		}
		free(t->b);
		t->b = b;
		t->nb *= 2;
	}
	b = &t->b[name_hash_fn(e->name) & (t->nb - 1)];
	e->next = *b;
	*b = e;
	t->n++;
}

/* e must be in t. */
static inline void name_hash_del(struct name_hash *t, struct name_node *e)
{
	struct name_node **pp = &t->b[name_hash_fn(e->name) & (t->nb - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	e->next = NULL;
	t->n--;
}

#endif
