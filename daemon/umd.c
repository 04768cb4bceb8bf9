/* umd.c - umpathd's registry of maps: create, look up with a reference,
 * remove when no client has the map open, and announce each change to the
 * observers that subscribed (registry.h); it calls no other part by name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "util.h"
#include "wait.h"

void umd_policy_defaults(struct umd_policy *p)
{
	*p = (struct umd_policy){
		.polling_interval_ms = 5000,
		.max_polling_interval_ms = 20000,
		.checker_timeout_ms = 5000,
		.failback = FAILBACK_MANUAL,
		.no_path_retry = NO_PATH_RETRY_QUEUE,
		.flap_threshold = 3,
		.flap_window_ms = 60000,
		.flap_recovery_ms = 30000,
		.checker = true,
		.fence_timeout_ms = 30000,
	};
}

int umd_init(struct umd *d, const struct umd_opts *opts)
{
	struct umpath_ctx_opts o = {
		.io_timeout_ms = opts ? opts->io_timeout_ms : 0,
		.pool_size = opts && opts->pool_size ? opts->pool_size : UMD_DEFAULT_POOL,
	};
	int r;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_rwlock_init(&d->subs_lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	list_init(&d->maps);
	list_init(&d->subs);
	umd_policy_defaults(&d->defaults);
	d->io_timeout_ms = o.io_timeout_ms ? o.io_timeout_ms : UMD_DEFAULT_IO_TIMEOUT_MS;
	d->start_ns = umpath_now_ns();
	r = umpath_ctx_new(&o, &d->ctx);
	if (r < 0)
		return r;
	r = umpath_loop_new(&d->loop);
	if (r < 0) {
		umpath_ctx_free(d->ctx);
		return r;
	}
	r = umd_fence_start(d);
	if (r < 0) {
		umpath_loop_free(d->loop);
		umpath_ctx_free(d->ctx);
		return r;
	}
	return 0;
}

/* ---- observers ---------------------------------------------------------- */

struct umd_map_sub {
	struct list_head node;		/* in d->subs, guarded by d->subs_lock */
	struct umd *d;
	const struct umd_map_observer *ops;
	void *opaque;
	unsigned slot;
};

static void notify(struct umd *d, struct umd_map *m, enum umd_map_change what,
		   const struct umpath_event *ev)
{
	struct umd_map_sub *s;

	pthread_rwlock_rdlock(&d->subs_lock);
	list_for_each_entry(s, &d->subs, node)
		s->ops->notify(s->opaque, m, what, ev);
	pthread_rwlock_unlock(&d->subs_lock);
}

int umd_registry_subscribe(struct umd *d, const struct umd_map_observer *ops, void *opaque,
			   struct umd_map_sub **ret_sub, unsigned *ret_slot)
{
	struct umd_map_sub *s = calloc(1, sizeof(*s));
	struct umd_map *m, **all = NULL;
	size_t n = 0;
	unsigned slot;

	if (!s)
		return -ENOMEM;
	s->d = d;
	s->ops = ops;
	s->opaque = opaque;
	pthread_rwlock_wrlock(&d->subs_lock);
	for (slot = 0; slot < UMD_MAP_SLOTS && (d->slots_used & 1u << slot); slot++)
		;
	if (slot == UMD_MAP_SLOTS) {
		pthread_rwlock_unlock(&d->subs_lock);
		free(s);
		return -ENOSPC;
	}
	d->slots_used |= 1u << slot;
	s->slot = slot;
	/* Maps made from now on are announced by umd_map_create; those that
	 * exist, here - under the write lock, so none is announced twice.
	 * Their references are dropped after it: a last put notifies. */
	pthread_mutex_lock(&d->lock);
	all = calloc(d->nmaps + 1, sizeof(*all));
	if (all) {
		list_for_each_entry(m, &d->maps, node) {
			if (!m->removed && n < d->nmaps) {
				m->refs++;
				all[n++] = m;
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (!all) {
		d->slots_used &= ~(1u << slot);
		pthread_rwlock_unlock(&d->subs_lock);
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ops->notify(opaque, all[i], UMD_MAP_ADDED, NULL);
	list_add_tail(&s->node, &d->subs);
	pthread_rwlock_unlock(&d->subs_lock);
	for (size_t i = 0; i < n; i++)
		umd_map_put(all[i], false);
	free(all);
	if (ret_slot)
		*ret_slot = slot;
	*ret_sub = s;
	return 0;
}

void umd_registry_unsubscribe(struct umd_map_sub *s)
{
	struct umd *d;

	if (!s)
		return;
	d = s->d;
	pthread_rwlock_wrlock(&d->subs_lock);
	list_del_init(&s->node);
	d->slots_used &= ~(1u << s->slot);
	pthread_rwlock_unlock(&d->subs_lock);
	free(s);
}

/* ---- maps --------------------------------------------------------------- */

static void umd_map_free(struct umd_map *m)
{
	/* No more engine events, then the last word to the observers. */
	umpath_map_set_event_cb(m->map, NULL, NULL);
	notify(m->d, m, UMD_MAP_REMOVED, NULL);
	umpath_map_free(m->map);
	if (m->errored)
		um_log("map %s: freed after remove --force (its last client left)", m->name);
	free(m->name);
	free(m);
}

/* Every engine event of a map, to the observers (the checker counts
 * failures for flapping, the hub publishes them). */
static void on_map_event(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	struct umd_map *m = opaque;

	notify(m->d, m, UMD_MAP_CHANGED, ev);
}

void umd_fini(struct umd *d)
{
	struct umd_map *m, *n;

	umd_fence_stop(d);
	/* Only once every user is gone (the shutdown protocol): what is
	 * left holds the registry's reference alone. */
	list_for_each_entry_safe(m, n, &d->maps, node) {
		list_del_init(&m->node);
		umd_map_free(m);
	}
	umpath_loop_free(d->loop);
	umpath_ctx_free(d->ctx);
	umd_persist_fini();
	pthread_rwlock_destroy(&d->subs_lock);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
}

static struct umd_map *find_locked(struct umd *d, const char *name)
{
	struct umd_map *m;

	list_for_each_entry(m, &d->maps, node)
		if (!m->removed && !strcmp(m->name, name))
			return m;
	return NULL;
}

static bool valid_name(const char *name)
{
	size_t len = strlen(name);

	/* Names become NBD export names and FUSE file names. */
	if (!len || len > 127 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int map_create(struct umd *d, const char *name, const char *target, const char *table,
		      uint64_t size_bytes, const struct umd_policy *policy,
		      const struct umd_map_exports *ex, char *err, size_t errlen);

int umd_map_create(struct umd *d, const char *name, const char *table, char *err, size_t errlen)
{
	return map_create(d, name, NULL, table, 0, NULL, NULL, err, errlen);
}

int umd_map_create_size(struct umd *d, const char *name, const char *table, uint64_t size_bytes,
			char *err, size_t errlen)
{
	return map_create(d, name, NULL, table, size_bytes, NULL, NULL, err, errlen);
}

int umd_map_create_ex(struct umd *d, const char *name, const char *target, const char *table,
		      uint64_t size_bytes, const struct umd_policy *policy,
		      const struct umd_map_exports *ex, char *err, size_t errlen)
{
	return map_create(d, name, target, table, size_bytes, policy, ex, err, errlen);
}

int umd_map_set_policy(struct umd *d, const char *name, const struct umd_policy *policy)
{
	char err[256];
	struct umd_map *m;
	int r;

	pthread_mutex_lock(&d->lock);
	m = find_locked(d, name);
	if (m)
		m->refs++;
	pthread_mutex_unlock(&d->lock);
	if (!m)
		return -ENXIO;
	r = umd_checker_validate(d, m->map, policy, err, sizeof(err));
	if (r < 0) {
		um_log("map %s: policy not changed: %s", name, err);
		umd_map_put(m, false);
		return r;
	}
	pthread_mutex_lock(&d->lock);
	m->policy = *policy;
	pthread_mutex_unlock(&d->lock);
	umpath_map_set_read_hedge(m->map, policy->read_hedge_ms);	/* checked at parse */
	notify(d, m, UMD_MAP_CHANGED, NULL);
	umd_map_put(m, false);
	return 0;
}

int umd_map_create_policy(struct umd *d, const char *name, const char *table,
			  const struct umd_policy *policy, char *err, size_t errlen)
{
	return map_create(d, name, NULL, table, 0, policy, NULL, err, errlen);
}

static int map_create(struct umd *d, const char *name, const char *target, const char *table,
		      uint64_t size_bytes, const struct umd_policy *policy,
		      const struct umd_map_exports *ex, char *err, size_t errlen)
{
	struct umd_map_sub *s;
	struct umd_map *m;
	bool full;
	int r, warn = 0;

	if (!valid_name(name)) {
		snprintf(err, errlen, "invalid map name");
		return -EINVAL;
	}
	pthread_mutex_lock(&d->lock);
	m = find_locked(d, name);
	full = d->nmaps >= UMD_MAX_MAPS;
	pthread_mutex_unlock(&d->lock);
	if (m) {
		snprintf(err, errlen, "map %s already exists", name);
		return -EEXIST;
	}
	if (full) {
		snprintf(err, errlen, "too many maps: a daemon holds at most %u", UMD_MAX_MAPS);
		return -ENOSPC;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name))) {
		free(m);
		return -ENOMEM;
	}
	m->d = d;
	m->refs = 1;	/* the registry's */
	m->ublk = ex && ex->ublk;
	m->ublk_id = ex && ex->ublk ? ex->ublk_id : -1;
	m->ublk_dev = -1;
	pthread_mutex_lock(&d->lock);
	m->policy = policy ? *policy : d->defaults;
	pthread_mutex_unlock(&d->lock);
	r = umpath_map_new_target(d->ctx, name, target, table, size_bytes, err, errlen, &m->map);
	if (!r) {
		umpath_map_set_read_hedge(m->map, m->policy.read_hedge_ms);	/* checked at parse */
		/* A checker its paths' transports cannot run (tur on a file). */
		r = umd_checker_validate(d, m->map, &m->policy, err, errlen);
		if (r < 0)
			umpath_map_free(m->map);
	}
	/* Before any client can find it: a registrants-only reservation
	 * must find every path it writes through registered. */
	if (!r)
		umd_pr_register_new_map(d, name, m->map, m->policy.reservation_key);
	if (r < 0) {
		free(m->name);
		free(m);
		return r;
	}
	/* Announced under the observers' read lock, so that a subscriber
	 * arriving now either sees it listed or hears of it, not both. */
	pthread_rwlock_rdlock(&d->subs_lock);
	pthread_mutex_lock(&d->lock);
	if (find_locked(d, name) || d->nmaps >= UMD_MAX_MAPS) {	/* lost a race */
		full = d->nmaps >= UMD_MAX_MAPS;
		pthread_mutex_unlock(&d->lock);
		pthread_rwlock_unlock(&d->subs_lock);
		umpath_map_free(m->map);
		free(m->name);
		free(m);
		if (full)
			snprintf(err, errlen, "too many maps: a daemon holds at most %u", UMD_MAX_MAPS);
		else
			snprintf(err, errlen, "map %s already exists", name);
		return full ? -ENOSPC : -EEXIST;
	}
	list_add_tail(&m->node, &d->maps);
	d->nmaps++;
	m->refs++;	/* ours, while announcing */
	pthread_mutex_unlock(&d->lock);
	list_for_each_entry(s, &d->subs, node)
		s->ops->notify(s->opaque, m, UMD_MAP_ADDED, NULL);
	umpath_map_set_event_cb(m->map, on_map_event, m);
	/* Devices made of the map (ublk), under the read lock so that their
	 * observer cannot leave meanwhile. */
	r = 0;
	list_for_each_entry(s, &d->subs, node) {
		if (!s->ops->attach)
			continue;
		r = s->ops->attach(s->opaque, m, err, errlen);
		if (r < 0)
			break;
		if (r > 0)
			warn = r;
	}
	pthread_rwlock_unlock(&d->subs_lock);
	umd_map_put(m, false);
	if (r < 0) {
		char why[256] = "";

		/* Refused: undone, as if never made; err keeps the reason. */
		umd_map_remove_why(d, name, true, why, sizeof(why));
		return r;
	}
	return warn;
}

struct umd_map *umd_map_get(struct umd *d, const char *name, bool open)
{
	struct umd_map *m;

	pthread_mutex_lock(&d->lock);
	m = find_locked(d, name);
	if (m) {
		m->refs++;
		if (open)
			m->opens++;
	}
	pthread_mutex_unlock(&d->lock);
	return m;
}

struct umd_map *umd_map_get_default(struct umd *d, bool open)
{
	struct umd_map *m, *found = NULL;
	unsigned n = 0;

	pthread_mutex_lock(&d->lock);
	list_for_each_entry(m, &d->maps, node) {
		if (!m->removed) {
			found = m;
			n++;
		}
	}
	if (n == 1) {
		found->refs++;
		if (open)
			found->opens++;
	} else {
		found = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	return found;
}

void umd_map_put(struct umd_map *m, bool open)
{
	struct umd *d;
	bool last;

	if (!m)
		return;
	d = m->d;
	pthread_mutex_lock(&d->lock);
	if (open)
		m->opens--;
	last = --m->refs == 0;
	if (last && m->reaper) {
		pthread_cond_broadcast(&d->cond);	/* the remover frees it */
		last = false;
	}
	if (last)
		list_del_init(&m->node);
	pthread_mutex_unlock(&d->lock);
	if (last)
		umd_map_free(m);
}

int umd_map_remove(struct umd *d, const char *name, bool force)
{
	char err[256];

	return umd_map_remove_why(d, name, force, err, sizeof(err));
}

/* The observers' devices of m go first (ublk: stopped after draining),
 * or one of them says why not; a reference on m is held across. */
static int detach_all(struct umd *d, struct umd_map *m, bool force, char *err, size_t errlen)
{
	struct umd_map_sub *s;
	int r = 0;

	pthread_rwlock_rdlock(&d->subs_lock);
	list_for_each_entry(s, &d->subs, node) {
		if (s->ops->detach && (r = s->ops->detach(s->opaque, m, force, err, errlen)) < 0 &&
		    !force)
			break;
		r = 0;
	}
	pthread_rwlock_unlock(&d->subs_lock);
	return r;
}

int umd_map_remove_why(struct umd *d, const char *name, bool force, char *err, size_t errlen)
{
	struct umd_map *m;
	int r = 0;

	*err = '\0';
	pthread_mutex_lock(&d->lock);
	m = find_locked(d, name);
	if (!m) {
		pthread_mutex_unlock(&d->lock);
		return -ENXIO;
	}
	if (m->opens && !force) {
		pthread_mutex_unlock(&d->lock);
		return -EBUSY;
	}
	m->refs++;
	pthread_mutex_unlock(&d->lock);
	r = detach_all(d, m, force, err, errlen);
	pthread_mutex_lock(&d->lock);
	m->refs--;	/* not the last: the registry's is still there */
	if (r < 0 || m->removed || (m->opens && !force)) {
		pthread_mutex_unlock(&d->lock);
		return r < 0 ? r : m->removed ? -ENXIO : -EBUSY;
	}
	m->removed = true;	/* no new lookups find it */
	d->nmaps--;
	if (!m->opens && !force) {
		/* Gone when we return, as after dmsetup remove: wait out the
		 * short-lived references (a checker pass, a view).  Not when
		 * forced: a caller may hold one itself (config's undo). */
		m->reaper = true;
		m->refs--;	/* the registry's */
		while (m->refs)
			pthread_cond_wait(&d->cond, &d->lock);
		list_del_init(&m->node);
		pthread_mutex_unlock(&d->lock);
		umd_map_free(m);
		return 0;
	}
	if (m->opens) {
		m->errored = true;
		m->refs++;	/* ours, across the table swap */
	}
	pthread_mutex_unlock(&d->lock);
	if (m->errored) {
		/* What dmsetup remove --force does: the table becomes one that
		 * fails every I/O (no group, no queueing), so the clients that
		 * still hold the map get EIO from now on instead of writing
		 * beside whatever takes the name next; the resume's flushing
		 * suspend ends the I/O in flight first.  The map is freed when
		 * the last client lets go. */
		r = umpath_map_load(m->map, "0 0 0 0", NULL, 0);
		if (!r)
			r = umpath_map_resume(m->map);
		if (r < 0)
			um_log("map %s: remove --force: cannot fail its I/O: %s", m->name,
			       strerror(-r));
		umd_map_put(m, false);
	}
	umd_map_put(m, false);	/* the registry's reference */
	return r;
}

int umd_map_ublk_dev(struct umd_map *m)
{
	int id;

	pthread_mutex_lock(&m->d->lock);
	id = m->ublk_dev;
	pthread_mutex_unlock(&m->d->lock);
	return id;
}

void umd_map_set_ublk_dev(struct umd_map *m, int id)
{
	pthread_mutex_lock(&m->d->lock);
	m->ublk_dev = id;
	pthread_mutex_unlock(&m->d->lock);
}

void umd_map_foreach(struct umd *d, void (*fn)(struct umd_map *m, void *opaque), void *opaque)
{
	struct umd_map *m, **all = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&d->lock);
	list_for_each_entry(m, &d->maps, node) {
		if (m->removed)
			continue;
		struct umd_map **na = um_grow(all, &cap, n + 1, sizeof(*all));

		if (!na)
			break;
		all = na;
		m->refs++;
		all[n++] = m;
	}
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		fn(all[i], opaque);
		umd_map_put(all[i], false);
	}
	free(all);
}

/* One map's flush at shutdown: shared by the completion and the waiter,
 * freed by whichever lets go last, so a flush still running when the
 * waiter gives up touches nothing freed. */
struct flush_wait {
	struct umpath_io io;
	struct flush_all *all;
	char *name;
	int err;
};

struct flush_all {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned refs;		/* guarded by lock: the waiter's + one per flush */
	unsigned pending;	/* guarded by lock */
	struct umd *d;
};

static void flush_all_put_locked(struct flush_all *fa)
{
	if (--fa->refs) {
		pthread_mutex_unlock(&fa->lock);
		return;
	}
	pthread_mutex_unlock(&fa->lock);
	pthread_mutex_destroy(&fa->lock);
	pthread_cond_destroy(&fa->cond);
	free(fa);
}

static void flush_done(struct umpath_io *io, int err)
{
	struct flush_wait *f = (struct flush_wait *)io;
	struct flush_all *fa = f->all;

	if (err)
		um_log("map %s: flush at shutdown failed: %s", f->name, strerror(-err));
	free(f->name);
	free(f);
	pthread_mutex_lock(&fa->lock);
	fa->pending--;
	pthread_cond_broadcast(&fa->cond);
	flush_all_put_locked(fa);
}

static void flush_one(struct umd_map *m, void *opaque)
{
	struct flush_all *fa = opaque;
	struct flush_wait *f = calloc(1, sizeof(*f));
	int r = -ENOMEM;

	if (f && (f->name = strdup(m->name))) {
		f->io = (struct umpath_io){ .op = UMPATH_OP_FLUSH, .done = flush_done };
		f->all = fa;
		pthread_mutex_lock(&fa->lock);
		fa->refs++;
		fa->pending++;
		pthread_mutex_unlock(&fa->lock);
		r = umpath_map_submit(m->map, &f->io);
		if (!r)
			return;
		pthread_mutex_lock(&fa->lock);
		fa->refs--;
		fa->pending--;
		pthread_mutex_unlock(&fa->lock);
	}
	um_log("map %s: flush at shutdown failed: %s", m->name, strerror(-r));
	if (f)
		free(f->name);
	free(f);
}

int umd_flush_all(struct umd *d, uint64_t deadline_ns)
{
	struct flush_all *fa = calloc(1, sizeof(*fa));
	int r = 0;

	if (!fa)
		return -ENOMEM;
	pthread_mutex_init(&fa->lock, NULL);
	um_cond_init_monotonic(&fa->cond);
	fa->refs = 1;
	fa->d = d;
	/* Every map's flush at once: the bound is one path's deadline, not
	 * one per map. */
	umd_map_foreach(d, flush_one, fa);
	pthread_mutex_lock(&fa->lock);
	while (fa->pending && !r)
		r = um_cond_wait_until(&fa->cond, &fa->lock, deadline_ns);
	if (fa->pending) {
		um_log("shutdown: %u maps still flushing: not waiting for them", fa->pending);
		r = -ETIMEDOUT;
	}
	flush_all_put_locked(fa);
	return r;
}

static void fail_if_no_path_one(struct umd_map *m, void *opaque)
{
	int r;

	if (strcmp(umpath_map_target(m->map), "multipath")) {
		/* multipath-v0 never queues: only let held I/O go. */
		if (umpath_map_is_suspended(m->map))
			umpath_map_resume(m->map);
		return;
	}
	r = umpath_map_message_str(m->map, "fail_if_no_path");

	if (r == -EBUSY) {	/* suspended: resume, so held I/O can end */
		umpath_map_resume(m->map);
		r = umpath_map_message_str(m->map, "fail_if_no_path");
	}
	if (r)
		um_log("map %s: fail_if_no_path at shutdown: %s", m->name, strerror(-r));
}

void umd_fail_if_no_path_all(struct umd *d)
{
	umd_map_foreach(d, fail_if_no_path_one, NULL);
}
