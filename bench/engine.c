/* engine.c - benchmark of the engine's per-I/O cost: map, dispatch and
 * complete one read at a time through a map of mem paths, on one thread.
 *
 * The mem transport completes an I/O inline when its path is online, so
 * one umpath_map_submit() is the whole life of a request: pool take, group
 * and path choice by the selector, start_io, transport submit, completion,
 * end_io, pool release and the caller's done() callback.  With 0-byte reads
 * that is all the engine; 4 KiB reads add a 4 KiB memcpy from the store.
 *
 * Usage: engine [--quick]   (--quick: short runs, a smoke test)
 *        engine --case SELECTOR PATHS BYTES OPS
 *            (OPS reads of BYTES on one group of PATHS mem paths, untimed:
 *            what bench/engine-ir.sh counts instructions of, under
 *            valgrind --tool=callgrind --toggle-collect=umpath_map_submit)
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#define NPATHS_MAX	8
#define STORE_SIZE	((uint64_t)64 << 20)
#define RING		64		/* I/O structs in rotation */
#define BATCH		1024		/* ops between clock reads */
#define SPAN		(1u << 20)	/* 4 KiB reads cycle over the first MiB */
#define GOAL_OPS_PER_S	10e6	/* issue 12: map+complete ops a second, one core */

static const char *const selectors[] = {
	"round-robin", "queue-length", "service-time", "historical-service-time",
};
static const unsigned path_counts[] = { 2, 4, 8 };

/* b0..b7, and b8 for the second group of the failover case */
static const char *const names[] = { "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8" };
#define NNAMES (sizeof(names) / sizeof(names[0]))

struct slot {
	struct umpath_io io;
	atomic_bool busy;
};

static struct slot ring[RING];
static uint64_t completed, errors;
static int first_error;
static double run_seconds = 0.3;
static uint64_t warmup_ops = 100000;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void io_done(struct umpath_io *io, int err)
{
	struct slot *s = (struct slot *)io;

	if (err) {
		errors++;
		if (!first_error)
			first_error = err;
	}
	completed++;
	atomic_store_explicit(&s->busy, false, memory_order_release);
}

/* Submit n reads of len bytes. */
static void run_ops(struct umpath_map *map, uint64_t n, uint64_t len, uint64_t *seq)
{
	for (uint64_t i = 0; i < n; i++, (*seq)++) {
		struct slot *s = &ring[*seq % RING];
		int r;

		/* Inline completion frees the slot at once; be safe anyway. */
		while (atomic_load_explicit(&s->busy, memory_order_acquire))
			sched_yield();
		s->io.length = len;
		s->io.offset = len ? (*seq * len) % SPAN : 0;
		atomic_store_explicit(&s->busy, true, memory_order_relaxed);
		while ((r = umpath_map_submit(map, &s->io)) == -EAGAIN)
			sched_yield();	/* pool empty: wait for completions */
		if (r) {
			fprintf(stderr, "submit: %s\n", strerror(-r));
			exit(1);
		}
	}
}

static void drain(void)
{
	for (unsigned i = 0; i < RING; i++)
		while (atomic_load_explicit(&ring[i].busy, memory_order_acquire))
			sched_yield();
}

struct result {
	double ops_per_s;
	double ns_per_op;
	uint64_t min_ios, max_ios;	/* per-path spread in the timed run */
};

static void path_counts_now(struct umpath_ctx *ctx, unsigned first, unsigned n, uint64_t *out)
{
	for (unsigned i = 0; i < n; i++)
		if (umpath_mem_io_count(ctx, names[first + i], &out[i]) < 0)
			out[i] = 0;
}

static struct result measure(struct umpath_ctx *ctx, struct umpath_map *map, uint64_t len,
			     unsigned first_path, unsigned npaths)
{
	uint64_t before[NNAMES], after[NNAMES];
	uint64_t seq = 0, ops = 0, t0, t1, deadline;
	struct result res;

	run_ops(map, warmup_ops, len, &seq);
	drain();
	errors = 0;
	path_counts_now(ctx, first_path, npaths, before);

	t0 = now_ns();
	deadline = t0 + (uint64_t)(run_seconds * 1e9);
	do {
		run_ops(map, BATCH, len, &seq);
		ops += BATCH;
		t1 = now_ns();
	} while (t1 < deadline);
	drain();
	t1 = now_ns();

	if (errors) {
		fprintf(stderr, "%" PRIu64 " I/O errors in the timed run (first %s)\n", errors,
			strerror(-first_error));
		exit(1);
	}
	path_counts_now(ctx, first_path, npaths, after);
	res.min_ios = UINT64_MAX;
	res.max_ios = 0;
	for (unsigned i = 0; i < npaths; i++) {
		uint64_t d = after[i] - before[i];

		if (d < res.min_ios)
			res.min_ios = d;
		if (d > res.max_ios)
			res.max_ios = d;
	}
	res.ops_per_s = (double)ops / ((double)(t1 - t0) / 1e9);
	res.ns_per_op = (double)(t1 - t0) / (double)ops;
	return res;
}

static struct umpath_map *make_map(struct umpath_ctx *ctx, const char *table)
{
	struct umpath_map *map;
	char err[256];
	int r = umpath_map_new(ctx, "bench", table, STORE_SIZE, err, sizeof(err), &map);

	if (r) {
		fprintf(stderr, "map '%s': %s (%s)\n", table, strerror(-r), err);
		exit(1);
	}
	return map;
}

/* "SEL 0 N 0 bFIRST ... " */
static size_t group_words(char *buf, size_t len, const char *sel, unsigned first, unsigned n)
{
	size_t o = (size_t)snprintf(buf, len, "%s 0 %u 0", sel, n);

	for (unsigned i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, " %s", names[first + i]);
	return o;
}

static void spread(char *buf, size_t len, const struct result *r)
{
	if (!r->min_ios)
		snprintf(buf, len, "%" PRIu64 "/0", r->max_ios);
	else
		snprintf(buf, len, "%.2f", (double)r->max_ios / (double)r->min_ios);
}

static void pin_cpu(char *desc, size_t len)
{
#ifdef __linux__
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (!sched_setaffinity(0, sizeof(set), &set)) {
			snprintf(desc, len, "pinned to CPU %d", cpu);
			return;
		}
	}
#endif
	snprintf(desc, len, "not pinned");
}

static uint8_t buf[4096];

static void ring_init(void)
{
	for (unsigned i = 0; i < RING; i++) {
		ring[i].io.op = UMPATH_OP_READ;
		ring[i].io.buf = buf;
		ring[i].io.done = io_done;
	}
}

/* The I/O ring and a context with the mem store b0..b8; exits on failure. */
static struct umpath_ctx *setup(void)
{
	struct umpath_ctx *ctx;
	int r;

	ring_init();
	r = umpath_ctx_new(NULL, &ctx);
	if (!r)
		r = umpath_mem_store_new(ctx, STORE_SIZE, NNAMES, names, 1);
	if (r) {
		fprintf(stderr, "setup: %s\n", strerror(-r));
		exit(1);
	}
	return ctx;
}

/* --case: ops reads of len bytes, after 1,000 to warm up, untimed. */
static int run_case(const char *sel, unsigned n, uint64_t len, uint64_t ops)
{
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	char table[1024];
	uint64_t seq = 0;
	size_t o;

	if (n < 1 || n > NPATHS_MAX || len > sizeof(buf)) {
		fprintf(stderr, "--case: 1 to %u paths, at most %zu bytes\n", NPATHS_MAX, sizeof(buf));
		return 2;
	}
	ctx = setup();
	o = (size_t)snprintf(table, sizeof(table), "0 0 1 1 ");
	group_words(table + o, sizeof(table) - o, sel, 0, n);
	map = make_map(ctx, table);
	run_ops(map, 1000, len, &seq);
	run_ops(map, ops, len, &seq);
	drain();
	umpath_map_free(map);
	umpath_ctx_free(ctx);
	if (errors) {
		fprintf(stderr, "%" PRIu64 " I/O errors (first %s)\n", errors, strerror(-first_error));
		return 1;
	}
	printf("%" PRIu64 " ops\n", ops + 1000);
	return 0;
}

int main(int argc, char **argv)
{
	struct umpath_ctx *ctx;
	char table[1024], pin[64], sp0[32], sp4[32];

	if (argc == 6 && !strcmp(argv[1], "--case"))
		return run_case(argv[2], (unsigned)atoi(argv[3]), strtoull(argv[4], NULL, 0),
				strtoull(argv[5], NULL, 0));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			run_seconds = 0.02;
			warmup_ops = 2000;
		} else {
			fprintf(stderr, "usage: %s [--quick]\n"
				"       %s --case SELECTOR PATHS BYTES OPS\n", argv[0], argv[0]);
			return 2;
		}
	}
	pin_cpu(pin, sizeof(pin));
	ctx = setup();

	printf("umpath engine benchmark: one thread (%s), mem paths of one store, one group.\n"
	       "One op = umpath_map_submit() of a READ: pool, selector choice, dispatch to a\n"
	       "mem path, inline completion, done() callback. \"0 B\" reads are the engine\n"
	       "alone; \"4 KiB\" reads add a 4 KiB copy. Warm-up %" PRIu64 " ops, then\n"
	       "~%.2f s timed per case. spread = most/fewest I/Os on one path in the run.\n"
	       "goal = 0 B ops/s over the goal of %.0f M a core (issue 12).\n\n",
	       pin, warmup_ops, run_seconds, GOAL_OPS_PER_S / 1e6);
	printf("%-24s %5s %12s %7s %6s %7s %12s %7s %7s\n", "selector", "paths", "0 B ops/s",
	       "ns/op", "goal", "spread", "4 KiB ops/s", "ns/op", "spread");

	for (size_t s = 0; s < sizeof(selectors) / sizeof(selectors[0]); s++) {
		for (size_t p = 0; p < sizeof(path_counts) / sizeof(path_counts[0]); p++) {
			unsigned n = path_counts[p];
			struct umpath_map *map;
			struct result r0, r4;
			size_t o = (size_t)snprintf(table, sizeof(table), "0 0 1 1 ");

			group_words(table + o, sizeof(table) - o, selectors[s], 0, n);
			map = make_map(ctx, table);
			r0 = measure(ctx, map, 0, 0, n);
			r4 = measure(ctx, map, sizeof(buf), 0, n);
			umpath_map_free(map);
			umpath_mem_set_fault(ctx, "b0", UMPATH_MEM_ONLINE, 0);
			spread(sp0, sizeof(sp0), &r0);
			spread(sp4, sizeof(sp4), &r4);
			printf("%-24s %5u %12.0f %7.1f %5.2fx %7s %12.0f %7.1f %7s\n", selectors[s], n,
			       r0.ops_per_s, r0.ns_per_op, r0.ops_per_s / GOAL_OPS_PER_S, sp0,
			       r4.ops_per_s, r4.ns_per_op, sp4);
		}
	}

	/* Failover steady state: group 1 holds N paths of which b0 is offline
	 * (failed by the first I/O it gets, during warm-up, and retried on
	 * another path), group 2 a spare b8 that is never used. */
	printf("\nWith b0 offline: table of 2 groups, N paths (b0 offline) + 1 spare;\n"
	       "b0 is failed during warm-up, the figures are the steady state after.\n");
	printf("%-24s %5s %12s %7s %7s\n", "selector", "paths", "0 B ops/s", "ns/op", "spread");
	for (size_t s = 0; s < sizeof(selectors) / sizeof(selectors[0]); s++) {
		for (size_t p = 0; p < sizeof(path_counts) / sizeof(path_counts[0]); p++) {
			unsigned n = path_counts[p];
			struct umpath_map *map;
			struct result r0;
			char st[1024];
			size_t o = (size_t)snprintf(table, sizeof(table), "0 0 2 1 ");

			o += group_words(table + o, sizeof(table) - o, selectors[s], 0, n);
			o += (size_t)snprintf(table + o, sizeof(table) - o, " ");
			group_words(table + o, sizeof(table) - o, selectors[s], NNAMES - 1, 1);
			map = make_map(ctx, table);
			/* After the table is in: an offline path cannot be opened. */
			umpath_mem_set_fault(ctx, "b0", UMPATH_MEM_OFFLINE, 0);
			r0 = measure(ctx, map, 0, 1, n - 1);	/* spread over b1.. */
			umpath_map_status(map, st, sizeof(st));
			if (!strstr(st, " b0 F 1 ")) {
				fprintf(stderr, "b0 not failed once: %s\n", st);
				return 1;
			}
			umpath_map_free(map);
			umpath_mem_set_fault(ctx, "b0", UMPATH_MEM_ONLINE, 0);
			spread(sp0, sizeof(sp0), &r0);
			printf("%-24s %3u-1 %12.0f %7.1f %7s\n", selectors[s], n, r0.ops_per_s,
			       r0.ns_per_op, sp0);
		}
	}
	umpath_ctx_free(ctx);
	return 0;
}
