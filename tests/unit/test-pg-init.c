/* Description: priority group activation through a hardware handler (the
 * kernel's pg_init): every active path of a newly chosen group is activated
 * before I/O flows; pg_init_retries bounds retries, pg_init_delay_msecs
 * spaces delayed ones, a busy controller bypasses its group, a failed
 * activation fails its path; a table swapped out at resume is freed only
 * after a handler answering from another thread is done with it, and its
 * delayed activations are cancelled (run under ASan to see the use after
 * free this guards against). */
#include "testlib.h"

/* White box: the test starts an activation as the engine would. */
#include "mpath.h"

#define SIZE (1u << 20)

/* The handler answers from a script, one result per activation. */
static struct {
	pthread_mutex_t lock;
	enum umpath_pg_init_result script[16];
	unsigned nscript;
	enum umpath_pg_init_result fallback;
	unsigned calls;
	double at[64];
	char paths[64][16];
	char params[64];
} h = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void h_reset(enum umpath_pg_init_result fallback, unsigned n, const enum umpath_pg_init_result *s)
{
	pthread_mutex_lock(&h.lock);
	h.fallback = fallback;
	h.nscript = n;
	for (unsigned i = 0; i < n; i++)
		h.script[i] = s[i];
	h.calls = 0;
	h.params[0] = '\0';
	pthread_mutex_unlock(&h.lock);
}

static void h_activate(const char *path, const char *params, void *opaque,
		       void (*complete)(void *token, enum umpath_pg_init_result r), void *token)
{
	enum umpath_pg_init_result r;

	pthread_mutex_lock(&h.lock);
	r = h.calls < h.nscript ? h.script[h.calls] : h.fallback;
	if (h.calls < 64) {
		h.at[h.calls] = t_now();
		snprintf(h.paths[h.calls], sizeof(h.paths[0]), "%s", path);
	}
	snprintf(h.params, sizeof(h.params), "%s", params ? params : "");
	h.calls++;
	pthread_mutex_unlock(&h.lock);
	complete(token, r);
}

static unsigned h_calls(void)
{
	unsigned n;

	pthread_mutex_lock(&h.lock);
	n = h.calls;
	pthread_mutex_unlock(&h.lock);
	return n;
}

static struct umpath_ctx *ctx_with_handler(unsigned npaths)
{
	struct umpath_ctx *ctx = t_ctx(npaths, SIZE, 0);
	struct umpath_hw_handler hh = { .name = "tst", .activate = h_activate };

	CHECK_EQ_INT(umpath_register_hw_handler(ctx, &hh), 0);
	CHECK_EQ_INT(umpath_register_hw_handler(ctx, &hh), -EEXIST);
	return ctx;
}

static void test_activation_before_io(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(2);
	struct umpath_map *map = t_map(ctx, "0 2 tst foo 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char buf[4096];

	h_reset(UMPATH_PG_INIT_OK, 0, NULL);
	CHECK_STR(t_table(map), "0 1 tst 1 1 round-robin 0 2 1 p0 1 p1 1");
	CHECK_STR(t_status(map), "2 1 0 0 1 1 E 0 2 0 p0 A 0 p1 A 0");
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK_EQ_INT(h_calls(), 2);	/* both paths of the group */
	CHECK_STR(h.params, "1 foo");
	CHECK_STR(t_status(map), "2 0 1 0 1 1 A 0 2 0 p0 A 0 p1 A 0");
	/* Once active, I/O goes straight through. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK_EQ_INT(h_calls(), 2);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_retries_are_bounded(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(1);
	struct umpath_map *map = t_map(ctx, "2 pg_init_retries 2 1 tst 1 1 round-robin 0 1 0 p0");
	static unsigned char buf[4096];

	h_reset(UMPATH_PG_INIT_IMM_RETRY, 0, NULL);
	/* count 1, 2 and 3: the third exceeds pg_init_retries 2, the path
	 * fails, and with no path left the I/O fails. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), -EIO);
	CHECK_EQ_INT(h_calls(), 3);
	CHECK_STR(t_status(map), "2 0 3 0 1 1 E 0 1 0 p0 F 1");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_delayed_retry(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(1);
	struct umpath_map *map =
		t_map(ctx, "4 pg_init_retries 5 pg_init_delay_msecs 300 1 tst 1 1 round-robin 0 1 0 p0");
	static unsigned char buf[4096];
	const enum umpath_pg_init_result s[] = { UMPATH_PG_INIT_RETRY, UMPATH_PG_INIT_OK };

	h_reset(UMPATH_PG_INIT_OK, 2, s);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK_EQ_INT(h_calls(), 2);
	/* A lower bound only: the retry waited for pg_init_delay_msecs. */
	CHECK(h.at[1] - h.at[0] >= 0.29);
	CHECK_STR(t_status(map), "2 0 2 0 1 1 A 0 1 0 p0 A 0");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_busy_bypasses_group(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(2);
	struct umpath_map *map =
		t_map(ctx, "0 1 tst 2 1 round-robin 0 1 0 p0 round-robin 0 1 0 p1");
	static unsigned char buf[4096];
	const enum umpath_pg_init_result s[] = { UMPATH_PG_INIT_BUSY };

	h_reset(UMPATH_PG_INIT_OK, 1, s);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK_EQ_INT(h_calls(), 2);
	CHECK_STR(h.paths[0], "p0");
	CHECK_STR(h.paths[1], "p1");
	CHECK_STR(t_status(map), "2 0 1 0 2 2 D 0 1 0 p0 A 0 A 0 1 0 p1 A 0");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_failed_activation_fails_path(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(2);
	struct umpath_map *map = t_map(ctx, "0 1 tst 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char buf[4096];
	const enum umpath_pg_init_result s[] = { UMPATH_PG_INIT_FAIL, UMPATH_PG_INIT_OK };

	h_reset(UMPATH_PG_INIT_OK, 2, s);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK(h_calls() >= 2);
	CHECK_STR(t_status(map), "2 0 1 0 1 1 A 0 2 0 p0 F 1 p1 A 0");
	uint64_t before = t_ios(ctx, "p0");
	for (int i = 0; i < 8; i++)
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK_EQ_INT(t_ios(ctx, "p0"), before);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* A handler that keeps each activation until the test answers it, from
 * whatever thread the test likes. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned calls;
	void (*complete[8])(void *token, enum umpath_pg_init_result r);
	void *token[8];
} ah = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void ah_activate(const char *path, const char *params, void *opaque,
			void (*complete)(void *token, enum umpath_pg_init_result r), void *token)
{
	(void)path;
	(void)params;
	(void)opaque;
	pthread_mutex_lock(&ah.lock);
	CHECK(ah.calls < 8);
	ah.complete[ah.calls] = complete;
	ah.token[ah.calls] = token;
	ah.calls++;
	pthread_cond_broadcast(&ah.cond);
	pthread_mutex_unlock(&ah.lock);
}

/* Wait (10 s at most) for the handler to hold activation number n (1-based). */
static void ah_wait(unsigned n)
{
	double until = t_now() + 10;

	pthread_mutex_lock(&ah.lock);
	while (ah.calls < n) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		CHECK(t_now() < until);
		pthread_mutex_unlock(&ah.lock);
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&ah.lock);
	}
	pthread_mutex_unlock(&ah.lock);
}

static void ah_answer(unsigned n, enum umpath_pg_init_result r)
{
	pthread_mutex_lock(&ah.lock);
	void (*complete)(void *, enum umpath_pg_init_result) = ah.complete[n - 1];
	void *token = ah.token[n - 1];
	pthread_mutex_unlock(&ah.lock);
	complete(token, r);
}

/* A suspended map whose handler holds an activation that started after the
 * suspend.  In life the requeue timer starts it, remapping queued I/O while
 * the map is suspended; that races with the suspend's own flush, so the
 * test starts it as that remap does (pg_init_all_paths_locked), with the
 * delay of a retry if delayed. */
static struct umpath_map *map_with_activation_after_suspend(struct umpath_ctx *ctx,
							    struct t_io *io, void *buf,
							    bool delayed)
{
	struct umpath_map *map =
		t_map(ctx, "4 pg_init_retries 5 pg_init_delay_msecs 60000 1 atst "
			   "1 1 round-robin 0 1 0 p0");
	static unsigned char rbuf[4096];

	pthread_mutex_lock(&ah.lock);
	ah.calls = 0;
	pthread_mutex_unlock(&ah.lock);
	/* A first read activates the group. */
	t_io_init(io, UMPATH_OP_READ, 0, sizeof(rbuf), rbuf);
	CHECK_EQ_INT(umpath_map_submit(map, &io->io), 0);
	ah_wait(1);
	ah_answer(1, UMPATH_PG_INIT_OK);
	CHECK(t_io_wait(io, 10));
	CHECK_EQ_INT(io->err, 0);
	CHECK_EQ_INT(umpath_map_suspend(map, UMPATH_SUSPEND_NOFLUSH), 0);

	map_lock(map);
	map->live->flags |= MPATHF_PG_INIT_REQUIRED | MPATHF_QUEUE_IO;
	if (delayed)
		map->live->flags |= MPATHF_PG_INIT_DELAY_RETRY;
	CHECK(pg_init_all_paths_locked(map->live));
	map_unlock(map);
	if (!delayed)
		ah_wait(2);
	/* I/O waits for the activation (held: the map is suspended). */
	t_io_init(io, UMPATH_OP_READ, 0, 4096, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &io->io), 0);
	return map;
}

struct resume_arg {
	struct umpath_map *map;
	pthread_mutex_t lock;
	bool started;
};

static void *answer_after_resume_started(void *arg)
{
	struct resume_arg *ra = arg;
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	for (;;) {
		pthread_mutex_lock(&ra->lock);
		bool started = ra->started;
		pthread_mutex_unlock(&ra->lock);
		if (started)
			break;
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
	/* Not a timing check: only gives a resume that does not wait the
	 * time to free the table before the answer lands in it. */
	nanosleep(&ts, NULL);
	ah_answer(2, UMPATH_PG_INIT_OK);
	return NULL;
}

/* An activation the handler still holds when a new table is resumed: the
 * resume waits for its answer before freeing the outgoing table. */
static void test_resume_waits_for_running_pg_init(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(2);
	struct umpath_hw_handler hh = { .name = "atst", .activate = ah_activate };
	struct resume_arg ra = { .lock = PTHREAD_MUTEX_INITIALIZER };
	static unsigned char buf[4096];
	struct umpath_map *map;
	pthread_t t;
	struct t_io io;

	CHECK_EQ_INT(umpath_register_hw_handler(ctx, &hh), 0);
	map = map_with_activation_after_suspend(ctx, &io, buf, false);
	CHECK_EQ_INT(umpath_map_load(map, "0 0 1 1 round-robin 0 1 0 p1", NULL, 0), 0);
	ra.map = map;
	CHECK_EQ_INT(pthread_create(&t, NULL, answer_after_resume_started, &ra), 0);
	pthread_mutex_lock(&ra.lock);
	ra.started = true;
	pthread_mutex_unlock(&ra.lock);
	CHECK_EQ_INT(umpath_map_resume(map), 0);
	CHECK_EQ_INT(pthread_join(t, NULL), 0);
	/* The queued read went to the new table. */
	CHECK(t_io_wait(&io, 10));
	CHECK_EQ_INT(io.err, 0);
	CHECK_STR(t_table(map), "0 0 1 1 round-robin 0 1 1 p1 1");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* An activation waiting out pg_init_delay_msecs (60 s) when a new table is
 * resumed: cancelled, not waited for, and its timer never fires into the
 * freed table. */
static void test_resume_cancels_delayed_pg_init(void)
{
	struct umpath_ctx *ctx = ctx_with_handler(2);
	struct umpath_hw_handler hh = { .name = "atst", .activate = ah_activate };
	static unsigned char buf[4096];
	struct umpath_map *map;
	struct t_io io;

	CHECK_EQ_INT(umpath_register_hw_handler(ctx, &hh), 0);
	map = map_with_activation_after_suspend(ctx, &io, buf, true);
	CHECK_EQ_INT(umpath_map_load(map, "0 0 1 1 round-robin 0 1 0 p1", NULL, 0), 0);
	double t0 = t_now();
	CHECK_EQ_INT(umpath_map_resume(map), 0);
	CHECK(t_now() - t0 < 30);	/* an upper bound far from the 60 s */
	CHECK(t_io_wait(&io, 10));
	CHECK_EQ_INT(io.err, 0);
	CHECK_EQ_INT(ah.calls, 1);	/* the delayed activation never ran */
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

int main(void)
{
	test_activation_before_io();
	test_retries_are_bounded();
	test_delayed_retry();
	test_busy_bypasses_group();
	test_failed_activation_fails_path();
	test_resume_waits_for_running_pg_init();
	test_resume_cancels_delayed_pg_init();
	printf("test-pg-init: all passed\n");
	return 0;
}
