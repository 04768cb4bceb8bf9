/* selector.h - the path selector interface, shaped like the kernel's
 * struct path_selector_type (drivers/md/dm-path-selector.h).
 *
 * Locking: every hook is called with the owning map's lock held, so a
 * selector keeps no lock of its own and must never block or sleep.
 * select_path/start_io/end_io sit on the I/O hot path: no allocation there.
 */
#ifndef UMPATH_SELECTOR_H
#define UMPATH_SELECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

enum ps_status_type {
	PS_STATUS_INFO,		/* dmsetup status */
	PS_STATUS_TABLE,	/* dmsetup table */
};

/* The selector's view of one path of its group; embedded in the engine's
 * pgpath.  pscontext belongs to the selector. */
struct ps_path {
	void *pscontext;
};

struct path_selector_type;

struct path_selector {
	const struct path_selector_type *type;
	void *context;
};

struct path_selector_type {
	const char *name;
	unsigned table_args;	/* per-path words printed by status(TABLE) */
	unsigned info_args;	/* per-path words printed by status(INFO) */

	/* Selector arguments of the group (after the "<#args>" count). */
	int (*create)(struct path_selector *ps, unsigned argc, char **argv);
	void (*destroy)(struct path_selector *ps);

	/* Per-path arguments; on failure set *error to the kernel's reason
	 * (e.g. "round-robin ps: invalid repeat count") and return -EINVAL. */
	int (*add_path)(struct path_selector *ps, struct ps_path *path,
			unsigned argc, char **argv, const char **error);
	void (*fail_path)(struct path_selector *ps, struct ps_path *path);
	int (*reinstate_path)(struct path_selector *ps, struct ps_path *path);

	/* NULL when the group has no usable path. */
	struct ps_path *(*select_path)(struct path_selector *ps, size_t nr_bytes);
	int (*start_io)(struct path_selector *ps, struct ps_path *path, size_t nr_bytes);
	/* start_time_ns: CLOCK_MONOTONIC time the I/O was dispatched. */
	int (*end_io)(struct path_selector *ps, struct ps_path *path, size_t nr_bytes,
		      uint64_t start_time_ns);

	/* path NULL: the group's selector status (the kernel prints "0 ").
	 * Otherwise the path's words, each followed by one space. */
	void (*status)(struct path_selector *ps, struct ps_path *path,
		       enum ps_status_type type, struct sbuf *out);
};

/* The registry: look a selector up by its name, NULL if unknown. */
const struct path_selector_type *ps_lookup(const char *name);

/* The kernel's sscanf(arg, "%u%c", &v, &dummy) == 1: decimal digits only
 * (after optional white space), wrapping like the kernel's simple_strtoull
 * truncated to 32 bits.  0 on success, -EINVAL otherwise. */
int um_parse_uint(const char *arg, unsigned *ret_value);

/* The 2003 prototype's sscanf(arg, "%d", &v) == 1: optional white space
 * and sign, decimal digits, anything after them ignored.  A value beyond
 * int is -ERANGE.  0 on success, -EINVAL if no number starts arg. */
int um_parse_int_prefix(const char *arg, int *ret_value);

/* CLOCK_MONOTONIC in nanoseconds: deadlines and timers.  I/O durations
 * are measured with um_io_ns() (ioclock.h). */
uint64_t um_now_ns(void);

#include "ioclock.h"

extern const struct path_selector_type ps_round_robin;
extern const struct path_selector_type ps_queue_length;
extern const struct path_selector_type ps_service_time;
extern const struct path_selector_type ps_historical_service_time;
/* The multipath-v0 target's own selector, not in the registry by name:
 * per path "<priority> <N|L|M> <min-ios>" (selectors/v0.c). */
extern const struct path_selector_type ps_v0;

#endif
