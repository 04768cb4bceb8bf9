/* umpath.h - public API of libumpath, the userspace dm-multipath engine.
 *
 * A context owns an event loop thread, the registry of open paths and the
 * hardware-handler (pg_init) hooks.  A map is one multipath device: a
 * dm-multipath table (priority groups, selectors, paths) plus the I/O that
 * flows through it.  Every function returns 0 (or a positive count) on
 * success and -errno on failure; output parameters named ret_* are written
 * only on success.
 */
#ifndef UMPATH_UMPATH_H
#define UMPATH_UMPATH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define UMPATH_SECTOR_SIZE 512u

struct umpath_ctx;
struct umpath_map;

/* ---- context ---------------------------------------------------------- */

struct umpath_ctx_opts {
	unsigned io_timeout_ms;	/* per-I/O deadline on real transports; 0: default */
	unsigned pool_size;	/* requests per map; 0: default (UMPATH_DEFAULT_POOL) */
};

#define UMPATH_DEFAULT_POOL 1024u

int umpath_ctx_new(const struct umpath_ctx_opts *opts, struct umpath_ctx **ret_ctx);
/* Every map must have been freed first. */
void umpath_ctx_free(struct umpath_ctx *ctx);

/* ---- maps ------------------------------------------------------------- */

/* Create a map from a dm-multipath table, the words after "multipath" in a
 * dm table line.  size_bytes 0 takes the size of the paths (all must agree);
 * otherwise every path must be at least that large.  On a refused table,
 * -errno is returned, err (if not NULL) holds the kernel's reason, and
 * nothing is left behind. */
int umpath_map_new(struct umpath_ctx *ctx, const char *name, const char *table,
		   uint64_t size_bytes, char *err, size_t errlen,
		   struct umpath_map **ret_map);
/* Fails every queued I/O, waits for in-flight I/O, frees the map. */
void umpath_map_free(struct umpath_map *map);

const char *umpath_map_name(const struct umpath_map *map);
uint64_t umpath_map_size(const struct umpath_map *map);

/* Load an inactive table; it replaces the live one at the next resume. */
int umpath_map_load(struct umpath_map *map, const char *table, char *err, size_t errlen);
/* Drop a loaded inactive table (dmsetup clear). */
int umpath_map_clear(struct umpath_map *map);

#define UMPATH_SUSPEND_NOFLUSH 1u
/* Suspend: new I/O is held; with a flushing suspend queue_if_no_path is
 * switched off for the duration (queued I/O with no path fails); returns
 * once no I/O is in flight.  Suspending a suspended map does nothing (like
 * dmsetup). */
int umpath_map_suspend(struct umpath_map *map, unsigned flags);
/* Resume: swap in a loaded table, restore queue_if_no_path, release held I/O. */
int umpath_map_resume(struct umpath_map *map);
int umpath_map_is_suspended(struct umpath_map *map);

/* A target message, as "dmsetup message NAME 0 ARGS...": 0 or -errno. */
int umpath_map_message(struct umpath_map *map, int argc, char **argv);
/* Same, the words in one string. */
int umpath_map_message_str(struct umpath_map *map, const char *msg);

/* TABLE and INFO status lines, as dmsetup table/status print them after
 * "START LEN multipath ", without a trailing space.  Return the length
 * (like snprintf; output truncated when buf is too small). */
int umpath_map_table(struct umpath_map *map, char *buf, size_t len);
int umpath_map_status(struct umpath_map *map, char *buf, size_t len);

/* Events: a counter bumped (and the callback called, without the map lock)
 * on every path failure, reinstatement, group bypass, switch or table swap. */
enum umpath_event_type {
	UMPATH_EV_PATH_FAILED,
	UMPATH_EV_PATH_REINSTATED,
	UMPATH_EV_GROUP_BYPASSED,
	UMPATH_EV_GROUP_ENABLED,
	UMPATH_EV_GROUP_SWITCHED,
	UMPATH_EV_TABLE_SWAPPED,
	UMPATH_EV_QUEUE_MODE,	/* queue_if_no_path switched on or off */
};
struct umpath_event {
	enum umpath_event_type type;
	uint32_t event_nr;
	const char *path;	/* path events: the path string */
	unsigned group;		/* group events: 1-based group number */
	unsigned nr_valid_paths;
};
typedef void (*umpath_event_fn)(struct umpath_map *map, const struct umpath_event *ev,
				void *opaque);
void umpath_map_set_event_cb(struct umpath_map *map, umpath_event_fn fn, void *opaque);
uint32_t umpath_map_event_nr(struct umpath_map *map);

/* ---- I/O -------------------------------------------------------------- */

enum umpath_op {
	UMPATH_OP_READ,
	UMPATH_OP_WRITE,
	UMPATH_OP_FLUSH,
	UMPATH_OP_TRIM,
	UMPATH_OP_WRITE_ZEROES,
};

#define UMPATH_IO_FUA     1u	/* write/zeroes: durable before completion */
#define UMPATH_IO_NO_HOLE 2u	/* write_zeroes: allocate, do not punch */

struct umpath_io {
	enum umpath_op op;
	unsigned flags;
	uint64_t offset;	/* bytes */
	uint64_t length;	/* bytes; 0 for flush */
	void *buf;		/* read/write data */
	/* Called exactly once, 0 or -errno, on any thread, without locks held. */
	void (*done)(struct umpath_io *io, int err);
	void *opaque;
};

/* Submit an I/O.  0: accepted, done() will be called (maybe before this
 * returns).  -errno: refused, done() is never called: -EINVAL (range or
 * op), -EAGAIN (the map's request pool is empty; retry after a completion). */
int umpath_map_submit(struct umpath_map *map, struct umpath_io *io);

/* Counters of an open path (shared by every map naming the same string),
 * kept since it was opened.  -ENOENT if no map has it open. */
struct umpath_path_stats {
	uint64_t ios;			/* completed I/Os */
	uint64_t bytes;			/* bytes read and written */
	uint64_t errors;		/* I/Os that ended in an error */
	uint32_t inflight;		/* I/Os at the transport now */
	uint64_t mean_latency_ns;	/* mean completion time */
	uint64_t p99_latency_ns;	/* 99th percentile (upper bound of its
					 * power-of-two bucket), 0 if no I/O */
};
int umpath_path_stats(struct umpath_ctx *ctx, const char *path, struct umpath_path_stats *ret_stats);

/* Probe a path as a path checker does: read its first block through its
 * transport (for NBD, a lost connection answers at once while the
 * transport reconnects in the background).  done(opaque, 0 or -errno) is
 * called once, on any thread.  -ENOENT if no map has the path open. */
int umpath_path_probe(struct umpath_ctx *ctx, const char *path,
		      void (*done)(void *opaque, int err), void *opaque);

/* ---- a map's layout and state, for checkers and operators ------------ */

struct umpath_map_info {
	unsigned nr_groups;
	unsigned current_group;		/* as the status line shows it */
	unsigned nr_valid_paths;
	int queue_if_no_path;		/* the feature, as the table shows it */
	int suspended;
	unsigned queued_ios;		/* waiting for a path */
	unsigned inflight_ios;		/* at the transports */
	uint64_t size;			/* bytes */
};
int umpath_map_info(struct umpath_map *map, struct umpath_map_info *ret_info);

struct umpath_group_info {
	unsigned num;			/* 1-based */
	char state;			/* 'A' active, 'E' enabled, 'D' bypassed */
	const char *selector;
	unsigned nr_paths;
};
struct umpath_path_info {
	unsigned group;			/* 1-based group number */
	unsigned index;			/* position in the group, 0-based */
	const char *path;		/* the path string */
	int active;			/* 'A' in the status line; 0 is 'F' */
	unsigned fail_count;
};
/* Walk the live table: group_fn for each group, then path_fn for each of
 * its paths (either may be NULL).  The callbacks run with the map's lock
 * held: they must copy what they need and call nothing of this map. */
int umpath_map_foreach(struct umpath_map *map,
		       void (*group_fn)(const struct umpath_group_info *g, void *opaque),
		       void (*path_fn)(const struct umpath_path_info *p, void *opaque),
		       void *opaque);

/* Path error or target error (Linux blk_path_error): 1 if an I/O that ended
 * with -err should fail its path and be retried on another one. */
int umpath_is_path_error(int err);

/* ---- hardware handlers (the kernel's pg_init) ------------------------- */

enum umpath_pg_init_result {
	UMPATH_PG_INIT_OK,
	UMPATH_PG_INIT_RETRY,		/* try again after pg_init_delay_msecs */
	UMPATH_PG_INIT_IMM_RETRY,	/* try again now */
	UMPATH_PG_INIT_BUSY,		/* controller busy: bypass this group */
	UMPATH_PG_INIT_FAIL,		/* fail this path */
};
/* activate() is called on the context's loop thread and must eventually
 * call complete(token, result) exactly once, from any thread. */
struct umpath_hw_handler {
	const char *name;
	void (*activate)(const char *path, const char *params, void *opaque,
			 void (*complete)(void *token, enum umpath_pg_init_result r),
			 void *token);
	void *opaque;
};
int umpath_register_hw_handler(struct umpath_ctx *ctx, const struct umpath_hw_handler *h);

/* ---- event loops -------------------------------------------------------- *
 *
 * The engine's own event loop model, for programs that host maps (umpathd
 * runs its checker, control socket and exports on these): one thread in
 * epoll, handlers found by fd in O(1), timers in a heap on CLOCK_MONOTONIC.
 * Handlers run on the loop's thread and must not block.  Removing a watch
 * or cancelling a timer from another thread waits for a running handler to
 * return, so its data may be freed right after. */

struct umpath_loop;
struct umpath_timer;

int umpath_loop_new(struct umpath_loop **ret_loop);
/* Stops the thread; every watch must have been removed and timer freed. */
void umpath_loop_free(struct umpath_loop *loop);
/* 1 when called on loop's thread. */
int umpath_loop_is_current(struct umpath_loop *loop);
/* fn(opaque, epoll events) on loop's thread when fd is ready; -EEXIST if
 * fd is already watched. */
int umpath_loop_add_fd(struct umpath_loop *loop, int fd, uint32_t events,
		       void (*fn)(void *opaque, uint32_t events), void *opaque);
int umpath_loop_mod_fd(struct umpath_loop *loop, int fd, uint32_t events);
void umpath_loop_del_fd(struct umpath_loop *loop, int fd);
/* A timer of loop: fn(opaque) on loop's thread once per arm. */
int umpath_timer_new(struct umpath_loop *loop, void (*fn)(void *opaque), void *opaque,
		     struct umpath_timer **ret_timer);
/* (Re)arm to fire delay_ns from now (monotonic). */
void umpath_timer_arm(struct umpath_timer *t, uint64_t delay_ns);
void umpath_timer_cancel(struct umpath_timer *t);
/* Cancel (waiting for a running fn, off the loop thread) and free; NULL ok. */
void umpath_timer_free(struct umpath_timer *t);
/* CLOCK_MONOTONIC in nanoseconds: the clock of every umpath deadline. */
uint64_t umpath_now_ns(void);

/* ---- the in-memory test transport ("mem:NAME" paths) ------------------ */

/* Create a store of size bytes reachable by nr paths named names[i]; the
 * paths are then usable in tables as "mem:NAME" or, if bare is set, "NAME". */
int umpath_mem_store_new(struct umpath_ctx *ctx, uint64_t size, unsigned nr,
			 const char *const *names, int bare);
enum umpath_mem_fault {
	UMPATH_MEM_ONLINE,	/* works */
	UMPATH_MEM_OFFLINE,	/* every I/O fails with EIO */
	UMPATH_MEM_HANG,	/* I/O is held until the fault changes */
	UMPATH_MEM_DELAY,	/* every I/O completes after arg microseconds */
	UMPATH_MEM_ERROR,	/* every I/O fails with -arg (an errno) */
};
/* Held (hung) I/O is released into the new state: done when online or
 * delayed, failed when offline or erroring. */
int umpath_mem_set_fault(struct umpath_ctx *ctx, const char *name,
			 enum umpath_mem_fault fault, unsigned arg);
/* I/O count seen by a mem path (for tests of selector spread). */
int umpath_mem_io_count(struct umpath_ctx *ctx, const char *name, uint64_t *ret_count);
/* Forget every mem store whose paths no map uses any more. */
void umpath_mem_reset(struct umpath_ctx *ctx);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
