/* primitives.c - what the engine's building blocks cost on this machine,
 * one after the other in a loop on one thread: a CLOCK_MONOTONIC read, an
 * I/O clock read (lib/ioclock.c: the TSC where it is invariant), an atomic
 * addition (a locked read-modify-write), a plain load and store of the same
 * counter, and a lock and unlock of the map's lock (lib/lock.c) and of a
 * pthread mutex.  docs/engine.md explains why these, not instruction
 * counts, set an I/O's time.  A second thread is started and left idle
 * first: glibc takes a single-threaded process's mutex without atomic
 * operations, which no daemon with a loop thread is.
 *
 *   build/bench/primitives [--quick]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ioclock.h"
#include "lock.h"
#include "selector.h"

static unsigned long n = 20000000;

static void *idle_thread(void *arg)
{
	pthread_mutex_t *gate = arg;

	pthread_mutex_lock(gate);	/* held by main until the end */
	pthread_mutex_unlock(gate);
	return NULL;
}

static double per_op(uint64_t t0)
{
	return (double)(um_now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	static _Atomic uint64_t counter;
	static struct um_lock lock;
	static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
	static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	volatile uint64_t sink = 0;
	pthread_t idle;
	uint64_t t0;

	if (argc > 1 && !strcmp(argv[1], "--quick"))
		n = 200000;
	else if (argc > 1) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	um_ioclock_init();
	pthread_mutex_lock(&gate);
	if (pthread_create(&idle, NULL, idle_thread, &gate)) {
		fprintf(stderr, "cannot start a thread\n");
		return 1;
	}
	printf("one thread, %lu of each, ns an operation\n", n);

	t0 = um_now_ns();
	for (unsigned long i = 0; i < n; i++)
		sink += um_now_ns();
	printf("%-36s %6.1f\n", "clock_gettime(CLOCK_MONOTONIC)", per_op(t0));

	t0 = um_now_ns();
	for (unsigned long i = 0; i < n; i++)
		sink += um_io_ns();
	printf("%-36s %6.1f   (%s)\n", "I/O clock read (um_io_ns)", per_op(t0), um_ioclock_name());

	t0 = um_now_ns();
	for (unsigned long i = 0; i < n; i++)
		atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
	printf("%-36s %6.1f\n", "atomic addition (fetch_add)", per_op(t0));

	t0 = um_now_ns();
	for (unsigned long i = 0; i < n; i++)
		atomic_store_explicit(&counter, atomic_load_explicit(&counter, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	printf("%-36s %6.1f\n", "plain load and store (relaxed)", per_op(t0));

	t0 = um_now_ns();
	for (unsigned long i = 0; i < n; i++) {
		um_lock(&lock);
		um_unlock(&lock);
	}
	printf("%-36s %6.1f\n", "um_lock + um_unlock", per_op(t0));

	t0 = um_now_ns();
	for (unsigned long i = 0; i < n; i++) {
		pthread_mutex_lock(&mutex);
		pthread_mutex_unlock(&mutex);
	}
	printf("%-36s %6.1f\n", "pthread_mutex_lock + unlock", per_op(t0));
	pthread_mutex_unlock(&gate);
	pthread_join(idle, NULL);
	return sink == 1;	/* keeps the reads */
}
