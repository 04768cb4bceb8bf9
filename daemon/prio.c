/* prio.c - the prioritizers umpath.conf(5)'s `prio` names, and the reads
 * of a path for those that measure it (prio.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "prio.h"
#include "wait.h"

extern const struct umd_prioritizer umd_prio_const, umd_prio_weightedpath,
	umd_prio_path_latency;

static const struct umd_prioritizer *const prioritizers[] = {
	&umd_prio_const,
	&umd_prio_weightedpath,
	&umd_prio_path_latency,
};

const struct umd_prioritizer *umd_prio_find(const char *name)
{
	for (size_t i = 0; i < sizeof(prioritizers) / sizeof(prioritizers[0]); i++)
		if (!strcmp(prioritizers[i]->name, name))
			return prioritizers[i];
	return NULL;
}

const char *umd_prio_names(void)
{
	return "const, weightedpath or path_latency";
}

struct umd_prio_handle {
	struct umd *d;
	struct umpath_map *map;		/* holds the path open */
	char *path;
	bool direct;			/* the directio checker can read it */
};

int umd_prio_open(struct umd *d, const char *path, struct umd_prio_handle **ret,
		  char *why, size_t len)
{
	struct umd_prio_handle *h = calloc(1, sizeof(*h));
	enum umpath_checker kind;
	char *table = NULL;
	int r = -ENOMEM;

	if (!h || !(h->path = strdup(path)))
		goto fail;
	h->d = d;
	/* One group, one path: the path opened as any map opens it (or
	 * shared with the live map that has it open already). */
	if (asprintf(&table, "0 0 1 1 round-robin 0 1 1 %s 1", path) < 0) {
		table = NULL;
		goto fail;
	}
	r = umpath_map_new(d->ctx, "prio-probe", table, 0, why, len, &h->map);
	free(table);
	if (r < 0)
		goto fail;
	h->direct = !umpath_path_checker(d->ctx, path, UMPATH_CHECKER_DIRECTIO, &kind);
	*ret = h;
	return 0;
fail:
	if (h)
		free(h->path);
	free(h);
	if (r == -ENOMEM && len)
		snprintf(why, len, "out of memory");
	return r;
}

void umd_prio_close(struct umd_prio_handle *h)
{
	if (!h)
		return;
	umpath_map_free(h->map);
	free(h->path);
	free(h);
}

/* One read: its waiter and its completion each hold a reference, so a
 * waiter that gives up leaves it to the completion to free. */
struct prio_read {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned refs;
	bool done;
	int err;
};

static void read_put_locked(struct prio_read *rd, bool *freeit)
{
	*freeit = !--rd->refs;
}

static void read_free(struct prio_read *rd)
{
	pthread_mutex_destroy(&rd->lock);
	pthread_cond_destroy(&rd->cond);
	free(rd);
}

static void read_done(void *opaque, int err)
{
	struct prio_read *rd = opaque;
	bool freeit;

	pthread_mutex_lock(&rd->lock);
	rd->done = true;
	rd->err = err;
	pthread_cond_signal(&rd->cond);
	read_put_locked(rd, &freeit);
	pthread_mutex_unlock(&rd->lock);
	if (freeit)
		read_free(rd);
}

int umd_prio_read_ns(struct umd_prio_handle *h, unsigned timeout_ms, uint64_t *ret_ns)
{
	struct prio_read *rd = calloc(1, sizeof(*rd));
	uint64_t start, deadline;
	bool freeit;
	int r;

	if (!rd)
		return -ENOMEM;
	pthread_mutex_init(&rd->lock, NULL);
	um_cond_init_monotonic(&rd->cond);
	rd->refs = 2;
	start = umpath_now_ns();
	if (h->direct)
		r = umpath_path_check(h->d->ctx, h->path, UMPATH_CHECKER_DIRECTIO, read_done, rd);
	else
		r = umpath_path_probe(h->d->ctx, h->path, read_done, rd);
	if (r < 0) {
		read_free(rd);
		return r;
	}
	deadline = start + (uint64_t)timeout_ms * 1000000u;
	pthread_mutex_lock(&rd->lock);
	while (!rd->done && um_cond_wait_until(&rd->cond, &rd->lock, deadline) == 0)
		;
	r = rd->done ? rd->err : -ETIMEDOUT;
	*ret_ns = umpath_now_ns() - start;
	read_put_locked(rd, &freeit);
	pthread_mutex_unlock(&rd->lock);
	if (freeit)
		read_free(rd);
	return r;
}
