/* export.h - what an export (NBD server, FUSE file system) implements, and
 * the one shutdown protocol of umpathd.  An export sees the daemon only
 * through the registry (registry.h).
 *
 * Shutdown, the same for every part that serves clients (exports, the
 * control socket, the checker's probes):
 *  1. stop accepting: no new client, connection or request is taken
 *     (quiesce; every export is quiesced before any is drained);
 *  2. drain with a bound: requests in flight may finish and be answered
 *     until deadline_ns (umpath_now_ns(), CLOCK_MONOTONIC);
 *  3. fail what remains: at the deadline every client is disconnected
 *     (shutdown(2) of its socket, or the FUSE session ended) and requests
 *     not yet answered are dropped; the engine ends every I/O within its
 *     io_timeout, so a thread waiting for one comes back;
 *  4. free on the last reference: connections and I/O hold references on
 *     their export, which whoever drops the last one frees - never a free
 *     after a timeout while someone may still use it.
 * stop returns 0 once the export is gone, or -ETIMEDOUT if it still has
 * users at hard_ns: the daemon then exits without freeing the engine or
 * the maps they may still touch (docs/architecture.md).
 */
#ifndef UMPATH_DAEMON_EXPORT_H
#define UMPATH_DAEMON_EXPORT_H

#include <stdint.h>

#include "registry.h"

struct umd_export;

struct umd_export_ops {
	const char *name;
	/* spec: what follows "--nbd " or "--fuse " on the command line. */
	int (*start)(struct umd *d, const char *spec, struct umd_export **ret);
	/* Step 1; NULL if stop does it. */
	void (*quiesce)(struct umd_export *e);
	/* Steps 2 to 4. */
	int (*stop)(struct umd_export *e, uint64_t deadline_ns, uint64_t hard_ns);
};

extern const struct umd_export_ops umd_nbd_export;
extern const struct umd_export_ops umd_fuse_export;

#endif
