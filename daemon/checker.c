/* checker.c - multipathd's path management inside umpathd: path checkers,
 * failback, no_path_retry and flap damping.
 *
 * One thread ticks every CK_TICK_MS.  Each path of each map is probed (a
 * read of its first block through its transport, asynchronously: a hung
 * probe never delays another path or any I/O) when its interval is due;
 * healthy paths back off from polling_interval to max_polling_interval, a
 * path whose state changes is checked at polling_interval again.  A probe
 * slower than checker_timeout counts as a failure.  Then, per map:
 *
 *  - an active path whose probe failed is failed (before client I/O finds
 *    out); a failed path whose probe succeeded is reinstated - unless it is
 *    flapping: flap_threshold failures within flap_window hold it out for
 *    flap_recovery (like multipathd's san_path_err_* / marginal paths);
 *  - failback: with a better group usable again (the first group, in table
 *    order, that is not bypassed and has an active path - the order is the
 *    priority order, as multipathd writes tables), switch to it at once
 *    (immediate), after failback_delay (N seconds), only when a group's
 *    first path comes back (followover), or never (manual);
 *  - no_path_retry: with no usable path, N checker intervals of queueing,
 *    then queue_if_no_path is switched off (queued I/O fails); `fail`
 *    switches it off at once; when a path is back, queueing is restored.
 *    `queue` leaves the table's setting alone.
 *
 * The checker acts only through messages to the map, like multipathd does
 * through the kernel; it never touches the engine's state directly.
 *
 * Locking: ck->lock guards every ck_map and ck_path.  It is never held
 * across an engine call; probe completions (any thread) only record their
 * result under it and the tick acts on results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"

#define CK_TICK_MS 50
#define CK_FAIL_HISTORY 64

enum ck_state { CK_UNKNOWN, CK_UP, CK_DOWN };

struct ck_path {
	struct list_head node;		/* in cm->paths */
	char *name;
	enum ck_state state;		/* last probe's verdict */
	enum ck_state reported;		/* state the tick last acted on */
	bool probing;
	uint32_t gen;			/* of the probe in flight */
	uint64_t probe_start_ns;
	uint64_t next_ns;		/* next probe due */
	unsigned interval_ms;
	uint64_t fails[CK_FAIL_HISTORY];	/* recent failure times, ring */
	unsigned nfails, fail_head;
	uint64_t held_until_ns;		/* flap damping: not reinstated before */
	bool held;
	bool seen;			/* still in the table (sync) */
};

struct ck_map {
	struct list_head node;		/* in ck->maps */
	struct umd_map *m;		/* valid while in ck->maps */
	char *name;
	struct list_head paths;
	uint64_t nopath_since_ns;	/* no usable path since, or 0 */
	bool nopath_exhausted;		/* we switched queueing off */
	uint64_t failback_at_ns;	/* deferred failback due, or 0 */
	unsigned *group_active;		/* active paths per group, last tick */
	unsigned ngroups;
};

struct umd_checker {
	struct umd *d;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;			/* guarded by lock */
	bool started;
	struct list_head maps;		/* guarded by lock */
	unsigned probes;		/* in flight, guarded by lock */
};

struct probe_ctx {
	struct umd_checker *ck;
	char *map;
	char *path;
	uint32_t gen;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct ck_map *find_map_locked(struct umd_checker *ck, const char *name)
{
	struct ck_map *cm;

	list_for_each_entry(cm, &ck->maps, node)
		if (!strcmp(cm->name, name))
			return cm;
	return NULL;
}

static struct ck_path *find_path(struct ck_map *cm, const char *name)
{
	struct ck_path *cp;

	list_for_each_entry(cp, &cm->paths, node)
		if (!strcmp(cp->name, name))
			return cp;
	return NULL;
}

static void path_free(struct ck_path *cp)
{
	free(cp->name);
	free(cp);
}

static void map_free(struct ck_map *cm)
{
	struct ck_path *cp, *n;

	list_for_each_entry_safe(cp, n, &cm->paths, node)
		path_free(cp);
	free(cm->group_active);
	free(cm->name);
	free(cm);
}

/* ---- flap damping -------------------------------------------------- */

/* Record a failure; true if the path now flaps (and is held out). */
static bool note_failure_locked(struct ck_path *cp, const struct umd_policy *pol, uint64_t now)
{
	unsigned recent = 0;

	cp->fails[cp->fail_head] = now;
	cp->fail_head = (cp->fail_head + 1) % CK_FAIL_HISTORY;
	if (cp->nfails < CK_FAIL_HISTORY)
		cp->nfails++;
	if (!pol->flap_threshold)
		return false;
	for (unsigned i = 0; i < cp->nfails; i++)
		if (now - cp->fails[i] <= (uint64_t)pol->flap_window_ms * 1000000u)
			recent++;
	if (recent < pol->flap_threshold)
		return false;
	cp->held_until_ns = now + (uint64_t)pol->flap_recovery_ms * 1000000u;
	if (cp->held)
		return false;	/* already held: the hold is extended */
	cp->held = true;
	return true;
}

/* ---- probes -------------------------------------------------------- */

static void probe_done(void *opaque, int err)
{
	struct probe_ctx *pc = opaque;
	struct umd_checker *ck = pc->ck;
	struct ck_map *cm;
	struct ck_path *cp;

	pthread_mutex_lock(&ck->lock);
	cm = find_map_locked(ck, pc->map);
	cp = cm ? find_path(cm, pc->path) : NULL;
	/* A probe that outlived checker_timeout was already judged. */
	if (cp && cp->probing && cp->gen == pc->gen) {
		cp->probing = false;
		cp->state = err ? CK_DOWN : CK_UP;
	}
	ck->probes--;
	pthread_cond_broadcast(&ck->cond);
	pthread_mutex_unlock(&ck->lock);
	free(pc->map);
	free(pc->path);
	free(pc);
}

/* ---- one map per tick ---------------------------------------------- */

struct snap_path {
	char *name;
	unsigned group;
	bool active;
};

struct snap {
	struct snap_path *paths;
	unsigned n, cap;
	unsigned ngroups;
	char *group_state;	/* per group: 'A', 'E', 'D' */
	bool oom;
};

static void snap_group(const struct umpath_group_info *g, void *opaque)
{
	struct snap *s = opaque;
	char *gs = realloc(s->group_state, g->num);

	if (!gs) {
		s->oom = true;
		return;
	}
	s->group_state = gs;
	gs[g->num - 1] = g->state;
	s->ngroups = g->num;
}

static void snap_path(const struct umpath_path_info *p, void *opaque)
{
	struct snap *s = opaque;

	if (s->n == s->cap) {
		unsigned ncap = s->cap ? 2 * s->cap : 8;
		struct snap_path *np = realloc(s->paths, ncap * sizeof(*np));

		if (!np) {
			s->oom = true;
			return;
		}
		s->paths = np;
		s->cap = ncap;
	}
	s->paths[s->n] = (struct snap_path){ .name = strdup(p->path), .group = p->group,
					     .active = p->active };
	if (!s->paths[s->n].name)
		s->oom = true;
	else
		s->n++;
}

static void snap_free(struct snap *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->paths[i].name);
	free(s->paths);
	free(s->group_state);
}

static void publish(struct umd *d, const char *map, const char *type, const char *path,
		    unsigned group, int nvalid, const char *detail)
{
	struct umd_event ev = {
		.map = map, .type = type, .path = path, .group = group,
		.nr_valid_paths = nvalid, .detail = detail,
	};

	umd_event_publish(d, &ev);
}

static int message2(struct umpath_map *map, const char *verb, const char *arg)
{
	char *argv[2] = { (char *)verb, (char *)arg };

	return umpath_map_message(map, arg ? 2 : 1, argv);
}

/* Probes to start once the lock is dropped. */
struct start {
	char *path;
	uint32_t gen;
};

static void tick_map(struct umd_checker *ck, struct umd_map *m, uint64_t now)
{
	struct umd *d = ck->d;
	struct umd_policy pol;
	struct snap s = { .n = 0 };
	struct umpath_map_info info;
	struct ck_map *cm;
	struct ck_path *cp, *cn;
	struct start *starts = NULL;
	unsigned nstarts = 0;
	/* actions decided under the lock, done after it */
	char **to_fail = NULL, **to_reinstate = NULL;
	unsigned nfail = 0, nreinstate = 0;

	pthread_mutex_lock(&d->lock);
	pol = m->policy;
	pthread_mutex_unlock(&d->lock);

	umpath_map_foreach(m->map, snap_group, snap_path, &s);
	umpath_map_info(m->map, &info);
	if (s.oom || info.suspended)
		goto out;
	to_fail = calloc(s.n + 1, sizeof(*to_fail));
	to_reinstate = calloc(s.n + 1, sizeof(*to_reinstate));
	starts = calloc(s.n + 1, sizeof(*starts));
	if (!to_fail || !to_reinstate || !starts)
		goto out;

	pthread_mutex_lock(&ck->lock);
	cm = find_map_locked(ck, m->name);
	if (!cm) {
		pthread_mutex_unlock(&ck->lock);
		goto out;
	}
	/* Follow the table: new paths join, gone ones leave. */
	list_for_each_entry(cp, &cm->paths, node)
		cp->seen = false;
	for (unsigned i = 0; i < s.n; i++) {
		cp = find_path(cm, s.paths[i].name);
		if (!cp) {
			cp = calloc(1, sizeof(*cp));
			if (!cp || !(cp->name = strdup(s.paths[i].name))) {
				free(cp);
				continue;
			}
			cp->interval_ms = pol.polling_interval_ms;
			cp->next_ns = now;
			/* The engine's view until the first probe says otherwise. */
			cp->reported = s.paths[i].active ? CK_UP : CK_DOWN;
			list_add_tail(&cp->node, &cm->paths);
		}
		cp->seen = true;
	}
	list_for_each_entry_safe(cp, cn, &cm->paths, node) {
		if (!cp->seen) {
			list_del_init(&cp->node);
			path_free(cp);	/* a probe in flight finds nothing */
		}
	}

	for (unsigned i = 0; i < s.n; i++) {
		struct snap_path *sp = &s.paths[i];

		cp = find_path(cm, sp->name);
		if (!cp || (i && !strcmp(sp->name, s.paths[i - 1].name)))
			continue;
		if (!pol.checker) {
			cp->state = CK_UNKNOWN;
			continue;
		}
		/* A probe past its time limit is a failure. */
		if (cp->probing && now - cp->probe_start_ns > (uint64_t)pol.checker_timeout_ms * 1000000u) {
			cp->probing = false;
			cp->gen++;
			cp->state = CK_DOWN;
		}
		if (cp->held && now >= cp->held_until_ns) {
			cp->held = false;
			cp->nfails = 0;
			publish(d, m->name, "path_released", cp->name, sp->group, -1,
				"flap damping over");
		}
		/* Act on the verdict. */
		if (cp->state == CK_DOWN && sp->active) {
			to_fail[nfail++] = strdup(cp->name);
		} else if (cp->state == CK_UP && !sp->active && !cp->held) {
			to_reinstate[nreinstate++] = strdup(cp->name);
		}
		if (cp->state != CK_UNKNOWN && cp->state != cp->reported) {
			publish(d, m->name, cp->state == CK_UP ? "checker_up" : "checker_down", cp->name,
				sp->group, -1, NULL);
			cp->reported = cp->state;
			cp->interval_ms = pol.polling_interval_ms;
			cp->next_ns = now + (uint64_t)cp->interval_ms * 1000000u;
		}
		/* Start the next probe when due. */
		if (!cp->probing && now >= cp->next_ns) {
			cp->probing = true;
			cp->gen++;
			cp->probe_start_ns = now;
			starts[nstarts].path = strdup(cp->name);
			starts[nstarts++].gen = cp->gen;
			/* Healthy paths back off; others stay at the base rate. */
			if (cp->state == CK_UP && sp->active) {
				cp->interval_ms *= 2;
				if (cp->interval_ms > pol.max_polling_interval_ms)
					cp->interval_ms = pol.max_polling_interval_ms;
				if (cp->interval_ms < pol.polling_interval_ms)
					cp->interval_ms = pol.polling_interval_ms;
			} else {
				cp->interval_ms = pol.polling_interval_ms;
			}
			cp->next_ns = now + (uint64_t)cp->interval_ms * 1000000u;
		}
	}
	pthread_mutex_unlock(&ck->lock);

	for (unsigned i = 0; i < nfail; i++) {
		if (to_fail[i] && !message2(m->map, "fail_path", to_fail[i]))
			um_log("map %s: checker: path %s is down: failed", m->name, to_fail[i]);
	}
	for (unsigned i = 0; i < nreinstate; i++) {
		if (to_reinstate[i] && !message2(m->map, "reinstate_path", to_reinstate[i]))
			um_log("map %s: checker: path %s is up: reinstated", m->name, to_reinstate[i]);
	}
	for (unsigned i = 0; i < nstarts; i++) {
		struct probe_ctx *pc = calloc(1, sizeof(*pc));
		int r = -ENOMEM;

		if (pc && starts[i].path && (pc->map = strdup(m->name))) {
			pc->ck = ck;
			pc->path = starts[i].path;
			pc->gen = starts[i].gen;
			starts[i].path = NULL;
			pthread_mutex_lock(&ck->lock);
			ck->probes++;
			pthread_mutex_unlock(&ck->lock);
			r = umpath_path_probe(d->ctx, pc->path, probe_done, pc);
			if (r < 0) {
				pthread_mutex_lock(&ck->lock);
				ck->probes--;
				pthread_mutex_unlock(&ck->lock);
			}
		}
		if (r < 0) {
			/* Not open (a table being swapped): try next time. */
			pthread_mutex_lock(&ck->lock);
			cm = find_map_locked(ck, m->name);
			cp = cm && pc && pc->path ? find_path(cm, pc->path) : NULL;
			if (cp && cp->gen == starts[i].gen)
				cp->probing = false;
			pthread_mutex_unlock(&ck->lock);
			if (pc) {
				free(pc->map);
				free(pc->path);
				free(pc);
			}
		}
	}

	/* Map-wide policies, on the state after this tick's messages. */
	struct snap s2 = { .n = 0 };
	unsigned best = 0, *active;

	umpath_map_info(m->map, &info);
	umpath_map_foreach(m->map, snap_group, snap_path, &s2);
	active = calloc(s2.ngroups + 1, sizeof(*active));
	if (!active || s2.oom) {
		free(active);
		snap_free(&s2);
		goto out;
	}
	for (unsigned i = 0; i < s2.n; i++)
		if (s2.paths[i].active && s2.paths[i].group <= s2.ngroups)
			active[s2.paths[i].group - 1]++;
	for (unsigned g = 0; g < s2.ngroups && !best; g++)
		if (active[g] && s2.group_state[g] != 'D')
			best = g + 1;

	pthread_mutex_lock(&ck->lock);
	cm = find_map_locked(ck, m->name);
	bool switch_now = false, requeue = false, dequeue = false;
	if (cm) {
		/* no_path_retry */
		if (!info.nr_valid_paths && info.nr_groups) {
			if (!cm->nopath_since_ns)
				cm->nopath_since_ns = now;
			if (pol.no_path_retry == NO_PATH_RETRY_FAIL && info.queue_if_no_path) {
				dequeue = true;
			} else if (pol.no_path_retry > 0 && info.queue_if_no_path &&
				   now - cm->nopath_since_ns >=
				   (uint64_t)pol.no_path_retry * pol.polling_interval_ms * 1000000u) {
				dequeue = true;
			}
		} else if (info.nr_valid_paths) {
			cm->nopath_since_ns = 0;
			if (cm->nopath_exhausted) {
				requeue = true;
				cm->nopath_exhausted = false;
			}
		}
		if (dequeue)
			cm->nopath_exhausted = true;

		/* failback */
		if (best && best < info.current_group && pol.failback != FAILBACK_MANUAL) {
			bool came_back = cm->group_active && best <= cm->ngroups &&
					 !cm->group_active[best - 1];

			switch (pol.failback) {
			case FAILBACK_IMMEDIATE:
				switch_now = true;
				break;
			case FAILBACK_DEFERRED:
				if (!cm->failback_at_ns)
					cm->failback_at_ns = now + (uint64_t)pol.failback_delay_ms * 1000000u;
				switch_now = now >= cm->failback_at_ns;
				break;
			case FAILBACK_FOLLOWOVER:
				switch_now = came_back;
				break;
			case FAILBACK_MANUAL:
				break;
			}
		} else {
			cm->failback_at_ns = 0;
		}
		if (switch_now)
			cm->failback_at_ns = 0;
		unsigned *ga = realloc(cm->group_active, (s2.ngroups + 1) * sizeof(*ga));
		if (ga) {
			memcpy(ga, active, (s2.ngroups + 1) * sizeof(*ga));
			cm->group_active = ga;
			cm->ngroups = s2.ngroups;
		}
	}
	pthread_mutex_unlock(&ck->lock);
	snap_free(&s2);
	free(active);

	if (dequeue && !message2(m->map, "fail_if_no_path", NULL)) {
		char detail[96];

		if (pol.no_path_retry == NO_PATH_RETRY_FAIL)
			snprintf(detail, sizeof(detail), "no path: queueing disabled (no_path_retry fail)");
		else
			snprintf(detail, sizeof(detail), "no path for %d checker intervals: queueing disabled",
				 pol.no_path_retry);
		publish(d, m->name, "no_path_retry", NULL, 0, 0, detail);
	}
	if (requeue && !message2(m->map, "queue_if_no_path", NULL))
		publish(d, m->name, "no_path_retry", NULL, 0, (int)info.nr_valid_paths,
			"a path is back: queueing restored");
	if (switch_now) {
		char num[16];

		snprintf(num, sizeof(num), "%u", best);
		if (!message2(m->map, "switch_group", num))
			publish(d, m->name, "failback", NULL, best, (int)info.nr_valid_paths, NULL);
	}
out:
	for (unsigned i = 0; i < nfail; i++)
		free(to_fail[i]);
	for (unsigned i = 0; i < nreinstate; i++)
		free(to_reinstate[i]);
	for (unsigned i = 0; i < nstarts; i++)
		free(starts[i].path);
	free(to_fail);
	free(to_reinstate);
	free(starts);
	snap_free(&s);
}

struct name_list {
	char **names;
	unsigned n, cap;
};

static void collect_name(struct umd_map *m, void *opaque)
{
	struct name_list *l = opaque;

	if (l->n == l->cap) {
		unsigned ncap = l->cap ? 2 * l->cap : 16;
		char **nn = realloc(l->names, ncap * sizeof(*nn));

		if (!nn)
			return;
		l->names = nn;
		l->cap = ncap;
	}
	if ((l->names[l->n] = strdup(m->name)))
		l->n++;
}

static void *checker_thread(void *arg)
{
	struct umd_checker *ck = arg;
	struct umd *d = ck->d;

	for (;;) {
		struct name_list l = { .n = 0 };
		struct timespec dl;
		bool stop;

		umd_map_foreach(d, collect_name, &l);
		for (unsigned i = 0; i < l.n; i++) {
			struct umd_map *m = umd_map_get(d, l.names[i], false);

			if (m) {
				tick_map(ck, m, now_ns());
				umd_map_put(m, false);
			}
			free(l.names[i]);
		}
		free(l.names);

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += CK_TICK_MS * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&ck->lock);
		if (!ck->stop)
			pthread_cond_timedwait(&ck->cond, &ck->lock, &dl);
		stop = ck->stop;
		pthread_mutex_unlock(&ck->lock);
		if (stop)
			break;
	}
	return NULL;
}

/* ---- the daemon's hooks -------------------------------------------- */

int umd_checker_start(struct umd *d)
{
	struct umd_checker *ck = calloc(1, sizeof(*ck));
	int r;

	if (!ck)
		return -ENOMEM;
	ck->d = d;
	pthread_mutex_init(&ck->lock, NULL);
	pthread_cond_init(&ck->cond, NULL);
	list_init(&ck->maps);
	d->checker = ck;
	r = -pthread_create(&ck->thread, NULL, checker_thread, ck);
	if (r) {
		d->checker = NULL;
		free(ck);
		return r;
	}
	ck->started = true;
	return 0;
}

void umd_checker_stop(struct umd *d)
{
	struct umd_checker *ck = d->checker;
	struct ck_map *cm, *n;
	unsigned waited = 0;

	if (!ck || !ck->started)
		return;
	pthread_mutex_lock(&ck->lock);
	ck->stop = true;
	pthread_cond_broadcast(&ck->cond);
	pthread_mutex_unlock(&ck->lock);
	pthread_join(ck->thread, NULL);
	ck->started = false;

	/* Probes end within their transport's deadline. */
	pthread_mutex_lock(&ck->lock);
	while (ck->probes && waited++ < 600) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 100000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ck->cond, &ck->lock, &dl);
	}
	bool leak = ck->probes != 0;
	list_for_each_entry_safe(cm, n, &ck->maps, node) {
		list_del_init(&cm->node);
		cm->m->ck = NULL;
		map_free(cm);
	}
	pthread_mutex_unlock(&ck->lock);
	if (leak) {
		um_log("checker: %u probes still running at shutdown", ck->probes);
		return;	/* their callbacks still need ck */
	}
	d->checker = NULL;
	pthread_mutex_destroy(&ck->lock);
	pthread_cond_destroy(&ck->cond);
	free(ck);
}

void umd_checker_map_added(struct umd_map *m)
{
	struct umd_checker *ck = m->d->checker;
	struct ck_map *cm;

	if (!ck)
		return;
	cm = calloc(1, sizeof(*cm));
	if (!cm || !(cm->name = strdup(m->name))) {
		free(cm);
		return;
	}
	cm->m = m;
	list_init(&cm->paths);
	pthread_mutex_lock(&ck->lock);
	list_add_tail(&cm->node, &ck->maps);
	m->ck = cm;
	pthread_mutex_unlock(&ck->lock);
}

void umd_checker_map_removed(struct umd_map *m)
{
	struct umd_checker *ck = m->d->checker;
	struct ck_map *cm;

	if (!ck)
		return;
	pthread_mutex_lock(&ck->lock);
	cm = m->ck;
	if (cm) {
		list_del_init(&cm->node);
		m->ck = NULL;
	}
	pthread_mutex_unlock(&ck->lock);
	if (cm)
		map_free(cm);
}

void umd_checker_on_event(struct umd_map *m, const struct umpath_event *ev)
{
	struct umd_checker *ck = m->d->checker;
	struct umd_policy pol;
	struct ck_path *cp;
	bool held = false;
	unsigned group = ev->group;
	char path[512];

	if (!ck || ev->type != UMPATH_EV_PATH_FAILED || !ev->path)
		return;
	pthread_mutex_lock(&m->d->lock);
	pol = m->policy;
	pthread_mutex_unlock(&m->d->lock);

	uint64_t now = now_ns();
	pthread_mutex_lock(&ck->lock);
	cp = m->ck ? find_path(m->ck, ev->path) : NULL;
	if (cp) {
		held = note_failure_locked(cp, &pol, now);
		/* Check it again soon: it may come back. */
		cp->interval_ms = pol.polling_interval_ms;
		if (!cp->probing)
			cp->next_ns = now + (uint64_t)cp->interval_ms * 1000000u;
		/* Not a verdict of ours: wait for the next probe's, so that
		 * an operator's reinstate_path is not undone by a stale one. */
		if (cp->probing)
			cp->gen++;	/* its answer may predate the failure */
		cp->probing = false;
		cp->state = CK_UNKNOWN;
		cp->reported = CK_DOWN;
	}
	pthread_mutex_unlock(&ck->lock);
	if (held) {
		snprintf(path, sizeof(path), "held out for %u ms after %u failures within %u ms",
			 pol.flap_recovery_ms, pol.flap_threshold, pol.flap_window_ms);
		publish(m->d, m->name, "path_held", ev->path, group, -1, path);
	}
}

const char *umd_checker_path_state(struct umd_map *m, const char *path, char *buf, size_t len)
{
	struct umd_checker *ck = m->d->checker;
	const char *s = "-";

	if (ck) {
		pthread_mutex_lock(&ck->lock);
		struct ck_path *cp = m->ck ? find_path(m->ck, path) : NULL;
		if (cp) {
			if (cp->held)
				s = "held";
			else if (cp->state == CK_UP)
				s = "up";
			else if (cp->state == CK_DOWN)
				s = "down";
			else
				s = cp->probing ? "pending" : "-";
		}
		pthread_mutex_unlock(&ck->lock);
	}
	snprintf(buf, len, "%s", s);
	return buf;
}
