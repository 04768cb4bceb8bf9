/* tiotest.h - transport I/O (um_tio) submitted straight to a path, for the
 * white-box tests of the file transport: each remembers when, on which
 * thread and how it ended.  After filetest.h. */
#ifndef UMPATH_TIOTEST_H
#define UMPATH_TIOTEST_H

#include "internal.h"

struct w_tio {
	struct um_tio tio;
	bool done;
	int err;
	double done_at;
	pthread_t thread;	/* that called done() */
	unsigned char *buf;
};

static pthread_mutex_t w_lock = PTHREAD_MUTEX_INITIALIZER;

static void w_done(struct um_tio *tio, int err)
{
	struct w_tio *w = container_of(tio, struct w_tio, tio);

	pthread_mutex_lock(&w_lock);
	CHECK(!w->done);
	w->done = true;
	w->err = err;
	w->done_at = t_now();
	w->thread = pthread_self();
	pthread_mutex_unlock(&w_lock);
}

/* A len-byte I/O at off with a fresh aligned buffer filled with fill. */
static inline void w_init(struct w_tio *w, enum umpath_op op, uint64_t off, size_t len,
			  unsigned flags, unsigned char fill)
{
	memset(w, 0, sizeof(*w));
	w->buf = ft_alloc(len);
	memset(w->buf, fill, len);
	list_init(&w->tio.tp_node);
	w->tio.op = op;
	w->tio.flags = flags;
	w->tio.offset = off;
	w->tio.length = len;
	w->tio.buf = w->buf;
	w->tio.done = w_done;
}

static inline unsigned w_count_done(struct w_tio *w, unsigned nr)
{
	unsigned n = 0;

	pthread_mutex_lock(&w_lock);
	for (unsigned i = 0; i < nr; i++)
		n += w[i].done;
	pthread_mutex_unlock(&w_lock);
	return n;
}

/* Whether want of the nr have ended within secs. */
static inline bool w_wait_done(struct w_tio *w, unsigned nr, unsigned want, double secs)
{
	double end = t_now() + secs;

	while (w_count_done(w, nr) < want) {
		if (t_now() > end)
			return false;
		usleep(2000);
	}
	return true;
}

#endif
