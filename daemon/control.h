/* control.h - the control socket that the umpath tool talks to
 * (control.c). */
#ifndef UMPATH_DAEMON_CONTROL_H
#define UMPATH_DAEMON_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct umd;

struct umd_control;
int umd_control_start(struct umd *d, const char *path, struct umd_control **ret);
/* Connections being served now, and served since the start (metrics). */
void umd_control_counts(struct umd_control *c, unsigned *ret_open, uint64_t *ret_accepted);
/* Stop accepting (step 1 of the shutdown protocol, export.h): the socket
 * file is removed; requests being served go on. */
void umd_control_quiesce(struct umd_control *c);
/* Stop accepting, let requests being served answer until deadline_ns
 * (umpath_now_ns() clock); 0 when none is left, -ETIMEDOUT otherwise (the
 * last connection frees the control socket's state). */
int umd_control_stop(struct umd_control *c, uint64_t deadline_ns);
/* `umpath reconfigure` (SIGHUP too): re-read the config file and apply
 * it, serialised with the socket's own changes; one line per map to out.
 * The service manager is told (RELOADING=1, then READY=1). */
int umd_control_reconfigure(struct umd_control *c, FILE *out, char *err, size_t errlen);

/* The default control socket path: /run/umpath/control for root,
 * $XDG_RUNTIME_DIR/umpath/control otherwise; UMPATH_CONTROL overrides. */
const char *umd_default_control_path(char *buf, size_t len);

#endif
