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
};

struct umd_opts {
	unsigned io_timeout_ms;
};

struct umd {
	struct umpath_ctx *ctx;
	pthread_mutex_t lock;
	struct list_head maps;		/* guarded by lock */
	volatile int stopping;		/* set by SIGTERM/SIGINT */
};

int umd_init(struct umd *d, const struct umd_opts *opts);
void umd_fini(struct umd *d);

/* Create a map from a table, its size taken from its paths.  err gets the
 * kernel's reason on a refused table. */
int umd_map_create(struct umd *d, const char *name, const char *table, char *err, size_t errlen);
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

/* ---- control socket ------------------------------------------------- */

struct umd_control;
int umd_control_start(struct umd *d, const char *path, struct umd_control **ret);
void umd_control_stop(struct umd_control *c);

/* The default control socket path: /run/umpath/control for root,
 * $XDG_RUNTIME_DIR/umpath/control otherwise; UMPATH_CONTROL overrides. */
const char *umd_default_control_path(char *buf, size_t len);

#endif
