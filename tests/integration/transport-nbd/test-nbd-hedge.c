/* Description: hedged reads over two nbdkit servers sharing one image, the
 * second behind the pause filter.  With read_hedge 20 ms (one group) or
 * auto (two groups, the paused path first), reads keep completing within
 * a fraction of io_timeout while that server is paused, with the right
 * data and no error, each hedge counted as won on the healthy path; with
 * read_hedge off the same reads stall for io_timeout; writes are never
 * hedged (they stall for io_timeout, the counters stay 0); and a loser
 * answering late never writes into the client's buffer. */
#include "nbdtest.h"

#define SIZE (2u << 20)
#define NBLOCKS (SIZE / T_BS)
#define TIMEOUT_MS 2000u
#define HEDGED_MAX_S 0.5	/* 20 ms or 5 ms hedges, on a loaded machine */

static char image[256], ctl[256];
static struct t_srv *s0, *s1;	/* s1 pausable */

static struct umpath_path_io_stats io_stats(struct umpath_ctx *ctx, const char *path)
{
	struct umpath_path_io_stats st;

	CHECK_EQ_INT(umpath_path_io_stats(ctx, path, &st), 0);
	return st;
}

static uint64_t hedge_total(struct umpath_ctx *ctx)
{
	struct umpath_path_io_stats a = io_stats(ctx, s0->uri), b = io_stats(ctx, s1->uri);

	return a.hedges_won + a.hedges_lost + a.hedged_reads + b.hedges_won + b.hedges_lost +
	       b.hedged_reads;
}

/* A new context and map over both servers; groups 1: one round-robin
 * group; 2: s1's group first, s0's second. */
static struct umpath_map *map_new(struct umpath_ctx **ret_ctx, unsigned timeout_ms,
				  unsigned groups, int hedge)
{
	struct umpath_ctx_opts o = { .io_timeout_ms = timeout_ms };
	struct umpath_map *map;
	char table[1024];

	if (groups == 1)
		snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", s0->uri,
			 s1->uri);
	else
		snprintf(table, sizeof(table),
			 "0 0 2 1 round-robin 0 1 1 %s 1 round-robin 0 1 1 %s 1", s1->uri,
			 s0->uri);
	CHECK(umpath_ctx_new(&o, ret_ctx) == 0);
	map = t_map_new(*ret_ctx, table);
	CHECK_EQ_INT(umpath_map_set_read_hedge(map, hedge), 0);
	CHECK_EQ_INT(umpath_map_read_hedge(map), hedge);
	return map;
}

/* The server resumed, the map freed (after its losers have answered). */
static void map_done(struct umpath_ctx *ctx, struct umpath_map *map, bool paused)
{
	if (paused)
		t_pause_ctl(ctl, 'r');
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* Read every block with s1 paused: how long the slowest read took. */
static double read_paused(struct umpath_map *map, unsigned gen)
{
	struct t_load ld;
	double lat;

	t_load_init(&ld, map, 16);
	t_pause_ctl(ctl, 'p');
	t_verify_all(&ld, NBLOCKS, gen);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	lat = ld.max_lat;
	t_load_fini(&ld);
	return lat;
}

static void hedge_fixed(void)
{
	struct umpath_path_io_stats a, b;
	struct umpath_ctx *ctx;
	struct umpath_map *map = map_new(&ctx, TIMEOUT_MS, 1, 20);
	double lat;

	CHECK_EQ_INT(umpath_map_set_read_hedge(map, -2), -EINVAL);
	CHECK_EQ_INT(umpath_map_set_read_hedge(map, 3600 * 1000 + 1), -EINVAL);
	CHECK_EQ_INT(umpath_map_read_hedge(map), 20);
	lat = read_paused(map, 1);
	a = io_stats(ctx, s0->uri);
	b = io_stats(ctx, s1->uri);
	fprintf(stderr, "read_hedge 20: slowest read %.3f s; s0 won %llu lost %llu, s1 hedged %llu\n",
		lat, (unsigned long long)a.hedges_won, (unsigned long long)a.hedges_lost,
		(unsigned long long)b.hedged_reads);
	CHECK(lat < HEDGED_MAX_S);
	/* Every read stuck on s1 was hedged to s0, and won there. */
	CHECK(b.hedged_reads >= 1);
	CHECK_EQ_INT(a.hedges_won, b.hedged_reads);
	CHECK_EQ_INT(a.hedges_lost, 0);
	/* A read on s0 may be slow too on a loaded machine: its hedge to the
	 * paused s1 then loses. */
	CHECK_EQ_INT(b.hedges_won, 0);
	CHECK_EQ_INT(b.hedges_lost, a.hedged_reads);
	map_done(ctx, map, true);
}

static void hedge_auto(void)
{
	struct umpath_ctx *ctx;
	struct umpath_map *map = map_new(&ctx, TIMEOUT_MS, 2, UMPATH_READ_HEDGE_AUTO);
	struct t_load ld;
	double lat;

	/* Reads on the healthy s1 first: its recent p99 is known. */
	t_load_init(&ld, map, 4);
	t_verify_all(&ld, 128, 1);
	CHECK_EQ_INT(ld.errors + ld.bad_data, 0);
	t_load_fini(&ld);
	CHECK(io_stats(ctx, s1->uri).read_bytes >= 128 * T_BS);

	lat = read_paused(map, 1);
	fprintf(stderr, "read_hedge auto: slowest read %.3f s; s0 won %llu\n", lat,
		(unsigned long long)io_stats(ctx, s0->uri).hedges_won);
	CHECK(lat < HEDGED_MAX_S);
	CHECK(io_stats(ctx, s0->uri).hedges_won >= 1);
	map_done(ctx, map, true);
}

static void hedge_off(void)
{
	struct umpath_ctx *ctx;
	struct umpath_map *map = map_new(&ctx, TIMEOUT_MS, 1, UMPATH_READ_HEDGE_OFF);
	double lat = read_paused(map, 1);

	fprintf(stderr, "read_hedge off: slowest read %.3f s\n", lat);
	CHECK(lat >= TIMEOUT_MS / 1000.0 * 0.9);
	CHECK_EQ_INT(hedge_total(ctx), 0);
	map_done(ctx, map, true);
}

/* Writes wait for io_timeout on the paused path, hedging on or not. */
static void writes_not_hedged(void)
{
	struct umpath_ctx *ctx;
	struct umpath_map *map = map_new(&ctx, TIMEOUT_MS, 1, 20);
	struct t_load ld;

	t_load_init(&ld, map, 16);
	t_pause_ctl(ctl, 'p');
	t_write_all(&ld, NBLOCKS, 2);
	CHECK_EQ_INT(ld.errors, 0);
	fprintf(stderr, "writes with read_hedge 20: slowest write %.3f s\n", ld.max_lat);
	CHECK(ld.max_lat >= TIMEOUT_MS / 1000.0 * 0.9);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(hedge_total(ctx), 0);
	t_load_fini(&ld);
	map_done(ctx, map, true);
	t_verify_file(image, NBLOCKS, 2);
}

/* A read hedged away from the paused server, answered from s0; when the
 * server wakes up and answers too, the client's buffer is not touched. */
static void late_loser(void)
{
	static unsigned char buf[2][T_BS], want[T_BS], sentinel[T_BS];
	struct umpath_ctx *ctx;
	/* io_timeout long enough that the paused server answers first. */
	struct umpath_map *map = map_new(&ctx, 10000, 1, 20);
	uint64_t hedged;

	t_pause_ctl(ctl, 'p');
	/* Round-robin: one of two reads in a row goes to s1. */
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (i + 5) * T_BS, T_BS, buf[i]), 0);
		t_pattern(want, i + 5, 2);
		CHECK(!memcmp(buf[i], want, T_BS));
	}
	hedged = io_stats(ctx, s1->uri).hedged_reads;
	CHECK_EQ_INT(hedged, 1);
	CHECK(t_stats(ctx, s1->uri).inflight >= 1);	/* the loser, still out */
	memset(sentinel, 0xa5, T_BS);
	memcpy(buf[0], sentinel, T_BS);
	memcpy(buf[1], sentinel, T_BS);
	t_pause_ctl(ctl, 'r');
	for (double until = t_now() + 5; t_stats(ctx, s1->uri).inflight && t_now() < until;)
		usleep(10000);
	CHECK_EQ_INT(t_stats(ctx, s1->uri).inflight, 0);
	CHECK(!memcmp(buf[0], sentinel, T_BS));
	CHECK(!memcmp(buf[1], sentinel, T_BS));
	/* It answered well, but second: lost is s0's only if s0 lost. */
	CHECK_EQ_INT(io_stats(ctx, s0->uri).hedges_won, 1);
	CHECK_EQ_INT(io_stats(ctx, s0->uri).hedges_lost, 0);
	map_done(ctx, map, false);
}

int main(void)
{
	static const char *const filters[] = { "pause", NULL };
	char ctlarg[300];
	struct t_load ld;
	struct umpath_ctx *ctx;
	struct umpath_map *map;

	t_setup(filters);
	t_image("hedge.img", SIZE, image, sizeof(image));
	t_path(ctl, sizeof(ctl), "hedge.ctl");
	snprintf(ctlarg, sizeof(ctlarg), "pause-control=%s", ctl);
	s0 = t_srv_start("s0", (const char *const[]){ "file", image, NULL });
	/* --threads=1: see test-nbd-hang.c. */
	s1 = t_srv_start("s1", (const char *const[]){ "--threads=1", "--filter=pause", "file",
						      image, ctlarg, NULL });
	/* Generation 1 everywhere, written through a map. */
	map = map_new(&ctx, TIMEOUT_MS, 1, 20);
	t_load_init(&ld, map, 16);
	t_write_all(&ld, NBLOCKS, 1);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(hedge_total(ctx), 0);
	t_load_fini(&ld);
	map_done(ctx, map, false);
	t_verify_file(image, NBLOCKS, 1);

	hedge_fixed();
	hedge_auto();
	hedge_off();
	writes_not_hedged();
	late_loser();
	return 0;
}
