/* demo.c - `umpath demo`: a live multipath map over in-memory paths.  Two
 * worker threads write and verify blocks without pause while paths fail, a
 * whole group dies, every path dies (I/O queues), and paths come back; the
 * event callback prints each failover as it happens, and at the end every
 * acknowledged write is read back and checked.  Exit 0 only if nothing
 * acknowledged was lost and no I/O failed. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "cli.h"

#define DEMO_BLOCK 4096u
#define DEMO_BLOCKS 4096u	/* 16 MiB */
#define DEMO_WORKERS 2

struct demo {
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	struct timespec t0;
	_Atomic bool stop;
	_Atomic uint64_t ios, errors, mismatches;
	/* The generation last acknowledged for each block; workers own
	 * disjoint blocks (block % DEMO_WORKERS), so no lock is needed. */
	uint32_t gen[DEMO_BLOCKS];
};

static double demo_elapsed(struct demo *d)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - d->t0.tv_sec) + (double)(t.tv_nsec - d->t0.tv_nsec) / 1e9;
}

static void fill(uint8_t *buf, unsigned block, uint32_t gen)
{
	for (unsigned i = 0; i < DEMO_BLOCK; i += 8) {
		memcpy(buf + i, &block, 4);
		memcpy(buf + i + 4, &gen, 4);
	}
}

static bool check(const uint8_t *buf, unsigned block, uint32_t gen)
{
	uint8_t want[DEMO_BLOCK];

	if (!gen) {
		for (unsigned i = 0; i < DEMO_BLOCK; i++)
			if (buf[i])
				return false;
		return true;
	}
	fill(want, block, gen);
	return !memcmp(buf, want, DEMO_BLOCK);
}

struct worker {
	struct demo *d;
	unsigned id;
	pthread_t thread;
};

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct demo *d = w->d;
	uint8_t buf[DEMO_BLOCK];
	unsigned seed = w->id * 7919u + 1;

	while (!d->stop) {
		unsigned block = (unsigned)(rand_r(&seed) % (DEMO_BLOCKS / DEMO_WORKERS)) * DEMO_WORKERS + w->id;
		uint64_t off = (uint64_t)block * DEMO_BLOCK;
		int r;

		if (rand_r(&seed) % 2) {
			uint32_t gen = d->gen[block] + 1;

			fill(buf, block, gen);
			r = cli_sync_io(d->map, UMPATH_OP_WRITE, off, DEMO_BLOCK, buf);
			if (!r)
				d->gen[block] = gen;
		} else {
			r = cli_sync_io(d->map, UMPATH_OP_READ, off, DEMO_BLOCK, buf);
			if (!r && !check(buf, block, d->gen[block]))
				d->mismatches++;
		}
		d->ios++;
		if (r) {
			d->errors++;
			fprintf(stderr, "[%6.2fs] I/O error: %s\n", demo_elapsed(d), strerror(-r));
		}
	}
	return NULL;
}

static void on_event(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	struct demo *d = opaque;
	static const char *const names[] = {
		[UMPATH_EV_PATH_FAILED] = "path failed",
		[UMPATH_EV_PATH_REINSTATED] = "path reinstated",
		[UMPATH_EV_GROUP_BYPASSED] = "group bypassed",
		[UMPATH_EV_GROUP_ENABLED] = "group enabled",
		[UMPATH_EV_GROUP_SWITCHED] = "group switched",
		[UMPATH_EV_TABLE_SWAPPED] = "table swapped",
		[UMPATH_EV_QUEUE_MODE] = "queue_if_no_path changed",
	};

	printf("[%6.2fs]   event %u: %s", demo_elapsed(d), ev->event_nr, names[ev->type]);
	if (ev->path)
		printf(" %s", ev->path);
	if (ev->group)
		printf(" (group %u)", ev->group);
	printf(", %u valid paths\n", ev->nr_valid_paths);
}

static void show(struct demo *d, const char *what)
{
	char buf[1024];
	static uint64_t last_ios;
	uint64_t ios = d->ios;

	umpath_map_status(d->map, buf, sizeof(buf));
	printf("[%6.2fs] %s\n           status: %s\n           I/O so far: %llu (+%llu), errors %llu\n",
	       demo_elapsed(d), what, buf, (unsigned long long)ios,
	       (unsigned long long)(ios - last_ios), (unsigned long long)d->errors);
	last_ios = ios;
}

static void step(struct demo *d, unsigned ms, const char *what)
{
	printf("\n[%6.2fs] >>> %s\n", demo_elapsed(d), what);
	usleep(ms * 1000u);
}

static void msg(struct demo *d, const char *m)
{
	int r = umpath_map_message_str(d->map, m);

	printf("[%6.2fs] message %s: %s\n", demo_elapsed(d), m, r ? strerror(-r) : "ok");
}

static void fault(struct demo *d, const char *path, enum umpath_mem_fault f)
{
	char name[32];
	int r;

	snprintf(name, sizeof(name), "mem:%s", path);
	r = umpath_mem_set_fault(d->ctx, name, f, 0);
	if (r < 0) {
		fprintf(stderr, "umpath demo: cannot set %s: %s\n", name, strerror(-r));
		exit(1);
	}
}

int cli_demo(int argc, char **argv)
{
	static const char *const names[] = { "a0", "a1", "b0", "b1" };
	static const char table[] = "1 queue_if_no_path 0 2 1 "
				    "service-time 0 2 2 mem:a0 1 1 mem:a1 1 1 "
				    "round-robin 0 2 1 mem:b0 1 mem:b1 1";
	struct worker workers[DEMO_WORKERS];
	struct demo *d = calloc(1, sizeof(*d));
	unsigned ms = argc > 0 && !strcmp(argv[0], "--quick") ? 150 : 1000;
	char err[256], buf[1024];
	uint8_t block[DEMO_BLOCK];
	int r, ret = 1;

	if (!d)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &d->t0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = umpath_ctx_new(NULL, &d->ctx);
	if (r < 0)
		goto out;
	r = umpath_mem_store_new(d->ctx, (uint64_t)DEMO_BLOCKS * DEMO_BLOCK, 4, names, 0);
	if (r < 0)
		goto out;
	r = umpath_map_new(d->ctx, "demo", table, 0, err, sizeof(err), &d->map);
	if (r < 0) {
		fprintf(stderr, "umpath: demo table refused: %s\n", err);
		goto out;
	}
	umpath_map_set_event_cb(d->map, on_event, d);
	umpath_map_table(d->map, buf, sizeof(buf));
	printf("umpath demo: map 'demo', %u MiB over 4 in-memory paths of one store\n"
	       "table: 0 %u multipath %s\n"
	       "two groups: service-time over a0,a1 (current), round-robin over b0,b1;\n"
	       "%d workers write and verify 4 KiB blocks throughout.\n",
	       DEMO_BLOCKS * DEMO_BLOCK >> 20, DEMO_BLOCKS * (DEMO_BLOCK / UMPATH_SECTOR_SIZE), buf,
	       DEMO_WORKERS);

	for (unsigned i = 0; i < DEMO_WORKERS; i++) {
		workers[i] = (struct worker){ .d = d, .id = i };
		pthread_create(&workers[i].thread, NULL, worker_thread, &workers[i]);
	}

	step(d, ms, "I/O running on group 1");
	show(d, "all paths up");

	step(d, 0, "path a0 goes offline (every I/O to it fails)");
	fault(d, "a0", UMPATH_MEM_OFFLINE);
	usleep(ms * 1000u);
	show(d, "a0 failed on I/O, a1 carries the group");

	step(d, 0, "path a1 goes offline too: the whole group is gone");
	fault(d, "a1", UMPATH_MEM_OFFLINE);
	usleep(ms * 1000u);
	show(d, "I/O moved to group 2");

	step(d, 0, "b0 and b1 go offline: no path left, queue_if_no_path holds the I/O");
	fault(d, "b0", UMPATH_MEM_OFFLINE);
	fault(d, "b1", UMPATH_MEM_OFFLINE);
	usleep(ms * 1000u);
	show(d, "I/O queued, nothing failed");

	step(d, 0, "b1 comes back and is reinstated: queued I/O completes");
	fault(d, "b1", UMPATH_MEM_ONLINE);
	msg(d, "reinstate_path mem:b1");
	usleep(ms * 1000u);
	show(d, "I/O flows through b1");

	step(d, 0, "a0, a1 and b0 come back; reinstate them and switch back to group 1");
	for (unsigned i = 0; i < 3; i++) {
		char m[64];
		const char *p = i == 2 ? "b0" : names[i];

		fault(d, p, UMPATH_MEM_ONLINE);
		snprintf(m, sizeof(m), "reinstate_path mem:%s", p);
		msg(d, m);
	}
	msg(d, "switch_group 1");
	usleep(ms * 1000u);
	show(d, "back on group 1");

	d->stop = true;
	for (unsigned i = 0; i < DEMO_WORKERS; i++)
		pthread_join(workers[i].thread, NULL);
	r = cli_sync_io(d->map, UMPATH_OP_FLUSH, 0, 0, NULL);
	if (r)
		d->errors++;

	uint64_t bad = 0;
	for (unsigned b = 0; b < DEMO_BLOCKS; b++) {
		r = cli_sync_io(d->map, UMPATH_OP_READ, (uint64_t)b * DEMO_BLOCK, DEMO_BLOCK, block);
		if (r || !check(block, b, d->gen[b]))
			bad++;
	}
	printf("\n[%6.2fs] verified all %u blocks against every acknowledged write: %llu bad; "
	       "%llu I/Os, %llu errors, %llu read mismatches during the run\n",
	       demo_elapsed(d), DEMO_BLOCKS, (unsigned long long)bad, (unsigned long long)d->ios,
	       (unsigned long long)d->errors, (unsigned long long)d->mismatches);
	ret = bad || d->errors || d->mismatches ? 1 : 0;
	printf("%s\n", ret ? "FAILED: data was lost or I/O failed" : "OK: no error reached the workers, nothing was lost");
out:
	if (r < 0 && ret)
		fprintf(stderr, "umpath demo: %s\n", strerror(-r));
	umpath_map_free(d->map);
	if (d->ctx)
		umpath_ctx_free(d->ctx);
	free(d);
	return ret;
}
