/* Description: the worker pool (lib/workers.c) starts no thread before it
 * has work, runs every piece of work queued exactly once, never starts more
 * than its maximum, keeps running new work while some of its threads are
 * stuck in a call (a hung path), and has run everything queued, stuck
 * work included, when um_workers_free returns. */
#undef NDEBUG
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "testlib.h"

#define MAX 6u
#define NR 20000u

struct job {
	struct um_work work;
	_Atomic unsigned runs;
	double done_at;
};

static _Atomic unsigned running, peak;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void job_fn(struct um_work *work)
{
	struct job *j = container_of(work, struct job, work);
	unsigned now = atomic_fetch_add(&running, 1) + 1, p = atomic_load(&peak);

	while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
		;
	j->done_at = t_now();
	atomic_fetch_add(&j->runs, 1);
	atomic_fetch_sub(&running, 1);
}

/* Blocks until the gate opens: a call on a path that hangs. */
static void stuck_fn(struct um_work *work)
{
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	job_fn(work);
}

static bool wait_runs(struct job *j, unsigned nr, double secs)
{
	double end = t_now() + secs;

	for (;;) {
		unsigned n = 0;

		for (unsigned i = 0; i < nr; i++)
			n += atomic_load(&j[i].runs) ? 1 : 0;
		if (n == nr)
			return true;
		if (t_now() > end)
			return false;
		usleep(1000);
	}
}

int main(void)
{
	static struct job jobs[NR], stuck[MAX - 1], late[4];
	struct um_workers *w;
	double t0;

	CHECK_EQ_INT(um_workers_new(MAX, &w), 0);
	CHECK_EQ_INT(um_workers_threads(w), 0);

	/* Many pieces of work from two threads' worth of bursts. */
	for (unsigned i = 0; i < NR; i++) {
		jobs[i].work.fn = job_fn;
		CHECK(um_workers_queue(w, &jobs[i].work));
	}
	CHECK(wait_runs(jobs, NR, 30));
	for (unsigned i = 0; i < NR; i++)
		CHECK_EQ_INT(atomic_load(&jobs[i].runs), 1);
	CHECK(um_workers_threads(w) >= 1 && um_workers_threads(w) <= MAX);
	CHECK(atomic_load(&peak) <= MAX);

	/* All threads but one stuck: new work still runs, at once. */
	for (unsigned i = 0; i < MAX - 1; i++) {
		stuck[i].work.fn = stuck_fn;
		CHECK(um_workers_queue(w, &stuck[i].work));
	}
	usleep(50000);
	t0 = t_now();
	for (unsigned i = 0; i < 4; i++) {
		late[i].work.fn = job_fn;
		CHECK(um_workers_queue(w, &late[i].work));
	}
	CHECK(wait_runs(late, 4, 1));
	for (unsigned i = 0; i < 4; i++)
		CHECK(late[i].done_at - t0 < 0.5);
	CHECK_EQ_INT(um_workers_threads(w), MAX);

	/* More work, then the stuck calls return: free has run it all. */
	for (unsigned i = 0; i < 4; i++) {
		atomic_store(&late[i].runs, 0);
		CHECK(um_workers_queue(w, &late[i].work));
	}
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	um_workers_free(w);
	CHECK(wait_runs(stuck, MAX - 1, 0));
	CHECK(wait_runs(late, 4, 0));
	return 0;
}
