/* Description: the event loop fires timers in deadline order (heap),
 * never fires a cancelled one, re-arms from inside a handler, runs timers
 * armed already due (zero delay) from another thread and from a handler on
 * the loop (no timerfd programmed for them), still fires a later timer
 * after the earlier one the timerfd was programmed for was cancelled, dispatches
 * events of many watched fds to their own handlers (fd table), and drops
 * an event for a watch removed before the loop got to it. */
#undef NDEBUG
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <umpath/umpath.h>

#include "check.h"

#define NTIMERS 2000
#define NFDS 300

struct tctx {
	struct umpath_timer *t;
	unsigned idx;
	uint64_t due;		/* delay asked */
	uint64_t abs;		/* deadline: now + due when armed */
	bool cancelled;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned fired, order[NTIMERS + 16], rearmed;
static bool fired_flag[NTIMERS];

static void timer_fn(void *opaque)
{
	struct tctx *c = opaque;

	pthread_mutex_lock(&lock);
	CHECK(!c->cancelled);
	CHECK(!fired_flag[c->idx]);
	fired_flag[c->idx] = true;
	order[fired++] = c->idx;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void rearm_fn(void *opaque)
{
	struct umpath_timer **t = opaque;

	pthread_mutex_lock(&lock);
	rearmed++;
	if (rearmed < 5)
		umpath_timer_arm(*t, 1000);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static struct tctx ctxs[NTIMERS];

static void test_timers(struct umpath_loop *loop)
{
	unsigned expect = 0;
	struct umpath_timer *rt;

	srand(42);
	/* Arm every timer while the loop cannot run them yet in order to test
	 * the heap, not the arrival order: deadlines far enough out. */
	for (unsigned i = 0; i < NTIMERS; i++) {
		ctxs[i].idx = i;
		ctxs[i].due = 200000000u + (uint64_t)(rand() % 100000) * 1000u;
		CHECK(umpath_timer_new(loop, timer_fn, &ctxs[i], &ctxs[i].t) == 0);
	}
	for (unsigned i = 0; i < NTIMERS; i++) {
		ctxs[i].abs = umpath_now_ns() + ctxs[i].due;
		umpath_timer_arm(ctxs[i].t, ctxs[i].due);
	}
	/* Re-arm some (later), cancel some. */
	for (unsigned i = 0; i < NTIMERS; i += 7) {
		ctxs[i].due += 50000000u;
		ctxs[i].abs = umpath_now_ns() + ctxs[i].due;
		umpath_timer_arm(ctxs[i].t, ctxs[i].due);
	}
	for (unsigned i = 3; i < NTIMERS; i += 5) {
		pthread_mutex_lock(&lock);
		ctxs[i].cancelled = true;
		pthread_mutex_unlock(&lock);
		umpath_timer_cancel(ctxs[i].t);
	}
	for (unsigned i = 0; i < NTIMERS; i++)
		expect += !ctxs[i].cancelled;
	pthread_mutex_lock(&lock);
	while (fired < expect)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	/* In deadline order, up to the time between reading the clock
	 * here and in umpath_timer_arm. */
	for (unsigned i = 0; i < NTIMERS; i++)
		CHECK(fired_flag[i] == !ctxs[i].cancelled);
	for (unsigned i = 1; i < fired; i++)
		CHECK(ctxs[order[i - 1]].abs <= ctxs[order[i]].abs + 20000000u);
	for (unsigned i = 0; i < NTIMERS; i++)
		umpath_timer_free(ctxs[i].t);

	/* A handler re-arms its own timer. */
	CHECK(umpath_timer_new(loop, rearm_fn, &rt, &rt) == 0);
	umpath_timer_arm(rt, 0);
	pthread_mutex_lock(&lock);
	while (rearmed < 5)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	umpath_timer_free(rt);
}

/* ---- timers armed already due --------------------------------------- */

static unsigned due_fired;
static struct umpath_timer *due_t;

static void due_fn(void *opaque)
{
	(void)opaque;
	pthread_mutex_lock(&lock);
	due_fired++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* Wait (at most 5 s) until due_fired reaches n. */
static void wait_due(unsigned n)
{
	uint64_t end = umpath_now_ns() + 5000000000u;

	pthread_mutex_lock(&lock);
	while (due_fired < n && umpath_now_ns() < end) {
		pthread_mutex_unlock(&lock);
		usleep(100);
		pthread_mutex_lock(&lock);
	}
	CHECK(due_fired >= n);
	pthread_mutex_unlock(&lock);
}

/* On the loop thread: arm due_t with no delay. */
static void arm_due_fn(void *opaque, uint32_t events)
{
	int *fd = opaque;
	char b;

	(void)events;
	CHECK(read(*fd, &b, 1) == 1);
	umpath_timer_arm(due_t, 0);
}

static void test_due_timers(struct umpath_loop *loop)
{
	struct umpath_timer *a, *b;
	int p[2];

	CHECK(umpath_timer_new(loop, due_fn, NULL, &due_t) == 0);
	/* From this thread, one at a time: each must wake the loop. */
	for (unsigned i = 1; i <= 1000; i++) {
		umpath_timer_arm(due_t, 0);
		wait_due(i);
	}
	/* From a handler on the loop thread. */
	CHECK(pipe(p) == 0);
	CHECK(umpath_loop_add_fd(loop, p[0], EPOLLIN, arm_due_fn, &p[0]) == 0);
	for (unsigned i = 1; i <= 100; i++) {
		CHECK(write(p[1], "x", 1) == 1);
		wait_due(1000 + i);
	}
	umpath_loop_del_fd(loop, p[0]);
	close(p[0]);
	close(p[1]);
	/* The timerfd programmed for a, a cancelled: b fires all the same. */
	CHECK(umpath_timer_new(loop, due_fn, NULL, &a) == 0);
	CHECK(umpath_timer_new(loop, due_fn, NULL, &b) == 0);
	umpath_timer_arm(a, 20000000u);
	umpath_timer_arm(b, 60000000u);
	umpath_timer_cancel(a);
	wait_due(1101);
	usleep(100000);
	pthread_mutex_lock(&lock);
	CHECK(due_fired == 1101);
	pthread_mutex_unlock(&lock);
	umpath_timer_free(a);
	umpath_timer_free(b);
	umpath_timer_free(due_t);
}

struct fctx {
	int fds[2];
	unsigned hits;
	unsigned idx;
};

static struct fctx fctxs[NFDS];
static unsigned fd_events;

static void fd_fn(void *opaque, uint32_t events)
{
	struct fctx *c = opaque;
	char b[16];

	CHECK(events & EPOLLIN);
	CHECK(read(c->fds[0], b, sizeof(b)) == 1);
	pthread_mutex_lock(&lock);
	c->hits++;
	fd_events++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void test_fds(struct umpath_loop *loop)
{
	for (unsigned i = 0; i < NFDS; i++) {
		fctxs[i].idx = i;
		CHECK(pipe(fctxs[i].fds) == 0);
		CHECK(umpath_loop_add_fd(loop, fctxs[i].fds[0], EPOLLIN, fd_fn, &fctxs[i]) == 0);
	}
	CHECK(umpath_loop_add_fd(loop, fctxs[0].fds[0], EPOLLIN, fd_fn, &fctxs[0]) == -EEXIST);
	for (unsigned i = 0; i < NFDS; i++)
		CHECK(write(fctxs[i].fds[1], "x", 1) == 1);
	pthread_mutex_lock(&lock);
	while (fd_events < NFDS)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < NFDS; i++)
		CHECK(fctxs[i].hits == 1);

	/* Removed, then readable: its handler never runs again. */
	for (unsigned i = 0; i < NFDS; i += 2)
		umpath_loop_del_fd(loop, fctxs[i].fds[0]);
	for (unsigned i = 0; i < NFDS; i++)
		CHECK(write(fctxs[i].fds[1], "y", 1) == 1);
	pthread_mutex_lock(&lock);
	while (fd_events < NFDS + NFDS / 2)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 1; i < NFDS; i += 2)
		umpath_loop_del_fd(loop, fctxs[i].fds[0]);
	for (unsigned i = 0; i < NFDS; i++) {
		CHECK(fctxs[i].hits == (i % 2 ? 2u : 1u));
		close(fctxs[i].fds[0]);
		close(fctxs[i].fds[1]);
	}
	CHECK(umpath_loop_mod_fd(loop, fctxs[0].fds[0], EPOLLIN) == -ENOENT);
}

int main(void)
{
	struct umpath_loop *loop;

	CHECK(umpath_loop_new(&loop) == 0);
	CHECK(!umpath_loop_is_current(loop));
	test_timers(loop);
	test_due_timers(loop);
	test_fds(loop);
	umpath_loop_free(loop);
	return 0;
}
