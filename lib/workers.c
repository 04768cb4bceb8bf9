/* workers.c - a small pool of threads for the blocking calls a transport
 * has no asynchronous form for (buffered writes to ext4: docs/writes.md).
 *
 * Threads are started on demand, up to max, and live until the context is
 * freed: a daemon that never writes to a file path has none, and a busy one
 * pays no thread start per I/O.
 *
 * Waking a thread costs more than the work here (a 4 KiB copy into the page
 * cache): on a 2-CPU virtual machine, two futex wake-ups an I/O halved the
 * write rate.  So work is queued, and a thread is woken (or started) only
 * when the queue holds more than the threads busy right now will take when
 * they finish.  A thread counts as busy for UM_WORKERS_FRESH_NS after it
 * took its work: one stuck longer in a call (a hung path) is not counted,
 * so work queued behind it wakes another thread.  Should work be queued
 * just before the threads it counted on get stuck, one idle thread keeps
 * watch while any thread is busy (a thread that takes work and sees no
 * watcher wakes or starts one): the watcher looks at the queue every
 * UM_WORKERS_FRESH_NS, so no work waits longer than that for a thread
 * while the pool has one to give. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "selector.h"	/* um_now_ns */

#define UM_WORKERS_FRESH_NS 2000000u	/* 2 ms */

struct um_workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* work queued, or stop; CLOCK_MONOTONIC */
	struct list_head queue;		/* um_work; guarded by lock */
	unsigned queued;		/* entries in queue; guarded by lock */
	unsigned idle;			/* threads waiting on cond; guarded by lock */
	unsigned nthreads;		/* guarded by lock */
	unsigned max;
	bool watching;			/* an idle thread waits with a timeout; guarded by lock */
	bool stop;			/* guarded by lock */
	struct worker *thr;		/* max of them, nthreads started */
};

struct worker {
	struct um_workers *w;
	pthread_t thread;
	uint64_t busy_since;		/* when it took its work, 0: none; guarded by w->lock */
};

/* Threads busy with work they took less than UM_WORKERS_FRESH_NS ago. */
static unsigned workers_fresh_locked(struct um_workers *w, uint64_t now)
{
	unsigned n = 0;

	for (unsigned i = 0; i < w->nthreads; i++)
		if (w->thr[i].busy_since && now - w->thr[i].busy_since < UM_WORKERS_FRESH_NS)
			n++;
	return n;
}

static bool workers_busy_locked(struct um_workers *w)
{
	return w->nthreads > w->idle;
}

static void workers_wait_locked(struct um_workers *w)
{
	w->idle++;
	if (!w->watching && workers_busy_locked(w)) {
		struct timespec ts;
		uint64_t due = um_now_ns() + UM_WORKERS_FRESH_NS;

		ts.tv_sec = (time_t)(due / 1000000000u);
		ts.tv_nsec = (long)(due % 1000000000u);
		w->watching = true;
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		w->watching = false;
	} else {
		pthread_cond_wait(&w->cond, &w->lock);
	}
	w->idle--;
}

static bool workers_start_locked(struct um_workers *w);

static void *workers_thread(void *opaque)
{
	struct worker *self = opaque;
	struct um_workers *w = self->w;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct um_work *work;

		while (!w->queued && !w->stop)
			workers_wait_locked(w);
		if (!w->queued)
			break;
		work = list_first_entry(&w->queue, struct um_work, node);
		list_del_init(&work->node);
		w->queued--;
		self->busy_since = um_now_ns();
		/* Busy now: another thread must keep watch, an idle one or
		 * a new one (which is idle at first). */
		bool watch = !w->watching && w->idle;
		if (!w->watching && !w->idle)
			workers_start_locked(w);
		pthread_mutex_unlock(&w->lock);
		if (watch)
			pthread_cond_signal(&w->cond);
		work->fn(work);
		pthread_mutex_lock(&w->lock);
		self->busy_since = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int um_workers_new(unsigned max, struct um_workers **ret_w)
{
	struct um_workers *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (!w)
		return -ENOMEM;
	w->max = max ? max : 1;
	w->thr = calloc(w->max, sizeof(*w->thr));
	if (!w->thr) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	list_init(&w->queue);
	*ret_w = w;
	return 0;
}

/* Start one more thread; the caller holds w->lock.  The thread blocks every
 * signal: it may be started from any thread of the application. */
static bool workers_start_locked(struct um_workers *w)
{
	struct worker *t;
	sigset_t all, old;
	int r;

	if (w->nthreads == w->max)
		return false;
	t = &w->thr[w->nthreads];
	t->w = w;
	t->busy_since = 0;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&t->thread, NULL, workers_thread, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return false;
	w->nthreads++;
	return true;
}

bool um_workers_queue(struct um_workers *w, struct um_work *work)
{
	bool wake = false;

	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		return false;
	}
	list_add_tail(&work->node, &w->queue);
	w->queued++;
	if (w->queued > workers_fresh_locked(w, um_now_ns())) {
		/* More than the busy threads will take: one more thread. */
		if (w->queued > w->idle && !workers_start_locked(w) && !w->nthreads) {
			list_del_init(&work->node);
			w->queued--;
			pthread_mutex_unlock(&w->lock);
			return false;	/* no thread, none to be had */
		}
		wake = w->idle > 0;
	}
	pthread_mutex_unlock(&w->lock);
	/* After unlocking: a thread woken with the lock still held would
	 * only go to sleep again on it.  Should an idle thread wake by
	 * itself meanwhile and take the work, the signal wakes nobody or a
	 * thread that finds nothing and waits again. */
	if (wake)
		pthread_cond_signal(&w->cond);
	return true;
}

unsigned um_workers_threads(struct um_workers *w)
{
	unsigned n;

	pthread_mutex_lock(&w->lock);
	n = w->nthreads;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void um_workers_free(struct um_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	/* Work still queued runs first: the threads leave an empty queue. */
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->thr[i].thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->thr);
	free(w);
}
