/* selector.c - the path selector registry and helpers selectors share. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <umpath/umpath.h>

#include "selector.h"

static const struct path_selector_type *const selectors[] = {
	&ps_round_robin,
	&ps_queue_length,
	&ps_service_time,
	&ps_historical_service_time,
};

const struct path_selector_type *ps_lookup(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(selectors) / sizeof(selectors[0]); i++)
		if (!strcmp(selectors[i]->name, name))
			return selectors[i];
	return NULL;
}

const char *umpath_selector_name(unsigned i)
{
	return i < sizeof(selectors) / sizeof(selectors[0]) ? selectors[i]->name : NULL;
}

int um_parse_uint(const char *arg, unsigned *ret_value)
{
	unsigned long long v = 0;
	const char *p = arg;

	if (!p)
		return -EINVAL;
	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p))
		v = v * 10 + (unsigned)(*p++ - '0');	/* wraps like the kernel */
	if (*p)
		return -EINVAL;	/* "%u%c" matched a second item */
	*ret_value = (unsigned)v;
	return 0;
}

int um_parse_int_prefix(const char *arg, int *ret_value)
{
	const char *p = arg;
	long long v = 0;
	bool neg = false;

	if (!p)
		return -EINVAL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		if (v > (long long)INT_MAX + 1)
			return -ERANGE;
	}
	v = neg ? -v : v;
	if (v > INT_MAX)
		return -ERANGE;
	*ret_value = (int)v;
	return 0;
}

uint64_t um_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
