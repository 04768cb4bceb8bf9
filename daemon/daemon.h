/* daemon.h - umpathd's shared state: the registry of maps by name that the
 * exports (NBD server, FUSE) and the control socket work on, and the
 * interfaces those parts implement.
 *
 * Locking: d->lock guards the registry (the list and each entry's refs,
 * opens and removed flag).  It is never held across an engine call that
 * may block (suspend, map free) nor across I/O.
 */
#ifndef UMPATH_DAEMON_H
#define UMPATH_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <umpath/umpath.h>

#include "list.h"

struct umd;
struct ck_map;

/* ---- policies (multipathd's, per map; docs/umpathd.8) -------------- */

enum umd_failback {
	FAILBACK_MANUAL,	/* never: the operator switches groups */
	FAILBACK_IMMEDIATE,	/* at once, when a better group has a usable path */
	FAILBACK_FOLLOWOVER,	/* only when the first path of a group comes back */
	FAILBACK_DEFERRED,	/* failback_delay_ms after a better group is usable */
};

#define NO_PATH_RETRY_QUEUE (-1)	/* queue until a path returns */
#define NO_PATH_RETRY_FAIL 0		/* fail at once with no path */

struct umd_policy {
	unsigned polling_interval_ms;	/* checker period; default 5000 */
	unsigned max_polling_interval_ms; /* healthy paths back off to this; default 4x */
	unsigned checker_timeout_ms;	/* a probe slower than this is a failure; default 5000 */
	enum umd_failback failback;	/* default FAILBACK_MANUAL, as multipathd */
	unsigned failback_delay_ms;	/* for FAILBACK_DEFERRED */
	int no_path_retry;		/* NO_PATH_RETRY_QUEUE, _FAIL, or N checker intervals */
	unsigned flap_threshold;	/* failures within flap_window_ms that make a path flap; 0: off */
	unsigned flap_window_ms;	/* default 60000 */
	unsigned flap_recovery_ms;	/* a flapping path is held out this long; default 30000 */
	bool checker;			/* run path checkers; default true */
};

void umd_policy_defaults(struct umd_policy *p);

/* ---- events --------------------------------------------------------- */

/* What happened, for the log, `umpath events` and its --json. */
struct umd_event {
	const char *map;
	const char *type;	/* path_failed, path_reinstated, group_bypassed,
				 * group_enabled, group_switched, table_swapped,
				 * queue_if_no_path, checker_down, checker_up,
				 * path_held, path_released, no_path_retry, failback */
	const char *path;	/* or NULL */
	unsigned group;		/* or 0 */
	int nr_valid_paths;	/* or -1 */
	const char *detail;	/* or NULL */
};
/* Log the event and hand it to every `umpath events` subscriber; never
 * blocks (a slow subscriber loses events and is told so). */
void umd_event_publish(struct umd *d, const struct umd_event *ev);

/* One map of the daemon.  Exports hold a reference (umd_map_get/put) for
 * as long as a client has the map open; remove refuses a map with opens. */
struct umd_map {
	struct list_head node;		/* in d->maps, guarded by d->lock */
	struct umd *d;
	char *name;
	struct umpath_map *map;
	unsigned refs;			/* guarded by d->lock */
	unsigned opens;			/* clients holding it open, guarded by d->lock */
	bool removed;			/* guarded by d->lock */
	struct umd_policy policy;	/* guarded by d->lock */
	struct ck_map *ck;		/* the checker's state for this map (checker.c) */
};

struct umd_opts {
	unsigned io_timeout_ms;
};

struct umd_checker;
struct umd_events;

struct umd {
	struct umpath_ctx *ctx;
	pthread_mutex_t lock;
	struct list_head maps;		/* guarded by lock */
	volatile int stopping;		/* set by SIGTERM/SIGINT */
	struct umd_policy defaults;	/* for maps made without a policy; guarded by lock */
	struct umd_checker *checker;
	struct umd_events *events;
};

int umd_init(struct umd *d, const struct umd_opts *opts);
void umd_fini(struct umd *d);

/* Create a map from a table, its size taken from its paths.  err gets the
 * kernel's reason on a refused table. */
int umd_map_create(struct umd *d, const char *name, const char *table, char *err, size_t errlen);
/* The same with a policy (NULL: the daemon's defaults). */
int umd_map_create_policy(struct umd *d, const char *name, const char *table,
			  const struct umd_policy *policy, char *err, size_t errlen);
/* Replace a live map's policy (reconfigure). */
int umd_map_set_policy(struct umd *d, const char *name, const struct umd_policy *policy);
/* -ENXIO if unknown, -EBUSY if a client has it open (unless force). */
int umd_map_remove(struct umd *d, const char *name, bool force);
/* A reference to a live map, NULL if unknown; open=true counts a client. */
struct umd_map *umd_map_get(struct umd *d, const char *name, bool open);
void umd_map_put(struct umd_map *m, bool open);
/* Switch queue_if_no_path off on every map (at shutdown). */
void umd_fail_if_no_path_all(struct umd *d);
/* Flush every map (at shutdown). */
void umd_flush_all(struct umd *d);
/* Names of the live maps, for listing: calls fn under no lock. */
void umd_map_foreach(struct umd *d, void (*fn)(struct umd_map *m, void *opaque), void *opaque);
/* The map exported under "": the only map, if there is exactly one. */
struct umd_map *umd_map_get_default(struct umd *d, bool open);

/* ---- exports ------------------------------------------------------- */

/* An export serves the daemon's maps to clients; one file per kind. */
struct umd_export;
struct umd_export_ops {
	const char *name;
	/* spec: what follows "--nbd " or "--fuse " on the command line. */
	int (*start)(struct umd *d, const char *spec, struct umd_export **ret);
	/* Stop accepting, let in-flight I/O end, disconnect, free. */
	void (*stop)(struct umd_export *e);
};

extern const struct umd_export_ops umd_nbd_export;
extern const struct umd_export_ops umd_fuse_export;

/* ---- path checkers and policies (checker.c) ------------------------- */

int umd_checker_start(struct umd *d);
void umd_checker_stop(struct umd *d);
/* A map joins and leaves the checker (umd.c calls these). */
void umd_checker_map_added(struct umd_map *m);
void umd_checker_map_removed(struct umd_map *m);
/* An engine event of m (path failures found by I/O count for flapping). */
void umd_checker_on_event(struct umd_map *m, const struct umpath_event *ev);
/* The checker's view of a path of m: "up", "down", "pending", "held"
 * (flap damping), or "-" when not checked; for show paths/topology. */
const char *umd_checker_path_state(struct umd_map *m, const char *path, char *buf, size_t len);

/* ---- events (events.c) ----------------------------------------------- */

int umd_events_init(struct umd *d);
void umd_events_fini(struct umd *d);

/* ---- control socket ------------------------------------------------- */

struct umd_control;
int umd_control_start(struct umd *d, const char *path, struct umd_control **ret);
void umd_control_stop(struct umd_control *c);

/* The default control socket path: /run/umpath/control for root,
 * $XDG_RUNTIME_DIR/umpath/control otherwise; UMPATH_CONTROL overrides. */
const char *umd_default_control_path(char *buf, size_t len);

#endif
