/* wait.h - waiting on a condition variable until a CLOCK_MONOTONIC
 * deadline (umpath_now_ns()), so that a step of the wall clock neither
 * stalls nor hurries a bounded wait.  Every bounded wait of the daemon and
 * the exports goes through these. */
#ifndef UMPATH_DAEMON_WAIT_H
#define UMPATH_DAEMON_WAIT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline void um_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &a);
	pthread_condattr_destroy(&a);
}

/* Wait on cond (made by um_cond_init_monotonic) until woken or deadline_ns
 * passes: 0, or -ETIMEDOUT once the deadline is past. */
static inline int um_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
				     uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000u),
		.tv_nsec = (long)(deadline_ns % 1000000000u),
	};

	return pthread_cond_timedwait(cond, lock, &ts) == ETIMEDOUT ? -ETIMEDOUT : 0;
}

#endif
