/* Description: the historical-service-time selector keeps the kernel's decaying fixed-point service time per path, prefers the path with the lower estimate, probes an idle path once it goes stale, honours base_weight and threshold_multiplier, prints its words like the kernel and refuses bad arguments. */
#undef NDEBUG
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

#include "check.h"

#define CHECK_STR(got, want)							\
	do {									\
		const char *g_ = (got), *w_ = (want);				\
		if (strcmp(g_, w_)) {						\
			fprintf(stderr, "%s:%d: got '%s', want '%s'\n",		\
				__FILE__, __LINE__, g_, w_);			\
			exit(1);						\
		}								\
	} while (0)

#define NPATHS	3
#define MS	1000000ull
#define US	1000ull
#define T0	(10 * 1000 * MS)	/* the fake clock starts at 10s */

/* The selector's clock hook (historical-service-time.c). */
extern uint64_t (*hst_now_ns)(void);

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static const struct path_selector_type *type = &ps_historical_service_time;
static struct ps_path paths[NPATHS];

static unsigned split(const char *words, char *buf, size_t len, char **argv)
{
	unsigned argc = 0;

	snprintf(buf, len, "%s", words);
	for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
		argv[argc++] = w;
	return argc;
}

static int create(struct path_selector *ps, const char *words)
{
	char buf[128], *argv[16];
	unsigned argc = split(words, buf, sizeof(buf), argv);

	ps->type = type;
	ps->context = NULL;
	return type->create(ps, argc, argv);
}

static int add(struct path_selector *ps, struct ps_path *p, const char *words,
	       const char **error)
{
	char buf[128], *argv[16];
	unsigned argc = split(words, buf, sizeof(buf), argv);

	*error = NULL;
	return type->add_path(ps, p, argc, argv, error);
}

static const char *status(struct path_selector *ps, struct ps_path *p,
			  enum ps_status_type t)
{
	static char buf[256];
	struct sbuf sb;

	sbuf_init(&sb, buf, sizeof(buf));
	type->status(ps, p, t, &sb);
	return buf;
}

static void make(struct path_selector *ps, const char *args, int n)
{
	const char *err;

	CHECK(create(ps, args) == 0);
	for (int i = 0; i < n; i++)
		CHECK(add(ps, &paths[i], "", &err) == 0 && !err);
}

static int pick(struct path_selector *ps)
{
	struct ps_path *p = type->select_path(ps, 4096);

	return p ? (int)(p - paths) : -1;
}

static void start(struct path_selector *ps, int i)
{
	CHECK(type->start_io(ps, &paths[i], 4096) == 0);
}

/* Complete an I/O on path i dispatched at start_ns, the clock reading now_ns. */
static void end_at(struct path_selector *ps, int i, uint64_t start_ns, uint64_t now_ns)
{
	fake_now = now_ns;
	CHECK(type->end_io(ps, &paths[i], 4096, start_ns) == 0);
}

/*
 * Two paths, p0 slow and p1 fast, as seen by the kernel's arithmetic:
 *  - p0 serves one I/O in 100ms (T0 .. T0+100ms): bucket 5 (100ms >> 24),
 *    weight 972^6 = 750/1024, hst = (1024 * 750 + 100ms * 1024 * 274 +
 *    512) >> 10 = 27400000750 (~26.8ms), stale after T0+100ms + 2 *
 *    26757813ns = 10153515626.
 *  - p1 serves one in 1ms (T0+100ms .. T0+101ms): weight 972, hst =
 *    52000972 (~50.8us), stale after 10101101564.
 */
#define H0	27400000750ull
#define STALE0	10153515626ull
#define H1	52000972ull
#define STALE1	10101101564ull

static void train(struct path_selector *ps)
{
	fake_now = T0;
	CHECK(pick(ps) == 0);	/* both fresh and idle: the head */
	start(ps, 0);
	end_at(ps, 0, T0, T0 + 100 * MS);
	CHECK_STR(status(ps, &paths[0], PS_STATUS_INFO), "27400000750 0 10153515626 ");

	/* p0 is not stale yet, p1 (stale_after 0) is, and is idle. */
	CHECK(pick(ps) == 1);
	start(ps, 1);
	end_at(ps, 1, T0 + 100 * MS, T0 + 101 * MS);
	CHECK_STR(status(ps, &paths[1], PS_STATUS_INFO), "52000972 0 10101101564 ");
}

static void test_registry(void)
{
	CHECK(ps_lookup("historical-service-time") == &ps_historical_service_time);
	CHECK(!strcmp(type->name, "historical-service-time"));
	CHECK(type->table_args == 1);
	CHECK(type->info_args == 3);
}

static void test_prefers_fast_path(void)
{
	struct path_selector ps;

	make(&ps, "", 2);
	train(&ps);

	/* At T0+101ms nothing is stale.  Both idle: the one due to go stale
	 * first, p1.  Then p1, although busy, as long as (1 + out1) * H1 <=
	 * H0, i.e. for outstanding 0..525: 526 picks in a row. */
	CHECK(526 * H1 <= H0 && 527 * H1 > H0);
	fake_now = T0 + 101 * MS;
	for (int n = 0; n < 526; n++) {
		if (pick(&ps) != 1) {
			fprintf(stderr, "pick %d went to p0\n", n);
			exit(1);
		}
		start(&ps, 1);
	}
	/* 527 * H1 > H0: the idle slow path gets the next one. */
	CHECK(pick(&ps) == 0);
	start(&ps, 0);
	CHECK_STR(status(&ps, &paths[1], PS_STATUS_INFO), "52000972 526 10101101564 ");
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "27400000750 1 10153515626 ");

	/* Out 526 vs 1: 527 * H1 = 27404512244 < 2 * H0, p1 again. */
	CHECK(pick(&ps) == 1);

	/* Once p1 is stale (after 10101101564) its low estimate is not
	 * trusted: the fresh p0 with fewer outstanding wins. */
	fake_now = STALE1;
	CHECK(pick(&ps) == 1);	/* stale means strictly after */
	fake_now = STALE1 + 1;
	CHECK(pick(&ps) == 0);
	CHECK(pick(&ps) == 0);

	type->destroy(&ps);
	CHECK(ps.context == NULL);
}

static void test_probes_stale_path(void)
{
	struct path_selector ps;
	uint64_t y = STALE0 - 10 * US;

	make(&ps, "", 2);
	train(&ps);

	/* Keep p1 fresh and busy: one more 1us completion just before p0's
	 * staleness threshold (hst becomes 49412298, stale after
	 * 10153602134), then one I/O in flight. */
	start(&ps, 1);
	end_at(&ps, 1, y - 1 * US, y);
	CHECK_STR(status(&ps, &paths[1], PS_STATUS_INFO), "49412298 0 10153602134 ");
	start(&ps, 1);

	/* Up to p0's threshold the busy fast path still wins... */
	fake_now = STALE0;
	CHECK(pick(&ps) == 1);
	CHECK(pick(&ps) == 1);
	/* ...1ns past it, the idle slow path is probed... */
	fake_now = STALE0 + 1;
	CHECK(pick(&ps) == 0);
	CHECK(pick(&ps) == 0);
	/* ...but only while idle: once busy it is estimated again. */
	start(&ps, 0);
	CHECK(pick(&ps) == 1);

	/* The probe comes back in 1ms: (H0 * 972 + 1ms * 1024 * 52 + 512)
	 * >> 10, and fresh again. */
	end_at(&ps, 0, STALE0 + 1, STALE0 + 1 + 1 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "26060594462 0 10205415225 ");

	type->destroy(&ps);
}

static void test_idle_group(void)
{
	struct path_selector ps;

	/* Everything idle and stale: the path that went stale first. */
	make(&ps, "", 2);
	train(&ps);
	fake_now = T0 + 1000 * MS;
	CHECK(pick(&ps) == 1);	/* STALE1 < STALE0 */
	CHECK(pick(&ps) == 1);
	type->destroy(&ps);
}

static void test_threshold(void)
{
	struct path_selector ps;

	/* H0 / H1 is 526.9.  With threshold 1000 the two are "the same":
	 * fewest outstanding wins, so p0 when p1 has one in flight. */
	make(&ps, "972 1000", 2);
	train(&ps);
	CHECK_STR(status(&ps, NULL, PS_STATUS_TABLE), "2 972 1000 ");
	start(&ps, 1);
	fake_now = T0 + 101 * MS;
	CHECK(pick(&ps) == 0);
	CHECK(pick(&ps) == 0);	/* and with the list the other way round */
	type->destroy(&ps);

	/* With 500 they differ: p1 despite its outstanding I/O. */
	make(&ps, "972 500", 2);
	train(&ps);
	start(&ps, 1);
	fake_now = T0 + 101 * MS;
	CHECK(pick(&ps) == 1);
	CHECK(pick(&ps) == 1);
	type->destroy(&ps);
}

static void test_history(void)
{
	struct path_selector ps;
	const char *err;

	/* base_weight 0: no history, the estimate is the last sample. */
	CHECK(create(&ps, "0") == 0);
	CHECK(add(&ps, &paths[0], "", &err) == 0);
	CHECK_STR(status(&ps, NULL, PS_STATUS_INFO), "2 0 0 ");
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "1024 0 0 ");
	start(&ps, 0);
	start(&ps, 0);
	end_at(&ps, 0, T0, T0 + 10 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "10240000000 1 10020000000 ");
	/* Dispatched together, the second counts from the first's finish:
	 * 2ms, not 12ms. */
	end_at(&ps, 0, T0, T0 + 12 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "2048000000 0 10014000000 ");
	/* A dispatch time after the completion gives a 0 sample. */
	start(&ps, 0);
	end_at(&ps, 0, T0 + 50 * MS, T0 + 13 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "0 0 10013000000 ");
	type->destroy(&ps);

	/* Default weight: a sample of a second or more (last bucket, weight
	 * 0) wipes the history too.  (The threshold, which cannot matter with
	 * one path, is set so a weight read past the table would show.) */
	CHECK(create(&ps, "972 3") == 0);
	CHECK(add(&ps, &paths[0], "", &err) == 0);
	start(&ps, 0);
	end_at(&ps, 0, T0, T0 + 2000 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "2048000000000 0 14000000000 ");
	type->destroy(&ps);

	/* The bucket edges: 63 << 24 ns is the first sample of the last
	 * bucket (weight 0), 1ns less still keeps 39/1024 of the history. */
	static const struct {
		uint64_t st;
		const char *hst;
	} edge[] = {
		{ (63ull << 24) - 1, "1041110137934 " },	/* weight 972^63 = 39 */
		{ 63ull << 24, "1082331758592 " },		/* st * 1024 */
		{ 64ull << 24, "1099511627776 " },
	};
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		char buf[64];

		CHECK(create(&ps, "972 3") == 0);
		CHECK(add(&ps, &paths[0], "", &err) == 0);
		start(&ps, 0);
		end_at(&ps, 0, T0, T0 + edge[i].st);
		snprintf(buf, sizeof(buf), "%s", status(&ps, &paths[0], PS_STATUS_INFO));
		buf[strcspn(buf, " ") + 1] = '\0';
		CHECK_STR(buf, edge[i].hst);
		type->destroy(&ps);
	}
}

static void test_valid_count(void)
{
	struct path_selector ps;

	/* stale_after = last finish + usable paths * estimate (ns). */
	make(&ps, "0", 3);
	type->fail_path(&ps, &paths[2]);
	CHECK(pick(&ps) == 0);
	start(&ps, 0);
	end_at(&ps, 0, T0, T0 + 1 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "1024000000 0 10003000000 ");
	CHECK(type->reinstate_path(&ps, &paths[2]) == 0);
	start(&ps, 0);
	end_at(&ps, 0, T0 + 1 * MS, T0 + 2 * MS);
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_INFO), "1024000000 0 10005000000 ");

	/* Failed paths are never chosen. */
	type->fail_path(&ps, &paths[0]);
	type->fail_path(&ps, &paths[1]);
	fake_now = T0 + 100 * MS;
	CHECK(pick(&ps) == 2);
	CHECK(pick(&ps) == 2);
	type->fail_path(&ps, &paths[2]);
	CHECK(pick(&ps) == -1);
	type->destroy(&ps);
}

static void test_status(void)
{
	struct path_selector ps;
	const char *err;

	CHECK(create(&ps, "") == 0);
	CHECK_STR(status(&ps, NULL, PS_STATUS_TABLE), "2 972 0 ");
	CHECK_STR(status(&ps, NULL, PS_STATUS_INFO), "2 972 0 ");
	CHECK(add(&ps, &paths[0], "", &err) == 0);
	CHECK(add(&ps, &paths[1], "7", &err) == 0);
	/* repeat_count is accepted and never printed: always 0. */
	CHECK_STR(status(&ps, &paths[0], PS_STATUS_TABLE), "0 ");
	CHECK_STR(status(&ps, &paths[1], PS_STATUS_TABLE), "0 ");
	CHECK_STR(status(&ps, &paths[1], PS_STATUS_INFO), "1024 0 0 ");
	type->destroy(&ps);

	CHECK(create(&ps, "1023 3") == 0);
	CHECK_STR(status(&ps, NULL, PS_STATUS_TABLE), "2 1023 3 ");
	type->destroy(&ps);
	CHECK(create(&ps, "500") == 0);
	CHECK_STR(status(&ps, NULL, PS_STATUS_TABLE), "2 500 0 ");
	type->destroy(&ps);
}

static void expect_create_refused(const char *words)
{
	struct path_selector ps;

	if (create(&ps, words) != -EINVAL) {
		fprintf(stderr, "selector args '%s' accepted\n", words);
		exit(1);
	}
	CHECK(ps.context == NULL);
}

static void expect_add_refused(const char *words, const char *reason)
{
	struct path_selector ps;
	struct ps_path p = { NULL };
	const char *err;

	CHECK(create(&ps, "") == 0);
	if (add(&ps, &p, words, &err) != -EINVAL || !err || strcmp(err, reason)) {
		fprintf(stderr, "args '%s': got '%s', want '%s'\n", words,
			err ? err : "(none)", reason);
		exit(1);
	}
	fake_now = T0;
	CHECK(type->select_path(&ps, 512) == NULL);
	type->destroy(&ps);
}

static void test_args(void)
{
	static const char count[] = "historical-service-time ps: incorrect number of arguments";
	static const char repeat[] = "historical-service-time ps: invalid repeat count";

	expect_create_refused("1 2 3");
	expect_create_refused("1024");
	expect_create_refused("4294967295");
	expect_create_refused("x");
	expect_create_refused("-1");
	expect_create_refused("972 y");
	expect_create_refused("972 -1");

	expect_add_refused("1 1", count);
	expect_add_refused("z", repeat);
	expect_add_refused("-2", repeat);
	expect_add_refused("3q", repeat);
}

int main(void)
{
	hst_now_ns = fake_clock;
	test_registry();
	test_prefers_fast_path();
	test_probes_stale_path();
	test_idle_group();
	test_threshold();
	test_history();
	test_valid_count();
	test_status();
	test_args();
	return 0;
}
