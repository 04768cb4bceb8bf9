/* umpath.h - public API of libumpath, the userspace dm-multipath engine.
 *
 * A context owns an event loop thread, the registry of open paths and the
 * hardware-handler (pg_init) hooks.  A map is one multipath device: a
 * dm-multipath table (priority groups, selectors, paths) plus the I/O that
 * flows through it.  Every function returns 0 (or a positive count) on
 * success and -errno on failure; output parameters named ret_* are written
 * only on success.  Structs the caller fills have reserved fields: zero
 * the whole struct first.  The in-memory test transport ("mem:NAME" paths)
 * is declared in <umpath/umpath-mem.h>.
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

/* Zero it before setting fields: reserved words must be 0, so that fields
 * added later read as "default" for callers built against this version. */
struct umpath_ctx_opts {
	unsigned io_timeout_ms;	/* per-I/O deadline on real transports; 0: default */
	unsigned pool_size;	/* most requests per map, allocated as I/O needs
				 * them; 0: default (UMPATH_DEFAULT_POOL) */
	unsigned reserved[6];	/* must be 0 */
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
/* Target types: "multipath" (the default, target NULL: Linux's
 * dm-multipath, the table above) or "multipath-v0" (the 2003 prototype
 * dm-multipath v0.1.5: per path "<path> <priority> <N|L|M> <min-ios>
 * <failure-maximum> <reactivation-timeout>", umpath(8)).  An unknown
 * target is -EINVAL, err "unknown target type". */
int umpath_map_new_target(struct umpath_ctx *ctx, const char *name, const char *target,
			  const char *table, uint64_t size_bytes, char *err, size_t errlen,
			  struct umpath_map **ret_map);
/* The live table's target type; a static string. */
const char *umpath_map_target(struct umpath_map *map);
/* The target types of this library, by index from 0; NULL past the last. */
const char *umpath_target_name(unsigned i);
/* Fails every queued I/O, waits for in-flight I/O, frees the map. */
void umpath_map_free(struct umpath_map *map);

const char *umpath_map_name(const struct umpath_map *map);
uint64_t umpath_map_size(const struct umpath_map *map);

/* The map's logical block size in bytes: the largest of its first table's
 * paths' (an iSCSI LUN's READ CAPACITY, a block device's), at least 512.
 * Fixed for the map's life: a later table needing larger blocks is
 * refused.  Exports advertise it; I/O not aligned to it may get EINVAL. */
uint32_t umpath_map_block_size(const struct umpath_map *map);
/* Re-read the sizes of the live table's paths (files and block devices;
 * other transports keep the size they connected with) and make the map
 * that size, as multipathd's resize map: -EINVAL if the paths disagree or
 * the size is not a whole number of blocks (umpath_error_detail() names
 * the paths and their sizes), the map unchanged.  The new size in
 * *ret_size; I/O checks against it from then on. */
int umpath_map_resize(struct umpath_map *map, uint64_t *ret_size);

/* Hedged reads (UMPATH_1.8, docs/read-hedge.md): a read still outstanding
 * on its path after the hedge delay is also sent to another usable path
 * (never the same one), at most once; the first success completes it, and
 * the loser is retired when its path answers or fails (io_timeout).
 * Writes, flushes, trims and write-zeroes are never hedged.  ms: 0 off
 * (the default), UMPATH_READ_HEDGE_AUTO (4 x the path's recent p99 read
 * latency, at least 5 ms), or a delay in milliseconds up to 3,600,000.
 * -EINVAL otherwise.  Reads submitted from then on follow it. */
#define UMPATH_READ_HEDGE_OFF 0
#define UMPATH_READ_HEDGE_AUTO (-1)
int umpath_map_set_read_hedge(struct umpath_map *map, int ms);
/* The setting as umpath_map_set_read_hedge() took it. */
int umpath_map_read_hedge(const struct umpath_map *map);

/* Load an inactive table; it replaces the live one at the next resume. */
int umpath_map_load(struct umpath_map *map, const char *table, char *err, size_t errlen);
/* The same with a table of that target type (NULL: "multipath"). */
int umpath_map_load_target(struct umpath_map *map, const char *target, const char *table,
			   char *err, size_t errlen);
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

/* Events: a counter bumped (and the callback called, without the map lock,
 * from one thread at a time, in order) on every path failure,
 * reinstatement, group bypass, switch or table swap.  Consecutive events
 * of one path of the same type (a path listed several times, failed by one
 * message) come as one, carrying the last state.  If the callback falls
 * so far behind that events pile up past a bound, the newest are dropped
 * and a UMPATH_EV_EVENTS_LOST event says how many, with the state as it
 * is then: the last event delivered always tells the truth. */
enum umpath_event_type {
	UMPATH_EV_PATH_FAILED,
	UMPATH_EV_PATH_REINSTATED,
	UMPATH_EV_GROUP_BYPASSED,
	UMPATH_EV_GROUP_ENABLED,
	UMPATH_EV_GROUP_SWITCHED,
	UMPATH_EV_TABLE_SWAPPED,
	UMPATH_EV_QUEUE_MODE,	/* queue_if_no_path switched on or off */
	UMPATH_EV_EVENTS_LOST,	/* lost events before this one: re-read the state */
};
struct umpath_event {
	enum umpath_event_type type;
	uint32_t event_nr;
	const char *path;	/* path events: the path string */
	unsigned group;		/* group events: 1-based group number */
	unsigned nr_valid_paths;
	unsigned lost;		/* UMPATH_EV_EVENTS_LOST: how many */
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
	uint64_t reserved[2];	/* must be 0 */
};

/* Submit an I/O.  0: accepted, done() will be called (maybe before this
 * returns).  -errno: refused, done() is never called: -EINVAL (range or
 * op), -ENXIO (the map is being freed), -EAGAIN (the map's request pool is
 * empty: umpath_map_pool_wait() tells when to retry), -ENOMEM (the pool,
 * which grows as I/O needs it up to pool_size, could not grow). */
int umpath_map_submit(struct umpath_map *map, struct umpath_io *io);

/* Inline I/O (docs/writes.md).  A transport hands a call that blocks (a
 * buffered write to ext4 waits for the page cache, and for the disk when
 * the cache is full or a block must be read first) to a thread of its own,
 * so that a hung path holds that thread and not the caller's.  A caller
 * that can stand in for a blocked thread lets the transport make the call
 * on the submitting thread instead, inside umpath_map_submit: no hand-off,
 * and the data is still in this CPU's cache.  The guard, zeroed before
 * first use, is the caller's; umpath_inline_allow(g) before a submit
 * allows one such call (NULL forbids them again).  Another thread of the
 * caller watches the guard: umpath_inline_claim(g, ns) returns 1 once for
 * a call running longer than ns, and the caller then goes on without the
 * blocked thread, which finds umpath_inline_claimed(g) is 1 when its
 * submit returns and must leave what it was doing to the other thread.
 * The I/O itself completes as usual (done() on the blocked thread, when
 * its call returns).  Buffered writes to local files and block devices
 * that have writer threads use this; FUA writes and everything else never
 * do. */
struct umpath_inline {
	uint64_t priv_state;	/* 0 idle, 1 in a call, 2 claimed */
	uint64_t priv_since;	/* umpath_now_ns() when the call began */
	void *priv_backoff;	/* the path's, while in a call */
};
void umpath_inline_allow(struct umpath_inline *g);
int umpath_inline_claim(struct umpath_inline *g, uint64_t older_than_ns);
int umpath_inline_claimed(const struct umpath_inline *g);
/* How long g's call has been running, 0 if none. */
uint64_t umpath_inline_busy_ns(const struct umpath_inline *g);

/* Back-pressure: a caller told -EAGAIN waits for room in the map's request
 * pool with a one-shot waiter instead of sleeping or polling.  The waiter
 * is the caller's memory; the library links it while it is armed. */
struct umpath_pool_wait {
	/* Called once, on any thread, without locks of the library held,
	 * after a request of the map is freed (or the map starts being
	 * freed).  It must not block: wake whoever retries the submit. */
	void (*fn)(struct umpath_pool_wait *w);
	void *opaque;
	/* The library's while armed; zero them before the first use. */
	struct umpath_pool_wait *priv_next, *priv_prev;
	unsigned priv_armed;
	unsigned reserved[3];
};
/* Arm w: 0 when armed (fn will be called once); 1 when the pool has room
 * already (not armed: retry the submit now); -EALREADY if w is armed. */
int umpath_map_pool_wait(struct umpath_map *map, struct umpath_pool_wait *w);
/* Disarm w.  1 if it was armed and fn will not be called; 0 if it was not
 * armed: fn has returned (it is never running when this returns).  Not
 * from within fn.  Every armed waiter is disarmed, or has fired, before
 * its memory is reused or umpath_map_free() returns. */
int umpath_map_pool_cancel(struct umpath_map *map, struct umpath_pool_wait *w);

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
	uint64_t aborts;		/* SCSI ABORT TASKs sent at deadlines (iSCSI) */
	uint64_t reserved[3];		/* 0 for now */
};
int umpath_path_stats(struct umpath_ctx *ctx, const char *path, struct umpath_path_stats *ret_stats);

/* The counters of an open path by kind, and its completion times as a
 * histogram of fixed log-scale buckets (UMPATH_1.6): what a metrics
 * exporter needs.  Each counter only grows while the path is open. */
#define UMPATH_LAT_BUCKETS 40
struct umpath_path_io_stats {
	uint64_t read_bytes;		/* bytes of reads (ended well or not) */
	uint64_t write_bytes;		/* bytes of writes */
	uint64_t path_errors;		/* I/Os that ended in a path error */
	uint64_t target_errors;		/* ... in a target error (umpath_is_path_error) */
	uint64_t lat_count;		/* completions in the histogram (sum of lat_buckets) */
	uint64_t lat_sum_ns;		/* their summed completion times */
	/* lat_buckets[b]: completions that took [2^(b-1), 2^b) ns (b = 0:
	 * under 1 ns); the last bucket also holds every longer one. */
	uint64_t lat_buckets[UMPATH_LAT_BUCKETS];
	/* Hedged reads (UMPATH_1.8; 0 from a library before it): */
	uint64_t hedges_won;		/* hedges sent to this path that answered first */
	uint64_t hedges_lost;		/* hedges sent to this path that did not: the
					 * original answered first, or the hedge failed */
	uint64_t hedged_reads;		/* reads on this path that were hedged elsewhere */
	uint64_t reserved[5];		/* 0 for now */
};
/* 0, or -ENOENT if no map has path open. */
int umpath_path_io_stats(struct umpath_ctx *ctx, const char *path,
			 struct umpath_path_io_stats *ret_stats);

/* Probe a path as a path checker does: read its first block through its
 * transport (for NBD, a lost connection answers at once while the
 * transport reconnects in the background).  done(opaque, 0 or -errno) is
 * called once, on any thread.  -ENOENT if no map has the path open. */
int umpath_path_probe(struct umpath_ctx *ctx, const char *path,
		      void (*done)(void *opaque, int err), void *opaque);

/* ---- path checkers (multipathd's path_checker) ------------------------ */

/* How a checker probes a path.  tur: TEST UNIT READY on the path's SCSI
 * session (iSCSI paths); directio: a read of block 0 with O_DIRECT, past
 * any page cache (files and block devices); readsector0: a read of the
 * first block through the path's transport (any path). */
enum umpath_checker {
	UMPATH_CHECKER_DEFAULT,		/* the transport's own, as below */
	UMPATH_CHECKER_READSECTOR0,	/* default for NBD and mem paths */
	UMPATH_CHECKER_DIRECTIO,	/* default for files and block devices */
	UMPATH_CHECKER_TUR,		/* default for SCSI (iSCSI) paths */
};
/* "tur", "directio", "readsector0" ("default" for UMPATH_CHECKER_DEFAULT);
 * NULL past the last. */
const char *umpath_checker_name(enum umpath_checker c);
/* The checker named so, or -EINVAL. */
int umpath_checker_from_name(const char *name);
/* Which checker probes path when asked for want (DEFAULT: the path's
 * transport's own), without opening it.  -EOPNOTSUPP when its transport
 * cannot run want (tur on a file): umpath_error_detail() names the path
 * and the reason. */
int umpath_path_checker(struct umpath_ctx *ctx, const char *path, enum umpath_checker want,
			enum umpath_checker *ret_checker);
/* Probe a path with a checker, as umpath_path_probe() does with
 * readsector0: done(opaque, 0 or -errno) once, on any thread.  -ENOENT if
 * no map has the path open, -EOPNOTSUPP as umpath_path_checker(). */
int umpath_path_check(struct umpath_ctx *ctx, const char *path, enum umpath_checker checker,
		      void (*done)(void *opaque, int err), void *opaque);

/* ---- SCSI-3 persistent reservations (mpathpersist, SPC-4 6.15/6.16) ---- *
 *
 * Commands go to one path: each path is its own I_T nexus, so a
 * registration is made path by path.  A path whose transport carries no
 * SCSI commands answers -EOPNOTSUPP at once (umpath_error_detail() names
 * it).  RESERVATION CONFLICT is -EBADE, a target error. */
enum umpath_pr_in_action {
	UMPATH_PR_IN_READ_KEYS = 0,
	UMPATH_PR_IN_READ_RESERVATION = 1,
	UMPATH_PR_IN_REPORT_CAPABILITIES = 2,
};
enum umpath_pr_out_action {
	UMPATH_PR_OUT_REGISTER = 0,
	UMPATH_PR_OUT_RESERVE = 1,
	UMPATH_PR_OUT_RELEASE = 2,
	UMPATH_PR_OUT_CLEAR = 3,
	UMPATH_PR_OUT_PREEMPT = 4,
	UMPATH_PR_OUT_PREEMPT_AND_ABORT = 5,
	UMPATH_PR_OUT_REGISTER_AND_IGNORE = 6,
};
/* Reservation types, as mpathpersist's --prout-type numbers them. */
enum umpath_pr_type {
	UMPATH_PR_WRITE_EXCLUSIVE = 1,
	UMPATH_PR_EXCLUSIVE_ACCESS = 3,
	UMPATH_PR_WRITE_EXCLUSIVE_REG_ONLY = 5,
	UMPATH_PR_EXCLUSIVE_ACCESS_REG_ONLY = 6,
	UMPATH_PR_WRITE_EXCLUSIVE_ALL_REGS = 7,
	UMPATH_PR_EXCLUSIVE_ACCESS_ALL_REGS = 8,
};
#define UMPATH_PR_APTPL 1u		/* persist through power loss */
#define UMPATH_PR_ALL_TG_PT 2u		/* register on all target ports */

struct umpath_pr_out {
	unsigned action;	/* enum umpath_pr_out_action */
	unsigned type;		/* enum umpath_pr_type: reserve, release, preempt */
	uint64_t key;		/* RESERVATION KEY: this nexus's registered key */
	uint64_t sa_key;	/* SERVICE ACTION RESERVATION KEY: new key, key to preempt */
	unsigned flags;		/* UMPATH_PR_APTPL, UMPATH_PR_ALL_TG_PT */
	unsigned reserved[5];	/* must be 0 */
};
/* 0 if path's transport carries persistent reservations, else -EOPNOTSUPP
 * (detail: the path and its transport), -ENOENT if no map has it open. */
int umpath_path_pr_supported(struct umpath_ctx *ctx, const char *path);
/* PERSISTENT RESERVE OUT on path; done(opaque, 0 or -errno) once, any thread. */
int umpath_path_pr_out(struct umpath_ctx *ctx, const char *path, const struct umpath_pr_out *req,
		       void (*done)(void *opaque, int err), void *opaque);
/* PERSISTENT RESERVE IN on path into buf (len bytes, at most 65535 used);
 * done(opaque, 0 or -errno) once, any thread; parse buf with the below. */
int umpath_path_pr_in(struct umpath_ctx *ctx, const char *path, enum umpath_pr_in_action action,
		      void *buf, size_t len, void (*done)(void *opaque, int err), void *opaque);

/* READ KEYS: the generation, and up to max keys into keys; ret_nkeys is
 * how many the target reported (more than max: the buffer was short).
 * -EBADMSG if the reply does not hold together. */
int umpath_pr_parse_keys(const void *buf, size_t len, uint32_t *ret_generation,
			 uint64_t *keys, unsigned max, unsigned *ret_nkeys);
struct umpath_pr_reservation {
	uint32_t generation;
	int held;		/* 0: no reservation (the rest is 0) */
	uint64_t key;
	unsigned scope;		/* 0: LU_SCOPE */
	unsigned type;		/* enum umpath_pr_type */
	unsigned reserved[4];
};
int umpath_pr_parse_reservation(const void *buf, size_t len, struct umpath_pr_reservation *ret);
struct umpath_pr_caps {
	unsigned crh, sip_c, atp_c, ptpl_c, tmv, allow_commands, ptpl_a;
	unsigned type_mask;	/* bit N set: type N supported (1 << UMPATH_PR_*) */
	unsigned reserved[4];
};
int umpath_pr_parse_caps(const void *buf, size_t len, struct umpath_pr_caps *ret);
/* "Write Exclusive, registrants only"..., NULL for an unknown type. */
const char *umpath_pr_type_name(unsigned type);

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

/* ---- a consistent snapshot of a map --------------------------------- */

/* Everything the TABLE and INFO lines say, and the counters, copied in one
 * hold of the map's lock: groups and paths always belong to the same table.
 * The strings are the snapshot's own, valid until umpath_snapshot_free().
 * Word lists ("1 queue_if_no_path") are as the status lines print them,
 * separated by single spaces; path strings are never split into words. */
struct umpath_snapshot_path {
	const char *path;		/* the path string */
	unsigned group;			/* 1-based group number */
	unsigned index;			/* position in the group, 0-based */
	int active;			/* 'A' in the status line; 0 is 'F' */
	unsigned fail_count;
	const char *table_args;		/* its selector words of the TABLE line, or "" */
	const char *status_args;	/* its selector words of the INFO line, or "" */
	struct umpath_path_stats stats;	/* the path's counters (shared by maps naming it) */
	/* The same by kind, and its latency histogram (UMPATH_1.6: a library
	 * before it leaves this NULL), read with stats. */
	const struct umpath_path_io_stats *io_stats;
	uint64_t reserved[3];
};

struct umpath_snapshot_group {
	unsigned num;			/* 1-based */
	char state;			/* 'A' active, 'E' enabled, 'D' bypassed */
	const char *selector;		/* its name: "service-time" */
	const char *selector_args;	/* count and words of the TABLE line: "0" */
	const char *selector_status;	/* count and words of the INFO line: "0" */
	unsigned nr_paths;
	unsigned nr_table_args;		/* per-path words in the TABLE line */
	unsigned nr_status_args;	/* per-path words in the INFO line */
	struct umpath_snapshot_path *paths;	/* nr_paths of the snapshot's paths */
	uint64_t reserved[4];
};

struct umpath_snapshot {
	size_t size;			/* sizeof(struct umpath_snapshot) of the library */
	const char *name;
	uint64_t size_bytes;
	const char *features;		/* as the TABLE line: "1 queue_if_no_path" */
	const char *hw_handler;		/* as the TABLE line: "0", "1 alua" */
	unsigned nr_groups;
	unsigned current_group;		/* as the status lines show it (next group) */
	unsigned nr_valid_paths;
	unsigned nr_paths;		/* over every group */
	int queue_if_no_path;		/* the feature, as the table shows it */
	int queue_io;			/* QUEUE_IO of the INFO line */
	unsigned pg_init_count;
	int suspended;
	int has_inactive;		/* a loaded table awaits resume */
	unsigned queued_ios;		/* waiting for a path or a resume */
	unsigned inflight_ios;		/* at the transports */
	unsigned pool_size;		/* requests of the map */
	unsigned pool_busy;		/* taken out of the pool now */
	uint32_t event_nr;
	struct umpath_snapshot_group *groups;	/* nr_groups, in table order */
	struct umpath_snapshot_path *paths;	/* nr_paths, in table order */
	const char *target;		/* the target type: "multipath", "multipath-v0" */
	uint64_t reserved[7];
};
int umpath_map_snapshot(struct umpath_map *map, struct umpath_snapshot **ret_snap);
void umpath_snapshot_free(struct umpath_snapshot *snap);

/* Would umpath_map_new() accept this table?  The same parse, refusals and
 * reasons in err, and each path must name something that exists, but no
 * path is opened (sizes are not compared).  0 or -errno. */
int umpath_table_check(struct umpath_ctx *ctx, const char *table, char *err, size_t errlen);
int umpath_table_check_target(struct umpath_ctx *ctx, const char *target, const char *table,
			      char *err, size_t errlen);

/* The path selectors and transports of this library, by index from 0;
 * NULL past the last.  Static strings. */
const char *umpath_selector_name(unsigned i);
const char *umpath_transport_name(unsigned i);

/* What the last failed umpath_map_new(), umpath_map_load() or
 * umpath_map_message*() of the calling thread adds to its -errno and to the
 * kernel's reason (which err holds, unchanged, for scripts that compare
 * with the kernel): the object and the cause, as
 * "/x/y: No such file or directory" after "error getting device", or
 * "switch_group 99: no such group (1..2)".  "" when there is nothing to
 * add.  Valid until the thread's next call of one of those. */
const char *umpath_error_detail(void);

/* Path error or target error (Linux blk_path_error): 1 if an I/O that ended
 * with -err should fail its path and be retried on another one. */
int umpath_is_path_error(int err);

/* ---- stale writes and fencing (docs/stale-writes.md) ------------------ */

/* A write that ended with a path error after its transport may have handed
 * it to the storage (an NBD command abandoned at io_timeout, or sent on a
 * connection that was lost) is *unsettled*: the storage may still apply it
 * later.  Until it settles, the map holds every write that overlaps it:
 * nothing newer is acknowledged for those blocks.  It settles when the
 * path answers it late, when the transport sees the server end (an NBD
 * server process on a Unix socket that exited), or when the path is
 * fenced.  Reads are never held.
 *
 * The fence hook is called once per map and path with unsettled writes
 * (again only for writes that become unsettled after a fence finished),
 * on any thread, with no lock held; it must not block, and must answer
 * with umpath_map_fence_done(map, path, token, result) exactly once, from
 * any thread: 0 when nothing given to the path before the call can reach
 * the storage any more (the held writes then go on), -errno when fencing
 * failed (held writes keep waiting, or fail with EIO if the map does not
 * queue_if_no_path).  Without a hook, fencing fails at once (-ENOSYS). */
struct umpath_fence_hook {
	void (*fence)(struct umpath_map *map, const char *path, uint64_t token, void *opaque);
	void *opaque;
};
/* Register (or, with NULL, remove) the context's fence hook. */
int umpath_set_fence_hook(struct umpath_ctx *ctx, const struct umpath_fence_hook *hook);
/* -ENOENT if no fence of path with this token is pending in map (it settled
 * meanwhile, or the answer came twice). */
int umpath_map_fence_done(struct umpath_map *map, const char *path, uint64_t token, int result);

struct umpath_unsettled_info {
	unsigned writes;	/* unsettled writes through this path */
	unsigned held;		/* writes of the map waiting for them to settle */
	int fence;		/* 0 none, 1 running, -1 failed (or no hook) */
};
/* The stale-write state of path in map (all zero when it has none). */
int umpath_map_unsettled(struct umpath_map *map, const char *path,
			 struct umpath_unsettled_info *ret_info);

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
	void *reserved[2];	/* must be NULL */
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

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
