/* format.h - multipathd's format wildcards (format.c): `show paths
 * [raw] format FMT`, `show maps [raw] format FMT`.  header false: no header
 * line (multipathd's "raw").  0 and the lines in out, or -errno with err
 * saying why (-EINVAL: a wildcard not known, err lists the known ones). */
#ifndef UMPATH_DAEMON_FORMAT_H
#define UMPATH_DAEMON_FORMAT_H

#include <stdbool.h>
#include <stdio.h>

struct umd;

int umd_show_paths_format(struct umd *d, bool header, const char *fmt, FILE *out, char *err,
			  size_t errlen);
int umd_show_maps_format(struct umd *d, bool header, const char *fmt, FILE *out, char *err,
			 size_t errlen);

#endif
