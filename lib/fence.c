/* fence.c - stale writes: a write that ended with a path error although
 * the storage may still apply it (an NBD command abandoned at its
 * deadline, or sent on a connection that was then lost) is recorded with
 * its range until it settles - the path answers it late, the transport
 * sees the server end, or the path is fenced.  Meanwhile every write that
 * overlaps it waits: otherwise a newer write could be acknowledged and then
 * silently overwritten by the old one (docs/stale-writes.md).  Reads never
 * wait: they see either copy of the old write's data.
 *
 * The records are per map (a write is "newer" only within the map that
 * ordered it) and guarded by the map's lock.  A fence is asked of the
 * context's hook once per map and path; its answer covers the writes that
 * were unsettled when it was asked (up to a transport generation). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mpath.h"

struct unsettled_write {
	struct list_head node;		/* in map->unsettled */
	struct um_path *path;		/* a reference */
	uint64_t offset, length;
	uint64_t gen;			/* the transport's, for um_path_settled() */
	struct mp_req *owner;		/* the write itself while it is retried */
};

enum fence_state {
	FENCE_RUNNING,			/* the hook was called, no answer yet */
	FENCE_FAILED,			/* it failed, or there is no hook */
};

struct path_fence {
	struct list_head node;		/* in map->fences */
	struct um_path *path;		/* a reference */
	uint64_t token;
	uint64_t gen;			/* covers unsettled writes up to this gen */
	enum fence_state state;
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static bool op_writes(enum umpath_op op)
{
	return op == UMPATH_OP_WRITE || op == UMPATH_OP_TRIM || op == UMPATH_OP_WRITE_ZEROES;
}

static struct path_fence *fence_find_locked(struct umpath_map *map, struct um_path *p)
{
	struct path_fence *f;

	list_for_each_entry(f, &map->fences, node)
		if (f->path == p)
			return f;
	return NULL;
}

int unsettled_check_locked(struct umpath_map *map, struct mp_req *rq)
{
	const struct umpath_io *io = rq->io;
	struct unsettled_write *w;
	bool wait = false;

	map_assert_locked(map);
	if (!op_writes(io->op))
		return 0;
	if (map->unsettled_lost)
		return -EIO;
	list_for_each_entry(w, &map->unsettled, node) {
		struct path_fence *f;

		if (w->owner == rq || !overlaps(io->offset, io->length, w->offset, w->length))
			continue;
		f = fence_find_locked(map, w->path);
		if (f && f->state == FENCE_FAILED && !must_push_back_locked(map->live))
			return -EIO;	/* it could wait forever: queueing is off */
		wait = true;
	}
	return wait;
}

/* Ask for a fence of p covering writes up to gen (the caller calls the
 * hook once the lock is dropped). */
static void fence_start_locked(struct umpath_map *map, struct path_fence *f, uint64_t gen,
			       struct fence_call *call)
{
	f->state = FENCE_RUNNING;
	f->token = ++map->fence_seq;
	f->gen = gen;
	um_path_ref(f->path);
	call->path = f->path;
	call->token = f->token;
}

void unsettled_add_locked(struct umpath_map *map, struct mp_req *rq, struct um_path *path,
			  struct fence_call *call)
{
	struct unsettled_write *w;
	struct path_fence *f;

	map_assert_locked(map);
	w = calloc(1, sizeof(*w));
	if (!w) {
		/* Unrecorded, its range could be overtaken: refuse every write
		 * from now on rather than risk it. */
		map->unsettled_lost = true;
		return;
	}
	w->offset = rq->tio.offset;
	w->length = rq->tio.length;
	um_path_ref(path);
	w->path = path;
	w->gen = rq->tio.unsettled;
	w->owner = rq;
	list_add_tail(&w->node, &map->unsettled);

	f = fence_find_locked(map, path);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return;	/* no fence: the write waits to settle by itself */
		um_path_ref(path);
		f->path = path;
		list_add_tail(&f->node, &map->fences);
		fence_start_locked(map, f, w->gen, call);
	} else if (f->state == FENCE_FAILED && f->gen < w->gen) {
		fence_start_locked(map, f, w->gen, call);	/* a new incident */
	}
}

void unsettled_release_locked(struct umpath_map *map, struct mp_req *rq)
{
	struct unsettled_write *w;

	map_assert_locked(map);
	list_for_each_entry(w, &map->unsettled, node)
		if (w->owner == rq)
			w->owner = NULL;
}

/* Drop the unsettled writes of p with a generation in [lo, hi]; the path
 * references to put go to *puts.  Returns whether any of p's are left. */
static bool unsettled_drop_locked(struct umpath_map *map, struct um_path *p, uint64_t lo,
				  uint64_t hi, struct list_head *puts, uint64_t *ret_max_left)
{
	struct unsettled_write *w, *n;
	bool left = false;

	*ret_max_left = 0;
	list_for_each_entry_safe(w, n, &map->unsettled, node) {
		if (w->path != p)
			continue;
		if (w->gen >= lo && w->gen <= hi) {
			list_del_init(&w->node);
			list_add_tail(&w->node, puts);
			continue;
		}
		left = true;
		if (w->gen > *ret_max_left)
			*ret_max_left = w->gen;
	}
	return left;
}

static void put_dropped(struct list_head *puts)
{
	struct unsettled_write *w, *n;

	list_for_each_entry_safe(w, n, puts, node) {
		um_path_put(w->path);
		free(w);
	}
}

static void fence_free(struct path_fence *f)
{
	if (!f)
		return;
	um_path_put(f->path);
	free(f);
}

void fence_call_run(struct umpath_map *map, struct fence_call *call)
{
	struct umpath_ctx *ctx = map->ctx;
	struct umpath_fence_hook hook;

	if (!call->path)
		return;
	pthread_mutex_lock(&ctx->lock);
	hook = ctx->fence_hook;
	pthread_mutex_unlock(&ctx->lock);
	if (hook.fence)
		hook.fence(map, call->path->name, call->token, hook.opaque);
	else
		umpath_map_fence_done(map, call->path->name, call->token, -ENOSYS);
	um_path_put(call->path);
	call->path = NULL;
}

int umpath_set_fence_hook(struct umpath_ctx *ctx, const struct umpath_fence_hook *hook)
{
	if (hook && !hook->fence)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ctx->fence_hook = hook ? *hook : (struct umpath_fence_hook){ 0 };
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

int umpath_map_fence_done(struct umpath_map *map, const char *path, uint64_t token, int result)
{
	struct fence_call call = { 0 };
	struct path_fence *f, *gone = NULL;
	struct list_head puts;
	uint64_t max_left;

	if (!path || result > 0)
		return -EINVAL;
	list_init(&puts);
	map_lock(map);
	list_for_each_entry(f, &map->fences, node)
		if (f->token == token && !strcmp(f->path->name, path))
			break;
	if (&f->node == &map->fences || f->state != FENCE_RUNNING) {
		map_unlock(map);
		return -ENOENT;
	}
	if (result < 0) {
		f->state = FENCE_FAILED;
	} else if (unsettled_drop_locked(map, f->path, 0, f->gen, &puts, &max_left)) {
		fence_start_locked(map, f, max_left, &call);	/* newer ones came meanwhile */
	} else {
		list_del_init(&f->node);
		gone = f;
	}
	map->kick = true;	/* held writes go on, or fail (queueing off) */
	map_unlock(map);
	put_dropped(&puts);
	fence_free(gone);
	fence_call_run(map, &call);
	return 0;
}

void um_path_settled(struct um_path *p, uint64_t gen)
{
	struct umpath_ctx *ctx = p->ctx;
	struct umpath_map *map;

	/* maps_lock keeps every map alive while we look at it; map_free
	 * takes it to leave the list. */
	pthread_mutex_lock(&ctx->maps_lock);
	list_for_each_entry(map, &ctx->maps, ctx_node) {
		struct path_fence *gone = NULL;
		struct list_head puts;
		uint64_t max_left;

		list_init(&puts);
		map_lock(map);
		if (!unsettled_drop_locked(map, p, gen, gen, &puts, &max_left)) {
			gone = fence_find_locked(map, p);
			if (gone)
				list_del_init(&gone->node);	/* a late answer ignored */
		}
		if (!list_empty(&puts))
			map->kick = true;
		map_unlock(map);
		put_dropped(&puts);
		fence_free(gone);
	}
	pthread_mutex_unlock(&ctx->maps_lock);
}

int umpath_map_unsettled(struct umpath_map *map, const char *path,
			 struct umpath_unsettled_info *ret_info)
{
	struct umpath_unsettled_info info = { 0 };
	struct unsettled_write *w;
	struct path_fence *f;
	struct mp_req *rq;

	if (!path)
		return -EINVAL;
	map_lock(map);
	list_for_each_entry(w, &map->unsettled, node)
		if (!strcmp(w->path->name, path))
			info.writes++;
	list_for_each_entry(f, &map->fences, node)
		if (!strcmp(f->path->name, path))
			info.fence = f->state == FENCE_RUNNING ? 1 : -1;
	list_for_each_entry(rq, &map->queued, node) {
		if (!op_writes(rq->io->op))
			continue;
		list_for_each_entry(w, &map->unsettled, node) {
			if (w->owner != rq && !strcmp(w->path->name, path) &&
			    overlaps(rq->io->offset, rq->io->length, w->offset, w->length)) {
				info.held++;
				break;
			}
		}
	}
	map_unlock(map);
	*ret_info = info;
	return 0;
}

void unsettled_free(struct umpath_map *map)
{
	struct unsettled_write *w, *n;
	struct path_fence *f, *fn;

	list_for_each_entry_safe(w, n, &map->unsettled, node) {
		um_path_put(w->path);
		free(w);
	}
	list_for_each_entry_safe(f, fn, &map->fences, node)
		fence_free(f);
	list_init(&map->unsettled);
	list_init(&map->fences);
}
