/* loop.c - the context's event loop: one thread waiting in epoll on the
 * transports' descriptors, a timerfd for the earliest timer, and an eventfd
 * to be woken when another thread arms an earlier timer or stops the loop.
 * Timers are few (pg_init delays, mem delays, checkers), so a sorted list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"
#include "selector.h"

struct fd_watch {
	struct list_head node;	/* guarded by loop lock */
	int fd;
	um_fd_fn fn;
	void *opaque;
};

struct um_loop {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t timer_done;	/* a running timer's fn returned */
	int epfd, tfd, efd;
	bool stop;			/* guarded by lock */
	struct list_head timers;	/* guarded by lock, by deadline */
	struct list_head watches;	/* guarded by lock */
	struct um_timer *running;	/* guarded by lock */
};

static void loop_kick(struct um_loop *loop)
{
	uint64_t one = 1;
	ssize_t r = write(loop->efd, &one, sizeof(one));
	(void)r;	/* a full counter already means "wake up" */
}

/* Program the timerfd for the earliest deadline. */
static void loop_rearm_locked(struct um_loop *loop)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (!list_empty(&loop->timers)) {
		struct um_timer *t = list_first_entry(&loop->timers, struct um_timer, node);
		uint64_t d = t->deadline_ns ? t->deadline_ns : 1;

		its.it_value.tv_sec = (time_t)(d / 1000000000u);
		its.it_value.tv_nsec = (long)(d % 1000000000u);
	}
	timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void loop_run_timers(struct um_loop *loop)
{
	uint64_t now = um_now_ns();

	pthread_mutex_lock(&loop->lock);
	while (!list_empty(&loop->timers)) {
		struct um_timer *t = list_first_entry(&loop->timers, struct um_timer, node);

		if (t->deadline_ns > now)
			break;
		list_del_init(&t->node);
		t->armed = false;
		loop->running = t;
		pthread_mutex_unlock(&loop->lock);
		t->fn(t);
		pthread_mutex_lock(&loop->lock);
		loop->running = NULL;
		pthread_cond_broadcast(&loop->timer_done);
	}
	loop_rearm_locked(loop);
	pthread_mutex_unlock(&loop->lock);
}

static struct fd_watch *watch_find_locked(struct um_loop *loop, int fd)
{
	struct fd_watch *w;

	list_for_each_entry(w, &loop->watches, node)
		if (w->fd == fd)
			return w;
	return NULL;
}

static void *loop_thread(void *arg)
{
	struct um_loop *loop = arg;
	struct epoll_event evs[32];

	for (;;) {
		int n = epoll_wait(loop->epfd, evs, (int)UM_ARRAY_SIZE(evs), -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t v;

			if (fd == loop->efd) {
				ssize_t r = read(loop->efd, &v, sizeof(v));
				(void)r;
			} else if (fd == loop->tfd) {
				ssize_t r = read(loop->tfd, &v, sizeof(v));
				(void)r;
				loop_run_timers(loop);
			} else {
				struct fd_watch *w;
				um_fd_fn fn = NULL;
				void *opaque = NULL;

				pthread_mutex_lock(&loop->lock);
				w = watch_find_locked(loop, fd);
				if (w) {
					fn = w->fn;
					opaque = w->opaque;
				}
				pthread_mutex_unlock(&loop->lock);
				if (fn)
					fn(opaque, evs[i].events);
			}
		}
		pthread_mutex_lock(&loop->lock);
		bool stop = loop->stop;
		pthread_mutex_unlock(&loop->lock);
		if (stop)
			break;
	}
	return NULL;
}

int um_loop_new(struct um_loop **ret_loop)
{
	struct um_loop *loop = calloc(1, sizeof(*loop));
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	if (!loop)
		return -ENOMEM;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->timer_done, NULL);
	list_init(&loop->timers);
	list_init(&loop->watches);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	loop->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->tfd < 0 || loop->efd < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.fd = loop->tfd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->tfd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.fd = loop->efd;
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

void um_loop_free(struct um_loop *loop)
{
	struct fd_watch *w, *n;

	if (!loop)
		return;
	pthread_mutex_lock(&loop->lock);
	loop->stop = true;
	pthread_mutex_unlock(&loop->lock);
	loop_kick(loop);
	pthread_join(loop->thread, NULL);
	list_for_each_entry_safe(w, n, &loop->watches, node)
		free(w);
	close(loop->epfd);
	close(loop->tfd);
	close(loop->efd);
	pthread_mutex_destroy(&loop->lock);
	pthread_cond_destroy(&loop->timer_done);
	free(loop);
}

bool um_loop_is_current(struct um_loop *loop)
{
	return pthread_equal(pthread_self(), loop->thread);
}

void um_timer_arm(struct um_loop *loop, struct um_timer *t, uint64_t delay_ns)
{
	struct um_timer *pos;
	bool first;

	pthread_mutex_lock(&loop->lock);
	if (t->armed)
		list_del_init(&t->node);
	t->deadline_ns = um_now_ns() + delay_ns;
	t->armed = true;
	list_for_each_entry(pos, &loop->timers, node)
		if (pos->deadline_ns > t->deadline_ns)
			break;
	list_add_tail(&t->node, &pos->node);	/* before pos, or at the end */
	first = loop->timers.next == &t->node;
	if (first)
		loop_rearm_locked(loop);
	pthread_mutex_unlock(&loop->lock);
}

void um_timer_cancel(struct um_loop *loop, struct um_timer *t)
{
	pthread_mutex_lock(&loop->lock);
	if (t->armed) {
		list_del_init(&t->node);
		t->armed = false;
	}
	while (loop->running == t && !um_loop_is_current(loop))
		pthread_cond_wait(&loop->timer_done, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
}

int um_loop_add_fd(struct um_loop *loop, int fd, uint32_t events, um_fd_fn fn, void *opaque)
{
	struct fd_watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events, .data.fd = fd };

	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->opaque = opaque;
	pthread_mutex_lock(&loop->lock);
	list_add_tail(&w->node, &loop->watches);
	pthread_mutex_unlock(&loop->lock);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		pthread_mutex_lock(&loop->lock);
		list_del_init(&w->node);
		pthread_mutex_unlock(&loop->lock);
		free(w);
		return r;
	}
	return 0;
}

int um_loop_mod_fd(struct um_loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void um_loop_del_fd(struct um_loop *loop, int fd)
{
	struct fd_watch *w;

	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	pthread_mutex_lock(&loop->lock);
	w = watch_find_locked(loop, fd);
	if (w)
		list_del_init(&w->node);
	pthread_mutex_unlock(&loop->lock);
	free(w);
}
