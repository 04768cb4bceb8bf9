/* Description: hedged reads on mem paths, each path in its own group so
 * that a read goes to p0 and its hedge to p1, with hangs released by
 * hand: the original answering after its hedge failed still succeeds; both
 * legs failing with path errors fail over to p2; target errors on both
 * reach the client; the original winning while its hedge hangs leaves the
 * client's buffer alone when the hedge answers later; writes are never
 * hedged; off sends no hedge; the counters say won, lost and hedged. */
#include "testlib.h"

#define SIZE (1u << 20)
#define BS 4096u
#define TABLE "0 0 3 1 round-robin 0 1 1 p0 1 round-robin 0 1 1 p1 1 round-robin 0 1 1 p2 1"

static struct umpath_path_io_stats st(struct umpath_ctx *ctx, const char *p)
{
	struct umpath_path_io_stats s;

	CHECK_EQ_INT(umpath_path_io_stats(ctx, p, &s), 0);
	return s;
}

static uint32_t inflight(struct umpath_ctx *ctx, const char *p)
{
	struct umpath_path_stats s;

	CHECK_EQ_INT(umpath_path_stats(ctx, p, &s), 0);
	return s.inflight;
}

/* Wait (5 s at most) until p0 has had n reads hedged. */
static void wait_hedged(struct umpath_ctx *ctx, uint64_t n)
{
	double until = t_now() + 5;

	while (st(ctx, "p0").hedged_reads < n && t_now() < until)
		usleep(1000);
	CHECK_EQ_INT(st(ctx, "p0").hedged_reads, n);
}

static struct umpath_map *setup(struct umpath_ctx **ret_ctx, unsigned char *want)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map = t_map(ctx, TABLE);

	t_fill(want, BS, 7);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, BS, BS, want), 0);
	CHECK_EQ_INT(umpath_map_set_read_hedge(map, 20), 0);
	*ret_ctx = ctx;
	return map;
}

/* A read of block 1 submitted with p0 hung and p1 in fault/arg; returns
 * once it has been hedged to p1. */
static void hedged_read(struct umpath_ctx *ctx, struct umpath_map *map, struct t_io *t,
			unsigned char *buf, enum umpath_mem_fault fault, unsigned arg)
{
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_HANG, 0) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", fault, arg) == 0);
	t_io_init(t, UMPATH_OP_READ, BS, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &t->io), 0);
	wait_hedged(ctx, 1);
}

static void done(struct umpath_ctx *ctx, struct umpath_map *map)
{
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* The hedge fails (p1 failed); the original answers later: success. */
static void test_hedge_fails_original_wins(void)
{
	static unsigned char want[BS], buf[BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map = setup(&ctx, want);
	struct t_io t;

	hedged_read(ctx, map, &t, buf, UMPATH_MEM_ERROR, EIO);
	for (double until = t_now() + 5; st(ctx, "p1").hedges_lost < 1 && t_now() < until;)
		usleep(1000);
	CHECK_EQ_INT(st(ctx, "p1").hedges_lost, 1);
	CHECK(!t_io_is_done(&t));
	CHECK_STR(t_status(map), "2 0 0 0 3 1 A 0 1 0 p0 A 0 E 0 1 0 p1 F 1 E 0 1 0 p2 A 0");
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(t_io_wait(&t, 5));
	CHECK_EQ_INT(t.err, 0);
	CHECK(!memcmp(buf, want, BS));
	CHECK_EQ_INT(st(ctx, "p1").hedges_won, 0);
	done(ctx, map);
}

/* Both legs fail with path errors: both paths failed, the read mapped
 * again, to p2. */
static void test_both_fail_over(void)
{
	static unsigned char want[BS], buf[BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map = setup(&ctx, want);
	struct t_io t;

	hedged_read(ctx, map, &t, buf, UMPATH_MEM_ERROR, EIO);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ERROR, EIO) == 0);	/* releases it: EIO */
	CHECK(t_io_wait(&t, 5));
	CHECK_EQ_INT(t.err, 0);
	CHECK(!memcmp(buf, want, BS));
	CHECK_EQ_INT(st(ctx, "p2").read_bytes, BS);
	CHECK_STR(t_status(map), "2 0 0 0 3 3 E 0 1 0 p0 F 1 E 0 1 0 p1 F 1 A 0 1 0 p2 A 0");
	done(ctx, map);
}

/* A target error on both legs is the request's answer. */
static void test_target_errors(void)
{
	static unsigned char want[BS], buf[BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map = setup(&ctx, want);
	struct t_io t;

	hedged_read(ctx, map, &t, buf, UMPATH_MEM_ERROR, ENOSPC);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ERROR, ENOSPC) == 0);
	CHECK(t_io_wait(&t, 5));
	CHECK_EQ_INT(t.err, -ENOSPC);
	CHECK_STR(t_status(map), "2 0 0 0 3 1 A 0 1 0 p0 A 0 E 0 1 0 p1 A 0 E 0 1 0 p2 A 0");
	done(ctx, map);
}

/* The original answers while the hedge hangs: the client has its data, and
 * the hedge's late answer does not touch the client's buffer. */
static void test_original_wins(void)
{
	static unsigned char want[BS], buf[BS], sentinel[BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map = setup(&ctx, want);
	struct t_io t;

	hedged_read(ctx, map, &t, buf, UMPATH_MEM_HANG, 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(t_io_wait(&t, 5));
	CHECK_EQ_INT(t.err, 0);
	CHECK(!memcmp(buf, want, BS));
	CHECK_EQ_INT(st(ctx, "p1").hedges_lost, 1);
	CHECK_EQ_INT(inflight(ctx, "p1"), 1);
	memset(sentinel, 0x5a, BS);
	memcpy(buf, sentinel, BS);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ONLINE, 0) == 0);
	for (double until = t_now() + 5; inflight(ctx, "p1") && t_now() < until;)
		usleep(1000);
	CHECK_EQ_INT(inflight(ctx, "p1"), 0);
	CHECK(!memcmp(buf, sentinel, BS));
	CHECK_EQ_INT(st(ctx, "p1").hedges_lost, 1);	/* counted once */
	CHECK_EQ_INT(st(ctx, "p1").hedges_won, 0);
	done(ctx, map);
}

/* Writes, flushes, trims and write-zeroes wait for their path. */
static void test_writes_not_hedged(void)
{
	static unsigned char want[BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map = setup(&ctx, want);
	static const enum umpath_op ops[] = {
		UMPATH_OP_WRITE, UMPATH_OP_FLUSH, UMPATH_OP_TRIM, UMPATH_OP_WRITE_ZEROES,
	};

	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct t_io t;

		CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_HANG, 0) == 0);
		t_io_init(&t, ops[i], ops[i] == UMPATH_OP_FLUSH ? 0 : BS,
			  ops[i] == UMPATH_OP_FLUSH ? 0 : BS, want);
		CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
		usleep(100000);	/* 5 x the hedge delay */
		CHECK(!t_io_is_done(&t));
		CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
		CHECK(t_io_wait(&t, 5));
		CHECK_EQ_INT(t.err, 0);
	}
	CHECK_EQ_INT(st(ctx, "p0").hedged_reads, 0);
	CHECK_EQ_INT(st(ctx, "p1").hedges_won + st(ctx, "p1").hedges_lost, 0);
	CHECK_EQ_INT(st(ctx, "p1").read_bytes + st(ctx, "p1").write_bytes, 0);
	done(ctx, map);
}

/* Off: a stuck read stays stuck. */
static void test_off(void)
{
	static unsigned char want[BS], buf[BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map = setup(&ctx, want);
	struct t_io t;

	CHECK_EQ_INT(umpath_map_set_read_hedge(map, UMPATH_READ_HEDGE_OFF), 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_HANG, 0) == 0);
	t_io_init(&t, UMPATH_OP_READ, BS, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
	usleep(100000);
	CHECK(!t_io_is_done(&t));
	CHECK_EQ_INT(st(ctx, "p0").hedged_reads, 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(t_io_wait(&t, 5));
	CHECK_EQ_INT(t.err, 0);
	CHECK(!memcmp(buf, want, BS));
	done(ctx, map);
}

int main(void)
{
	test_hedge_fails_original_wins();
	test_both_fail_over();
	test_target_errors();
	test_original_wins();
	test_writes_not_hedged();
	test_off();
	return 0;
}
