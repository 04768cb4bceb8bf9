/* Description: the I/O lifecycle of a map - failover on path errors, target
 * errors returned without failing the path, queueing with and without
 * queue_if_no_path, hung paths, the bounded request pool, suspend/resume
 * and reload with queued I/O (a flushing suspend keeps it queued, as Linux
 * does for request-based maps), events, and removal with I/O queued. */
#include "testlib.h"

#define SIZE (8u << 20)
#define BS 4096u

static void test_failover_keeps_data(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 3 1 p0 1 p1 1 p2 1");
	static unsigned char w[BS], r[BS];

	for (unsigned i = 0; i < 64; i++) {
		t_fill(w, BS, i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * BS, BS, w), 0);
	}
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_OFFLINE, 0) == 0);
	for (unsigned i = 0; i < 64; i++) {
		t_fill(w, BS, i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)i * BS, BS, r), 0);
		CHECK(!memcmp(w, r, BS));
	}
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 3 0 p0 A 0 p1 F 1 p2 A 0");
	/* p1 saw exactly one I/O after going offline: the one that failed it. */
	uint64_t before = t_ios(ctx, "p1");
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK_EQ_INT(t_ios(ctx, "p1"), before);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_target_error_keeps_path(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char buf[BS];

	/* ENOSPC is the request's fault: returned as is, no path failed. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ERROR, ENOSPC) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ERROR, ENOSPC) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), -ENOSPC);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), -ENOSPC);
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 2 0 p0 A 0 p1 A 0");
	/* ETIMEDOUT, ECONNRESET are path errors: fail over. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ERROR, ETIMEDOUT) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, buf), 0);
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 2 0 p0 F 1 p1 A 0");
	/* Out of range is refused at submission, no done() call. */
	struct t_io t;
	t_io_init(&t, UMPATH_OP_READ, SIZE - 512, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), -EINVAL);
	CHECK(!t_io_is_done(&t));
	CHECK(umpath_is_path_error(-EIO) && umpath_is_path_error(-ENOTCONN) &&
	      umpath_is_path_error(-ECONNRESET) && umpath_is_path_error(-EPIPE) &&
	      umpath_is_path_error(-ESHUTDOWN) && umpath_is_path_error(-ETIMEDOUT) &&
	      umpath_is_path_error(-ENXIO));
	CHECK(!umpath_is_path_error(-ENOSPC) && !umpath_is_path_error(-EINVAL) &&
	      !umpath_is_path_error(-EOPNOTSUPP) && !umpath_is_path_error(-EPERM) &&
	      !umpath_is_path_error(-EROFS) && !umpath_is_path_error(-EOVERFLOW) &&
	      !umpath_is_path_error(0));
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_queue_if_no_path(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map =
		t_map(ctx, "1 queue_if_no_path 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char w[BS], r[BS];
	struct t_io a, b;

	t_fill(w, BS, 7);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_OFFLINE, 0) == 0);
	t_io_init(&a, UMPATH_OP_WRITE, BS, BS, w);
	CHECK_EQ_INT(umpath_map_submit(map, &a.io), 0);
	CHECK(!t_io_wait(&a, 0.2));	/* queued, not failed */
	CHECK_STR(t_status(map), "2 0 0 0 1 1 E 0 2 0 p0 F 1 p1 F 1");
	/* Coming back online is not enough: the kernel needs reinstate_path. */
	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_ONLINE, 0) == 0);
	CHECK(!t_io_wait(&a, 0.1));
	t_msg(map, "reinstate_path p1", 0);
	CHECK(t_io_wait(&a, 5));
	CHECK_EQ_INT(a.err, 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, BS, BS, r), 0);
	CHECK(!memcmp(w, r, BS));

	/* Queued again, then fail_if_no_path releases it with EIO. */
	t_msg(map, "fail_path p1", 0);
	t_io_init(&b, UMPATH_OP_READ, 0, BS, r);
	CHECK_EQ_INT(umpath_map_submit(map, &b.io), 0);
	CHECK(!t_io_wait(&b, 0.1));
	t_msg(map, "fail_if_no_path", 0);
	CHECK(t_io_wait(&b, 5));
	CHECK_EQ_INT(b.err, -EIO);
	CHECK_STR(t_table(map), "0 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_hung_path(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 queue-length 0 2 1 p0 1 p1 1");
	static unsigned char buf[BS];
	struct t_io a, b;

	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_HANG, 0) == 0);
	t_io_init(&a, UMPATH_OP_READ, 0, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &a.io), 0);
	CHECK(!t_io_wait(&a, 0.1));
	/* queue-length sends the next I/O to the idle path. */
	t_io_init(&b, UMPATH_OP_READ, 0, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &b.io), 0);
	CHECK(t_io_wait(&b, 5));
	CHECK_EQ_INT(b.err, 0);
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 2 1 p0 A 0 1 p1 A 0 0");
	/* The hang ends in an error: the held I/O fails over to p1. */
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK(t_io_wait(&a, 5));
	CHECK_EQ_INT(a.err, 0);
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 2 1 p0 F 1 0 p1 A 0 0");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_pool_is_bounded(void)
{
	struct umpath_ctx *ctx = t_ctx(1, SIZE, 4);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 1 0 p0");
	static unsigned char buf[BS];
	struct t_io t[5];

	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_HANG, 0) == 0);
	for (int i = 0; i < 4; i++) {
		t_io_init(&t[i], UMPATH_OP_READ, 0, BS, buf);
		CHECK_EQ_INT(umpath_map_submit(map, &t[i].io), 0);
	}
	t_io_init(&t[4], UMPATH_OP_READ, 0, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &t[4].io), -EAGAIN);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_ONLINE, 0) == 0);
	for (int i = 0; i < 4; i++) {
		CHECK(t_io_wait(&t[i], 5));
		CHECK_EQ_INT(t[i].err, 0);
	}
	CHECK_EQ_INT(umpath_map_submit(map, &t[4].io), 0);
	CHECK(t_io_wait(&t[4], 5));
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_reload_keeps_queued_io(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map =
		t_map(ctx, "1 queue_if_no_path 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char w[BS], r[BS];
	struct t_io a, held;
	char err[256];

	t_fill(w, BS, 3);
	t_msg(map, "fail_path p0", 0);
	t_msg(map, "fail_path p1", 0);
	t_io_init(&a, UMPATH_OP_WRITE, 2 * BS, BS, w);
	CHECK_EQ_INT(umpath_map_submit(map, &a.io), 0);
	CHECK(!t_io_wait(&a, 0.1));

	/* A new table with a working path; a noflush suspend keeps the
	 * queued write, and resume sends it through the new table. */
	CHECK_EQ_INT(umpath_map_load(map, "0 0 1 1 round-robin 0 1 1 p2 1", err, sizeof(err)), 0);
	CHECK_EQ_INT(umpath_map_suspend(map, UMPATH_SUSPEND_NOFLUSH), 0);
	CHECK(umpath_map_is_suspended(map));
	CHECK(!t_io_is_done(&a));
	t_msg(map, "reinstate_path p0", -EBUSY);
	/* New I/O while suspended is held, not failed. */
	t_io_init(&held, UMPATH_OP_READ, 2 * BS, BS, r);
	CHECK_EQ_INT(umpath_map_submit(map, &held.io), 0);
	CHECK(!t_io_wait(&held, 0.1));
	CHECK_EQ_INT(umpath_map_resume(map), 0);
	CHECK(t_io_wait(&a, 5));
	CHECK_EQ_INT(a.err, 0);
	CHECK(t_io_wait(&held, 5));
	CHECK_EQ_INT(held.err, 0);
	CHECK(!memcmp(w, r, BS));	/* the held read came after the write */
	CHECK_STR(t_table(map), "0 0 1 1 round-robin 0 1 1 p2 1");
	CHECK_STR(t_status(map), "2 0 0 0 1 1 A 0 1 0 p2 A 0");
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* Linux 6.12 (request-based, the default): a flushing suspend lends
 * queue_if_no_path away but queued I/O stays queued through it; bio-based
 * maps fail it, since their suspend would wait on it. */
static void test_flushing_suspend_keeps_queued(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map =
		t_map(ctx, "1 queue_if_no_path 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char buf[BS];
	struct t_io a;

	t_msg(map, "fail_path p0", 0);
	t_msg(map, "fail_path p1", 0);
	t_io_init(&a, UMPATH_OP_READ, 0, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &a.io), 0);
	CHECK(!t_io_wait(&a, 0.1));
	CHECK_EQ_INT(umpath_map_suspend(map, 0), 0);
	CHECK(!t_io_wait(&a, 0.2));
	CHECK_STR(t_table(map), "0 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	CHECK_EQ_INT(umpath_map_resume(map), 0);
	/* queue_if_no_path was only lent to the suspend */
	CHECK_STR(t_table(map), "1 queue_if_no_path 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	CHECK(!t_io_wait(&a, 0.1));
	t_msg(map, "reinstate_path p1", 0);
	CHECK(t_io_wait(&a, 5));
	CHECK_EQ_INT(a.err, 0);
	umpath_map_free(map);

	map = t_map(ctx, "3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	t_msg(map, "fail_path p0", 0);
	t_msg(map, "fail_path p1", 0);
	t_io_init(&a, UMPATH_OP_READ, 0, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &a.io), 0);
	CHECK(!t_io_wait(&a, 0.1));
	CHECK_EQ_INT(umpath_map_suspend(map, 0), 0);
	CHECK(t_io_wait(&a, 5));
	CHECK_EQ_INT(a.err, -EIO);
	CHECK_EQ_INT(umpath_map_resume(map), 0);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

struct ev_count {
	pthread_mutex_t lock;
	unsigned failed, reinstated, switched, bypassed;
	char last_path[64];
};

static void on_event(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	struct ev_count *c = opaque;

	pthread_mutex_lock(&c->lock);
	switch (ev->type) {
	case UMPATH_EV_PATH_FAILED:
		c->failed++;
		snprintf(c->last_path, sizeof(c->last_path), "%s", ev->path);
		break;
	case UMPATH_EV_PATH_REINSTATED:
		c->reinstated++;
		break;
	case UMPATH_EV_GROUP_SWITCHED:
		c->switched++;
		break;
	case UMPATH_EV_GROUP_BYPASSED:
		c->bypassed++;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&c->lock);
}

static void test_events(void)
{
	struct umpath_ctx *ctx = t_ctx(3, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 2 1 round-robin 0 2 1 p0 1 p1 1 round-robin 0 1 1 p2 1");
	struct ev_count c = { .failed = 0 };
	static unsigned char buf[BS];
	uint32_t nr0 = umpath_map_event_nr(map);

	pthread_mutex_init(&c.lock, NULL);
	umpath_map_set_event_cb(map, on_event, &c);
	CHECK(umpath_mem_set_fault(ctx, "p0", UMPATH_MEM_OFFLINE, 0) == 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, buf), 0);
	t_msg(map, "reinstate_path p0", 0);
	t_msg(map, "switch_group 2", 0);
	t_msg(map, "disable_group 1", 0);
	CHECK_EQ_INT(c.failed, 1);
	CHECK_STR(c.last_path, "p0");
	CHECK_EQ_INT(c.reinstated, 1);
	CHECK_EQ_INT(c.switched, 1);
	CHECK_EQ_INT(c.bypassed, 1);
	CHECK_EQ_INT(umpath_map_event_nr(map) - nr0, 4);
	umpath_map_set_event_cb(map, NULL, NULL);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* A path listed 100 times, failed by one message: one event with the final
 * state (the engine once stopped at 64 events, the last saying 36 valid
 * paths while none was). */
struct ev_log {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n, failed, lost_events, lost;
	unsigned last_valid;
	enum umpath_event_type last_type;
	bool block, blocked;		/* the first callback waits for release */
};

static void on_event_log(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	struct ev_log *l = opaque;

	(void)map;
	pthread_mutex_lock(&l->lock);
	l->n++;
	l->failed += ev->type == UMPATH_EV_PATH_FAILED;
	if (ev->type == UMPATH_EV_EVENTS_LOST) {
		l->lost_events++;
		l->lost += ev->lost;
	}
	l->last_valid = ev->nr_valid_paths;
	l->last_type = ev->type;
	l->blocked = l->block;
	pthread_cond_broadcast(&l->cond);
	while (l->block)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

static void test_events_path_listed_often(void)
{
	struct umpath_ctx *ctx = t_ctx(1, SIZE, 0);
	char table[2048];
	int n = snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 100 0");
	struct ev_log l = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct umpath_map_info info;
	struct umpath_map *map;

	for (int i = 0; i < 100; i++)
		n += snprintf(table + n, sizeof(table) - (size_t)n, " p0");
	map = t_map(ctx, table);
	umpath_map_set_event_cb(map, on_event_log, &l);
	t_msg(map, "fail_path p0", 0);
	CHECK_EQ_INT(l.n, 1);
	CHECK_EQ_INT(l.failed, 1);
	CHECK_EQ_INT(l.last_valid, 0);
	CHECK_EQ_INT(umpath_map_info(map, &info), 0);
	CHECK_EQ_INT(info.nr_valid_paths, 0);
	t_msg(map, "reinstate_path p0", 0);
	CHECK_EQ_INT(l.n, 2);
	CHECK_EQ_INT(l.last_valid, 100);
	umpath_map_set_event_cb(map, NULL, NULL);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void *fail_p0(void *arg)
{
	t_msg(arg, "fail_path p0", 0);
	return NULL;
}

/* A callback that does not return while events keep coming: the engine
 * keeps a bounded number, drops the newest and says so, last, with the
 * state as it is. */
static void test_events_lost_notice(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 2 0 p0 p1");
	struct ev_log l = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
			    .block = true };
	const unsigned flips = 5001;	/* reinstate, fail, ...: ends reinstated */
	pthread_t t;

	umpath_map_set_event_cb(map, on_event_log, &l);
	CHECK_EQ_INT(pthread_create(&t, NULL, fail_p0, map), 0);
	pthread_mutex_lock(&l.lock);
	while (!l.blocked)
		pthread_cond_wait(&l.cond, &l.lock);
	pthread_mutex_unlock(&l.lock);
	/* The thread delivering is stuck in the callback: these pile up. */
	for (unsigned i = 0; i < flips; i++)
		t_msg(map, i % 2 ? "fail_path p0" : "reinstate_path p0", 0);
	pthread_mutex_lock(&l.lock);
	l.block = false;
	pthread_cond_broadcast(&l.cond);
	pthread_mutex_unlock(&l.lock);
	CHECK_EQ_INT(pthread_join(t, NULL), 0);
	/* 1 before the pile, then 4096 kept, then the notice. */
	CHECK_EQ_INT(l.lost_events, 1);
	CHECK_EQ_INT(l.lost, flips - 4096);
	CHECK_EQ_INT(l.n, 1 + 4096 + 1);
	CHECK_EQ_INT(l.last_type, UMPATH_EV_EVENTS_LOST);
	CHECK_EQ_INT(l.last_valid, 2);
	umpath_map_set_event_cb(map, NULL, NULL);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_free_with_queued_io(void)
{
	struct umpath_ctx *ctx = t_ctx(1, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "1 queue_if_no_path 0 1 1 round-robin 0 1 0 p0");
	static unsigned char buf[BS];
	struct t_io a;

	t_msg(map, "fail_path p0", 0);
	t_io_init(&a, UMPATH_OP_READ, 0, BS, buf);
	CHECK_EQ_INT(umpath_map_submit(map, &a.io), 0);
	CHECK(!t_io_wait(&a, 0.05));
	umpath_map_free(map);
	CHECK(t_io_is_done(&a));
	CHECK_EQ_INT(a.err, -EIO);
	umpath_ctx_free(ctx);
}

static void test_trim_and_zeroes(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 2 1 p0 1 p1 1");
	static unsigned char w[2 * BS], r[2 * BS], z[2 * BS];
	struct t_io t;

	t_fill(w, sizeof(w), 9);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, sizeof(w), w), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 0, BS, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, BS, BS, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(r), r), 0);
	CHECK(!memcmp(r, z, sizeof(z)));
	/* a FUA write completes like any write */
	t_io_init(&t, UMPATH_OP_WRITE, 0, BS, w);
	t.io.flags = UMPATH_IO_FUA;
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
	CHECK(t_io_wait(&t, 5));
	CHECK_EQ_INT(t.err, 0);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* The API accepts a read or write of length 0 with no buffer: it completes
 * without touching memory (UBSan: no NULL to memcpy). */
static void test_zero_length_io(void)
{
	struct umpath_ctx *ctx = t_ctx(1, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "0 0 1 1 round-robin 0 1 0 p0");

	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, BS, 0, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, SIZE, 0, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 0, 0, NULL), 0);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

static void test_concurrent_io_with_faults(void);

/* A path's counters are summed over every map and table that uses it,
 * survive a reload that drops it from one map (the old table's counts go
 * to the path), and leave nothing in flight. */
static void test_path_stats_across_tables(void)
{
	struct umpath_ctx *ctx = t_ctx(2, SIZE, 0);
	struct umpath_map *m1 = t_map(ctx, "0 0 1 1 round-robin 0 2 1 p0 1 p0 1");
	struct umpath_map *m2;
	struct umpath_path_stats st;
	struct umpath_path_io_stats io;
	static unsigned char buf[BS];
	char err[256] = "";

	CHECK_EQ_INT(umpath_map_new(ctx, "t2", "0 0 1 1 round-robin 0 1 1 p0 1", 0, err,
				    sizeof(err), &m2), 0);
	for (unsigned i = 0; i < 10; i++)
		CHECK_EQ_INT(t_sync(m1, UMPATH_OP_READ, 0, BS, buf), 0);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ_INT(t_sync(m2, UMPATH_OP_WRITE, 0, BS, buf), 0);
	CHECK_EQ_INT(umpath_path_stats(ctx, "p0", &st), 0);
	CHECK_EQ_INT(st.ios, 15);
	CHECK_EQ_INT(st.bytes, 15 * BS);
	CHECK_EQ_INT(st.inflight, 0);
	CHECK_EQ_INT(st.errors, 0);

	CHECK_EQ_INT(umpath_map_load(m1, "0 0 1 1 round-robin 0 1 1 p1 1", err, sizeof(err)), 0);
	CHECK_EQ_INT(umpath_map_suspend(m1, 0), 0);
	CHECK_EQ_INT(umpath_map_resume(m1), 0);
	CHECK_EQ_INT(t_sync(m1, UMPATH_OP_READ, 0, BS, buf), 0);
	CHECK_EQ_INT(umpath_path_stats(ctx, "p0", &st), 0);
	CHECK_EQ_INT(st.ios, 15);
	CHECK_EQ_INT(st.inflight, 0);
	CHECK_EQ_INT(umpath_path_io_stats(ctx, "p0", &io), 0);
	CHECK_EQ_INT(io.read_bytes, 10 * BS);
	CHECK_EQ_INT(io.write_bytes, 5 * BS);
	CHECK_EQ_INT(io.lat_count, 15);
	CHECK_EQ_INT(umpath_path_stats(ctx, "p1", &st), 0);
	CHECK_EQ_INT(st.ios, 1);
	umpath_map_free(m2);
	umpath_map_free(m1);
	umpath_ctx_free(ctx);
}

int main(void)
{
	test_failover_keeps_data();
	test_target_error_keeps_path();
	test_queue_if_no_path();
	test_hung_path();
	test_pool_is_bounded();
	test_reload_keeps_queued_io();
	test_flushing_suspend_keeps_queued();
	test_events();
	test_events_path_listed_often();
	test_events_lost_notice();
	test_free_with_queued_io();
	test_trim_and_zeroes();
	test_zero_length_io();
	test_concurrent_io_with_faults();
	test_path_stats_across_tables();
	printf("test-map-io: all passed\n");
	return 0;
}

/* Several threads, delayed paths, faults flipping underneath: every I/O
 * completes exactly once, without error, and the data is intact. */
struct worker {
	struct umpath_map *map;
	unsigned id;
	unsigned errors;
	pthread_t thread;
};

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	unsigned char wb[BS], rb[BS];

	for (unsigned i = 0; i < 400; i++) {
		uint64_t off = ((uint64_t)(i % 64) * 4 + w->id) * BS;

		t_fill(wb, BS, w->id * 1000 + i);
		if (t_sync(w->map, UMPATH_OP_WRITE, off, BS, wb))
			w->errors++;
		if (t_sync(w->map, UMPATH_OP_READ, off, BS, rb) || memcmp(wb, rb, BS))
			w->errors++;
	}
	return NULL;
}

static void test_concurrent_io_with_faults(void)
{
	struct umpath_ctx *ctx = t_ctx(4, SIZE, 0);
	struct umpath_map *map = t_map(ctx, "1 queue_if_no_path 0 2 1 "
				       "service-time 0 2 2 p0 1 1 p1 1 1 round-robin 0 2 1 p2 1 p3 1");
	struct worker w[4];
	static const char *const names[] = { "p0", "p1", "p2", "p3" };

	CHECK(umpath_mem_set_fault(ctx, "p1", UMPATH_MEM_DELAY, 200) == 0);
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ .map = map, .id = i };
		CHECK(pthread_create(&w[i].thread, NULL, worker_fn, &w[i]) == 0);
	}
	for (unsigned round = 0; round < 20; round++) {
		const char *p = names[round % 4];
		char msg[64];

		usleep(5000);
		CHECK(umpath_mem_set_fault(ctx, p, UMPATH_MEM_OFFLINE, 0) == 0);
		usleep(5000);
		CHECK(umpath_mem_set_fault(ctx, p, p[1] == '1' ? UMPATH_MEM_DELAY : UMPATH_MEM_ONLINE,
					   200) == 0);
		snprintf(msg, sizeof(msg), "reinstate_path %s", p);
		t_msg(map, msg, 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(w[i].thread, NULL);
		CHECK_EQ_INT(w[i].errors, 0);
	}
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}
