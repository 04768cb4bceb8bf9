/* show.c - the operator's views (show.h): the topology in multipath -ll's
 * layout, per-path state and statistics, a summary per map, the status
 * line taken apart, and the lines of the event stream; each as text or
 * JSON.
 *
 * A map's view is built from the engine's snapshot (umpath_map_snapshot):
 * its layout, selector words, states and counters come from one hold of
 * the map's lock, so they always describe one table, and no line of the
 * engine's text is taken apart here (a path string with a space in it is
 * one path).  The checker and the registry are asked afterwards.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "show.h"
#include "util.h"
#include "view.h"

#define LINE_INIT 1024

/* ---- helpers ---------------------------------------------------------- */

char *umd_map_line(struct umpath_map *map, bool table)
{
	size_t cap = LINE_INIT;
	char *buf = NULL;

	for (;;) {
		char *nb = realloc(buf, cap);
		int n;

		if (!nb) {
			free(buf);
			return NULL;
		}
		buf = nb;
		n = table ? umpath_map_table(map, buf, cap) : umpath_map_status(map, buf, cap);
		if (n >= 0 && (size_t)n < cap)
			return buf;
		cap = (size_t)n + 1;	/* it may have grown since: loop */
	}
}

void umd_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTP";
	double s = (double)(bytes / 1024);
	const char *u = units;

	while (s >= 1024 && u[1]) {
		s /= 1024;
		u++;
	}
	snprintf(buf, len, "%.*f%c", s < 10, s, *u);
}

static void fmt_latency(char *buf, size_t len, uint64_t ns, uint64_t ios)
{
	if (!ios)
		snprintf(buf, len, "-");
	else if (ns < 1000)
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
}

static const char *group_state(char c)
{
	return c == 'A' ? "active" : c == 'E' ? "enabled" : c == 'D' ? "disabled" : "unknown";
}

/* The checker's word for a path, in multipath's vocabulary, its checker
 * and its last answer. */
static void checker_state(struct umd_map *m, struct v_path *p)
{
	static const struct { const char *from, *to; } words[] = {
		{ "up", "ready" }, { "down", "faulty" }, { "pending", "pending" },
		{ "held", "held" }, { "-", "unchecked" },
	};
	struct umd_checker_view cv;
	const char *s;

	umd_checker_path_view(m, p->name, &cv);
	s = cv.state;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!strcmp(s, words[i].from)) {
			s = words[i].to;
			break;
		}
	}
	snprintf(p->checker, sizeof(p->checker), "%s", s);
	snprintf(p->checker_name, sizeof(p->checker_name), "%s", cv.checker);
	snprintf(p->checker_result, sizeof(p->checker_result), "%s", cv.result);
	p->checker_time = cv.result_time;
}

const char *umd_failback_name(enum umd_failback f)
{
	switch (f) {
	case FAILBACK_MANUAL: return "manual";
	case FAILBACK_IMMEDIATE: return "immediate";
	case FAILBACK_FOLLOWOVER: return "followover";
	case FAILBACK_DEFERRED: return "deferred";
	}
	return "unknown";
}

/* Text output: nothing a client put in a name may break a line. */
static void put_clean(FILE *out, const char *s)
{
	um_fput_clean(out, s);
}

/* ---- a map's snapshot ---------------------------------------------------- */

void umd_view_clear(struct view *v)
{
	for (unsigned i = 0; i < v->ngroups; i++)
		free(v->groups[i].policy);
	free(v->groups);
	free(v->paths);
	umpath_snapshot_free(v->snap);
	memset(v, 0, sizeof(*v));
}

int umd_view_take(struct umd_map *m, struct view *v)
{
	struct umpath_snapshot *s;
	int r;

	memset(v, 0, sizeof(*v));
	v->m = m;
	r = umpath_map_snapshot(m->map, &s);
	if (r < 0)
		return r;
	v->snap = s;
	v->features = s->features;
	v->hwhandler = s->hw_handler;
	v->groups = calloc(s->nr_groups ? s->nr_groups : 1, sizeof(*v->groups));
	v->paths = calloc(s->nr_paths ? s->nr_paths : 1, sizeof(*v->paths));
	if (!v->groups || !v->paths) {
		umd_view_clear(v);
		return -ENOMEM;
	}
	for (unsigned g = 0; g < s->nr_groups; g++, v->ngroups++) {
		const struct umpath_snapshot_group *sg = &s->groups[g];

		v->groups[g] = (struct v_group){
			.num = sg->num, .state = sg->state, .nr_paths = sg->nr_paths,
		};
		if (asprintf(&v->groups[g].policy, "%s %s", sg->selector, sg->selector_args) < 0) {
			v->groups[g].policy = NULL;
			umd_view_clear(v);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < s->nr_paths; i++) {
		const struct umpath_snapshot_path *sp = &s->paths[i];
		struct v_path *p = &v->paths[i];

		*p = (struct v_path){
			.name = sp->path, .group = sp->group, .index = sp->index,
			.active = sp->active, .fail_count = sp->fail_count, .st = sp->stats,
		};
		if (sp->io_stats)
			p->io = *sp->io_stats;
		checker_state(m, p);
		p->has_prio = !umd_config_path_prio(m->d, m->name, p->name, &p->prio);
		p->fence = umd_fence_path_state(m->d, m->name, p->name, p->fence_detail,
						sizeof(p->fence_detail));
		umpath_map_unsettled(m->map, p->name, &p->unsettled);
	}
	v->npaths = s->nr_paths;
	v->info = (struct umpath_map_info){
		.nr_groups = s->nr_groups,
		.current_group = s->current_group,
		.nr_valid_paths = s->nr_valid_paths,
		.queue_if_no_path = s->queue_if_no_path,
		.suspended = s->suspended,
		.queued_ios = s->queued_ios,
		.inflight_ios = s->inflight_ios,
		.size = s->size_bytes,
	};
	pthread_mutex_lock(&m->d->lock);
	v->policy = m->policy;
	v->opens = m->opens;
	pthread_mutex_unlock(&m->d->lock);
	return 0;
}

/* The maps a view covers: the one named, or every map. */
struct each {
	int (*fn)(struct view *v, void *opaque);
	void *opaque;
	int err;
};

static void each_one(struct umd_map *m, void *opaque)
{
	struct each *e = opaque;
	struct view v;
	int r;

	if (e->err)
		return;
	r = umd_view_take(m, &v);
	if (!r)
		r = e->fn(&v, e->opaque);
	umd_view_clear(&v);
	/* A map removed meanwhile is simply not shown. */
	if (r < 0 && r != -ENXIO)
		e->err = r;
}

int umd_for_views(struct umd *d, const char *name, int (*fn)(struct view *, void *),
		     void *opaque, char *err, size_t errlen)
{
	struct each e = { .fn = fn, .opaque = opaque };

	if (name) {
		struct umd_map *m = umd_map_get(d, name, false);

		if (!m) {
			snprintf(err, errlen, "no such map");
			return -ENXIO;
		}
		each_one(m, &e);
		umd_map_put(m, false);
	} else {
		umd_map_foreach(d, each_one, &e);
	}
	if (e.err)
		snprintf(err, errlen, "%s", strerror(-e.err));
	return e.err;
}

/* ---- text tables ---------------------------------------------------------- */

/* Rows of ncols cells, printed in columns as wide as their widest cell. */
struct tab {
	unsigned ncols;
	char **cells;
	size_t n, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
static void cell(struct tab *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (t->oom)
		return;
	char **nc = um_grow(t->cells, &t->cap, t->n + 1, sizeof(*t->cells));

	if (!nc) {
		t->oom = true;
		return;
	}
	t->cells = nc;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		t->oom = true;
		s = NULL;
	}
	va_end(ap);
	if (s)
		t->cells[t->n++] = s;
}

static int tab_print(struct tab *t, FILE *out)
{
	size_t *w;

	if (t->oom)
		return -ENOMEM;
	w = calloc(t->ncols, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t l = strlen(t->cells[i]);

		if (l > w[i % t->ncols])
			w[i % t->ncols] = l;
	}
	for (size_t i = 0; i < t->n; i++) {
		unsigned col = (unsigned)(i % t->ncols);

		put_clean(out, t->cells[i]);
		if (col + 1 == t->ncols || i + 1 == t->n)
			fputc('\n', out);
		else
			fprintf(out, "%*s", (int)(w[col] - strlen(t->cells[i]) + 1), "");
	}
	free(w);
	return 0;
}

static void tab_free(struct tab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* ---- show topology -------------------------------------------------------- */

/* A group's prio: groups have none in the engine, so it is derived from
 * the position, highest first, as multipath's group_by_prio tables order
 * them (docs/umpath.8). */
unsigned umd_group_prio(const struct view *v, unsigned g)
{
	return v->ngroups - g;
}

static int topology_text(struct view *v, void *opaque)
{
	FILE *out = opaque;
	char size[32];
	unsigned pi = 0;
	int ublk = umd_map_ublk_dev(v->m);

	umd_fmt_size(size, sizeof(size), v->info.size);
	put_clean(out, v->m->name);
	/* Its block device where it has one, as multipath -ll shows dm-N. */
	if (ublk >= 0)
		fprintf(out, " ublkb%d", ublk);
	fprintf(out, " size=%s features='%s' hwhandler='%s' wp=rw\n", size, v->features,
		v->hwhandler);
	for (unsigned g = 0; g < v->ngroups; g++) {
		const struct v_group *grp = &v->groups[g];
		bool last_group = g + 1 == v->ngroups;

		fprintf(out, "%s policy='%s' prio=%u status=%s\n", last_group ? "`-+-" : "|-+-",
			grp->policy, umd_group_prio(v, g), group_state(grp->state));
		for (unsigned p = 0; p < grp->nr_paths; p++, pi++) {
			const struct v_path *path = &v->paths[pi];

			fprintf(out, "%s %s ", last_group ? " " : "|",
				p + 1 == grp->nr_paths ? "`-" : "|-");
			put_clean(out, path->name);
			fprintf(out, " %s %s running\n", path->active ? "active" : "failed",
				path->checker);
		}
	}
	return 0;
}

static int topology_json(struct view *v, void *opaque)
{
	struct json *j = opaque;
	unsigned pi = 0;
	int ublk = umd_map_ublk_dev(v->m);

	json_object_begin(j, NULL);
	json_string(j, "name", v->m->name);
	if (ublk >= 0) {
		char dev[32];

		snprintf(dev, sizeof(dev), "/dev/ublkb%d", ublk);
		json_string(j, "ublk", dev);
	}
	json_uint(j, "size", v->info.size);
	json_uint(j, "sectors", v->info.size / UMPATH_SECTOR_SIZE);
	json_string(j, "features", v->features);
	json_string(j, "hwhandler", v->hwhandler);
	json_string(j, "write_prot", "rw");
	json_bool(j, "suspended", v->info.suspended);
	json_uint(j, "current_group", v->info.current_group);
	json_uint(j, "valid_paths", v->info.nr_valid_paths);
	json_uint(j, "total_paths", v->npaths);
	json_array_begin(j, "path_groups");
	for (unsigned g = 0; g < v->ngroups; g++) {
		const struct v_group *grp = &v->groups[g];

		json_object_begin(j, NULL);
		json_uint(j, "group", grp->num);
		json_string(j, "selector", grp->policy);
		json_uint(j, "prio", umd_group_prio(v, g));
		json_string(j, "dm_state", group_state(grp->state));
		json_array_begin(j, "paths");
		for (unsigned p = 0; p < grp->nr_paths; p++, pi++) {
			const struct v_path *path = &v->paths[pi];

			json_object_begin(j, NULL);
			json_string(j, "path", path->name);
			json_string(j, "dm_state", path->active ? "active" : "failed");
			json_string(j, "checker_state", path->checker);
			json_string(j, "online_state", "running");
			json_uint(j, "failures", path->fail_count);
			json_object_end(j);
		}
		json_array_end(j);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
	return 0;
}

int umd_show_topology(struct umd *d, const char *name, bool json, FILE *out,
		      char *err, size_t errlen)
{
	struct json j;
	int r;

	if (!json)
		return umd_for_views(d, name, topology_text, out, err, errlen);
	json_init(&j, out, true);
	json_object_begin(&j, NULL);
	json_array_begin(&j, "maps");
	r = umd_for_views(d, name, topology_json, &j, err, errlen);
	json_array_end(&j);
	json_object_end(&j);
	json_end(&j);
	return r;
}

/* ---- show paths ----------------------------------------------------------- */

static int paths_text(struct view *v, void *opaque)
{
	struct tab *t = opaque;

	for (unsigned i = 0; i < v->npaths; i++) {
		const struct v_path *p = &v->paths[i];
		char mean[32], p99[32];

		fmt_latency(mean, sizeof(mean), p->st.mean_latency_ns, p->st.ios);
		fmt_latency(p99, sizeof(p99), p->st.p99_latency_ns, p->st.ios);
		cell(t, "%s", v->m->name);
		cell(t, "%u", p->group);
		cell(t, "%s", p->name);
		cell(t, "%s", p->active ? "active" : "failed");
		cell(t, "%s", p->checker_name);
		cell(t, "%s", p->checker);
		cell(t, "%u", p->fail_count);
		cell(t, "%llu", (unsigned long long)p->st.ios);
		cell(t, "%llu", (unsigned long long)p->st.bytes);
		cell(t, "%llu", (unsigned long long)p->st.errors);
		cell(t, "%u", (unsigned)p->st.inflight);
		cell(t, "%s", mean);
		cell(t, "%s", p99);
		cell(t, "%llu", (unsigned long long)p->io.hedges_won);
		cell(t, "%llu", (unsigned long long)p->io.hedges_lost);
		cell(t, "%s", p->fence);
		cell(t, "%u", p->unsettled.writes);
		if (p->has_prio)
			cell(t, "%u", p->prio);
		else
			cell(t, "-");
	}
	return t->oom ? -ENOMEM : 0;
}

static int paths_json(struct view *v, void *opaque)
{
	struct json *j = opaque;

	for (unsigned i = 0; i < v->npaths; i++) {
		const struct v_path *p = &v->paths[i];

		json_object_begin(j, NULL);
		json_string(j, "map", v->m->name);
		json_uint(j, "group", p->group);
		json_uint(j, "index", p->index);
		json_string(j, "path", p->name);
		if (p->has_prio)
			json_uint(j, "prio", p->prio);
		json_string(j, "dm_state", p->active ? "active" : "failed");
		json_string(j, "checker", p->checker_name);
		json_string(j, "checker_state", p->checker);
		json_string(j, "checker_result", p->checker_result);
		json_uint(j, "failures", p->fail_count);
		json_string(j, "fence", p->fence);
		json_string(j, "fence_detail", p->fence_detail);
		json_uint(j, "unsettled_writes", p->unsettled.writes);
		json_uint(j, "held_writes", p->unsettled.held);
		json_uint(j, "ios", p->st.ios);
		json_uint(j, "bytes", p->st.bytes);
		json_uint(j, "read_bytes", p->io.read_bytes);
		json_uint(j, "write_bytes", p->io.write_bytes);
		json_uint(j, "errors", p->st.errors);
		json_uint(j, "path_errors", p->io.path_errors);
		json_uint(j, "target_errors", p->io.target_errors);
		json_uint(j, "aborts", p->st.aborts);
		json_uint(j, "inflight", p->st.inflight);
		json_uint(j, "mean_latency_ns", p->st.mean_latency_ns);
		json_uint(j, "p99_latency_ns", p->st.p99_latency_ns);
		json_uint(j, "hedges_won", p->io.hedges_won);
		json_uint(j, "hedges_lost", p->io.hedges_lost);
		json_uint(j, "hedged_reads", p->io.hedged_reads);
		json_object_end(j);
	}
	return 0;
}

/* A one-row-per-item view: a table with a header, or {"key": [...]}. */
static int show_list(struct umd *d, const char *name, bool json, FILE *out, char *err,
		     size_t errlen, const char *key, const char *const *head, unsigned nhead,
		     int (*json_fn)(struct view *, void *), int (*text_fn)(struct view *, void *))
{
	struct tab t = { .ncols = nhead };
	struct json j;
	int r;

	if (json) {
		json_init(&j, out, true);
		json_object_begin(&j, NULL);
		json_array_begin(&j, key);
		r = umd_for_views(d, name, json_fn, &j, err, errlen);
		json_array_end(&j);
		json_object_end(&j);
		json_end(&j);
		return r;
	}
	for (unsigned i = 0; i < t.ncols; i++)
		cell(&t, "%s", head[i]);
	r = umd_for_views(d, name, text_fn, &t, err, errlen);
	if (!r)
		r = tab_print(&t, out);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	tab_free(&t);
	return r;
}

int umd_show_paths(struct umd *d, const char *name, bool json, FILE *out,
		   char *err, size_t errlen)
{
	static const char *const head[] = {
		"map", "group", "path", "dm_st", "checker", "chk_st", "failures", "ios", "bytes",
		"errors", "inflight", "lat_mean", "lat_p99", "hedge_won", "hedge_lost", "fence",
		"unsettled", "prio",
	};

	return show_list(d, name, json, out, err, errlen, "paths", head,
			 sizeof(head) / sizeof(head[0]), paths_json, paths_text);
}

/* ---- show maps -------------------------------------------------------------- */

static void no_path_retry_text(char *buf, size_t len, int npr)
{
	if (npr == NO_PATH_RETRY_QUEUE)
		snprintf(buf, len, "queue");
	else if (npr == NO_PATH_RETRY_FAIL)
		snprintf(buf, len, "fail");
	else
		snprintf(buf, len, "%d", npr);
}

static int maps_text(struct view *v, void *opaque)
{
	struct tab *t = opaque;
	char size[32], npr[32];

	umd_fmt_size(size, sizeof(size), v->info.size);
	no_path_retry_text(npr, sizeof(npr), v->policy.no_path_retry);
	cell(t, "%s", v->m->name);
	cell(t, "%s", size);
	cell(t, "%u/%u", v->info.nr_valid_paths, v->npaths);
	cell(t, "%u", v->info.current_group);
	cell(t, "%s", v->info.queue_if_no_path ? "on" : "off");
	cell(t, "%u", v->info.queued_ios);
	cell(t, "%u", v->opens);
	if (v->policy.failback == FAILBACK_DEFERRED)
		cell(t, "deferred:%gs", v->policy.failback_delay_ms / 1000.0);
	else
		cell(t, "%s", umd_failback_name(v->policy.failback));
	cell(t, "%s", npr);
	return t->oom ? -ENOMEM : 0;
}

static int maps_json(struct view *v, void *opaque)
{
	struct json *j = opaque;

	json_object_begin(j, NULL);
	int ublk = umd_map_ublk_dev(v->m);

	json_string(j, "name", v->m->name);
	if (ublk >= 0) {
		char dev[32];

		snprintf(dev, sizeof(dev), "/dev/ublkb%d", ublk);
		json_string(j, "ublk", dev);
	}
	json_uint(j, "size", v->info.size);
	json_uint(j, "sectors", v->info.size / UMPATH_SECTOR_SIZE);
	json_uint(j, "valid_paths", v->info.nr_valid_paths);
	json_uint(j, "total_paths", v->npaths);
	json_uint(j, "nr_groups", v->ngroups);
	json_uint(j, "current_group", v->info.current_group);
	json_bool(j, "queueing", v->info.queue_if_no_path);
	json_uint(j, "queued_ios", v->info.queued_ios);
	json_uint(j, "inflight_ios", v->info.inflight_ios);
	json_uint(j, "opens", v->opens);
	json_bool(j, "suspended", v->info.suspended);
	json_string(j, "failback", umd_failback_name(v->policy.failback));
	json_uint(j, "failback_delay_ms", v->policy.failback_delay_ms);
	json_int(j, "no_path_retry", v->policy.no_path_retry);
	json_object_end(j);
	return 0;
}

int umd_show_maps(struct umd *d, const char *name, bool json, FILE *out,
		  char *err, size_t errlen)
{
	static const char *const head[] = {
		"name", "size", "paths", "group", "queueing", "queued", "opens",
		"failback", "no_path_retry",
	};

	return show_list(d, name, json, out, err, errlen, "maps", head,
			 sizeof(head) / sizeof(head[0]), maps_json, maps_text);
}

/* ---- status --json -------------------------------------------------------- */

/* A status word: a number when it is one. */
static void json_word(struct json *j, const char *key, const char *w)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(w, &end, 10);
	if (*w && !*end && !errno && (*w == '-' || (*w >= '0' && *w <= '9')))
		json_int(j, key, v);
	else
		json_string(j, key, w);
}

/* A selector's words (numbers, never a path string) as a JSON array;
 * skip_count drops the leading count of a group's words. */
static int json_words(struct json *j, const char *key, const char *words, bool skip_count)
{
	char *copy = strdup(words), *save = NULL;
	bool first = true;

	if (!copy)
		return -ENOMEM;
	json_array_begin(j, key);
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (!(first && skip_count))
			json_word(j, NULL, w);
		first = false;
	}
	json_array_end(j);
	free(copy);
	return 0;
}

/* The INFO line the snapshot describes, word for word as the engine prints
 * it: 2 QUEUE_IO PG_INIT_COUNT, 0 (no hardware handler status), NR_GROUPS
 * NEXT_GROUP, then per group STATE, its selector words (count first),
 * NR_PATHS NR_INFO_ARGS, and per path PATH A|F FAIL_COUNT and its words. */
/* A path as one word of a table line, escaped as the engine prints it and
 * its parser reads it back (control characters never get into a table). */
void umd_put_word(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == ' ' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
}

/* The same for a line a person reads: escaped like a table word, so a
 * space cannot split it, then with control bytes made visible. */
void umd_put_path_word(FILE *out, const char *s)
{
	char *w = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&w, &len);

	if (!f) {
		put_clean(out, s);
		return;
	}
	umd_put_word(f, s);
	if (fclose(f) == 0)
		put_clean(out, w);
	else
		put_clean(out, s);
	free(w);
}

static char *status_line(const struct umpath_snapshot *s)
{
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);

	if (!f)
		return NULL;
	fprintf(f, "2 %d %u 0 %u %u", s->queue_io, s->pg_init_count, s->nr_groups,
		s->current_group);
	for (unsigned g = 0; g < s->nr_groups; g++) {
		const struct umpath_snapshot_group *sg = &s->groups[g];

		fprintf(f, " %c %s %u %u", sg->state, sg->selector_status, sg->nr_paths,
			sg->nr_status_args);
		for (unsigned i = 0; i < sg->nr_paths; i++) {
			const struct umpath_snapshot_path *p = &sg->paths[i];

			fputc(' ', f);
			umd_put_word(f, p->path);
			fprintf(f, " %s %u%s%s", p->active ? "A" : "F", p->fail_count,
				*p->status_args ? " " : "", p->status_args);
		}
	}
	if (fclose(f)) {
		free(line);
		return NULL;
	}
	return line;
}

static int status_json(struct json *j, const struct umpath_snapshot *s)
{
	int r = 0;

	json_int(j, "queue_io", s->queue_io);
	json_int(j, "pg_init_count", s->pg_init_count);
	json_array_begin(j, "hwhandler");
	json_array_end(j);
	json_uint(j, "nr_groups", s->nr_groups);
	json_int(j, "next_group", s->current_group);
	json_array_begin(j, "groups");
	for (unsigned g = 0; g < s->nr_groups && !r; g++) {
		const struct umpath_snapshot_group *sg = &s->groups[g];

		json_object_begin(j, NULL);
		json_uint(j, "group", sg->num);
		json_string(j, "state", group_state(sg->state));
		r = json_words(j, "selector_status", sg->selector_status, true);
		json_array_begin(j, "paths");
		for (unsigned i = 0; i < sg->nr_paths && !r; i++) {
			const struct umpath_snapshot_path *p = &sg->paths[i];

			json_object_begin(j, NULL);
			json_string(j, "path", p->path);
			json_string(j, "state", p->active ? "active" : "failed");
			json_int(j, "fail_count", p->fail_count);
			r = json_words(j, "selector_status", p->status_args, false);
			json_object_end(j);
		}
		json_array_end(j);
		json_object_end(j);
	}
	json_array_end(j);
	return r;
}

int umd_show_status_json(struct umd_map *m, FILE *out, char *err, size_t errlen)
{
	struct umpath_snapshot *s;
	struct json j;
	char *line;
	int r;

	r = umpath_map_snapshot(m->map, &s);
	if (r < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	/* Another target's INFO line is its own: the library prints it. */
	line = s->target && strcmp(s->target, "multipath") ? umd_map_line(m->map, false)
							   : status_line(s);
	if (!line) {
		umpath_snapshot_free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_init(&j, out, true);
	json_object_begin(&j, NULL);
	json_string(&j, "name", m->name);
	json_uint(&j, "start", 0);
	json_uint(&j, "length", s->size_bytes / UMPATH_SECTOR_SIZE);
	json_string(&j, "target", s->target ? s->target : "multipath");
	json_string(&j, "status", line);
	r = status_json(&j, s);
	/* Whatever was open when memory ran out is closed: the output is
	 * JSON even then, but the reply is an error. */
	json_close_all(&j);
	json_end(&j);
	if (r < 0)
		snprintf(err, errlen, "out of memory");
	free(line);
	umpath_snapshot_free(s);
	return r;
}

/* ---- events ------------------------------------------------------------------ */

static void fmt_time(char *buf, size_t len, const struct timespec *ts)
{
	struct tm tm;

	gmtime_r(&ts->tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts->tv_nsec / 1000000);
}

static void json_time(struct json *j, const struct timespec *ts)
{
	char t[64];

	fmt_time(t, sizeof(t), ts);
	json_string(j, "time", t);
	json_uint(j, "time_ms", (uint64_t)ts->tv_sec * 1000 + (uint64_t)ts->tv_nsec / 1000000);
}

void umd_show_event(FILE *out, const struct umd_event_msg *msg, bool json)
{
	const struct umd_event *ev = &msg->ev;
	char t[64];

	if (json) {
		struct json j;

		json_init(&j, out, false);
		json_object_begin(&j, NULL);
		json_uint(&j, "seq", msg->seq);
		json_time(&j, &msg->time);
		json_string(&j, "map", ev->map);
		json_string(&j, "type", ev->type);
		json_string(&j, "path", ev->path);
		if (ev->group)
			json_uint(&j, "group", ev->group);
		else
			json_null(&j, "group");
		if (ev->nr_valid_paths >= 0)
			json_int(&j, "valid_paths", ev->nr_valid_paths);
		else
			json_null(&j, "valid_paths");
		json_string(&j, "detail", ev->detail);
		json_object_end(&j);
		json_end(&j);
		return;
	}
	fmt_time(t, sizeof(t), &msg->time);
	fprintf(out, "%s ", t);
	put_clean(out, ev->map);
	fputc(' ', out);
	put_clean(out, ev->type);
	if (ev->path) {
		fputs(" path=", out);
		umd_put_path_word(out, ev->path);
	}
	if (ev->group)
		fprintf(out, " group=%u", ev->group);
	if (ev->nr_valid_paths >= 0)
		fprintf(out, " valid_paths=%d", ev->nr_valid_paths);
	if (ev->detail) {
		fputs(": ", out);
		put_clean(out, ev->detail);
	}
	fputc('\n', out);
}

/* A line that is no map's event: the time, a type and what it means. */
static void notice(FILE *out, bool json, const char *type, uint64_t lost, const char *text)
{
	struct timespec ts;
	char t[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (json) {
		struct json j;

		json_init(&j, out, false);
		json_object_begin(&j, NULL);
		json_time(&j, &ts);
		json_null(&j, "map");
		json_string(&j, "type", type);
		if (lost)
			json_uint(&j, "lost", lost);
		json_string(&j, "detail", text);
		json_object_end(&j);
		json_end(&j);
		return;
	}
	fmt_time(t, sizeof(t), &ts);
	fprintf(out, "%s %s\n", t, text);
}

void umd_show_events_lost(FILE *out, uint64_t lost, bool json)
{
	char text[64];

	snprintf(text, sizeof(text), "%llu events lost", (unsigned long long)lost);
	notice(out, json, "events_lost", lost, text);
}

void umd_show_events_end(FILE *out, bool json)
{
	notice(out, json, "shutdown", 0, "umpathd stopping");
}

/* ---- Prometheus metrics ---------------------------------------------------- */

/* The families, in the order of the output.  Each is gathered in its own
 * memory stream while the maps are walked once (one snapshot per map),
 * then written out whole under its one HELP and TYPE. */
enum {
	MF_MAPS, MF_UPTIME, MF_START, MF_EVENTS_LOST, MF_ENGINE_EVENTS_LOST,
	MF_CTL_CONNS, MF_CTL_CONNS_TOTAL,
	MF_MAP_SIZE, MF_MAP_SUSPENDED, MF_MAP_PATHS, MF_MAP_VALID_PATHS, MF_MAP_GROUP,
	MF_MAP_QUEUE_IF_NO_PATH, MF_MAP_QUEUED, MF_MAP_INFLIGHT,
	MF_PATH_ACTIVE, MF_PATH_FAILURES, MF_PATH_CHECKER_STATE, MF_PATH_CHECKER_TIME,
	MF_PATH_IOS, MF_PATH_READ, MF_PATH_WRITTEN, MF_PATH_ERRORS, MF_PATH_ABORTS,
	MF_PATH_INFLIGHT, MF_PATH_LATENCY, MF_PATH_HEDGES, MF_PATH_HEDGED,
	MF_NR
};

static const struct {
	const char *name, *type, *help;
} families[MF_NR] = {
	[MF_MAPS] = { "umpath_maps", "gauge", "Maps the daemon holds." },
	[MF_UPTIME] = { "umpath_daemon_uptime_seconds", "gauge", "Seconds since umpathd started." },
	[MF_START] = { "umpath_daemon_start_time_seconds", "gauge",
		       "When umpathd started, in seconds since the Unix epoch." },
	[MF_EVENTS_LOST] = { "umpath_events_lost_total", "counter",
			     "Events dropped for umpath events followers that fell behind "
			     "(once per follower that missed one)." },
	[MF_ENGINE_EVENTS_LOST] = { "umpath_engine_events_lost_total", "counter",
				    "Events the engine's queue dropped before the daemon saw them." },
	[MF_CTL_CONNS] = { "umpath_control_connections", "gauge",
			   "Control socket connections being served." },
	[MF_CTL_CONNS_TOTAL] = { "umpath_control_connections_accepted_total", "counter",
				 "Control socket connections served since the start." },
	[MF_MAP_SIZE] = { "umpath_map_size_bytes", "gauge", "Size of the map." },
	[MF_MAP_SUSPENDED] = { "umpath_map_suspended", "gauge", "1 if the map is suspended." },
	[MF_MAP_PATHS] = { "umpath_map_paths", "gauge", "Paths in the map's table." },
	[MF_MAP_VALID_PATHS] = { "umpath_map_valid_paths", "gauge",
				 "Paths the map may use (active in its status line)." },
	[MF_MAP_GROUP] = { "umpath_map_current_group", "gauge",
			   "The priority group the map uses (next to be used), 1-based." },
	[MF_MAP_QUEUE_IF_NO_PATH] = { "umpath_map_queue_if_no_path", "gauge",
				      "1 if the map queues I/O while it has no path." },
	[MF_MAP_QUEUED] = { "umpath_map_queued_ios", "gauge",
			    "I/Os of the map waiting for a path or a resume." },
	[MF_MAP_INFLIGHT] = { "umpath_map_inflight_ios", "gauge",
			      "I/Os of the map at its paths' transports." },
	[MF_PATH_ACTIVE] = { "umpath_path_active", "gauge",
			     "1 if the path is active in the map, 0 if failed." },
	[MF_PATH_FAILURES] = { "umpath_path_failures_total", "counter",
			       "Times the map failed the path (the status line's fail count)." },
	[MF_PATH_CHECKER_STATE] = { "umpath_path_checker_state", "gauge",
				    "The path checker's state: 1 for the current one." },
	[MF_PATH_CHECKER_TIME] = { "umpath_path_checker_last_result_timestamp_seconds", "gauge",
				   "When the path checker's last probe answered, in seconds "
				   "since the Unix epoch." },
	[MF_PATH_IOS] = { "umpath_path_ios_total", "counter",
			  "I/Os the path completed (its counters are shared by the maps naming it)." },
	[MF_PATH_READ] = { "umpath_path_read_bytes_total", "counter", "Bytes read on the path." },
	[MF_PATH_WRITTEN] = { "umpath_path_written_bytes_total", "counter",
			      "Bytes written on the path." },
	[MF_PATH_ERRORS] = { "umpath_path_errors_total", "counter",
			     "I/Os of the path that ended in an error, by class (path: the path "
			     "was at fault, target: the request was refused)." },
	[MF_PATH_ABORTS] = { "umpath_path_aborts_total", "counter",
			     "SCSI ABORT TASKs sent on the path at I/O deadlines." },
	[MF_PATH_INFLIGHT] = { "umpath_path_inflight_ios", "gauge",
			       "I/Os at the path's transport now." },
	[MF_PATH_LATENCY] = { "umpath_path_io_seconds", "histogram",
			      "Completion time of the path's I/Os." },
	[MF_PATH_HEDGES] = { "umpath_path_hedges_total", "counter",
			     "Hedged reads sent to the path, by outcome (won: it answered "
			     "first; lost: the original did, or the hedge failed)." },
	[MF_PATH_HEDGED] = { "umpath_path_hedged_reads_total", "counter",
			     "Reads on the path that were hedged to another path." },
};

/* The checker states a path may be in (umpath show paths' chk_st). */
static const char *const checker_states[] = {
	"ready", "faulty", "pending", "held", "unchecked", "unsupported",
};

/* Latency buckets shown: every other power of two from 2^10 ns (about
 * 1 us) to 2^36 ns (about 69 s), cumulative as Prometheus wants them; the
 * engine's bucket b holds [2^(b-1), 2^b) ns, all at most le = 2^b ns. */
#define LAT_FIRST 10
#define LAT_LAST 36
#define LAT_STEP 2

struct metrics {
	FILE *f[MF_NR];
	char *buf[MF_NR];
	size_t len[MF_NR];
	int err;
};

/* A label value as the exposition format wants it: backslash, double quote
 * and newline escaped, and bytes that are not UTF-8 as U+FFFD (a parser
 * refuses them).  Names and paths come from clients. */
static void prom_label_value(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		size_t n;

		if (*s == '\\' || *s == '"') {
			fputc('\\', f);
			fputc(*s++, f);
			continue;
		}
		if (*s == '\n') {
			fputs("\\n", f);
			s++;
			continue;
		}
		n = json_utf8_len(s);
		if (!n) {
			fputs("\xef\xbf\xbd", f);
			s++;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
}

/* name{map="…",path="…",key="val"} with the labels that are not NULL. */
static void prom_series(FILE *f, int fam, const char *suffix, const char *map, const char *path,
			const char *key, const char *val)
{
	const char *keys[3] = { "map", "path", key };
	const char *vals[3] = { map, path, val };
	bool first = true;

	fputs(families[fam].name, f);
	fputs(suffix, f);
	for (int i = 0; i < 3; i++) {
		if (!keys[i] || !vals[i])
			continue;
		fprintf(f, "%s%s=\"", first ? "{" : ",", keys[i]);
		prom_label_value(f, vals[i]);
		fputc('"', f);
		first = false;
	}
	if (!first)
		fputc('}', f);
	fputc(' ', f);
}

static void prom_uint(struct metrics *mt, int fam, const char *map, const char *path,
		      const char *key, const char *val, uint64_t v)
{
	prom_series(mt->f[fam], fam, "", map, path, key, val);
	fprintf(mt->f[fam], "%llu\n", (unsigned long long)v);
}

/* Nanoseconds as exact decimal seconds: "0.000001024", "12.5". */
static void fmt_ns_seconds(char *buf, size_t len, uint64_t ns)
{
	int n = snprintf(buf, len, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
			 (unsigned long long)(ns % 1000000000u));

	while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
		buf[--n] = '\0';
}

static void prom_seconds(struct metrics *mt, int fam, const char *map, const char *path,
			 uint64_t ns)
{
	char s[48];

	fmt_ns_seconds(s, sizeof(s), ns);
	prom_series(mt->f[fam], fam, "", map, path, NULL, NULL);
	fprintf(mt->f[fam], "%s\n", s);
}

static void prom_histogram(struct metrics *mt, const char *map, const char *path,
			   const struct umpath_path_io_stats *io)
{
	FILE *f = mt->f[MF_PATH_LATENCY];
	uint64_t cum = 0;
	unsigned b = 0;
	char le[48];

	for (unsigned top = LAT_FIRST; top <= LAT_LAST; top += LAT_STEP) {
		for (; b <= top; b++)
			cum += io->lat_buckets[b];
		fmt_ns_seconds(le, sizeof(le), 1ull << top);
		prom_series(f, MF_PATH_LATENCY, "_bucket", map, path, "le", le);
		fprintf(f, "%llu\n", (unsigned long long)cum);
	}
	prom_series(f, MF_PATH_LATENCY, "_bucket", map, path, "le", "+Inf");
	fprintf(f, "%llu\n", (unsigned long long)io->lat_count);
	fmt_ns_seconds(le, sizeof(le), io->lat_sum_ns);
	prom_series(f, MF_PATH_LATENCY, "_sum", map, path, NULL, NULL);
	fprintf(f, "%s\n", le);
	prom_series(f, MF_PATH_LATENCY, "_count", map, path, NULL, NULL);
	fprintf(f, "%llu\n", (unsigned long long)io->lat_count);
}

static int metrics_map(struct view *v, void *opaque)
{
	struct metrics *mt = opaque;
	const char *map = v->m->name;

	prom_uint(mt, MF_MAP_SIZE, map, NULL, NULL, NULL, v->info.size);
	prom_uint(mt, MF_MAP_SUSPENDED, map, NULL, NULL, NULL, !!v->info.suspended);
	prom_uint(mt, MF_MAP_PATHS, map, NULL, NULL, NULL, v->npaths);
	prom_uint(mt, MF_MAP_VALID_PATHS, map, NULL, NULL, NULL, v->info.nr_valid_paths);
	prom_uint(mt, MF_MAP_GROUP, map, NULL, NULL, NULL, v->info.current_group);
	prom_uint(mt, MF_MAP_QUEUE_IF_NO_PATH, map, NULL, NULL, NULL, !!v->info.queue_if_no_path);
	prom_uint(mt, MF_MAP_QUEUED, map, NULL, NULL, NULL, v->info.queued_ios);
	prom_uint(mt, MF_MAP_INFLIGHT, map, NULL, NULL, NULL, v->info.inflight_ios);
	for (unsigned i = 0; i < v->npaths; i++) {
		const struct v_path *p = &v->paths[i];

		prom_uint(mt, MF_PATH_ACTIVE, map, p->name, NULL, NULL, p->active);
		prom_uint(mt, MF_PATH_FAILURES, map, p->name, NULL, NULL, p->fail_count);
		for (size_t s = 0; s < sizeof(checker_states) / sizeof(checker_states[0]); s++)
			prom_uint(mt, MF_PATH_CHECKER_STATE, map, p->name, "state", checker_states[s],
				  !strcmp(p->checker, checker_states[s]));
		if (p->checker_time.tv_sec)
			prom_seconds(mt, MF_PATH_CHECKER_TIME, map, p->name,
				     (uint64_t)p->checker_time.tv_sec * 1000000000u +
				     (uint64_t)p->checker_time.tv_nsec);
		prom_uint(mt, MF_PATH_IOS, map, p->name, NULL, NULL, p->st.ios);
		prom_uint(mt, MF_PATH_READ, map, p->name, NULL, NULL, p->io.read_bytes);
		prom_uint(mt, MF_PATH_WRITTEN, map, p->name, NULL, NULL, p->io.write_bytes);
		prom_uint(mt, MF_PATH_ERRORS, map, p->name, "class", "path", p->io.path_errors);
		prom_uint(mt, MF_PATH_ERRORS, map, p->name, "class", "target", p->io.target_errors);
		prom_uint(mt, MF_PATH_ABORTS, map, p->name, NULL, NULL, p->st.aborts);
		prom_uint(mt, MF_PATH_INFLIGHT, map, p->name, NULL, NULL, p->st.inflight);
		prom_histogram(mt, map, p->name, &p->io);
		prom_uint(mt, MF_PATH_HEDGES, map, p->name, "outcome", "won", p->io.hedges_won);
		prom_uint(mt, MF_PATH_HEDGES, map, p->name, "outcome", "lost", p->io.hedges_lost);
		prom_uint(mt, MF_PATH_HEDGED, map, p->name, NULL, NULL, p->io.hedged_reads);
	}
	return 0;
}

int umd_show_metrics(struct umd *d, struct umd_control *ctl, FILE *out)
{
	struct metrics mt = { 0 };
	uint64_t lost = 0, engine_lost = 0, ctl_total = 0, up_ns;
	unsigned ctl_open = 0, nmaps;
	struct timespec now;
	char err[128];
	int r = 0;

	for (int i = 0; i < MF_NR; i++) {
		mt.f[i] = open_memstream(&mt.buf[i], &mt.len[i]);
		if (!mt.f[i])
			r = -ENOMEM;
	}
	if (r < 0)
		goto out;
	pthread_mutex_lock(&d->lock);
	nmaps = d->nmaps;
	pthread_mutex_unlock(&d->lock);
	prom_uint(&mt, MF_MAPS, NULL, NULL, NULL, NULL, nmaps);
	up_ns = umpath_now_ns() - d->start_ns;
	prom_seconds(&mt, MF_UPTIME, NULL, NULL, up_ns);
	clock_gettime(CLOCK_REALTIME, &now);
	prom_seconds(&mt, MF_START, NULL, NULL,
		     (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec - up_ns);
	umd_events_lost(d, &lost, &engine_lost);
	prom_uint(&mt, MF_EVENTS_LOST, NULL, NULL, NULL, NULL, lost);
	prom_uint(&mt, MF_ENGINE_EVENTS_LOST, NULL, NULL, NULL, NULL, engine_lost);
	if (ctl) {
		umd_control_counts(ctl, &ctl_open, &ctl_total);
		prom_uint(&mt, MF_CTL_CONNS, NULL, NULL, NULL, NULL, ctl_open);
		prom_uint(&mt, MF_CTL_CONNS_TOTAL, NULL, NULL, NULL, NULL, ctl_total);
	}
	r = umd_for_views(d, NULL, metrics_map, &mt, err, sizeof(err));
out:
	for (int i = 0; i < MF_NR; i++) {
		if (mt.f[i] && fclose(mt.f[i]) && !r)
			r = -ENOMEM;
		mt.f[i] = NULL;
	}
	for (int i = 0; i < MF_NR && !r; i++) {
		if (!mt.len[i])
			continue;	/* no series (no map): no family */
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", families[i].name, families[i].help,
			families[i].name, families[i].type);
		fwrite(mt.buf[i], 1, mt.len[i], out);
	}
	for (int i = 0; i < MF_NR; i++)
		free(mt.buf[i]);
	return r;
}
