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
#include <stdio.h>
#include <time.h>

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
/* Set one policy keyword (polling_interval, max_polling_interval,
 * checker_timeout, failback, no_path_retry, flap_threshold, flap_window,
 * flap_recovery, path_checker) from its text; times in seconds.  -ENOENT
 * for an unknown keyword, -EINVAL for a bad value, err says why. */
int umd_policy_set(struct umd_policy *p, const char *key, const char *value, char *err, size_t errlen);

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

/* Subscribers (`umpath events`): each has a queue of UMD_EVENTS_QUEUE
 * events; one that falls further behind loses the oldest, and is told how
 * many.  At most UMD_EVENTS_MAX_SUBS at once, so that followers cannot
 * take every control connection. */
#define UMD_EVENTS_QUEUE 1024
#define UMD_EVENTS_MAX_SUBS 16

/* An event as a subscriber gets it: the strings are the message's own,
 * valid until umd_event_msg_put(). */
struct umd_event_msg {
	struct umd_event ev;
	struct timespec time;		/* wall clock (CLOCK_REALTIME) when published */
	uint64_t seq;			/* 1, 2, ... in order of publication */
};

struct umd_event_sub;
/* Follow the events of the map named map (NULL: of every map), also of
 * maps created later.  -EAGAIN with UMD_EVENTS_MAX_SUBS subscribers. */
int umd_events_subscribe(struct umd *d, const char *map, struct umd_event_sub **ret);
void umd_events_unsubscribe(struct umd_event_sub *s);
/* Readable (POLLIN) while umd_events_next has something to give, and
 * once the daemon's event hub shuts down (umd_events_closed). */
int umd_events_fd(struct umd_event_sub *s);
/* The oldest waiting event or NULL; *ret_lost is the number of events
 * dropped since the last call, all older than the one returned. */
struct umd_event_msg *umd_events_next(struct umd_event_sub *s, uint64_t *ret_lost);
void umd_event_msg_put(struct umd_event_msg *msg);
/* The hub has shut down: nothing more will come. */
bool umd_events_closed(struct umd_event_sub *s);

/* ---- control socket ------------------------------------------------- */

struct umd_control;
int umd_control_start(struct umd *d, const char *path, struct umd_control **ret);
void umd_control_stop(struct umd_control *c);

/* The default control socket path: /run/umpath/control for root,
 * $XDG_RUNTIME_DIR/umpath/control otherwise; UMPATH_CONTROL overrides. */
const char *umd_default_control_path(char *buf, size_t len);

/* ---- config (config.c; docs/umpath.conf.5) ----------------------------- */

#define UMD_CONFIG_DEFAULT "/etc/umpath.conf"

/* A configuration file, read and its tables assembled. */
struct umd_config;

/* Read path, or UMD_CONFIG_DEFAULT if NULL (which may be missing: no maps,
 * the built-in defaults).  On error, err says "FILE:LINE: reason". */
int umd_config_read(const char *path, struct umd_config **ret, char *err, size_t errlen);
void umd_config_free(struct umd_config *cfg);
/* The file's io_timeout in ms, 0 if it sets none. */
unsigned umd_config_io_timeout_ms(const struct umd_config *cfg);
/* At start: d->defaults (as they are: built-ins and --policy) with the
 * file's defaults on top, and the file's maps created.  Takes cfg, also on
 * error, and keeps it for umd_config_reconfigure. */
int umd_config_apply(struct umd *d, struct umd_config *cfg, char *err, size_t errlen);
/* How reconfigure swaps a live map's table without failing queued I/O:
 * load, noflush suspend, resume (control.c's, serialised with the control
 * socket's other changes to m); err gets the engine's reason. */
typedef int umd_reload_fn(void *opaque, struct umd_map *m, const char *table,
			  char *err, size_t errlen);
/* Re-read the file umd_config_apply was given and apply it: new maps
 * created, changed tables reloaded, policies replaced, maps gone from the
 * file removed unless open; maps not from the file are left alone.  One
 * line per map to out.  A file with an error, or a table that would not
 * load, changes nothing (err: "FILE:LINE: reason"). */
int umd_config_reconfigure(struct umd *d, umd_reload_fn *reload, void *opaque, FILE *out,
			   char *err, size_t errlen);
/* Forget the applied file (at exit). */
void umd_config_fini(struct umd *d);

#endif
