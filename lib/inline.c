/* inline.c - a blocking call made on the submitting thread, with a guard
 * its caller watches (include/umpath/umpath.h, docs/writes.md).
 *
 * The guard's state moves 0 -> 1 when a transport begins the call
 * (um_inline_begin), and back 1 -> 0 when the call returns
 * (um_inline_end), or 1 -> 2 when the caller's watcher claims it
 * (umpath_inline_claim); both moves are one compare-and-swap, so exactly
 * one of the blocked thread and the watcher wins.  A claimed guard stays 2
 * until the next umpath_inline_allow with it: the blocked thread reads it
 * after its submit.  The claim also tells the call's path (the backoff
 * word given to um_inline_begin) to make no inline calls for a while: its
 * next writes go to the writer threads, and a second thread is not
 * blocked there. */
#include "internal.h"
#include "selector.h"	/* um_now_ns */

enum { INL_IDLE, INL_BUSY, INL_CLAIMED };

/* A claimed call's path makes no inline calls for this long. */
#define UM_INLINE_BACKOFF_NS 1000000000u

/* The guard this thread's next inline call may use, or NULL. */
static _Thread_local struct umpath_inline *inl_allowed;

void umpath_inline_allow(struct umpath_inline *g)
{
	if (g)
		__atomic_store_n(&g->priv_state, INL_IDLE, __ATOMIC_RELAXED);
	inl_allowed = g;
}

struct umpath_inline *um_inline_begin(_Atomic uint64_t *backoff)
{
	struct umpath_inline *g = inl_allowed;

	if (!g)
		return NULL;
	inl_allowed = NULL;	/* one call: a retry done() makes goes elsewhere */
	g->priv_backoff = (void *)backoff;
	__atomic_store_n(&g->priv_since, um_now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&g->priv_state, INL_BUSY, __ATOMIC_RELEASE);
	return g;
}

bool um_inline_end(struct umpath_inline *g)
{
	uint64_t busy = INL_BUSY;

	return __atomic_compare_exchange_n(&g->priv_state, &busy, INL_IDLE, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

uint64_t umpath_inline_busy_ns(const struct umpath_inline *g)
{
	uint64_t now, since;

	if (__atomic_load_n(&g->priv_state, __ATOMIC_ACQUIRE) != INL_BUSY)
		return 0;
	now = um_now_ns();
	since = __atomic_load_n(&g->priv_since, __ATOMIC_RELAXED);
	return now > since ? now - since : 1;	/* a newer call's start: just begun */
}

int umpath_inline_claim(struct umpath_inline *g, uint64_t older_than_ns)
{
	uint64_t busy = INL_BUSY, ns = umpath_inline_busy_ns(g);

	if (!ns || ns < older_than_ns)
		return 0;
	if (!__atomic_compare_exchange_n(&g->priv_state, &busy, INL_CLAIMED, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	/* Its I/O is still out, so its path is open: no more inline calls
	 * there for a while. */
	atomic_store_explicit((_Atomic uint64_t *)g->priv_backoff, um_now_ns() + UM_INLINE_BACKOFF_NS,
			      memory_order_relaxed);
	return 1;
}

int umpath_inline_claimed(const struct umpath_inline *g)
{
	return __atomic_load_n(&g->priv_state, __ATOMIC_ACQUIRE) == INL_CLAIMED;
}
