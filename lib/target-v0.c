/* target-v0.c - the "multipath-v0" target: the 2003 dm-multipath prototype
 * (v0.1.5) on the engine.  Its table is one flat list of paths,
 *
 *   { <path> <priority> <N|L|M> <min-ios> <failure-maximum>
 *     <reactivation-timeout> }...
 *
 * held as one priority group whose selector is ps_v0 (selectors/v0.c:
 * priority, min-ios, latency^4).  What this file adds to the engine:
 *
 * - a path error policy: a path error spends one of the path's
 *   failure-maximum errors and the I/O is retried on the same path; the
 *   error that spends the last fails the path, and the I/O goes elsewhere
 *   (or fails: the prototype had no queueing);
 * - a map timer: reactivation-timeout seconds after a path failed (0:
 *   never) it gets one test read of the block that failed it; success
 *   reinstates it with its budget whole again; failure waits another
 *   timeout;
 * - its TABLE and INFO lines, the prototype's, paths shown by their strings.
 *
 * The prototype had no messages: umpath_map_message refuses them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mpath.h"

#define V0_PATH_ARGS	6
#define V0_FAILURE_MAX	1024
#define V0_TIMEOUT_MAX	(365u * 24 * 60 * 60)	/* seconds */
#define NS_PER_S	1000000000ull

struct v0_table;

struct v0_path_state {
	struct v0_table *t;
	struct pgpath *pgpath;
	unsigned fail_max;		/* errors that fail the path, >= 1 */
	unsigned timeout_s;		/* reactivation timeout, 0: never */
	unsigned fail_left;		/* guarded by map lock: errors still allowed */
	uint64_t fail_ns;		/* guarded by map lock: failed, or last test sent */
	bool have_offset;		/* guarded by map lock: test_offset is set */
	uint64_t test_offset;		/* guarded by map lock: the I/O that failed it */
	bool testing;			/* guarded by map lock: a test read is out */
	bool send;			/* timer thread only: send a test read now */
	struct um_tio tio;		/* the test read */
	void *buf;
};

struct v0_table {
	struct multipath *m;
	struct um_timer timer;		/* reactivation: the next due path */
	unsigned testing;		/* guarded by map lock: test reads out */
	unsigned nr;
	struct v0_path_state paths[];
};

static struct v0_path_state *v0_state(struct pgpath *pgpath)
{
	return pgpath->target_ctx;
}

/* The prototype read each number with "%d" and refused it out of range. */
static int v0_number(const char *arg, int max, unsigned *ret)
{
	int v;

	if (um_parse_int_prefix(arg, &v) < 0 || v < 0 || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static void v0_timer_fn(struct um_timer *timer);

static int v0_parse(struct multipath *m, unsigned argc, char **argv, const char **error)
{
	struct priority_group *pg;
	struct v0_table *t;
	unsigned nr = argc / V0_PATH_ARGS;
	int r;

	if (argc % V0_PATH_ARGS) {
		*error = "dm-multipath: Wrong argument count";
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t) + nr * sizeof(t->paths[0]));
	pg = calloc(1, sizeof(*pg));
	if (!t || !pg) {
		free(t);
		free(pg);
		*error = "dm-multipath: Cannot allocate multipath context";
		return -ENOMEM;
	}
	t->m = m;
	um_timer_init(&t->timer, v0_timer_fn);
	m->target_ctx = t;
	list_init(&pg->pgpaths);
	pg->m = m;
	pg->pg_num = 1;
	list_add_tail(&pg->list, &m->priority_groups);	/* freed with m from here */
	r = ps_v0.create(&pg->ps, 0, NULL);
	if (r < 0)
		return r;
	pg->ps.type = &ps_v0;
	m->nr_priority_groups = 1;

	for (unsigned i = 0; i < nr; i++, argv += V0_PATH_ARGS) {
		struct v0_path_state *st = &t->paths[i];
		struct pgpath *p, *q;

		p = mp_pgpath_alloc(pg);
		if (!p)
			return -ENOMEM;
		/* Listed at once, so that a refusal frees it with m. */
		list_add_tail(&p->list, &pg->pgpaths);
		p->target_ctx = st;
		st->t = t;
		st->pgpath = p;
		/* In the prototype's order: the numbers, then the device, then
		 * whether an earlier path is the same device. */
		r = ps_v0.add_path(&pg->ps, &p->ps, 3, argv + 1, error);
		if (r < 0)
			return r;
		if (v0_number(argv[4], V0_FAILURE_MAX, &st->fail_max) < 0) {
			*error = "dm-multipath: Invalid failure-maximum";
			return -EINVAL;
		}
		if (v0_number(argv[5], (int)V0_TIMEOUT_MAX, &st->timeout_s) < 0) {
			*error = "dm-multipath: Invalid reactivation-timeout";
			return -EINVAL;
		}
		r = mp_pgpath_open(m, p, argv[0]);
		if (r < 0) {
			*error = "dm-multipath: Device lookup failure";
			return r;
		}
		for (unsigned j = 0; j < i; j++) {
			q = t->paths[j].pgpath;
			const char *earlier = argv[-(ptrdiff_t)((i - j) * V0_PATH_ARGS)];

			if (m->check_only ? !strcmp(earlier, argv[0]) : q->path == p->path) {
				*error = "dm-multipath: Same device";
				return -EINVAL;
			}
		}
		pg->nr_pgpaths++;
		m->nr_valid_paths++;
		if (!st->fail_max)
			st->fail_max = 1;
		st->fail_left = st->fail_max;
		t->nr = i + 1;
	}
	return 0;
}

static void v0_destroy(struct multipath *m)
{
	struct v0_table *t = m->target_ctx;

	if (!t)
		return;
	if (m->map) {
		/* The timer first: it may send test reads until it stops. */
		um_timer_cancel(m->ctx->loop, &t->timer);
		map_lock(m->map);
		while (t->testing)
			map_wait_locked(m->map);
		map_unlock_raw(m->map);
	}
	for (unsigned i = 0; i < t->nr; i++)
		free(t->paths[i].buf);
	free(t);
	m->target_ctx = NULL;
}

/* The live table of a map that is not going away: only it may fail,
 * test or reinstate paths. */
static bool v0_live_locked(struct v0_table *t)
{
	struct umpath_map *map = t->m->map;

	return map && !map->dying && map->live == t->m;
}

static bool v0_retry_path_error_locked(struct pgpath *pgpath, uint64_t offset)
{
	struct v0_path_state *st = v0_state(pgpath);
	struct v0_table *t = st->t;

	map_assert_locked(t->m->map);
	if (!pgpath->is_active)
		return false;	/* failed meanwhile: another path takes it */
	if (--st->fail_left)
		return true;	/* within its budget: the same path again */
	st->fail_ns = um_now_ns();
	if (!st->have_offset) {
		st->have_offset = true;
		st->test_offset = offset;
	}
	/* The timer works out when this path is due. */
	if (v0_live_locked(t))
		um_timer_arm(t->m->ctx->loop, &t->timer, 0);
	return false;
}

static void v0_test_done(struct um_tio *tio, int err)
{
	struct v0_path_state *st = container_of(tio, struct v0_path_state, tio);
	struct v0_table *t = st->t;
	struct umpath_map *map = t->m->map;
	bool live;

	map_lock(map);
	st->testing = false;
	live = v0_live_locked(t);
	if (!err && live && !st->pgpath->is_active) {
		st->fail_left = st->fail_max;
		st->have_offset = false;
		reinstate_path_locked(st->pgpath);
	}
	if (!--t->testing)
		map_wake_locked(map);
	/* A table on its way out may be freed as soon as the lock drops:
	 * touch nothing after (no events or kicks were made). */
	if (live)
		map_unlock(map);
	else
		map_unlock_raw(map);
}

static void v0_timer_fn(struct um_timer *timer)
{
	struct v0_table *t = container_of(timer, struct v0_table, timer);
	struct umpath_map *map = t->m->map;
	uint64_t now, next = UINT64_MAX;
	uint32_t bs;

	map_lock(map);
	if (!v0_live_locked(t)) {
		map_unlock_raw(map);
		return;
	}
	bs = map->block_size;
	now = um_now_ns();
	for (unsigned i = 0; i < t->nr; i++) {
		struct v0_path_state *st = &t->paths[i];
		uint64_t timeout = (uint64_t)st->timeout_s * NS_PER_S;

		if (st->pgpath->is_active || !timeout)
			continue;
		if (now - st->fail_ns >= timeout) {
			if (!st->testing && (st->buf || posix_memalign(&st->buf, 4096, bs) == 0)) {
				st->testing = true;
				st->send = true;
				t->testing++;
			}
			/* Sent or not, the next try is a timeout away. */
			st->fail_ns = now;
		}
		if (st->fail_ns + timeout - now < next)
			next = st->fail_ns + timeout - now;
	}
	if (next != UINT64_MAX)
		um_timer_arm(map->ctx->loop, &t->timer, next);
	map_unlock_raw(map);

	/* Outside the lock; destroy waits for these before freeing. */
	for (unsigned i = 0; i < t->nr; i++) {
		struct v0_path_state *st = &t->paths[i];
		struct um_path *p = st->pgpath->path;

		if (!st->send)
			continue;
		st->send = false;
		memset(&st->tio, 0, sizeof(st->tio));
		list_init(&st->tio.tp_node);
		st->tio.op = UMPATH_OP_READ;
		st->tio.offset = st->test_offset / bs * bs;
		if (st->tio.offset + bs > p->size)
			st->tio.offset = p->size >= bs ? (p->size - bs) / bs * bs : 0;
		st->tio.length = p->size >= bs ? bs : p->size;
		st->tio.buf = st->buf;
		st->tio.done = v0_test_done;
		um_path_submit(p, &st->tio);
	}
}

/* "<path> <priority> <N|L|M> <min-ios> <failure-maximum> <timeout>" each. */
static void v0_table_emit(struct multipath *m, struct sbuf *sb)
{
	struct v0_table *t = m->target_ctx;

	for (unsigned i = 0; i < t->nr; i++) {
		struct pgpath *p = t->paths[i].pgpath;

		sbuf_word(sb, p->path->name);
		p->pg->ps.type->status(&p->pg->ps, &p->ps, PS_STATUS_TABLE, sb);
		sbuf_printf(sb, "%u %u ", t->paths[i].fail_max, t->paths[i].timeout_s);
	}
	sbuf_trim(sb);
}

/* "<path> O" or "<path> I(<seconds failed>/<timeout>)", then "[<failures>]"
 * once it ever failed. */
static void v0_status_emit(struct multipath *m, struct sbuf *sb)
{
	struct v0_table *t = m->target_ctx;
	uint64_t now = um_now_ns();

	for (unsigned i = 0; i < t->nr; i++) {
		struct v0_path_state *st = &t->paths[i];
		struct pgpath *p = st->pgpath;

		sbuf_word(sb, p->path->name);
		if (p->is_active)
			sbuf_printf(sb, "O");
		else
			sbuf_printf(sb, "I(%llu/%u)",
				    (unsigned long long)((now - st->fail_ns) / NS_PER_S),
				    st->timeout_s);
		if (p->fail_count)
			sbuf_printf(sb, "[%u]", p->fail_count);
		sbuf_printf(sb, " ");
	}
	sbuf_trim(sb);
}

const struct mp_target mp_target_v0 = {
	.name = "multipath-v0",
	.parse = v0_parse,
	.destroy = v0_destroy,
	.table_emit = v0_table_emit,
	.status_emit = v0_status_emit,
	.retry_path_error_locked = v0_retry_path_error_locked,
	.takes_messages = false,
};
