/* events.c - placeholder: events go to the log only for now. */
#include "daemon.h"
#include "log.h"

int umd_events_init(struct umd *d)
{
	return 0;
}

void umd_events_fini(struct umd *d)
{
}

void umd_event_publish(struct umd *d, const struct umd_event *ev)
{
	um_log("map %s: %s%s%s", ev->map, ev->type, ev->path ? " " : "", ev->path ? ev->path : "");
}
