/* Description: the round-robin selector rotates over the usable paths, skips failed ones, hands a reinstated path out next, prints its words like the kernel and refuses bad per-path arguments with the kernel's reasons. */
#undef NDEBUG
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

#include "check.h"

#define NPATHS 3

static const struct path_selector_type *type = &ps_round_robin;
static struct ps_path paths[NPATHS];

/* Split a copy of words at spaces into argv; returns argc. */
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

static void make(struct path_selector *ps)
{
	ps->type = type;
	ps->context = NULL;
	CHECK(type->create(ps, 0, NULL) == 0);
	CHECK(ps->context);
}

static int idx(const struct ps_path *p)
{
	return p ? (int)(p - paths) : -1;
}

static void expect_sequence(struct path_selector *ps, const int *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ps_path *p = type->select_path(ps, 4096);

		if (idx(p) != want[i]) {
			fprintf(stderr, "selection %zu: got p%d, want p%d\n", i, idx(p), want[i]);
			exit(1);
		}
	}
}

static void test_registry(void)
{
	CHECK(ps_lookup("round-robin") == &ps_round_robin);
	CHECK(!strcmp(type->name, "round-robin"));
	CHECK(type->table_args == 1);
	CHECK(type->info_args == 0);
}

static void test_rotation(void)
{
	struct path_selector ps;
	const char *err;

	make(&ps);
	CHECK(type->select_path(&ps, 512) == NULL);
	for (int i = 0; i < NPATHS; i++)
		CHECK(add(&ps, &paths[i], "", &err) == 0 && !err);

	/* Plain rotation in table order; start_io/end_io do not disturb it. */
	static const int seq1[] = { 0, 1, 2, 0, 1, 2, 0 };
	expect_sequence(&ps, seq1, 7);
	CHECK(type->start_io(&ps, &paths[1], 4096) == 0);
	CHECK(type->end_io(&ps, &paths[1], 4096, um_io_ns()) == 0);

	/* Order now p1 p2 p0; failing p1 leaves p2 p0 taking turns. */
	type->fail_path(&ps, &paths[1]);
	static const int seq2[] = { 2, 0, 2, 0 };
	expect_sequence(&ps, seq2, 4);

	/* The kernel puts a reinstated path first: it is next, then the
	 * rotation carries on with the others. */
	CHECK(type->reinstate_path(&ps, &paths[1]) == 0);
	static const int seq3[] = { 1, 2, 0, 1, 2, 0 };
	expect_sequence(&ps, seq3, 6);

	/* Nothing usable: NULL; one back: only that one. */
	for (int i = 0; i < NPATHS; i++)
		type->fail_path(&ps, &paths[i]);
	CHECK(type->select_path(&ps, 512) == NULL);
	CHECK(type->reinstate_path(&ps, &paths[2]) == 0);
	static const int seq4[] = { 2, 2, 2 };
	expect_sequence(&ps, seq4, 3);

	type->destroy(&ps);
	CHECK(ps.context == NULL);
}

static void test_status(void)
{
	struct path_selector ps;
	const char *err;

	make(&ps);
	CHECK(add(&ps, &paths[0], "", &err) == 0);
	CHECK(add(&ps, &paths[1], "0", &err) == 0);
	CHECK(add(&ps, &paths[2], "5", &err) == 0);

	CHECK(!strcmp(status(&ps, NULL, PS_STATUS_TABLE), "0 "));
	CHECK(!strcmp(status(&ps, NULL, PS_STATUS_INFO), "0 "));
	/* Default 1; 0 kept; above 1 forced to 1, as in 6.12. */
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_TABLE), "1 "));
	CHECK(!strcmp(status(&ps, &paths[1], PS_STATUS_TABLE), "0 "));
	CHECK(!strcmp(status(&ps, &paths[2], PS_STATUS_TABLE), "1 "));
	/* No per-path info words. */
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_INFO), ""));

	/* repeat_count 0 is still selected. */
	static const int seq[] = { 0, 1, 2 };
	expect_sequence(&ps, seq, 3);
	type->destroy(&ps);
}

static void expect_refused(const char *words, const char *reason)
{
	struct path_selector ps;
	struct ps_path p = { NULL };
	const char *err;

	make(&ps);
	if (add(&ps, &p, words, &err) != -EINVAL || !err || strcmp(err, reason)) {
		fprintf(stderr, "args '%s': got '%s', want '%s'\n", words,
			err ? err : "(none)", reason);
		exit(1);
	}
	/* A refused path is not in the group. */
	CHECK(type->select_path(&ps, 512) == NULL);
	type->destroy(&ps);
}

static void expect_accepted(const char *words, const char *table)
{
	struct path_selector ps;
	struct ps_path p = { NULL };
	const char *err;

	make(&ps);
	CHECK(add(&ps, &p, words, &err) == 0);
	if (strcmp(status(&ps, &p, PS_STATUS_TABLE), table)) {
		fprintf(stderr, "args '%s': table '%s', want '%s'\n", words,
			status(&ps, &p, PS_STATUS_TABLE), table);
		exit(1);
	}
	CHECK(type->select_path(&ps, 512) == &p);
	type->destroy(&ps);
}

static void test_args(void)
{
	static const char count[] = "round-robin ps: incorrect number of arguments";
	static const char repeat[] = "round-robin ps: invalid repeat count";

	expect_refused("1 1", count);
	expect_refused("x y z", count);
	expect_refused("-1", repeat);
	expect_refused("x", repeat);
	expect_refused("1x", repeat);
	expect_refused("+1", repeat);
	expect_refused("0x10", repeat);

	expect_accepted("1", "1 ");
	expect_accepted("0", "0 ");
	expect_accepted("3", "1 ");
	expect_accepted("4294967295", "1 ");
	expect_accepted("007", "1 ");

	/* The group takes no arguments of its own but ignores any, as the
	 * kernel's rr_create does. */
	struct path_selector ps = { type, NULL };
	char a0[] = "9", *argv[] = { a0 };
	CHECK(type->create(&ps, 1, argv) == 0);
	type->destroy(&ps);
}

int main(void)
{
	test_registry();
	test_rotation();
	test_status();
	test_args();
	return 0;
}
