/* weightedpath.c - multipathd's `prio weightedpath`: prio_args
 * "devname REGEX PRIO [REGEX PRIO]...", the priority of the first regular
 * expression (POSIX extended) that matches the path as the configuration
 * writes it; 0 when none does.  multipathd's hbtl, serial and wwn forms
 * name SCSI devices of the host, which umpath's paths are not. */
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../prio.h"

#define WP_MAX_PRIO 1000000u	/* as a path line's prio */
#define WP_MAX_WORDS 256

/* The words of args, in a copy the caller frees; NULL on no memory. */
static char *split(const char *args, char **w, unsigned *n)
{
	char *copy = strdup(args), *save = NULL;

	*n = 0;
	if (!copy)
		return NULL;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (*n == WP_MAX_WORDS)
			break;
		w[(*n)++] = t;
	}
	return copy;
}

static bool parse_prio(const char *s, unsigned *ret)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > WP_MAX_PRIO)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* Walk the pairs; with path, the first match's prio into ret (1 if one
 * matched).  0 or -EINVAL (why). */
static int walk(const char *args, const char *path, unsigned *ret, char *why, size_t len)
{
	char *w[WP_MAX_WORDS + 1], *copy;
	unsigned n, prio;
	int r = 0;

	if (!args) {
		snprintf(why, len, "prio_args: weightedpath needs \"devname REGEX PRIO ...\"");
		return -EINVAL;
	}
	copy = split(args, w, &n);
	if (!copy) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	if (n == WP_MAX_WORDS) {
		snprintf(why, len, "prio_args: more than %u words", WP_MAX_WORDS - 1);
		r = -EINVAL;
	} else if (!n || strcmp(w[0], "devname")) {
		snprintf(why, len, "prio_args: weightedpath: expected devname first%s",
			 n && (!strcmp(w[0], "hbtl") || !strcmp(w[0], "serial") ||
			       !strcmp(w[0], "wwn")) ?
				 " (hbtl, serial and wwn name the host's SCSI devices; umpath "
				 "matches the path as written)" : "");
		r = -EINVAL;
	} else if (n < 3 || n % 2 == 0) {
		snprintf(why, len, "prio_args: weightedpath: expected devname and pairs of REGEX PRIO");
		r = -EINVAL;
	}
	for (unsigned i = 1; !r && i + 1 < n; i += 2) {
		regex_t re;
		int e = regcomp(&re, w[i], REG_EXTENDED | REG_NOSUB);

		if (e) {
			char msg[128];

			regerror(e, &re, msg, sizeof(msg));
			snprintf(why, len, "prio_args: weightedpath: regular expression %u: %s",
				 (i + 1) / 2, msg);
			r = -EINVAL;
			break;
		}
		if (!parse_prio(w[i + 1], &prio)) {
			snprintf(why, len, "prio_args: weightedpath: priority %u: expected 0 to %u",
				 (i + 1) / 2, WP_MAX_PRIO);
			r = -EINVAL;
		} else if (path && !regexec(&re, path, 0, NULL, 0)) {
			*ret = prio;
			regfree(&re);
			break;
		}
		regfree(&re);
	}
	free(copy);
	return r;
}

static int wp_check(const char *args, char *why, size_t len)
{
	return walk(args, NULL, NULL, why, len);
}

static int wp_prio(struct umd *d, const char *args, const struct umd_prio_path *p,
		   unsigned timeout_ms, unsigned *ret, char *why, size_t len)
{
	(void)d, (void)timeout_ms;
	*ret = 0;	/* no match */
	return walk(args, p->path, ret, why, len);
}

const struct umd_prioritizer umd_prio_weightedpath = {
	.name = "weightedpath",
	.check_args = wp_check,
	.prio = wp_prio,
};
