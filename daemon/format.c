/* format.c - multipathd's `show paths format FMT` and `show maps format
 * FMT` (libmultipath/print.c): a format string of %X wildcards and plain
 * text, one line per path or map, a header line of the wildcards' names,
 * every wildcard's column as wide as its widest cell or its header.
 *
 * The wildcards are the subset of multipathd's that have a meaning here
 * (docs/umpath.8); an unknown one is refused with the list of those that
 * are known, where multipathd prints nothing for it.  Cells are filled
 * from the views of show.c (view.h); names and paths, which a client
 * chose, are escaped as show paths escapes them, and so is the plain text
 * of the format, so that no line can be broken or forged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "util.h"
#include "view.h"

/* multipathd caps a column's width at UCHAR_MAX: a longer cell overflows. */
#define FMT_MAX_WIDTH 255

/* A cell: its text into f, for path i of v (maps: i is unused). */
typedef void fmt_cell_fn(FILE *f, const struct view *v, unsigned i);

struct fmt_wildcard {
	char wc;
	const char *header;	/* multipathd's */
	fmt_cell_fn *cell;
};

/* ---- paths ---------------------------------------------------------------- */

static void p_map(FILE *f, const struct view *v, unsigned i)
{
	umd_put_path_word(f, v->m->name);
}

static void p_dev(FILE *f, const struct view *v, unsigned i)
{
	umd_put_path_word(f, v->paths[i].name);
}

static void p_dm_st(FILE *f, const struct view *v, unsigned i)
{
	fputs(v->paths[i].active ? "active" : "failed", f);
}

static void p_dev_st(FILE *f, const struct view *v, unsigned i)
{
	fputs("running", f);	/* as show topology: no sysfs state here */
}

/* The checker's state in multipathd's words (print.c snprint_chk_state):
 * held (flap damping) is its "delayed", not checked its "undef". */
static void p_chk_st(FILE *f, const struct view *v, unsigned i)
{
	static const struct { const char *from, *to; } words[] = {
		{ "ready", "ready" }, { "faulty", "faulty" }, { "pending", "i/o pending" },
		{ "held", "delayed" },
	};
	const char *s = v->paths[i].checker;

	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		if (!strcmp(s, words[k].from)) {
			fputs(words[k].to, f);
			return;
		}
	}
	fputs("undef", f);
}

static void p_checker(FILE *f, const struct view *v, unsigned i)
{
	fputs(v->paths[i].checker_name, f);
}

/* The prio its prioritizer measured (umpath.conf's prio), else its
 * group's as show topology derives it. */
static void p_pri(FILE *f, const struct view *v, unsigned i)
{
	unsigned g = v->paths[i].group;

	if (v->paths[i].has_prio)
		fprintf(f, "%u", v->paths[i].prio);
	else
		fprintf(f, "%u", g ? umd_group_prio(v, g - 1) : 0);
}

static void p_size(FILE *f, const struct view *v, unsigned i)
{
	char size[32];

	/* Every path of a map has the map's size. */
	umd_fmt_size(size, sizeof(size), v->info.size);
	fputs(size, f);
}

static void p_failures(FILE *f, const struct view *v, unsigned i)
{
	fprintf(f, "%u", v->paths[i].fail_count);
}

static const struct fmt_wildcard path_wildcards[] = {
	{ 'w', "uuid", p_map },
	{ 'd', "dev", p_dev },
	{ 'D', "dev_t", p_dev },
	{ 't', "dm_st", p_dm_st },
	{ 'o', "dev_st", p_dev_st },
	{ 'T', "chk_st", p_chk_st },
	{ 'c', "checker", p_checker },
	{ 'p', "pri", p_pri },
	{ 'S', "size", p_size },
	{ 'm', "multipath", p_map },
	{ '0', "failures", p_failures },
};

/* ---- maps ----------------------------------------------------------------- */

static void m_sysfs(FILE *f, const struct view *v, unsigned i)
{
	int dev = umd_map_ublk_dev(v->m);

	if (dev >= 0)
		fprintf(f, "ublkb%d", dev);
	else
		fputs("undef", f);	/* multipathd's word for no device */
}

static void m_failback(FILE *f, const struct view *v, unsigned i)
{
	if (v->policy.failback == FAILBACK_DEFERRED)
		fprintf(f, "deferred:%u", v->policy.failback_delay_ms / 1000);
	else
		fputs(umd_failback_name(v->policy.failback), f);
}

/* print.c snprint_queueing: no_path_retry as multipathd says it. */
static void m_queueing(FILE *f, const struct view *v, unsigned i)
{
	int npr = v->policy.no_path_retry;

	if (npr == NO_PATH_RETRY_FAIL)
		fputs("off", f);
	else if (npr == NO_PATH_RETRY_QUEUE)
		fputs("on", f);
	else if (v->info.nr_valid_paths)
		fprintf(f, "%d chk", npr);
	else
		fputs(v->info.queue_if_no_path ? "on" : "off", f);
}

static void m_paths(FILE *f, const struct view *v, unsigned i)
{
	fprintf(f, "%u", v->info.nr_valid_paths);	/* multipathd: active ones */
}

static void m_dm_st(FILE *f, const struct view *v, unsigned i)
{
	fputs(v->info.suspended ? "suspend" : "active", f);
}

static void m_write_prot(FILE *f, const struct view *v, unsigned i)
{
	fputs("rw", f);
}

static void m_size(FILE *f, const struct view *v, unsigned i)
{
	char size[32];

	umd_fmt_size(size, sizeof(size), v->info.size);
	fputs(size, f);
}

static void m_features(FILE *f, const struct view *v, unsigned i)
{
	fputs(v->features, f);
}

static void m_hwhandler(FILE *f, const struct view *v, unsigned i)
{
	fputs(v->hwhandler, f);
}

/* multipathd's path_faults: failures of the map's paths. */
static void m_path_faults(FILE *f, const struct view *v, unsigned i)
{
	unsigned long long n = 0;

	for (unsigned k = 0; k < v->npaths; k++)
		n += v->paths[k].fail_count;
	fprintf(f, "%llu", n);
}

static const struct fmt_wildcard map_wildcards[] = {
	{ 'n', "name", p_map },
	{ 'w', "uuid", p_map },
	{ 'd', "sysfs", m_sysfs },
	{ 'F', "failback", m_failback },
	{ 'Q', "queueing", m_queueing },
	{ 'N', "paths", m_paths },
	{ 'r', "write_prot", m_write_prot },
	{ 't', "dm-st", m_dm_st },
	{ 'S', "size", m_size },
	{ 'f', "features", m_features },
	{ 'h', "hwhandler", m_hwhandler },
	{ '0', "path_faults", m_path_faults },
};

/* ---- the table ------------------------------------------------------------ */

struct fmt_run {
	const struct fmt_wildcard *wcs;
	size_t nwcs;
	const char *fmt;
	size_t nfields;		/* wildcards in fmt */
	const struct fmt_wildcard **fields;
	size_t *width;		/* per field */
	char **cells;		/* nrows * nfields */
	size_t ncells, cap, nrows;
	bool paths;		/* a row per path, else per map */
	bool pad;		/* columns aligned; raw: not (multipathd) */
	int err;
};

static const struct fmt_wildcard *lookup(const struct fmt_wildcard *wcs, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		if (wcs[i].wc == c)
			return &wcs[i];
	return NULL;
}

static void list_wildcards(char *err, size_t errlen, const struct fmt_wildcard *wcs, size_t n,
			   const char *what, char bad)
{
	size_t off;

	if (bad)
		off = (size_t)snprintf(err, errlen, "unknown %s wildcard '%%%c'; supported:", what,
				       bad);
	else
		off = (size_t)snprintf(err, errlen, "the format ends in a lone '%%'; supported %s "
				       "wildcards:", what);
	for (size_t i = 0; i < n && off < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, " %%%c (%s)", wcs[i].wc,
					wcs[i].header);
	um_sanitize(err);
}

/* Check fmt and find its fields: 0, or -EINVAL with err listing the
 * supported wildcards. */
static int parse(struct fmt_run *run, char *err, size_t errlen, const char *what)
{
	size_t n = 0;

	for (const char *p = strchr(run->fmt, '%'); p; p = strchr(p + 1, '%')) {
		const struct fmt_wildcard *w = p[1] ? lookup(run->wcs, run->nwcs, p[1]) : NULL;

		if (!w) {
			list_wildcards(err, errlen, run->wcs, run->nwcs, what, p[1]);
			return -EINVAL;
		}
		run->nfields++;
		p++;
	}
	run->fields = calloc(run->nfields ? run->nfields : 1, sizeof(*run->fields));
	run->width = calloc(run->nfields ? run->nfields : 1, sizeof(*run->width));
	if (!run->fields || !run->width)
		return -ENOMEM;
	for (const char *p = strchr(run->fmt, '%'); p; p = strchr(p + 2, '%')) {
		run->fields[n] = lookup(run->wcs, run->nwcs, p[1]);
		run->width[n] = strlen(run->fields[n]->header);
		n++;
	}
	return 0;
}

/* One row's cells, each column widened to fit. */
static int add_row(struct fmt_run *run, const struct view *v, unsigned i)
{
	run->nrows++;
	for (size_t k = 0; k < run->nfields; k++) {
		char *s = NULL, **nc;
		size_t len = 0;
		FILE *f;

		nc = um_grow(run->cells, &run->cap, run->ncells + 1, sizeof(*run->cells));
		if (!nc)
			return -ENOMEM;
		run->cells = nc;
		f = open_memstream(&s, &len);
		if (!f)
			return -ENOMEM;
		run->fields[k]->cell(f, v, i);
		if (fclose(f)) {
			free(s);
			return -ENOMEM;
		}
		um_sanitize(s);
		run->cells[run->ncells++] = s;
		if (len > FMT_MAX_WIDTH)
			len = FMT_MAX_WIDTH;
		if (len > run->width[k])
			run->width[k] = len;
	}
	return 0;
}

static int rows_of(struct view *v, void *opaque)
{
	struct fmt_run *run = opaque;

	if (!run->paths)
		return add_row(run, v, 0);
	for (unsigned i = 0; i < v->npaths; i++) {
		int r = add_row(run, v, i);

		if (r < 0)
			return r;
	}
	return 0;
}

/* The format's plain text between wildcards, made safe. */
static void put_text(FILE *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		um_fput_clean(out, (char[2]){ s[i], '\0' });
}

/* One line: the format with each wildcard replaced by cell(k), padded to
 * its column. */
static void put_line(FILE *out, const struct fmt_run *run, const char *const *cell)
{
	const char *s = run->fmt;
	size_t k = 0;

	for (const char *p = strchr(s, '%'); p; p = strchr(s, '%'), k++) {
		size_t len = strlen(cell[k]);

		put_text(out, s, (size_t)(p - s));
		fputs(cell[k], out);
		if (run->pad && len < run->width[k])
			fprintf(out, "%*s", (int)(run->width[k] - len), "");
		s = p + 2;
	}
	put_text(out, s, strlen(s));
	fputc('\n', out);
}

static int show_format(struct umd *d, bool paths, bool header, const char *fmt, FILE *out,
		       char *err, size_t errlen)
{
	struct fmt_run run = {
		.wcs = paths ? path_wildcards : map_wildcards,
		.nwcs = paths ? sizeof(path_wildcards) / sizeof(path_wildcards[0])
			      : sizeof(map_wildcards) / sizeof(map_wildcards[0]),
		.fmt = fmt, .paths = paths, .pad = header,
	};
	int r = parse(&run, err, errlen, paths ? "path" : "map");

	if (!r)
		r = umd_for_views(d, NULL, rows_of, &run, err, errlen);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	/* As multipathd: no rows, no header either. */
	if (!r && run.nrows && header) {
		const char **head = calloc(run.nfields ? run.nfields : 1, sizeof(*head));

		if (!head) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
		} else {
			for (size_t k = 0; k < run.nfields; k++)
				head[k] = run.fields[k]->header;
			put_line(out, &run, head);
		}
		free(head);
	}
	/* A format without wildcards has rows but no cells. */
	for (size_t i = 0; !r && i < run.nrows; i++)
		put_line(out, &run, run.nfields ? (const char *const *)run.cells + i * run.nfields
						: NULL);
	for (size_t i = 0; i < run.ncells; i++)
		free(run.cells[i]);
	free(run.cells);
	free(run.fields);
	free(run.width);
	return r;
}

int umd_show_paths_format(struct umd *d, bool header, const char *fmt, FILE *out, char *err,
			  size_t errlen)
{
	return show_format(d, true, header, fmt, out, err, errlen);
}

int umd_show_maps_format(struct umd *d, bool header, const char *fmt, FILE *out, char *err,
			 size_t errlen)
{
	return show_format(d, false, header, fmt, out, err, errlen);
}
