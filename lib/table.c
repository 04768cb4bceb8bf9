/* table.c - the dm-multipath table language: parse a table into a struct
 * multipath with the kernel's count ranges and refusal reasons (its
 * ti->error strings), and print the TABLE and INFO status lines exactly as
 * Linux 6.12 dm-multipath v1.14.0 does, paths shown by their own strings.
 *
 *   <#features> <features...> <#hw args> [<hw handler> <hw args...>]
 *   <#groups> <initial group> { <selector> <#sel args> <sel args...>
 *     <#paths> <#args per path> { <path> <path args...> }... }...
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mpath.h"

/* The kernel's struct dm_arg_set: the words still to be read. */
struct arg_set {
	unsigned argc;
	char **argv;
};

struct arg_range {
	unsigned min, max;
	const char *error;
};

struct parse {
	struct arg_set as;
	const char *error;	/* the kernel's ti->error */
};

static char *shift_arg(struct arg_set *as)
{
	if (!as->argc)
		return NULL;
	as->argc--;
	return *as->argv++;
}

static void consume_args(struct arg_set *as, unsigned n)
{
	if (n > as->argc)
		n = as->argc;
	as->argc -= n;
	as->argv += n;
}

/* dm_read_arg / dm_read_arg_group: a number within range; a group count
 * must also not exceed the words left. */
static int read_arg(struct parse *ps, const struct arg_range *r, unsigned *value, bool grouped)
{
	const char *s = shift_arg(&ps->as);

	if (!s || um_parse_uint(s, value) < 0 || *value < r->min || *value > r->max ||
	    (grouped && ps->as.argc < *value)) {
		ps->error = r->error;
		return -EINVAL;
	}
	return 0;
}

/* dm_split_args: words separated by white space, backslash escapes one. */
static int split_args(const char *line, unsigned *ret_argc, char ***ret_argv, char **ret_buf)
{
	size_t len = strlen(line);
	char *buf = malloc(len + 1);
	char **argv = calloc(len / 2 + 2, sizeof(*argv));
	unsigned argc = 0;
	const char *p = line;
	char *out = buf;

	if (!buf || !argv) {
		free(buf);
		free(argv);
		return -ENOMEM;
	}
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		argv[argc++] = out;
		while (*p && !isspace((unsigned char)*p)) {
			if (*p == '\\' && p[1])
				p++;
			*out++ = *p++;
		}
		*out++ = '\0';
	}
	*ret_argc = argc;
	*ret_argv = argv;
	*ret_buf = buf;
	return 0;
}

static int parse_features(struct parse *ps, struct multipath *m)
{
	static const struct arg_range ranges[] = {
		{ 0, 8, "invalid number of feature args" },
		{ 1, 50, "pg_init_retries must be between 1 and 50" },
		{ 0, 60000, "pg_init_delay_msecs must be between 0 and 60000" },
	};
	unsigned argc;
	int r = 0;

	if (read_arg(ps, &ranges[0], &argc, true) < 0)
		return -EINVAL;
	if (!argc)
		return 0;

	do {
		const char *name = shift_arg(&ps->as);

		argc--;
		if (!strcasecmp(name, "queue_if_no_path")) {
			m->flags |= MPATHF_QUEUE_IF_NO_PATH;
			continue;
		}
		if (!strcasecmp(name, "retain_attached_hw_handler")) {
			m->flags |= MPATHF_RETAIN_ATTACHED_HW_HANDLER;
			continue;
		}
		if (!strcasecmp(name, "pg_init_retries") && argc >= 1) {
			r = read_arg(ps, &ranges[1], &m->pg_init_retries, false);
			argc--;
			continue;
		}
		if (!strcasecmp(name, "pg_init_delay_msecs") && argc >= 1) {
			r = read_arg(ps, &ranges[2], &m->pg_init_delay_msecs, false);
			argc--;
			continue;
		}
		if (!strcasecmp(name, "queue_mode") && argc >= 1) {
			const char *mode = shift_arg(&ps->as);

			if (!strcasecmp(mode, "bio")) {
				m->queue_mode = QUEUE_MODE_BIO;
			} else if (!strcasecmp(mode, "rq") || !strcasecmp(mode, "mq")) {
				m->queue_mode = QUEUE_MODE_RQ;
			} else {
				ps->error = "Unknown 'queue_mode' requested";
				r = -EINVAL;
			}
			argc--;
			continue;
		}
		ps->error = "Unrecognised multipath feature request";
		r = -EINVAL;
	} while (argc && !r);

	return r;
}

static int parse_hw_handler(struct parse *ps, struct multipath *m)
{
	static const struct arg_range range = { 0, 1024, "invalid number of hardware handler args" };
	unsigned hw_argc;

	if (read_arg(ps, &range, &hw_argc, true) < 0)
		return -EINVAL;
	if (!hw_argc)
		return 0;
	if (m->queue_mode == QUEUE_MODE_BIO) {
		/* bio-based multipath ignores hardware handler args */
		consume_args(&ps->as, hw_argc);
		return 0;
	}
	m->hw_handler_name = strdup(shift_arg(&ps->as));
	if (!m->hw_handler_name)
		return -ENOMEM;
	if (hw_argc > 1) {
		/* Kept as the kernel does: "<count> <arg>..." for the handler. */
		size_t len = 16;

		for (unsigned i = 0; i < hw_argc - 1; i++)
			len += strlen(ps->as.argv[i]) + 1;
		m->hw_handler_params = malloc(len);
		if (!m->hw_handler_params)
			return -ENOMEM;
		int n = snprintf(m->hw_handler_params, len, "%u", hw_argc - 1);
		for (unsigned i = 0; i < hw_argc - 1; i++)
			n += snprintf(m->hw_handler_params + n, len - (size_t)n, " %s", ps->as.argv[i]);
	}
	consume_args(&ps->as, hw_argc - 1);
	return 0;
}

void mp_pgpath_free(struct pgpath *p)
{
	if (!p)
		return;
	if (p->path)
		um_path_counters_release(p->path, &p->own);
	um_path_put(p->path);
	free(p);
}

/* The detail of a path that would not open: "PATH: CAUSE", the path
 * escaped and cut short if long, the cause the transport's own words or
 * the errno's. */
static void path_detail(const char *name, int r)
{
	char cause[256], esc[128];

	snprintf(cause, sizeof(cause), "%s", *um_detail_get() ? um_detail_get() : strerror(-r));
	um_escape_detail(esc, sizeof(esc), name);
	um_detail_set("%s: %s", esc, cause);
}

/* A path string the engine can print back as one word of one line: the
 * parser's only escape is a backslash before the character itself, so a
 * tab or a newline in a path would need a line break. */
static bool path_printable(const char *name)
{
	for (; *name; name++)
		if (isspace((unsigned char)*name) && *name != ' ')
			return false;
	return true;
}

/* Whether a table of map (live or loaded) names the path already: Linux
 * reuses the mapped device's own open of it rather than opening it anew. */
static bool map_holds_path(struct umpath_map *map, const char *name)
{
	struct multipath *tables[2];
	bool found = false;

	if (!map)
		return false;
	map_lock(map);
	tables[0] = map->live;
	tables[1] = map->inactive;
	for (unsigned i = 0; i < 2 && !found; i++) {
		struct priority_group *pg;
		struct pgpath *p;

		if (!tables[i])
			continue;
		list_for_each_entry(pg, &tables[i]->priority_groups, list)
			list_for_each_entry(p, &pg->pgpaths, list)
				if (!strcmp(p->path->name, name))
					found = true;
	}
	map_unlock(map);
	return found;
}

struct pgpath *mp_pgpath_alloc(struct priority_group *pg)
{
	struct pgpath *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	list_init(&p->list);
	um_timer_init(&p->activate, activate_path_timer);
	p->is_active = true;
	p->pg = pg;
	return p;
}

int mp_pgpath_open(struct multipath *m, struct pgpath *p, const char *name)
{
	int r;

	if (!path_printable(name)) {
		/* No such device could exist for the kernel either; ours
		 * would break every line that prints it. */
		um_detail_set("a path may not contain tabs or line breaks");
		path_detail(name, -EINVAL);
		return -EINVAL;
	}
	um_detail_clear();
	if (m->check_only)
		r = um_path_check(m->ctx, name);
	else
		r = um_path_get(m->ctx, name, !map_holds_path(m->map, name), &p->path);
	if (r < 0)
		path_detail(name, r);
	else if (!m->check_only)
		p->owns_counters = um_path_counters_claim(p->path, &p->own);
	return r;
}

static struct pgpath *parse_path(struct parse *ps, struct arg_set *as,
				 struct priority_group *pg, struct multipath *m, int *ret_err)
{
	struct pgpath *p;
	int r;

	if (as->argc < 1) {
		ps->error = "no device given";
		*ret_err = -EINVAL;
		return NULL;
	}
	p = mp_pgpath_alloc(pg);
	if (!p) {
		*ret_err = -ENOMEM;
		return NULL;
	}
	r = mp_pgpath_open(m, p, shift_arg(as));
	if (r < 0) {
		ps->error = "error getting device";
		goto bad;
	}
	if (m->hw_handler_name && !m->hwh) {
		m->hwh = um_hw_handler_find(m->ctx, m->hw_handler_name);
		if (!m->hwh) {
			um_detail_set("no hardware handler '%.64s' is registered",
				      m->hw_handler_name);
			ps->error = "error attaching hardware handler";
			r = -EINVAL;
			goto bad;
		}
	}
	r = pg->ps.type->add_path(&pg->ps, &p->ps, as->argc, as->argv, &ps->error);
	if (r < 0)
		goto bad;
	return p;
bad:
	mp_pgpath_free(p);
	*ret_err = r;
	return NULL;
}

static void free_priority_group(struct priority_group *pg)
{
	struct pgpath *p, *n;

	if (!pg)
		return;
	if (pg->ps.type)
		pg->ps.type->destroy(&pg->ps);
	list_for_each_entry_safe(p, n, &pg->pgpaths, list)
		mp_pgpath_free(p);
	free(pg);
}

static int parse_path_selector(struct parse *ps, struct priority_group *pg)
{
	static const struct arg_range range = { 0, 1024, "invalid number of path selector args" };
	const struct path_selector_type *pst;
	unsigned ps_argc;
	int r;

	pst = ps_lookup(shift_arg(&ps->as));
	if (!pst) {
		ps->error = "unknown path selector type";
		return -EINVAL;
	}
	if (read_arg(ps, &range, &ps_argc, true) < 0)
		return -EINVAL;
	r = pst->create(&pg->ps, ps_argc, ps->as.argv);
	if (r < 0) {
		ps->error = "path selector constructor failed";
		return r;
	}
	pg->ps.type = pst;
	consume_args(&ps->as, ps_argc);
	return 0;
}

static struct priority_group *parse_priority_group(struct parse *ps, struct multipath *m,
						   int *ret_err)
{
	static const struct arg_range ranges[] = {
		{ 1, 1024, "invalid number of paths" },
		{ 0, 1024, "invalid number of selector args" },
	};
	struct priority_group *pg;
	unsigned nr_selector_args, nr_args;
	int r;

	if (ps->as.argc < 2) {
		ps->as.argc = 0;
		ps->error = "not enough priority group arguments";
		*ret_err = -EINVAL;
		return NULL;
	}
	pg = calloc(1, sizeof(*pg));
	if (!pg) {
		ps->error = "couldn't allocate priority group";
		*ret_err = -ENOMEM;
		return NULL;
	}
	list_init(&pg->pgpaths);
	pg->m = m;

	r = parse_path_selector(ps, pg);
	if (r < 0)
		goto bad;
	r = read_arg(ps, &ranges[0], &pg->nr_pgpaths, false);
	if (r < 0)
		goto bad;
	r = read_arg(ps, &ranges[1], &nr_selector_args, false);
	if (r < 0)
		goto bad;

	nr_args = 1 + nr_selector_args;
	for (unsigned i = 0; i < pg->nr_pgpaths; i++) {
		struct arg_set path_args;
		struct pgpath *p;

		if (ps->as.argc < nr_args) {
			ps->error = "not enough path parameters";
			r = -EINVAL;
			goto bad;
		}
		path_args.argc = nr_args;
		path_args.argv = ps->as.argv;
		p = parse_path(ps, &path_args, pg, m, &r);
		if (!p)
			goto bad;
		list_add_tail(&p->list, &pg->pgpaths);
		consume_args(&ps->as, nr_args);
	}
	return pg;
bad:
	free_priority_group(pg);
	*ret_err = r;
	return NULL;
}

/* What a refused table may have meant: nothing at all, or a whole line of
 * `dmsetup table` ("0 2097152 multipath 0 0 1 1 ...") pasted in. */
static void table_hint(char **argv, unsigned argc)
{
	unsigned n;

	if (!argc)
		um_detail_set("the table is empty");
	else if (argc >= 3 && !strcmp(argv[2], "multipath") && um_parse_uint(argv[0], &n) == 0 &&
		 um_parse_uint(argv[1], &n) == 0)
		um_detail_set("this looks like a line of 'dmsetup table': give only the words "
			      "after \"multipath\"");
}

void mp_table_free(struct multipath *m)
{
	struct priority_group *pg, *n;

	if (!m)
		return;
	if (m->target && m->target->destroy)
		m->target->destroy(m);
	/* A handler's answer would land in freed memory: flush_pg_init_locked
	 * must have run on a table that was live. */
	assert(!m->pg_init_in_progress);
	list_for_each_entry_safe(pg, n, &m->priority_groups, list)
		free_priority_group(pg);
	free(m->hw_handler_name);
	free(m->hw_handler_params);
	free(m);
}

/* The multipath target's table, after the words are split. */
static int multipath_parse(struct multipath *m, unsigned argc, char **argv, const char **error)
{
	static const struct arg_range ranges[] = {
		{ 0, 1024, "invalid number of priority groups" },
		{ 0, 1024, "invalid initial priority group number" },
	};
	struct parse ps = { .as = { argc, argv }, .error = NULL };
	unsigned next_pg_num, pg_count = 0;
	int r;

	r = parse_features(&ps, m);
	if (r < 0)
		goto out;
	/* alloc_multipath_stage2: bio-based never manages the handler. */
	if (m->queue_mode == QUEUE_MODE_BIO)
		m->flags |= MPATHF_RETAIN_ATTACHED_HW_HANDLER;
	m->flags |= MPATHF_QUEUE_IO;

	r = parse_hw_handler(&ps, m);
	if (r < 0)
		goto out;
	r = read_arg(&ps, &ranges[0], &m->nr_priority_groups, false);
	if (r < 0)
		goto out;
	r = read_arg(&ps, &ranges[1], &next_pg_num, false);
	if (r < 0)
		goto out;
	if ((!m->nr_priority_groups && next_pg_num) || (m->nr_priority_groups && !next_pg_num)) {
		ps.error = "invalid initial priority group";
		r = -EINVAL;
		goto out;
	}

	while (ps.as.argc) {
		struct priority_group *pg = parse_priority_group(&ps, m, &r);

		if (!pg)
			goto out;
		m->nr_valid_paths += pg->nr_pgpaths;
		list_add_tail(&pg->list, &m->priority_groups);
		pg->pg_num = ++pg_count;
		if (!--next_pg_num)
			m->next_pg = pg;
	}
	if (pg_count != m->nr_priority_groups) {
		ps.error = "priority group count mismatch";
		r = -EINVAL;
	}
out:
	*error = ps.error;
	return r;
}

static int table_parse(struct umpath_ctx *ctx, struct umpath_map *map,
		       const struct mp_target *target, const char *table, char *err, size_t errlen,
		       struct multipath **ret_m)
{
	const char *error = NULL;	/* the kernel's ti->error */
	struct multipath *m;
	unsigned argc;
	char **argv = NULL, *buf = NULL;
	int r;

	um_detail_clear();
	if (!target) {
		snprintf(err, err ? errlen : 0, "unknown target type");
		return -EINVAL;
	}
	r = split_args(table ? table : "", &argc, &argv, &buf);
	if (r < 0)
		return r;

	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	m->target = target;
	m->map = map;
	m->ctx = ctx;
	m->check_only = !ret_m;
	list_init(&m->priority_groups);
	m->queue_mode = QUEUE_MODE_RQ;
	m->pg_init_delay_msecs = PG_INIT_DELAY_DEFAULT;

	r = target->parse(m, argc, argv, &error);
	if (r < 0)
		goto bad;

	if (m->check_only) {
		mp_table_free(m);
		m = NULL;
		r = 0;
		goto out;
	}

	/* Sizes, for the map to check against its own. */
	bool first = true;
	struct priority_group *pg;
	struct pgpath *p;
	m->block_size = UM_MIN_BLOCK;
	list_for_each_entry(pg, &m->priority_groups, list) {
		list_for_each_entry(p, &pg->pgpaths, list) {
			uint64_t sz = p->path->size;

			if (first) {
				m->min_size = m->common_size = sz;
				first = false;
			}
			if (sz < m->min_size)
				m->min_size = sz;
			if (sz != m->common_size)
				m->common_size = 0;
			if (p->path->block_size > m->block_size)
				m->block_size = p->path->block_size;
		}
	}

	*ret_m = m;
	m = NULL;
	r = 0;
	goto out;
bad:
	if (err && errlen)
		snprintf(err, errlen, "%s", error ? error : strerror(-r));
	if (!*um_detail_get() && target == &mp_target_multipath)
		table_hint(argv, argc);
	mp_table_free(m);
out:
	free(argv);
	free(buf);
	return r;
}

int mp_table_parse(struct umpath_map *map, const struct mp_target *target, const char *table,
		   char *err, size_t errlen, struct multipath **ret_m)
{
	return table_parse(map->ctx, map, target, table, err, errlen, ret_m);
}

int mp_table_check(struct umpath_ctx *ctx, const struct mp_target *target, const char *table,
		   char *err, size_t errlen)
{
	return table_parse(ctx, NULL, target, table, err, errlen, NULL);
}

void mp_features_emit(struct multipath *m, struct sbuf *sb)
{
	sbuf_printf(sb, "%u ", !!(m->flags & MPATHF_QUEUE_IF_NO_PATH) +
			       (m->pg_init_retries > 0) * 2 +
			       (m->pg_init_delay_msecs != PG_INIT_DELAY_DEFAULT) * 2 +
			       !!(m->flags & MPATHF_RETAIN_ATTACHED_HW_HANDLER) +
			       (m->queue_mode != QUEUE_MODE_RQ) * 2);
	if (m->flags & MPATHF_QUEUE_IF_NO_PATH)
		sbuf_printf(sb, "queue_if_no_path ");
	if (m->pg_init_retries)
		sbuf_printf(sb, "pg_init_retries %u ", m->pg_init_retries);
	if (m->pg_init_delay_msecs != PG_INIT_DELAY_DEFAULT)
		sbuf_printf(sb, "pg_init_delay_msecs %u ", m->pg_init_delay_msecs);
	if (m->flags & MPATHF_RETAIN_ATTACHED_HW_HANDLER)
		sbuf_printf(sb, "retain_attached_hw_handler ");
	if (m->queue_mode == QUEUE_MODE_BIO)
		sbuf_printf(sb, "queue_mode bio ");
}

void mp_hw_handler_emit(struct multipath *m, struct sbuf *sb)
{
	if (m->hw_handler_name)
		sbuf_printf(sb, "1 %s ", m->hw_handler_name);
	else
		sbuf_printf(sb, "0 ");
}

void mp_table_emit(struct multipath *m, struct sbuf *sb)
{
	map_assert_locked(m->map);
	m->target->table_emit(m, sb);
}

void mp_status_emit(struct multipath *m, struct sbuf *sb)
{
	map_assert_locked(m->map);
	m->target->status_emit(m, sb);
}

static void multipath_table_emit(struct multipath *m, struct sbuf *sb)
{
	struct priority_group *pg;
	struct pgpath *p;

	mp_features_emit(m, sb);
	mp_hw_handler_emit(m, sb);

	sbuf_printf(sb, "%u ", m->nr_priority_groups);
	sbuf_printf(sb, "%u ", m->next_pg ? m->next_pg->pg_num :
			       m->current_pg ? m->current_pg->pg_num :
			       m->nr_priority_groups ? 1u : 0u);

	list_for_each_entry(pg, &m->priority_groups, list) {
		sbuf_printf(sb, "%s ", pg->ps.type->name);
		pg->ps.type->status(&pg->ps, NULL, PS_STATUS_TABLE, sb);
		sbuf_printf(sb, "%u %u ", pg->nr_pgpaths, pg->ps.type->table_args);
		list_for_each_entry(p, &pg->pgpaths, list) {
			sbuf_word(sb, p->path->name);
			pg->ps.type->status(&pg->ps, &p->ps, PS_STATUS_TABLE, sb);
		}
	}
	sbuf_trim(sb);
}

static void multipath_status_emit(struct multipath *m, struct sbuf *sb)
{
	struct priority_group *pg;
	struct pgpath *p;

	sbuf_printf(sb, "2 %u %u ", !!(m->flags & MPATHF_QUEUE_IO), m->pg_init_count);
	sbuf_printf(sb, "0 ");
	sbuf_printf(sb, "%u ", m->nr_priority_groups);
	sbuf_printf(sb, "%u ", m->next_pg ? m->next_pg->pg_num :
			       m->current_pg ? m->current_pg->pg_num :
			       m->nr_priority_groups ? 1u : 0u);

	list_for_each_entry(pg, &m->priority_groups, list) {
		char state = pg->bypassed ? 'D' : pg == m->current_pg ? 'A' : 'E';

		sbuf_printf(sb, "%c ", state);
		pg->ps.type->status(&pg->ps, NULL, PS_STATUS_INFO, sb);
		sbuf_printf(sb, "%u %u ", pg->nr_pgpaths, pg->ps.type->info_args);
		list_for_each_entry(p, &pg->pgpaths, list) {
			sbuf_word(sb, p->path->name);
			sbuf_printf(sb, "%s %u ", p->is_active ? "A" : "F", p->fail_count);
			pg->ps.type->status(&pg->ps, &p->ps, PS_STATUS_INFO, sb);
		}
	}
	sbuf_trim(sb);
}

const struct mp_target mp_target_multipath = {
	.name = "multipath",
	.parse = multipath_parse,
	.table_emit = multipath_table_emit,
	.status_emit = multipath_status_emit,
	.takes_messages = true,
};

static const struct mp_target *const targets[] = {
	&mp_target_multipath,
	&mp_target_v0,
};

const struct mp_target *mp_target_lookup(const char *name)
{
	if (!name)
		return &mp_target_multipath;
	for (size_t i = 0; i < UM_ARRAY_SIZE(targets); i++)
		if (!strcmp(targets[i]->name, name))
			return targets[i];
	return NULL;
}

const char *umpath_target_name(unsigned i)
{
	return i < UM_ARRAY_SIZE(targets) ? targets[i]->name : NULL;
}
