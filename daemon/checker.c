/* checker.c - multipathd's path management inside umpathd: path checkers,
 * failback, no_path_retry and flap damping.
 *
 * The checker observes the registry (registry.h): a map joins when it is
 * added, leaves when it is removed, and its engine events wake it.  It runs
 * on the daemon's event loop (d->loop) with one timer per path and one per
 * map; nothing sweeps the maps.
 *
 * Per path, when its timer fires: a probe (a read of its first block
 * through its transport, asynchronous: a hung probe never delays another
 * path or any I/O) starts when its interval is due; healthy paths back off
 * from polling_interval to max_polling_interval, a path whose state changes
 * is checked at polling_interval again.  A probe slower than
 * checker_timeout counts as a failure.  A probe's answer re-fires the
 * path's timer.  Then:
 *
 *  - an active path whose probe failed is failed (before client I/O finds
 *    out); a failed path whose probe succeeded is reinstated - unless it is
 *    flapping: flap_threshold failures within flap_window hold it out for
 *    flap_recovery (like multipathd's san_path_err_* / marginal paths).
 *
 * Per map, when its timer fires (an engine event, a path's verdict acted
 * on, or a deadline of its own):
 *
 *  - the table is followed: new paths join, gone ones leave;
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
 * across an engine call nor a timer free; probe completions (any thread)
 * only record their result under it and re-fire the path's timer.
 *
 * Lifetime: a probe in flight holds a reference on its path and on the
 * checker, so a path that leaves, or a checker that stops, is freed by the
 * last probe to answer - never after a timeout (export.h's protocol).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "wait.h"

#define CK_FAIL_HISTORY 64
#define MS_NS 1000000ull

enum ck_state { CK_UNKNOWN, CK_UP, CK_DOWN };

struct ck_path {
	struct list_head node;		/* in cm->paths, guarded by ck->lock */
	struct umd_checker *ck;
	struct ck_map *cm;		/* NULL once dead */
	char *name;
	unsigned refs;			/* guarded by ck->lock: the map's + one per probe */
	bool dead;			/* left the table or the map went */
	enum ck_state state;		/* last probe's verdict */
	enum ck_state reported;		/* state last acted on */
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
	struct umpath_timer *timer;	/* next probe, probe deadline, hold end */
	enum umpath_checker kind;	/* of the last probe started; DEFAULT: none yet */
	int last_err;			/* the last probe's answer (-ETIME: too slow) */
	struct timespec last_time;	/* when it came (CLOCK_REALTIME); 0: none yet */
	bool unsupported;		/* the policy's checker cannot run on it */
	/* reservation_key: registered on this path since it was last seen
	 * down?  A path is reinstated only after its registration. */
	bool need_register;
	bool registering;		/* a REGISTER AND IGNORE is in flight */
	bool disabled;			/* `fail path` by the operator: not reinstated
					 * until `reinstate path` (multipathd's
					 * checker_disable) */
};

struct ck_map {
	struct list_head node;		/* in ck->maps, guarded by ck->lock */
	struct umd_checker *ck;
	struct umd_map *m;		/* valid until the registry says REMOVED */
	struct list_head paths;		/* guarded by ck->lock */
	uint64_t nopath_since_ns;	/* no usable path since, or 0 */
	bool nopath_exhausted;		/* we switched queueing off */
	uint64_t failback_at_ns;	/* deferred failback due, or 0 */
	unsigned *group_active;		/* active paths per group, last look */
	unsigned ngroups;
	struct umpath_timer *timer;	/* follow the table, map-wide policies */
	bool dying;			/* guarded by ck->lock: nothing arms timer, no path joins */
};

struct umd_checker {
	struct umd *d;
	struct umpath_loop *loop;	/* the daemon's */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* refs dropped */
	unsigned refs;			/* guarded by lock: the daemon's + one per probe */
	bool abandoned;			/* guarded by lock: stop gave up, last ref frees */
	struct list_head maps;		/* guarded by lock */
	struct umd_map_sub *registry;
	unsigned slot;			/* our index in umd_map.slot[] */
};

struct probe_ctx {
	struct ck_path *cp;
	uint32_t gen;
	struct umpath_pr_out req;	/* reservation_key registration */
};

static uint64_t ms_ns(unsigned ms)
{
	return (uint64_t)ms * MS_NS;
}

static void checker_free(struct umd_checker *ck)
{
	pthread_mutex_destroy(&ck->lock);
	pthread_cond_destroy(&ck->cond);
	free(ck);
}

/* Drop a reference; true if the caller must free ck (after unlocking). */
static bool checker_put_locked(struct umd_checker *ck)
{
	ck->refs--;
	pthread_cond_broadcast(&ck->cond);
	return !ck->refs && ck->abandoned;
}

static struct ck_path *find_path(struct ck_map *cm, const char *name)
{
	struct ck_path *cp;

	list_for_each_entry(cp, &cm->paths, node)
		if (!strcmp(cp->name, name))
			return cp;
	return NULL;
}

static void path_put_locked(struct ck_path *cp)
{
	if (--cp->refs)
		return;
	free(cp->name);
	free(cp);
}

/* Take cp out of its map; the caller frees the returned timer with no lock
 * held (a running fire must end first), then drops the map's reference. */
static struct umpath_timer *path_kill_locked(struct ck_path *cp)
{
	struct umpath_timer *t = cp->timer;

	list_del_init(&cp->node);
	cp->dead = true;
	cp->cm = NULL;
	cp->timer = NULL;
	return t;
}

static void path_release(struct umd_checker *ck, struct ck_path *cp, struct umpath_timer *t)
{
	umpath_timer_free(t);
	pthread_mutex_lock(&ck->lock);
	path_put_locked(cp);
	pthread_mutex_unlock(&ck->lock);
}

static struct umd_policy map_policy(struct umd_map *m)
{
	struct umd_policy pol;

	pthread_mutex_lock(&m->d->lock);
	pol = m->policy;
	pthread_mutex_unlock(&m->d->lock);
	return pol;
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

/* ---- a map's live table, copied ------------------------------------------ */

/* What the checker reads of a map, from one consistent snapshot (one hold
 * of the map's lock: paths, groups and counts of the same table). */
struct snap_path {
	const char *name;	/* the snapshot's string */
	unsigned group;
	bool active;
};

struct snap {
	struct umpath_snapshot *ss;
	struct snap_path *paths;
	unsigned n;
	unsigned ngroups;
	char *group_state;	/* per group: 'A', 'E', 'D' */
	struct umpath_map_info info;
	bool own_paths;		/* the target leaves its paths to the checker */
};

static void snap_free(struct snap *s)
{
	free(s->paths);
	free(s->group_state);
	umpath_snapshot_free(s->ss);
}

static int snap_take(struct umpath_map *map, struct snap *s)
{
	struct umpath_snapshot *ss;
	int r;

	memset(s, 0, sizeof(*s));
	r = umpath_map_snapshot(map, &ss);
	if (r < 0)
		return r;
	s->ss = ss;
	/* multipath-v0 fails and reinstates its paths itself (its failure
	 * budget and its test read): no checker, failback or no_path_retry. */
	s->own_paths = !ss->target || !strcmp(ss->target, "multipath");
	s->paths = calloc(ss->nr_paths + 1, sizeof(*s->paths));
	s->group_state = calloc(ss->nr_groups + 1, 1);
	if (!s->paths || !s->group_state)
		return -ENOMEM;
	for (unsigned i = 0; i < ss->nr_paths; i++)
		s->paths[i] = (struct snap_path){ .name = ss->paths[i].path,
						  .group = ss->paths[i].group,
						  .active = ss->paths[i].active };
	s->n = ss->nr_paths;
	for (unsigned g = 0; g < ss->nr_groups; g++)
		s->group_state[g] = ss->groups[g].state;
	s->ngroups = ss->nr_groups;
	s->info = (struct umpath_map_info){
		.nr_groups = ss->nr_groups,
		.current_group = ss->current_group,
		.nr_valid_paths = ss->nr_valid_paths,
		.queue_if_no_path = ss->queue_if_no_path,
		.suspended = ss->suspended,
	};
	return 0;
}

/* The first entry of a path in the table (a path may be listed twice). */
static const struct snap_path *snap_find(const struct snap *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->paths[i].name, name))
			return &s->paths[i];
	return NULL;
}

/* ---- flap damping --------------------------------------------------------- */

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
		if (now - cp->fails[i] <= ms_ns(pol->flap_window_ms))
			recent++;
	if (recent < pol->flap_threshold)
		return false;
	cp->held_until_ns = now + ms_ns(pol->flap_recovery_ms);
	if (cp->held)
		return false;	/* already held: the hold is extended */
	cp->held = true;
	return true;
}

/* Have the map's policies look again, unless it is going away. */
static void map_kick(struct ck_map *cm)
{
	pthread_mutex_lock(&cm->ck->lock);
	if (!cm->dying)
		umpath_timer_arm(cm->timer, 0);
	pthread_mutex_unlock(&cm->ck->lock);
}

/* ---- one path: its timer ------------------------------------------------- */

/* What a path's fire decided under the lock, done after it. */
struct path_acts {
	const char *message;	/* "fail_path", "reinstate_path" or NULL */
	const char *report;	/* "checker_up", "checker_down" or NULL */
	bool released;		/* flap damping over */
	bool probe;		/* start a probe of gen */
	uint32_t gen;
	enum umpath_checker kind;	/* with this checker */
	uint64_t register_key;	/* register it with this key first, or 0 */
};

static void probe_done(void *opaque, int err)
{
	struct probe_ctx *pc = opaque;
	struct ck_path *cp = pc->cp;
	struct umd_checker *ck = cp->ck;
	bool free_ck;

	pthread_mutex_lock(&ck->lock);
	/* A probe that outlived checker_timeout was already judged. */
	if (!cp->dead && cp->probing && cp->gen == pc->gen) {
		cp->probing = false;
		cp->state = err ? CK_DOWN : CK_UP;
		cp->last_err = err;
		clock_gettime(CLOCK_REALTIME, &cp->last_time);
		umpath_timer_arm(cp->timer, 0);	/* act on it now */
	}
	path_put_locked(cp);
	free_ck = checker_put_locked(ck);
	pthread_mutex_unlock(&ck->lock);
	free(pc);
	if (free_ck)
		checker_free(ck);
}

/* A probe past its time limit is a failure. */
static void path_expire_probe_locked(struct ck_path *cp, const struct umd_policy *pol, uint64_t now)
{
	if (cp->probing && now - cp->probe_start_ns >= ms_ns(pol->checker_timeout_ms)) {
		cp->probing = false;
		cp->gen++;
		cp->state = CK_DOWN;
		cp->last_err = -ETIME;
		clock_gettime(CLOCK_REALTIME, &cp->last_time);
	}
}

static void path_end_hold_locked(struct ck_path *cp, uint64_t now, struct path_acts *a)
{
	if (cp->held && now >= cp->held_until_ns) {
		cp->held = false;
		cp->nfails = 0;
		a->released = true;
	}
}

/* Act on the verdict: fail or reinstate in the map, report a change. */
static void path_verdict_locked(struct ck_path *cp, const struct snap_path *sp,
				const struct umd_policy *pol, uint64_t now, struct path_acts *a)
{
	if (cp->state == CK_DOWN)
		cp->need_register = true;	/* the target may have lost it */
	if (cp->state == CK_DOWN && sp->active) {
		a->message = "fail_path";
	} else if (cp->state == CK_UP && pol->reservation_key && cp->need_register) {
		/* Registered before it is reinstated (a path new in the
		 * table: at its first look): a reservation that admits only
		 * registrants must find every path it writes through
		 * registered.  The registration's answer fires us again. */
		if (!cp->registering && (sp->active || !cp->held)) {
			cp->registering = true;
			a->register_key = pol->reservation_key;
		}
	} else if (cp->state == CK_UP && !sp->active && !cp->held && !cp->disabled) {
		a->message = "reinstate_path";
	}
	if (cp->state != CK_UNKNOWN && cp->state != cp->reported) {
		a->report = cp->state == CK_UP ? "checker_up" : "checker_down";
		cp->reported = cp->state;
		cp->interval_ms = pol->polling_interval_ms;
		cp->next_ns = now + ms_ns(cp->interval_ms);
	}
}

/* Start the next probe when due; healthy paths back off. */
static void path_schedule_probe_locked(struct ck_path *cp, const struct snap_path *sp,
				       const struct umd_policy *pol, uint64_t now,
				       struct path_acts *a)
{
	if (cp->probing || now < cp->next_ns)
		return;
	cp->probing = true;
	cp->gen++;
	cp->probe_start_ns = now;
	a->probe = true;
	a->gen = cp->gen;
	a->kind = pol->checker_kind;
	if (cp->state == CK_UP && sp->active) {
		cp->interval_ms *= 2;
		if (cp->interval_ms > pol->max_polling_interval_ms)
			cp->interval_ms = pol->max_polling_interval_ms;
		if (cp->interval_ms < pol->polling_interval_ms)
			cp->interval_ms = pol->polling_interval_ms;
	} else {
		cp->interval_ms = pol->polling_interval_ms;
	}
	cp->next_ns = now + ms_ns(cp->interval_ms);
}

/* The path's next fire: its next probe, its probe's deadline, its hold's end. */
static void path_rearm_locked(struct ck_path *cp, const struct umd_policy *pol, uint64_t now)
{
	uint64_t due = cp->next_ns;

	if (cp->probing && cp->probe_start_ns + ms_ns(pol->checker_timeout_ms) < due)
		due = cp->probe_start_ns + ms_ns(pol->checker_timeout_ms);
	if (cp->held && cp->held_until_ns < due)
		due = cp->held_until_ns;
	umpath_timer_arm(cp->timer, due > now ? due - now : 0);
}

static void probe_start(struct umd_checker *ck, struct ck_map *cm, struct ck_path *cp,
			uint32_t gen, enum umpath_checker want)
{
	struct probe_ctx *pc = calloc(1, sizeof(*pc));
	enum umpath_checker kind = UMPATH_CHECKER_DEFAULT;
	bool was_unsupported;
	int r = -ENOMEM;

	pthread_mutex_lock(&ck->lock);
	cp->refs++;
	ck->refs++;
	pthread_mutex_unlock(&ck->lock);
	if (pc) {
		pc->cp = cp;
		pc->gen = gen;
		r = umpath_path_checker(ck->d->ctx, cp->name, want, &kind);
		if (!r)
			r = umpath_path_check(ck->d->ctx, cp->name, kind, probe_done, pc);
		if (!r) {
			pthread_mutex_lock(&ck->lock);
			cp->kind = kind;
			cp->unsupported = false;
			pthread_mutex_unlock(&ck->lock);
			return;
		}
	}
	free(pc);
	/* Not open (a table being swapped): try at the next interval.  A
	 * checker the path's transport cannot run (a reload brought a file
	 * into a tur map) leaves the path alone, said once. */
	pthread_mutex_lock(&ck->lock);
	if (cp->gen == gen)
		cp->probing = false;
	was_unsupported = cp->unsupported;
	cp->unsupported = r == -EOPNOTSUPP;
	if (cp->unsupported) {
		cp->kind = want;
		cp->state = CK_UNKNOWN;
	}
	path_put_locked(cp);
	checker_put_locked(ck);	/* the daemon's reference is still held */
	pthread_mutex_unlock(&ck->lock);
	if (r == -EOPNOTSUPP && !was_unsupported)
		um_log("map %s: checker: %s", cm->m->name, umpath_error_detail());
}

/* reservation_key's registration answered: the path's next look reinstates it. */
static void register_done(void *opaque, int err)
{
	struct probe_ctx *pc = opaque;
	struct ck_path *cp = pc->cp;
	struct umd_checker *ck = cp->ck;
	bool free_ck;

	if (err)
		um_log("checker: path %s: reservation_key 0x%llx not registered: %s (it stays "
		       "out until it is)", cp->name, (unsigned long long)pc->req.sa_key,
		       strerror(-err));
	pthread_mutex_lock(&ck->lock);
	cp->registering = false;
	if (!err)
		cp->need_register = false;
	/* A failure is retried at the next probe, not at once. */
	if (!cp->dead && !err)
		umpath_timer_arm(cp->timer, 0);
	path_put_locked(cp);
	free_ck = checker_put_locked(ck);
	pthread_mutex_unlock(&ck->lock);
	free(pc);
	if (free_ck)
		checker_free(ck);
}

static void register_start(struct umd_checker *ck, struct ck_map *cm, struct ck_path *cp,
			   uint64_t key)
{
	struct probe_ctx *pc = calloc(1, sizeof(*pc));
	unsigned retry_ms;
	int r = -ENOMEM;

	pthread_mutex_lock(&ck->lock);
	cp->refs++;
	ck->refs++;
	pthread_mutex_unlock(&ck->lock);
	if (pc) {
		pc->cp = cp;
		pc->req.action = UMPATH_PR_OUT_REGISTER_AND_IGNORE;
		pc->req.sa_key = key;
		r = umpath_path_pr_out(ck->d->ctx, cp->name, &pc->req, register_done, pc);
		if (!r) {
			um_log("map %s: checker: path %s: registering reservation_key 0x%llx",
			       cm->m->name, cp->name, (unsigned long long)key);
			return;
		}
	}
	free(pc);
	retry_ms = map_policy(cm->m).polling_interval_ms;
	pthread_mutex_lock(&ck->lock);
	cp->registering = false;
	/* Not a SCSI path: nothing to register, it is used as it is. */
	if (r == -EOPNOTSUPP)
		cp->need_register = false;
	if (!cp->dead)
		umpath_timer_arm(cp->timer, r == -EOPNOTSUPP ? 0 : ms_ns(retry_ms));
	path_put_locked(cp);
	checker_put_locked(ck);
	pthread_mutex_unlock(&ck->lock);
	if (r < 0 && r != -EOPNOTSUPP)
		um_log("map %s: checker: path %s: reservation_key not registered: %s", cm->m->name,
		       cp->name, strerror(-r));
}

static void path_act(struct ck_map *cm, struct ck_path *cp, const struct snap_path *sp,
		     const struct path_acts *a)
{
	struct umd_map *m = cm->m;
	struct umd *d = m->d;

	if (a->released)
		publish(d, m->name, "path_released", cp->name, sp->group, -1, "flap damping over");
	if (a->message && !message2(m->map, a->message, cp->name))
		um_log("map %s: checker: path %s is %s: %s", m->name, cp->name,
		       a->message[0] == 'f' ? "down" : "up",
		       a->message[0] == 'f' ? "failed" : "reinstated");
	if (a->report)
		publish(d, m->name, a->report, cp->name, sp->group, -1, NULL);
	if (a->register_key)
		register_start(cm->ck, cm, cp, a->register_key);
	if (a->probe)
		probe_start(cm->ck, cm, cp, a->gen, a->kind);
	/* A path changed: the map's policies look again. */
	if (a->message || a->report)
		map_kick(cm);
}

static void path_fire(void *opaque)
{
	struct ck_path *cp = opaque;
	struct umd_checker *ck = cp->ck;
	struct ck_map *cm;
	struct umd_policy pol;
	const struct snap_path *sp;
	struct path_acts a = { .message = NULL };
	struct snap s;
	uint64_t now;

	/* On the checker's loop: cp and its map stay until this returns
	 * (killing a path frees its timer, which waits for us). */
	pthread_mutex_lock(&ck->lock);
	cm = cp->cm;
	pthread_mutex_unlock(&ck->lock);
	if (!cm)
		return;
	pol = map_policy(cm->m);
	if (snap_take(cm->m->map, &s) < 0 || s.info.suspended || !(sp = snap_find(&s, cp->name))) {
		/* Look again later; a table swap re-syncs the paths. */
		pthread_mutex_lock(&ck->lock);
		if (!cp->dead)
			umpath_timer_arm(cp->timer, ms_ns(pol.polling_interval_ms));
		pthread_mutex_unlock(&ck->lock);
		snap_free(&s);
		return;
	}
	now = umpath_now_ns();
	pthread_mutex_lock(&ck->lock);
	/* Killed while the lock was let go (its timer is gone). */
	if (cp->dead) {
		pthread_mutex_unlock(&ck->lock);
		snap_free(&s);
		return;
	}
	if (!pol.checker) {
		cp->state = CK_UNKNOWN;
		pthread_mutex_unlock(&ck->lock);
		snap_free(&s);
		return;	/* a policy change re-fires every path */
	}
	path_expire_probe_locked(cp, &pol, now);
	path_end_hold_locked(cp, now, &a);
	path_verdict_locked(cp, sp, &pol, now, &a);
	path_schedule_probe_locked(cp, sp, &pol, now, &a);
	path_rearm_locked(cp, &pol, now);
	pthread_mutex_unlock(&ck->lock);
	path_act(cm, cp, sp, &a);
	snap_free(&s);
}

/* ---- one map: its timer --------------------------------------------------- */

static struct ck_path *path_new(struct ck_map *cm, const struct snap_path *sp,
				const struct umd_policy *pol, uint64_t now)
{
	struct ck_path *cp = calloc(1, sizeof(*cp));

	if (!cp || !(cp->name = strdup(sp->name)))
		goto fail;
	if (umpath_timer_new(cm->ck->loop, path_fire, cp, &cp->timer) < 0)
		goto fail;
	cp->ck = cm->ck;
	cp->cm = cm;
	cp->refs = 1;	/* the map's */
	cp->interval_ms = pol->polling_interval_ms;
	cp->next_ns = now;
	/* The engine's view until the first probe says otherwise. */
	cp->reported = sp->active ? CK_UP : CK_DOWN;
	cp->need_register = true;
	return cp;
fail:
	if (cp)
		free(cp->name);
	free(cp);
	return NULL;
}

/* Release paths killed under the lock (each keeps its timer in cp->timer
 * until here); a probe still in flight finds its path dead. */
static void paths_release(struct umd_checker *ck, struct list_head *gone)
{
	struct ck_path *cp, *cn;

	list_for_each_entry_safe(cp, cn, gone, node) {
		struct umpath_timer *t = cp->timer;

		list_del_init(&cp->node);
		cp->timer = NULL;
		path_release(ck, cp, t);
	}
}

/* Follow the table: new paths join (and fire at once), gone ones leave. */
static void map_sync_paths(struct ck_map *cm, const struct snap *s, const struct umd_policy *pol,
			   uint64_t now)
{
	struct umd_checker *ck = cm->ck;
	struct ck_path *cp, *cn;
	struct list_head gone = LIST_HEAD_INIT(gone);

	pthread_mutex_lock(&ck->lock);
	if (cm->dying) {
		pthread_mutex_unlock(&ck->lock);
		return;
	}
	list_for_each_entry(cp, &cm->paths, node)
		cp->seen = false;
	for (unsigned i = 0; i < s->n; i++) {
		cp = find_path(cm, s->paths[i].name);
		if (!cp) {
			cp = path_new(cm, &s->paths[i], pol, now);
			if (!cp)
				continue;	/* out of memory: next sync */
			list_add_tail(&cp->node, &cm->paths);
			umpath_timer_arm(cp->timer, 0);
		}
		cp->seen = true;
	}
	list_for_each_entry_safe(cp, cn, &cm->paths, node) {
		if (!cp->seen) {
			struct umpath_timer *t = path_kill_locked(cp);

			cp->timer = t;	/* kept for the release below */
			list_add_tail(&cp->node, &gone);
		}
	}
	pthread_mutex_unlock(&ck->lock);
	paths_release(ck, &gone);
}

/* Map-wide decisions, taken under the lock and done after it. */
struct map_acts {
	bool dequeue, requeue;
	unsigned switch_to;	/* group, or 0 */
	uint64_t next_ns;	/* the map's own next deadline, or 0 */
};

/* The first group, in table order, that is usable; and active paths per group. */
static unsigned best_group(const struct snap *s, unsigned *active)
{
	unsigned best = 0;

	for (unsigned i = 0; i < s->n; i++)
		if (s->paths[i].active && s->paths[i].group <= s->ngroups)
			active[s->paths[i].group - 1]++;
	for (unsigned g = 0; g < s->ngroups && !best; g++)
		if (active[g] && s->group_state[g] != 'D')
			best = g + 1;
	return best;
}

static void map_no_path_retry_locked(struct ck_map *cm, const struct snap *s,
				     const struct umd_policy *pol, uint64_t now,
				     struct map_acts *a)
{
	const struct umpath_map_info *info = &s->info;

	if (!info->nr_valid_paths && info->nr_groups) {
		uint64_t expiry;

		if (!cm->nopath_since_ns)
			cm->nopath_since_ns = now;
		expiry = cm->nopath_since_ns +
			 (uint64_t)(pol->no_path_retry > 0 ? pol->no_path_retry : 0) *
			 ms_ns(pol->polling_interval_ms);
		if (pol->no_path_retry == NO_PATH_RETRY_FAIL && info->queue_if_no_path)
			a->dequeue = true;
		else if (pol->no_path_retry > 0 && info->queue_if_no_path && now >= expiry)
			a->dequeue = true;
		else if (pol->no_path_retry > 0 && info->queue_if_no_path)
			a->next_ns = expiry;
	} else if (info->nr_valid_paths) {
		cm->nopath_since_ns = 0;
		if (cm->nopath_exhausted) {
			a->requeue = true;
			cm->nopath_exhausted = false;
		}
	}
	if (a->dequeue)
		cm->nopath_exhausted = true;
}

static void map_failback_locked(struct ck_map *cm, const struct snap *s,
				const struct umd_policy *pol, unsigned best, uint64_t now,
				struct map_acts *a)
{
	bool came_back, switch_now = false;

	if (!best || best >= s->info.current_group || pol->failback == FAILBACK_MANUAL) {
		cm->failback_at_ns = 0;
		return;
	}
	came_back = cm->group_active && best <= cm->ngroups && !cm->group_active[best - 1];
	switch (pol->failback) {
	case FAILBACK_IMMEDIATE:
		switch_now = true;
		break;
	case FAILBACK_DEFERRED:
		if (!cm->failback_at_ns)
			cm->failback_at_ns = now + ms_ns(pol->failback_delay_ms);
		switch_now = now >= cm->failback_at_ns;
		if (!switch_now && (!a->next_ns || cm->failback_at_ns < a->next_ns))
			a->next_ns = cm->failback_at_ns;
		break;
	case FAILBACK_FOLLOWOVER:
		switch_now = came_back;
		break;
	case FAILBACK_MANUAL:
		break;
	}
	if (switch_now) {
		cm->failback_at_ns = 0;
		a->switch_to = best;
	}
}

static void map_remember_groups_locked(struct ck_map *cm, const unsigned *active, unsigned ngroups)
{
	unsigned *ga = realloc(cm->group_active, (ngroups + 1) * sizeof(*ga));

	if (!ga)
		return;
	memcpy(ga, active, (ngroups + 1) * sizeof(*ga));
	cm->group_active = ga;
	cm->ngroups = ngroups;
}

static void map_act(struct ck_map *cm, const struct snap *s, const struct umd_policy *pol,
		    const struct map_acts *a)
{
	struct umd_map *m = cm->m;
	char text[96];

	if (a->dequeue && !message2(m->map, "fail_if_no_path", NULL)) {
		if (pol->no_path_retry == NO_PATH_RETRY_FAIL)
			snprintf(text, sizeof(text), "no path: queueing disabled (no_path_retry fail)");
		else
			snprintf(text, sizeof(text), "no path for %d checker intervals: queueing disabled",
				 pol->no_path_retry);
		publish(m->d, m->name, "no_path_retry", NULL, 0, 0, text);
	}
	if (a->requeue && !message2(m->map, "queue_if_no_path", NULL))
		publish(m->d, m->name, "no_path_retry", NULL, 0, (int)s->info.nr_valid_paths,
			"a path is back: queueing restored");
	if (a->switch_to) {
		snprintf(text, sizeof(text), "%u", a->switch_to);
		if (!message2(m->map, "switch_group", text))
			publish(m->d, m->name, "failback", NULL, a->switch_to,
				(int)s->info.nr_valid_paths, NULL);
	}
}

static void map_fire(void *opaque)
{
	struct ck_map *cm = opaque;
	struct umd_checker *ck = cm->ck;
	struct umd_policy pol = map_policy(cm->m);
	struct map_acts a = { .dequeue = false };
	unsigned *active = NULL, best;
	uint64_t now = umpath_now_ns();
	struct snap s;

	if (snap_take(cm->m->map, &s) < 0 || s.info.suspended ||
	    !(active = calloc(s.ngroups + 1, sizeof(*active)))) {
		/* Resumed maps send an event; retry anyway in case of ENOMEM. */
		umpath_timer_arm(cm->timer, ms_ns(pol.polling_interval_ms));
		goto out;
	}
	if (!s.own_paths) {
		s.n = 0;	/* drops the checks of a table it replaced */
		map_sync_paths(cm, &s, &pol, now);
		goto out;
	}
	map_sync_paths(cm, &s, &pol, now);
	best = best_group(&s, active);
	pthread_mutex_lock(&ck->lock);
	map_no_path_retry_locked(cm, &s, &pol, now, &a);
	map_failback_locked(cm, &s, &pol, best, now, &a);
	map_remember_groups_locked(cm, active, s.ngroups);
	pthread_mutex_unlock(&ck->lock);
	map_act(cm, &s, &pol, &a);
	if (a.next_ns)
		umpath_timer_arm(cm->timer, a.next_ns > now ? a.next_ns - now : 0);
out:
	free(active);
	snap_free(&s);
}

/* ---- the registry's observer --------------------------------------------- */

static void map_added(struct umd_checker *ck, struct umd_map *m)
{
	struct ck_map *cm = calloc(1, sizeof(*cm));

	if (!cm || umpath_timer_new(ck->loop, map_fire, cm, &cm->timer) < 0) {
		um_log("map %s: checker: out of memory: its paths are not checked", m->name);
		free(cm);
		return;
	}
	cm->ck = ck;
	cm->m = m;
	list_init(&cm->paths);
	pthread_mutex_lock(&ck->lock);
	list_add_tail(&cm->node, &ck->maps);
	m->slot[ck->slot] = cm;
	pthread_mutex_unlock(&ck->lock);
	umpath_timer_arm(cm->timer, 0);
}

/* Free a map's state: its timers first (each waits for a running fire),
 * the map's own before its paths' so that no fire adds a path after. */
static void map_release(struct umd_checker *ck, struct ck_map *cm)
{
	struct ck_path *cp, *cn;
	struct list_head gone = LIST_HEAD_INIT(gone);

	pthread_mutex_lock(&ck->lock);
	cm->dying = true;
	pthread_mutex_unlock(&ck->lock);
	umpath_timer_free(cm->timer);
	pthread_mutex_lock(&ck->lock);
	list_for_each_entry_safe(cp, cn, &cm->paths, node) {
		struct umpath_timer *t = path_kill_locked(cp);

		cp->timer = t;
		list_add_tail(&cp->node, &gone);
	}
	pthread_mutex_unlock(&ck->lock);
	paths_release(ck, &gone);
	free(cm->group_active);
	free(cm);
}

static void map_removed(struct umd_checker *ck, struct umd_map *m)
{
	struct ck_map *cm;

	pthread_mutex_lock(&ck->lock);
	cm = m->slot[ck->slot];
	m->slot[ck->slot] = NULL;
	if (cm)
		list_del_init(&cm->node);
	pthread_mutex_unlock(&ck->lock);
	if (cm)
		map_release(ck, cm);
}

/* A path failure found by I/O counts for flapping, and the path is checked
 * again soon: it may come back. */
static void path_failed_by_io(struct umd_checker *ck, struct umd_map *m, const struct umpath_event *ev)
{
	struct umd_policy pol = map_policy(m);
	struct ck_map *cm;
	struct ck_path *cp;
	bool held = false;
	char detail[128];
	uint64_t now = umpath_now_ns();

	pthread_mutex_lock(&ck->lock);
	cm = m->slot[ck->slot];
	cp = cm ? find_path(cm, ev->path) : NULL;
	if (cp) {
		held = note_failure_locked(cp, &pol, now);
		cp->interval_ms = pol.polling_interval_ms;
		if (!cp->probing) {
			cp->next_ns = now + ms_ns(cp->interval_ms);
			umpath_timer_arm(cp->timer, ms_ns(cp->interval_ms));
		}
		/* Not a verdict of ours: wait for the next probe's, so that
		 * an operator's reinstate_path is not undone by a stale one. */
		if (cp->probing)
			cp->gen++;	/* its answer may predate the failure */
		cp->probing = false;
		cp->state = CK_UNKNOWN;
		cp->reported = CK_DOWN;
		cp->need_register = true;
	}
	pthread_mutex_unlock(&ck->lock);
	if (held) {
		snprintf(detail, sizeof(detail), "held out for %u ms after %u failures within %u ms",
			 pol.flap_recovery_ms, pol.flap_threshold, pol.flap_window_ms);
		publish(m->d, m->name, "path_held", ev->path, ev->group, -1, detail);
	}
}

/* A new policy: every path of the map looks again at once. */
static void policy_changed(struct umd_checker *ck, struct umd_map *m)
{
	struct ck_map *cm;
	struct ck_path *cp;

	pthread_mutex_lock(&ck->lock);
	cm = m->slot[ck->slot];
	if (cm && !cm->dying) {
		list_for_each_entry(cp, &cm->paths, node)
			umpath_timer_arm(cp->timer, 0);
		umpath_timer_arm(cm->timer, 0);
	}
	pthread_mutex_unlock(&ck->lock);
}

static void on_map_change(void *opaque, struct umd_map *m, enum umd_map_change what,
			  const struct umpath_event *ev)
{
	struct umd_checker *ck = opaque;
	struct ck_map *cm;

	switch (what) {
	case UMD_MAP_ADDED:
		map_added(ck, m);
		break;
	case UMD_MAP_REMOVED:
		map_removed(ck, m);
		break;
	case UMD_MAP_CHANGED:
		if (!ev) {
			policy_changed(ck, m);
			break;
		}
		if (ev->type == UMPATH_EV_PATH_FAILED && ev->path)
			path_failed_by_io(ck, m, ev);
		/* Any engine event may change what the map-wide policies see. */
		pthread_mutex_lock(&ck->lock);
		cm = m->slot[ck->slot];
		if (cm && !cm->dying)
			umpath_timer_arm(cm->timer, 0);
		pthread_mutex_unlock(&ck->lock);
		break;
	}
}

static const struct umd_map_observer checker_observer = {
	.name = "checker",
	.notify = on_map_change,
};

/* ---- the daemon's hooks ---------------------------------------------------- */

int umd_checker_start(struct umd *d)
{
	struct umd_checker *ck = calloc(1, sizeof(*ck));
	int r;

	if (!ck)
		return -ENOMEM;
	ck->d = d;
	ck->refs = 1;
	pthread_mutex_init(&ck->lock, NULL);
	um_cond_init_monotonic(&ck->cond);
	list_init(&ck->maps);
	ck->loop = d->loop;
	d->checker = ck;
	r = umd_registry_subscribe(d, &checker_observer, ck, &ck->registry, &ck->slot);
	if (r < 0) {
		d->checker = NULL;
		checker_free(ck);
		return r;
	}
	return 0;
}

void umd_checker_quiesce(struct umd *d)
{
	struct umd_checker *ck = d->checker;
	struct ck_map *cm;

	if (!ck || !ck->registry)
		return;
	/* No more maps nor events, then no more probes or actions. */
	umd_registry_unsubscribe(ck->registry);
	ck->registry = NULL;
	pthread_mutex_lock(&ck->lock);
	while (!list_empty(&ck->maps)) {
		cm = list_first_entry(&ck->maps, struct ck_map, node);
		list_del_init(&cm->node);
		cm->m->slot[ck->slot] = NULL;
		pthread_mutex_unlock(&ck->lock);
		map_release(ck, cm);
		pthread_mutex_lock(&ck->lock);
	}
	pthread_mutex_unlock(&ck->lock);
}

int umd_checker_stop(struct umd *d, uint64_t hard_ns)
{
	struct umd_checker *ck = d->checker;
	bool gone;

	if (!ck)
		return 0;
	umd_checker_quiesce(d);
	d->checker = NULL;
	/* Probes in flight end within the engine's io_timeout. */
	pthread_mutex_lock(&ck->lock);
	ck->refs--;
	while (ck->refs && um_cond_wait_until(&ck->cond, &ck->lock, hard_ns) == 0)
		;
	gone = !ck->refs;
	if (!gone) {
		ck->abandoned = true;	/* the last probe frees it */
		um_log("checker: %u probes still running at the shutdown bound", ck->refs);
	}
	pthread_mutex_unlock(&ck->lock);
	if (gone)
		checker_free(ck);
	return gone ? 0 : -ETIMEDOUT;
}

int umd_checker_path_disable(struct umd_map *m, const char *path, bool disabled)
{
	struct umd_checker *ck = m->d->checker;
	struct ck_map *cm;
	struct ck_path *cp;

	if (!ck)
		return -ENOENT;
	pthread_mutex_lock(&ck->lock);
	cm = m->slot[ck->slot];
	cp = cm ? find_path(cm, path) : NULL;
	if (cp)
		cp->disabled = disabled;
	pthread_mutex_unlock(&ck->lock);
	return cp ? 0 : -ENOENT;
}

void umd_checker_path_view(struct umd_map *m, const char *path, struct umd_checker_view *ret)
{
	struct umd_checker *ck = m->d->checker;
	struct umd_policy pol = map_policy(m);
	const char *st = "-";
	enum umpath_checker kind = pol.checker_kind;
	int err = 0;
	bool probed = false;

	ret->result_time = (struct timespec){ 0 };
	if (ck) {
		pthread_mutex_lock(&ck->lock);
		struct ck_map *cm = m->slot[ck->slot];
		struct ck_path *cp = cm ? find_path(cm, path) : NULL;
		if (cp) {
			if (cp->unsupported)
				st = "unsupported";
			else if (cp->held)
				st = "held";
			else if (cp->state == CK_UP)
				st = "up";
			else if (cp->state == CK_DOWN)
				st = "down";
			else
				st = cp->probing ? "pending" : "-";
			if (cp->kind != UMPATH_CHECKER_DEFAULT)
				kind = cp->kind;
			probed = cp->state != CK_UNKNOWN;
			err = cp->last_err;
			ret->result_time = cp->last_time;
		}
		pthread_mutex_unlock(&ck->lock);
	}
	/* Not probed yet: the checker it will get. */
	if (kind == UMPATH_CHECKER_DEFAULT)
		umpath_path_checker(m->d->ctx, path, kind, &kind);
	snprintf(ret->state, sizeof(ret->state), "%s", st);
	snprintf(ret->checker, sizeof(ret->checker), "%s",
		 !pol.checker ? "none" : umpath_checker_name(kind) ? umpath_checker_name(kind) : "-");
	if (!probed)
		snprintf(ret->result, sizeof(ret->result), "-");
	else if (!err)
		snprintf(ret->result, sizeof(ret->result), "ok");
	else if (err == -ETIME)
		snprintf(ret->result, sizeof(ret->result), "timed out");
	else
		snprintf(ret->result, sizeof(ret->result), "%s", strerror(-err));
}

int umd_checker_validate(struct umd *d, struct umpath_map *map, const struct umd_policy *pol,
			 char *err, size_t errlen)
{
	struct umpath_snapshot *ss;
	int r;

	if (!pol->checker || pol->checker_kind == UMPATH_CHECKER_DEFAULT)
		return 0;
	r = umpath_map_snapshot(map, &ss);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < ss->nr_paths && !r; i++) {
		r = umpath_path_checker(d->ctx, ss->paths[i].path, pol->checker_kind, NULL);
		if (r < 0)
			snprintf(err, errlen, "%s", umpath_error_detail());
	}
	umpath_snapshot_free(ss);
	return r;
}
