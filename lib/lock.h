/* lock.h - the map's lock: a mutex of one futex word and a condition of
 * another, the lock of "Futexes Are Tricky" (Drepper, 2011, mutex 3):
 * 0 free, 1 held, 2 held and perhaps waited for.
 *
 * Why not pthread_mutex_t: every I/O takes its map's lock twice, and
 * glibc's mutex spends ~55 instructions a round (type dispatch, owner tid,
 * user count) around the one atomic operation each way that a lock needs
 * (bench/engine-ir.sh; docs/engine.md "Locking").  Uncontended, this one
 * is a compare-exchange to lock and an exchange to unlock, inline.
 *
 * No owner, no recursion, no robustness: the map asserts its own owner
 * (map_assert_locked).  A waiter may wake without a broadcast: callers
 * wait in a loop, as with pthread_cond_wait. */
#ifndef UMPATH_LOCK_H
#define UMPATH_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

/* Both are free / unsignalled when zeroed. */
struct um_lock {
	_Atomic uint32_t v;
};

struct um_cond {
	_Atomic uint32_t seq;	/* bumped by every broadcast */
};

void um_lock_wait(struct um_lock *l);
void um_lock_wake(struct um_lock *l);

static inline void um_lock(struct um_lock *l)
{
	uint32_t c = 0;

	if (__builtin_expect(!atomic_compare_exchange_strong_explicit(&l->v, &c, 1,
			memory_order_acquire, memory_order_relaxed), 0))
		um_lock_wait(l);
}

static inline void um_unlock(struct um_lock *l)
{
	if (__builtin_expect(atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2, 0))
		um_lock_wake(l);
}

/* Unlock l, sleep until a broadcast on c (or for at most ms milliseconds
 * if ms > 0, or for no reason at all), lock l again. */
void um_cond_wait(struct um_cond *c, struct um_lock *l, unsigned ms);
/* Wake every waiter of c; the caller holds the lock they wait with. */
void um_cond_broadcast(struct um_cond *c);

#endif
