/* round-robin.c - the "round-robin" path selector, after the kernel's
 * drivers/md/dm-ps-round-robin.c (Linux 6.12): hand out the usable paths of
 * a group in turn.
 *
 * Per-path arguments: [<repeat_count>].  Counts above 1 are accepted but
 * forced to 1, as the kernel has done since repeat_count was deprecated;
 * 0 is kept and printed back as 0.
 */
#include <errno.h>
#include <stdlib.h>

#include "list.h"
#include "selector.h"

#define RR_MIN_IO	1

struct path_info {
	struct list_head list;
	struct ps_path *path;
	unsigned repeat_count;
};

struct selector {
	struct list_head valid_paths;
	struct list_head invalid_paths;
};

static void free_paths(struct list_head *paths)
{
	struct path_info *pi, *next;

	list_for_each_entry_safe(pi, next, paths, list) {
		list_del_init(&pi->list);
		free(pi);
	}
}

static int rr_create(struct path_selector *ps, unsigned argc, char **argv)
{
	struct selector *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	list_init(&s->valid_paths);
	list_init(&s->invalid_paths);
	ps->context = s;
	return 0;
}

static void rr_destroy(struct path_selector *ps)
{
	struct selector *s = ps->context;

	free_paths(&s->valid_paths);
	free_paths(&s->invalid_paths);
	free(s);
	ps->context = NULL;
}

static void rr_status(struct path_selector *ps, struct ps_path *path,
		      enum ps_status_type type, struct sbuf *out)
{
	struct path_info *pi;

	if (!path) {
		sbuf_printf(out, "0 ");
		return;
	}

	switch (type) {
	case PS_STATUS_INFO:
		break;
	case PS_STATUS_TABLE:
		pi = path->pscontext;
		sbuf_printf(out, "%u ", pi->repeat_count);
		break;
	}
}

static int rr_add_path(struct path_selector *ps, struct ps_path *path,
		       unsigned argc, char **argv, const char **error)
{
	struct selector *s = ps->context;
	unsigned repeat_count = RR_MIN_IO;
	struct path_info *pi;

	if (argc > 1) {
		*error = "round-robin ps: incorrect number of arguments";
		return -EINVAL;
	}

	if (argc == 1 && um_parse_uint(argv[0], &repeat_count)) {
		*error = "round-robin ps: invalid repeat count";
		return -EINVAL;
	}

	/* The kernel warns (rate limited) and carries on with 1. */
	if (repeat_count > 1)
		repeat_count = 1;

	pi = malloc(sizeof(*pi));
	if (!pi) {
		*error = "round-robin ps: Error allocating path context";
		return -ENOMEM;
	}
	pi->path = path;
	pi->repeat_count = repeat_count;
	path->pscontext = pi;

	list_add_tail(&pi->list, &s->valid_paths);
	return 0;
}

static void rr_fail_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_del_init(&pi->list);
	list_add(&pi->list, &s->invalid_paths);
}

/* The kernel puts a reinstated path at the head of the valid list (list_move,
 * unlike the other selectors), so it is the very next one handed out. */
static int rr_reinstate_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_del_init(&pi->list);
	list_add(&pi->list, &s->valid_paths);
	return 0;
}

static struct ps_path *rr_select_path(struct path_selector *ps, size_t nr_bytes)
{
	struct selector *s = ps->context;
	struct path_info *pi;

	if (list_empty(&s->valid_paths))
		return NULL;

	pi = list_first_entry(&s->valid_paths, struct path_info, list);
	list_move_tail(&pi->list, &s->valid_paths);
	return pi->path;
}

/* The kernel's round-robin has no start_io/end_io; these empty ones only let
 * the engine call the hooks without checking for NULL. */
static int rr_start_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes)
{
	return 0;
}

static int rr_end_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes,
		     uint64_t start_time_ns)
{
	return 0;
}

const struct path_selector_type ps_round_robin = {
	.name		= "round-robin",
	.table_args	= 1,
	.info_args	= 0,
	.create		= rr_create,
	.destroy	= rr_destroy,
	.status		= rr_status,
	.add_path	= rr_add_path,
	.fail_path	= rr_fail_path,
	.reinstate_path	= rr_reinstate_path,
	.select_path	= rr_select_path,
	.start_io	= rr_start_io,
	.end_io		= rr_end_io,
};
