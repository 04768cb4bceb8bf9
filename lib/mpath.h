/* mpath.h - the multipath map and its tables, modelled on the kernel's
 * drivers/md/dm-mpath.c: a map (the dm device) holds a live table and maybe
 * a loaded inactive one; a table (struct multipath, the dm target instance)
 * holds priority groups, each with a path selector and its paths.
 *
 * Locking rule: one mutex per map, map->lock, guards the map's fields, both
 * of its tables, every group, path state and selector.  It is held for short
 * bounded work only, never across a transport submit, a completion callback,
 * a hardware-handler call or an event callback.  Functions ending in _locked
 * must be called with it held and assert so.
 */
#ifndef UMPATH_MPATH_H
#define UMPATH_MPATH_H

#include <assert.h>

#include "internal.h"
#include "ioclock.h"
#include "lock.h"
#include "selector.h"

enum {
	MPATHF_QUEUE_IO = 1u << 0,		/* must we queue all I/O? */
	MPATHF_QUEUE_IF_NO_PATH = 1u << 1,	/* queue I/O if last path fails? */
	MPATHF_SAVED_QUEUE_IF_NO_PATH = 1u << 2, /* value saved over a suspend */
	MPATHF_RETAIN_ATTACHED_HW_HANDLER = 1u << 3,
	MPATHF_PG_INIT_DISABLED = 1u << 4,	/* pg_init may not be started */
	MPATHF_PG_INIT_REQUIRED = 1u << 5,	/* pg_init needs calling? */
	MPATHF_PG_INIT_DELAY_RETRY = 1u << 6,	/* delay pg_init retry? */
};

enum queue_mode {
	QUEUE_MODE_RQ,		/* the kernel's default, request-based */
	QUEUE_MODE_BIO,
};

#define PG_INIT_DELAY_DEFAULT ((unsigned)-1)	/* "not set" */
#define PG_INIT_DELAY_MSECS 2000u		/* used when not set */

struct multipath;
struct priority_group;
struct pgpath;

/* A target type: the table language it parses and prints, and how it
 * departs from the engine's dm-multipath behaviour.  "multipath" (table.c)
 * is Linux's; "multipath-v0" (target-v0.c) the 2003 prototype's. */
struct mp_target {
	const char *name;
	/* Fill m (groups, paths, flags) from the table's words; on a refusal
	 * set *error to the reason and return -errno. */
	int (*parse)(struct multipath *m, unsigned argc, char **argv, const char **error);
	/* Optional: before m is freed, no lock held (stop timers, wait for
	 * the target's own I/O). */
	void (*destroy)(struct multipath *m);
	void (*table_emit)(struct multipath *m, struct sbuf *sb);	/* map lock held */
	void (*status_emit)(struct multipath *m, struct sbuf *sb);	/* map lock held */
	/* Optional path error policy: the I/O at offset ended with a path
	 * error on pgpath.  true: retry it on that same path; false (or
	 * NULL): the engine fails the path and maps the I/O again. */
	bool (*retry_path_error_locked)(struct pgpath *pgpath, uint64_t offset);
	bool takes_messages;		/* the dm messages of umpath_map_message */
};

extern const struct mp_target mp_target_multipath;
extern const struct mp_target mp_target_v0;
/* By name; NULL: the default, "multipath".  NULL if unknown. */
const struct mp_target *mp_target_lookup(const char *name);

struct pgpath {
	struct list_head list;		/* in pg->pgpaths */
	struct priority_group *pg;
	struct um_path *path;		/* the open path, shared */
	struct ps_path ps;		/* the selector's view */
	bool is_active;			/* guarded by map lock */
	unsigned fail_count;		/* guarded by map lock */
	struct um_timer activate;	/* delayed pg_init of this path */
	bool activating;		/* guarded by map lock: activate queued/running */
	bool activate_called;		/* guarded by map lock: the handler has it */
	void *target_ctx;		/* the target type's per-path state, or NULL */
	/* Its I/O is counted in own, with plain stores under the map lock,
	 * while it owns the path's counting (um_path.owner), else
	 * atomically in the path's shared counters. */
	struct um_path_counters own;
	bool owns_counters;		/* guarded by map lock */
};

/* The counters pgpath's I/O goes to; plain: with plain stores. */
static inline struct um_path_counters *pgpath_counters(struct pgpath *p, bool *plain)
{
	*plain = p->owns_counters;
	return p->owns_counters ? &p->own : &p->path->shared;
}

struct priority_group {
	struct list_head list;		/* in m->priority_groups */
	struct multipath *m;
	struct path_selector ps;
	unsigned pg_num;		/* 1-based */
	unsigned nr_pgpaths;
	bool bypassed;			/* guarded by map lock */
	struct list_head pgpaths;
};

struct multipath {
	const struct mp_target *target;
	void *target_ctx;			/* the target type's state, or NULL */
	struct umpath_map *map;			/* NULL for umpath_table_check */
	struct umpath_ctx *ctx;
	bool check_only;			/* parsed for a check: no path opened */
	struct list_head priority_groups;
	unsigned nr_priority_groups;
	struct priority_group *current_pg;	/* guarded by map lock */
	struct priority_group *next_pg;		/* guarded by map lock */
	struct pgpath *current_pgpath;		/* guarded by map lock */
	unsigned nr_valid_paths;		/* guarded by map lock */
	unsigned flags;				/* MPATHF_*, guarded by map lock */
	unsigned pg_init_retries;
	unsigned pg_init_delay_msecs;
	enum queue_mode queue_mode;
	char *hw_handler_name;
	char *hw_handler_params;
	const struct umpath_hw_handler *hwh;
	unsigned pg_init_in_progress;		/* guarded by map lock */
	unsigned pg_init_count;			/* guarded by map lock */
	uint64_t min_size;			/* smallest path */
	uint64_t common_size;			/* paths' size, or 0 if they differ */
	uint32_t block_size;			/* largest path's logical block, >= 512 */
};

/* One request in flight through the map: taken from the map's pool. */
enum req_kind {
	REQ_NORMAL,		/* mapped through the selector */
	REQ_FLUSH_FANOUT,	/* a flush visiting every dirty path in turn */
};

struct mp_req {
	struct list_head node;		/* free list, queued or held list */
	struct umpath_map *map;
	struct umpath_io *io;
	struct um_tio tio;
	struct pgpath *pgpath;		/* where tio is (or was) dispatched */
	uint64_t start_ns;
	enum req_kind kind;
	/* flush fan-out */
	uint64_t flush_gen;		/* write_gen of the path being flushed */
	bool flush_cover;		/* a path's flush failed: flush via another */
	int flush_err;			/* first target error of the fan-out */
	/* hedged reads (io.c, docs/read-hedge.md) */
	int hedge_ms;			/* the map's read_hedge at submit; 0: none */
	void *bounce;			/* tio's own buffer when hedge_ms (the
					 * loser may answer after the client has
					 * its data: never into the client's) */
	uint64_t bounce_len;
	struct um_timer hedge_timer;	/* sends the hedge when it fires */
	bool tio_out;			/* guarded by map lock: tio at a transport */
	struct mp_hedge *hedge;		/* guarded by map lock: the hedge sent, or NULL */
	bool answered;			/* guarded by map lock: the client has its answer */
	bool hedge_counted;		/* guarded by map lock: won or lost counted */
	bool copying;			/* guarded by map lock: the winner's data is
					 * being copied to the client */
	int leg_err;			/* guarded by map lock: a failed leg's error */
};

/* The second leg of a hedged read: its own tio and buffer, on another
 * path; kept, like its request, until that path answers or fails. */
struct mp_hedge {
	struct um_tio tio;
	struct mp_req *rq;
	struct pgpath *pgpath;
	uint64_t start_ns;
	bool done;			/* guarded by map lock */
};

/* Events waiting for delivery while the callback runs: beyond this many
 * the newest are counted as lost (a slow callback must not make the map
 * hold unbounded memory). */
#define MAP_PENDING_MAX 4096

struct pending_event {
	struct umpath_event ev;
	char *path;
};

struct umpath_map {
	struct umpath_ctx *ctx;
	char *name;
	_Atomic uint64_t size;		/* read without the lock; written under it
					 * (umpath_map_resize) */
	uint32_t block_size;		/* logical block, fixed at creation */
	struct um_lock lock;		/* lock.h */
	const void *lock_owner;		/* for map_assert_locked(): um_thread_tag */
	bool lock_held;
	struct um_cond cond;		/* in-flight drained / events delivered */
	unsigned waiters;		/* guarded by lock: threads in map_wait_locked();
					 * map_wake_locked() broadcasts only for them */
	struct multipath *live;		/* guarded by lock */
	struct multipath *inactive;	/* guarded by lock */
	bool suspended;			/* guarded by lock: new I/O is held */
	bool noflush;			/* guarded by lock: a noflush suspend */
	bool dying;			/* guarded by lock: being freed */
	bool kick;			/* guarded by lock: re-dispatch queued I/O at unlock */
	unsigned kicking;		/* guarded by lock: threads re-dispatching */
	struct um_timer requeue_timer;	/* retries I/O queued for pg_init */
	struct list_head queued;	/* guarded by lock: mapped, waiting for a path */
	struct list_head held;		/* guarded by lock: not mapped, map suspended */
	unsigned inflight;		/* guarded by lock: reqs at a transport */
	unsigned busy;			/* guarded by lock: reqs out of the pool */
	/* done() callbacks: begun counted under the lock (no atomic
	 * operation: ~6 ns an I/O less), ended counted without it, after
	 * which the completer no longer touches the map; while the two
	 * differ, umpath_map_free polls (io.c req_complete). */
	unsigned completions_begun;	/* guarded by lock */
	_Atomic unsigned completions_ended;
	/* pool: grown on demand in chunks (io.c), up to pool_max requests,
	 * kept until the map is freed */
	struct mp_req_chunk *chunks;	/* guarded by lock */
	unsigned nreqs;			/* guarded by lock: requests allocated */
	unsigned pool_max;
	struct list_head free_reqs;	/* guarded by lock */
	/* events */
	uint32_t event_nr;		/* guarded by lock */
	umpath_event_fn event_fn;	/* guarded by lock */
	void *event_opaque;		/* guarded by lock */
	struct pending_event *pending;	/* guarded by lock: npending of cap */
	unsigned npending, cap_pending;	/* guarded by lock */
	unsigned lost_events;		/* guarded by lock: dropped since delivery */
	bool delivering;		/* guarded by lock */
	/* back-pressure: waiters for room in the pool (umpath_map_pool_wait) */
	struct umpath_pool_wait *pool_waiters;	/* guarded by lock: first armed */
	struct umpath_pool_wait *pool_waiters_tail; /* guarded by lock */
	unsigned pool_waking;		/* guarded by lock: threads calling waiters */
	/* stale writes (fence.c) */
	struct list_head ctx_node;	/* in ctx->maps, guarded by ctx->maps_lock */
	struct list_head unsettled;	/* guarded by lock: struct unsettled_write */
	struct list_head fences;	/* guarded by lock: struct path_fence */
	uint64_t fence_seq;		/* guarded by lock: last fence token */
	bool unsettled_lost;		/* guarded by lock: one went unrecorded (ENOMEM) */
	_Atomic int read_hedge_ms;	/* umpath_map_set_read_hedge() */
};

/* One per thread: its address names the thread, cheaper than pthread_self(). */
extern _Thread_local char um_thread_tag __attribute__((tls_model("initial-exec")));

static inline void map_assert_locked(struct umpath_map *map)
{
	assert(map->lock_held && map->lock_owner == &um_thread_tag);
}

/* Wake the threads in map_wait_locked(); none: no broadcast. */
static inline void map_wake_locked(struct umpath_map *map)
{
	if (map->waiters)
		um_cond_broadcast(&map->cond);
}

/* table.c */
int mp_table_parse(struct umpath_map *map, const struct mp_target *target, const char *table,
		   char *err, size_t errlen, struct multipath **ret_m);
/* A parse with no map and no path opened (umpath_table_check). */
int mp_table_check(struct umpath_ctx *ctx, const struct mp_target *target, const char *table,
		   char *err, size_t errlen);
void mp_table_free(struct multipath *m);
/* A new active pgpath of pg, not listed, no path yet. */
struct pgpath *mp_pgpath_alloc(struct priority_group *pg);
/* Open its path as the table parse does (for a check, only look it up):
 * -errno on failure, the error detail naming the path. */
int mp_pgpath_open(struct multipath *m, struct pgpath *p, const char *name);
void mp_pgpath_free(struct pgpath *p);
/* Parts of the TABLE line: "<#features> <features...> " and the
 * hardware handler's words, each word followed by a space. */
void mp_features_emit(struct multipath *m, struct sbuf *sb);
void mp_hw_handler_emit(struct multipath *m, struct sbuf *sb);
void mp_table_emit(struct multipath *m, struct sbuf *sb);
void mp_status_emit(struct multipath *m, struct sbuf *sb);

/* map.c */
static inline void map_lock(struct umpath_map *map)
{
	um_lock(&map->lock);
	map->lock_owner = &um_thread_tag;
	map->lock_held = true;
}

static inline void map_unlock_raw(struct umpath_map *map)
{
	map->lock_held = false;
	um_unlock(&map->lock);
}

/* Wait on map->cond (in-flight drained, events delivered, ...). */
void map_wait_locked(struct umpath_map *map);
/* map_unlock() with something to do first (map.c). */
void map_unlock_work(struct umpath_map *map);

/* Unlock; first re-dispatch queued I/O if something asked for it, deliver
 * pending events, tell pool waiters about freed requests.  Inline: an
 * I/O's two unlocks find nothing to do. */
static inline void map_unlock(struct umpath_map *map)
{
	if (__builtin_expect(map->kick || map->npending || map->lost_events || map->pool_waiters, 0))
		map_unlock_work(map);
	else
		map_unlock_raw(map);
}
void map_event_locked(struct umpath_map *map, enum umpath_event_type type,
		      const char *path, unsigned group);
struct pgpath *choose_pgpath_locked(struct multipath *m, size_t nr_bytes);
int fail_path_locked(struct pgpath *pgpath);
int reinstate_path_locked(struct pgpath *pgpath);
bool must_push_back_locked(struct multipath *m);
bool pg_init_all_paths_locked(struct multipath *m);
void activate_path_timer(struct um_timer *t);

/* fence.c */
/* A fence the caller must start once the lock is dropped. */
struct fence_call {
	struct um_path *path;		/* a reference, or NULL: nothing to call */
	uint64_t token;
};
/* Whether write rq may be mapped: 0 yes, 1 it must wait (queue it), or
 * -EIO (it overlaps a write whose fencing failed and the map does not
 * queue). */
int unsettled_check_locked(struct umpath_map *map, struct mp_req *rq);
/* tio of rq ended with a path error and may still be applied: record it. */
void unsettled_add_locked(struct umpath_map *map, struct mp_req *rq, struct um_path *path,
			  struct fence_call *call);
/* rq leaves the map: its retries no longer pass its own unsettled writes. */
void unsettled_release_locked(struct umpath_map *map, struct mp_req *rq);
void fence_call_run(struct umpath_map *map, struct fence_call *call);
void unsettled_free(struct umpath_map *map);

/* io.c */
int map_pool_init(struct umpath_map *map, unsigned size);
/* Whether a submit would find a request: one is free, or the pool may
 * grow.  Under the map lock. */
bool map_pool_room_locked(struct umpath_map *map);
void map_pool_free(struct umpath_map *map);
/* Re-dispatch every queued (and, when resumed, held) request. */
void map_kick_queue(struct umpath_map *map);

#endif
