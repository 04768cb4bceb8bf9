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
static void hedge_timer_fn(struct um_timer *t);
static void req_remap(struct mp_req *rq);
static bool retry_on_path_locked(struct umpath_map *map, struct mp_req *rq,
				 struct pgpath *pgpath);

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
	unsigned n;
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
		um_timer_init(&rq->hedge_timer, hedge_timer_fn);
		list_add_tail(&rq->node, &map->free_reqs);
	}
	c->n = n;
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
		for (unsigned i = 0; i < c->n; i++)
			free(c->reqs[i].bounce);
		free(c);
	}
	map->nreqs = 0;
}

/* A large read's own buffer is not kept for the next request. */
#define BOUNCE_KEEP_MAX (1u << 20)

/* rq back to the pool, its client answered already (or about to be). */
static void req_retire_locked(struct umpath_map *map, struct mp_req *rq)
{
	map_assert_locked(map);
	if (!list_empty(&map->unsettled))
		unsettled_release_locked(map, rq);
	if (rq->bounce_len > BOUNCE_KEEP_MAX) {
		free(rq->bounce);
		rq->bounce = NULL;
		rq->bounce_len = 0;
	}
	rq->io = NULL;
	rq->pgpath = NULL;
	list_add(&rq->node, &map->free_reqs);	/* LIFO: warm in cache */
	if (!--map->busy)
		map_wake_locked(map);
}

static void req_release_locked(struct umpath_map *map, struct mp_req *rq)
{
	/* Counted before rq leaves busy: umpath_map_free() never finds
	 * neither while a done() is still to come. */
	map->completions_begun++;
	req_retire_locked(map, rq);	/* req_complete() follows, after the unlock */
}

/* Call the client's done() for a request req_release_locked() retired,
 * without the lock.  Counted until it returns: umpath_map_free() promises
 * that no completion follows it (tests/fuzz/fuzz-message found one that
 * did, on another thread, after the map was gone).  The end is counted
 * without the lock - a lock round per I/O less - and is the last touch of
 * the map: umpath_map_free() polls the two counts rather than being woken. */
static void req_complete(struct umpath_map *map, struct umpath_io *io, int err)
{
	io->done(io, err);
	atomic_fetch_add_explicit(&map->completions_ended, 1, memory_order_release);
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

/* Counted started, under the map lock. */
static void path_started_locked(struct pgpath *pgpath)
{
	bool plain;
	struct um_path_counters *c = pgpath_counters(pgpath, &plain);

	um_counter_add(&c->started, 1, plain);
}

static void dispatch_to_locked(struct umpath_map *map, struct mp_req *rq, struct pgpath *pgpath)
{
	rq->pgpath = pgpath;
	rq->start_ns = um_io_ns();
	rq->tio_out = true;
	map->inflight++;
	path_started_locked(pgpath);
}

/* Under the map lock, which its counters' owner needs.  p99: the read
 * feeds the path's window of recent read latencies, which only read_hedge
 * auto reads (it costs two atomic operations a read). */
static void path_account_locked(struct pgpath *pgpath, const struct um_tio *tio, int err,
				uint64_t lat, bool p99)
{
	bool plain;
	struct um_path_counters *c = pgpath_counters(pgpath, &plain);

	map_assert_locked(pgpath->pg->m->map);
	if (tio->op == UMPATH_OP_READ)
		um_counter_add(&c->read_bytes, tio->length, plain);
	else if (tio->op == UMPATH_OP_WRITE)
		um_counter_add(&c->write_bytes, tio->length, plain);
	if (err) {
		um_counter_add(&c->errors, 1, plain);
		if (umpath_is_path_error(err))
			um_counter_add(&c->path_errors, 1, plain);
	}
	um_counter_add(&c->lat_ns_sum, lat, plain);
	um_counter_add(&c->lat_hist[um_lat_bucket(lat)], 1, plain);
	if (p99 && !err && tio->op == UMPATH_OP_READ)
		um_path_read_latency(pgpath->path, lat);
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
	if (rq->hedge_ms && rq->bounce_len < io->length) {
		free(rq->bounce);
		rq->bounce_len = 0;
		/* Aligned as a client's O_DIRECT buffer would be (the file
		 * transport may read with O_DIRECT). */
		if (posix_memalign(&rq->bounce, 4096, (size_t)io->length)) {
			rq->bounce = NULL;
			rq->hedge_ms = 0;	/* no memory: this read is not hedged */
		} else {
			rq->bounce_len = io->length;
		}
	}
	if (rq->hedge_ms)
		rq->tio.buf = rq->bounce;
}

/* ---- hedged reads (docs/read-hedge.md) -------------------------------- */

#define HEDGE_AUTO_FACTOR 4u
#define HEDGE_AUTO_FLOOR_NS (5u * 1000000u)

static uint64_t hedge_delay_ns(int ms, struct um_path *p)
{
	uint64_t ns;

	if (ms > 0)
		return (uint64_t)ms * 1000000u;
	ns = HEDGE_AUTO_FACTOR * atomic_load_explicit(&p->read_p99_ns, memory_order_relaxed);
	return ns > HEDGE_AUTO_FLOOR_NS ? ns : HEDGE_AUTO_FLOOR_NS;
}

/* Hand rq->tio to path; a hedged read's timer starts first (the answer
 * may come before submit returns, and cancels it). */
static void req_submit(struct mp_req *rq, struct um_path *path)
{
	if (rq->hedge_ms)
		um_timer_arm(rq->map->ctx->loop, &rq->hedge_timer, hedge_delay_ns(rq->hedge_ms, path));
	um_path_submit(path, &rq->tio);
}

static bool hedge_candidate(const struct pgpath *p, const struct pgpath *from)
{
	return p->is_active && p->path != from->path;
}

/* Where a read stuck on `from` is hedged: the path its group's selector
 * picks, or else the next active one of the group in table order; else,
 * without a hardware handler (whose other groups need activating first),
 * an active path of another group that is not bypassed.  Never from's own
 * path, also when the table names it twice. */
static struct pgpath *hedge_path_locked(struct multipath *m, struct pgpath *from, size_t nr_bytes)
{
	struct priority_group *pg = from->pg;
	struct ps_path *sel = pg->ps.type->select_path(&pg->ps, nr_bytes);
	struct pgpath *p;

	map_assert_locked(m->map);
	if (sel) {
		p = container_of(sel, struct pgpath, ps);
		if (hedge_candidate(p, from))
			return p;
	}
	list_for_each_entry(p, &pg->pgpaths, list)
		if (hedge_candidate(p, from))
			return p;
	if (m->hwh)
		return NULL;
	list_for_each_entry(pg, &m->priority_groups, list) {
		if (pg == from->pg || pg->bypassed)
			continue;
		list_for_each_entry(p, &pg->pgpaths, list)
			if (hedge_candidate(p, from))
				return p;
	}
	return NULL;
}

static void hedge_tio_done(struct um_tio *tio, int err);

static void hedge_free(struct mp_hedge *h)
{
	if (h) {
		free(h->tio.buf);
		free(h);
	}
}

static struct mp_hedge *hedge_new(struct mp_req *rq)
{
	struct mp_hedge *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->rq = rq;
	h->tio = (struct um_tio){
		.op = UMPATH_OP_READ,
		.flags = rq->tio.flags,
		.offset = rq->tio.offset,
		.length = rq->tio.length,
		.done = hedge_tio_done,
	};
	list_init(&h->tio.tp_node);
	if (posix_memalign(&h->tio.buf, 4096, (size_t)h->tio.length)) {
		free(h);
		return NULL;
	}
	return h;
}

/* The read rq is still at its path after the hedge delay: send it to
 * another path too.  On the loop thread. */
static void hedge_timer_fn(struct um_timer *t)
{
	struct mp_req *rq = container_of(t, struct mp_req, hedge_timer);
	struct umpath_map *map = rq->map;
	/* Allocated before the lock (rq->tio is not changed while it is
	 * out, and its answer cancels this timer first). */
	struct mp_hedge *h = hedge_new(rq);
	struct pgpath *to = NULL;

	if (!h)
		return;
	map_lock(map);
	if (rq->tio_out && !rq->hedge && !map->dying && !map->suspended)
		to = hedge_path_locked(map->live, rq->pgpath, (size_t)rq->tio.length);
	if (to) {
		h->pgpath = to;
		h->start_ns = um_io_ns();
		to->pg->ps.type->start_io(&to->pg->ps, &to->ps, (size_t)h->tio.length);
		map->inflight++;
		path_started_locked(to);
		atomic_fetch_add_explicit(&rq->pgpath->path->st_hedged, 1, memory_order_relaxed);
		rq->hedge = h;
	}
	map_unlock(map);
	if (!to) {
		hedge_free(h);
		return;
	}
	um_path_submit(to->path, &h->tio);
}

/* Whether both legs of hedged read rq have ended, and no winner's data is
 * still being copied: then rq->hedge goes to *ret_dead (to free), and rq
 * is retired (its client was answered), or released with *ret_io and
 * *ret_err to complete, or - both legs failed with path errors - left to
 * be mapped again (true). */
static bool hedge_settle_locked(struct umpath_map *map, struct mp_req *rq,
				struct mp_hedge **ret_dead, struct umpath_io **ret_io, int *ret_err)
{
	if (rq->tio_out || !rq->hedge->done || rq->copying)
		return false;
	*ret_dead = rq->hedge;
	rq->hedge = NULL;
	if (rq->answered) {
		req_retire_locked(map, rq);
		return false;
	}
	if (umpath_is_path_error(rq->leg_err)) {
		rq->leg_err = 0;
		rq->hedge_counted = false;
		return true;
	}
	*ret_io = rq->io;
	*ret_err = rq->leg_err;
	req_release_locked(map, rq);
	return false;
}

/* One leg of a hedged read ended: h the hedge, or NULL for rq->tio.  The
 * first success answers the client, from that leg's own buffer; an error
 * waits for the other leg.  The request is retired only when both legs
 * have ended (a loser's buffer is written until its path answers). */
static void hedge_leg_done(struct mp_req *rq, struct mp_hedge *h, int err)
{
	struct umpath_map *map = rq->map;
	struct um_tio *tio = h ? &h->tio : &rq->tio;
	struct pgpath *pgpath = h ? h->pgpath : rq->pgpath;
	uint64_t start_ns = h ? h->start_ns : rq->start_ns;
	struct umpath_io *io = NULL, *won = NULL;
	struct mp_hedge *dead = NULL;
	bool requeue;
	int final = 0;

	uint64_t lat = um_io_since(start_ns);

	map_lock(map);
	path_account_locked(pgpath, tio, err, lat, rq->hedge_ms == UMPATH_READ_HEDGE_AUTO);
	if (!--map->inflight)
		map_wake_locked(map);
	if (h)
		h->done = true;
	else
		rq->tio_out = false;
	if (err && umpath_is_path_error(err) && !retry_on_path_locked(map, rq, pgpath))
		fail_path_locked(pgpath);
	pgpath->pg->ps.type->end_io(&pgpath->pg->ps, &pgpath->ps, (size_t)tio->length, start_ns);

	if (!err && !rq->answered) {
		rq->answered = true;
		rq->copying = true;
		won = rq->io;
		/* req_complete() below */
		map->completions_begun++;
	} else if (err && (!rq->leg_err || !umpath_is_path_error(err))) {
		rq->leg_err = err;	/* a target error is the request's answer */
	}
	if (!rq->hedge_counted && (won || (h && err))) {
		struct um_path *hp = rq->hedge->pgpath->path;

		rq->hedge_counted = true;
		atomic_fetch_add_explicit(won && h ? &hp->st_hedges_won : &hp->st_hedges_lost, 1,
					  memory_order_relaxed);
	}
	requeue = hedge_settle_locked(map, rq, &dead, &io, &final);
	map_unlock(map);

	if (won) {
		memcpy(won->buf, tio->buf, (size_t)tio->length);
		map_lock(map);
		rq->copying = false;
		hedge_settle_locked(map, rq, &dead, &io, &final);	/* answered: no requeue */
		map_unlock(map);
		req_complete(map, won, 0);
	}
	if (io)
		req_complete(map, io, final);
	hedge_free(dead);
	if (requeue)
		req_remap(rq);
}

static void hedge_tio_done(struct um_tio *tio, int err)
{
	struct mp_hedge *h = container_of(tio, struct mp_hedge, tio);

	hedge_leg_done(h->rq, h, err);
}

/* Act on a mapping decision, without the lock. */
static void req_act(struct mp_req *rq, enum disposition d, struct um_path *path, int err)
{
	struct umpath_map *map = rq->map;
	struct umpath_io *io;

	switch (d) {
	case DISP_SUBMIT:
		req_prepare_tio(rq);
		req_submit(rq, path);
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
	uint64_t lat;

	if (rq->hedge_ms) {
		/* After this, rq->hedge is stable: only the timer sets it. */
		um_timer_cancel(map->ctx->loop, &rq->hedge_timer);
		if (rq->hedge) {
			hedge_leg_done(rq, NULL, err);
			return;
		}
		if (!err)	/* no other leg: the data is the client's now */
			memcpy(rq->io->buf, tio->buf, (size_t)tio->length);
	}
	lat = um_io_since(rq->start_ns);
	map_lock(map);
	path_account_locked(pgpath, tio, err, lat, rq->hedge_ms == UMPATH_READ_HEDGE_AUTO);
	if (!--map->inflight)
		map_wake_locked(map);
	rq->tio_out = false;

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
		req_submit(rq, next_path);
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
	rq->hedge_ms = io->op == UMPATH_OP_READ && io->length ? atomic_load(&map->read_hedge_ms) : 0;
	rq->tio_out = false;
	rq->hedge = NULL;
	rq->answered = false;
	rq->hedge_counted = false;
	rq->copying = false;
	rq->leg_err = 0;
	d = map_io_locked(map, rq, false, &path, &err);
	map_unlock(map);
	req_act(rq, d, path, err);
	return 0;
}
