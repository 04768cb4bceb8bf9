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

#include <stddef.h>
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

/* What the NBD export lets its clients hold (umpathd(8), umpath.conf(5)). */
struct umd_nbd_opts {
	unsigned max_connections;	/* clients at once, negotiating or not */
	uint64_t conn_budget;		/* bytes of request data one connection holds */
	unsigned handshake_timeout_ms;	/* a whole negotiation */
	char **allow;			/* TCP peers let in (ADDR or ADDR/PREFIX); */
	unsigned nallow;		/* none: every peer */
	int tls;			/* UMD_NBD_TLS_*; default: require with credentials */
	char *tls_psk;			/* psktool's file, or NULL */
	char *tls_creds;		/* directory: server-cert.pem, server-key.pem[, ca-cert.pem] */
};
#define UMD_NBD_TLS_DEFAULT 0
#define UMD_NBD_TLS_OFF 1
#define UMD_NBD_TLS_ON 2		/* clients may use STARTTLS */
#define UMD_NBD_TLS_REQUIRE 3		/* clients must */
/* Set one of nbd_max_connections, nbd_conn_budget (k/M/G), nbd_handshake_timeout
 * (seconds), nbd_allow (adds addresses) from its text; -ENOENT for an unknown
 * key, -EINVAL for a bad value, err says why. */
int umd_nbd_opt_set(struct umd_nbd_opts *o, const char *key, const char *value, char *err,
		    size_t errlen);
void umd_nbd_opts_fini(struct umd_nbd_opts *o);
#define UMD_NBD_MAX_CONNECTIONS 128
#define UMD_NBD_CONN_BUDGET (64ull << 20)
#define UMD_NBD_HANDSHAKE_TIMEOUT_MS 10000
/* The options NBD exports start with: the daemon's (umpathd sets them
 * before starting exports; options.c). */
const struct umd_nbd_opts *umd_nbd_opts(const struct umd *d);

extern const struct umd_export_ops umd_nbd_export;
extern const struct umd_export_ops umd_fuse_export;
/* Its spec: "all" (--ublk), "recover" (--recover), "depth=N", comma-separated. */
extern const struct umd_export_ops umd_ublk_export;
#define UMD_UBLK_DEPTH 128		/* tags per queue (--ublk-depth) */
#define UMD_UBLK_MAX_DEPTH 4096

#endif
