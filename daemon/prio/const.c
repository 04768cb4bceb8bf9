/* const.c - multipathd's `prio const`: the priority the configuration
 * gives each path (its line's "prio N", 1 when not given; with no such
 * line every path is 1, as multipathd's const). */
#include <errno.h>
#include <stdio.h>

#include "../prio.h"

static int const_check(const char *args, char *why, size_t len)
{
	if (args) {
		snprintf(why, len, "prio_args: const takes none");
		return -EINVAL;
	}
	return 0;
}

static int const_prio(struct umd *d, const char *args, const struct umd_prio_path *p,
		      unsigned timeout_ms, unsigned *ret, char *why, size_t len)
{
	(void)d, (void)args, (void)timeout_ms, (void)why, (void)len;
	*ret = p->configured;
	return 0;
}

const struct umd_prioritizer umd_prio_const = {
	.name = "const",
	.check_args = const_check,
	.prio = const_prio,
};
