/* path_latency.c - multipathd's `prio path_latency`: prio_args
 * "io_num=N base_num=B" (N reads, 20 to 200, default 100; B the base of
 * the log scale, 1.1 to 10, default 10^(1/4): four steps a decade).  Each
 * path's first block is read N times, one after the other; the priority
 * is how many steps of B the geometric mean of those latencies lies below
 * 100 s, counted from 1 us: a path 10 times faster is 4 priorities higher
 * by default.  A read that fails or passes checker_timeout gives the path
 * priority 0. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../prio.h"

#define PL_MIN_IO 20
#define PL_MAX_IO 200
#define PL_DEF_IO 100
#define PL_MIN_BASE 1.1
#define PL_MAX_BASE 10.0
#define PL_MAX_LAT_US 1e8	/* 100 s: priority 0 at and past it */

static int parse(const char *args, unsigned *io_num, double *base, char *why, size_t len)
{
	char *copy, *save = NULL;
	int r = 0;

	*io_num = PL_DEF_IO;
	*base = pow(10.0, 0.25);
	if (!args)
		return 0;
	copy = strdup(args);
	if (!copy) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	for (char *t = strtok_r(copy, " \t", &save); t && !r; t = strtok_r(NULL, " \t", &save)) {
		char *end;

		errno = 0;
		if (!strncmp(t, "io_num=", 7)) {
			long v = strtol(t + 7, &end, 10);

			if (errno || end == t + 7 || *end || v < PL_MIN_IO || v > PL_MAX_IO)
				r = -EINVAL;
			else
				*io_num = (unsigned)v;
		} else if (!strncmp(t, "base_num=", 9)) {
			double v = strtod(t + 9, &end);

			if (errno || end == t + 9 || *end || !(v >= PL_MIN_BASE && v <= PL_MAX_BASE))
				r = -EINVAL;
			else
				*base = v;
		} else {
			r = -EINVAL;
		}
	}
	free(copy);
	if (r)
		snprintf(why, len, "prio_args: path_latency: expected io_num=N (%d to %d) "
			 "base_num=B (%.1f to %.0f)", PL_MIN_IO, PL_MAX_IO, PL_MIN_BASE, PL_MAX_BASE);
	return r;
}

static int pl_check(const char *args, char *why, size_t len)
{
	unsigned n;
	double b;

	return parse(args, &n, &b, why, len);
}

static int pl_prio(struct umd *d, const char *args, const struct umd_prio_path *p,
		   unsigned timeout_ms, unsigned *ret, char *why, size_t len)
{
	struct umd_prio_handle *h;
	double base, lg_base, lg_sum = 0, lg_max, lg_avg;
	unsigned io_num;
	int r;

	*ret = 0;
	r = parse(args, &io_num, &base, why, len);
	if (r < 0)
		return r;
	r = umd_prio_open(d, p->path, &h, why, len);
	if (r < 0)
		return r;
	lg_base = log(base);
	for (unsigned i = 0; i < io_num; i++) {
		uint64_t ns;
		double us;

		r = umd_prio_read_ns(h, timeout_ms, &ns);
		if (r < 0) {
			snprintf(why, len, "read %u of %u: %s", i + 1, io_num,
				 r == -ETIMEDOUT ? "no answer within checker_timeout" : strerror(-r));
			umd_prio_close(h);
			return r;
		}
		/* Log-normal latencies: their logs are averaged.  Under
		 * 1 us counts as 1 us, the scale's floor. */
		us = (double)ns / 1000.0;
		lg_sum += us > 1.0 ? log(us) / lg_base : 0.0;
	}
	umd_prio_close(h);
	lg_avg = lg_sum / io_num;
	lg_max = log(PL_MAX_LAT_US) / lg_base;
	if (lg_avg >= lg_max)
		*ret = 0;
	else
		*ret = (unsigned)(lg_max - lg_avg);
	return 0;
}

const struct umd_prioritizer umd_prio_path_latency = {
	.name = "path_latency",
	.check_args = pl_check,
	.prio = pl_prio,
};
