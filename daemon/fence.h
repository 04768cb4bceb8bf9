/* fence.h - umpathd's fence_command runner (fence.c; docs/stale-writes.md). */
#ifndef UMPATH_DAEMON_FENCE_H
#define UMPATH_DAEMON_FENCE_H

#include <stddef.h>

struct umd;
struct umd_fencer;

/* Register the engine's fence hook and start the thread that runs
 * fence_command; stop kills the commands still running and fails their
 * fences. */
int umd_fence_start(struct umd *d);
void umd_fence_stop(struct umd *d);
/* The last fence of path in map, for show paths: "-" (never), "running",
 * "ok", "failed", "timeout" or "none" (no fence_command); detail (may be
 * NULL) gets how it ended. */
const char *umd_fence_path_state(struct umd *d, const char *map, const char *path,
				 char *detail, size_t len);

#endif
