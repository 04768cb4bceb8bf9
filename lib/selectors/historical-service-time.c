/* historical-service-time.c - the "historical-service-time" path selector,
 * after the kernel's drivers/md/dm-ps-historical-service-time.c (Linux 6.12).
 *
 * Each path keeps a time-weighted exponential moving average of the service
 * time of its completed I/Os (10-bit fixed point ns).  An I/O goes to the
 * path whose (1 + outstanding) * average is smallest.
 *
 * A path that has not completed anything for valid_count * average ns since
 * its last completion is "stale": its average is no longer trusted.  A stale
 * idle path is chosen outright, so a path that was once so slow it would
 * never win again (or every path of an idle device) gets one I/O to probe
 * whether it recovered; a stale busy path only gets its fair share by
 * outstanding count.
 *
 * Selector arguments: [<base_weight> [<threshold_multiplier>]]
 *	base_weight: EMA weight per ~16ms of service time, 0..1023 of 1024,
 *		default 972 (0.95); 0 keeps no history.
 *	threshold_multiplier: paths whose averages differ by no more than this
 *		factor are compared by outstanding count only; 0 (default) or 1
 *		has no effect.
 * Per-path arguments: [<repeat_count>], parsed and ignored (printed as 0).
 *
 * Time: the kernel reads ktime_get_ns() both when selecting and when an I/O
 * ends, and gets the dispatch time from the caller.  Here both reads go
 * through hst_now_ns, the I/O clock by default (ioclock.h: the dispatch
 * time is on it); unit tests point it at a
 * fake clock (declare it "extern uint64_t (*hst_now_ns)(void);").
 */
#include <errno.h>
#include <stdlib.h>

#include "ioclock.h"
#include "list.h"
#include "selector.h"

#define HST_MIN_IO		1

#define HST_FIXED_SHIFT		10	/* 10 bits of fraction */
#define HST_FIXED_MAX		(UINT64_MAX >> HST_FIXED_SHIFT)
#define HST_FIXED_1		(1 << HST_FIXED_SHIFT)
#define HST_FIXED_95		972
#define HST_MAX_INFLIGHT	HST_FIXED_1
#define HST_BUCKET_SHIFT	24	/* weight buckets of ~16ms */
#define HST_WEIGHT_COUNT	64

extern uint64_t (*hst_now_ns)(void);
uint64_t (*hst_now_ns)(void) = um_io_ns_fn;

struct selector {
	struct list_head valid_paths;
	struct list_head failed_paths;
	int valid_count;

	unsigned weights[HST_WEIGHT_COUNT];
	unsigned threshold_multiplier;
};

struct path_info {
	struct list_head list;
	struct ps_path *path;
	unsigned repeat_count;

	uint64_t historical_service_time;	/* fixed point */
	uint64_t stale_after;
	uint64_t last_finish;
	uint64_t outstanding;
};

/* x^n for x with frac_bits of fraction, by squaring, rounding each step as
 * the kernel's (kernel/sched/loadavg.c) does. */
static uint64_t fixed_power(uint64_t x, unsigned frac_bits, unsigned n)
{
	uint64_t result = 1ULL << frac_bits;

	if (!n)
		return result;
	for (;;) {
		if (n & 1) {
			result *= x;
			result += 1ULL << (frac_bits - 1);
			result >>= frac_bits;
		}
		n >>= 1;
		if (!n)
			break;
		x *= x;
		x += 1ULL << (frac_bits - 1);
		x >>= frac_bits;
	}
	return result;
}

/* a1 = a0 * w + next * (1 - w), w in [0, HST_FIXED_1]. */
static uint64_t fixed_ema(uint64_t last, uint64_t next, uint64_t weight)
{
	last *= weight;
	last += next * (HST_FIXED_1 - weight);
	last += 1ULL << (HST_FIXED_SHIFT - 1);
	return last >> HST_FIXED_SHIFT;
}

/* The weight of one sample lasting delta ns: base^(bucket + 1), and 0 past
 * the last bucket (~1s), where the old history is dropped entirely. */
static uint64_t hst_weight(const struct selector *s, uint64_t delta)
{
	uint64_t bucket = delta >> HST_BUCKET_SHIFT;

	if (bucket > HST_WEIGHT_COUNT - 1)
		bucket = HST_WEIGHT_COUNT - 1;
	return s->weights[bucket];
}

static void hst_set_weights(struct selector *s, unsigned base)
{
	if (base >= HST_FIXED_1)
		return;

	for (unsigned i = 0; i < HST_WEIGHT_COUNT - 1; i++)
		s->weights[i] = (unsigned)fixed_power(base, HST_FIXED_SHIFT, i + 1);
	s->weights[HST_WEIGHT_COUNT - 1] = 0;
}

/* The kernel gives no reason for refusing these arguments, only -EINVAL. */
static int hst_create(struct path_selector *ps, unsigned argc, char **argv)
{
	unsigned base_weight = HST_FIXED_95;
	unsigned threshold_multiplier = 0;
	struct selector *s;

	if (argc > 2)
		return -EINVAL;

	if (argc && (um_parse_uint(argv[0], &base_weight) || base_weight >= HST_FIXED_1))
		return -EINVAL;

	if (argc > 1 && um_parse_uint(argv[1], &threshold_multiplier))
		return -EINVAL;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	list_init(&s->valid_paths);
	list_init(&s->failed_paths);
	s->valid_count = 0;
	hst_set_weights(s, base_weight);
	s->threshold_multiplier = threshold_multiplier;
	ps->context = s;
	return 0;
}

static void free_paths(struct list_head *paths)
{
	struct path_info *pi, *next;

	list_for_each_entry_safe(pi, next, paths, list) {
		list_del_init(&pi->list);
		free(pi);
	}
}

static void hst_destroy(struct path_selector *ps)
{
	struct selector *s = ps->context;

	free_paths(&s->valid_paths);
	free_paths(&s->failed_paths);
	free(s);
	ps->context = NULL;
}

/* Unlike the other selectors the group prints its own arguments back, and
 * a path's table word is always 0 whatever repeat_count it was given. */
static void hst_status(struct path_selector *ps, struct ps_path *path,
		       enum ps_status_type type, struct sbuf *out)
{
	struct path_info *pi;

	if (!path) {
		struct selector *s = ps->context;

		sbuf_printf(out, "2 %u %u ", s->weights[0], s->threshold_multiplier);
		return;
	}

	pi = path->pscontext;
	switch (type) {
	case PS_STATUS_INFO:
		sbuf_printf(out, "%llu %llu %llu ",
			    (unsigned long long)pi->historical_service_time,
			    (unsigned long long)pi->outstanding,
			    (unsigned long long)pi->stale_after);
		break;
	case PS_STATUS_TABLE:
		sbuf_printf(out, "0 ");
		break;
	}
}

static int hst_add_path(struct path_selector *ps, struct ps_path *path,
			unsigned argc, char **argv, const char **error)
{
	struct selector *s = ps->context;
	unsigned repeat_count = HST_MIN_IO;
	struct path_info *pi;

	if (argc > 1) {
		*error = "historical-service-time ps: incorrect number of arguments";
		return -EINVAL;
	}

	if (argc && um_parse_uint(argv[0], &repeat_count)) {
		*error = "historical-service-time ps: invalid repeat count";
		return -EINVAL;
	}

	pi = malloc(sizeof(*pi));
	if (!pi) {
		*error = "historical-service-time ps: Error allocating path context";
		return -ENOMEM;
	}
	pi->path = path;
	pi->repeat_count = repeat_count;
	pi->historical_service_time = HST_FIXED_1;
	pi->outstanding = 0;
	pi->stale_after = 0;
	pi->last_finish = 0;
	path->pscontext = pi;

	list_add_tail(&pi->list, &s->valid_paths);
	s->valid_count++;
	return 0;
}

static void hst_fail_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_del_init(&pi->list);
	list_add(&pi->list, &s->failed_paths);
	s->valid_count--;
}

static int hst_reinstate_path(struct path_selector *ps, struct ps_path *path)
{
	struct selector *s = ps->context;
	struct path_info *pi = path->pscontext;

	list_move_tail(&pi->list, &s->valid_paths);
	s->valid_count++;
	return 0;
}

/*
 * < 0: pi1 is the better path for the incoming I/O, > 0: pi2 is, 0: either.
 *
 * The kernel holds outstanding and stale_after in long long here; the
 * subtractions are done unsigned and converted, which gives its wrapping
 * results without C's signed overflow.
 */
static long long hst_compare(const struct path_info *pi1, const struct path_info *pi2,
			     uint64_t time_now, const struct selector *s)
{
	uint64_t hst1 = pi1->historical_service_time, hst2 = pi2->historical_service_time;
	uint64_t out1 = pi1->outstanding, out2 = pi2->outstanding;
	uint64_t stale1 = pi1->stale_after, stale2 = pi2->stale_after;
	int pi2_better, over_threshold;

	/* Averages too close to tell apart: fewer outstanding wins. */
	if (hst1 > hst2)
		over_threshold = hst1 > s->threshold_multiplier * hst2;
	else
		over_threshold = hst2 > s->threshold_multiplier * hst1;

	if (!over_threshold)
		return (long long)(out1 - out2);

	/* An idle stale path wins (probe it); of two idle paths, the one that
	 * went stale first; an idle path beats a busy one. */
	if ((!out1 && stale1 < time_now) || (!out2 && stale2 < time_now) ||
	    (!out1 && !out2))
		return (long long)((!out2 ? stale1 : 0) - (!out1 ? stale2 : 0));

	/* Estimated service time; no multiply needed for equal queues. */
	if (out1 == out2) {
		pi2_better = hst1 > hst2;
	} else {
		/* From 1024 in flight the product could overflow at the
		 * largest averages; drop the fraction. */
		if ((long long)out1 >= HST_MAX_INFLIGHT ||
		    (long long)out2 >= HST_MAX_INFLIGHT) {
			hst1 >>= HST_FIXED_SHIFT;
			hst2 >>= HST_FIXED_SHIFT;
		}
		pi2_better = (1 + out1) * hst1 > (1 + out2) * hst2;
	}

	/* A stale winner's average is not trusted: only its fair share. */
	if (pi2_better) {
		if (stale2 < time_now)
			return (long long)(out1 - out2);
		return 1;
	}
	if (stale1 < time_now)
		return (long long)(out1 - out2);
	return -1;
}

static struct ps_path *hst_select_path(struct path_selector *ps, size_t nr_bytes)
{
	struct selector *s = ps->context;
	struct path_info *pi, *best = NULL;
	uint64_t time_now = hst_now_ns();

	if (list_empty(&s->valid_paths))
		return NULL;

	list_for_each_entry(pi, &s->valid_paths, list)
		if (!best || hst_compare(pi, best, time_now, s) < 0)
			best = pi;

	if (!best)
		return NULL;

	/* Last used goes last: least preferred on ties. */
	list_move_tail(&best->list, &s->valid_paths);
	return best->path;
}

static int hst_start_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes)
{
	struct path_info *pi = path->pscontext;

	pi->outstanding++;
	return 0;
}

/* The kernel's time_after64/time_before64: wrap-safe ordering. */
static int time_after64(uint64_t a, uint64_t b)
{
	return (int64_t)(b - a) < 0;
}

static uint64_t path_service_time(struct path_info *pi, uint64_t start_time)
{
	uint64_t now = hst_now_ns();

	/* An earlier request finished after this one was sent: count from
	 * then, as if the two had been submitted one after the other. */
	if (time_after64(pi->last_finish, start_time))
		start_time = pi->last_finish;

	pi->last_finish = now;
	if (time_after64(start_time, now))
		return 0;
	return now - start_time;
}

static int hst_end_io(struct path_selector *ps, struct ps_path *path, size_t nr_bytes,
		      uint64_t start_time_ns)
{
	struct path_info *pi = path->pscontext;
	struct selector *s = ps->context;
	uint64_t st, sample;

	st = path_service_time(pi, start_time_ns);
	pi->outstanding--;
	sample = st * HST_FIXED_1;	/* wraps past ~208 days, as the kernel's */
	if (sample > HST_FIXED_MAX)
		sample = HST_FIXED_MAX;
	pi->historical_service_time = fixed_ema(pi->historical_service_time, sample,
						hst_weight(s, st));

	/* Fresh again: stale if nothing else completes within one average
	 * per usable path. */
	pi->stale_after = pi->last_finish +
		((uint64_t)s->valid_count * (pi->historical_service_time >> HST_FIXED_SHIFT));
	return 0;
}

const struct path_selector_type ps_historical_service_time = {
	.name		= "historical-service-time",
	.table_args	= 1,
	.info_args	= 3,
	.create		= hst_create,
	.destroy	= hst_destroy,
	.status		= hst_status,
	.add_path	= hst_add_path,
	.fail_path	= hst_fail_path,
	.reinstate_path	= hst_reinstate_path,
	.select_path	= hst_select_path,
	.start_io	= hst_start_io,
	.end_io		= hst_end_io,
};
