/* ioclock.c - calibration of the I/O clock (ioclock.h). */
#include <pthread.h>

#include "ioclock.h"
#include "selector.h"	/* um_now_ns */

#if defined(__x86_64__)
#include <cpuid.h>
#endif

_Atomic uint64_t um_ioclock_mult;
static pthread_once_t ioclock_once = PTHREAD_ONCE_INIT;

/* Long enough that the two clocks' read costs (tens of ns) are < 0.1 % of
 * it, short enough not to be noticed at a process's first I/O. */
#define IOCLOCK_CALIBRATE_NS 200000u

static void ioclock_calibrate(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;
	uint64_t t0, t1, c0, c1, mult;

	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
		return;		/* no invariant TSC */
	t0 = um_now_ns();
	c0 = __rdtsc();
	do {
		t1 = um_now_ns();
		c1 = __rdtsc();
	} while (t1 - t0 < IOCLOCK_CALIBRATE_NS);
	if (c1 <= c0)
		return;
	mult = (uint64_t)(((unsigned __int128)(t1 - t0) << 32) / (c1 - c0));
	/* A counter from 50 MHz to 20 GHz, or it is not believed. */
	if (mult < (1ull << 32) / 20 || mult > (20ull << 32))
		return;
	atomic_store_explicit(&um_ioclock_mult, mult, memory_order_release);
#endif
}

uint64_t um_io_ns_slow(void)
{
	um_ioclock_init();
	/* Calibrated now: the TSC if that set a factor, else CLOCK_MONOTONIC. */
	if (atomic_load_explicit(&um_ioclock_mult, memory_order_acquire))
		return um_io_ns();
	return um_now_ns();
}

const char *um_ioclock_name(void)
{
	um_ioclock_init();
	return atomic_load(&um_ioclock_mult) ? "tsc" : "monotonic";
}

uint64_t um_io_ns_fn(void)
{
	return um_io_ns();
}

void um_ioclock_init(void)
{
	pthread_once(&ioclock_once, ioclock_calibrate);
}
