/* notify.h - umpathd's notifications to the service manager (sd_notify(3),
 * systemd's Type=notify): readiness, status, reloads, stop and the
 * watchdog.  Each call is a no-op without $NOTIFY_SOCKET; none blocks for
 * long (one datagram on a unix socket). */
#ifndef UMPATH_DAEMON_NOTIFY_H
#define UMPATH_DAEMON_NOTIFY_H

#include <stdint.h>

struct umd;

/* With $WATCHDOG_USEC set for this process (sd_watchdog_enabled(3)), ping
 * WATCHDOG=1 every half period from a timer of d->loop: the pings stop
 * when the daemon's loop stalls.  0, or -errno. */
int umd_notify_start(struct umd *d);
/* Stop the pings; before d->loop goes.  NULL-safe, idempotent. */
void umd_notify_stop(void);
/* READY=1 with a STATUS line, once the control socket and every export
 * listen.  Reloads before it send nothing. */
void umd_notify_ready(struct umd *d);
/* RELOADING=1 before a reconfigure, READY=1 and its outcome after (r < 0:
 * nothing changed, why in err). */
void umd_notify_reloading(void);
void umd_notify_reloaded(struct umd *d, int r, const char *err);
/* STOPPING=1, and the shutdown bound as EXTEND_TIMEOUT_USEC so that the
 * manager's stop timeout does not cut the drain short. */
void umd_notify_stopping(const char *why, uint64_t bound_ms);

#endif
