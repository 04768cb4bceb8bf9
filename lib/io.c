/* io.c - one I/O's life through a map: taken from the map's request pool,
 * mapped to a path by the current group's selector (or queued, or killed),
 * handed to the path's transport, and on completion either returned to the
 * caller or - on a path error - the path failed and the I/O mapped again.
 * A flush first visits every path that completed writes since its last
 * flush (separate connections do not share a write cache). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mpath.h"

#define REQUEUE_DELAY_NS (100u * 1000000u)	/* the kernel's DM_MAPIO_DELAY_REQUEUE */

enum disposition {
	DISP_SUBMIT,	/* hand rq->tio to *ret_path */
	DISP_QUEUED,	/* parked on the queued or held list */
	DISP_KILL,	/* complete with *ret_err */
};

static void req_tio_done(struct um_tio *tio, int err);

static void requeue_timer_fn(struct um_timer *t)
{
	struct umpath_map *map = container_of(t, struct umpath_map, requeue_timer);

	map_kick_queue(map);
}

/* Requests come in chunks, allocated as the map's I/O first needs them:
 * an idle map holds none, a busy one what its deepest queue took (16, 16,
 * 32, 64 ... up to 1,024 a chunk), never more than pool_max.  An
 * up-front pool of 4,096 was 575 KiB a map (bench/scale.sh). */
#define POOL_CHUNK_MIN 16u
#define POOL_CHUNK_MAX 1024u

struct mp_req_chunk {
	struct mp_req_chunk *next;
	struct mp_req reqs[];
};

int map_pool_init(struct umpath_map *map, unsigned size)
{
	map->chunks = NULL;
	map->nreqs = 0;
	map->pool_max = size;
	um_timer_init(&map->requeue_timer, requeue_timer_fn);
	return 0;
}

/* One more chunk on the free list; -ENOMEM, or -EAGAIN at pool_max. */
static int pool_grow_locked(struct umpath_map *map)
{
	unsigned n = map->nreqs < POOL_CHUNK_MIN ? POOL_CHUNK_MIN : map->nreqs;
	struct mp_req_chunk *c;

	map_assert_locked(map);
	if (n > POOL_CHUNK_MAX)
		n = POOL_CHUNK_MAX;
	if (n > map->pool_max - map->nreqs)
		n = map->pool_max - map->nreqs;
	if (!n)
		return -EAGAIN;
	c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->reqs[0]));
	if (!c)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct mp_req *rq = &c->reqs[i];

		rq->map = map;
		rq->tio.done = req_tio_done;
		list_init(&rq->tio.tp_node);
		list_add_tail(&rq->node, &map->free_reqs);
	}
	c->next = map->chunks;
	map->chunks = c;
	map->nreqs += n;
	return 0;
}

bool map_pool_room_locked(struct umpath_map *map)
{
	return !list_empty(&map->free_reqs) || map->nreqs < map->pool_max;
}

void map_pool_free(struct umpath_map *map)
{
	while (map->chunks) {
		struct mp_req_chunk *c = map->chunks;

		map->chunks = c->next;
		free(c);
	}
	map->nreqs = 0;
}

static void req_release_locked(struct umpath_map *map, struct mp_req *rq)
{
	map_assert_locked(map);
	if (!list_empty(&map->unsettled))
		unsettled_release_locked(map, rq);
	rq->io = NULL;
	rq->pgpath = NULL;
	list_add(&rq->node, &map->free_reqs);	/* LIFO: warm in cache */
	atomic_fetch_add_explicit(&map->completing, 1, memory_order_relaxed);
	if (!--map->busy)	/* req_complete() follows, after the unlock */
		map_wake_locked(map);
}

/* Call the client's done() for a request req_release_locked() retired,
 * without the lock.  Counted until it returns: umpath_map_free() promises
 * that no completion follows it (tests/fuzz/fuzz-message found one that
 * did, on another thread, after the map was gone).  The count is lowered
 * without the lock - a lock round per I/O less - and is the last touch of
 * the map: umpath_map_free() polls it rather than being woken. */
static void req_complete(struct umpath_map *map, struct umpath_io *io, int err)
{
	io->done(io, err);
	atomic_fetch_sub_explicit(&map->completing, 1, memory_order_release);
}

static bool op_writes(enum umpath_op op)
{
	return op == UMPATH_OP_WRITE || op == UMPATH_OP_TRIM || op == UMPATH_OP_WRITE_ZEROES;
}

static bool path_dirty(struct um_path *p)
{
	return atomic_load(&p->write_gen) != atomic_load(&p->flushed_gen);
}

/* Record that everything written through p up to gen is durable. */
static void path_mark_flushed(struct um_path *p, uint64_t gen)
{
	uint64_t cur = atomic_load(&p->flushed_gen);

	while (cur < gen && !atomic_compare_exchange_weak(&p->flushed_gen, &cur, gen))
		;
}

/* The next path after `after` (or the first, if NULL) in table order with
 * unflushed writes.  A path named twice is flushed once: the second visit
 * finds it clean. */
static struct pgpath *next_dirty_locked(struct multipath *m, struct pgpath *after)
{
	struct priority_group *pg;
	struct pgpath *p;
	bool seen = after == NULL;

	list_for_each_entry(pg, &m->priority_groups, list) {
		list_for_each_entry(p, &pg->pgpaths, list) {
			if (!seen) {
				seen = p == after;
				continue;
			}
			if (path_dirty(p->path))
				return p;
		}
	}
	return NULL;
}

static void dispatch_to_locked(struct umpath_map *map, struct mp_req *rq, struct pgpath *pgpath)
{
	rq->pgpath = pgpath;
	rq->start_ns = um_now_ns();
	map->inflight++;
	atomic_fetch_add_explicit(&pgpath->path->st_inflight, 1, memory_order_relaxed);
}

static void path_account(struct um_path *p, const struct um_tio *tio, int err, uint64_t start_ns)
{
	atomic_fetch_sub_explicit(&p->st_inflight, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->st_ios, 1, memory_order_relaxed);
	if (tio->op == UMPATH_OP_READ || tio->op == UMPATH_OP_WRITE) {
		/* st_bytes is their sum, added when read (path.c). */
		atomic_fetch_add_explicit(tio->op == UMPATH_OP_READ ? &p->st_read_bytes :
					  &p->st_write_bytes, tio->length, memory_order_relaxed);
	}
	if (err) {
		atomic_fetch_add_explicit(&p->st_errors, 1, memory_order_relaxed);
		if (umpath_is_path_error(err))
			atomic_fetch_add_explicit(&p->st_path_errors, 1, memory_order_relaxed);
	}
	uint64_t lat = um_now_ns() - start_ns;
	unsigned b = lat ? 64 - (unsigned)__builtin_clzll(lat) : 0;

	atomic_fetch_add_explicit(&p->st_lat_ns_sum, lat, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->st_lat_hist[b < UM_LAT_BUCKETS ? b : UM_LAT_BUCKETS - 1], 1,
				  memory_order_relaxed);
}

/* The kernel's multipath_clone_and_map.  remap: the request was mapped
 * before (requeued after a path error, or queued), so a suspended map maps
 * it again rather than holding it back. */
static enum disposition map_io_locked(struct umpath_map *map, struct mp_req *rq, bool remap,
				      struct um_path **ret_path, int *ret_err)
{
	struct multipath *m = map->live;
	size_t nr_bytes = (size_t)rq->io->length;
	struct pgpath *pgpath;

	map_assert_locked(map);
	if (map->dying) {
		*ret_err = -EIO;
		return DISP_KILL;
	}
	if (map->suspended && !remap) {
		list_add_tail(&rq->node, &map->held);
		return DISP_QUEUED;
	}
	if (!list_empty(&map->unsettled) || map->unsettled_lost) {
		/* An older write to these blocks may still land: this one
		 * waits until it settles (fence.c), on the queue, which every
		 * settling and fence answer kicks. */
		int r = unsettled_check_locked(map, rq);

		if (r < 0) {
			*ret_err = r;
			return DISP_KILL;
		}
		if (r) {
			rq->pgpath = NULL;
			list_add_tail(&rq->node, &map->queued);
			return DISP_QUEUED;
		}
	}

	if (rq->kind == REQ_FLUSH_FANOUT) {
		pgpath = next_dirty_locked(m, NULL);
		if (pgpath) {
			rq->flush_gen = atomic_load(&pgpath->path->write_gen);
			dispatch_to_locked(map, rq, pgpath);
			*ret_path = pgpath->path;
			return DISP_SUBMIT;
		}
		rq->kind = REQ_NORMAL;	/* nothing dirty: one flush, anywhere */
	}

	pgpath = m->current_pgpath;
	if (!pgpath || !(m->flags & MPATHF_QUEUE_IO))
		pgpath = choose_pgpath_locked(m, nr_bytes);

	if (!pgpath) {
		if (must_push_back_locked(m)) {
			rq->pgpath = NULL;
			list_add_tail(&rq->node, &map->queued);
			return DISP_QUEUED;
		}
		*ret_err = -EIO;
		return DISP_KILL;
	}
	if (m->flags & (MPATHF_QUEUE_IO | MPATHF_PG_INIT_REQUIRED)) {
		pg_init_all_paths_locked(m);
		rq->pgpath = NULL;
		list_add_tail(&rq->node, &map->queued);
		/* pg_init_done kicks the queue; this catches the cases where
		 * no activation could be started. */
		um_timer_arm(map->ctx->loop, &map->requeue_timer, REQUEUE_DELAY_NS);
		return DISP_QUEUED;
	}

	pgpath->pg->ps.type->start_io(&pgpath->pg->ps, &pgpath->ps, nr_bytes);
	dispatch_to_locked(map, rq, pgpath);
	*ret_path = pgpath->path;
	return DISP_SUBMIT;
}

static void req_prepare_tio(struct mp_req *rq)
{
	struct umpath_io *io = rq->io;

	rq->tio.op = io->op;
	rq->tio.flags = io->flags;
	rq->tio.offset = io->offset;
	rq->tio.length = io->op == UMPATH_OP_FLUSH ? 0 : io->length;
	rq->tio.buf = io->buf;
	rq->tio.unsettled = 0;
}

/* Act on a mapping decision, without the lock. */
static void req_act(struct mp_req *rq, enum disposition d, struct um_path *path, int err)
{
	struct umpath_map *map = rq->map;
	struct umpath_io *io;

	switch (d) {
	case DISP_SUBMIT:
		req_prepare_tio(rq);
		um_path_submit(path, &rq->tio);
		break;
	case DISP_QUEUED:
		break;
	case DISP_KILL:
		map_lock(map);
		io = rq->io;
		req_release_locked(map, rq);
		map_unlock(map);
		req_complete(map, io, err);
		break;
	}
}

static void req_remap(struct mp_req *rq)
{
	struct umpath_map *map = rq->map;
	struct um_path *path = NULL;
	enum disposition d;
	int err = 0;

	map_lock(map);
	d = map_io_locked(map, rq, true, &path, &err);
	map_unlock(map);
	req_act(rq, d, path, err);
}

void map_kick_queue(struct umpath_map *map)
{
	struct list_head todo;
	struct mp_req *rq, *n;

	list_init(&todo);
	map_lock(map);
	list_splice_tail_init(&map->queued, &todo);
	map_unlock(map);
	list_for_each_entry_safe(rq, n, &todo, node) {
		list_del_init(&rq->node);
		req_remap(rq);
	}
}

/* The target's path error policy (multipath-v0's failure budget): true if
 * rq, which just failed on pgpath with a path error, is to be sent to
 * that same path again rather than the path failed. */
static bool retry_on_path_locked(struct umpath_map *map, struct mp_req *rq,
				 struct pgpath *pgpath)
{
	const struct mp_target *t = pgpath->pg->m->target;

	if (!t->retry_path_error_locked || map->dying)
		return false;
	/* A write the path may still apply is never sent again behind
	 * itself: it fails the path at once (docs/stale-writes.md). */
	if (rq->tio.unsettled && op_writes(rq->tio.op))
		return false;
	return t->retry_path_error_locked(pgpath, rq->tio.offset);
}

/* A step of a flush fan-out ended.  Returns true if rq went on (to the next
 * dirty path, or to be mapped as a covering flush); false if it is done
 * with *err. */
static bool fanout_step_locked(struct umpath_map *map, struct mp_req *rq, int *err,
			       struct um_path **ret_path, bool *ret_remap)
{
	struct pgpath *pgpath = rq->pgpath;
	struct pgpath *next;

	if (!*err) {
		path_mark_flushed(pgpath->path, rq->flush_gen);
	} else if (umpath_is_path_error(*err) && retry_on_path_locked(map, rq, pgpath)) {
		dispatch_to_locked(map, rq, pgpath);
		*ret_path = pgpath->path;
		return true;
	} else if (umpath_is_path_error(*err)) {
		/* Its cache may be lost with it; the covering flush through a
		 * working path is all that can still be done (docs/stale-writes.md). */
		fail_path_locked(pgpath);
		path_mark_flushed(pgpath->path, rq->flush_gen);
		rq->flush_cover = true;
	} else if (!rq->flush_err) {
		rq->flush_err = *err;
	}

	next = map->dying ? NULL : next_dirty_locked(map->live, pgpath);
	if (next) {
		rq->flush_gen = atomic_load(&next->path->write_gen);
		dispatch_to_locked(map, rq, next);
		*ret_path = next->path;
		return true;
	}
	if (rq->flush_cover && !rq->flush_err) {
		rq->kind = REQ_NORMAL;
		*ret_remap = true;
		return true;
	}
	*err = rq->flush_err;
	return false;
}

static void req_tio_done(struct um_tio *tio, int err)
{
	struct mp_req *rq = container_of(tio, struct mp_req, tio);
	struct umpath_map *map = rq->map;
	struct pgpath *pgpath = rq->pgpath;
	struct um_path *next_path = NULL;
	struct umpath_io *io = NULL;
	struct fence_call fence = { 0 };
	bool requeue = false, retry = false;

	path_account(pgpath->path, tio, err, rq->start_ns);
	map_lock(map);
	if (!--map->inflight)
		map_wake_locked(map);

	if (rq->kind == REQ_FLUSH_FANOUT) {
		if (fanout_step_locked(map, rq, &err, &next_path, &requeue))
			goto out;
		goto complete;
	}

	if (!err && op_writes(tio->op) && !(tio->flags & UMPATH_IO_FUA))
		atomic_fetch_add(&pgpath->path->write_gen, 1);
	else if (!err && tio->op == UMPATH_OP_FLUSH)
		path_mark_flushed(pgpath->path, atomic_load(&pgpath->path->write_gen));

	if (err && umpath_is_path_error(err) && retry_on_path_locked(map, rq, pgpath)) {
		retry = true;
	} else if (err && umpath_is_path_error(err)) {
		/* Mapped again even when no path is left: the mapping then
		 * queues it or fails it with EIO, and clears the current group
		 * as Linux 6.12 is seen to do (tests/conformance/
		 * no-queue-no-path, last-path-fails). */
		requeue = true;
		fail_path_locked(pgpath);
		if (tio->unsettled && op_writes(tio->op))
			unsettled_add_locked(map, rq, pgpath->path, &fence);
	}
	pgpath->pg->ps.type->end_io(&pgpath->pg->ps, &pgpath->ps, (size_t)tio->length,
				    rq->start_ns);
	if (retry) {
		pgpath->pg->ps.type->start_io(&pgpath->pg->ps, &pgpath->ps, (size_t)tio->length);
		dispatch_to_locked(map, rq, pgpath);
		next_path = pgpath->path;
		goto out;
	}
	if (requeue)
		goto out;
complete:
	io = rq->io;
	req_release_locked(map, rq);
out:
	map_unlock(map);
	fence_call_run(map, &fence);	/* before the retry: rq keeps the map alive */
	if (retry)
		req_prepare_tio(rq);
	if (next_path)
		um_path_submit(next_path, tio);
	else if (requeue)
		req_remap(rq);
	else
		req_complete(map, io, err);
}

int umpath_map_submit(struct umpath_map *map, struct umpath_io *io)
{
	struct um_path *path = NULL;
	struct mp_req *rq;
	enum disposition d;
	int err = 0;

	switch (io->op) {
	case UMPATH_OP_FLUSH:
		break;
	case UMPATH_OP_READ:
	case UMPATH_OP_WRITE:
		if (!io->buf && io->length)
			return -EINVAL;
		/* fall through */
	case UMPATH_OP_TRIM:
	case UMPATH_OP_WRITE_ZEROES:
		if (io->offset > map->size || io->length > map->size - io->offset)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (!io->done)
		return -EINVAL;

	map_lock(map);
	if (map->dying) {
		map_unlock(map);
		return -ENXIO;
	}
	if (list_empty(&map->free_reqs)) {
		int r = pool_grow_locked(map);

		if (r < 0) {
			map_unlock(map);
			return r;
		}
	}
	rq = list_first_entry(&map->free_reqs, struct mp_req, node);
	list_del_init(&rq->node);
	map->busy++;
	rq->io = io;
	rq->kind = io->op == UMPATH_OP_FLUSH ? REQ_FLUSH_FANOUT : REQ_NORMAL;
	rq->flush_cover = false;
	rq->flush_err = 0;
	d = map_io_locked(map, rq, false, &path, &err);
	map_unlock(map);
	req_act(rq, d, path, err);
	return 0;
}
