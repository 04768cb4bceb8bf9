/* verbs.h - multipathd's add path / del path table edits, show status and
 * show daemon (verbs.c). */
#ifndef UMPATH_DAEMON_VERBS_H
#define UMPATH_DAEMON_VERBS_H

#include <stdbool.h>
#include <stdio.h>

#include "daemon.h"

/* s's table with path added to group (1-based), or to a new last group
 * (group 0); *ret_group says which.  -EEXIST (in the map already),
 * -EINVAL (no such group), err says why. */
int umd_table_add_path(const struct umpath_snapshot *s, const char *path, unsigned group,
		       char **ret_table, unsigned *ret_group, char *err, size_t errlen);
/* s's table without path; a group left empty goes (*ret_dropped: its
 * number, or 0).  -ENOENT (not in the map), -EBUSY (its last path). */
int umd_table_del_path(const struct umpath_snapshot *s, const char *path, char **ret_table,
		       unsigned *ret_dropped, char *err, size_t errlen);
/* Whether path has map's size and logical block size: 0, -EINVAL with
 * err naming the path and both sizes, or the error of opening it. */
int umd_path_fits(struct umd *d, struct umpath_map *map, const char *path, char *err,
		  size_t errlen);

/* multipathd's show status: paths by checker state, counts, busy. */
int umd_show_status(struct umd *d, bool busy, FILE *out, char *err, size_t errlen);
/* multipathd's show daemon: "pid N STATE". */
void umd_show_daemon(FILE *out, const char *state);

#endif
