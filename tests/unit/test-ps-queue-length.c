/* Description: the queue-length selector picks the usable path with the fewest I/Os in flight (ties to the first in its rotating list), shows in-flight counts in status like the kernel and refuses bad per-path arguments with the kernel's reasons. */
#undef NDEBUG
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

#include "check.h"

#define NPATHS 3

static const struct path_selector_type *type = &ps_queue_length;
static struct ps_path paths[NPATHS];

static unsigned split(const char *words, char *buf, size_t len, char **argv)
{
	unsigned argc = 0;

	snprintf(buf, len, "%s", words);
	for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
		argv[argc++] = w;
	return argc;
}

static int add(struct path_selector *ps, struct ps_path *p, const char *words,
	       const char **error)
{
	char buf[128], *argv[16];
	unsigned argc = split(words, buf, sizeof(buf), argv);

	*error = NULL;
	return type->add_path(ps, p, argc, argv, error);
}

static const char *status(struct path_selector *ps, struct ps_path *p,
			  enum ps_status_type t)
{
	static char buf[256];
	struct sbuf sb;

	sbuf_init(&sb, buf, sizeof(buf));
	type->status(ps, p, t, &sb);
	return buf;
}

/* The INFO words of every path, in path order. */
static const char *info_all(struct path_selector *ps)
{
	static char buf[256];
	struct sbuf sb;

	sbuf_init(&sb, buf, sizeof(buf));
	for (int i = 0; i < NPATHS; i++)
		type->status(ps, &paths[i], PS_STATUS_INFO, &sb);
	return buf;
}

static void make(struct path_selector *ps)
{
	const char *err;

	ps->type = type;
	ps->context = NULL;
	CHECK(type->create(ps, 0, NULL) == 0);
	for (int i = 0; i < NPATHS; i++)
		CHECK(add(ps, &paths[i], "", &err) == 0 && !err);
}

static int idx(const struct ps_path *p)
{
	return p ? (int)(p - paths) : -1;
}

/* Select and, like the engine, start the I/O on the chosen path. */
static int dispatch(struct path_selector *ps)
{
	struct ps_path *p = type->select_path(ps, 4096);

	if (p)
		CHECK(type->start_io(ps, p, 4096) == 0);
	return idx(p);
}

static void complete(struct path_selector *ps, int i)
{
	CHECK(type->end_io(ps, &paths[i], 4096, um_io_ns()) == 0);
}

static void test_registry(void)
{
	CHECK(ps_lookup("queue-length") == &ps_queue_length);
	CHECK(!strcmp(type->name, "queue-length"));
	CHECK(type->table_args == 1);
	CHECK(type->info_args == 1);
}

static void test_least_loaded(void)
{
	struct path_selector ps;

	make(&ps);
	CHECK(!strcmp(info_all(&ps), "0 0 0 "));

	/* All idle: first in list, which then goes last, so idle paths are
	 * spread evenly. */
	CHECK(dispatch(&ps) == 0);
	CHECK(dispatch(&ps) == 1);
	CHECK(dispatch(&ps) == 2);
	CHECK(!strcmp(info_all(&ps), "1 1 1 "));

	/* All at 1: the tie goes to the head of the list, p0 again. */
	CHECK(dispatch(&ps) == 0);
	CHECK(!strcmp(info_all(&ps), "2 1 1 "));

	/* List is now p1 p2 p0; p2 finishing its I/O makes it the least
	 * loaded although p1 is ahead of it. */
	complete(&ps, 2);
	CHECK(!strcmp(info_all(&ps), "2 1 0 "));
	CHECK(dispatch(&ps) == 2);

	/* Loads 2 1 1, list p1 p0 p2: p1 (tie with p2, first in list). */
	CHECK(dispatch(&ps) == 1);
	/* Loads 2 2 1: p2, the only one at 1. */
	CHECK(dispatch(&ps) == 2);
	CHECK(!strcmp(info_all(&ps), "2 2 2 "));

	/* Unequal loads 3 1 2 (complete/start to reach them). */
	CHECK(type->start_io(&ps, &paths[0], 4096) == 0);
	complete(&ps, 1);
	CHECK(!strcmp(info_all(&ps), "3 1 2 "));
	CHECK(type->select_path(&ps, 4096) == &paths[1]);
	CHECK(type->select_path(&ps, 4096) == &paths[1]);	/* select alone counts nothing */

	/* A failed path is skipped even when it is the least loaded. */
	type->fail_path(&ps, &paths[1]);
	CHECK(type->select_path(&ps, 4096) == &paths[2]);
	/* Its counter still runs while failed (in-flight I/O completes). */
	complete(&ps, 1);
	CHECK(!strcmp(info_all(&ps), "3 0 2 "));

	/* Reinstated: back at the tail, and the least loaded, so chosen. */
	CHECK(type->reinstate_path(&ps, &paths[1]) == 0);
	CHECK(dispatch(&ps) == 1);

	/* Only failed paths: NULL. */
	for (int i = 0; i < NPATHS; i++)
		type->fail_path(&ps, &paths[i]);
	CHECK(type->select_path(&ps, 4096) == NULL);

	type->destroy(&ps);
	CHECK(ps.context == NULL);
}

static void test_reinstate_order(void)
{
	struct path_selector ps;

	/* Reinstated paths go to the tail (unlike round-robin): with all idle
	 * the order after reinstating p0 is p1 p2 p0. */
	make(&ps);
	type->fail_path(&ps, &paths[0]);
	CHECK(type->reinstate_path(&ps, &paths[0]) == 0);
	CHECK(type->select_path(&ps, 0) == &paths[1]);
	CHECK(type->select_path(&ps, 0) == &paths[2]);
	CHECK(type->select_path(&ps, 0) == &paths[0]);
	type->destroy(&ps);
}

static void test_status(void)
{
	struct path_selector ps = { type, NULL };
	const char *err;

	CHECK(type->create(&ps, 0, NULL) == 0);
	CHECK(add(&ps, &paths[0], "", &err) == 0);
	CHECK(add(&ps, &paths[1], "0", &err) == 0);
	CHECK(add(&ps, &paths[2], "3", &err) == 0);
	CHECK(!strcmp(status(&ps, NULL, PS_STATUS_TABLE), "0 "));
	CHECK(!strcmp(status(&ps, NULL, PS_STATUS_INFO), "0 "));
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_TABLE), "1 "));
	CHECK(!strcmp(status(&ps, &paths[1], PS_STATUS_TABLE), "0 "));
	CHECK(!strcmp(status(&ps, &paths[2], PS_STATUS_TABLE), "1 "));
	for (int i = 0; i < 12; i++)
		CHECK(type->start_io(&ps, &paths[2], 1u << 20) == 0);
	/* Counts I/Os, not bytes. */
	CHECK(!strcmp(status(&ps, &paths[2], PS_STATUS_INFO), "12 "));
	type->destroy(&ps);
}

static void expect_refused(const char *words, const char *reason)
{
	struct path_selector ps = { type, NULL };
	struct ps_path p = { NULL };
	const char *err;

	CHECK(type->create(&ps, 0, NULL) == 0);
	if (add(&ps, &p, words, &err) != -EINVAL || !err || strcmp(err, reason)) {
		fprintf(stderr, "args '%s': got '%s', want '%s'\n", words,
			err ? err : "(none)", reason);
		exit(1);
	}
	CHECK(type->select_path(&ps, 512) == NULL);
	type->destroy(&ps);
}

static void test_args(void)
{
	static const char count[] = "queue-length ps: incorrect number of arguments";
	static const char repeat[] = "queue-length ps: invalid repeat count";

	expect_refused("1 1", count);
	expect_refused("1 2 3", count);
	expect_refused("-1", repeat);
	expect_refused("one", repeat);
	expect_refused("2k", repeat);
}

int main(void)
{
	test_registry();
	test_least_loaded();
	test_reinstate_order();
	test_status();
	test_args();
	return 0;
}
