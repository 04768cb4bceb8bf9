/* events.h - umpathd's event hub: what happened to the maps, for the log
 * and for `umpath events` followers (events.c). */
#ifndef UMPATH_DAEMON_EVENTS_H
#define UMPATH_DAEMON_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct umd;

/* What happened, for the log, `umpath events` and its --json. */
struct umd_event {
	const char *map;
	const char *type;	/* path_failed, path_reinstated, group_bypassed,
				 * group_enabled, group_switched, table_swapped,
				 * queue_if_no_path, checker_down, checker_up,
				 * path_held, path_released, no_path_retry, failback */
	const char *path;	/* or NULL */
	unsigned group;		/* or 0 */
	int nr_valid_paths;	/* or -1 */
	const char *detail;	/* or NULL */
};
/* Log the event and hand it to every `umpath events` subscriber; never
 * blocks (a slow subscriber loses events and is told so). */
void umd_event_publish(struct umd *d, const struct umd_event *ev);

/* The hub observes the registry: every engine event of every map is
 * published.  Start it before the maps are made (they are announced
 * anyway, but their first events would be missed). */
int umd_events_init(struct umd *d);
/* Close the hub: subscribers see umd_events_closed; freed on the last. */
void umd_events_fini(struct umd *d);

/* Subscribers (`umpath events`): each has a queue of UMD_EVENTS_QUEUE
 * events; one that falls further behind loses the oldest, and is told how
 * many.  At most UMD_EVENTS_MAX_SUBS at once, so that followers cannot
 * take every control connection. */
#define UMD_EVENTS_QUEUE 1024
#define UMD_EVENTS_MAX_SUBS 16

/* An event as a subscriber gets it: the strings are the message's own,
 * valid until umd_event_msg_put(). */
struct umd_event_msg {
	struct umd_event ev;
	struct timespec time;		/* wall clock (CLOCK_REALTIME) when published */
	uint64_t seq;			/* 1, 2, ... in order of publication */
};

struct umd_event_sub;
/* Follow the events of the map named map (NULL: of every map), also of
 * maps created later.  -EAGAIN with UMD_EVENTS_MAX_SUBS subscribers. */
int umd_events_subscribe(struct umd *d, const char *map, struct umd_event_sub **ret);
void umd_events_unsubscribe(struct umd_event_sub *s);
/* Readable (POLLIN) while umd_events_next has something to give, and
 * once the daemon's event hub shuts down (umd_events_closed). */
int umd_events_fd(struct umd_event_sub *s);
/* The oldest waiting event or NULL; *ret_lost is the number of events
 * dropped since the last call, all older than the one returned. */
struct umd_event_msg *umd_events_next(struct umd_event_sub *s, uint64_t *ret_lost);
void umd_event_msg_put(struct umd_event_msg *msg);
/* Since the start: events dropped for slow subscribers (one per
 * subscriber that missed it), and those the engine said it lost. */
void umd_events_lost(struct umd *d, uint64_t *ret_lost, uint64_t *ret_engine_lost);
/* The hub has shut down: nothing more will come. */
bool umd_events_closed(struct umd_event_sub *s);

#endif
