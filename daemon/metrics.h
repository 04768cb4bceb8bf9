/* metrics.h - umpathd's Prometheus endpoint: GET /metrics over HTTP on TCP
 * or a unix socket (metrics.c; the text itself is show.c's
 * umd_show_metrics). */
#ifndef UMPATH_DAEMON_METRICS_H
#define UMPATH_DAEMON_METRICS_H

#include <stddef.h>

struct umd;
struct umd_control;
struct umd_metrics;

/* Limits of the endpoint (umpathd(8)). */
#define UMD_METRICS_MAX_CONNS 16	/* clients at once */
#define UMD_METRICS_MAX_PER_IP 4	/* from one TCP address */
#define UMD_METRICS_TIMEOUT_S 5		/* idle time before a client is dropped */
#define UMD_METRICS_MEMORY (32 * 1024)	/* request line and headers of one client */

/* Is spec "tcp:HOST:PORT", "tcp:PORT" or "unix:PATH"?  0, or -EINVAL with
 * why saying what is wrong ("invalid port ..."); nothing is opened. */
int umd_metrics_check(const char *spec, char *why, size_t whylen);
/* Listen on spec and serve GET /metrics until umd_metrics_stop; it is
 * listening when this returns 0.  -errno with why as above. */
int umd_metrics_start(struct umd *d, struct umd_control *ctl, const char *spec,
		      struct umd_metrics **ret, char *why, size_t whylen);
/* Stop serving (a scrape in progress ends first), close, remove the
 * socket file.  NULL-safe. */
void umd_metrics_stop(struct umd_metrics *m);

#endif
