/* v0.c - the path selection of the 2003 dm-multipath prototype (v0.1.5),
 * the multipath-v0 target's selector: one flat list of paths, each with a
 * priority and a load-balancing mode.
 *
 * I/O stays on the current path (the first of the highest priority to
 * begin with).  A path in mode L hands over after min-ios I/Os to the next
 * selectable path of its priority, in table order, round; in mode M it
 * hands over only to such a path whose sum of latency^4 (each I/O's, in
 * milliseconds, so one stall outweighs many quick answers) is no larger
 * than its own; in mode N it stays until it fails.  A failed current path
 * gives way to the next selectable one of its priority, else to the first
 * of the highest priority left.  Every path's latency sum starts again
 * when a failed path comes back.
 *
 * Per-path arguments: <priority 0..8192> <N|L|M> <min-ios 0..8192, 0: 1>.
 * Not in the registry by name: a multipath table cannot ask for it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ioclock.h"
#include "selector.h"

#define V0_PRIORITY_MAX	8192
#define V0_IOS_MAX	8192

struct v0_path {
	struct ps_path *path;
	int priority;
	char mode;		/* 'N' none, 'L' load-balanced, 'M' maximize throughput */
	unsigned ios_min;
	unsigned ios_left;	/* I/Os until a load-balanced path hands over */
	uint64_t latency;	/* sum of latency^4 in ms, saturating */
	bool selectable;
};

struct v0_selector {
	struct v0_path **paths;	/* in table order */
	unsigned nr, cap;
	int current;		/* index of the current path, -1: none */
};

static int v0_create(struct path_selector *ps, unsigned argc, char **argv)
{
	struct v0_selector *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->current = -1;
	ps->context = s;
	return 0;
}

static void v0_destroy(struct path_selector *ps)
{
	struct v0_selector *s = ps->context;

	for (unsigned i = 0; i < s->nr; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s);
	ps->context = NULL;
}

/* The next selectable path after `from` (-1: from the start), round, that
 * has the priority of `from`, `from` itself last; if none has, the first
 * of the highest priority; -1 if no path is selectable. */
static int v0_next(const struct v0_selector *s, int from)
{
	int prio = from >= 0 ? s->paths[from]->priority : -1;
	int best = -1, best_prio = -1;
	int n = (int)s->nr;

	for (int k = 1; k <= n; k++) {
		int i = (from + k + n) % n;
		const struct v0_path *p = s->paths[i];

		if (!p->selectable)
			continue;
		if (p->priority == prio)
			return i;
		if (p->priority > best_prio) {
			best = i;
			best_prio = p->priority;
		}
	}
	return best;
}

static int v0_add_path(struct path_selector *ps, struct ps_path *path,
		       unsigned argc, char **argv, const char **error)
{
	struct v0_selector *s = ps->context;
	struct v0_path *p;
	int prio, ios;

	if (argc != 3) {
		*error = "dm-multipath: Wrong argument count";
		return -EINVAL;
	}
	if (um_parse_int_prefix(argv[0], &prio) < 0 || prio < 0 || prio > V0_PRIORITY_MAX) {
		*error = "dm-multipath: Invalid priority";
		return -EINVAL;
	}
	char mode = (char)toupper((unsigned char)argv[1][0]);
	if (argv[1][1] || (mode != 'N' && mode != 'L' && mode != 'M')) {
		*error = "load-balance flags";
		return -EINVAL;
	}
	if (um_parse_int_prefix(argv[2], &ios) < 0 || ios < 0 || ios > V0_IOS_MAX) {
		*error = "dm-multipath: Invalid ios min";
		return -EINVAL;
	}
	if (s->nr == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 4;
		struct v0_path **n = realloc(s->paths, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->paths = n;
		s->cap = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->path = path;
	p->priority = prio;
	p->mode = mode;
	p->ios_min = ios ? (unsigned)ios : 1;
	p->ios_left = p->ios_min;
	p->selectable = true;
	path->pscontext = p;
	s->paths[s->nr++] = p;
	/* The table's first choice: the first path of the highest priority. */
	s->current = v0_next(s, -1);
	return 0;
}

static void v0_fail_path(struct path_selector *ps, struct ps_path *path)
{
	struct v0_path *p = path->pscontext;

	p->selectable = false;
}

static int v0_reinstate_path(struct path_selector *ps, struct ps_path *path)
{
	struct v0_selector *s = ps->context;
	struct v0_path *p = path->pscontext;

	p->selectable = true;
	for (unsigned i = 0; i < s->nr; i++)
		s->paths[i]->latency = 0;
	return 0;
}

static struct ps_path *v0_select_path(struct path_selector *ps, size_t nr_bytes)
{
	struct v0_selector *s = ps->context;
	struct v0_path *cur;
	int next;

	if (s->current < 0)
		return NULL;
	cur = s->paths[s->current];
	if (!cur->selectable) {
		/* The prototype looked this path up for every I/O and kept
		 * the failed one as its current path; it is the same path. */
		s->current = v0_next(s, s->current);
		return s->current >= 0 ? s->paths[s->current]->path : NULL;
	}
	if (cur->mode == 'N' || --cur->ios_left)
		return cur->path;

	/* min-ios reached: this I/O already goes to the path taking over. */
	cur->ios_left = cur->ios_min;
	next = s->current;
	while ((next = v0_next(s, next)) != s->current) {
		const struct v0_path *p = s->paths[next];

		if (p->priority != cur->priority)
			continue;
		if (cur->mode != 'M' || p->latency <= cur->latency)
			break;
	}
	s->current = next;
	return s->paths[next]->path;
}

static int v0_start_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes)
{
	return 0;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	uint64_t r;

	return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static int v0_end_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes,
		     uint64_t start_time_ns)
{
	struct v0_path *p = path->pscontext;
	uint64_t now = um_io_ns(), ms, w;

	if (p->mode != 'M')
		return 0;
	ms = now > start_time_ns ? (now - start_time_ns) / 1000000u : 0;
	w = sat_mul(sat_mul(ms, ms), sat_mul(ms, ms));
	p->latency = p->latency > UINT64_MAX - w ? UINT64_MAX : p->latency + w;
	return 0;
}

/* TABLE: "<priority> <N|L|M> <min-ios> "; no group words, no INFO words. */
static void v0_status(struct path_selector *ps, struct ps_path *path,
		      enum ps_status_type type, struct sbuf *out)
{
	const struct v0_path *p;

	if (!path || type != PS_STATUS_TABLE)
		return;
	p = path->pscontext;
	sbuf_printf(out, "%d %c %u ", p->priority, p->mode, p->ios_min);
}

const struct path_selector_type ps_v0 = {
	.name		= "multipath-v0",
	.table_args	= 3,
	.info_args	= 0,
	.create		= v0_create,
	.destroy	= v0_destroy,
	.status		= v0_status,
	.add_path	= v0_add_path,
	.fail_path	= v0_fail_path,
	.reinstate_path	= v0_reinstate_path,
	.select_path	= v0_select_path,
	.start_io	= v0_start_io,
	.end_io		= v0_end_io,
};
