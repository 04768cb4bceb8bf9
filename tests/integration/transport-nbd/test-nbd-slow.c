/* Description: two nbdkit servers share one image, one of them slow
 * (delay filter, every read 20 ms).  With 16 reads in flight over a fixed
 * number of requests, round-robin sends the slow path about half of them,
 * while queue-length and service-time send it a much smaller share (below
 * 30%).  The share is taken from the per-path I/O counts, not from time. */
#include "nbdtest.h"

#define SIZE (4u << 20)
#define NBLOCKS (SIZE / T_BS)
#define NREADS 600u
#define DEPTH 16u

/* The slow path's share of NREADS reads through a map with this selector. */
static double slow_share(struct umpath_ctx *ctx, const char *selector, const char *fmt,
			 const char *fast, const char *slow)
{
	struct umpath_path_stats f0, s0, f1, s1;
	struct umpath_map *map;
	struct t_load ld;
	char table[2048];
	double share;

	snprintf(table, sizeof(table), fmt, fast, slow);
	map = t_map_new(ctx, table);
	t_load_init(&ld, map, DEPTH);
	f0 = t_stats(ctx, fast);
	s0 = t_stats(ctx, slow);
	for (unsigned i = 0; i < NREADS; i++)
		t_load_submit(&ld, UMPATH_OP_READ, (i * 13u) % NBLOCKS, 1);
	t_load_wait(&ld);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	f1 = t_stats(ctx, fast);
	s1 = t_stats(ctx, slow);
	CHECK_EQ_INT((f1.ios - f0.ios) + (s1.ios - s0.ios), NREADS);
	share = (double)(s1.ios - s0.ios) / NREADS;
	fprintf(stderr, "%s: slow path share %.3f\n", selector, share);
	CHECK_EQ_INT(t_path_state(map, slow), 'A');
	t_load_fini(&ld);
	umpath_map_free(map);
	return share;
}

int main(void)
{
	static const char *const filters[] = { "delay", NULL };
	char image[256];
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	struct t_srv *fast, *slow;
	struct t_load ld;
	double rr, ql, st;

	t_setup(filters);
	t_image("disk.img", SIZE, image, sizeof(image));
	fast = t_srv_start("fast", (const char *const[]){ "file", image, NULL });
	slow = t_srv_start("slow", (const char *const[]){ "--filter=delay", "file", image,
							   "rdelay=20ms", NULL });
	CHECK(umpath_ctx_new(NULL, &ctx) == 0);

	/* A map kept open across the three keeps both connections open, and
	 * holds the data the reads check. */
	char table[2048];
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 1 1 %s 1", fast->uri);
	map = t_map_new(ctx, table);
	t_load_init(&ld, map, DEPTH);
	t_write_all(&ld, NBLOCKS, 1);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	t_load_fini(&ld);

	rr = slow_share(ctx, "round-robin", "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", fast->uri,
			slow->uri);
	ql = slow_share(ctx, "queue-length", "0 0 1 1 queue-length 0 2 1 %s 1 %s 1", fast->uri,
			slow->uri);
	st = slow_share(ctx, "service-time", "0 0 1 1 service-time 0 2 2 %s 1 1 %s 1 1",
			fast->uri, slow->uri);
	CHECK(rr >= 0.4 && rr <= 0.6);
	CHECK(ql < 0.3);
	CHECK(st < 0.3);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	return 0;
}
