/* Description: priority group activation through a hardware handler (the
 * kernel's pg_init): every active path of a newly chosen group is activated
 * before I/O flows; pg_init_retries bounds retries, pg_init_delay_msecs
 * spaces delayed ones, a busy controller bypasses its group, a failed
 * activation fails its path. */
#include "testlib.h"

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

int main(void)
{
	test_activation_before_io();
	test_retries_are_bounded();
	test_delayed_retry();
	test_busy_bypasses_group();
	test_failed_activation_fails_path();
	printf("test-pg-init: all passed\n");
	return 0;
}
