/* policy.c - reading a path-management policy keyword and its value, the
 * same for `umpathd --policy KEY=VALUE` and the configuration file's
 * defaults/multipath sections. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* Seconds, decimals allowed, into milliseconds (at least 1 when > 0). */
static int parse_seconds(const char *v, unsigned *ret_ms, bool allow_zero)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(s) || s < 0 || s > 86400 || (!allow_zero && s == 0))
		return -EINVAL;
	*ret_ms = (unsigned)(s * 1000 + 0.5);
	if (s > 0 && !*ret_ms)
		*ret_ms = 1;
	return 0;
}

static int parse_count(const char *v, unsigned *ret)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n > 1000000)
		return -EINVAL;
	*ret = (unsigned)n;
	return 0;
}

/* Commands live as long as the daemon, shared by every policy naming
 * them: policies are copied and compared by value. */
struct interned {
	struct interned *next;
	char s[];
};

static const char *intern(const char *s)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct interned *all;
	struct interned *i;

	pthread_mutex_lock(&lock);
	for (i = all; i; i = i->next)
		if (!strcmp(i->s, s))
			break;
	if (!i) {
		i = malloc(sizeof(*i) + strlen(s) + 1);
		if (i) {
			strcpy(i->s, s);
			i->next = all;
			all = i;
		}
	}
	pthread_mutex_unlock(&lock);
	return i ? i->s : NULL;
}

int umd_pr_parse_key(const char *v, uint64_t *ret_key)
{
	unsigned long long k;
	const char *h = v;
	char *end;

	if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
		h += 2;
	/* mpathpersist's keys: hex, at most 8 bytes, nothing else. */
	if (!*h || strlen(h) > 16 || strspn(h, "0123456789abcdefABCDEF") != strlen(h))
		return -EINVAL;
	errno = 0;
	k = strtoull(h, &end, 16);
	if (errno || *end)
		return -EINVAL;
	*ret_key = k;
	return 0;
}

int umd_policy_set(struct umd_policy *p, const char *key, const char *v, char *err, size_t errlen)
{
	unsigned n;

	if (!strcmp(key, "polling_interval")) {
		if (parse_seconds(v, &p->polling_interval_ms, false))
			goto seconds;
		if (p->max_polling_interval_ms < p->polling_interval_ms)
			p->max_polling_interval_ms = 4 * p->polling_interval_ms;
	} else if (!strcmp(key, "max_polling_interval")) {
		if (parse_seconds(v, &p->max_polling_interval_ms, false))
			goto seconds;
	} else if (!strcmp(key, "checker_timeout")) {
		if (parse_seconds(v, &p->checker_timeout_ms, false))
			goto seconds;
	} else if (!strcmp(key, "failback")) {
		if (!strcmp(v, "manual")) {
			p->failback = FAILBACK_MANUAL;
		} else if (!strcmp(v, "immediate")) {
			p->failback = FAILBACK_IMMEDIATE;
		} else if (!strcmp(v, "followover")) {
			p->failback = FAILBACK_FOLLOWOVER;
		} else if (!parse_seconds(v, &p->failback_delay_ms, true)) {
			p->failback = p->failback_delay_ms ? FAILBACK_DEFERRED : FAILBACK_IMMEDIATE;
		} else {
			snprintf(err, errlen, "failback: expected manual, immediate, followover or a number of seconds");
			return -EINVAL;
		}
	} else if (!strcmp(key, "no_path_retry")) {
		if (!strcmp(v, "queue")) {
			p->no_path_retry = NO_PATH_RETRY_QUEUE;
		} else if (!strcmp(v, "fail")) {
			p->no_path_retry = NO_PATH_RETRY_FAIL;
		} else if (!parse_count(v, &n) && n <= 100000) {
			p->no_path_retry = (int)n;
		} else {
			snprintf(err, errlen, "no_path_retry: expected queue, fail or a number of checker intervals");
			return -EINVAL;
		}
	} else if (!strcmp(key, "flap_threshold")) {
		if (parse_count(v, &p->flap_threshold) || p->flap_threshold > 64) {
			snprintf(err, errlen, "flap_threshold: expected a number of failures from 0 (off) to 64");
			return -EINVAL;
		}
	} else if (!strcmp(key, "flap_window")) {
		if (parse_seconds(v, &p->flap_window_ms, false))
			goto seconds;
	} else if (!strcmp(key, "flap_recovery")) {
		if (parse_seconds(v, &p->flap_recovery_ms, true))
			goto seconds;
	} else if (!strcmp(key, "path_checker")) {
		int c = umpath_checker_from_name(v);

		if (c > UMPATH_CHECKER_DEFAULT) {
			p->checker = true;
			p->checker_kind = (enum umpath_checker)c;
		} else if (!strcmp(v, "none")) {
			p->checker = false;
		} else {
			snprintf(err, errlen, "path_checker: expected tur, directio, readsector0 or none");
			return -EINVAL;
		}
	} else if (!strcmp(key, "reservation_key")) {
		if (umd_pr_parse_key(v, &p->reservation_key) < 0) {
			snprintf(err, errlen, "reservation_key: expected a hexadecimal key of up to "
				 "16 digits (0x optional), 0 for none");
			return -EINVAL;
		}
	} else if (!strcmp(key, "fence_command")) {
		const char *c;

		for (c = v; *c; c++) {
			if ((unsigned char)*c < ' ' || *c == 0x7f) {
				snprintf(err, errlen, "fence_command: a control character in the command");
				return -EINVAL;
			}
		}
		if (!*v || !strcmp(v, "none")) {
			p->fence_command = NULL;
		} else {
			p->fence_command = intern(v);
			if (!p->fence_command) {
				snprintf(err, errlen, "fence_command: out of memory");
				return -ENOMEM;
			}
		}
	} else if (!strcmp(key, "fence_timeout")) {
		if (parse_seconds(v, &p->fence_timeout_ms, false))
			goto seconds;
	} else if (!strcmp(key, "read_hedge")) {
		if (!strcmp(v, "off")) {
			p->read_hedge_ms = UMPATH_READ_HEDGE_OFF;
		} else if (!strcmp(v, "auto")) {
			p->read_hedge_ms = UMPATH_READ_HEDGE_AUTO;
		} else if (!parse_count(v, &n) && n >= 1 && n <= 3600000) {
			p->read_hedge_ms = (int)n;
		} else {
			snprintf(err, errlen, "read_hedge: expected off, auto or a number of "
				 "milliseconds (1 to 3600000)");
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "unknown policy keyword '%s'", key);
		return -ENOENT;
	}
	return 0;
seconds:
	snprintf(err, errlen, "%s: expected a number of seconds", key);
	return -EINVAL;
}
