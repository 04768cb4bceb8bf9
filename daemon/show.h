/* show.h - the operator's views of umpathd's maps, served by the control
 * socket: `umpath show topology|paths|maps`, `status --json` and the
 * lines of `umpath events`, as text or JSON.
 *
 * Each show function writes its whole output to out and returns 0, or
 * returns -errno with err holding a one-line reason (then out holds
 * nothing the client should see).
 */
#ifndef UMPATH_SHOW_H
#define UMPATH_SHOW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon.h"

/* The map's TABLE (table) or INFO status line, whatever its length,
 * malloc'd; NULL without memory. */
char *umd_map_line(struct umpath_map *map, bool table);

/* name NULL: every map. */
int umd_show_topology(struct umd *d, const char *name, bool json, FILE *out,
		      char *err, size_t errlen);
int umd_show_paths(struct umd *d, const char *name, bool json, FILE *out,
		   char *err, size_t errlen);
int umd_show_maps(struct umd *d, const char *name, bool json, FILE *out,
		  char *err, size_t errlen);
/* The status line of m, raw and taken apart, as one JSON object. */
int umd_show_status_json(struct umd_map *m, FILE *out, char *err, size_t errlen);

/* Every map's and path's metrics and the daemon's (its control socket's
 * counts from ctl, if not NULL) in Prometheus' text exposition format
 * 0.0.4: each family once with its HELP and TYPE, label values escaped.
 * 0 or -errno (out then holds nothing). */
struct umd_control;
int umd_show_metrics(struct umd *d, struct umd_control *ctl, FILE *out);

/* One line of `umpath events`: an event, the notice of lost events, and
 * the last line when umpathd stops. */
void umd_show_event(FILE *out, const struct umd_event_msg *msg, bool json);
void umd_show_events_lost(FILE *out, uint64_t lost, bool json);
void umd_show_events_end(FILE *out, bool json);

#endif
