/* Description: dm-multipath tables through the public API: every feature, selector and group layout prints back exactly as Linux 6.12 multipath_status() does and the printed table is a fixed point (new map and load+resume); every refusal reason gives the kernel's errno and text and leaves no path open; INFO status right after creation matches the kernel's; paths with a space or backslash print escaped and load back, tabs and line breaks are refused; refusals carry a detail (path and cause, message and why) in umpath_error_detail(). */
#undef NDEBUG
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "check.h"

#define CHECK_STR(ctxt, got, want)						\
	do {									\
		const char *g_ = (got), *w_ = (want);				\
		if (strcmp(g_, w_)) {						\
			fprintf(stderr, "%s:%d: %s\n  got  '%s'\n  want '%s'\n",	\
				__FILE__, __LINE__, (ctxt), g_, w_);		\
			exit(1);						\
		}								\
	} while (0)

#define SIZE ((uint64_t)131072 * 512)	/* the conformance scenarios' 64 MiB */
#define HH "test-hh"			/* a registered hardware handler */

static struct umpath_ctx *ctx;
static const char *const names[] = { "p0", "p1", "p2", "p3" };

static void new_store(void)
{
	CHECK(umpath_mem_store_new(ctx, SIZE, 4, names, 1) == 0);
}

static struct umpath_map *create(const char *table, uint64_t size)
{
	struct umpath_map *m = NULL;
	char err[256] = "";
	int r = umpath_map_new(ctx, "t", table, size, err, sizeof(err), &m);

	if (r) {
		fprintf(stderr, "create '%s': %d (%s)\n", table, r, err);
		exit(1);
	}
	CHECK(m);
	return m;
}

static const char *table_of(struct umpath_map *m)
{
	static char buf[4096];
	int n = umpath_map_table(m, buf, sizeof(buf));

	CHECK(n >= 0 && (size_t)n < sizeof(buf));
	CHECK((size_t)n == strlen(buf));
	return buf;
}

static const char *status_of(struct umpath_map *m)
{
	static char buf[4096];
	int n = umpath_map_status(m, buf, sizeof(buf));

	CHECK(n >= 0 && (size_t)n < sizeof(buf));
	CHECK((size_t)n == strlen(buf));
	return buf;
}

/* No map holds a path: the store can be dropped and made again with the
 * same names (a path still open would keep it, and EEXIST would follow). */
static void check_nothing_open(const char *what)
{
	umpath_mem_reset(ctx);
	if (umpath_mem_store_new(ctx, SIZE, 4, names, 1) != 0) {
		fprintf(stderr, "%s: a path was left open\n", what);
		exit(1);
	}
}

/* ---- round trips ------------------------------------------------------ */

struct round_trip {
	const char *in;
	const char *out;	/* what the kernel's table status prints */
};

static const struct round_trip round_trips[] = {
	/* tests/conformance/basic-round-robin, features, selector-args */
	{ "0 0 1 1 round-robin 0 2 1 p0 1 p1 1", "0 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "1 queue_if_no_path 0 1 1 round-robin 0 2 1 p0 1 p1 1",
	  "1 queue_if_no_path 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "2 pg_init_retries 7 0 1 1 round-robin 0 2 1 p0 1 p1 1",
	  "2 pg_init_retries 7 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "2 pg_init_delay_msecs 150 0 1 1 round-robin 0 2 1 p0 1 p1 1",
	  "2 pg_init_delay_msecs 150 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "1 retain_attached_hw_handler 0 1 1 round-robin 0 2 1 p0 1 p1 1",
	  "1 retain_attached_hw_handler 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	/* queue_mode bio implies retain_attached_hw_handler (alloc_multipath_stage2) */
	{ "2 queue_mode bio 0 1 1 round-robin 0 2 1 p0 1 p1 1",
	  "3 retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "2 queue_mode rq 0 1 1 round-robin 0 2 1 p0 1 p1 1", "0 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "2 queue_mode mq 0 1 1 round-robin 0 2 1 p0 1 p1 1", "0 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "6 pg_init_delay_msecs 0 queue_if_no_path pg_init_retries 50 QUEUE_IF_NO_PATH 0 1 1 "
	  "round-robin 0 2 1 p0 1 p1 1",
	  "5 queue_if_no_path pg_init_retries 50 pg_init_delay_msecs 0 0 1 1 "
	  "round-robin 0 2 1 p0 1 p1 1" },
	/* names and modes in any case */
	{ "2 Queue_Mode BIO 0 1 1 round-robin 0 1 0 p0",
	  "3 retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 1 1 p0 1" },
	{ "2 queue_mode MQ 0 1 1 round-robin 0 1 0 p0", "0 0 1 1 round-robin 0 1 1 p0 1" },
	{ "2 queue_mode Rq 0 1 1 round-robin 0 1 0 p0", "0 0 1 1 round-robin 0 1 1 p0 1" },
	{ "1 Retain_Attached_HW_Handler 0 1 1 round-robin 0 1 0 p0",
	  "1 retain_attached_hw_handler 0 1 1 round-robin 0 1 1 p0 1" },
	{ "2 PG_INIT_RETRIES 3 0 1 1 round-robin 0 1 0 p0",
	  "2 pg_init_retries 3 0 1 1 round-robin 0 1 1 p0 1" },
	/* every feature, printed in the kernel's order and counted 1+2+2+1+2 */
	{ "8 queue_mode bio pg_init_delay_msecs 60000 retain_attached_hw_handler "
	  "pg_init_retries 1 queue_if_no_path 0 1 1 round-robin 0 1 0 p0",
	  "8 queue_if_no_path pg_init_retries 1 pg_init_delay_msecs 60000 "
	  "retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 1 1 p0 1" },
	/* the last setting wins; a later rq drops bio and what it implied */
	{ "4 queue_mode bio queue_mode rq 0 1 1 round-robin 0 1 0 p0",
	  "0 0 1 1 round-robin 0 1 1 p0 1" },
	{ "4 queue_mode rq queue_mode bio 0 1 1 round-robin 0 1 0 p0",
	  "3 retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 1 1 p0 1" },
	{ "4 pg_init_retries 3 pg_init_retries 50 0 1 1 round-robin 0 1 0 p0",
	  "2 pg_init_retries 50 0 1 1 round-robin 0 1 1 p0 1" },
	{ "2 queue_if_no_path queue_if_no_path 0 1 1 round-robin 0 1 0 p0",
	  "1 queue_if_no_path 0 1 1 round-robin 0 1 1 p0 1" },
	/* "%u" as the kernel's sscanf reads it: truncated to 32 bits */
	{ "2 pg_init_retries 4294967297 0 1 1 round-robin 0 1 0 p0",
	  "2 pg_init_retries 1 0 1 1 round-robin 0 1 1 p0 1" },
	/* round-robin: repeat_count above 1 is forced to 1, 0 is kept; the
	 * selector ignores its own arguments */
	{ "0 0 1 1 round-robin 0 2 0 p0 p1", "0 0 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "0 0 1 1 round-robin 0 2 1 p0 0 p1 5", "0 0 1 1 round-robin 0 2 1 p0 0 p1 1" },
	{ "0 0 1 1 round-robin 2 a b 1 0 p0", "0 0 1 1 round-robin 0 1 1 p0 1" },
	/* queue-length */
	{ "0 0 1 1 queue-length 0 2 0 p0 p1", "0 0 1 1 queue-length 0 2 1 p0 1 p1 1" },
	{ "0 0 1 1 queue-length 0 2 1 p0 3 p1 0", "0 0 1 1 queue-length 0 2 1 p0 1 p1 0" },
	/* service-time: [<repeat_count> [<relative_throughput>]], default 1 1 */
	{ "0 0 1 1 service-time 0 2 0 p0 p1", "0 0 1 1 service-time 0 2 2 p0 1 1 p1 1 1" },
	{ "0 0 1 1 service-time 0 2 1 p0 2 p1 0", "0 0 1 1 service-time 0 2 2 p0 1 1 p1 0 1" },
	{ "0 0 1 1 service-time 0 2 2 p0 1 100 p1 1 0",
	  "0 0 1 1 service-time 0 2 2 p0 1 100 p1 1 0" },
	/* historical-service-time: the group prints "2 <base_weight>
	 * <threshold_multiplier>", each path a 0 whatever its repeat_count */
	{ "0 0 1 1 historical-service-time 0 2 0 p0 p1",
	  "0 0 1 1 historical-service-time 2 972 0 2 1 p0 0 p1 0" },
	{ "0 0 1 1 historical-service-time 1 500 2 1 p0 5 p1 1",
	  "0 0 1 1 historical-service-time 2 500 0 2 1 p0 0 p1 0" },
	{ "0 0 1 1 historical-service-time 2 0 3 1 0 p2",
	  "0 0 1 1 historical-service-time 2 0 3 1 1 p2 0" },
	{ "0 0 1 1 historical-service-time 2 1023 1 1 0 p3",
	  "0 0 1 1 historical-service-time 2 1023 1 1 1 p3 0" },
	/* several groups, each its own selector; the initial group printed */
	{ "1 queue_if_no_path 0 4 3 round-robin 0 1 1 p0 0 queue-length 0 1 1 p1 7 "
	  "service-time 0 1 2 p2 5 50 historical-service-time 0 1 0 p3",
	  "1 queue_if_no_path 0 4 3 round-robin 0 1 1 p0 0 queue-length 0 1 1 p1 1 "
	  "service-time 0 1 2 p2 1 50 historical-service-time 2 972 0 1 1 p3 0" },
	{ "0 0 2 2 round-robin 0 2 1 p0 1 p1 1 round-robin 0 2 1 p2 1 p3 1",
	  "0 0 2 2 round-robin 0 2 1 p0 1 p1 1 round-robin 0 2 1 p2 1 p3 1" },
	/* an initial group past the last one: no next group, 1 is printed
	 * (bad-tables x15) */
	{ "0 0 1 2 round-robin 0 1 0 p0", "0 0 1 1 round-robin 0 1 1 p0 1" },
	{ "0 0 2 1024 round-robin 0 1 0 p0 round-robin 0 1 0 p1",
	  "0 0 2 1 round-robin 0 1 1 p0 1 round-robin 0 1 1 p1 1" },
	/* no groups at all (bad-tables x18, zero-groups) */
	{ "0 0 0 0", "0 0 0 0" },
	{ "1 queue_if_no_path 0 0 0", "1 queue_if_no_path 0 0 0" },
	/* a path named twice, in a group (bad-tables x34) and across groups */
	{ "0 0 1 1 round-robin 0 2 0 p0 p0", "0 0 1 1 round-robin 0 2 1 p0 1 p0 1" },
	{ "0 0 2 2 service-time 0 1 0 p1 queue-length 0 2 0 p1 p2",
	  "0 0 2 2 service-time 0 1 2 p1 1 1 queue-length 0 2 1 p1 1 p2 1" },
	/* all four paths in one group */
	{ "0 0 1 1 queue-length 0 4 0 p3 p2 p1 p0",
	  "0 0 1 1 queue-length 0 4 1 p3 1 p2 1 p1 1 p0 1" },
	/* paths are shown by their own strings */
	{ "0 0 1 1 round-robin 0 1 0 mem:p0", "0 0 1 1 round-robin 0 1 1 mem:p0 1" },
	/* white space is only a separator */
	{ "  0\t0 1   1 round-robin 0 1 0 p0\n ", "0 0 1 1 round-robin 0 1 1 p0 1" },
	/* hardware handlers: printed as "1 NAME", never with their args */
	{ "0 1 " HH " 1 1 round-robin 0 1 0 p0", "0 1 " HH " 1 1 round-robin 0 1 1 p0 1" },
	{ "2 pg_init_retries 5 3 " HH " a b 1 1 round-robin 0 2 0 p0 p1",
	  "2 pg_init_retries 5 1 " HH " 1 1 round-robin 0 2 1 p0 1 p1 1" },
	{ "1 retain_attached_hw_handler 1 " HH " 1 1 round-robin 0 1 0 p0",
	  "1 retain_attached_hw_handler 1 " HH " 1 1 round-robin 0 1 1 p0 1" },
	/* bio-based multipath drops hardware handler args unread, so even an
	 * unknown handler is accepted there */
	{ "2 queue_mode bio 2 no-such-handler x 1 1 round-robin 0 1 0 p0",
	  "3 retain_attached_hw_handler queue_mode bio 0 1 1 round-robin 0 1 1 p0 1" },
	/* the handler is looked up per path: with no path nothing is looked up */
	{ "0 1 no-such-handler 0 0", "0 1 no-such-handler 0 0" },
};

static void check_round_trip(const struct round_trip *rt)
{
	struct umpath_map *m1, *m2;
	char first[4096];
	char err[256];

	m1 = create(rt->in, SIZE);
	snprintf(first, sizeof(first), "%s", table_of(m1));
	CHECK_STR(rt->in, first, rt->out);

	/* Fixed point: the printed table makes the same map again... */
	m2 = create(first, SIZE);
	CHECK_STR(first, table_of(m2), first);
	umpath_map_free(m2);

	/* ...and reloads into a live map as itself. */
	CHECK(umpath_map_load(m1, first, err, sizeof(err)) == 0);
	CHECK_STR(rt->in, table_of(m1), first);	/* not live until resume */
	CHECK(umpath_map_resume(m1) == 0);
	CHECK(!umpath_map_is_suspended(m1));
	CHECK_STR(first, table_of(m1), first);
	umpath_map_free(m1);
}

/* ---- refusals --------------------------------------------------------- */

struct refusal {
	const char *table;
	int err;		/* negative errno */
	const char *reason;	/* the kernel's ti->error */
	uint64_t size;		/* 0: SIZE */
};

static const struct refusal refusals[] = {
	/* tests/conformance/bad-tables.kernel, every one */
	{ "", -EINVAL, "invalid number of feature args", 0 },
	{ "0", -EINVAL, "invalid number of hardware handler args", 0 },
	{ "0 0", -EINVAL, "invalid number of priority groups", 0 },
	{ "0 0 1", -EINVAL, "invalid initial priority group number", 0 },
	{ "0 0 1 1", -EINVAL, "priority group count mismatch", 0 },
	{ "0 0 1 1 round-robin", -EINVAL, "not enough priority group arguments", 0 },
	{ "0 0 1 1 round-robin 0", -EINVAL, "invalid number of paths", 0 },
	{ "0 0 1 1 round-robin 0 0 0", -EINVAL, "invalid number of paths", 0 },
	{ "0 0 1 1 round-robin 0 2 1 p0 1", -EINVAL, "not enough path parameters", 0 },
	{ "0 0 1 1 round-robin 0 2 1 p0 1 p1", -EINVAL, "not enough path parameters", 0 },
	{ "0 0 1 1 round-robin 0 1 2 p0 1 1", -EINVAL,
	  "round-robin ps: incorrect number of arguments", 0 },
	{ "0 0 1 1 round-robin 0 1 1 p0 x", -EINVAL, "round-robin ps: invalid repeat count", 0 },
	{ "0 0 1 1 no-such-selector 0 1 0 p0", -EINVAL, "unknown path selector type", 0 },
	{ "0 0 2 1 round-robin 0 1 0 p0", -EINVAL, "priority group count mismatch", 0 },
	{ "0 0 1 0 round-robin 0 1 0 p0", -EINVAL, "invalid initial priority group", 0 },
	{ "0 0 0 1", -EINVAL, "invalid initial priority group", 0 },
	{ "9 a b c d e f g h i 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "invalid number of feature args", 0 },
	{ "1 bogus_feature 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "Unrecognised multipath feature request", 0 },
	{ "2 pg_init_retries 0 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "pg_init_retries must be between 1 and 50", 0 },
	{ "2 pg_init_retries 51 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "pg_init_retries must be between 1 and 50", 0 },
	{ "1 pg_init_retries 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "Unrecognised multipath feature request", 0 },
	{ "2 pg_init_delay_msecs 60001 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "pg_init_delay_msecs must be between 0 and 60000", 0 },
	{ "2 queue_mode nvme 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "Unknown 'queue_mode' requested", 0 },
	{ "0 0 1 1 round-robin 0 1 0 p7", -ENOENT, "error getting device", 0 },
	{ "0 0 1 1 round-robin 0 1 0 nonexistent", -ENOENT, "error getting device", 0 },
	{ "0 0 1 1 service-time 0 1 3 p0 1 1 1", -EINVAL,
	  "service-time ps: incorrect number of arguments", 0 },
	{ "0 0 1 1 service-time 0 1 2 p0 1 101", -EINVAL,
	  "service-time ps: invalid relative_throughput value", 0 },
	{ "0 0 1 1 queue-length 0 1 2 p0 1 1", -EINVAL,
	  "queue-length ps: incorrect number of arguments", 0 },
	{ "0 0 1 1 round-robin 0 1 1 p0 -1", -EINVAL, "round-robin ps: invalid repeat count", 0 },
	{ "0 0 1 1 round-robin 0 1025 0 p0", -EINVAL, "invalid number of paths", 0 },
	{ "0 0 1 1 round-robin 2000 1 0 p0", -EINVAL, "invalid number of path selector args", 0 },

	/* the other ways of reaching the same reasons */
	{ "3 queue_if_no_path", -EINVAL, "invalid number of feature args", 0 },
	{ "x 0 0 0", -EINVAL, "invalid number of feature args", 0 },
	{ "1 queue_mode 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "Unrecognised multipath feature request", 0 },
	{ "2 queue_if_no_path bogus 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "Unrecognised multipath feature request", 0 },
	{ "2 pg_init_retries -1 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "pg_init_retries must be between 1 and 50", 0 },
	{ "2 pg_init_delay_msecs x 0 1 1 round-robin 0 1 0 p0", -EINVAL,
	  "pg_init_delay_msecs must be between 0 and 60000", 0 },
	{ "0 2 " HH, -EINVAL, "invalid number of hardware handler args", 0 },
	{ "0 1025 0 0", -EINVAL, "invalid number of hardware handler args", 0 },
	{ "0 0 1025 1", -EINVAL, "invalid number of priority groups", 0 },
	{ "0 0 x 1", -EINVAL, "invalid number of priority groups", 0 },
	{ "0 0 1 1025 round-robin 0 1 0 p0", -EINVAL, "invalid initial priority group number", 0 },
	{ "0 0 1 1 round-robin 1", -EINVAL, "invalid number of path selector args", 0 },
	{ "0 0 1 1 round-robin 0 1 1025 p0", -EINVAL, "invalid number of selector args", 0 },
	{ "0 0 1 1 round-robin 0 1 x p0", -EINVAL, "invalid number of selector args", 0 },
	{ "0 0 1 1 round-robin 0 1 0 p0 round-robin 0 1 0 p1", -EINVAL,
	  "priority group count mismatch", 0 },
	{ "0 0 2 1 round-robin 0 1 0 p0 x", -EINVAL, "not enough priority group arguments", 0 },
	{ "0 0 1 1 round-robin 0 1 0 mem:nonexistent", -ENOENT, "error getting device", 0 },
	/* a later group or path failing after earlier paths were opened */
	{ "0 0 2 1 round-robin 0 2 0 p0 p1 round-robin 0 1 0 p9", -ENOENT,
	  "error getting device", 0 },
	{ "0 0 2 1 round-robin 0 2 0 p0 p1 service-time 0 1 1 p2 x", -EINVAL,
	  "service-time ps: invalid repeat count", 0 },
	{ "0 0 1 1 queue-length 0 3 1 p0 1 p1 1 p2 x", -EINVAL,
	  "queue-length ps: invalid repeat count", 0 },
	/* the selectors' other reasons */
	{ "0 0 1 1 queue-length 0 1 1 p0 x", -EINVAL, "queue-length ps: invalid repeat count", 0 },
	{ "0 0 1 1 service-time 0 1 1 p0 x", -EINVAL, "service-time ps: invalid repeat count", 0 },
	{ "0 0 1 1 service-time 0 1 2 p0 1 x", -EINVAL,
	  "service-time ps: invalid relative_throughput value", 0 },
	{ "0 0 1 1 historical-service-time 0 1 2 p0 1 1", -EINVAL,
	  "historical-service-time ps: incorrect number of arguments", 0 },
	{ "0 0 1 1 historical-service-time 0 1 1 p0 x", -EINVAL,
	  "historical-service-time ps: invalid repeat count", 0 },
	/* a selector refusing its own arguments: only historical-service-time
	 * checks them (more than 2, base_weight >= 1024, not numbers) */
	{ "0 0 1 1 historical-service-time 3 1 2 3 1 0 p0", -EINVAL,
	  "path selector constructor failed", 0 },
	{ "0 0 1 1 historical-service-time 1 1024 1 0 p0", -EINVAL,
	  "path selector constructor failed", 0 },
	{ "0 0 1 1 historical-service-time 2 972 x 1 0 p0", -EINVAL,
	  "path selector constructor failed", 0 },
	/* an unregistered hardware handler, on the first path */
	{ "0 1 no-such-handler 1 1 round-robin 0 2 0 p0 p1", -EINVAL,
	  "error attaching hardware handler", 0 },
	/* a map larger than its paths */
	{ "0 0 1 1 round-robin 0 1 0 p0", -EINVAL, "device too small for target",
	  SIZE + 512 },
	{ "0 0 2 1 round-robin 0 1 0 p0 round-robin 0 1 0 p1", -EINVAL,
	  "device too small for target", 2 * SIZE },
	/* "no device given" (parse_path) is not reachable: a path's words are
	 * 1 + #selector args >= 1, and "not enough path parameters" is checked
	 * first.  "couldn't allocate priority group" needs malloc to fail. */
};

static void check_refusal(const struct refusal *rf)
{
	struct umpath_map *m = (struct umpath_map *)&m;	/* must stay untouched */
	struct umpath_map *good;
	uint64_t size = rf->size ? rf->size : SIZE;
	char err[256];
	int r;

	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	r = umpath_map_new(ctx, "bad", rf->table, size, err, sizeof(err), &m);
	if (r != rf->err) {
		fprintf(stderr, "'%s': got %d (%s), want %d\n", rf->table, r, err, rf->err);
		exit(1);
	}
	CHECK(m == (struct umpath_map *)&m);
	CHECK_STR(rf->table, err, rf->reason);

	/* The same refusal from a load into a live map, which keeps its table. */
	good = create("0 0 1 1 round-robin 0 4 0 p0 p1 p2 p3", SIZE);
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	if (rf->size <= SIZE) {
		CHECK(umpath_map_load(good, rf->table, err, sizeof(err)) == rf->err);
		CHECK_STR(rf->table, err, rf->reason);
		CHECK(umpath_map_resume(good) == 0);
		CHECK_STR(rf->table, table_of(good),
			  "0 0 1 1 round-robin 0 4 1 p0 1 p1 1 p2 1 p3 1");
	}
	umpath_map_free(good);

	/* Nothing was left behind. */
	check_nothing_open(rf->table);
}

/* Refusals decided by the map rather than the table language. */
static void check_size_refusals(void)
{
	static const char *const q[] = { "q0" };
	struct umpath_map *m = NULL;
	char err[256];

	/* Size 0 takes the paths' size... */
	CHECK(umpath_map_new(ctx, "s", "0 0 1 1 round-robin 0 2 0 p0 p1", 0, err, sizeof(err),
			     &m) == 0);
	CHECK(umpath_map_size(m) == SIZE);
	umpath_map_free(m);
	/* ...which a map without paths does not have... */
	CHECK(umpath_map_new(ctx, "s", "0 0 0 0", 0, err, sizeof(err), &m) == -EINVAL);
	CHECK_STR("0 0 0 0", err, "a map without paths needs a size");
	/* ...nor paths of different sizes. */
	CHECK(umpath_mem_store_new(ctx, SIZE / 2, 1, q, 1) == 0);
	m = NULL;
	CHECK(umpath_map_new(ctx, "s", "0 0 2 1 round-robin 0 1 0 p0 round-robin 0 1 0 q0", 0,
			     err, sizeof(err), &m) == -EINVAL);
	CHECK(!m);
	CHECK_STR("p0 and q0", err, "paths differ in size");
	CHECK_STR("p0 and q0", umpath_error_detail(),
		  "p0: 67108864 bytes, q0: 33554432 bytes");
	/* The smallest path bounds an explicit size. */
	CHECK(umpath_map_new(ctx, "s", "0 0 2 1 round-robin 0 1 0 p0 round-robin 0 1 0 q0",
			     SIZE / 2 + 512, err, sizeof(err), &m) == -EINVAL);
	CHECK_STR("p0 and q0", err, "device too small for target");
	CHECK_STR("p0 and q0", umpath_error_detail(), "q0: 33554432 bytes, the map has 33554944");
	m = create("0 0 2 1 round-robin 0 1 0 p0 round-robin 0 1 0 q0", SIZE / 2);
	CHECK(umpath_map_size(m) == SIZE / 2);
	/* A load is checked against the map's size. */
	CHECK(umpath_map_load(m, "0 0 1 1 round-robin 0 1 0 q0", err, sizeof(err)) == 0);
	CHECK(umpath_map_clear(m) == 0);
	umpath_map_free(m);
	m = create("0 0 1 1 round-robin 0 1 0 p0", SIZE);
	CHECK(umpath_map_load(m, "0 0 1 1 round-robin 0 1 0 q0", err, sizeof(err)) == -EINVAL);
	CHECK_STR("load q0", err, "device too small for target");
	CHECK_STR("load q0", umpath_error_detail(), "q0: 33554432 bytes, the map has 67108864");
	CHECK_STR("load q0", table_of(m), "0 0 1 1 round-robin 0 1 1 p0 1");
	umpath_map_free(m);
	/* A map without paths may be any size. */
	m = create("0 0 0 0", 1ull << 50);
	CHECK(umpath_map_size(m) == 1ull << 50);
	umpath_map_free(m);
	/* A NULL table is the empty one. */
	CHECK(umpath_map_new(ctx, "s", NULL, SIZE, err, sizeof(err), &m) == -EINVAL);
	CHECK_STR("NULL", err, "invalid number of feature args");
	/* err may be NULL. */
	CHECK(umpath_map_new(ctx, "s", "0 0 1 1 round-robin 0 1 0 p7", SIZE, NULL, 0, &m) ==
	      -ENOENT);
	check_nothing_open("size refusals");
}

/* ---- INFO status right after creation --------------------------------- */

static const struct round_trip statuses[] = {
	/* tests/conformance/basic-round-robin, selector-args, features, zero-groups */
	{ "0 0 1 1 round-robin 0 2 1 p0 1 p1 1", "2 1 0 0 1 1 E 0 2 0 p0 A 0 p1 A 0" },
	{ "0 0 1 1 queue-length 0 2 0 p0 p1", "2 1 0 0 1 1 E 0 2 1 p0 A 0 0 p1 A 0 0" },
	{ "0 0 1 1 service-time 0 2 0 p0 p1", "2 1 0 0 1 1 E 0 2 2 p0 A 0 0 1 p1 A 0 0 1" },
	{ "0 0 1 1 service-time 0 2 2 p0 1 100 p1 1 0",
	  "2 1 0 0 1 1 E 0 2 2 p0 A 0 0 100 p1 A 0 0 0" },
	{ "2 queue_mode bio 0 1 1 round-robin 0 2 1 p0 1 p1 1",
	  "2 1 0 0 1 1 E 0 2 0 p0 A 0 p1 A 0" },
	{ "6 pg_init_delay_msecs 0 queue_if_no_path pg_init_retries 50 QUEUE_IF_NO_PATH 0 1 1 "
	  "round-robin 0 2 1 p0 1 p1 1", "2 1 0 0 1 1 E 0 2 0 p0 A 0 p1 A 0" },
	{ "0 0 0 0", "2 1 0 0 0 0" },
	/* historical-service-time prints its group words in INFO too, and per
	 * path its average (1.0 fixed point), outstanding and stale_after */
	{ "0 0 1 1 historical-service-time 2 500 4 2 0 p0 p1",
	  "2 1 0 0 1 1 E 2 500 4 2 3 p0 A 0 1024 0 0 p1 A 0 1024 0 0" },
	/* several groups, all Enabled until I/O makes one Active (switch-group) */
	{ "0 0 2 2 round-robin 0 2 1 p0 1 p1 1 round-robin 0 2 1 p2 1 p3 1",
	  "2 1 0 0 2 2 E 0 2 0 p0 A 0 p1 A 0 E 0 2 0 p2 A 0 p3 A 0" },
	{ "0 0 3 1 queue-length 0 1 0 p0 service-time 0 1 0 p1 round-robin 0 2 0 p2 p2",
	  "2 1 0 0 3 1 E 0 1 1 p0 A 0 0 E 0 1 2 p1 A 0 0 1 E 0 2 0 p2 A 0 p2 A 0" },
	/* the hardware handler is never shown in INFO */
	{ "0 1 " HH " 1 1 round-robin 0 1 0 p0", "2 1 0 0 1 1 E 0 1 0 p0 A 0" },
};

static void check_status(const struct round_trip *st)
{
	struct umpath_map *m = create(st->in, SIZE);

	CHECK_STR(st->in, status_of(m), st->out);
	umpath_map_free(m);
}

/* ---- a hardware handler that always succeeds --------------------------- */

static void hh_activate(const char *path, const char *params, void *opaque,
			void (*complete)(void *token, enum umpath_pg_init_result r), void *token)
{
	complete(token, UMPATH_PG_INIT_OK);
}

/* Paths with a space or a backslash print escaped as the parser reads them,
 * so that a printed table loads back as itself; a path with a tab or a
 * newline (which would split the line) is refused. */
static void check_odd_names(void)
{
	static const char *const odd[] = { "b c", "x\\y" };
	struct umpath_map *m, *bad = NULL;
	char table[4096], err[256];

	CHECK(umpath_mem_store_new(ctx, SIZE, 2, odd, 0) == 0);
	m = create("0 0 1 1 round-robin 0 2 0 mem:b\\ c mem:x\\\\y", SIZE);
	CHECK_STR("odd table", table_of(m), "0 0 1 1 round-robin 0 2 1 mem:b\\ c 1 mem:x\\\\y 1");
	CHECK_STR("odd status", status_of(m),
		  "2 1 0 0 1 1 E 0 2 0 mem:b\\ c A 0 mem:x\\\\y A 0");
	snprintf(table, sizeof(table), "%s", table_of(m));
	CHECK(umpath_map_load(m, table, err, sizeof(err)) == 0);
	CHECK(umpath_map_resume(m) == 0);
	CHECK_STR("reloaded", table_of(m), table);
	char w0[] = "fail_path", w1[] = "mem:b c";
	char *argv[] = { w0, w1 };
	CHECK(umpath_map_message(m, 2, argv) == 0);
	umpath_map_free(m);

	CHECK(umpath_map_new(ctx, "bad", "0 0 1 1 round-robin 0 1 0 mem:a\\\nb", SIZE, err,
			     sizeof(err), &bad) == -EINVAL);
	CHECK(!bad);
	CHECK_STR("newline", err, "error getting device");
	CHECK_STR("newline", umpath_error_detail(),
		  "mem:a\\x0ab: a path may not contain tabs or line breaks");
	umpath_mem_reset(ctx);
}

/* A refused path: the kernel's reason in err, the path and the cause in
 * umpath_error_detail(). */
static void check_detail(const char *table, const char *reason, const char *detail)
{
	struct umpath_map *m = NULL;
	char err[256];

	CHECK(umpath_map_new(ctx, "bad", table, SIZE, err, sizeof(err), &m) < 0);
	CHECK_STR(table, err, reason);
	CHECK_STR(table, umpath_error_detail(), detail);
}

static void check_details(void)
{
	char table[8192], longname[5001], want[512];
	struct umpath_map *m;

	check_detail("0 0 1 1 round-robin 0 1 0 /nonexistent/x", "error getting device",
		     "/nonexistent/x: No such file or directory");
	check_detail("0 0 1 1 round-robin 0 1 0 /", "error getting device", "/: Is a directory");
	check_detail("0 0 1 1 round-robin 0 1 0 file:/?ro", "error getting device",
		     "file:/?ro: Is a directory");
	check_detail("0 0 1 1 round-robin 0 1 0 file:/tmp/x?bogus", "error getting device",
		     "file:/tmp/x?bogus: unknown file: option 'bogus' (direct, ro)");
	check_detail("0 0 1 1 round-robin 0 1 0 mem:zzz", "error getting device",
		     "mem:zzz: no in-memory store has this path");
	/* The check that opens nothing (config's reconfigure) says the same. */
	CHECK(umpath_table_check(ctx, "0 0 1 1 round-robin 0 1 0 mem:zzz", table,
				 sizeof(table)) == -ENOENT);
	CHECK_STR("check mem:zzz", table, "error getting device");
	CHECK_STR("check mem:zzz", umpath_error_detail(), "mem:zzz: no in-memory store has this path");
	CHECK(umpath_table_check(ctx, "0 0 1 1 round-robin 0 1 0 /nonexistent/x", table,
				 sizeof(table)) == -ENOENT);
	CHECK_STR("check /nonexistent/x", umpath_error_detail(),
		  "/nonexistent/x: No such file or directory");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 1 0 %s", longname);
	snprintf(want, sizeof(want), "%.124s...: File name too long", longname);
	check_detail(table, "error getting device", want);
	check_detail("", "invalid number of feature args", "the table is empty");
	check_detail("0 131072 multipath 0 0 1 1 round-robin 0 1 0 p0",
		     "invalid number of hardware handler args",
		     "this looks like a line of 'dmsetup table': give only the words "
		     "after \"multipath\"");
	check_nothing_open("details");

	m = create("0 0 2 1 round-robin 0 1 0 p0 round-robin 0 1 0 p1", SIZE);
	CHECK(umpath_map_message_str(m, "switch_group 99") == -EINVAL);
	CHECK_STR("switch_group", umpath_error_detail(), "switch_group 99: no such group (1..2)");
	CHECK(umpath_map_message_str(m, "disable_group x") == -EINVAL);
	CHECK_STR("disable_group", umpath_error_detail(),
		  "disable_group x: not a group number (1..2)");
	CHECK(umpath_map_message_str(m, "fail_path") == -EINVAL);
	CHECK_STR("fail_path", umpath_error_detail(), "fail_path: takes one argument");
	CHECK(umpath_map_message_str(m, "fail_path /nonexistent") == -ENOENT);
	CHECK_STR("fail_path", umpath_error_detail(), "fail_path /nonexistent: no such device");
	CHECK(umpath_map_message_str(m, "switch_group 2") == 0);
	umpath_map_free(m);
}

int main(void)
{
	static const struct umpath_hw_handler hh = { .name = HH, .activate = hh_activate };

	CHECK(umpath_ctx_new(NULL, &ctx) == 0);
	CHECK(umpath_register_hw_handler(ctx, &hh) == 0);
	new_store();

	for (size_t i = 0; i < sizeof(round_trips) / sizeof(round_trips[0]); i++)
		check_round_trip(&round_trips[i]);
	check_nothing_open("round trips");

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		check_refusal(&refusals[i]);
	check_size_refusals();

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		check_status(&statuses[i]);
	check_nothing_open("statuses");

	check_odd_names();
	check_details();

	umpath_ctx_free(ctx);
	return 0;
}
