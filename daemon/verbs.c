/* verbs.c - what multipathd's path verbs do to a map's table (add path,
 * del path), and its `show status` and `show daemon` (cli_handlers.c).
 * The control socket (control.c) serialises them with the other changes
 * of the map and swaps the table in as a reload does.
 *
 * A table is rewritten from the engine's snapshot of the live one: the
 * same features, hardware handler, selectors and per-path words, with the
 * one path added or taken out.  Nothing here changes a map.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "verbs.h"
#include "view.h"

/* A group of the new table: the snapshot's, or a new one (sg NULL). */
static void put_group(FILE *f, const struct umpath_snapshot_group *sg,
		      const struct umpath_snapshot_group *like, const char *skip, const char *add,
		      const char *add_args)
{
	unsigned n = 0;

	if (sg) {
		for (unsigned i = 0; i < sg->nr_paths; i++)
			n += !skip || strcmp(sg->paths[i].path, skip);
		like = sg;
	}
	n += add != NULL;
	if (like)
		fprintf(f, " %s %s %u %u", like->selector, like->selector_args, n,
			like->nr_table_args);
	else
		fprintf(f, " service-time 0 %u 1", n);	/* umpath.conf's default */
	for (unsigned i = 0; sg && i < sg->nr_paths; i++) {
		const struct umpath_snapshot_path *p = &sg->paths[i];

		if (skip && !strcmp(p->path, skip))
			continue;
		fputc(' ', f);
		umd_put_word(f, p->path);
		if (*p->table_args)
			fprintf(f, " %s", p->table_args);
	}
	if (add) {
		fputc(' ', f);
		umd_put_word(f, add);
		if (*add_args)
			fprintf(f, " %s", add_args);
	}
}

/* A new path's selector words: those of the group's first path (every
 * selector of the library takes the same per-path words). */
static const char *path_args_like(const struct umpath_snapshot_group *sg)
{
	if (!sg)
		return "1";
	return sg->nr_paths ? sg->paths[0].table_args : "1";
}

static bool has_path(const struct umpath_snapshot *s, const char *path)
{
	for (unsigned i = 0; i < s->nr_paths; i++)
		if (!strcmp(s->paths[i].path, path))
			return true;
	return false;
}

/* A new table's text: its features, hardware handler and groups; the
 * group the map starts with is next, if it is still one (else the first).
 * NULL without memory. */
static FILE *open_table(const struct umpath_snapshot *s, unsigned ngroups, unsigned next,
			char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);

	if (!f)
		return NULL;
	if (!next || next > ngroups)
		next = 1;
	fprintf(f, "%s %s %u %u", s->features, s->hw_handler, ngroups, next);
	return f;
}

/* The table text, or -ENOMEM. */
static int close_table(FILE *f, char **buf, char **ret_table)
{
	if (fclose(f)) {
		free(*buf);
		return -ENOMEM;
	}
	*ret_table = *buf;
	return 0;
}

int umd_table_add_path(const struct umpath_snapshot *s, const char *path, unsigned group,
		       char **ret_table, unsigned *ret_group, char *err, size_t errlen)
{
	const struct umpath_snapshot_group *like;
	unsigned ngroups = s->nr_groups + !group, next = s->current_group;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (has_path(s, path)) {
		snprintf(err, errlen, "%s is a path of the map already", path);
		return -EEXIST;
	}
	if (group > s->nr_groups) {
		snprintf(err, errlen, "group %u: no such group (the map has %u)", group,
			 s->nr_groups);
		return -EINVAL;
	}
	f = open_table(s, ngroups, next, &buf, &len);
	if (!f)
		return -ENOMEM;
	for (unsigned g = 0; g < s->nr_groups; g++) {
		bool here = g + 1 == group;

		put_group(f, &s->groups[g], NULL, NULL, here ? path : NULL,
			  path_args_like(&s->groups[g]));
	}
	/* multipathd's default path_grouping_policy, failover, gives every
	 * path a group of its own: the new one comes last, lowest prio. */
	like = s->nr_groups ? &s->groups[s->nr_groups - 1] : NULL;
	if (!group)
		put_group(f, NULL, like, NULL, path, path_args_like(like));
	*ret_group = group ? group : ngroups;
	return close_table(f, &buf, ret_table);
}

int umd_table_del_path(const struct umpath_snapshot *s, const char *path, char **ret_table,
		       unsigned *ret_dropped, char *err, size_t errlen)
{
	unsigned ngroups = 0, next = s->current_group, dropped = 0, left = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!has_path(s, path)) {
		snprintf(err, errlen, "%s is not a path of the map", path);
		return -ENOENT;
	}
	for (unsigned g = 0; g < s->nr_groups; g++) {
		const struct umpath_snapshot_group *sg = &s->groups[g];
		unsigned keep = 0;

		for (unsigned i = 0; i < sg->nr_paths; i++)
			keep += !!strcmp(sg->paths[i].path, path);
		left += keep;
		if (keep || !sg->nr_paths) {
			ngroups++;
		} else {
			dropped = sg->num;
			/* The groups after it move up one. */
			if (next > sg->num)
				next--;
			else if (next == sg->num)
				next = 1;
		}
	}
	if (!left) {
		/* multipathd flushes a map whose last path goes
		 * (flush_on_last_del); here removing a map is its own verb. */
		snprintf(err, errlen, "%s is the map's last path: a map keeps one (remove the "
			 "map instead)", path);
		return -EBUSY;
	}
	f = open_table(s, ngroups, next, &buf, &len);
	if (!f)
		return -ENOMEM;
	for (unsigned g = 0; g < s->nr_groups; g++) {
		const struct umpath_snapshot_group *sg = &s->groups[g];
		bool keep = !sg->nr_paths;

		for (unsigned i = 0; i < sg->nr_paths; i++)
			keep |= !!strcmp(sg->paths[i].path, path);
		if (keep)
			put_group(f, sg, NULL, path, NULL, NULL);
	}
	*ret_dropped = dropped;
	return close_table(f, &buf, ret_table);
}

int umd_path_fits(struct umd *d, struct umpath_map *map, const char *path, char *err,
		  size_t errlen)
{
	char *table = NULL, why[256] = "";
	size_t len = 0;
	struct umpath_map *probe;
	uint64_t size, want = umpath_map_size(map);
	uint32_t bs, want_bs = umpath_map_block_size(map);
	FILE *f = open_memstream(&table, &len);
	int r;

	if (!f)
		return -ENOMEM;
	fputs("0 0 1 1 round-robin 0 1 1 ", f);
	umd_put_word(f, path);
	fputs(" 1", f);
	if (fclose(f)) {
		free(table);
		return -ENOMEM;
	}
	/* A map of the path alone, never listed: its size is the path's. */
	r = umpath_map_new(d->ctx, "add-path-probe", table, 0, why, sizeof(why), &probe);
	free(table);
	if (r < 0) {
		const char *detail = umpath_error_detail();

		snprintf(err, errlen, "%s%s%s", why, *detail ? ": " : "", detail);
		return r;
	}
	size = umpath_map_size(probe);
	bs = umpath_map_block_size(probe);
	umpath_map_free(probe);
	if (size != want) {
		snprintf(err, errlen, "%s has %llu bytes, the map %llu: all paths of a map have "
			 "its size", path, (unsigned long long)size, (unsigned long long)want);
		return -EINVAL;
	}
	if (bs != want_bs) {
		snprintf(err, errlen, "%s has %u-byte logical blocks, the map %u-byte ones",
			 path, (unsigned)bs, (unsigned)want_bs);
		return -EINVAL;
	}
	return 0;
}

/* ---- show status, show daemon --------------------------------------------- */

/* multipathd's checker states (checkers.c checker_state_name), in its
 * order, and the checker view's words that count as each. */
static const struct {
	const char *name;
	const char *view;
} chk_states[] = {
	{ "wild", "unsupported" },
	{ "unchecked", "unchecked" },
	{ "down", "faulty" },
	{ "up", "ready" },
	{ "pending", "pending" },
	{ "delayed", "held" },
};
#define NR_CHK_STATES (sizeof(chk_states) / sizeof(chk_states[0]))

struct status_count {
	unsigned count[NR_CHK_STATES];
	unsigned paths, maps;
};

static int count_view(struct view *v, void *opaque)
{
	struct status_count *sc = opaque;

	sc->maps++;
	for (unsigned i = 0; i < v->npaths; i++) {
		sc->paths++;
		for (size_t k = 0; k < NR_CHK_STATES; k++) {
			if (!strcmp(v->paths[i].checker, chk_states[k].view)) {
				sc->count[k]++;
				break;
			}
		}
	}
	return 0;
}

int umd_show_status(struct umd *d, bool busy, FILE *out, char *err, size_t errlen)
{
	struct status_count sc = { .paths = 0 };
	int r = umd_for_views(d, NULL, count_view, &sc, err, errlen);

	if (r < 0)
		return r;
	fprintf(out, "path checker states:\n");
	for (size_t k = 0; k < NR_CHK_STATES; k++)
		if (sc.count[k])
			fprintf(out, "%-20s%u\n", chk_states[k].name, sc.count[k]);
	fprintf(out, "\npaths: %u\nmaps: %u\nbusy: %s\n", sc.paths, sc.maps,
		busy ? "True" : "False");
	return 0;
}

void umd_show_daemon(FILE *out, const char *state)
{
	fprintf(out, "pid %ld %s\n", (long)getpid(), state);
}
