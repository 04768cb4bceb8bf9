/* testlib.h - small helpers shared by the engine's unit tests: checks that
 * report file:line, synchronous and tracked asynchronous I/O over the
 * public API, and bounded waits (no test can hang for ever). */
#ifndef UMPATH_TESTLIB_H
#define UMPATH_TESTLIB_H

#undef NDEBUG
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "check.h"

#define CHECK_EQ_INT(a, b)                                                         \
	do {                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                \
		if (a_ != b_) {                                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",  \
				__FILE__, __LINE__, #a, a_, #b, b_);               \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

#define CHECK_STR(got, want)                                                       \
	do {                                                                       \
		const char *g_ = (got), *w_ = (want);                              \
		if (strcmp(g_, w_)) {                                              \
			fprintf(stderr, "%s:%d: got      '%s'\n%*sexpected '%s'\n",  \
				__FILE__, __LINE__, g_, (int)strlen(__FILE__) + 6, \
				"", w_);                                           \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

static inline double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An I/O whose completion can be waited for, with a time limit. */
struct t_io {
	struct umpath_io io;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
	double done_at;
};

static inline void t_io_done(struct umpath_io *io, int err)
{
	struct t_io *t = (struct t_io *)io;

	pthread_mutex_lock(&t->lock);
	CHECK(!t->done);	/* done() exactly once */
	t->done = true;
	t->err = err;
	t->done_at = t_now();
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static inline void t_io_init(struct t_io *t, enum umpath_op op, uint64_t off, uint64_t len, void *buf)
{
	memset(t, 0, sizeof(*t));
	t->io.op = op;
	t->io.offset = off;
	t->io.length = len;
	t->io.buf = buf;
	t->io.done = t_io_done;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
}

/* Wait up to secs for completion; true if it completed. */
static inline bool t_io_wait(struct t_io *t, double secs)
{
	struct timespec dl;
	bool done;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)secs;
	dl.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&t->lock);
	while (!t->done && pthread_cond_timedwait(&t->cond, &t->lock, &dl) == 0)
		;
	done = t->done;
	pthread_mutex_unlock(&t->lock);
	return done;
}

static inline bool t_io_is_done(struct t_io *t)
{
	bool d;

	pthread_mutex_lock(&t->lock);
	d = t->done;
	pthread_mutex_unlock(&t->lock);
	return d;
}

/* Submit and wait (10 s at most); the I/O's result. */
static inline int t_sync(struct umpath_map *map, enum umpath_op op, uint64_t off, uint64_t len,
			 void *buf)
{
	struct t_io t;
	int r;

	t_io_init(&t, op, off, len, buf);
	r = umpath_map_submit(map, &t.io);
	if (r)
		return r;
	CHECK(t_io_wait(&t, 10));
	return t.err;
}

static inline void t_fill(void *buf, size_t len, unsigned seed)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 31u + i * 7u + (i >> 9));
}

static inline const char *t_status(struct umpath_map *map)
{
	static char buf[4096];

	umpath_map_status(map, buf, sizeof(buf));
	return buf;
}

static inline const char *t_table(struct umpath_map *map)
{
	static char buf[4096];

	umpath_map_table(map, buf, sizeof(buf));
	return buf;
}

/* A context with a store of size bytes and bare paths p0..p(n-1). */
static inline struct umpath_ctx *t_ctx(unsigned n, uint64_t size, unsigned pool)
{
	struct umpath_ctx_opts o = { .pool_size = pool };
	struct umpath_ctx *ctx;
	char names[16][8];
	const char *ptrs[16];

	CHECK(n <= 16);
	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "p%u", i);
		ptrs[i] = names[i];
	}
	CHECK(umpath_mem_store_new(ctx, size, n, ptrs, 1) == 0);
	return ctx;
}

static inline struct umpath_map *t_map(struct umpath_ctx *ctx, const char *table)
{
	struct umpath_map *map;
	char err[256] = "";
	int r = umpath_map_new(ctx, "t", table, 0, err, sizeof(err), &map);

	if (r) {
		fprintf(stderr, "table refused (%d): %s: %s\n", r, err, table);
		exit(1);
	}
	return map;
}

static inline uint64_t t_ios(struct umpath_ctx *ctx, const char *path)
{
	uint64_t n = 0;

	CHECK(umpath_mem_io_count(ctx, path, &n) == 0);
	return n;
}

static inline void t_msg(struct umpath_map *map, const char *msg, int want)
{
	int r = umpath_map_message_str(map, msg);

	if (r != want) {
		fprintf(stderr, "message '%s': %d, expected %d\n", msg, r, want);
		exit(1);
	}
}

#endif
