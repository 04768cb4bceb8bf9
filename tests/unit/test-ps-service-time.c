/* Description: the service-time selector weighs in-flight bytes against relative_throughput with the kernel's formula (including its tie rules and rt 0 paths as last resort), prints its words like the kernel and refuses bad per-path arguments with the kernel's reasons. */
#undef NDEBUG
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

#include "check.h"

#define NPATHS	4
#define MiB	(1u << 20)

static const struct path_selector_type *type = &ps_service_time;
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

/* A group whose path i gets the per-path words args[i]. */
static void make(struct path_selector *ps, const char *const *args, int n)
{
	const char *err;

	ps->type = type;
	ps->context = NULL;
	CHECK(type->create(ps, 0, NULL) == 0);
	for (int i = 0; i < n; i++)
		CHECK(add(ps, &paths[i], args[i], &err) == 0 && !err);
}

static void start(struct path_selector *ps, int i, size_t bytes)
{
	CHECK(type->start_io(ps, &paths[i], bytes) == 0);
}

static void end(struct path_selector *ps, int i, size_t bytes)
{
	CHECK(type->end_io(ps, &paths[i], bytes, um_io_ns()) == 0);
}

static int pick(struct path_selector *ps, size_t bytes)
{
	struct ps_path *p = type->select_path(ps, bytes);

	return p ? (int)(p - paths) : -1;
}

static void test_registry(void)
{
	CHECK(ps_lookup("service-time") == &ps_service_time);
	CHECK(!strcmp(type->name, "service-time"));
	CHECK(type->table_args == 2);
	CHECK(type->info_args == 2);
}

static void test_throughput(void)
{
	static const char *const args[] = { "1 100", "1 1" };
	struct path_selector ps;

	make(&ps, args, 2);

	/* p0 rt 100 with 1 MiB in flight, p1 rt 1 idle, 4 KiB incoming:
	 * (1 MiB + 4 KiB) * 1 = 1052672 > (0 + 4 KiB) * 100 = 409600, so the
	 * slow idle path is estimated to finish first. */
	start(&ps, 0, MiB);
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_INFO), "1048576 100 "));
	CHECK(pick(&ps, 4096) == 1);
	CHECK(pick(&ps, 4096) == 1);	/* selection alone adds no load */

	/* With only 8 KiB in flight on p0: 12288 * 1 < 4096 * 100, p0. */
	end(&ps, 0, MiB - 8192);
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_INFO), "8192 100 "));
	CHECK(pick(&ps, 4096) == 0);

	/* The incoming size counts.  Back to 1 MiB in flight on p0: a 4 KiB
	 * request goes to p1 as before, but a 1 MiB one to p0, as
	 * 2 MiB * 1 < 1 MiB * 100. */
	start(&ps, 0, MiB - 8192);
	CHECK(pick(&ps, 4096) == 1);
	CHECK(pick(&ps, MiB) == 0);

	/* Equal estimates go to the higher throughput: p0 rt 2 with 4 KiB in
	 * flight, p1 rt 1 idle, 4 KiB incoming: 8192 * 1 == 4096 * 2. */
	type->destroy(&ps);
	static const char *const args2[] = { "1 2", "1 1" };
	make(&ps, args2, 2);
	start(&ps, 0, 4096);
	CHECK(pick(&ps, 4096) == 0);	/* 8192 * 1 == 4096 * 2: rt 2 */
	CHECK(pick(&ps, 4096) == 0);	/* independent of list order */
	start(&ps, 0, 1);
	CHECK(pick(&ps, 4096) == 1);	/* 8193 * 1 > 4096 * 2 */
	type->destroy(&ps);
}

static void test_same_throughput(void)
{
	static const char *const args[] = { "", "", "" };
	struct path_selector ps;

	/* Same rt: fewest bytes in flight, ties to the list head which then
	 * goes last. */
	make(&ps, args, 3);
	CHECK(pick(&ps, 512) == 0);
	CHECK(pick(&ps, 512) == 1);
	CHECK(pick(&ps, 512) == 2);
	CHECK(pick(&ps, 512) == 0);
	start(&ps, 0, 100);
	start(&ps, 1, 50);
	start(&ps, 2, 60);
	CHECK(pick(&ps, 512) == 1);
	end(&ps, 0, 100);
	CHECK(pick(&ps, 512) == 0);
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_INFO), "0 1 "));
	CHECK(!strcmp(status(&ps, &paths[1], PS_STATUS_INFO), "50 1 "));
	type->destroy(&ps);
}

static void test_same_load(void)
{
	static const char *const args[] = { "1 2", "1 5", "1 3" };
	struct path_selector ps;

	/* Same load, different rt: the highest rt, every time. */
	make(&ps, args, 3);
	CHECK(pick(&ps, 4096) == 1);
	CHECK(pick(&ps, 4096) == 1);
	start(&ps, 0, 4096);
	start(&ps, 1, 4096);
	start(&ps, 2, 4096);
	CHECK(pick(&ps, 4096) == 1);
	type->destroy(&ps);
}

static void test_zero_throughput(void)
{
	static const char *const args[] = { "1 0", "1 1", "1 0" };
	struct path_selector ps;

	/* rt 0 paths lose to any positive rt path, however loaded. */
	make(&ps, args, 3);
	start(&ps, 1, 100u * MiB);
	CHECK(pick(&ps, 4096) == 1);
	CHECK(pick(&ps, 4096) == 1);

	/* Only rt 0 paths left: among equal rt, the least loaded. */
	type->fail_path(&ps, &paths[1]);
	start(&ps, 0, 4096);
	CHECK(pick(&ps, 4096) == 2);
	start(&ps, 2, 8192);
	CHECK(pick(&ps, 4096) == 0);

	/* Back again, the rt 1 path wins at once. */
	CHECK(type->reinstate_path(&ps, &paths[1]) == 0);
	CHECK(pick(&ps, 4096) == 1);

	for (int i = 0; i < 3; i++)
		type->fail_path(&ps, &paths[i]);
	CHECK(pick(&ps, 4096) == -1);
	type->destroy(&ps);
	CHECK(ps.context == NULL);
}

/* The kernel compares in size_t and returns the difference as an int, so
 * products past 2^31 can flip the answer's sign.  Reproduced on purpose. */
static void test_kernel_arithmetic(void)
{
	static const char *const args[] = { "1 0", "1 100" };
	static const char *const args2[] = { "1 1", "1 100" };
	struct path_selector ps;

	/* rt 0 vs rt 100 is settled before any product: the rt 100 path, even
	 * with the rt 0 one at 22 MB (22 MB * 100 would not fit an int). */
	make(&ps, args, 2);
	start(&ps, 0, 22000000);
	CHECK(pick(&ps, 4096) == 1);
	CHECK(pick(&ps, 4096) == 1);
	type->destroy(&ps);

	/* rt 1 at 22 MB vs an idle rt 100: 4096 * 1 - 22004096 * 100 is
	 * negative, but truncated to int it is 2094561792, so the kernel (and
	 * we) take the loaded slow path. */
	make(&ps, args2, 2);
	start(&ps, 0, 22000000);
	CHECK(pick(&ps, 4096) == 0);
	/* Below the wrap (21004096 * 100 < 2^31) the sane answer. */
	end(&ps, 0, 1000000);
	CHECK(pick(&ps, 4096) == 1);
	type->destroy(&ps);
}

static void test_status(void)
{
	static const char *const args[] = { "", "1 100", "0 0", "7 50" };
	struct path_selector ps;

	make(&ps, args, 4);
	CHECK(!strcmp(status(&ps, NULL, PS_STATUS_TABLE), "0 "));
	CHECK(!strcmp(status(&ps, NULL, PS_STATUS_INFO), "0 "));
	/* Defaults 1 1; repeat_count 0 kept, above 1 forced to 1. */
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_TABLE), "1 1 "));
	CHECK(!strcmp(status(&ps, &paths[1], PS_STATUS_TABLE), "1 100 "));
	CHECK(!strcmp(status(&ps, &paths[2], PS_STATUS_TABLE), "0 0 "));
	CHECK(!strcmp(status(&ps, &paths[3], PS_STATUS_TABLE), "1 50 "));
	CHECK(!strcmp(status(&ps, &paths[1], PS_STATUS_INFO), "0 100 "));
	start(&ps, 1, 4096);
	start(&ps, 1, 512);
	end(&ps, 1, 4096);
	CHECK(!strcmp(status(&ps, &paths[1], PS_STATUS_INFO), "512 100 "));
	type->destroy(&ps);

	/* A single argument is the repeat count. */
	static const char *const one[] = { "1" };
	make(&ps, one, 1);
	CHECK(!strcmp(status(&ps, &paths[0], PS_STATUS_TABLE), "1 1 "));
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
	static const char count[] = "service-time ps: incorrect number of arguments";
	static const char repeat[] = "service-time ps: invalid repeat count";
	static const char rt[] = "service-time ps: invalid relative_throughput value";

	expect_refused("1 1 1", count);
	expect_refused("a b c d", count);
	expect_refused("x", repeat);
	expect_refused("-1 1", repeat);
	expect_refused("1y 1", repeat);
	/* The repeat count is checked first. */
	expect_refused("x 101", repeat);
	expect_refused("1 101", rt);
	expect_refused("1 -1", rt);
	expect_refused("1 1z", rt);
	expect_refused("1 4294967295", rt);
}

int main(void)
{
	test_registry();
	test_throughput();
	test_same_throughput();
	test_same_load();
	test_zero_throughput();
	test_kernel_arithmetic();
	test_status();
	test_args();
	return 0;
}
