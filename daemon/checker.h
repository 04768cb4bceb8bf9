/* checker.h - multipathd's path management inside umpathd: path checkers,
 * failback, no_path_retry, flap damping (checker.c). */
#ifndef UMPATH_DAEMON_CHECKER_H
#define UMPATH_DAEMON_CHECKER_H

#include <stddef.h>
#include <stdint.h>

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
/* The checker's view of a path of m: "up", "down", "pending", "held"
 * (flap damping), or "-" when not checked; for show paths/topology. */
const char *umd_checker_path_state(struct umd_map *m, const char *path, char *buf, size_t len);

#endif
