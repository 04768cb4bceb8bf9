/* checker.h - multipathd's path management inside umpathd: path checkers,
 * failback, no_path_retry, flap damping (checker.c). */
#ifndef UMPATH_DAEMON_CHECKER_H
#define UMPATH_DAEMON_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct umd;
struct umd_map;

/* The checker observes the registry (maps join and leave it, engine
 * events of their paths) and runs on the daemon's event loop: one timer
 * per path, no sweep over the maps. */
int umd_checker_start(struct umd *d);
/* Stop probing and acting (at shutdown, first: it would turn queueing
 * back on); never blocks for long. */
void umd_checker_quiesce(struct umd *d);
/* Quiesce, then let go: probes in flight keep the checker alive until
 * they end, which the engine bounds by io_timeout.  0 once it is freed,
 * -ETIMEDOUT if probes are still running at hard_ns (umpath_now_ns()
 * clock): the last of them frees it. */
int umd_checker_stop(struct umd *d, uint64_t hard_ns);
/* The checker's view of a path of m, for show paths/topology. */
struct umd_checker_view {
	/* "up", "down", "pending", "held" (flap damping), "unsupported"
	 * (the policy's checker cannot run on it), or "-" when not checked */
	char state[16];
	char checker[16];	/* tur, directio, readsector0, none */
	char result[64];	/* of the last probe: "ok", "timed out", an errno's text, "-" */
	struct timespec result_time;	/* when it came (CLOCK_REALTIME); 0: none yet */
};
void umd_checker_path_view(struct umd_map *m, const char *path, struct umd_checker_view *ret);
/* `fail path` (disabled true): the checker no longer reinstates path in
 * m, until `reinstate path` (false).  -ENOENT if it does not watch it. */
int umd_checker_path_disable(struct umd_map *m, const char *path, bool disabled);
/* Whether every path of map can run pol's checker: 0, or -EOPNOTSUPP with
 * err naming the path and why. */
struct umd_policy;
struct umpath_map;
int umd_checker_validate(struct umd *d, struct umpath_map *map, const struct umd_policy *pol,
			 char *err, size_t errlen);

#endif
