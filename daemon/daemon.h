/* daemon.h - umpathd's state (struct umd) and what the daemon's own parts
 * (main, control, config, views) use to change the registry: create,
 * remove, policies.  Each part's interface has its own header, included
 * here for those parts; an export includes only export.h (registry.h).
 *
 * Locking: d->lock guards the registry (the list and each entry's refs,
 * opens and removed flag) and d->defaults.  It is never held across an
 * engine call that may block (suspend, map free) nor across I/O.
 */
#ifndef UMPATH_DAEMON_H
#define UMPATH_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <umpath/umpath.h>

#include "checker.h"
#include "config.h"
#include "control.h"
#include "events.h"
#include "export.h"
#include "fence.h"
#include "persist.h"
#include "list.h"
#include "metrics.h"
#include "notify.h"
#include "policy.h"
#include "registry.h"

struct umd_opts {
	unsigned io_timeout_ms;
	unsigned pool_size;	/* requests in flight per map; 0: UMD_DEFAULT_POOL */
};

#define UMD_DEFAULT_POOL 4096u

struct umd_checker;
struct umd_events;
struct umd_map_sub;

/* Most maps one daemon holds (docs/umpath.conf.5): a create past it is
 * refused, and so is a config file with more. */
#define UMD_MAX_MAPS 10000
/* The engine's io_timeout when neither --io-timeout nor the file set one. */
#define UMD_DEFAULT_IO_TIMEOUT_MS 10000u

struct umd {
	struct umpath_ctx *ctx;
	pthread_mutex_t lock;
	struct list_head maps;		/* guarded by lock */
	unsigned nmaps;			/* listed, not removed; guarded by lock */
	volatile int stopping;		/* set by SIGTERM/SIGINT: startup gives up */
	struct umd_policy defaults;	/* for maps made without a policy; guarded by lock */
	unsigned io_timeout_ms;		/* the engine's, for shutdown bounds */
	uint64_t start_ns;		/* umpath_now_ns() at umd_init: the uptime's origin */
	/* The daemon's event loop (the checker's timers, the control
	 * socket's listener); handlers must not block. */
	struct umpath_loop *loop;
	struct umd_checker *checker;
	struct umd_events *events;
	struct umd_fencer *fencer;	/* fence.c */
	/* Observers of the registry: a list read-locked while notifying. */
	pthread_rwlock_t subs_lock;
	struct list_head subs;		/* guarded by subs_lock */
	unsigned slots_used;		/* guarded by subs_lock: bitmask */
	struct umd_nbd_opts nbd;	/* for the NBD exports started after it is set */
	pthread_cond_t cond;		/* guarded by lock: a removed map's last reference went */
	bool mem_verbs;			/* --mem-store given: serve the `mem` verb */
};

int umd_init(struct umd *d, const struct umd_opts *opts);
void umd_fini(struct umd *d);

/* Create a map from a table, its size taken from its paths.  err gets the
 * kernel's reason on a refused table. */
int umd_map_create(struct umd *d, const char *name, const char *table, char *err, size_t errlen);
/* The same with the size given (0: from the paths), as a dm table line's
 * length gives it; a map without paths needs one. */
int umd_map_create_size(struct umd *d, const char *name, const char *table, uint64_t size_bytes,
			char *err, size_t errlen);
/* The same with a policy (NULL: the daemon's defaults). */
int umd_map_create_policy(struct umd *d, const char *name, const char *table,
			  const struct umd_policy *policy, char *err, size_t errlen);
/* The same with a target type (NULL: multipath), a size, a policy (either
 * may be 0/NULL) and the exports it asks for beyond NBD and FUSE (NULL:
 * none).  1 (err: a warning) when the map is created but an export could
 * not take it (ublk_drv missing). */
int umd_map_create_ex(struct umd *d, const char *name, const char *target, const char *table,
		      uint64_t size_bytes, const struct umd_policy *policy,
		      const struct umd_map_exports *ex, char *err, size_t errlen);
/* Replace a live map's policy (reconfigure). */
int umd_map_set_policy(struct umd *d, const char *name, const struct umd_policy *policy);
/* -ENXIO if unknown, -EBUSY if a client has it open; with force, an open
 * map is unlisted at once and its table replaced by one that fails every
 * I/O (dmsetup remove --force), and is freed when its last client leaves. A map
 * no client has open is gone when this returns (its paths closed), as
 * after dmsetup remove: it waits for short-lived references (a checker
 * pass, a view) to end. */
int umd_map_remove(struct umd *d, const char *name, bool force);
/* The same; err says why an export refused (a mounted /dev/ublkbN: -EBUSY). */
int umd_map_remove_why(struct umd *d, const char *name, bool force, char *err, size_t errlen);
/* Switch queue_if_no_path off on every map (at shutdown). */
void umd_fail_if_no_path_all(struct umd *d);
/* Flush every map at once (at shutdown); 0 when all answered, -ETIMEDOUT
 * if some had not by deadline_ns (their waits are freed by the last of
 * the flush's completion and this call). */
int umd_flush_all(struct umd *d, uint64_t deadline_ns);

/* ---- in-memory stores (memctl.c) ------------------------------------- */

/* --mem-store SIZE:NAME[,NAME...]: a store reachable as mem:NAME; also
 * turns the test-only `mem` control verb on. */
int umd_mem_store_spec(struct umd *d, const char *spec);
/* The `mem` verb (argv[0] is "mem"): store [--bare] SIZE NAME..., fault
 * NAME online|offline|hang|delay US|error ERRNO, reset.  err says why not. */
int umd_control_mem(struct umd *d, int argc, char **argv, char *err, size_t errlen);

#endif
