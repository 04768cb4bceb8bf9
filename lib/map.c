/* map.c - map state as the kernel's dm-mpath keeps it: choosing a priority
 * group and path, failing and reinstating paths, bypassing and switching
 * groups, queue_if_no_path, pg_init (hardware handler activation), the
 * target messages, suspend/resume with table reload, and events.
 * The I/O lifecycle itself is in io.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mpath.h"

/* ---- lock and events -------------------------------------------------- */

_Thread_local char um_thread_tag __attribute__((tls_model("initial-exec")));

/* Wait on map->cond; the caller holds the lock. */
void map_wait_locked(struct umpath_map *map)
{
	map_assert_locked(map);
	map->lock_held = false;
	map->waiters++;
	um_cond_wait(&map->cond, &map->lock, 0);
	map->waiters--;
	map->lock_owner = &um_thread_tag;
	map->lock_held = true;
}

/* The same, for at most ms milliseconds (on CLOCK_MONOTONIC: a step of
 * the wall clock does not stretch it). */
static void map_wait_locked_ms(struct umpath_map *map, unsigned ms)
{
	map_assert_locked(map);
	map->lock_held = false;
	map->waiters++;
	um_cond_wait(&map->cond, &map->lock, ms);
	map->waiters--;
	map->lock_owner = &um_thread_tag;
	map->lock_held = true;
}

/* Make room for one more pending event: false if there is none (the
 * bound, or no memory), and the event is to be counted as lost. */
static bool pending_room_locked(struct umpath_map *map)
{
	struct pending_event *n;
	unsigned cap;

	if (map->npending < map->cap_pending)
		return true;
	if (map->cap_pending >= MAP_PENDING_MAX)
		return false;
	cap = map->cap_pending ? map->cap_pending * 2 : 16;
	n = realloc(map->pending, cap * sizeof(*n));
	if (!n)
		return false;
	map->pending = n;
	map->cap_pending = cap;
	return true;
}

void map_event_locked(struct umpath_map *map, enum umpath_event_type type,
		      const char *path, unsigned group)
{
	unsigned valid = map->live ? map->live->nr_valid_paths : 0;
	struct pending_event *pe;

	map_assert_locked(map);
	map->event_nr++;
	if (!map->event_fn)
		return;	/* the counter still tells that something happened */
	if (map->npending && path && !map->lost_events) {
		/* A path listed several times: one event, its last state. */
		pe = &map->pending[map->npending - 1];
		if (pe->ev.type == type && pe->path && !strcmp(pe->path, path)) {
			pe->ev.event_nr = map->event_nr;
			pe->ev.nr_valid_paths = valid;
			return;
		}
	}
	if (map->lost_events || !pending_room_locked(map)) {
		map->lost_events++;	/* told at delivery, after what was kept */
		return;
	}
	pe = &map->pending[map->npending];
	pe->path = NULL;
	if (path && !(pe->path = strdup(path))) {
		map->lost_events++;
		return;
	}
	pe->ev = (struct umpath_event){
		.type = type,
		.event_nr = map->event_nr,
		.path = pe->path,
		.group = group,
		.nr_valid_paths = valid,
	};
	map->npending++;
}

static void pool_waiter_del_locked(struct umpath_map *map, struct umpath_pool_wait *w)
{
	map_assert_locked(map);
	if (w->priv_prev)
		w->priv_prev->priv_next = w->priv_next;
	else
		map->pool_waiters = w->priv_next;
	if (w->priv_next)
		w->priv_next->priv_prev = w->priv_prev;
	else
		map->pool_waiters_tail = w->priv_prev;
	w->priv_next = w->priv_prev = NULL;
	w->priv_armed = 0;
}

/* Call every armed pool waiter once, without the lock: a request was freed
 * (or the map is going away, when their retry gets -ENXIO). */
static void pool_wake_locked(struct umpath_map *map)
{
	struct umpath_pool_wait *w = map->pool_waiters;

	for (struct umpath_pool_wait *i = w; i; i = i->priv_next)
		i->priv_armed = 0;
	map->pool_waiters = map->pool_waiters_tail = NULL;
	/* Counted, so that cancel and free wait for the calls to end. */
	map->pool_waking++;
	map_unlock_raw(map);
	while (w) {
		struct umpath_pool_wait *next = w->priv_next;

		w->priv_next = w->priv_prev = NULL;
		w->fn(w);	/* may re-arm w: next was read before */
		w = next;
	}
	map_lock(map);
	if (!--map->pool_waking)
		map_wake_locked(map);
}

int umpath_map_pool_wait(struct umpath_map *map, struct umpath_pool_wait *w)
{
	map_lock(map);
	if (w->priv_armed) {
		map_unlock_raw(map);
		return -EALREADY;
	}
	/* Checked under the lock that frees requests: no wake-up is lost
	 * between the caller's -EAGAIN and this. */
	if (map_pool_room_locked(map) || map->dying) {
		map_unlock_raw(map);
		return 1;
	}
	w->priv_armed = 1;
	w->priv_next = NULL;
	w->priv_prev = map->pool_waiters_tail;
	if (map->pool_waiters_tail)
		map->pool_waiters_tail->priv_next = w;
	else
		map->pool_waiters = w;
	map->pool_waiters_tail = w;
	map_unlock_raw(map);
	return 0;
}

int umpath_map_pool_cancel(struct umpath_map *map, struct umpath_pool_wait *w)
{
	int r = 0;

	map_lock(map);
	if (w->priv_armed) {
		pool_waiter_del_locked(map, w);
		r = 1;
	} else {
		while (map->pool_waking)
			map_wait_locked(map);
	}
	map_unlock_raw(map);
	return r;
}

/* map_unlock()'s work: queued I/O re-dispatched, then pending events
 * delivered, in order, from one thread at a time, then pool waiters told
 * about freed requests. */
void map_unlock_work(struct umpath_map *map)
{
	for (;;) {
		if (map->kick) {
			map->kick = false;
			/* Counted: the kicked I/O may complete and let another
			 * thread free the map before we take the lock again. */
			map->kicking++;
			map_unlock_raw(map);
			map_kick_queue(map);
			map_lock(map);
			if (!--map->kicking)
				map_wake_locked(map);
			continue;
		}
		if ((map->npending || map->lost_events) && !map->delivering) {
			struct pending_event *evs = map->pending;
			unsigned n = map->npending;
			umpath_event_fn fn = map->event_fn;
			void *opaque = map->event_opaque;
			struct umpath_event lost = {
				.type = UMPATH_EV_EVENTS_LOST,
				.event_nr = map->event_nr,
				.nr_valid_paths = map->live ? map->live->nr_valid_paths : 0,
				.lost = map->lost_events,
			};

			map->pending = NULL;
			map->npending = map->cap_pending = map->lost_events = 0;
			map->delivering = true;
			map_unlock_raw(map);
			for (unsigned i = 0; i < n; i++) {
				if (fn)
					fn(map, &evs[i].ev, opaque);
				free(evs[i].path);
			}
			free(evs);
			if (fn && lost.lost)
				fn(map, &lost, opaque);
			map_lock(map);
			map->delivering = false;
			map_wake_locked(map);
			continue;
		}
		if (map->pool_waiters && (map_pool_room_locked(map) || map->dying)) {
			pool_wake_locked(map);
			continue;
		}
		break;
	}
	map_unlock_raw(map);
}

void umpath_map_set_event_cb(struct umpath_map *map, umpath_event_fn fn, void *opaque)
{
	map_lock(map);
	map->event_fn = fn;
	map->event_opaque = opaque;
	map_unlock(map);
}

uint32_t umpath_map_event_nr(struct umpath_map *map)
{
	uint32_t nr;

	map_lock(map);
	nr = map->event_nr;
	map_unlock(map);
	return nr;
}

/* ---- choosing a group and a path -------------------------------------- */

static void switch_pg_locked(struct multipath *m, struct priority_group *pg)
{
	map_assert_locked(m->map);
	m->current_pg = pg;
	/* Must we initialise the group first, and queue I/O till it's ready? */
	if (m->hw_handler_name)
		m->flags |= MPATHF_PG_INIT_REQUIRED | MPATHF_QUEUE_IO;
	else
		m->flags &= ~(MPATHF_PG_INIT_REQUIRED | MPATHF_QUEUE_IO);
	m->pg_init_count = 0;
}

static struct pgpath *choose_path_in_pg_locked(struct multipath *m, struct priority_group *pg,
					       size_t nr_bytes)
{
	struct ps_path *path = pg->ps.type->select_path(&pg->ps, nr_bytes);
	struct pgpath *pgpath;

	if (!path)
		return NULL;
	pgpath = container_of(path, struct pgpath, ps);
	if (m->current_pg != pg) {
		/* Only update current_pgpath if the group changed. */
		m->current_pgpath = pgpath;
		switch_pg_locked(m, pg);
	}
	return pgpath;
}

struct pgpath *choose_pgpath_locked(struct multipath *m, size_t nr_bytes)
{
	struct priority_group *pg;
	struct pgpath *pgpath;
	unsigned bypassed = 1;

	map_assert_locked(m->map);
	if (!m->nr_valid_paths) {
		m->flags &= ~MPATHF_QUEUE_IO;
		goto failed;
	}

	/* Were we instructed to switch group? */
	if (m->next_pg) {
		pg = m->next_pg;
		m->next_pg = NULL;
		pgpath = choose_path_in_pg_locked(m, pg, nr_bytes);
		if (pgpath)
			return pgpath;
	}

	/* Don't change group until it has no remaining paths. */
	if (m->current_pg) {
		pgpath = choose_path_in_pg_locked(m, m->current_pg, nr_bytes);
		if (pgpath)
			return pgpath;
	}

	/* Loop through groups until a usable path is found: first skipping
	 * bypassed groups, then trying only those, with a delayed pg_init
	 * retry so as not to hammer controllers. */
	do {
		list_for_each_entry(pg, &m->priority_groups, list) {
			if (pg->bypassed == !!bypassed)
				continue;
			pgpath = choose_path_in_pg_locked(m, pg, nr_bytes);
			if (pgpath) {
				if (!bypassed)
					m->flags |= MPATHF_PG_INIT_DELAY_RETRY;
				return pgpath;
			}
		}
	} while (bypassed--);

failed:
	m->current_pgpath = NULL;
	m->current_pg = NULL;
	return NULL;
}

bool must_push_back_locked(struct multipath *m)
{
	struct umpath_map *map = m->map;

	map_assert_locked(map);
	return (m->flags & MPATHF_QUEUE_IF_NO_PATH) || (map->suspended && map->noflush);
}

/* ---- failing and reinstating paths ------------------------------------ */

int fail_path_locked(struct pgpath *pgpath)
{
	struct multipath *m = pgpath->pg->m;

	map_assert_locked(m->map);
	if (!pgpath->is_active)
		return 0;
	pgpath->pg->ps.type->fail_path(&pgpath->pg->ps, &pgpath->ps);
	pgpath->is_active = false;
	pgpath->fail_count++;
	m->nr_valid_paths--;
	if (pgpath == m->current_pgpath)
		m->current_pgpath = NULL;
	map_event_locked(m->map, UMPATH_EV_PATH_FAILED, pgpath->path->name, pgpath->pg->pg_num);
	return 0;
}

static void activate_path_queue_locked(struct pgpath *pgpath, uint64_t delay_ns)
{
	struct multipath *m = pgpath->pg->m;

	if (pgpath->activating)
		return;
	pgpath->activating = true;
	pgpath->activate_called = false;
	m->pg_init_in_progress++;
	um_timer_arm(m->map->ctx->loop, &pgpath->activate, delay_ns);
}

int reinstate_path_locked(struct pgpath *pgpath)
{
	struct multipath *m = pgpath->pg->m;
	int r;

	map_assert_locked(m->map);
	if (pgpath->is_active)
		return 0;
	r = pgpath->pg->ps.type->reinstate_path(&pgpath->pg->ps, &pgpath->ps);
	if (r < 0)
		return r;
	pgpath->is_active = true;
	if (++m->nr_valid_paths == 1) {
		m->current_pgpath = NULL;
		m->map->kick = true;
	} else if (m->hw_handler_name && m->current_pg == pgpath->pg) {
		activate_path_queue_locked(pgpath, 0);
	}
	map_event_locked(m->map, UMPATH_EV_PATH_REINSTATED, pgpath->path->name,
			 pgpath->pg->pg_num);
	/* Not in the kernel, which polls its requeue list: queued I/O retries
	 * at once on any reinstatement. */
	m->map->kick = true;
	return 0;
}

typedef int (*action_fn)(struct pgpath *pgpath);

/* Apply an action to every occurrence of the path in the table.  A path
 * that exists but is not in the map is EINVAL, as in the kernel; one that
 * does not exist at all is ENOENT. */
static int action_dev_locked(struct multipath *m, const char *name, action_fn action,
			     bool *ret_found)
{
	struct priority_group *pg;
	struct pgpath *pgpath;
	int r = -EINVAL;

	*ret_found = false;
	list_for_each_entry(pg, &m->priority_groups, list) {
		list_for_each_entry(pgpath, &pg->pgpaths, list) {
			if (!strcmp(pgpath->path->name, name)) {
				*ret_found = true;
				r = action(pgpath);
			}
		}
	}
	return r;
}

/* ---- groups ----------------------------------------------------------- */

static void bypass_pg_locked(struct multipath *m, struct priority_group *pg, bool bypassed)
{
	map_assert_locked(m->map);
	pg->bypassed = bypassed;
	m->current_pgpath = NULL;
	m->current_pg = NULL;
	map_event_locked(m->map, bypassed ? UMPATH_EV_GROUP_BYPASSED : UMPATH_EV_GROUP_ENABLED,
			 NULL, pg->pg_num);
	if (!bypassed)
		m->map->kick = true;
}

/* verb: the message, for the detail of a refusal. */
static int pg_num_arg(struct multipath *m, const char *verb, const char *s, unsigned *ret_num)
{
	unsigned pgnum;

	if (!s || um_parse_uint(s, &pgnum) < 0 || !pgnum || !m->nr_priority_groups ||
	    pgnum > m->nr_priority_groups) {
		if (!m->nr_priority_groups)
			um_detail_set("%s %.32s: the map has no groups", verb, s ? s : "");
		else if (s && um_parse_uint(s, &pgnum) == 0)
			um_detail_set("%s %.32s: no such group (1..%u)", verb, s,
				      m->nr_priority_groups);
		else
			um_detail_set("%s %.32s: not a group number (1..%u)", verb, s ? s : "",
				      m->nr_priority_groups);
		return -EINVAL;
	}
	*ret_num = pgnum;
	return 0;
}

static int switch_pg_num_locked(struct multipath *m, const char *s)
{
	struct priority_group *pg;
	unsigned pgnum;

	if (pg_num_arg(m, "switch_group", s, &pgnum) < 0)
		return -EINVAL;
	list_for_each_entry(pg, &m->priority_groups, list) {
		pg->bypassed = false;
		if (--pgnum)
			continue;
		if (m->current_pg != pg)
			m->current_pgpath = NULL;
		m->current_pg = NULL;
		m->next_pg = pg;
		map_event_locked(m->map, UMPATH_EV_GROUP_SWITCHED, NULL, pg->pg_num);
	}
	m->map->kick = true;
	return 0;
}

static int bypass_pg_num_locked(struct multipath *m, const char *s, bool bypassed)
{
	struct priority_group *pg;
	unsigned pgnum;

	if (pg_num_arg(m, bypassed ? "disable_group" : "enable_group", s, &pgnum) < 0)
		return -EINVAL;
	list_for_each_entry(pg, &m->priority_groups, list)
		if (!--pgnum)
			break;
	bypass_pg_locked(m, pg, bypassed);
	return 0;
}

/* ---- queue_if_no_path ------------------------------------------------- */

static void queue_if_no_path_locked(struct multipath *m, bool queue, bool save_old)
{
	bool bit = m->flags & MPATHF_QUEUE_IF_NO_PATH;
	bool saved = m->flags & MPATHF_SAVED_QUEUE_IF_NO_PATH;

	map_assert_locked(m->map);
	if (save_old) {
		/* Saving "off" over a saved "on" would lose the state. */
		if (bit || !saved) {
			if (bit)
				m->flags |= MPATHF_SAVED_QUEUE_IF_NO_PATH;
			else
				m->flags &= ~MPATHF_SAVED_QUEUE_IF_NO_PATH;
		}
	} else if (!queue && saved) {
		/* An explicit fail_if_no_path must be honoured at resume. */
		m->flags &= ~MPATHF_SAVED_QUEUE_IF_NO_PATH;
	}
	if (queue)
		m->flags |= MPATHF_QUEUE_IF_NO_PATH;
	else
		m->flags &= ~MPATHF_QUEUE_IF_NO_PATH;
	if (bit != queue)
		map_event_locked(m->map, UMPATH_EV_QUEUE_MODE, NULL, 0);
	if (!queue)
		m->map->kick = true;	/* queued I/O now fails, or goes */
}

/* ---- pg_init: activating a group through its hardware handler --------- */

bool pg_init_all_paths_locked(struct multipath *m)
{
	struct pgpath *pgpath;
	uint64_t delay_ns = 0;

	map_assert_locked(m->map);
	if (m->pg_init_in_progress || (m->flags & MPATHF_PG_INIT_DISABLED))
		return false;
	m->pg_init_count++;
	m->flags &= ~MPATHF_PG_INIT_REQUIRED;
	if (!m->current_pg)
		return false;
	if (m->flags & MPATHF_PG_INIT_DELAY_RETRY)
		delay_ns = (uint64_t)(m->pg_init_delay_msecs != PG_INIT_DELAY_DEFAULT ?
				      m->pg_init_delay_msecs : PG_INIT_DELAY_MSECS) * 1000000u;
	list_for_each_entry(pgpath, &m->current_pg->pgpaths, list) {
		if (!pgpath->is_active)
			continue;
		activate_path_queue_locked(pgpath, delay_ns);
	}
	return m->pg_init_in_progress;
}

static bool pg_init_limit_reached_locked(struct multipath *m)
{
	if (m->pg_init_count <= m->pg_init_retries && !(m->flags & MPATHF_PG_INIT_DISABLED)) {
		m->flags |= MPATHF_PG_INIT_REQUIRED;
		return false;
	}
	return true;
}

static void pg_init_done(void *token, enum umpath_pg_init_result result)
{
	struct pgpath *pgpath = token;
	struct priority_group *pg = pgpath->pg;
	struct multipath *m = pg->m;
	struct umpath_map *map = m->map;
	bool delay_retry = false;
	bool errors = false;

	map_lock(map);
	switch (result) {
	case UMPATH_PG_INIT_OK:
		break;
	case UMPATH_PG_INIT_BUSY:
		/* Probably a firmware upgrade or the like: try the other group. */
		bypass_pg_locked(m, pg, true);
		errors = true;
		break;
	case UMPATH_PG_INIT_RETRY:
		delay_retry = true;
		/* fall through */
	case UMPATH_PG_INIT_IMM_RETRY:
		if (pg_init_limit_reached_locked(m))
			fail_path_locked(pgpath);
		break;
	case UMPATH_PG_INIT_FAIL:
	default:
		fail_path_locked(pgpath);
		errors = true;
		break;
	}
	pgpath->activating = false;
	pgpath->activate_called = false;

	if (errors) {
		if (pgpath == m->current_pgpath) {
			m->current_pgpath = NULL;
			m->current_pg = NULL;
		}
	} else if (!(m->flags & MPATHF_PG_INIT_REQUIRED)) {
		pg->bypassed = false;
	}

	if (--m->pg_init_in_progress > 0)
		goto out;	/* activations of other paths are still going on */

	if (m->flags & MPATHF_PG_INIT_REQUIRED) {
		if (delay_retry)
			m->flags |= MPATHF_PG_INIT_DELAY_RETRY;
		else
			m->flags &= ~MPATHF_PG_INIT_DELAY_RETRY;
		if (pg_init_all_paths_locked(m))
			goto out;
	}
	m->flags &= ~MPATHF_QUEUE_IO;
	map->kick = true;
	map_wake_locked(map);	/* a suspend may wait for us */
out:
	map_unlock(map);
}

void activate_path_timer(struct um_timer *t)
{
	struct pgpath *pgpath = container_of(t, struct pgpath, activate);
	struct multipath *m = pgpath->pg->m;
	bool active;

	map_lock(m->map);
	active = pgpath->is_active;
	pgpath->activate_called = true;
	map_unlock(m->map);
	/* The table cannot go away: it is freed only once pg_init_in_progress
	 * is 0 (flush_pg_init_locked), and we count in it. */
	if (!active || !m->hwh) {
		pg_init_done(pgpath, UMPATH_PG_INIT_FAIL);
		return;
	}
	m->hwh->activate(pgpath->path->name, m->hw_handler_params, m->hwh->opaque,
			 pg_init_done, pgpath);
}

/* Drop the activations of m still waiting for their delay (timer armed,
 * handler not called): m is about to be freed.  The map lock is dropped
 * while timers are cancelled, since a firing timer takes it. */
static void cancel_pending_activations_locked(struct umpath_map *map, struct multipath *m)
{
	struct priority_group *pg;
	struct pgpath *p;

	map_assert_locked(map);
	map_unlock_raw(map);
	/* The lists are stable: only the thread that frees m changes them. */
	list_for_each_entry(pg, &m->priority_groups, list)
		list_for_each_entry(p, &pg->pgpaths, list)
			um_timer_cancel(map->ctx->loop, &p->activate);
	map_lock(map);
	list_for_each_entry(pg, &m->priority_groups, list) {
		list_for_each_entry(p, &pg->pgpaths, list) {
			if (!p->activating || p->activate_called)
				continue;	/* idle, or the handler will answer */
			p->activating = false;
			m->pg_init_in_progress--;
		}
	}
	if (!m->pg_init_in_progress)
		map_wake_locked(map);
}

/* Wait until no pg_init runs on table m (the kernel's flush_multipath_work).
 * dying: m is about to be freed; its delayed activations are cancelled
 * rather than waited for, and an activation a handler still holds is
 * waited for even if another thread is flushing too. */
static void flush_pg_init_locked(struct umpath_map *map, struct multipath *m, bool dying)
{
	bool was_disabled = m->flags & MPATHF_PG_INIT_DISABLED;

	map_assert_locked(map);
	if (!m->pg_init_in_progress || (was_disabled && !dying))
		return;
	m->flags |= MPATHF_PG_INIT_DISABLED;
	if (dying)
		cancel_pending_activations_locked(map, m);
	while (m->pg_init_in_progress)
		map_wait_locked(map);
	if (!was_disabled && !dying)
		m->flags &= ~MPATHF_PG_INIT_DISABLED;
}

/* ---- messages --------------------------------------------------------- */

#define MESSAGES "queue_if_no_path, fail_if_no_path, disable_group N, enable_group N, " \
		 "switch_group N, fail_path PATH, reinstate_path PATH"

static bool message_takes_arg(const char *verb)
{
	static const char *const with_arg[] = { "disable_group", "enable_group", "switch_group",
						"fail_path", "reinstate_path" };

	for (size_t i = 0; i < UM_ARRAY_SIZE(with_arg); i++)
		if (!strcasecmp(verb, with_arg[i]))
			return true;
	return false;
}

static bool message_known(const char *verb)
{
	return message_takes_arg(verb) || !strcasecmp(verb, "queue_if_no_path") ||
	       !strcasecmp(verb, "fail_if_no_path");
}

int umpath_map_message(struct umpath_map *map, int argc, char **argv)
{
	struct multipath *m;
	action_fn action;
	bool found;
	int r = -EINVAL;

	um_detail_clear();
	map_lock(map);
	m = map->live;
	if (map->suspended) {
		um_detail_set("the map is suspended: messages wait for its resume");
		r = -EBUSY;
		goto out;
	}
	if (!m->target->takes_messages) {
		/* The 2003 prototype had none: its paths fail by their error
		 * budget and come back by its own test read. */
		um_detail_set("the %s target takes no messages", m->target->name);
		goto out;
	}
	if (!argc) {
		um_detail_set("empty message (%s)", MESSAGES);
		goto out;
	}
	if (argc == 1) {
		if (!strcasecmp(argv[0], "queue_if_no_path")) {
			queue_if_no_path_locked(m, true, false);
			r = 0;
			goto out;
		} else if (!strcasecmp(argv[0], "fail_if_no_path")) {
			queue_if_no_path_locked(m, false, false);
			r = 0;
			goto out;
		}
	}
	if (argc != 2) {
		/* "Invalid multipath message arguments" */
		if (message_known(argv[0]))
			um_detail_set("%.32s: takes %s", argv[0],
				      message_takes_arg(argv[0]) ? "one argument" : "no argument");
		else
			um_detail_set("unknown message '%.32s' (%s)", argv[0], MESSAGES);
		goto out;
	}

	if (!strcasecmp(argv[0], "disable_group")) {
		r = bypass_pg_num_locked(m, argv[1], true);
		goto out;
	} else if (!strcasecmp(argv[0], "enable_group")) {
		r = bypass_pg_num_locked(m, argv[1], false);
		goto out;
	} else if (!strcasecmp(argv[0], "switch_group")) {
		r = switch_pg_num_locked(m, argv[1]);
		goto out;
	} else if (!strcasecmp(argv[0], "reinstate_path")) {
		action = reinstate_path_locked;
	} else if (!strcasecmp(argv[0], "fail_path")) {
		action = fail_path_locked;
	} else {
		/* "Unrecognised multipath message received" */
		if (message_known(argv[0]))
			um_detail_set("%.32s: takes no argument", argv[0]);
		else
			um_detail_set("unknown message '%.32s' (%s)", argv[0], MESSAGES);
		goto out;
	}
	r = action_dev_locked(m, argv[1], action, &found);
	if (!found) {
		/* The kernel first looks the device up: ENOENT if it does not
		 * exist.  Asking a transport may block briefly: drop the lock. */
		char *name = strdup(argv[1]);
		char esc[128];

		map_unlock(map);
		r = name && um_path_exists(map->ctx, name) ? -EINVAL : -ENOENT;
		um_escape_detail(esc, sizeof(esc), argv[1]);
		um_detail_set("%s %s: %s", argv[0], esc,
			      r == -EINVAL ? "not a path of this map" : "no such device");
		free(name);
		return r;
	}
out:
	map_unlock(map);
	return r;
}

int umpath_map_message_str(struct umpath_map *map, const char *msg)
{
	char *copy = strdup(msg ? msg : "");
	char *argv[8];
	int argc = 0;
	char *save = NULL;
	int r;

	if (!copy)
		return -ENOMEM;
	for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (argc == (int)UM_ARRAY_SIZE(argv)) {
			free(copy);
			um_detail_set("a message has at most 2 words");
			return -EINVAL;
		}
		argv[argc++] = w;
	}
	r = umpath_map_message(map, argc, argv);
	free(copy);
	return r;
}

/* ---- status ----------------------------------------------------------- */

int umpath_map_table(struct umpath_map *map, char *buf, size_t len)
{
	struct sbuf sb;

	sbuf_init(&sb, buf, len);
	map_lock(map);
	mp_table_emit(map->live, &sb);
	map_unlock(map);
	return (int)sb.len;
}

int umpath_map_status(struct umpath_map *map, char *buf, size_t len)
{
	struct sbuf sb;

	sbuf_init(&sb, buf, len);
	map_lock(map);
	mp_status_emit(map->live, &sb);
	map_unlock(map);
	return (int)sb.len;
}

const char *umpath_map_target(struct umpath_map *map)
{
	const char *name;

	map_lock(map);
	name = map->live->target->name;
	map_unlock(map);
	return name;
}

const char *umpath_map_name(const struct umpath_map *map)
{
	return map->name;
}

uint64_t umpath_map_size(const struct umpath_map *map)
{
	return map->size;
}

uint32_t umpath_map_block_size(const struct umpath_map *map)
{
	return map->block_size;
}

int umpath_map_set_read_hedge(struct umpath_map *map, int ms)
{
	if (ms < UMPATH_READ_HEDGE_AUTO || ms > 3600 * 1000)
		return -EINVAL;
	atomic_store(&map->read_hedge_ms, ms);
	return 0;
}

int umpath_map_read_hedge(const struct umpath_map *map)
{
	return atomic_load(&map->read_hedge_ms);
}

/* ---- resize ----------------------------------------------------------- */

int umpath_map_resize(struct umpath_map *map, uint64_t *ret_size)
{
	struct priority_group *pg;
	struct pgpath *pp;
	struct um_path **paths = NULL, *first = NULL;
	uint64_t *sizes = NULL, size = 0;
	unsigned n = 0, cap = 0;
	char esc[128], esc2[128];
	int r = 0;

	um_detail_clear();
	/* The live table's paths, with a reference: their sizes are read
	 * without the map's lock (a system call each). */
	map_lock(map);
	if (map->live) {
		list_for_each_entry(pg, &map->live->priority_groups, list)
			list_for_each_entry(pp, &pg->pgpaths, list)
				cap++;
	}
	paths = calloc(cap ? cap : 1, sizeof(*paths));
	sizes = calloc(cap ? cap : 1, sizeof(*sizes));
	if (paths && sizes && map->live) {
		list_for_each_entry(pg, &map->live->priority_groups, list)
			list_for_each_entry(pp, &pg->pgpaths, list) {
				um_path_ref(pp->path);
				paths[n++] = pp->path;
			}
	}
	map_unlock(map);
	if (!paths || !sizes) {
		r = -ENOMEM;
		goto out;
	}
	if (!n) {
		um_detail_set("the map has no path to take a size from");
		r = -EINVAL;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		struct um_path *p = paths[i];

		sizes[i] = p->size;
		if (p->tp->read_size)
			r = p->tp->read_size(p, &sizes[i]);
		if (r < 0) {
			um_escape_detail(esc, sizeof(esc), p->name);
			um_detail_set("%s: cannot read its size: %s", esc, strerror(-r));
			goto out;
		}
		if (!first) {
			first = p;
			size = sizes[i];
		} else if (sizes[i] != size) {
			um_escape_detail(esc, sizeof(esc), first->name);
			um_escape_detail(esc2, sizeof(esc2), p->name);
			um_detail_set("paths differ in size: %s: %llu bytes, %s: %llu bytes", esc,
				      (unsigned long long)size, esc2, (unsigned long long)sizes[i]);
			r = -EINVAL;
			goto out;
		}
	}
	if (!size || size % (map->block_size > UM_MIN_BLOCK ? map->block_size : UMPATH_SECTOR_SIZE)) {
		um_detail_set("%llu bytes: not a whole number of %u-byte blocks",
			      (unsigned long long)size, map->block_size > UM_MIN_BLOCK ?
			      map->block_size : UMPATH_SECTOR_SIZE);
		r = -EINVAL;
		goto out;
	}
	map_lock(map);
	for (unsigned i = 0; i < n; i++)
		paths[i]->size = size;
	if (map->live)
		map->live->min_size = map->live->common_size = size;
	map->size = size;
	map_unlock(map);
	*ret_size = size;
out:
	for (unsigned i = 0; i < n; i++)
		um_path_put(paths[i]);
	free(paths);
	free(sizes);
	return r;
}

/* ---- lifecycle -------------------------------------------------------- */

/* The first path of m whose size is not want (or is, with same). */
static struct um_path *path_sized(struct multipath *m, uint64_t want, bool same)
{
	struct priority_group *pg;
	struct pgpath *p;

	list_for_each_entry(pg, &m->priority_groups, list)
		list_for_each_entry(p, &pg->pgpaths, list)
			if ((p->path->size == want) == same)
				return p->path;
	return NULL;
}

/* The error detail "PATH: N bytes" of p, its name escaped as in a table. */
static int size_word(char *buf, size_t len, const struct um_path *p)
{
	char esc[128];

	um_escape_detail(esc, sizeof(esc), p->name);
	return snprintf(buf, len, "%s: %llu bytes", esc, (unsigned long long)p->size);
}

static int check_size(struct multipath *m, uint64_t size, char *err, size_t errlen)
{
	if (m->nr_valid_paths && m->min_size < size) {
		struct um_path *p = path_sized(m, m->min_size, true);
		char what[192];

		if (err && errlen)
			snprintf(err, errlen, "device too small for target");
		if (p) {
			size_word(what, sizeof(what), p);
			um_detail_set("%s, the map has %llu", what, (unsigned long long)size);
		}
		return -EINVAL;
	}
	return 0;
}

/* A table whose paths need larger blocks than the map was made with: the
 * clients were told the map's block size (NBD, ublk) and would send I/O
 * those paths cannot take. */
static int check_block_size(struct multipath *m, uint32_t bs, char *err, size_t errlen)
{
	struct priority_group *pg;
	struct pgpath *p;

	if (m->block_size <= bs)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "logical block size too large");
	list_for_each_entry(pg, &m->priority_groups, list)
		list_for_each_entry(p, &pg->pgpaths, list)
			if (p->path->block_size > bs) {
				char esc[128];

				um_escape_detail(esc, sizeof(esc), p->path->name);
				um_detail_set("%s: %u-byte blocks, the map has %u", esc,
					      p->path->block_size, bs);
				return -EINVAL;
			}
	return -EINVAL;
}

int umpath_map_new(struct umpath_ctx *ctx, const char *name, const char *table,
		   uint64_t size_bytes, char *err, size_t errlen, struct umpath_map **ret_map)
{
	return umpath_map_new_target(ctx, name, NULL, table, size_bytes, err, errlen, ret_map);
}

int umpath_map_new_target(struct umpath_ctx *ctx, const char *name, const char *target,
			  const char *table, uint64_t size_bytes, char *err, size_t errlen,
			  struct umpath_map **ret_map)
{
	struct umpath_map *map;
	struct multipath *m = NULL;
	int r;

	if (!name || !*name)
		return -EINVAL;
	map = calloc(1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	map->ctx = ctx;
	list_init(&map->queued);
	list_init(&map->held);
	list_init(&map->free_reqs);
	list_init(&map->unsettled);
	list_init(&map->fences);
	list_init(&map->ctx_node);
	map->name = strdup(name);
	if (!map->name) {
		r = -ENOMEM;
		goto fail;
	}
	r = mp_table_parse(map, mp_target_lookup(target), table, err, errlen, &m);
	if (r < 0)
		goto fail;
	if (!size_bytes) {
		r = -EINVAL;
		if (!m->nr_valid_paths) {
			snprintf(err, err ? errlen : 0, "a map without paths needs a size");
			goto fail;
		}
		if (!m->common_size) {
			struct um_path *a = path_sized(m, 0, false), *b = NULL;
			char wa[192], wb[192];

			snprintf(err, err ? errlen : 0, "paths differ in size");
			if (a)
				b = path_sized(m, a->size, false);
			if (b) {
				size_word(wa, sizeof(wa), a);
				size_word(wb, sizeof(wb), b);
				um_detail_set("%s, %s", wa, wb);
			}
			goto fail;
		}
		size_bytes = m->common_size;
	}
	r = check_size(m, size_bytes, err, errlen);
	if (r < 0)
		goto fail;
	map->size = size_bytes;
	/* The largest block of its first table's paths, for good.  (Sizes
	 * in bytes stay accepted where no path asks for more than 512.) */
	map->block_size = m->block_size;
	if (map->block_size > UM_MIN_BLOCK && size_bytes % map->block_size) {
		r = -EINVAL;
		snprintf(err, err ? errlen : 0, "size not a multiple of the logical block size");
		um_detail_set("%llu bytes, %u-byte blocks", (unsigned long long)size_bytes,
			      map->block_size);
		goto fail;
	}
	r = map_pool_init(map, ctx->pool_size);
	if (r < 0)
		goto fail;
	map->live = m;
	pthread_mutex_lock(&ctx->maps_lock);
	list_add_tail(&map->ctx_node, &ctx->maps);
	pthread_mutex_unlock(&ctx->maps_lock);
	*ret_map = map;
	return 0;
fail:
	mp_table_free(m);
	map_pool_free(map);
	free(map->name);
	free(map);
	return r;
}

int umpath_map_load(struct umpath_map *map, const char *table, char *err, size_t errlen)
{
	return umpath_map_load_target(map, NULL, table, err, errlen);
}

int umpath_map_load_target(struct umpath_map *map, const char *target, const char *table,
			   char *err, size_t errlen)
{
	struct multipath *m, *old;
	int r;

	r = mp_table_parse(map, mp_target_lookup(target), table, err, errlen, &m);
	if (r < 0)
		return r;
	r = check_size(m, map->size, err, errlen);
	if (r >= 0)
		r = check_block_size(m, map->block_size, err, errlen);
	if (r < 0) {
		mp_table_free(m);
		return r;
	}
	map_lock(map);
	old = map->inactive;
	map->inactive = m;
	map_unlock(map);
	mp_table_free(old);
	return 0;
}

int umpath_map_clear(struct umpath_map *map)
{
	struct multipath *old;

	map_lock(map);
	old = map->inactive;
	map->inactive = NULL;
	map_unlock(map);
	mp_table_free(old);
	return 0;
}

int umpath_map_is_suspended(struct umpath_map *map)
{
	int s;

	map_lock(map);
	s = map->suspended;
	map_unlock(map);
	return s;
}

int umpath_map_suspend(struct umpath_map *map, unsigned flags)
{
	map_lock(map);
	if (map->suspended) {
		map_unlock(map);
		return 0;
	}
	map->noflush = flags & UMPATH_SUSPEND_NOFLUSH;
	/* presuspend: queue_if_no_path is lent away for the suspend.  Only
	 * bio-based maps fail their queued I/O here (their suspend would wait
	 * on it); request-based ones keep it queued through the suspend, as
	 * Linux 6.12 is seen to do (tests/conformance/noflush-reload and
	 * docs/engine.md). */
	if (!map->noflush || map->live->queue_mode == QUEUE_MODE_BIO) {
		queue_if_no_path_locked(map->live, false, true);
		if (map->live->queue_mode != QUEUE_MODE_BIO)
			map->kick = false;
	}
	map->suspended = true;
	map_unlock(map);	/* bio-based: runs the kick, queued I/O fails */

	map_lock(map);
	while (map->inflight)
		map_wait_locked(map);
	flush_pg_init_locked(map, map->live, false);
	map_unlock(map);
	return 0;
}

/* After a swap, with the old table gone: paths the old table counted for
 * (path.c, um_path.owner) are counted by the new one's, with plain stores. */
static void claim_counters_locked(struct multipath *m)
{
	struct priority_group *pg;
	struct pgpath *p;

	list_for_each_entry(pg, &m->priority_groups, list)
		list_for_each_entry(p, &pg->pgpaths, list)
			if (!p->owns_counters)
				p->owns_counters = um_path_counters_claim(p->path, &p->own);
}

int umpath_map_resume(struct umpath_map *map)
{
	struct multipath *old = NULL;

	map_lock(map);
	if (map->inactive && !map->suspended) {
		map_unlock(map);
		umpath_map_suspend(map, 0);
		map_lock(map);
	}
	if (map->inactive) {
		/* Requests the kick mapped while suspended must end first. */
		/* Nor may a pg_init still run on the outgoing table: it may
		 * have started since the suspend (a requeue remaps I/O), and
		 * its handler must not answer into a freed table.  The lock
		 * is held from the last check to the swap. */
		for (;;) {
			while (map->inflight)
				map_wait_locked(map);
			if (!map->live->pg_init_in_progress)
				break;
			flush_pg_init_locked(map, map->live, true);
		}
		old = map->live;
		map->live = map->inactive;
		map->inactive = NULL;
		map_event_locked(map, UMPATH_EV_TABLE_SWAPPED, NULL, 0);
	}
	/* multipath_resume: restore queue_if_no_path */
	if (map->live->flags & MPATHF_SAVED_QUEUE_IF_NO_PATH) {
		map->live->flags |= MPATHF_QUEUE_IF_NO_PATH;
		map->live->flags &= ~MPATHF_SAVED_QUEUE_IF_NO_PATH;
	}
	map->suspended = false;
	map->noflush = false;
	list_splice_tail_init(&map->held, &map->queued);
	map->kick = true;
	map_unlock(map);
	if (old) {
		mp_table_free(old);
		map_lock(map);
		claim_counters_locked(map->live);
		map_unlock(map);
	}
	return 0;
}

void umpath_map_free(struct umpath_map *map)
{
	if (!map)
		return;
	pthread_mutex_lock(&map->ctx->maps_lock);
	list_del_init(&map->ctx_node);
	pthread_mutex_unlock(&map->ctx->maps_lock);
	map_lock(map);
	map->dying = true;
	map->live->flags &= ~MPATHF_QUEUE_IF_NO_PATH;
	list_splice_tail_init(&map->held, &map->queued);
	map->kick = true;
	map_unlock(map);	/* queued and held I/O fail with EIO */

	/* Nothing may still use the map: no I/O, no thread delivering events
	 * or re-dispatching, no pg_init (whose end may kick again). */
	map_lock(map);
	for (;;) {
		for (;;) {
			if (map->inflight || map->busy || map->delivering || map->kicking ||
			    map->pool_waking)
				map_wait_locked(map);
			else if (atomic_load_explicit(&map->completions_ended, memory_order_acquire) !=
				 map->completions_begun)
				/* done() callbacks end without the lock and
				 * wake nobody (req_complete): poll them. */
				map_wait_locked_ms(map, 1);
			else
				break;
		}
		if (!map->live->pg_init_in_progress)
			break;
		flush_pg_init_locked(map, map->live, true);
	}
	/* The unlock after dying was set called every waiter; none arms since. */
	assert(!map->pool_waiters);
	map_unlock_raw(map);

	um_timer_cancel(map->ctx->loop, &map->requeue_timer);
	mp_table_free(map->live);
	mp_table_free(map->inactive);
	unsettled_free(map);
	for (unsigned i = 0; i < map->npending; i++)
		free(map->pending[i].path);
	free(map->pending);
	map_pool_free(map);
	free(map->name);
	free(map);
}

/* ---- layout and state for checkers and operators -------------------- */

int umpath_map_info(struct umpath_map *map, struct umpath_map_info *ret)
{
	struct multipath *m;
	struct mp_req *rq;
	unsigned queued = 0;

	map_lock(map);
	m = map->live;
	list_for_each_entry(rq, &map->queued, node)
		queued++;
	list_for_each_entry(rq, &map->held, node)
		queued++;
	*ret = (struct umpath_map_info){
		.nr_groups = m->nr_priority_groups,
		.current_group = m->next_pg ? m->next_pg->pg_num :
				 m->current_pg ? m->current_pg->pg_num :
				 m->nr_priority_groups ? 1u : 0u,
		.nr_valid_paths = m->nr_valid_paths,
		.queue_if_no_path = !!(m->flags & MPATHF_QUEUE_IF_NO_PATH),
		.suspended = map->suspended,
		.queued_ios = queued,
		.inflight_ios = map->inflight,
		.size = map->size,
	};
	map_unlock(map);
	return 0;
}

int umpath_map_foreach(struct umpath_map *map,
		       void (*group_fn)(const struct umpath_group_info *g, void *opaque),
		       void (*path_fn)(const struct umpath_path_info *p, void *opaque),
		       void *opaque)
{
	struct priority_group *pg;
	struct pgpath *p;

	map_lock(map);
	list_for_each_entry(pg, &map->live->priority_groups, list) {
		unsigned i = 0;

		if (group_fn) {
			struct umpath_group_info gi = {
				.num = pg->pg_num,
				.state = pg->bypassed ? 'D' : pg == map->live->current_pg ? 'A' : 'E',
				.selector = pg->ps.type->name,
				.nr_paths = pg->nr_pgpaths,
			};
			group_fn(&gi, opaque);
		}
		list_for_each_entry(p, &pg->pgpaths, list) {
			if (path_fn) {
				struct umpath_path_info pi = {
					.group = pg->pg_num,
					.index = i,
					.path = p->path->name,
					.active = p->is_active,
					.fail_count = p->fail_count,
				};
				path_fn(&pi, opaque);
			}
			i++;
		}
	}
	map_unlock_raw(map);
	return 0;
}
