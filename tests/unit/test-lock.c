/* Description: the map's lock (lib/lock.c) excludes: threads that add to a
 * plain counter under it, with preemption and contention on 2 CPUs, lose no
 * addition; a condition wait sleeps until a broadcast and returns holding
 * the lock; a timed wait with no broadcast returns after its time, not
 * before; and the I/O clock (lib/ioclock.c) counts real time: 50 ms on
 * CLOCK_MONOTONIC read as 50 ms give or take 2 %, and a thread moved to
 * another CPU sees it step back by less than 1 us (two CPUs' counters differ
 * by a few hundred ticks). */
#undef NDEBUG
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "check.h"
#include "ioclock.h"
#include "lock.h"
#include "selector.h"

#define THREADS 4
#define ROUNDS 200000

static struct um_lock lock;
static struct um_cond cond;
static unsigned long counter;	/* guarded by lock, deliberately not atomic */
static bool flag;		/* guarded by lock */
static unsigned woken;		/* guarded by lock */

static void *adder(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < ROUNDS; i++) {
		um_lock(&lock);
		counter++;
		if (!(i % 1024))
			sched_yield();	/* preempted holding it: others contend */
		um_unlock(&lock);
	}
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	um_lock(&lock);
	while (!flag)
		um_cond_wait(&cond, &lock, 0);
	woken++;
	um_unlock(&lock);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	uint64_t a, b, m0, m1, prev;

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, adder, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(counter == (unsigned long)THREADS * ROUNDS);
	CHECK(atomic_load(&lock.v) == 0);

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, waiter, NULL) == 0);
	/* Let them sleep (not required: a broadcast before a wait is seen
	 * through flag), then wake them all. */
	nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	um_lock(&lock);
	flag = true;
	um_cond_broadcast(&cond);
	um_unlock(&lock);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(woken == THREADS);
	CHECK(atomic_load(&lock.v) == 0);

	um_lock(&lock);
	a = um_now_ns();
	um_cond_wait(&cond, &lock, 30);
	b = um_now_ns();
	um_unlock(&lock);
	CHECK(b - a >= 30000000u);
	CHECK(b - a < 5000000000u);

	printf("I/O clock: %s\n", um_ioclock_name());
	m0 = um_now_ns();
	a = prev = um_io_ns();
	do {
		uint64_t now = um_io_ns();

		CHECK(now + 1000 >= prev);
		prev = now > prev ? now : prev;
		m1 = um_now_ns();
	} while (m1 - m0 < 50000000u);
	b = um_io_ns();
	printf("50 ms monotonic: %.3f ms I/O clock\n", (double)(b - a) / 1e6);
	CHECK((double)(b - a) > 0.98 * (double)(m1 - m0));
	CHECK((double)(b - a) < 1.02 * (double)(m1 - m0));
	CHECK(um_io_since(b + 1000000) == 0);	/* an earlier reading than start: 0 */
	return 0;
}
