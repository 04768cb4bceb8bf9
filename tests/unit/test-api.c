/* Description: the public API that umpathd and the exports use instead of
 * the engine's internals: a map snapshot that matches the TABLE and INFO
 * lines (also for a path string with a space), a table check that opens no
 * path, the selector and transport lists, and pool back-pressure waiters
 * that fire when a request frees (never lost, never after cancel), a
 * path's counters by kind with its latency histogram, and a resize that
 * takes the files' new size only when they agree.
 * Built against libumpath.so with include/ only. */
#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>

#include "testlib.h"

#define MiB (1024u * 1024u)

static void check_snapshot(void)
{
	struct umpath_ctx_opts o = { .pool_size = 8 };
	const char *names[] = { "a", "b c", "d" };
	struct umpath_snapshot *s;
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	char err[256] = "", line[1024];
	static char buf[4096];

	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	CHECK(umpath_mem_store_new(ctx, MiB, 3, names, 0) == 0);
	CHECK(umpath_map_new(ctx, "snap", "1 queue_if_no_path 0 2 1 "
			     "round-robin 0 2 1 mem:a 3 mem:b\\ c 1 "
			     "service-time 0 1 2 mem:d 1 5",
			     0, err, sizeof(err), &map) == 0);
	/* Some I/O, so that counters and the service-time status move. */
	CHECK(t_sync(map, UMPATH_OP_READ, 0, 4096, buf) == 0);
	t_msg(map, "fail_path mem:a", 0);

	CHECK(umpath_map_snapshot(map, &s) == 0);
	CHECK(s->size == sizeof(*s));
	CHECK_STR(s->name, "snap");
	CHECK_EQ_INT(s->size_bytes, MiB);
	CHECK_STR(s->features, "1 queue_if_no_path");
	CHECK_STR(s->hw_handler, "0");
	CHECK_EQ_INT(s->nr_groups, 2);
	CHECK_EQ_INT(s->nr_paths, 3);
	CHECK_EQ_INT(s->nr_valid_paths, 2);
	CHECK(s->queue_if_no_path);
	CHECK(!s->suspended);
	CHECK_EQ_INT(s->pool_size, 8);
	CHECK_EQ_INT(s->pool_busy, 0);
	CHECK_EQ_INT(s->event_nr, umpath_map_event_nr(map));

	CHECK_STR(s->groups[0].selector, "round-robin");
	CHECK_STR(s->groups[0].selector_args, "0");
	CHECK_STR(s->groups[0].selector_status, "0");
	CHECK_EQ_INT(s->groups[0].nr_paths, 2);
	CHECK_EQ_INT(s->groups[0].state, 'A');
	CHECK_STR(s->groups[1].selector, "service-time");
	CHECK_EQ_INT(s->groups[1].nr_table_args, 2);
	CHECK(s->groups[1].paths == &s->paths[2]);

	/* A path string with a space stays one string. */
	CHECK_STR(s->paths[0].path, "mem:a");
	CHECK(!s->paths[0].active);
	CHECK_EQ_INT(s->paths[0].fail_count, 1);
	CHECK_STR(s->paths[0].table_args, "1");	/* repeat counts are forced to 1 */
	CHECK_STR(s->paths[1].path, "mem:b c");
	CHECK(s->paths[1].active);
	CHECK_EQ_INT(s->paths[1].group, 1);
	CHECK_EQ_INT(s->paths[1].index, 1);
	CHECK_STR(s->paths[2].path, "mem:d");
	CHECK_STR(s->paths[2].table_args, "1 5");
	CHECK_EQ_INT(s->paths[2].group, 2);

	/* The words agree with the status line the engine prints. */
	snprintf(line, sizeof(line), "2 %d %u %s %u %u %c %s %u %u %s %s %u %s",
		 s->queue_io, s->pg_init_count, "0", s->nr_groups, s->current_group,
		 s->groups[0].state, s->groups[0].selector_status, s->groups[0].nr_paths,
		 s->groups[0].nr_status_args, s->paths[0].path,
		 s->paths[0].active ? "A" : "F", s->paths[0].fail_count, "mem:b");
	CHECK(!strncmp(t_status(map), line, strlen(line)));

	/* Counters: the read went to a path of group 1. */
	CHECK_EQ_INT(s->paths[0].stats.ios + s->paths[1].stats.ios, 1);
	CHECK_EQ_INT(s->paths[0].stats.bytes + s->paths[1].stats.bytes, 4096);
	umpath_snapshot_free(s);
	umpath_snapshot_free(NULL);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void check_table_check(void)
{
	const char *names[] = { "x" };
	struct umpath_path_stats st;
	struct umpath_ctx *ctx;
	char err[256];

	CHECK(umpath_ctx_new(NULL, &ctx) == 0);
	CHECK(umpath_mem_store_new(ctx, MiB, 1, names, 0) == 0);

	err[0] = '\0';
	CHECK(umpath_table_check(ctx, "0 0 1 1 round-robin 0 1 1 mem:x 1", err, sizeof(err)) == 0);
	/* Checked, not opened: no map has the path. */
	CHECK(umpath_path_stats(ctx, "mem:x", &st) == -ENOENT);

	CHECK(umpath_table_check(ctx, "0 0 1 1 no-such-ps 0 1 1 mem:x 1", err, sizeof(err)) ==
	      -EINVAL);
	CHECK_STR(err, "unknown path selector type");
	CHECK(umpath_table_check(ctx, "0 0 2 1 round-robin 0 1 1 mem:x 1", err, sizeof(err)) ==
	      -EINVAL);
	CHECK_STR(err, "priority group count mismatch");
	CHECK(umpath_table_check(ctx, "0 0 1 1 round-robin 0 1 1 mem:nosuch 1", err,
				 sizeof(err)) < 0);
	CHECK_STR(err, "error getting device");
	CHECK(umpath_table_check(ctx, "1 bogus 0 0 0", err, sizeof(err)) == -EINVAL);
	CHECK_STR(err, "Unrecognised multipath feature request");
	umpath_ctx_free(ctx);
}

static void check_names(void)
{
	const char *want_ps[] = { "round-robin", "queue-length", "service-time",
				  "historical-service-time" };
	bool mem = false, nbd = false, file = false;
	unsigned i;

	for (i = 0; umpath_selector_name(i); i++)
		CHECK(i < 4 && !strcmp(umpath_selector_name(i), want_ps[i]));
	CHECK_EQ_INT(i, 4);
	for (i = 0; umpath_transport_name(i); i++) {
		mem |= !strcmp(umpath_transport_name(i), "mem");
		nbd |= !strcmp(umpath_transport_name(i), "nbd");
		file |= !strcmp(umpath_transport_name(i), "file");
	}
	CHECK(mem && nbd && file);
}

/* A pool waiter that counts its calls. */
struct waiter {
	struct umpath_pool_wait w;
	atomic_uint fired;
};

static void waiter_fn(struct umpath_pool_wait *w)
{
	struct waiter *wt = (struct waiter *)w;

	atomic_fetch_add(&wt->fired, 1);
}

static void wait_fired(struct waiter *wt, unsigned n)
{
	double end = t_now() + 10;

	while (atomic_load(&wt->fired) < n && t_now() < end)
		sched_yield();
	CHECK_EQ_INT(atomic_load(&wt->fired), n);
}

static void check_pool_wait(void)
{
	struct umpath_ctx *ctx = t_ctx(1, MiB, 2);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 1 1 p0 1");
	struct waiter a = { .w.fn = waiter_fn }, b = { .w.fn = waiter_fn };
	struct t_io io[3];
	static char buf[3][512];

	/* Room now: not armed, retry at once. */
	CHECK(umpath_map_pool_wait(map, &a.w) == 1);
	CHECK(umpath_map_pool_cancel(map, &a.w) == 0);

	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_HANG, 0) == 0);
	for (int i = 0; i < 2; i++) {
		t_io_init(&io[i], UMPATH_OP_READ, 0, 512, buf[i]);
		CHECK(umpath_map_submit(map, &io[i].io) == 0);
	}
	t_io_init(&io[2], UMPATH_OP_READ, 0, 512, buf[2]);
	CHECK(umpath_map_submit(map, &io[2].io) == -EAGAIN);

	/* Full: both armed; a cancelled one never fires. */
	CHECK(umpath_map_pool_wait(map, &a.w) == 0);
	CHECK(umpath_map_pool_wait(map, &a.w) == -EALREADY);
	CHECK(umpath_map_pool_wait(map, &b.w) == 0);
	CHECK(umpath_map_pool_cancel(map, &b.w) == 1);
	CHECK_EQ_INT(atomic_load(&a.fired), 0);

	/* Requests free: the armed waiter fires once, and the retry goes in. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(t_io_wait(&io[0], 10) && t_io_wait(&io[1], 10));
	wait_fired(&a, 1);
	CHECK_EQ_INT(atomic_load(&b.fired), 0);
	CHECK(umpath_map_submit(map, &io[2].io) == 0);
	CHECK(t_io_wait(&io[2], 10) && io[2].err == 0);

	/* A waiter armed when the map is freed fires (its retry: -ENXIO). */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	t_msg(map, "fail_path p0", 0);
	t_msg(map, "queue_if_no_path", 0);
	for (int i = 0; i < 2; i++) {
		t_io_init(&io[i], UMPATH_OP_READ, 0, 512, buf[i]);
		CHECK(umpath_map_submit(map, &io[i].io) == 0);	/* queued */
	}
	CHECK(umpath_map_submit(map, &io[2].io) == -EAGAIN);
	CHECK(umpath_map_pool_wait(map, &a.w) == 0);
	umpath_map_free(map);
	CHECK_EQ_INT(atomic_load(&a.fired), 2);
	CHECK(t_io_wait(&io[0], 10) && io[0].err == -EIO);
	umpath_ctx_free(ctx);
}

/* Reads, writes, a target error and path errors, each counted by kind;
 * the histogram holds every completion, a 20 ms one in its bucket. */
static void check_io_stats(void)
{
	struct umpath_ctx *ctx = t_ctx(2, MiB, 8);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	struct umpath_path_io_stats io0, io1;
	struct umpath_snapshot *s;
	uint64_t n = 0, sum = 0;
	static char buf[8192];

	CHECK(umpath_path_io_stats(ctx, "nosuch", &io0) == -ENOENT);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_OFFLINE, 0) == 0);
	t_msg(map, "fail_path p1", 0);
	CHECK(t_sync(map, UMPATH_OP_READ, 0, 4096, buf) == 0);
	CHECK(t_sync(map, UMPATH_OP_WRITE, 0, 8192, buf) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_DELAY, 20000) == 0);
	CHECK(t_sync(map, UMPATH_OP_READ, 0, 512, buf) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ERROR, ENOSPC) == 0);
	CHECK(t_sync(map, UMPATH_OP_WRITE, 0, 512, buf) == -ENOSPC);
	CHECK(umpath_path_io_stats(ctx, "p0", &io0) == 0);
	CHECK_EQ_INT(io0.read_bytes, 4096 + 512);
	CHECK_EQ_INT(io0.write_bytes, 8192 + 512);
	CHECK_EQ_INT(io0.target_errors, 1);
	CHECK_EQ_INT(io0.path_errors, 0);
	CHECK_EQ_INT(io0.lat_count, 4);
	for (unsigned b = 0; b < UMPATH_LAT_BUCKETS; b++) {
		n += io0.lat_buckets[b];
		if (b >= 25)	/* 2^24 ns < 20 ms: the delayed read is past it */
			sum += io0.lat_buckets[b];
	}
	CHECK_EQ_INT(n, 4);
	CHECK(sum >= 1 && io0.lat_sum_ns >= 20000000);

	/* A path error on p1: reinstated, it fails the I/O, which p0 ends. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ERROR, EIO) == 0);
	t_msg(map, "reinstate_path p1", 0);
	t_msg(map, "fail_path p0", 0);
	t_msg(map, "queue_if_no_path", 0);
	struct t_io io;

	t_io_init(&io, UMPATH_OP_READ, 0, 512, buf);
	CHECK(umpath_map_submit(map, &io.io) == 0);
	t_msg(map, "reinstate_path p0", 0);
	CHECK(t_io_wait(&io, 10) && io.err == 0);
	CHECK(umpath_path_io_stats(ctx, "p1", &io1) == 0);
	CHECK_EQ_INT(io1.path_errors, 1);
	CHECK_EQ_INT(io1.target_errors, 0);
	CHECK_EQ_INT(io1.lat_count, 1);

	/* The snapshot carries the same. */
	CHECK(umpath_map_snapshot(map, &s) == 0);
	CHECK(s->paths[0].io_stats && s->paths[1].io_stats);
	CHECK_EQ_INT(s->paths[1].io_stats->path_errors, 1);
	CHECK_EQ_INT(s->paths[0].io_stats->write_bytes, 8192 + 512);
	umpath_snapshot_free(s);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* umpath_map_resize over two files: refused while they disagree, the
 * map unchanged; then their new size, and I/O past the old end. */
static void check_resize(void)
{
	struct umpath_ctx_opts o = { .pool_size = 8 };
	char dir[] = "/tmp/umpath-test-api.XXXXXX", a[64], b[64], table[256], err[256] = "";
	static char buf[4096];
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	uint64_t size = 0;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	CHECK(close(open(a, O_CREAT | O_RDWR, 0600)) == 0 && truncate(a, MiB) == 0);
	CHECK(close(open(b, O_CREAT | O_RDWR, 0600)) == 0 && truncate(b, MiB) == 0);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", a, b);
	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	if (umpath_map_new(ctx, "rs", table, 0, err, sizeof(err), &map) < 0) {
		printf("resize: skipped, no file paths here: %s\n", err);
		goto out;
	}
	CHECK(umpath_map_resize(map, &size) == 0 && size == MiB);
	CHECK(truncate(a, 2 * MiB) == 0);
	size = 0;
	CHECK(umpath_map_resize(map, &size) == -EINVAL && size == 0);
	CHECK(strstr(umpath_error_detail(), "paths differ in size") != NULL);
	CHECK_EQ_INT(umpath_map_size(map), MiB);
	CHECK(t_sync(map, UMPATH_OP_READ, MiB, 4096, buf) == -EINVAL);
	CHECK(truncate(b, 2 * MiB) == 0);
	CHECK(umpath_map_resize(map, &size) == 0 && size == 2 * MiB);
	CHECK_EQ_INT(umpath_map_size(map), 2 * MiB);
	CHECK(t_sync(map, UMPATH_OP_READ, MiB, 4096, buf) == 0);
	umpath_map_free(map);
out:
	umpath_ctx_free(ctx);
	unlink(a);
	unlink(b);
	rmdir(dir);
}

int main(void)
{
	check_io_stats();
	check_snapshot();
	check_table_check();
	check_names();
	check_pool_wait();
	check_resize();
	return 0;
}
