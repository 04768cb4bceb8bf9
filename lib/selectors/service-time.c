/* service-time.c - the "service-time" path selector, after the kernel's
 * drivers/md/dm-ps-service-time.c (Linux 6.12): send each I/O down the path
 * expected to finish it soonest, estimated as
 *	(bytes in flight + incoming bytes) / relative_throughput.
 *
 * Per-path arguments: [<repeat_count> [<relative_throughput>]].
 * repeat_count above 1 is forced to 1 (0 is kept); relative_throughput is
 * 0..100, default 1, and a path with 0 is only used when no path with a
 * positive value is usable.
 */
#include <errno.h>
#include <stdlib.h>

#include "list.h"
#include "selector.h"

#define ST_MIN_IO				1
#define ST_MAX_RELATIVE_THROUGHPUT		100
#define ST_MAX_RELATIVE_THROUGHPUT_SHIFT	7
#define ST_MAX_INFLIGHT_SIZE	((size_t)-1 >> ST_MAX_RELATIVE_THROUGHPUT_SHIFT)

struct path_info {
	struct list_head list;
	struct ps_path *path;
	unsigned repeat_count;
	unsigned relative_throughput;
	/* Bytes in flight.  An atomic_t (int) in the kernel: kept as int so the
	 * status output and the comparison truncate exactly as there. */
	int in_flight_size;
};

struct selector {
	struct list_head valid_paths;
	struct list_head failed_paths;
};

static void free_paths(struct list_head *paths)
{
	struct path_info *pi, *next;

	list_for_each_entry_safe(pi, next, paths, list) {
		list_del_init(&pi->list);
		free(pi);
	}
}

static int st_create(struct path_selector *ps, unsigned argc, char **argv)
{
	struct selector *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	list_init(&s->valid_paths);
	list_init(&s->failed_paths);
	ps->context = s;
	return 0;
}

static void st_destroy(struct path_selector *ps)
{
	struct selector *s = ps->context;

	free_paths(&s->valid_paths);
	free_paths(&s->failed_paths);
	free(s);
	ps->context = NULL;
}

static void st_status(struct path_selector *ps, struct ps_path *path,
		      enum ps_status_type type, struct sbuf *out)
{
	struct path_info *pi;

	if (!path) {
		sbuf_printf(out, "0 ");
		return;
	}

	pi = path->pscontext;
	switch (type) {
	case PS_STATUS_INFO:
		sbuf_printf(out, "%d %u ", pi->in_flight_size, pi->relative_throughput);
		break;
	case PS_STATUS_TABLE:
		sbuf_printf(out, "%u %u ", pi->repeat_count, pi->relative_throughput);
		break;
	}
}

static int st_add_path(struct path_selector *ps, struct ps_path *path,
		       unsigned argc, char **argv, const char **error)
{
	struct selector *s = ps->context;
	unsigned repeat_count = ST_MIN_IO;
	unsigned relative_throughput = 1;
	struct path_info *pi;

	if (argc > 2) {
		*error = "service-time ps: incorrect number of arguments";
		return -EINVAL;
	}

	if (argc && um_parse_uint(argv[0], &repeat_count)) {
		*error = "service-time ps: invalid repeat count";
		return -EINVAL;
	}

	/* The kernel warns (rate limited) and carries on with 1. */
	if (repeat_count > 1)
		repeat_count = 1;

	if (argc == 2 && (um_parse_uint(argv[1], &relative_throughput) ||
			  relative_throughput > ST_MAX_RELATIVE_THROUGHPUT)) {
		*error = "service-time ps: invalid relative_throughput value";
		return -EINVAL;
	}

	pi = malloc(sizeof(*pi));
	if (!pi) {
		*error = "service-time ps: Error allocating path context";
		return -ENOMEM;
	}
	pi->path = path;
	pi->repeat_count = repeat_count;
	pi->relative_throughput = relative_throughput;
	pi->in_flight_size = 0;
	path->pscontext = pi;

	list_add_tail(&pi->list, &s->valid_paths);
	return 0;
}

static void st_fail_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_del_init(&pi->list);
	list_add(&pi->list, &s->failed_paths);
}

static int st_reinstate_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_move_tail(&pi->list, &s->valid_paths);
	return 0;
}

/*
 * < 0: pi1 is the better path for the incoming I/O, > 0: pi2 is, 0: either.
 *
 * The arithmetic is the kernel's to the bit: size_t and unsigned differences
 * squeezed into an int.  Sizes above INT_MAX make the sign of the answer
 * arbitrary there, and so here.
 */
static int st_compare_load(const struct path_info *pi1, const struct path_info *pi2,
			   size_t incoming)
{
	size_t sz1, sz2, st1, st2;

	sz1 = (size_t)pi1->in_flight_size;
	sz2 = (size_t)pi2->in_flight_size;

	/* Same throughput: the less loaded path. */
	if (pi1->relative_throughput == pi2->relative_throughput)
		return (int)(sz1 - sz2);

	/* Same load, or one path has throughput 0: the higher throughput. */
	if (sz1 == sz2 || !pi1->relative_throughput || !pi2->relative_throughput)
		return (int)(pi2->relative_throughput - pi1->relative_throughput);

	/*
	 * Compare (sz1 + incoming) / rt1 with (sz2 + incoming) / rt2 by cross
	 * multiplying, both throughputs being positive here.  Shift huge sizes
	 * down first so the product cannot overflow.
	 */
	sz1 += incoming;
	sz2 += incoming;
	if (sz1 >= ST_MAX_INFLIGHT_SIZE || sz2 >= ST_MAX_INFLIGHT_SIZE) {
		sz1 >>= ST_MAX_RELATIVE_THROUGHPUT_SHIFT;
		sz2 >>= ST_MAX_RELATIVE_THROUGHPUT_SHIFT;
	}
	st1 = sz1 * pi2->relative_throughput;
	st2 = sz2 * pi1->relative_throughput;
	if (st1 != st2)
		return (int)(st1 - st2);

	/* Same estimate: the higher throughput. */
	return (int)(pi2->relative_throughput - pi1->relative_throughput);
}

static struct ps_path *st_select_path(struct path_selector *ps, size_t nr_bytes)
{
	struct selector *s = ps->context;
	struct path_info *pi, *best = NULL;

	if (list_empty(&s->valid_paths))
		return NULL;

	list_for_each_entry(pi, &s->valid_paths, list)
		if (!best || st_compare_load(pi, best, nr_bytes) < 0)
			best = pi;

	if (!best)
		return NULL;

	/* Most recently used goes last, so equal estimates take turns. */
	list_move_tail(&best->list, &s->valid_paths);
	return best->path;
}

/* The kernel adds nr_bytes to an atomic_t: truncated to int, wrapping. */
static int st_start_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes)
{
	struct path_info *pi = path->pscontext;

	pi->in_flight_size = (int)((unsigned)pi->in_flight_size + (unsigned)nr_bytes);
	return 0;
}

static int st_end_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes,
		     uint64_t start_time_ns)
{
	struct path_info *pi = path->pscontext;

	pi->in_flight_size = (int)((unsigned)pi->in_flight_size - (unsigned)nr_bytes);
	return 0;
}

const struct path_selector_type ps_service_time = {
	.name		= "service-time",
	.table_args	= 2,
	.info_args	= 2,
	.create		= st_create,
	.destroy	= st_destroy,
	.status		= st_status,
	.add_path	= st_add_path,
	.fail_path	= st_fail_path,
	.reinstate_path	= st_reinstate_path,
	.select_path	= st_select_path,
	.start_io	= st_start_io,
	.end_io		= st_end_io,
};
