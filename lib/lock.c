/* lock.c - the slow paths of the map's lock (lock.h): futex waits. */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *rel)
{
	return syscall(SYS_futex, word, op, val, rel, NULL, 0);
}

/* Take l after the fast path failed: mark it waited for (2), and sleep
 * while someone else holds it. */
void um_lock_wait(struct um_lock *l)
{
	while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
		futex(&l->v, FUTEX_WAIT_PRIVATE, 2, NULL);
}

void um_lock_wake(struct um_lock *l)
{
	futex(&l->v, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void um_cond_wait(struct um_cond *c, struct um_lock *l, unsigned ms)
{
	/* Read under the lock: a broadcast after it changes seq, and the
	 * futex wait then returns at once. */
	uint32_t seq = atomic_load_explicit(&c->seq, memory_order_relaxed);
	struct timespec rel = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	um_unlock(l);
	futex(&c->seq, FUTEX_WAIT_PRIVATE, seq, ms ? &rel : NULL);
	/* Other waiters may be woken with us: take the lock as contended,
	 * so that our unlock wakes the next one. */
	um_lock_wait(l);
}

void um_cond_broadcast(struct um_cond *c)
{
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_release);
	futex(&c->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}
