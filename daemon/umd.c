/* umd.c - umpathd's registry of maps: create, look up with a reference,
 * remove when no client has the map open. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

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
	};
}

int umd_init(struct umd *d, const struct umd_opts *opts)
{
	struct umpath_ctx_opts o = { .io_timeout_ms = opts ? opts->io_timeout_ms : 0,
				     .pool_size = 4096 };
	int r;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	list_init(&d->maps);
	umd_policy_defaults(&d->defaults);
	r = umpath_ctx_new(&o, &d->ctx);
	if (r < 0)
		return r;
	r = umd_events_init(d);
	if (r < 0) {
		umpath_ctx_free(d->ctx);
		return r;
	}
	return 0;
}

static void umd_map_free(struct umd_map *m)
{
	umd_checker_map_removed(m);
	umpath_map_set_event_cb(m->map, NULL, NULL);
	umpath_map_free(m->map);
	free(m->name);
	free(m);
}

static const char *const event_types[] = {
	[UMPATH_EV_PATH_FAILED] = "path_failed",
	[UMPATH_EV_PATH_REINSTATED] = "path_reinstated",
	[UMPATH_EV_GROUP_BYPASSED] = "group_bypassed",
	[UMPATH_EV_GROUP_ENABLED] = "group_enabled",
	[UMPATH_EV_GROUP_SWITCHED] = "group_switched",
	[UMPATH_EV_TABLE_SWAPPED] = "table_swapped",
	[UMPATH_EV_QUEUE_MODE] = "queue_if_no_path",
};

/* Every engine event of a map: to the checker (flap counting, prompt
 * re-checks) and to the log and `umpath events`. */
static void on_map_event(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	struct umd_map *m = opaque;
	struct umd_event e = {
		.map = m->name,
		.type = ev->type < sizeof(event_types) / sizeof(event_types[0]) ? event_types[ev->type] : "event",
		.path = ev->path,
		.group = ev->group,
		.nr_valid_paths = (int)ev->nr_valid_paths,
	};

	umd_checker_on_event(m, ev);
	umd_event_publish(m->d, &e);
}

void umd_fini(struct umd *d)
{
	struct umd_map *m, *n;

	umd_checker_stop(d);

	list_for_each_entry_safe(m, n, &d->maps, node) {
		list_del_init(&m->node);
		umd_map_free(m);
	}
	umpath_ctx_free(d->ctx);
	umd_events_fini(d);
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

int umd_map_create(struct umd *d, const char *name, const char *table, char *err, size_t errlen)
{
	return umd_map_create_policy(d, name, table, NULL, err, errlen);
}

int umd_map_set_policy(struct umd *d, const char *name, const struct umd_policy *policy)
{
	struct umd_map *m;

	pthread_mutex_lock(&d->lock);
	m = find_locked(d, name);
	if (m)
		m->policy = *policy;
	pthread_mutex_unlock(&d->lock);
	return m ? 0 : -ENXIO;
}

int umd_map_create_policy(struct umd *d, const char *name, const char *table,
			  const struct umd_policy *policy, char *err, size_t errlen)
{
	struct umd_map *m;
	int r;

	if (!valid_name(name)) {
		snprintf(err, errlen, "invalid map name");
		return -EINVAL;
	}
	pthread_mutex_lock(&d->lock);
	m = find_locked(d, name);
	pthread_mutex_unlock(&d->lock);
	if (m) {
		snprintf(err, errlen, "map %s already exists", name);
		return -EEXIST;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name))) {
		free(m);
		return -ENOMEM;
	}
	m->d = d;
	m->refs = 1;	/* the registry's */
	pthread_mutex_lock(&d->lock);
	m->policy = policy ? *policy : d->defaults;
	pthread_mutex_unlock(&d->lock);
	r = umpath_map_new(d->ctx, name, table, 0, err, errlen, &m->map);
	if (r < 0) {
		free(m->name);
		free(m);
		return r;
	}
	pthread_mutex_lock(&d->lock);
	if (find_locked(d, name)) {	/* lost a race with another create */
		pthread_mutex_unlock(&d->lock);
		umd_map_free(m);
		snprintf(err, errlen, "map %s already exists", name);
		return -EEXIST;
	}
	list_add_tail(&m->node, &d->maps);
	pthread_mutex_unlock(&d->lock);
	umpath_map_set_event_cb(m->map, on_map_event, m);
	umd_checker_map_added(m);
	return 0;
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
	if (last)
		list_del_init(&m->node);
	pthread_mutex_unlock(&d->lock);
	if (last)
		umd_map_free(m);
}

int umd_map_remove(struct umd *d, const char *name, bool force)
{
	struct umd_map *m;

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
	m->removed = true;	/* no new lookups find it */
	pthread_mutex_unlock(&d->lock);
	umd_map_put(m, false);	/* the registry's reference */
	return 0;
}

void umd_map_foreach(struct umd *d, void (*fn)(struct umd_map *m, void *opaque), void *opaque)
{
	struct umd_map *m, **all = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&d->lock);
	list_for_each_entry(m, &d->maps, node) {
		if (m->removed)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct umd_map **na = realloc(all, ncap * sizeof(*na));

			if (!na)
				break;
			all = na;
			cap = ncap;
		}
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

struct flush_wait {
	struct umpath_io io;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
};

static void flush_done(struct umpath_io *io, int err)
{
	struct flush_wait *f = (struct flush_wait *)io;

	pthread_mutex_lock(&f->lock);
	f->done = true;
	f->err = err;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void flush_one(struct umd_map *m, void *opaque)
{
	struct flush_wait f = { .io = { .op = UMPATH_OP_FLUSH, .done = flush_done } };
	int r;

	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	r = umpath_map_submit(m->map, &f.io);
	if (!r) {
		pthread_mutex_lock(&f.lock);
		while (!f.done)
			pthread_cond_wait(&f.cond, &f.lock);
		pthread_mutex_unlock(&f.lock);
		r = f.err;
	}
	if (r)
		um_log("map %s: flush at shutdown failed: %s", m->name, strerror(-r));
	pthread_mutex_destroy(&f.lock);
	pthread_cond_destroy(&f.cond);
}

void umd_flush_all(struct umd *d)
{
	umd_map_foreach(d, flush_one, NULL);
}

static void fail_if_no_path_one(struct umd_map *m, void *opaque)
{
	int r = umpath_map_message_str(m->map, "fail_if_no_path");

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
