/* policy.h - multipathd's path-management policies, per map
 * (docs/umpathd.8, umpath.conf(5)). */
#ifndef UMPATH_DAEMON_POLICY_H
#define UMPATH_DAEMON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <umpath/umpath.h>

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
	enum umpath_checker checker_kind; /* path_checker: DEFAULT is the transport's */
	/* reservation_key: registered (REGISTER AND IGNORE EXISTING KEY) on a
	 * SCSI path before it is reinstated or first used; 0: none. */
	uint64_t reservation_key;
	/* Stale writes (docs/stale-writes.md): run, through /bin/sh, when a
	 * path may still apply a write the engine gave up on; %p the path,
	 * %m the map.  Interned (compare pointers, never free); NULL: none. */
	const char *fence_command;
	unsigned fence_timeout_ms;	/* it is killed after this; default 30000 */
	/* read_hedge (docs/read-hedge.md): UMPATH_READ_HEDGE_OFF (default),
	 * _AUTO, or a delay in ms; umpath_map_set_read_hedge() takes it. */
	int read_hedge_ms;
};

void umd_policy_defaults(struct umd_policy *p);
/* Set one policy keyword (polling_interval, max_polling_interval,
 * checker_timeout, failback, no_path_retry, flap_threshold, flap_window,
 * flap_recovery, path_checker, reservation_key, fence_command, fence_timeout,
 * read_hedge) from its text; times in seconds (read_hedge's in ms).  -ENOENT
 * for an unknown keyword, -EINVAL for a bad value, err says why. */
int umd_policy_set(struct umd_policy *p, const char *key, const char *value, char *err, size_t errlen);

/* A reservation key as mpathpersist and multipath.conf write it: hex, 0x
 * optional, at most 16 digits.  -EINVAL otherwise. */
int umd_pr_parse_key(const char *v, uint64_t *ret_key);

#endif
