/* Description: umpath_map_free() returns only after every I/O's done()
 * callback has returned: a completion running on the loop thread (a
 * delayed mem path) while the map is freed is waited for, so that no
 * callback runs after the map, and whatever the caller freed with it, is
 * gone.  (Found by tests/fuzz/fuzz-message: the request went back to the
 * pool before done() was called, and map_free did not wait for it.) */
#undef NDEBUG
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "check.h"

static atomic_int entered, returned;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void slow_done(struct umpath_io *io, int err)
{
	CHECK(err == 0);
	pthread_mutex_lock(&lock);
	atomic_store(&entered, 1);
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	/* Long enough for an unwaited-for map_free to return first; the
	 * outcome does not depend on it with the wait in place. */
	usleep(200 * 1000);
	atomic_store(&returned, 1);
}

int main(void)
{
	static const char *const names[] = { "p0" };
	static char buf[4096];
	struct umpath_ctx *ctx;
	struct umpath_map *m;
	struct umpath_io io = {
		.op = UMPATH_OP_WRITE, .offset = 0, .length = sizeof(buf), .buf = buf,
		.done = slow_done,
	};
	char err[256];

	CHECK(umpath_ctx_new(NULL, &ctx) == 0);
	CHECK(umpath_mem_store_new(ctx, 1 << 20, 1, names, 1) == 0);
	CHECK(umpath_map_new(ctx, "m", "0 0 1 1 round-robin 0 1 1 p0 1", 0, err, sizeof(err), &m) == 0);
	/* Delayed: the completion runs on the context's loop thread. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_DELAY, 1000) == 0);
	CHECK(umpath_map_submit(m, &io) == 0);
	pthread_mutex_lock(&lock);
	while (!atomic_load(&entered))
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);

	umpath_map_free(m);
	if (!atomic_load(&returned)) {
		fprintf(stderr, "umpath_map_free returned while done() still ran\n");
		return 1;
	}
	umpath_ctx_free(ctx);
	printf("ok\n");
	return 0;
}
