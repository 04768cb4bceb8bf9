/* Description: the multipath-v0 target (the 2003 prototype) on mem paths -
 * its table parse with the prototype's ranges, defaults and refusal strings,
 * priority selection, min-ios switching, latency^4 preference (a fake
 * clock on the selector, and real delays), the failure budget with retries
 * on the same path, no queueing, the test read after the reactivation
 * timeout that reinstates the path, and its status lines over time. */
#include "testlib.h"

#include "selector.h"

#define SIZE (8u << 20)
#define BS 4096u
#define V0 "multipath-v0"

static struct umpath_map *v0_map(struct umpath_ctx *ctx, const char *table)
{
	struct umpath_map *map;
	char err[256] = "";
	int r = umpath_map_new_target(ctx, "t", V0, table, 0, err, sizeof(err), &map);

	if (r) {
		fprintf(stderr, "table refused (%d): %s: %s\n", r, err, table);
		exit(1);
	}
	return map;
}

static void refused(struct umpath_ctx *ctx, const char *table, const char *want)
{
	struct umpath_map *map = NULL;
	char err[256] = "";

	/* -EINVAL, or the open's own error for a device lookup failure. */
	int want_r = strstr(want, "lookup") ? -ENOENT : -EINVAL;

	CHECK_EQ_INT(umpath_map_new_target(ctx, "t", V0, table, 0, err, sizeof(err), &map),
		     want_r);
	CHECK_STR(err, want);
	err[0] = 0;
	CHECK_EQ_INT(umpath_table_check_target(ctx, V0, table, err, sizeof(err)), want_r);
	CHECK_STR(err, want);
}

static void test_table(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map;
	char err[256] = "";

	/* Defaults: min-ios 0 and failure-maximum 0 are 1; flags any case. */
	map = v0_map(ctx, "p0 1 l 0 0 0  p1 0 M 5 3 10\tp2 8192 n 8192 1024 31536000");
	CHECK_STR(umpath_map_target(map), V0);
	CHECK_STR(t_table(map), "p0 1 L 1 1 0 p1 0 M 5 3 10 p2 8192 N 8192 1024 31536000");
	CHECK_STR(t_status(map), "p0 O p1 O p2 O");
	struct umpath_snapshot *snap;
	CHECK(umpath_map_snapshot(map, &snap) == 0);
	CHECK_STR(snap->target, V0);
	CHECK_STR(snap->features, "0");
	CHECK_STR(snap->hw_handler, "0");
	CHECK_EQ_INT(snap->nr_paths, 3);
	umpath_snapshot_free(snap);
	/* No messages: the prototype had none. */
	t_msg(map, "fail_path p0", -EINVAL);
	t_msg(map, "queue_if_no_path", -EINVAL);
	CHECK_STR(t_status(map), "p0 O p1 O p2 O");
	umpath_map_free(map);

	/* The prototype read numbers with %d: a sign, trailing words ignored. */
	map = v0_map(ctx, "p0 +7 N 2x 3 4s");
	CHECK_STR(t_table(map), "p0 7 N 2 3 4");
	umpath_map_free(map);

	refused(ctx, "p0 1 N 1 1", "dm-multipath: Wrong argument count");
	refused(ctx, "p0 1 N 1 1 0 p1", "dm-multipath: Wrong argument count");
	refused(ctx, "p0 8193 N 1 1 0", "dm-multipath: Invalid priority");
	refused(ctx, "p0 -1 N 1 1 0", "dm-multipath: Invalid priority");
	refused(ctx, "p0 x N 1 1 0", "dm-multipath: Invalid priority");
	refused(ctx, "p0 1 X 1 1 0", "load-balance flags");
	refused(ctx, "p0 1 NL 1 1 0", "load-balance flags");
	refused(ctx, "p0 1 N 8193 1 0", "dm-multipath: Invalid ios min");
	refused(ctx, "p0 1 N -1 1 0", "dm-multipath: Invalid ios min");
	refused(ctx, "p0 1 N 1 1025 0", "dm-multipath: Invalid failure-maximum");
	refused(ctx, "p0 1 N 1 1 31536001", "dm-multipath: Invalid reactivation-timeout");
	refused(ctx, "nosuch 1 N 1 1 0", "dm-multipath: Device lookup failure");
	/* The numbers are read before the device is looked up. */
	refused(ctx, "nosuch 1 N 1 1 -5", "dm-multipath: Invalid reactivation-timeout");
	refused(ctx, "p0 1 N 1 1 0 p1 2 N 1 1 0 p0 3 L 1 1 0", "dm-multipath: Same device");

	/* Not the multipath target's language, and no such target. */
	CHECK(umpath_map_new(ctx, "t", "p0 1 N 1 1 0", 0, err, sizeof(err), &map) == -EINVAL);
	CHECK(umpath_map_new_target(ctx, "t", "multipath-v9", "p0 1 N 1 1 0", 0, err,
				    sizeof(err), &map) == -EINVAL);
	CHECK_STR(err, "unknown target type");
	CHECK_STR(umpath_target_name(0), "multipath");
	CHECK_STR(umpath_target_name(1), V0);
	CHECK(!umpath_target_name(2));

	/* A v0 map takes a multipath table at a reload, and back. */
	map = v0_map(ctx, "p0 1 N 1 1 0 p1 1 N 1 1 0");
	CHECK(umpath_map_load(map, "0 0 1 1 round-robin 0 1 1 p0 1", err, sizeof(err)) == 0);
	CHECK(umpath_map_resume(map) == 0);
	CHECK_STR(umpath_map_target(map), "multipath");
	CHECK(umpath_map_load_target(map, V0, "p1 3 M 2 2 2", err, sizeof(err)) == 0);
	CHECK(umpath_map_resume(map) == 0);
	CHECK_STR(umpath_map_target(map), V0);
	CHECK_STR(t_table(map), "p1 3 M 2 2 2");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* Which of p0..p(n-1) served one read. */
static int served_by(struct umpath_ctx *ctx, struct umpath_map *map, unsigned n)
{
	static unsigned char buf[BS];
	uint64_t before[8];
	int who = -1;

	for (unsigned i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%u", i);
		before[i] = t_ios(ctx, name);
	}
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), 0);
	for (unsigned i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%u", i);
		if (t_ios(ctx, name) != before[i]) {
			CHECK(who == -1);
			CHECK_EQ_INT(t_ios(ctx, name), before[i] + 1);
			who = (int)i;
		}
	}
	return who;
}

static void sequence(struct umpath_ctx *ctx, struct umpath_map *map, unsigned n,
		     const char *want)
{
	char got[64];
	size_t len = strlen(want);

	CHECK(len < sizeof(got));
	for (size_t i = 0; i < len; i++)
		got[i] = (char)('0' + served_by(ctx, map, n));
	got[len] = 0;
	CHECK_STR(got, want);
}

static void test_priority(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map = v0_map(ctx, "p0 1 N 1 1 0 p1 5 N 1 1 0 p2 5 N 1 1 0");
	static unsigned char buf[BS];

	/* The first path of the highest priority, and only it (N). */
	sequence(ctx, map, 3, "11111");
	/* Failed: the next of its priority, then the highest left. */
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), 0);
	sequence(ctx, map, 3, "2222");
	CHECK(umpath_mem_set_fault(ctx, "p2", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), 0);
	sequence(ctx, map, 3, "000");
	CHECK_STR(t_status(map), "p0 O p1 I(0/0)[1] p2 I(0/0)[1]");
	/* No selectable path: the I/O fails, nothing is queued. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), -EIO);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), -EIO);
	CHECK_STR(t_status(map), "p0 I(0/0)[1] p1 I(0/0)[1] p2 I(0/0)[1]");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_min_ios(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map;

	/* The min-ios-th I/O already goes to the next path (the prototype
	 * counts on the path in use and hands over on reaching zero). */
	map = v0_map(ctx, "p0 0 L 3 1 0 p1 0 L 3 1 0");
	sequence(ctx, map, 2, "001110001110");
	umpath_map_free(map);

	/* min-ios 0 is 1: every I/O moves on; a lower priority is left out. */
	map = v0_map(ctx, "p0 1 L 0 1 0 p1 0 L 1 1 0 p2 1 L 1 1 0");
	sequence(ctx, map, 3, "20202");
	umpath_map_free(map);

	/* N never moves, whatever the others do. */
	map = v0_map(ctx, "p0 0 N 1 1 0 p1 0 L 1 1 0");
	sequence(ctx, map, 2, "0000");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* The selector alone, on a fake clock: each I/O's latency is given by its
 * start time, so the test needs no waiting. */
static void fake_io(struct path_selector *ps, struct ps_path *p, unsigned ms)
{
	ps_v0.start_io(ps, p, BS);
	ps_v0.end_io(ps, p, BS, um_io_ns() - (uint64_t)ms * 1000000u);
}

static void test_latency4_fake_clock(void)
{
	struct path_selector ps = { .type = &ps_v0 };
	struct ps_path a = { 0 }, b = { 0 };
	char w0[] = "0", wm[] = "M", w1[] = "1";
	char *argv[] = { w0, wm, w1 };
	const char *error = NULL;

	CHECK(ps_v0.create(&ps, 0, NULL) == 0);
	CHECK(ps_v0.add_path(&ps, &a, 3, argv, &error) == 0);
	CHECK(ps_v0.add_path(&ps, &b, 3, argv, &error) == 0);
	/* a: one 12 ms I/O, 12^4 = 20736; b: three of 6 ms, 3 * 6^4 = 3888.
	 * Summed plainly, a (12) would beat b (18); to the 4th, b wins. */
	fake_io(&ps, &a, 12);
	for (int i = 0; i < 3; i++)
		fake_io(&ps, &b, 6);
	/* On a, min-ios 1: it hands over to b, whose sum is lower... */
	CHECK(ps_v0.select_path(&ps, BS) == &b);
	/* ...and b keeps everything: a's sum is higher. */
	for (int i = 0; i < 5; i++)
		CHECK(ps_v0.select_path(&ps, BS) == &b);
	/* b gets slower: 3888 + 8^4 = 7984, still below a. */
	fake_io(&ps, &b, 8);
	CHECK(ps_v0.select_path(&ps, BS) == &b);
	/* Past a: 7984 + 12^4 = 28720 > 20736, so a takes over. */
	fake_io(&ps, &b, 12);
	CHECK(ps_v0.select_path(&ps, BS) == &a);
	/* A path coming back resets every sum: equal sums hand over. */
	ps_v0.fail_path(&ps, &b);
	CHECK(ps_v0.select_path(&ps, BS) == &a);
	CHECK(ps_v0.reinstate_path(&ps, &b) == 0);
	fake_io(&ps, &a, 1);		/* 1 on a, 0 on b */
	CHECK(ps_v0.select_path(&ps, BS) == &b);
	fake_io(&ps, &b, 5);		/* 625 on b: a is lower */
	CHECK(ps_v0.select_path(&ps, BS) == &a);
	ps_v0.destroy(&ps);
}

/* The same on a map, with real latencies: a mem path delayed by 20 ms. */
static void test_latency4_map(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map;
	static unsigned char buf[BS];

	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_DELAY, 20000) == 0);
	map = v0_map(ctx, "p0 0 M 1 1 0 p1 0 M 1 1 0");
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), 0);
	/* p0 served one read (both sums were 0 then), then never again. */
	CHECK_EQ_INT(t_ios(ctx, "p0"), 1);
	CHECK_EQ_INT(t_ios(ctx, "p1"), 19);
	umpath_map_free(map);

	/* L on the same paths ignores latency. */
	map = v0_map(ctx, "p0 0 L 1 1 0 p1 0 L 1 1 0");
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), 0);
	CHECK_EQ_INT(t_ios(ctx, "p0"), 11);
	CHECK_EQ_INT(t_ios(ctx, "p1"), 29);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static unsigned nr_failed, nr_reinstated;

static void on_event(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	if (ev->type == UMPATH_EV_PATH_FAILED)
		__atomic_add_fetch(&nr_failed, 1, __ATOMIC_SEQ_CST);
	else if (ev->type == UMPATH_EV_PATH_REINSTATED)
		__atomic_add_fetch(&nr_reinstated, 1, __ATOMIC_SEQ_CST);
}

static void test_failure_budget(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = v0_map(ctx, "p0 1 N 1 3 0 p1 0 N 1 1 0");
	static unsigned char w[BS], r[BS];

	umpath_map_set_event_cb(map, on_event, NULL);
	t_fill(w, BS, 7);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, BS, BS, w), 0);
	/* Two errors, budget three: retried on p0 until it works. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_FAIL_NEXT, 2) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, BS, BS, r), 0);
	CHECK(!memcmp(w, r, BS));
	CHECK_EQ_INT(t_ios(ctx, "p0"), 1 + 3);
	CHECK_EQ_INT(t_ios(ctx, "p1"), 0);
	CHECK_STR(t_status(map), "p0 O p1 O");
	CHECK_EQ_INT(nr_failed, 0);
	/* The budget is not refilled by success: one more error spends it. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_FAIL_NEXT, 1) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, BS, BS, r), 0);
	CHECK(!memcmp(w, r, BS));
	CHECK_EQ_INT(t_ios(ctx, "p0"), 5);
	CHECK_EQ_INT(t_ios(ctx, "p1"), 1);
	CHECK_STR(t_status(map), "p0 I(0/0)[1] p1 O");
	CHECK_EQ_INT(umpath_map_event_nr(map), 1);
	CHECK_EQ_INT(nr_failed, 1);
	umpath_map_free(map);

	/* A path that keeps failing is failed after exactly its budget. */
	nr_failed = 0;
	map = v0_map(ctx, "p0 1 N 1 5 0 p1 0 N 1 0 0");
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	uint64_t b0 = t_ios(ctx, "p0"), b1 = t_ios(ctx, "p1");
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK_EQ_INT(t_ios(ctx, "p0") - b0, 5);
	CHECK_EQ_INT(t_ios(ctx, "p1") - b1, 1);
	/* Then p1, budget 0 = 1: its first error fails it and the I/O. */
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, w), -EIO);
	CHECK_EQ_INT(t_ios(ctx, "p1") - b1, 2);
	CHECK_EQ_INT(t_ios(ctx, "p0") - b0, 5);
	CHECK_STR(t_status(map), "p0 I(0/0)[1] p1 I(0/0)[1]");
	umpath_map_free(map);

	/* A target error is the request's, not the path's: no budget spent. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ERROR, EINVAL) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ONLINE, 0) == 0);
	map = v0_map(ctx, "p0 1 N 1 1 0 p1 0 N 1 1 0");
	b0 = t_ios(ctx, "p0");
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), -EINVAL);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), -EINVAL);
	CHECK_EQ_INT(t_ios(ctx, "p0") - b0, 2);
	CHECK_STR(t_status(map), "p0 O p1 O");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static bool wait_status(struct umpath_map *map, const char *want, double secs)
{
	double end = t_now() + secs;

	while (t_now() < end) {
		if (!strcmp(t_status(map), want))
			return true;
		usleep(20000);
	}
	fprintf(stderr, "status '%s', waited for '%s'\n", t_status(map), want);
	return false;
}

static void test_test_read(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = v0_map(ctx, "p0 1 N 1 2 2 p1 0 N 1 1 0");
	static unsigned char r[BS];
	double failed_at;

	nr_failed = nr_reinstated = 0;
	umpath_map_set_event_cb(map, on_event, NULL);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 5 * BS, BS, r), 0);
	failed_at = t_now();
	CHECK_EQ_INT(t_ios(ctx, "p0"), 2);
	CHECK_STR(t_status(map), "p0 I(0/2)[1] p1 O");
	/* Seconds since it failed, counting. */
	usleep(1200000);
	CHECK_STR(t_status(map), "p0 I(1/2)[1] p1 O");
	/* At 2 s one test read: still offline, so it stays failed, and the
	 * count starts again from the test. */
	while (t_ios(ctx, "p0") == 2 && t_now() < failed_at + 4)
		usleep(10000);
	CHECK_EQ_INT(t_ios(ctx, "p0"), 3);
	CHECK(t_now() >= failed_at + 1.9);
	usleep(100000);
	CHECK_STR(t_status(map), "p0 I(0/2)[1] p1 O");
	CHECK_EQ_INT(nr_reinstated, 0);
	/* Healed: the next test read, 2 s later, reinstates it. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(wait_status(map, "p0 O[1] p1 O", 3));
	CHECK_EQ_INT(t_ios(ctx, "p0"), 4);
	CHECK_EQ_INT(nr_failed, 1);
	CHECK_EQ_INT(nr_reinstated, 1);
	/* Its budget is whole again: one error is retried on it. */
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);	/* fails p1 */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_FAIL_NEXT, 1) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK_STR(t_status(map), "p0 O[1] p1 I(0/0)[1]");
	umpath_map_free(map);

	/* Reactivation timeout 0: never tested, never back. */
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ONLINE, 0) == 0);
	map = v0_map(ctx, "p0 1 N 1 1 0 p1 0 N 1 1 0");
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	uint64_t b0 = t_ios(ctx, "p0");
	usleep(1500000);
	CHECK_EQ_INT(t_ios(ctx, "p0"), b0);
	CHECK_STR(t_status(map), "p0 I(1/0)[1] p1 O");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* A map freed while its test read is still out waits for it. */
static void test_free_with_test_read_out(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = v0_map(ctx, "p0 1 N 1 1 1 p1 0 N 1 1 0");
	static unsigned char r[BS];

	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_DELAY, 300000) == 0);
	while (t_ios(ctx, "p0") < 2)
		usleep(10000);
	umpath_map_free(map);	/* waits for the test read, which changes nothing */
	umpath_ctx_free(ctx);
}

int main(void)
{
	test_table();
	test_priority();
	test_min_ios();
	test_latency4_fake_clock();
	test_latency4_map();
	test_failure_budget();
	test_test_read();
	test_free_with_test_read_out();
	return 0;
}
