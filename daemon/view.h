/* view.h - one map as the operator's views see it (show.c), shared with
 * the other views built from it: the format wildcards (format.c).  Built
 * from one engine snapshot, then the checker's and the registry's words.
 */
#ifndef UMPATH_DAEMON_VIEW_H
#define UMPATH_DAEMON_VIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "daemon.h"

struct v_path {
	const char *name;		/* the snapshot's */
	unsigned group;			/* 1-based */
	unsigned index;			/* in the group, 0-based */
	bool active;
	unsigned fail_count;
	bool has_prio;			/* the file's prioritizer gave it one */
	unsigned prio;
	char checker[32];		/* ready, faulty, pending, held, unchecked, unsupported */
	char checker_name[16];		/* tur, directio, readsector0, none */
	char checker_result[64];	/* the last probe's answer */
	struct timespec checker_time;	/* when it came (CLOCK_REALTIME); 0: none yet */
	const char *fence;		/* the last fence: umd_fence_path_state() */
	char fence_detail[96];
	struct umpath_unsettled_info unsettled;
	struct umpath_path_stats st;
	struct umpath_path_io_stats io;	/* by kind, and the latency histogram */
};

struct v_group {
	unsigned num;
	char state;			/* A, E, D */
	unsigned nr_paths;
	char *policy;			/* "service-time 0": selector and its args */
};

/* One map as the views show it. */
struct view {
	struct umd_map *m;
	struct umpath_snapshot *snap;	/* the strings below point into it */
	const char *features;		/* "1 queue_if_no_path" */
	const char *hwhandler;		/* "0" or "1 alua" */
	struct v_group *groups;
	unsigned ngroups;
	struct v_path *paths;
	unsigned npaths;
	struct umpath_map_info info;
	struct umd_policy policy;
	unsigned opens;
};

/* A snapshot of m into v (0 or -errno); umd_view_clear frees it. */
int umd_view_take(struct umd_map *m, struct view *v);
void umd_view_clear(struct view *v);
/* fn on the view of the map named (-ENXIO, err "no such map", if none),
 * or of every map (name NULL); maps removed meanwhile are left out. */
int umd_for_views(struct umd *d, const char *name, int (*fn)(struct view *, void *),
		  void *opaque, char *err, size_t errlen);

/* multipath's size: KiB, MiB, ... with one decimal below 10. */
void umd_fmt_size(char *buf, size_t len, uint64_t bytes);
const char *umd_failback_name(enum umd_failback f);
/* The prio of group g (0-based) as show topology prints it. */
unsigned umd_group_prio(const struct view *v, unsigned g);
/* A path as one word of a table line: spaces and backslashes escaped. */
void umd_put_word(FILE *f, const char *s);
/* The same for a person's eyes: control bytes made visible too. */
void umd_put_path_word(FILE *out, const char *s);

#endif
