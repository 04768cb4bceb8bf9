/* events.c - umpathd's event hub: every event goes to the log and to each
 * `umpath events` subscriber.
 *
 * Publishers are the engine's event callbacks (loop threads, I/O
 * completion paths) and the checker: publishing must never wait for a
 * subscriber.  So each subscriber has a bounded ring of events
 * (UMD_EVENTS_QUEUE); when it is full the oldest is dropped and counted,
 * and the subscriber is told how many it lost before the next event it
 * gets.  A subscriber is woken through an eventfd, which its connection
 * thread polls together with its socket.
 *
 * An event is copied once, into one allocation with its strings and a
 * wall-clock stamp, and shared by every queue that holds it (refcounted).
 *
 * Locking: hub->lock guards the subscriber list and every ring; it is held
 * for the copy-free work of queueing pointers and never across a system
 * call that may block (eventfd writes are non-blocking).
 *
 * Lifetime: the hub is refcounted by the daemon and by each subscriber,
 * so that a connection thread still streaming when the daemon tears down
 * (umd_events_fini) finds the hub closed instead of freed.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "util.h"

struct umd_events {
	pthread_mutex_t lock;
	struct list_head subs;		/* guarded by lock */
	unsigned nsubs;			/* guarded by lock */
	unsigned refs;			/* guarded by lock: the daemon's + one per sub */
	uint64_t seq;			/* guarded by lock */
	bool closed;			/* guarded by lock */
	uint64_t lost;			/* guarded by lock: dropped for subscribers, in all */
	uint64_t engine_lost;		/* guarded by lock: the engine's EVENTS_LOST, summed */
	struct umd_map_sub *registry;	/* our subscription to the maps' changes */
};

struct umd_event_sub {
	struct list_head node;		/* in hub->subs, guarded by hub->lock */
	struct umd_events *hub;
	char *map;			/* NULL: every map */
	int efd;
	/* The ring, guarded by hub->lock. */
	struct umd_event_msg *ring[UMD_EVENTS_QUEUE];
	unsigned head, count;
	uint64_t lost;
};

/* A message and its strings in one block. */
struct ev_msg {
	struct umd_event_msg pub;	/* first: umd_event_msg_put casts back */
	atomic_uint refs;
	char strings[];
};

static const char *const event_types[] = {
	[UMPATH_EV_PATH_FAILED] = "path_failed",
	[UMPATH_EV_PATH_REINSTATED] = "path_reinstated",
	[UMPATH_EV_GROUP_BYPASSED] = "group_bypassed",
	[UMPATH_EV_GROUP_ENABLED] = "group_enabled",
	[UMPATH_EV_GROUP_SWITCHED] = "group_switched",
	[UMPATH_EV_TABLE_SWAPPED] = "table_swapped",
	[UMPATH_EV_QUEUE_MODE] = "queue_if_no_path",
	[UMPATH_EV_EVENTS_LOST] = "events_lost",
};

/* The registry's observer: every engine event of every map is published. */
static void on_map_change(void *opaque, struct umd_map *m, enum umd_map_change what,
			  const struct umpath_event *ev)
{
	struct umd_event e;
	char detail[64];

	if (what != UMD_MAP_CHANGED || !ev)
		return;
	e = (struct umd_event){
		.map = m->name,
		.type = ev->type < sizeof(event_types) / sizeof(event_types[0]) &&
			event_types[ev->type] ? event_types[ev->type] : "event",
		.path = ev->path,
		.group = ev->group,
		.nr_valid_paths = (int)ev->nr_valid_paths,
	};
	if (ev->type == UMPATH_EV_EVENTS_LOST) {
		snprintf(detail, sizeof(detail), "%u engine events lost", ev->lost);
		e.detail = detail;
		if (m->d->events) {
			pthread_mutex_lock(&m->d->events->lock);
			m->d->events->engine_lost += ev->lost;
			pthread_mutex_unlock(&m->d->events->lock);
		}
	}
	umd_event_publish(m->d, &e);
}

static const struct umd_map_observer hub_observer = {
	.name = "events",
	.notify = on_map_change,
};

int umd_events_init(struct umd *d)
{
	struct umd_events *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	list_init(&h->subs);
	h->refs = 1;
	d->events = h;
	r = umd_registry_subscribe(d, &hub_observer, h, &h->registry, NULL);
	if (r < 0) {
		d->events = NULL;
		pthread_mutex_destroy(&h->lock);
		free(h);
	}
	return r;
}

static void hub_put(struct umd_events *h)
{
	bool last;

	pthread_mutex_lock(&h->lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&h->lock);
	if (last) {
		pthread_mutex_destroy(&h->lock);
		free(h);
	}
}

static void wake(struct umd_event_sub *s)
{
	uint64_t one = 1;

	/* Non-blocking: at worst the counter is saturated, and then the
	 * subscriber is awake already. */
	if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		um_log("events: eventfd: %s", strerror(errno));
}

void umd_events_fini(struct umd *d)
{
	struct umd_events *h = d->events;
	struct umd_event_sub *s;

	if (!h)
		return;
	umd_registry_unsubscribe(h->registry);
	h->registry = NULL;
	pthread_mutex_lock(&h->lock);
	h->closed = true;
	list_for_each_entry(s, &h->subs, node)
		wake(s);
	pthread_mutex_unlock(&h->lock);
	d->events = NULL;
	hub_put(h);
}

void umd_event_msg_put(struct umd_event_msg *msg)
{
	struct ev_msg *e = (struct ev_msg *)msg;

	if (e && atomic_fetch_sub(&e->refs, 1) == 1)
		free(e);
}

/* Copy s into *pos, return the copy (NULL stays NULL). */
static const char *copy_str(char **pos, const char *s)
{
	char *p = *pos;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(p, s, n);
	*pos = p + n;
	return p;
}

static struct ev_msg *msg_new(const struct umd_event *ev)
{
	const char *strs[] = { ev->map, ev->type, ev->path, ev->detail };
	size_t len = 0;
	struct ev_msg *e;
	char *pos;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		len += strs[i] ? strlen(strs[i]) + 1 : 0;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return NULL;
	pos = e->strings;
	e->pub.ev = *ev;
	e->pub.ev.map = copy_str(&pos, ev->map ? ev->map : "-");
	e->pub.ev.type = copy_str(&pos, ev->type ? ev->type : "event");
	e->pub.ev.path = copy_str(&pos, ev->path);
	e->pub.ev.detail = copy_str(&pos, ev->detail);
	clock_gettime(CLOCK_REALTIME, &e->pub.time);
	atomic_init(&e->refs, 1);	/* the publisher's, until it is queued */
	return e;
}

/* The log line: one line whatever the names hold (a path string comes from
 * a client's table; a newline in it must not forge a log line). */
static void log_event(const struct umd_event *ev)
{
	char line[1024];
	int n;

	n = snprintf(line, sizeof(line), "map %s: %s", ev->map ? ev->map : "-",
		     ev->type ? ev->type : "event");
	if (ev->path && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s", ev->path);
	if (ev->group && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, " group %u", ev->group);
	if (ev->nr_valid_paths >= 0 && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, " valid_paths %d",
			      ev->nr_valid_paths);
	if (ev->detail && n >= 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", ev->detail);
	um_sanitize(line);
	um_log("%s", line);
}

void umd_event_publish(struct umd *d, const struct umd_event *ev)
{
	struct umd_events *h = d->events;
	struct umd_event_sub *s;
	struct ev_msg *e;

	log_event(ev);
	if (!h)
		return;
	e = msg_new(ev);
	pthread_mutex_lock(&h->lock);
	if (!e) {
		/* Out of memory: the subscribers learn that they missed one. */
		list_for_each_entry(s, &h->subs, node) {
			if (!s->map || (ev->map && !strcmp(s->map, ev->map))) {
				s->lost++;
				h->lost++;
				wake(s);
			}
		}
		pthread_mutex_unlock(&h->lock);
		return;
	}
	e->pub.seq = ++h->seq;
	list_for_each_entry(s, &h->subs, node) {
		if (s->map && strcmp(s->map, e->pub.ev.map))
			continue;
		if (s->count == UMD_EVENTS_QUEUE) {
			/* Behind: the oldest goes, the newest is kept. */
			umd_event_msg_put(s->ring[s->head]);
			s->head = (s->head + 1) % UMD_EVENTS_QUEUE;
			s->count--;
			s->lost++;
			h->lost++;
		}
		atomic_fetch_add(&e->refs, 1);
		s->ring[(s->head + s->count) % UMD_EVENTS_QUEUE] = &e->pub;
		s->count++;
		wake(s);
	}
	pthread_mutex_unlock(&h->lock);
	umd_event_msg_put(&e->pub);
}

int umd_events_subscribe(struct umd *d, const char *map, struct umd_event_sub **ret)
{
	struct umd_events *h = d->events;
	struct umd_event_sub *s;

	if (!h)
		return -ESHUTDOWN;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		int r = -errno;

		free(s);
		return r;
	}
	if (map && !(s->map = strdup(map))) {
		close(s->efd);
		free(s);
		return -ENOMEM;
	}
	s->hub = h;
	pthread_mutex_lock(&h->lock);
	if (h->closed || h->nsubs >= UMD_EVENTS_MAX_SUBS) {
		int r = h->closed ? -ESHUTDOWN : -EAGAIN;

		pthread_mutex_unlock(&h->lock);
		close(s->efd);
		free(s->map);
		free(s);
		return r;
	}
	list_add_tail(&s->node, &h->subs);
	h->nsubs++;
	h->refs++;
	pthread_mutex_unlock(&h->lock);
	*ret = s;
	return 0;
}

void umd_events_unsubscribe(struct umd_event_sub *s)
{
	struct umd_events *h;

	if (!s)
		return;
	h = s->hub;
	pthread_mutex_lock(&h->lock);
	list_del_init(&s->node);
	h->nsubs--;
	pthread_mutex_unlock(&h->lock);
	while (s->count) {
		umd_event_msg_put(s->ring[s->head]);
		s->head = (s->head + 1) % UMD_EVENTS_QUEUE;
		s->count--;
	}
	close(s->efd);
	free(s->map);
	free(s);
	hub_put(h);
}

int umd_events_fd(struct umd_event_sub *s)
{
	return s->efd;
}

void umd_events_lost(struct umd *d, uint64_t *ret_lost, uint64_t *ret_engine_lost)
{
	struct umd_events *h = d->events;

	*ret_lost = *ret_engine_lost = 0;
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	*ret_lost = h->lost;
	*ret_engine_lost = h->engine_lost;
	pthread_mutex_unlock(&h->lock);
}

struct umd_event_msg *umd_events_next(struct umd_event_sub *s, uint64_t *ret_lost)
{
	struct umd_events *h = s->hub;
	struct umd_event_msg *msg = NULL;
	uint64_t v;

	pthread_mutex_lock(&h->lock);
	*ret_lost = s->lost;
	s->lost = 0;
	if (s->count) {
		msg = s->ring[s->head];
		s->head = (s->head + 1) % UMD_EVENTS_QUEUE;
		s->count--;
	}
	/* Drained: clear the wakeup, under the lock so that a publish cannot
	 * slip in between and have its wakeup eaten.  A closed hub stays
	 * readable, so the follower sees the end. */
	if (!s->count && !h->closed && read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		um_log("events: eventfd: %s", strerror(errno));
	pthread_mutex_unlock(&h->lock);
	return msg;
}

bool umd_events_closed(struct umd_event_sub *s)
{
	bool closed;

	pthread_mutex_lock(&s->hub->lock);
	closed = s->hub->closed;
	pthread_mutex_unlock(&s->hub->lock);
	return closed;
}
