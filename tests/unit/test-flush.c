/* Description: a flush reaches every path that completed writes since its
 * last flush (paths do not share a write cache), and only those; a path
 * whose flush fails is failed and a covering flush goes through another. */
#include "testlib.h"

#define SIZE (1u << 20)
#define BS 4096u

static uint64_t counts[3];

static void snap(struct umpath_ctx *ctx)
{
	counts[0] = t_ios(ctx, "p0");
	counts[1] = t_ios(ctx, "p1");
	counts[2] = t_ios(ctx, "p2");
}

/* I/Os each path received since snap(). */
static void delta(struct umpath_ctx *ctx, uint64_t d0, uint64_t d1, uint64_t d2)
{
	CHECK_EQ_INT(t_ios(ctx, "p0") - counts[0], d0);
	CHECK_EQ_INT(t_ios(ctx, "p1") - counts[1], d1);
	CHECK_EQ_INT(t_ios(ctx, "p2") - counts[2], d2);
}

static uint64_t total_delta(struct umpath_ctx *ctx)
{
	return t_ios(ctx, "p0") + t_ios(ctx, "p1") + t_ios(ctx, "p2") - counts[0] - counts[1] -
	       counts[2];
}

int main(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 3 1 p0 1 p1 1 p2 1");
	static unsigned char buf[BS];
	struct t_io fua;

	/* Nothing written: one flush, through the selector. */
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(total_delta(ctx), 1);

	/* round-robin sends the next two writes to two different paths; the
	 * flush then visits exactly those two. */
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, BS, BS, buf), 0);
	uint64_t w0 = t_ios(ctx, "p0") - counts[0], w1 = t_ios(ctx, "p1") - counts[1],
		 w2 = t_ios(ctx, "p2") - counts[2];
	CHECK_EQ_INT(w0 + w1 + w2, 2);
	CHECK(w0 <= 1 && w1 <= 1 && w2 <= 1);
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	delta(ctx, w0, w1, w2);

	/* Everything is clean again: one flush. */
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(total_delta(ctx), 1);

	/* A FUA write is durable by itself and dirties nothing. */
	t_io_init(&fua, UMPATH_OP_WRITE, 0, BS, buf);
	fua.io.flags = UMPATH_IO_FUA;
	CHECK_EQ_INT(umpath_map_submit(map, &fua.io), 0);
	CHECK(t_io_wait(&fua, 5) && fua.err == 0);
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(total_delta(ctx), 1);

	/* Write zeroes and trim dirty their path like writes. */
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 0, BS, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, BS, BS, NULL), 0);
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(total_delta(ctx), 2);

	/* Dirty p0, then p0 dies: its flush fails, p0 is failed, and a
	 * covering flush through another path completes the flush. */
	t_msg(map, "fail_path p1", 0);
	t_msg(map, "fail_path p2", 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), 0);	/* on p0 */
	t_msg(map, "reinstate_path p1", 0);
	t_msg(map, "reinstate_path p2", 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	snap(ctx);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(t_ios(ctx, "p0") - counts[0], 1);
	CHECK_EQ_INT(total_delta(ctx), 2);
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 3 0 p0 F 1 p1 A 1 p2 A 1");

	/* A target error from a dirty path's flush is the flush's result. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ERROR, EOPNOTSUPP) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p2", UMPATH_MEM_ERROR, EOPNOTSUPP) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), -EOPNOTSUPP);
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 3 0 p0 F 1 p1 A 1 p2 A 1");

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	printf("test-flush: all passed\n");
	return 0;
}
