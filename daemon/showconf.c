/* showconf.c - `umpath show config`: the configuration umpathd runs with,
 * in the configuration file's language (umpath.conf(5)), so that it can be
 * read back: a defaults section with every policy keyword's value, then a
 * multipath section per map whose policy differs where it does, its paths
 * grouped as its live table groups them (group_by_prio, the first group
 * highest), its selector, features and hardware handler.  What the file's
 * language cannot say (a group with a selector of its own, per-path
 * selector words other than the repeat count, a path with a space, a map
 * of another target) is said in a comment instead.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "showconf.h"
#include "util.h"
#include "view.h"

/* Seconds as the file writes them: milliseconds without trailing zeros. */
static void put_seconds(FILE *f, unsigned ms)
{
	if (ms % 1000)
		fprintf(f, "%u.%03u", ms / 1000, ms % 1000);
	else
		fprintf(f, "%u", ms / 1000);
}

/* Policy keywords in the order that reads back to the same policy
 * (polling_interval moves max_polling_interval). */
enum pol_key {
	PK_POLLING, PK_MAX_POLLING, PK_CHECKER_TIMEOUT, PK_FAILBACK, PK_NO_PATH_RETRY,
	PK_FLAP_THRESHOLD, PK_FLAP_WINDOW, PK_FLAP_RECOVERY, PK_CHECKER, PK_RESKEY,
	PK_FENCE_COMMAND, PK_FENCE_TIMEOUT, PK_READ_HEDGE, PK_COUNT,
};

static const char *const pol_names[PK_COUNT] = {
	"polling_interval", "max_polling_interval", "checker_timeout", "failback",
	"no_path_retry", "flap_threshold", "flap_window", "flap_recovery", "path_checker",
	"reservation_key", "fence_command", "fence_timeout", "read_hedge",
};

/* One keyword's value as text, malloc'd; NULL: not written (the default
 * that has no word, or no memory). */
static char *pol_value(const struct umd_policy *p, enum pol_key k)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	switch (k) {
	case PK_POLLING: put_seconds(f, p->polling_interval_ms); break;
	case PK_MAX_POLLING: put_seconds(f, p->max_polling_interval_ms); break;
	case PK_CHECKER_TIMEOUT: put_seconds(f, p->checker_timeout_ms); break;
	case PK_FAILBACK:
		if (p->failback == FAILBACK_DEFERRED)
			put_seconds(f, p->failback_delay_ms);
		else
			fputs(umd_failback_name(p->failback), f);
		break;
	case PK_NO_PATH_RETRY:
		if (p->no_path_retry == NO_PATH_RETRY_QUEUE)
			fputs("queue", f);
		else if (p->no_path_retry == NO_PATH_RETRY_FAIL)
			fputs("fail", f);
		else
			fprintf(f, "%d", p->no_path_retry);
		break;
	case PK_FLAP_THRESHOLD: fprintf(f, "%u", p->flap_threshold); break;
	case PK_FLAP_WINDOW: put_seconds(f, p->flap_window_ms); break;
	case PK_FLAP_RECOVERY: put_seconds(f, p->flap_recovery_ms); break;
	case PK_CHECKER:
		/* The transport's own checker has no word: left unsaid. */
		if (!p->checker)
			fputs("none", f);
		else if (p->checker_kind != UMPATH_CHECKER_DEFAULT)
			fputs(umpath_checker_name(p->checker_kind), f);
		break;
	case PK_RESKEY:
		if (p->reservation_key)
			fprintf(f, "0x%" PRIx64, p->reservation_key);
		break;
	case PK_FENCE_COMMAND:
		/* Checked at parse: no control bytes; quoted, it keeps its
		 * spaces (a quote inside could not be read back). */
		if (p->fence_command && !strchr(p->fence_command, '"'))
			fprintf(f, "\"%s\"", p->fence_command);
		break;
	case PK_FENCE_TIMEOUT: put_seconds(f, p->fence_timeout_ms); break;
	case PK_READ_HEDGE:
		if (p->read_hedge_ms == UMPATH_READ_HEDGE_OFF)
			fputs("off", f);
		else if (p->read_hedge_ms == UMPATH_READ_HEDGE_AUTO)
			fputs("auto", f);
		else
			fprintf(f, "%d", p->read_hedge_ms);
		break;
	case PK_COUNT: break;
	}
	if (fclose(f))
		return NULL;
	if (!*s) {
		free(s);
		return NULL;
	}
	return s;
}

/* The keywords of p, each where it differs from base (every one without
 * base). */
static void put_policy(FILE *out, const struct umd_policy *p, const struct umd_policy *base,
		       const char *indent)
{
	for (int k = 0; k < PK_COUNT; k++) {
		char *v = pol_value(p, (enum pol_key)k);
		char *b = base ? pol_value(base, (enum pol_key)k) : NULL;

		if (v && (!b || strcmp(v, b)))
			fprintf(out, "%s%s %s\n", indent, pol_names[k], v);
		else if (!v && b)
			fprintf(out, "%s# %s: the transport's own\n", indent, pol_names[k]);
		free(v);
		free(b);
	}
}

/* A path as one word of the file: no space, quote or control byte. */
static bool file_word(const char *s)
{
	if (!*s || *s == '#' || *s == '!')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '"' || *s == '{' || *s == '}' || *s == 0x7f)
			return false;
	return true;
}

/* The features without queue_if_no_path, which no_path_retry decides. */
static void put_features(FILE *out, const char *features)
{
	char *copy = strdup(features), *save = NULL, *w;
	const char *words[64];
	unsigned n = 0;

	if (!copy)
		return;
	strtok_r(copy, " ", &save);	/* the count */
	while ((w = strtok_r(NULL, " ", &save)) && n < 64)
		if (strcmp(w, "queue_if_no_path"))
			words[n++] = w;
	fprintf(out, "\t\tfeatures \"%u", n);
	for (unsigned i = 0; i < n; i++)
		fprintf(out, " %s", words[i]);
	fputs("\"\n", out);
	free(copy);
}

struct conf_run {
	FILE *out;
	const struct umd_policy *defaults;
};

static int map_section(struct view *v, void *opaque)
{
	struct conf_run *run = opaque;
	FILE *out = run->out;
	const struct umpath_snapshot *s = v->snap;
	struct umd_policy pol = v->policy;
	int ublk = umd_map_ublk_dev(v->m);

	if (strcmp(s->target, "multipath")) {
		fprintf(out, "\t# map %s: a %s map, not shown (its table: umpath table %s)\n",
			v->m->name, s->target, v->m->name);
		return 0;
	}
	for (unsigned i = 0; i < s->nr_paths; i++) {
		if (!file_word(s->paths[i].path)) {
			fprintf(out, "\t# map %s: a path the file cannot name, not shown\n",
				v->m->name);
			return 0;
		}
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(s->paths[i].path, s->paths[j].path)) {
				fprintf(out, "\t# map %s: a path listed twice, not shown\n",
					v->m->name);
				return 0;
			}
		}
	}
	/* no_path_retry writes queue_if_no_path into the table: the table's
	 * word wins where the two disagree. */
	if (!s->queue_if_no_path && pol.no_path_retry == NO_PATH_RETRY_QUEUE)
		pol.no_path_retry = NO_PATH_RETRY_FAIL;
	fprintf(out, "\tmultipath {\n\t\talias %s\n", v->m->name);
	put_policy(out, &pol, run->defaults, "\t\t");
	fputs("\t\tpath_grouping_policy group_by_prio\n", out);
	if (s->nr_groups)
		fprintf(out, "\t\tpath_selector \"%s %s\"\n", s->groups[0].selector,
			s->groups[0].selector_args);
	put_features(out, s->features);
	fprintf(out, "\t\thardware_handler \"%s\"\n", s->hw_handler);
	if (ublk >= 0 || v->m->ublk_id >= 0)
		fprintf(out, "\t\tublk_id %d\n", ublk >= 0 ? ublk : v->m->ublk_id);
	else if (v->m->ublk)
		fputs("\t\tublk yes\n", out);
	for (unsigned g = 0; g < s->nr_groups; g++) {
		const struct umpath_snapshot_group *sg = &s->groups[g];

		if (strcmp(sg->selector, s->groups[0].selector) ||
		    strcmp(sg->selector_args, s->groups[0].selector_args))
			fprintf(out, "\t\t# group %u has selector \"%s %s\": here the first group's\n",
				sg->num, sg->selector, sg->selector_args);
		for (unsigned i = 0; i < sg->nr_paths; i++) {
			const struct umpath_snapshot_path *p = &sg->paths[i];

			if (strcmp(p->table_args, "1"))
				fprintf(out, "\t\t# its selector words \"%s\": here \"1\"\n",
					p->table_args);
			/* Groups in table order, highest prio first. */
			fprintf(out, "\t\tpath %s prio %u\n", p->path, s->nr_groups - g);
		}
	}
	fputs("\t}\n", out);
	return 0;
}

int umd_show_config(struct umd *d, FILE *out, char *err, size_t errlen)
{
	struct umd_policy defaults;
	struct conf_run run = { .out = out, .defaults = &defaults };
	int r;

	pthread_mutex_lock(&d->lock);
	defaults = d->defaults;
	pthread_mutex_unlock(&d->lock);
	fputs("defaults {\n", out);
	put_policy(out, &defaults, NULL, "\t");
	fprintf(out, "\tio_timeout ");
	put_seconds(out, d->io_timeout_ms);
	fputs("\n}\nmultipaths {\n", out);
	r = umd_for_views(d, NULL, map_section, &run, err, errlen);
	fputs("}\n", out);
	return r;
}
