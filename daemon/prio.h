/* prio.h - multipathd's prioritizers (the `prio` and `prio_args`
 * keywords of umpath.conf(5)): each path of a map made from the
 * configuration gets a priority, from which path_grouping_policy builds
 * the table (group_by_prio: one group per priority, highest first).
 *
 * A prioritizer is a file of daemon/prio/ behind this interface; prio.c
 * lists them and gives the ones that measure a path a way to read it. */
#ifndef UMPATH_DAEMON_PRIO_H
#define UMPATH_DAEMON_PRIO_H

#include <stddef.h>
#include <stdint.h>

struct umd;

/* One path as the configuration names it. */
struct umd_prio_path {
	const char *path;	/* as written in the file (and the table) */
	unsigned configured;	/* its line's "prio N", 1 if not given */
};

struct umd_prioritizer {
	const char *name;
	/* prio_args (NULL: not given): 0, or -EINVAL with why saying what
	 * is wrong.  Called when the file is read, for its line number. */
	int (*check_args)(const char *args, char *why, size_t len);
	/* The priority of one path (higher is better).  May read the path
	 * (umd_prio_read_ns); bounded by timeout_ms per read.  0, or -errno
	 * with why: the path's priority is then 0 (multipathd's undefined
	 * priority sorts last too). */
	int (*prio)(struct umd *d, const char *args, const struct umd_prio_path *p,
		    unsigned timeout_ms, unsigned *ret, char *why, size_t len);
};

/* The prioritizer named so, or NULL. */
const struct umd_prioritizer *umd_prio_find(const char *name);
/* "const, weightedpath, path_latency" (for error messages). */
const char *umd_prio_names(void);

/* For prioritizers that measure: open path (a map of its own, closed by
 * umd_prio_close, so that a path no live map holds can be read), read its
 * first block, as the directio checker does where the transport allows
 * (else through the transport), and give the time it took in ns.
 * -ETIMEDOUT after timeout_ms (the read is left to end on its own). */
struct umd_prio_handle;
int umd_prio_open(struct umd *d, const char *path, struct umd_prio_handle **ret,
		  char *why, size_t len);
int umd_prio_read_ns(struct umd_prio_handle *h, unsigned timeout_ms, uint64_t *ret_ns);
void umd_prio_close(struct umd_prio_handle *h);

#endif
