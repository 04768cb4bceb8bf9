/* showconf.h - `umpath show config` (showconf.c): the configuration
 * umpathd runs with, in umpath.conf(5)'s language, to be read back. */
#ifndef UMPATH_DAEMON_SHOWCONF_H
#define UMPATH_DAEMON_SHOWCONF_H

#include <stdio.h>

struct umd;

/* 0 and the file in out, or -errno with err saying why. */
int umd_show_config(struct umd *d, FILE *out, char *err, size_t errlen);

#endif
