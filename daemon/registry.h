/* registry.h - umpathd's maps by name: what the exports and every other
 * part of the daemon share.  A part looks a map up with a reference
 * (umd_map_get/put), walks them (umd_map_foreach), or subscribes to hear
 * of maps added, removed and changed (umd_registry_subscribe): the
 * checker, the event hub and the exports are observers, never called by
 * the registry by name.
 *
 * Locking: the registry's lock guards the list and each entry's refs,
 * opens and removed flag; it is never held across an engine call that may
 * block nor across I/O, nor while observers run.
 */
#ifndef UMPATH_DAEMON_REGISTRY_H
#define UMPATH_DAEMON_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <umpath/umpath.h>

#include "list.h"
#include "policy.h"

struct umd;

#define UMD_MAP_SLOTS 8		/* observers with per-map data */

/* One map of the daemon.  Exports hold a reference (umd_map_get/put) for
 * as long as a client has the map open; remove refuses a map with opens. */
struct umd_map {
	struct list_head node;		/* in the registry, guarded by its lock */
	struct umd *d;
	char *name;
	struct umpath_map *map;
	unsigned refs;			/* guarded by d->lock */
	unsigned opens;			/* clients holding it open, guarded by d->lock */
	bool removed;			/* guarded by d->lock */
	bool errored;			/* removed by force while open: fails all I/O */
	bool reaper;			/* guarded by d->lock: umd_map_remove waits
					 * for the last reference and frees it */
	struct umd_policy policy;	/* guarded by d->lock */
	void *slot[UMD_MAP_SLOTS];	/* each observer's own, see umd_map_slot */
	/* The ublk export (exports/ublk.c): asked for at create, immutable
	 * after; ublk_dev is written by the export under d->lock. */
	bool ublk;			/* serve it as /dev/ublkbN */
	int ublk_id;			/* N asked for, -1: any */
	int ublk_dev;			/* N it has now, -1: none */
};

/* What a create asks of the exports beyond the NBD and FUSE ones, which
 * serve every map. */
struct umd_map_exports {
	bool ublk;			/* a /dev/ublkbN for it */
	int ublk_id;			/* that N, -1: the kernel's choice */
};

/* A reference to a live map, NULL if unknown; open=true counts a client. */
struct umd_map *umd_map_get(struct umd *d, const char *name, bool open);
void umd_map_put(struct umd_map *m, bool open);
/* The map exported under "": the only map, if there is exactly one. */
struct umd_map *umd_map_get_default(struct umd *d, bool open);
/* Every live map, with a reference held across fn and no lock. */
void umd_map_foreach(struct umd *d, void (*fn)(struct umd_map *m, void *opaque), void *opaque);

/* The /dev/ublkbN number of m (-1: none), under the registry's lock. */
int umd_map_ublk_dev(struct umd_map *m);
void umd_map_set_ublk_dev(struct umd_map *m, int id);

/* ---- observers ---------------------------------------------------------- */

enum umd_map_change {
	UMD_MAP_ADDED,		/* created and listed */
	UMD_MAP_REMOVED,	/* about to be freed: its last reference is gone */
	UMD_MAP_CHANGED,	/* an engine event (ev), or its policy (ev NULL) */
};

struct umd_map_observer {
	const char *name;	/* for the log */
	/* Runs on the thread that made the change (an engine event: a loop
	 * or I/O completion thread), with no registry lock held; it must
	 * not block, nor (un)subscribe. */
	void (*notify)(void *opaque, struct umd_map *m, enum umd_map_change what,
		       const struct umpath_event *ev);
	/* Optional, for exports that make a device of a map (ublk).  Called
	 * on the creating thread, no lock held, after ADDED; may block.
	 * 0: done; 1: the map is created but not exported this way (err
	 * says why: a warning for the caller); -errno refuses the create
	 * (the map is removed again, err says why). */
	int (*attach)(void *opaque, struct umd_map *m, char *err, size_t errlen);
	/* Optional: before a remove unlists m, on the removing thread, may
	 * block.  -EBUSY (err says why) refuses it with nothing torn down;
	 * 0 once the observer's device is gone and it holds no reference on
	 * m.  With force it must not refuse. */
	int (*detach)(void *opaque, struct umd_map *m, bool force, char *err, size_t errlen);
};

struct umd_map_sub;
/* Hear of every change from now on (maps that exist already are announced
 * as ADDED before this returns).  *ret_slot (if not NULL) gets an index
 * into each map's slot[] that is this observer's alone. */
int umd_registry_subscribe(struct umd *d, const struct umd_map_observer *ops, void *opaque,
			   struct umd_map_sub **ret_sub, unsigned *ret_slot);
/* No notify runs for s once this returns. */
void umd_registry_unsubscribe(struct umd_map_sub *s);

#endif
