/* persist.h - `umpath persist`: SCSI-3 persistent reservations on a map's
 * paths, as mpathpersist (persist.c). */
#ifndef UMPATH_DAEMON_PERSIST_H
#define UMPATH_DAEMON_PERSIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct umd;

/* The persist verb: argv[0] "persist", argv[1] the map, then options.
 * Output (read verbs) to out; -errno and err naming the map, the path and
 * the reason on failure. */
int umd_persist(struct umd *d, int argc, char **argv, FILE *out, char *err, size_t errlen);
/* A reservation type as mpathpersist's --prout-type: 1, 3, 5, 6, 7, 8, or
 * wr-ex, ex-ac, wr-ex-ro, ex-ac-ro, wr-ex-ar, ex-ac-ar.  -EINVAL otherwise. */
int umd_pr_parse_type(const char *v, unsigned *ret_type);
/* reservation_key of a map being created, before it is listed: registered
 * (REGISTER AND IGNORE EXISTING KEY) on each of its SCSI paths; a path it
 * cannot be registered on is failed (the checker registers it before it
 * reinstates it).  How many were failed, or -errno. */
struct umpath_map;
int umd_pr_register_new_map(struct umd *d, const char *name, struct umpath_map *map,
			    uint64_t key);
/* Forget the keys remembered per map (at the daemon's end). */
void umd_persist_fini(void);

#endif
