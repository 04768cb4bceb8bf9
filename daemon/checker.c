/* checker.c - placeholder: path checkers are being written. */
#include <stdio.h>

#include "daemon.h"

int umd_checker_start(struct umd *d)
{
	return 0;
}

void umd_checker_stop(struct umd *d)
{
}

void umd_checker_map_added(struct umd_map *m)
{
}

void umd_checker_map_removed(struct umd_map *m)
{
}

void umd_checker_on_event(struct umd_map *m, const struct umpath_event *ev)
{
}

const char *umd_checker_path_state(struct umd_map *m, const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "-");
	return buf;
}
