/* queue-length.c - the "queue-length" path selector, after the kernel's
 * drivers/md/dm-ps-queue-length.c (Linux 6.12): send each I/O down the
 * usable path with the fewest I/Os in flight.
 *
 * Per-path arguments: [<repeat_count>], forced to 1 when above 1 (0 is
 * kept), as in the kernel.  Status INFO shows the in-flight count.
 */
#include <errno.h>
#include <stdlib.h>

#include "list.h"
#include "selector.h"

#define QL_MIN_IO	1

struct path_info {
	struct list_head list;
	struct ps_path *path;
	unsigned repeat_count;
	int qlen;	/* in-flight I/Os; an atomic_t in the kernel */
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

static int ql_create(struct path_selector *ps, unsigned argc, char **argv)
{
	struct selector *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	list_init(&s->valid_paths);
	list_init(&s->failed_paths);
	ps->context = s;
	return 0;
}

static void ql_destroy(struct path_selector *ps)
{
	struct selector *s = ps->context;

	free_paths(&s->valid_paths);
	free_paths(&s->failed_paths);
	free(s);
	ps->context = NULL;
}

static void ql_status(struct path_selector *ps, struct ps_path *path,
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
		sbuf_printf(out, "%d ", pi->qlen);
		break;
	case PS_STATUS_TABLE:
		sbuf_printf(out, "%u ", pi->repeat_count);
		break;
	}
}

static int ql_add_path(struct path_selector *ps, struct ps_path *path,
		       unsigned argc, char **argv, const char **error)
{
	struct selector *s = ps->context;
	unsigned repeat_count = QL_MIN_IO;
	struct path_info *pi;

	if (argc > 1) {
		*error = "queue-length ps: incorrect number of arguments";
		return -EINVAL;
	}

	if (argc == 1 && um_parse_uint(argv[0], &repeat_count)) {
		*error = "queue-length ps: invalid repeat count";
		return -EINVAL;
	}

	/* The kernel warns (rate limited) and carries on with 1. */
	if (repeat_count > 1)
		repeat_count = 1;

	pi = malloc(sizeof(*pi));
	if (!pi) {
		*error = "queue-length ps: Error allocating path information";
		return -ENOMEM;
	}
	pi->path = path;
	pi->repeat_count = repeat_count;
	pi->qlen = 0;
	path->pscontext = pi;

	list_add_tail(&pi->list, &s->valid_paths);
	return 0;
}

static void ql_fail_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_del_init(&pi->list);
	list_add(&pi->list, &s->failed_paths);
}

static int ql_reinstate_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_move_tail(&pi->list, &s->valid_paths);
	return 0;
}

static struct ps_path *ql_select_path(struct path_selector *ps, size_t nr_bytes)
{
	struct selector *s = ps->context;
	struct path_info *pi, *best = NULL;

	if (list_empty(&s->valid_paths))
		return NULL;

	/* First strictly smaller count wins, so ties go to the earliest path
	 * in list order; an idle path cannot be beaten, stop there. */
	list_for_each_entry(pi, &s->valid_paths, list) {
		if (!best || pi->qlen < best->qlen)
			best = pi;
		if (!best->qlen)
			break;
	}

	if (!best)
		return NULL;

	/* Most recently used goes last, so equal loads take turns. */
	list_move_tail(&best->list, &s->valid_paths);
	return best->path;
}

/* Unsigned arithmetic: the kernel's atomic_t wraps rather than overflowing. */
static int ql_start_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes)
{
	struct path_info *pi = path->pscontext;

	pi->qlen = (int)((unsigned)pi->qlen + 1u);
	return 0;
}

static int ql_end_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes,
		     uint64_t start_time_ns)
{
	struct path_info *pi = path->pscontext;

	pi->qlen = (int)((unsigned)pi->qlen - 1u);
	return 0;
}

const struct path_selector_type ps_queue_length = {
	.name		= "queue-length",
	.table_args	= 1,
	.info_args	= 1,
	.create		= ql_create,
	.destroy	= ql_destroy,
	.status		= ql_status,
	.add_path	= ql_add_path,
	.fail_path	= ql_fail_path,
	.reinstate_path	= ql_reinstate_path,
	.select_path	= ql_select_path,
	.start_io	= ql_start_io,
	.end_io		= ql_end_io,
};
