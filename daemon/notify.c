/* notify.c - umpathd's notifications to the service manager through
 * libsystemd's sd_notify(3) (notify.h).  The watchdog pings ride on a
 * timer of the daemon's loop, the one that runs the checker and the control
 * socket's listener, rather than on a thread of their own: a loop that
 * stalls stops the pings, which is what the watchdog is for. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "notify.h"

static struct {
	pthread_mutex_t lock;
	bool ready;			/* guarded by lock: READY=1 sent once */
	struct umpath_timer *watchdog;	/* set before the loop runs it, freed by stop */
	uint64_t ping_ns;		/* half of $WATCHDOG_USEC */
} ntf = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void watchdog_ping(void *opaque)
{
	sd_notify(0, "WATCHDOG=1");
	umpath_timer_arm(ntf.watchdog, ntf.ping_ns);
}

int umd_notify_start(struct umd *d)
{
	uint64_t usec = 0;
	int r;

	r = sd_watchdog_enabled(0, &usec);
	if (r <= 0 || !usec)
		return r < 0 ? r : 0;	/* not asked for (or not for our pid) */
	ntf.ping_ns = usec * 1000u / 2;
	r = umpath_timer_new(d->loop, watchdog_ping, NULL, &ntf.watchdog);
	if (r < 0)
		return r;
	sd_notify(0, "WATCHDOG=1");
	umpath_timer_arm(ntf.watchdog, ntf.ping_ns);
	return 0;
}

void umd_notify_stop(void)
{
	umpath_timer_free(ntf.watchdog);
	ntf.watchdog = NULL;
}

static unsigned nmaps(struct umd *d)
{
	unsigned n;

	pthread_mutex_lock(&d->lock);
	n = d->nmaps;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void umd_notify_ready(struct umd *d)
{
	pthread_mutex_lock(&ntf.lock);
	ntf.ready = true;
	sd_notifyf(0, "READY=1\nSTATUS=ready: %u map(s)", nmaps(d));
	pthread_mutex_unlock(&ntf.lock);
}

void umd_notify_reloading(void)
{
	pthread_mutex_lock(&ntf.lock);
	/* A reconfigure through the control socket may come before the
	 * exports listen: the manager must not hear READY=1 from it. */
	if (ntf.ready)
		sd_notifyf(0, "RELOADING=1\nSTATUS=reconfiguring\nMONOTONIC_USEC=%llu",
			   (unsigned long long)(umpath_now_ns() / 1000u));
	pthread_mutex_unlock(&ntf.lock);
}

void umd_notify_reloaded(struct umd *d, int r, const char *err)
{
	char why[256];

	pthread_mutex_lock(&ntf.lock);
	if (!ntf.ready)
		goto out;
	if (r >= 0) {
		sd_notifyf(0, "READY=1\nSTATUS=ready: %u map(s), reconfigured", nmaps(d));
		goto out;
	}
	/* STATUS is one line. */
	snprintf(why, sizeof(why), "%s", err && *err ? err : strerror(-r));
	for (char *p = why; *p; p++)
		if (*p == '\n')
			*p = ' ';
	sd_notifyf(0, "READY=1\nSTATUS=ready: %u map(s); reconfigure failed, nothing changed: %s",
		   nmaps(d), why);
out:
	pthread_mutex_unlock(&ntf.lock);
}

void umd_notify_stopping(const char *why, uint64_t bound_ms)
{
	sd_notifyf(0, "STOPPING=1\nSTATUS=%s: draining I/O, stopping within %llu ms\n"
		   "EXTEND_TIMEOUT_USEC=%llu", why, (unsigned long long)bound_ms,
		   (unsigned long long)bound_ms * 1000u);
}
