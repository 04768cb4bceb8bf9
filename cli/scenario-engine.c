/* scenario-engine.c - the scenario backend that drives libumpath in this
 * process: maps made with umpath_map_new, paths p0..pN-1 as mem paths over
 * one store, I/O submitted to the map and waited for. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "cli.h"
#include "scenario.h"

#define ENG_MAX_MAPS 64

struct eng_map {
	char *name;
	struct umpath_map *map;
};

struct eng {
	struct scn_backend b;
	struct umpath_ctx *ctx;
	pthread_mutex_t lock;		/* guards maps against background I/O */
	struct eng_map maps[ENG_MAX_MAPS];
	unsigned nmaps;
};

/* ---- synchronous I/O over the async API ------------------------------- */

struct sync_io {
	struct umpath_io io;
	struct umpath_pool_wait pool;	/* while the map's pool is full */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool pool_ready;
	int err;
};

static void sync_done(struct umpath_io *io, int err)
{
	struct sync_io *s = (struct sync_io *)io;

	pthread_mutex_lock(&s->lock);
	s->done = true;
	s->err = err;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void sync_pool_ready(struct umpath_pool_wait *w)
{
	struct sync_io *s = w->opaque;

	pthread_mutex_lock(&s->lock);
	s->pool_ready = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int cli_sync_io(struct umpath_map *map, enum umpath_op op, uint64_t off, uint64_t len, void *buf)
{
	struct sync_io s = {
		.io = { .op = op, .offset = off, .length = len, .buf = buf, .done = sync_done },
	};
	int r;

	s.pool.fn = sync_pool_ready;
	s.pool.opaque = &s;
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	/* A full pool: wait until the map frees a request, then retry. */
	while ((r = umpath_map_submit(map, &s.io)) == -EAGAIN) {
		s.pool_ready = false;
		if (umpath_map_pool_wait(map, &s.pool) == 1)
			continue;
		pthread_mutex_lock(&s.lock);
		while (!s.pool_ready)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
	}
	if (r == 0) {
		pthread_mutex_lock(&s.lock);
		while (!s.done)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
		r = s.err;
	}
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.cond);
	return r;
}

/* ---- maps by name ----------------------------------------------------- */

static struct eng *to_eng(struct scn_backend *b)
{
	return (struct eng *)b;
}

static struct umpath_map *eng_find(struct eng *e, const char *name)
{
	struct umpath_map *map = NULL;

	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->nmaps; i++)
		if (!strcmp(e->maps[i].name, name))
			map = e->maps[i].map;
	pthread_mutex_unlock(&e->lock);
	return map;
}

/* ---- commands --------------------------------------------------------- */

static int eng_paths(struct scn_backend *b, unsigned n)
{
	char names[64][16];
	const char *ptrs[64];

	if (n > 64)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "p%u", i);
		ptrs[i] = names[i];
	}
	return umpath_mem_store_new(to_eng(b)->ctx, (uint64_t)SCN_SECTORS * UMPATH_SECTOR_SIZE, n,
				    ptrs, 1);
}

static void eng_paths_reset(struct scn_backend *b)
{
	umpath_mem_reset(to_eng(b)->ctx);
}

static int eng_create(struct scn_backend *b, const char *name, const char *table, char *err,
		      size_t errlen)
{
	struct eng *e = to_eng(b);
	struct umpath_map *map;
	char *copy;
	int r;

	if (eng_find(e, name)) {
		snprintf(err, errlen, "device %s already exists", name);
		return -EBUSY;
	}
	if (e->nmaps == ENG_MAX_MAPS) {
		snprintf(err, errlen, "too many maps");
		return -ENOMEM;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	r = umpath_map_new(e->ctx, name, table, (uint64_t)SCN_SECTORS * UMPATH_SECTOR_SIZE, err,
			   errlen, &map);
	if (r < 0) {
		free(copy);
		return r;
	}
	pthread_mutex_lock(&e->lock);
	e->maps[e->nmaps].name = copy;
	e->maps[e->nmaps++].map = map;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static int eng_load(struct scn_backend *b, const char *name, const char *table, char *err,
		    size_t errlen)
{
	struct umpath_map *map = eng_find(to_eng(b), name);

	if (!map) {
		snprintf(err, errlen, "device %s does not exist", name);
		return -ENXIO;
	}
	return umpath_map_load(map, table, err, errlen);
}

static int eng_suspend(struct scn_backend *b, const char *name, bool noflush)
{
	struct umpath_map *map = eng_find(to_eng(b), name);

	return map ? umpath_map_suspend(map, noflush ? UMPATH_SUSPEND_NOFLUSH : 0) : -ENXIO;
}

static int eng_resume(struct scn_backend *b, const char *name)
{
	struct umpath_map *map = eng_find(to_eng(b), name);

	return map ? umpath_map_resume(map) : -ENXIO;
}

static int eng_remove(struct scn_backend *b, const char *name)
{
	struct eng *e = to_eng(b);
	struct umpath_map *map = NULL;

	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->nmaps; i++) {
		if (!strcmp(e->maps[i].name, name)) {
			map = e->maps[i].map;
			free(e->maps[i].name);
			e->maps[i] = e->maps[--e->nmaps];
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (!map)
		return -ENXIO;
	umpath_map_free(map);
	return 0;
}

static int eng_busy(struct scn_backend *b, const char *name)
{
	struct umpath_map *map = eng_find(to_eng(b), name);
	struct umpath_map_info info;
	int r;

	if (!map)
		return -ENXIO;
	r = umpath_map_info(map, &info);
	return r < 0 ? r : (int)(info.queued_ios + info.inflight_ios);
}

static int eng_status(struct scn_backend *b, const char *name, bool table, char *buf, size_t len)
{
	struct umpath_map *map = eng_find(to_eng(b), name);

	if (!map)
		return -ENXIO;
	if (table)
		umpath_map_table(map, buf, len);
	else
		umpath_map_status(map, buf, len);
	return 0;
}

static int eng_message(struct scn_backend *b, const char *name, int argc, char **argv)
{
	struct umpath_map *map = eng_find(to_eng(b), name);

	return map ? umpath_map_message(map, argc, argv) : -ENXIO;
}

static int eng_set_online(struct scn_backend *b, const char *path, bool online)
{
	return umpath_mem_set_fault(to_eng(b)->ctx, path,
				    online ? UMPATH_MEM_ONLINE : UMPATH_MEM_OFFLINE, 0);
}

/* The map itself stands for the open device. */
static int eng_io_open(struct scn_backend *b, const char *name, struct scn_io **ret)
{
	struct umpath_map *map = eng_find(to_eng(b), name);

	if (!map)
		return -ENXIO;
	*ret = (struct scn_io *)map;
	return 0;
}

static int eng_io(struct scn_io *io, bool write, uint64_t offset, void *buf, size_t len)
{
	return cli_sync_io((struct umpath_map *)io, write ? UMPATH_OP_WRITE : UMPATH_OP_READ,
			   offset, len, buf);
}

static void eng_io_close(struct scn_io *io)
{
}

static void eng_free(struct scn_backend *b)
{
	struct eng *e = to_eng(b);

	while (e->nmaps)
		eng_remove(b, e->maps[0].name);
	umpath_mem_reset(e->ctx);
	umpath_ctx_free(e->ctx);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static const struct scn_backend_ops eng_ops = {
	.paths = eng_paths,
	.paths_reset = eng_paths_reset,
	.create = eng_create,
	.load = eng_load,
	.suspend = eng_suspend,
	.resume = eng_resume,
	.remove = eng_remove,
	.status = eng_status,
	.busy = eng_busy,
	.message = eng_message,
	.set_online = eng_set_online,
	.io_open = eng_io_open,
	.io = eng_io,
	.io_close = eng_io_close,
	.free = eng_free,
};

int scn_engine_new(struct scn_backend **ret)
{
	struct eng *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	r = umpath_ctx_new(NULL, &e->ctx);
	if (r < 0) {
		fprintf(stderr, "umpath: cannot start the engine: %s\n", strerror(-r));
		free(e);
		return r;
	}
	pthread_mutex_init(&e->lock, NULL);
	e->b.ops = &eng_ops;
	*ret = &e->b;
	return 0;
}
