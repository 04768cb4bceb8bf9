/* internal.h - what the parts of libumpath share: the event loop, paths and
 * their transports, the context.  The map and its tables are in mpath.h. */
#ifndef UMPATH_INTERNAL_H
#define UMPATH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "list.h"
#include "namehash.h"

#define UM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- event loop: one thread, epoll, fd table, timer heap (loop.c) ----- */

struct um_timer {
	size_t heap_idx;		/* guarded by loop lock; SIZE_MAX: not armed */
	uint64_t deadline_ns;		/* guarded by loop lock; CLOCK_MONOTONIC */
	void (*fn)(struct um_timer *t);
};

int um_loop_new(struct umpath_loop **ret_loop);
void um_loop_free(struct umpath_loop *loop);
bool um_loop_is_current(struct umpath_loop *loop);
/* Before first use: not armed, fn to run. */
void um_timer_init(struct um_timer *t, void (*fn)(struct um_timer *t));
/* (Re)arm: fn runs on the loop thread after delay_ns. */
void um_timer_arm(struct umpath_loop *loop, struct um_timer *t, uint64_t delay_ns);
bool um_timer_armed(struct umpath_loop *loop, struct um_timer *t);
/* Disarm; if fn is running on the loop thread, wait for it (unless called
 * from the loop thread itself), so that t may be freed afterwards. */
void um_timer_cancel(struct umpath_loop *loop, struct um_timer *t);
/* fn(opaque, events) runs on the loop thread when fd is ready. */
typedef void (*um_fd_fn)(void *opaque, uint32_t events);
int um_loop_add_fd(struct umpath_loop *loop, int fd, uint32_t events, um_fd_fn fn, void *opaque);
int um_loop_mod_fd(struct umpath_loop *loop, int fd, uint32_t events);
/* Stop watching fd; once it returns (off the loop thread), fn is not
 * running and will not run again for this watch. */
void um_loop_del_fd(struct umpath_loop *loop, int fd);

/* ---- error details (errclass.c) --------------------------------------- */

/* The calling thread's umpath_error_detail(): cleared by each public call
 * that sets it, then set by whatever part knows the cause. */
void um_detail_clear(void);
void um_detail_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *um_detail_get(void);
/* s as one word of a table line: a backslash before spaces and
 * backslashes (dm_split_args reads it back); the other blanks, which no
 * accepted path holds (they would need a line break), as \xHH.  Like
 * snprintf. */
int um_escape_word(char *buf, size_t len, const char *s);
/* The same for an error detail: cut short with "..." if it does not fit
 * (len >= 4). */
void um_escape_detail(char *buf, size_t len, const char *s);

/* ---- transports and paths --------------------------------------------- */

#define UM_LAT_BUCKETS UMPATH_LAT_BUCKETS	/* 1 ns .. ~550 s in powers of two */
/* A map's logical block when no path needs more (a path's block_size 0). */
#define UM_MIN_BLOCK 512u

/* One I/O handed to a transport.  The transport calls done exactly once,
 * on any thread, never with a lock of the engine held. */
struct um_tio {
	enum umpath_op op;
	unsigned flags;		/* UMPATH_IO_* */
	uint64_t offset;
	uint64_t length;
	void *buf;
	void (*done)(struct um_tio *tio, int err);
	struct list_head tp_node;	/* free for the transport's own lists */
	uint64_t tp_time_ns;		/* free for the transport (deadlines) */
	/* Set by the transport when it ends a write with a path error although
	 * the storage may still apply it: a nonzero generation that it later
	 * names to um_path_settled() (docs/stale-writes.md).  0 otherwise. */
	uint64_t unsettled;
};

struct um_path;

struct um_transport {
	const char *name;
	/* 1 if this transport serves the path string. */
	int (*claims)(struct umpath_ctx *ctx, const char *path);
	/* Whether the path names something that exists (for messages naming a
	 * path outside the map: EINVAL if it exists, ENOENT if not). */
	bool (*exists)(struct umpath_ctx *ctx, const char *path);
	/* Optional: why exists() says no, when not "No such file or
	 * directory" (the error detail of umpath_table_check and open). */
	const char *missing;
	/* Open: set p->priv and p->size.  -ENOENT etc. */
	int (*open)(struct umpath_ctx *ctx, struct um_path *p);
	/* Optional: may one more map share the open path?  What reopening
	 * the device would say (an offline disk: -ENXIO), as Linux opens a
	 * device once per mapped device, not once per machine. */
	int (*attach)(struct um_path *p);
	void (*close)(struct um_path *p);
	/* Optional: the path's size now (umpath_map_resize re-reads it); a
	 * transport without it keeps the size it opened with (an NBD export's
	 * size is fixed for its connection). */
	int (*read_size)(struct um_path *p, uint64_t *ret_size);
	void (*submit)(struct um_path *p, struct um_tio *tio);
	/* Optional: run a SCSI command (cdb) on the path's session, for the
	 * tur checker and persistent reservations (pr.c); NULL: the transport
	 * carries none.  dir is UM_SCSI_*; buf/len the data in or out.  0 if
	 * started: done(opaque, err) is then called once, on any thread, no
	 * lock of the engine held: 0 GOOD, -EBADE RESERVATION CONFLICT,
	 * a path error when the session is down (answered at once while it
	 * reconnects), else the command's error class (errclass.c). */
	int (*scsi)(struct um_path *p, const uint8_t *cdb, size_t cdb_len, int dir,
		    void *buf, size_t len, void (*done)(void *opaque, int err), void *opaque);
	/* submit() honours UM_TIO_DIRECT on reads (the directio checker). */
	bool directio;
	/* The checker its paths get by default; UMPATH_CHECKER_DEFAULT:
	 * tur with scsi, else readsector0. */
	enum umpath_checker default_checker;
};

/* A SCSI command's data direction (struct um_transport.scsi). */
enum um_scsi_dir {
	UM_SCSI_NONE,		/* no data (TEST UNIT READY) */
	UM_SCSI_READ,		/* data from the target into buf */
	UM_SCSI_WRITE,		/* data from buf to the target */
};

/* um_tio.flags, internal: a read that must not be served by a page cache
 * (O_DIRECT): the directio checker's. */
#define UM_TIO_DIRECT (1u << 30)

/* A path's I/O counters.  A completed I/O adds to one bucket of lat_hist,
 * whose sum is the count of completed I/Os; in flight are started less
 * that count. */
struct um_path_counters {
	_Atomic uint64_t started, errors, path_errors, lat_ns_sum;
	_Atomic uint64_t read_bytes, write_bytes;	/* bytes: their sum */
	_Atomic uint64_t lat_hist[UM_LAT_BUCKETS];	/* by log2(ns) */
};

/* plain: c has one writer (who holds the lock its readers' values come
 * after): a load and a store, no atomic read-modify-write (~6 ns). */
static inline void um_counter_add(_Atomic uint64_t *c, uint64_t v, bool plain)
{
	if (plain)
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* An open path, shared by every table and map naming the same string. */
struct um_path {
	struct name_node node;		/* in ctx->paths by name, guarded by ctx->lock */
	unsigned refs;			/* guarded by ctx->lock */
	struct umpath_ctx *ctx;
	char *name;
	const struct um_transport *tp;
	void *priv;			/* the transport's */
	/* Atomic: read by submitters without a lock, changed by a resize. */
	_Atomic uint64_t size;
	uint32_t block_size;		/* logical block: I/O is aligned to it; 0: any */
	/* Flush fan-out: a path is dirty while write_gen != flushed_gen. */
	_Atomic uint64_t write_gen;
	_Atomic uint64_t flushed_gen;
	/* Statistics, kept by the engine around every transport I/O.  Four
	 * atomic additions an I/O were a third of the engine's time
	 * (docs/engine.md), so one user of the path - a pgpath, one table's
	 * use of it, usually the only one - owns the counting: it counts in
	 * its own counters with plain stores, under its map's lock.  Any
	 * other user at the same time adds to shared atomically, and so do
	 * the owner's counts when it goes. */
	struct um_path_counters shared;
	struct um_path_counters *owner;	/* guarded by ctx->lock */
	/* Hedged reads (io.c, docs/read-hedge.md): hedges sent here that
	 * answered first / did not; reads here that were hedged elsewhere. */
	_Atomic uint64_t st_hedges_won, st_hedges_lost, st_hedged;
	/* Recent reads' latencies: the window being filled (by log2(ns)),
	 * its count, and the p99 of the last full window (0: none yet). */
	_Atomic uint32_t rlat_win[UM_LAT_BUCKETS];
	_Atomic uint64_t rlat_n;
	_Atomic uint64_t read_p99_ns;
};

/* The open path of that name, opened now if no table has it.  new_user:
 * the caller's map holds no reference to it yet (see um_transport.attach). */
int um_path_get(struct umpath_ctx *ctx, const char *name, bool new_user,
		struct um_path **ret_path);
/* Another reference to an open path. */
void um_path_ref(struct um_path *p);
void um_path_put(struct um_path *p);
/* Transport: every write it ended with tio->unsettled == gen can no longer
 * reach the storage (answered late, or the server is gone).  Any thread,
 * no lock of the engine or transport held. */
void um_path_settled(struct um_path *p, uint64_t gen);
bool um_path_exists(struct umpath_ctx *ctx, const char *name);
/* 0 if name exists; else -ENOENT, with the transport's reason as the
 * error detail (an unknown mem: name is not a missing file). */
int um_path_check(struct umpath_ctx *ctx, const char *name);
/* The path's counters as umpath_path_stats() gives them: its shared
 * counters and its owner's added.  Caller holds ctx->lock. */
void um_path_stats_read_locked(struct um_path *p, struct umpath_path_stats *ret);
void um_path_io_stats_read_locked(struct um_path *p, struct umpath_path_io_stats *ret);
/* A user of p asks to own its counting in own: true if it does now (no
 * other user does).  Its writes to own must stop before the next call. */
bool um_path_counters_claim(struct um_path *p, struct um_path_counters *own);
/* A user that may own p's counting goes: own's counts move to p->shared. */
void um_path_counters_release(struct um_path *p, struct um_path_counters *own);
/* The bucket of a latency in the histograms above (by log2(ns)). */
unsigned um_lat_bucket(uint64_t ns);
/* The 99th percentile of a histogram of n buckets (the upper bound of its
 * bucket), 0 if it is empty. */
uint64_t um_lat_p99(const uint64_t *hist, unsigned n);
/* Record a successful read's latency in the path's recent window. */
void um_path_read_latency(struct um_path *p, uint64_t ns);
static inline void um_path_submit(struct um_path *p, struct um_tio *tio)
{
	p->tp->submit(p, tio);
}

/* Probe a path as a checker does: read its first 4 KiB (or less).  done is
 * called once with 0 or -errno, on any thread.  tio_flags: 0, or
 * UM_TIO_DIRECT for the directio checker. */
int um_path_probe_flags(struct um_path *p, unsigned tio_flags,
			void (*done)(void *opaque, int err), void *opaque);
static inline int um_path_probe(struct um_path *p, void (*done)(void *opaque, int err), void *opaque)
{
	return um_path_probe_flags(p, 0, done, opaque);
}
/* The open path of that name with a reference, or NULL: no map has it. */
struct um_path *um_path_find(struct umpath_ctx *ctx, const char *name);
/* The transport that would serve a path string (none opened), or NULL. */
const struct um_transport *um_transport_for(struct umpath_ctx *ctx, const char *name);

extern const struct um_transport um_mem_transport;
extern const struct um_transport um_nbd_transport;
extern const struct um_transport um_file_transport;
extern const struct um_transport um_iscsi_transport;

/* ---- context ---------------------------------------------------------- */

struct um_hw_entry {
	struct list_head node;
	struct umpath_hw_handler h;
	char *name;
};

/* ---- worker threads for blocking calls (workers.c) ---------------------- */

struct um_work {
	struct list_head node;		/* in the pool's queue */
	void (*fn)(struct um_work *work);
};

struct um_workers;

/* A pool of at most max threads, started as work needs them. */
int um_workers_new(unsigned max, struct um_workers **ret_w);
/* Queue work->fn(work) to run on a pool thread; false (work untouched)
 * only if the pool has no thread and cannot start one. */
bool um_workers_queue(struct um_workers *w, struct um_work *work);
unsigned um_workers_threads(struct um_workers *w);
/* Joins the threads: no work may be given after, and what is queued runs. */
void um_workers_free(struct um_workers *w);

/* Inline calls (inline.c): the guard this thread's submitter allowed, now
 * taken (NULL: make no blocking call here), with the path's backoff word
 * (um_now_ns before which it makes no inline call; a claim sets it), and
 * the call's end: false if the submitter's watcher claimed it meanwhile. */
struct umpath_inline *um_inline_begin(_Atomic uint64_t *backoff);
bool um_inline_end(struct umpath_inline *g);

struct umpath_ctx {
	pthread_mutex_t lock;
	struct name_hash paths;		/* open paths by name; guarded by lock */
	struct list_head hw_handlers;	/* guarded by lock */
	struct list_head mem_stores;	/* guarded by lock (mem transport) */
	struct name_hash mem_names;	/* their paths by name; guarded by lock */
	struct umpath_fence_hook fence_hook;	/* guarded by lock */
	/* Every map, for um_path_settled().  Order: maps_lock, then a map's
	 * lock; lock is never taken inside maps_lock. */
	pthread_mutex_t maps_lock;
	struct list_head maps;		/* guarded by maps_lock */
	struct umpath_loop *loop;
	unsigned io_timeout_ms;
	unsigned pool_size;
	/* Buffered file writes (file.c, docs/writes.md). */
	struct um_workers *writers;
};

const struct umpath_hw_handler *um_hw_handler_find(struct umpath_ctx *ctx, const char *name);
void um_hw_handlers_free(struct umpath_ctx *ctx);
void um_mem_stores_free(struct umpath_ctx *ctx);

#endif
