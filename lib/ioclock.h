/* ioclock.h - the clock I/O durations are measured on: when a request was
 * dispatched (rq->start_ns), its latency in the path's statistics, and the
 * selectors' service times (historical-service-time, multipath-v0's 'M').
 *
 * CLOCK_MONOTONIC costs ~30 ns a read under kvm-clock, two reads an I/O a
 * third of the engine's whole cost (docs/engine.md).  With an invariant TSC
 * (CPUID 0x80000007 EDX bit 8: constant rate, running in every C-state) the
 * counter itself is read (~11 ns) and scaled to ns by a factor calibrated
 * once against CLOCK_MONOTONIC; SPDK's spdk_get_ticks() reads it the same
 * way.  Elsewhere it is CLOCK_MONOTONIC.
 *
 * Only differences of two um_io_ns() readings mean anything: they are never
 * compared with um_now_ns() times (deadlines, timers).  Two CPUs' counters
 * may differ by a few hundred ticks: a duration is clamped at 0 by whoever
 * subtracts (um_io_since). */
#ifndef UMPATH_IOCLOCK_H
#define UMPATH_IOCLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* ns per TSC tick, << 32; 0 until calibrated, or when CLOCK_MONOTONIC is used. */
extern _Atomic uint64_t um_ioclock_mult;

uint64_t um_io_ns_slow(void);

static inline uint64_t um_io_ns(void)
{
#if defined(__x86_64__)
	uint64_t m = atomic_load_explicit(&um_ioclock_mult, memory_order_relaxed);

	if (__builtin_expect(m != 0, 1))
		return (uint64_t)(((unsigned __int128)__rdtsc() * m) >> 32);
#endif
	return um_io_ns_slow();
}

/* ns since start (an earlier um_io_ns()), 0 if the clock reads earlier. */
static inline uint64_t um_io_since(uint64_t start)
{
	uint64_t now = um_io_ns();

	return now > start ? now - start : 0;
}

/* um_io_ns(), callable through a pointer. */
uint64_t um_io_ns_fn(void);

/* Calibrates now rather than at the first I/O (umpath_ctx_new). */
void um_ioclock_init(void);

/* Which clock um_io_ns() reads: "tsc" or "monotonic". */
const char *um_ioclock_name(void);

#endif
