/* loop.c - the event loop model of umpath: one thread waiting in epoll, a
 * table of handlers indexed by fd (O(1) dispatch, whatever the number of
 * watched descriptors), timers in a binary min-heap on CLOCK_MONOTONIC
 * behind one timerfd, and an eventfd to wake the thread when another
 * thread arms an earlier timer or stops the loop.
 *
 * Each watch carries a generation in the epoll cookie, so an event that
 * epoll reported before its fd was removed (and maybe reused) is dropped
 * instead of reaching the new owner.  Removing a watch or cancelling a
 * timer from another thread waits until its handler has returned: after
 * the call, the handler's data may be freed.
 *
 * The context's loop runs the transports; umpathd runs its own loops
 * through the public umpath_loop_* wrappers at the end of this file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"
#include "selector.h"

#define FD_COOKIE(fd, gen) ((uint64_t)(uint32_t)(gen) << 32 | (uint32_t)(fd))
#define COOKIE_FD(c) ((int)(uint32_t)(c))
#define COOKIE_GEN(c) ((uint32_t)((c) >> 32))
#define TIMER_UNARMED SIZE_MAX

struct fd_watch {
	um_fd_fn fn;		/* NULL: not watched */
	void *opaque;
	uint32_t gen;		/* bumped on every add, matches the epoll cookie */
};

struct umpath_loop {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t idle;		/* a running handler returned */
	int epfd, tfd, efd;
	bool stop;			/* guarded by lock */
	struct um_timer **heap;		/* guarded by lock: min-heap by deadline */
	size_t nheap, heapcap;		/* guarded by lock */
	struct fd_watch *fds;		/* guarded by lock, indexed by fd */
	size_t nfds;			/* guarded by lock: entries in fds */
	uint64_t armed_ns;		/* guarded by lock: timerfd's deadline, 0 none */
	struct um_timer *running;	/* guarded by lock: timer fn running */
	int running_fd;			/* guarded by lock: fd handler running, or -1 */
};

static void loop_kick(struct umpath_loop *loop)
{
	uint64_t one = 1;
	ssize_t r = write(loop->efd, &one, sizeof(one));
	(void)r;	/* a full counter already means "wake up" */
}

/* ---- timer heap --------------------------------------------------------- */

static void heap_set(struct umpath_loop *loop, size_t i, struct um_timer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct umpath_loop *loop, size_t i)
{
	struct um_timer *t = loop->heap[i];

	while (i) {
		size_t parent = (i - 1) / 2;

		if (loop->heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct umpath_loop *loop, size_t i)
{
	struct um_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap && loop->heap[c + 1]->deadline_ns < loop->heap[c]->deadline_ns)
			c++;
		if (t->deadline_ns <= loop->heap[c]->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void heap_remove_locked(struct umpath_loop *loop, struct um_timer *t)
{
	size_t i = t->heap_idx;
	struct um_timer *last = loop->heap[--loop->nheap];

	t->heap_idx = TIMER_UNARMED;
	if (last == t)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->heap_idx);
}

static int heap_insert_locked(struct umpath_loop *loop, struct um_timer *t)
{
	if (loop->nheap == loop->heapcap) {
		size_t ncap = loop->heapcap ? 2 * loop->heapcap : 64;
		struct um_timer **nh = realloc(loop->heap, ncap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		loop->heap = nh;
		loop->heapcap = ncap;
	}
	heap_set(loop, loop->nheap++, t);
	heap_up(loop, t->heap_idx);
	return 0;
}

/* Program the timerfd for the earliest deadline, if it changed.  A
 * deadline already due is not programmed: the loop runs due timers at the
 * end of every pass, and a thread other than the loop's wakes it through
 * the eventfd, which costs one write instead of two timerfd_settime() (the
 * zero-delay "run this on the loop" timers of the transports are armed
 * once per batch of I/O). */
static void loop_rearm_locked(struct umpath_loop *loop, uint64_t now)
{
	struct itimerspec its;
	uint64_t d = loop->nheap ? loop->heap[0]->deadline_ns : 0;

	if (d && d <= now) {
		if (!um_loop_is_current(loop))
			loop_kick(loop);
		return;
	}
	if (d == loop->armed_ns)
		return;
	memset(&its, 0, sizeof(its));
	loop->armed_ns = d;
	if (d) {
		its.it_value.tv_sec = (time_t)(d / 1000000000u);
		its.it_value.tv_nsec = (long)(d % 1000000000u);
	}
	timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Run every timer that is due; then program the timerfd for the next. */
static void loop_run_timers(struct umpath_loop *loop)
{
	uint64_t now = um_now_ns();

	pthread_mutex_lock(&loop->lock);
	while (loop->nheap && loop->heap[0]->deadline_ns <= now) {
		struct um_timer *t = loop->heap[0];

		heap_remove_locked(loop, t);
		loop->running = t;
		pthread_mutex_unlock(&loop->lock);
		t->fn(t);
		pthread_mutex_lock(&loop->lock);
		loop->running = NULL;
		pthread_cond_broadcast(&loop->idle);
	}
	loop_rearm_locked(loop, now);
	pthread_mutex_unlock(&loop->lock);
}

/* ---- fd table ----------------------------------------------------------- */

static void loop_dispatch_fd(struct umpath_loop *loop, uint64_t cookie, uint32_t events)
{
	int fd = COOKIE_FD(cookie);
	um_fd_fn fn = NULL;
	void *opaque = NULL;

	pthread_mutex_lock(&loop->lock);
	if ((size_t)fd < loop->nfds && loop->fds[fd].fn && loop->fds[fd].gen == COOKIE_GEN(cookie)) {
		fn = loop->fds[fd].fn;
		opaque = loop->fds[fd].opaque;
		loop->running_fd = fd;
	}
	pthread_mutex_unlock(&loop->lock);
	if (!fn)
		return;	/* removed since epoll reported it */
	fn(opaque, events);
	pthread_mutex_lock(&loop->lock);
	loop->running_fd = -1;
	pthread_cond_broadcast(&loop->idle);
	pthread_mutex_unlock(&loop->lock);
}

static void *loop_thread(void *arg)
{
	struct umpath_loop *loop = arg;
	struct epoll_event evs[64];

	for (;;) {
		int n = epoll_wait(loop->epfd, evs, (int)UM_ARRAY_SIZE(evs), -1);
		uint64_t v;
		bool stop, due, fired = false;

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			int fd = COOKIE_FD(evs[i].data.u64);

			if (fd == loop->efd) {
				ssize_t r = read(loop->efd, &v, sizeof(v));
				(void)r;
			} else if (fd == loop->tfd) {
				ssize_t r = read(loop->tfd, &v, sizeof(v));
				(void)r;
				fired = true;
			} else {
				loop_dispatch_fd(loop, evs[i].data.u64, evs[i].events);
			}
		}
		/* The timerfd's timers, and those due now that the handlers
		 * above or another thread (which kicked the eventfd) armed.
		 * After the timerfd fired, it is programmed again even if
		 * nothing is due (its timer may have been cancelled). */
		pthread_mutex_lock(&loop->lock);
		if (fired)
			loop->armed_ns = 0;
		due = fired || (loop->nheap && loop->heap[0]->deadline_ns <= um_now_ns());
		pthread_mutex_unlock(&loop->lock);
		if (due)
			loop_run_timers(loop);
		pthread_mutex_lock(&loop->lock);
		stop = loop->stop;
		pthread_mutex_unlock(&loop->lock);
		if (stop)
			break;
	}
	return NULL;
}

int um_loop_new(struct umpath_loop **ret_loop)
{
	struct umpath_loop *loop = calloc(1, sizeof(*loop));
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	if (!loop)
		return -ENOMEM;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->idle, NULL);
	loop->running_fd = -1;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	loop->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->tfd < 0 || loop->efd < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.u64 = FD_COOKIE(loop->tfd, 0);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->tfd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.u64 = FD_COOKIE(loop->efd, 0);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->efd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&loop->thread, NULL, loop_thread, loop);
	if (r)
		goto fail;
	*ret_loop = loop;
	return 0;
fail:
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->tfd >= 0)
		close(loop->tfd);
	if (loop->efd >= 0)
		close(loop->efd);
	free(loop);
	return r;
}

void um_loop_free(struct umpath_loop *loop)
{
	if (!loop)
		return;
	pthread_mutex_lock(&loop->lock);
	loop->stop = true;
	pthread_mutex_unlock(&loop->lock);
	loop_kick(loop);
	pthread_join(loop->thread, NULL);
	for (size_t i = 0; i < loop->nheap; i++)
		loop->heap[i]->heap_idx = TIMER_UNARMED;
	free(loop->heap);
	free(loop->fds);
	close(loop->epfd);
	close(loop->tfd);
	close(loop->efd);
	pthread_mutex_destroy(&loop->lock);
	pthread_cond_destroy(&loop->idle);
	free(loop);
}

bool um_loop_is_current(struct umpath_loop *loop)
{
	return pthread_equal(pthread_self(), loop->thread);
}

void um_timer_init(struct um_timer *t, void (*fn)(struct um_timer *t))
{
	t->heap_idx = TIMER_UNARMED;
	t->deadline_ns = 0;
	t->fn = fn;
}

void um_timer_arm(struct umpath_loop *loop, struct um_timer *t, uint64_t delay_ns)
{
	pthread_mutex_lock(&loop->lock);
	if (t->heap_idx != TIMER_UNARMED)
		heap_remove_locked(loop, t);
	t->deadline_ns = um_now_ns() + delay_ns;
	if (heap_insert_locked(loop, t) < 0) {
		/* A lost deadline would leave I/O hanging for ever: out
		 * of memory here is fatal, as in any allocator of timers. */
		pthread_mutex_unlock(&loop->lock);
		abort();
	}
	/* A later deadline programmed in the timerfd wakes the loop by
	 * itself; one due now kicks it (loop_rearm_locked). */
	if (loop->heap[0] == t)
		loop_rearm_locked(loop, t->deadline_ns - delay_ns);
	pthread_mutex_unlock(&loop->lock);
}

bool um_timer_armed(struct umpath_loop *loop, struct um_timer *t)
{
	bool armed;

	pthread_mutex_lock(&loop->lock);
	armed = t->heap_idx != TIMER_UNARMED;
	pthread_mutex_unlock(&loop->lock);
	return armed;
}

void um_timer_cancel(struct umpath_loop *loop, struct um_timer *t)
{
	pthread_mutex_lock(&loop->lock);
	/* Wait first: a running fn may re-arm its own timer. */
	while (loop->running == t && !um_loop_is_current(loop))
		pthread_cond_wait(&loop->idle, &loop->lock);
	if (t->heap_idx != TIMER_UNARMED)
		heap_remove_locked(loop, t);
	pthread_mutex_unlock(&loop->lock);
}

int um_loop_add_fd(struct umpath_loop *loop, int fd, uint32_t events, um_fd_fn fn, void *opaque)
{
	struct epoll_event ev = { .events = events };
	struct fd_watch *w;

	if (fd < 0 || !fn)
		return -EINVAL;
	pthread_mutex_lock(&loop->lock);
	if ((size_t)fd >= loop->nfds) {
		size_t n = loop->nfds ? loop->nfds : 64;
		struct fd_watch *nf;

		while (n <= (size_t)fd)
			n *= 2;
		nf = realloc(loop->fds, n * sizeof(*nf));
		if (!nf) {
			pthread_mutex_unlock(&loop->lock);
			return -ENOMEM;
		}
		memset(nf + loop->nfds, 0, (n - loop->nfds) * sizeof(*nf));
		loop->fds = nf;
		loop->nfds = n;
	}
	w = &loop->fds[fd];
	if (w->fn) {
		pthread_mutex_unlock(&loop->lock);
		return -EEXIST;
	}
	w->fn = fn;
	w->opaque = opaque;
	w->gen++;
	ev.data.u64 = FD_COOKIE(fd, w->gen);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		w->fn = NULL;
		pthread_mutex_unlock(&loop->lock);
		return r;
	}
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

int um_loop_mod_fd(struct umpath_loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	int r = 0;

	pthread_mutex_lock(&loop->lock);
	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].fn)
		r = -ENOENT;
	else
		ev.data.u64 = FD_COOKIE(fd, loop->fds[fd].gen);
	pthread_mutex_unlock(&loop->lock);
	if (r)
		return r;
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void um_loop_del_fd(struct umpath_loop *loop, int fd)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	pthread_mutex_lock(&loop->lock);
	if (fd >= 0 && (size_t)fd < loop->nfds)
		loop->fds[fd].fn = NULL;
	while (loop->running_fd == fd && fd >= 0 && !um_loop_is_current(loop))
		pthread_cond_wait(&loop->idle, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
}

/* ---- public API: loops for the daemon ------------------------------------ */

struct umpath_timer {
	struct um_timer t;		/* first: container of */
	struct umpath_loop *loop;
	void (*fn)(void *opaque);
	void *opaque;
};

int umpath_loop_new(struct umpath_loop **ret_loop)
{
	return um_loop_new(ret_loop);
}

void umpath_loop_free(struct umpath_loop *loop)
{
	um_loop_free(loop);
}

int umpath_loop_is_current(struct umpath_loop *loop)
{
	return um_loop_is_current(loop) ? 1 : 0;
}

int umpath_loop_add_fd(struct umpath_loop *loop, int fd, uint32_t events,
		       void (*fn)(void *opaque, uint32_t events), void *opaque)
{
	return um_loop_add_fd(loop, fd, events, fn, opaque);
}

int umpath_loop_mod_fd(struct umpath_loop *loop, int fd, uint32_t events)
{
	return um_loop_mod_fd(loop, fd, events);
}

void umpath_loop_del_fd(struct umpath_loop *loop, int fd)
{
	um_loop_del_fd(loop, fd);
}

static void umpath_timer_fire(struct um_timer *t)
{
	struct umpath_timer *ut = (struct umpath_timer *)t;

	ut->fn(ut->opaque);
}

int umpath_timer_new(struct umpath_loop *loop, void (*fn)(void *opaque), void *opaque,
		     struct umpath_timer **ret_timer)
{
	struct umpath_timer *ut = calloc(1, sizeof(*ut));

	if (!ut)
		return -ENOMEM;
	um_timer_init(&ut->t, umpath_timer_fire);
	ut->loop = loop;
	ut->fn = fn;
	ut->opaque = opaque;
	*ret_timer = ut;
	return 0;
}

void umpath_timer_arm(struct umpath_timer *t, uint64_t delay_ns)
{
	um_timer_arm(t->loop, &t->t, delay_ns);
}

void umpath_timer_cancel(struct umpath_timer *t)
{
	if (t)
		um_timer_cancel(t->loop, &t->t);
}

void umpath_timer_free(struct umpath_timer *t)
{
	if (!t)
		return;
	um_timer_cancel(t->loop, &t->t);
	free(t);
}

uint64_t umpath_now_ns(void)
{
	return um_now_ns();
}
