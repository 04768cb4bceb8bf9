/* config.c - umpathd's configuration file (docs/umpath.conf.5): a
 * multipath.conf-like defaults section and one multipath section per map,
 * read at start and again by `umpath reconfigure`.
 *
 * Reading and applying are apart: a file is parsed and every map's table
 * assembled (as multipathd's assemble_map does) before anything of the
 * daemon is touched, so that a file with an error changes nothing.
 *
 * The file applied last, and the maps that came from it, are remembered
 * here rather than in struct umd: there is one daemon per process, and no
 * other part needs them.  cfg_state.lock serialises apply, reconfigure and
 * fini; it is taken before d->lock and never inside it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "prio.h"
#include "util.h"

#define CFG_MAX_SIZE (16u << 20)	/* a larger file is surely not ours */
#define CFG_MAX_PRIO 1000000u
#define CFG_MAX_ERR 512

enum cfg_pgpolicy {
	PGP_FAILOVER,		/* one group per path */
	PGP_MULTIBUS,		/* every path in one group */
	PGP_GROUP_BY_PRIO,	/* one group per distinct prio */
};

static const char *const pgpolicy_names[] = {
	[PGP_FAILOVER] = "failover",
	[PGP_MULTIBUS] = "multibus",
	[PGP_GROUP_BY_PRIO] = "group_by_prio",
};

/* The built-in values of the table keywords: multipathd's. */
#define DEF_PGPOLICY PGP_FAILOVER
#define DEF_SELECTOR "service-time 0"
#define DEF_FEATURES "0"
#define DEF_HWHANDLER "0"

enum cfg_kind {
	KW_POLICY,		/* a struct umd_policy keyword: umd_policy_set */
	KW_PGPOLICY,
	KW_SELECTOR,
	KW_FEATURES,
	KW_HWHANDLER,
	KW_IO_TIMEOUT,
	KW_NBD,			/* an NBD export limit: umd_nbd_opt_set */
	KW_METRICS,		/* the Prometheus endpoint (metrics.h) */
	KW_ALIAS,
	KW_PATHS,
	KW_PATH,
	KW_UBLK,		/* the map as /dev/ublkbN too (exports/ublk.c) */
	KW_UBLK_ID,
	KW_TARGET,		/* the map's target type (multipath, multipath-v0) */
	KW_V0_PATH_ARGS,	/* multipath-v0: the words after each path's priority */
	KW_PRIO,		/* the prioritizer (prio.h) */
	KW_PRIO_ARGS,
};

#define IN_DEFAULTS 1u
#define IN_MAP 2u

static const struct cfg_keyword {
	const char *name;
	enum cfg_kind kind;
	unsigned where;
} keywords[] = {
	{ "polling_interval",     KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "max_polling_interval", KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "checker_timeout",      KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "failback",             KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "no_path_retry",        KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "flap_threshold",       KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "flap_window",          KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "flap_recovery",        KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "path_checker",         KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "reservation_key",      KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "fence_command",        KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "fence_timeout",        KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "read_hedge",           KW_POLICY,     IN_DEFAULTS | IN_MAP },
	{ "path_grouping_policy", KW_PGPOLICY,   IN_DEFAULTS | IN_MAP },
	{ "path_selector",        KW_SELECTOR,   IN_DEFAULTS | IN_MAP },
	{ "features",             KW_FEATURES,   IN_DEFAULTS | IN_MAP },
	{ "hardware_handler",     KW_HWHANDLER,  IN_DEFAULTS | IN_MAP },
	{ "prio",                 KW_PRIO,       IN_DEFAULTS | IN_MAP },
	{ "prio_args",            KW_PRIO_ARGS,  IN_DEFAULTS | IN_MAP },
	{ "io_timeout",           KW_IO_TIMEOUT, IN_DEFAULTS },
	{ "nbd_max_connections",  KW_NBD,        IN_DEFAULTS },
	{ "nbd_conn_budget",      KW_NBD,        IN_DEFAULTS },
	{ "nbd_handshake_timeout", KW_NBD,       IN_DEFAULTS },
	{ "nbd_allow",            KW_NBD,        IN_DEFAULTS },
	{ "nbd_tls",              KW_NBD,        IN_DEFAULTS },
	{ "nbd_tls_psk",          KW_NBD,        IN_DEFAULTS },
	{ "nbd_tls_creds",        KW_NBD,        IN_DEFAULTS },
	{ "metrics",              KW_METRICS,    IN_DEFAULTS },
	{ "alias",                KW_ALIAS,      IN_MAP },
	{ "paths",                KW_PATHS,      IN_MAP },
	{ "path",                 KW_PATH,       IN_MAP },
	{ "ublk",                 KW_UBLK,       IN_MAP },
	{ "ublk_id",              KW_UBLK_ID,    IN_MAP },
	{ "target",               KW_TARGET,     IN_MAP },
	{ "v0_path_args",         KW_V0_PATH_ARGS, IN_MAP },
};
#define NR_KEYWORDS (sizeof(keywords) / sizeof(keywords[0]))

/* The library's selectors all take one per-path argument, the repeat
 * count (multipathd's rr_min_io_rq, 1); their names come from the library
 * (umpath_selector_name). */

/* A policy keyword as written, replayed over the defaults' policy: a map's
 * policy is the defaults' with its own keywords on top, whatever the order
 * of the sections in the file. */
struct cfg_entry {
	const char *key;	/* keywords[].name */
	char *value;
};

/* What a defaults or multipath section says; NULL or unset: not said. */
struct cfg_section {
	struct cfg_entry entries[NR_KEYWORDS];
	unsigned nentries;
	bool pgpolicy_set;
	enum cfg_pgpolicy pgpolicy;
	char *selector;
	char *features;
	char *hwhandler;
	const struct umd_prioritizer *prio;
	char *prio_args;
	unsigned seen[NR_KEYWORDS];	/* line of each keyword, to refuse repeats */
};

struct cfg_path {
	char *path;
	unsigned configured;		/* its line's "prio N", 1 if not given */
	unsigned prio;			/* the prioritizer's (cfg_resolve) */
};

struct cfg_map {
	char *alias;
	unsigned line;			/* of its "multipath {" */
	struct cfg_section s;
	struct cfg_path *paths;
	unsigned npaths;
	unsigned cap;
	struct umd_map_exports ex;	/* ublk, ublk_id */
	char *target;			/* NULL: multipath */
	char *v0_args;			/* NULL: "N 0 0 0" */
	/* Resolved (cfg_resolve): */
	char *table;
	struct umd_policy policy;
};

struct umd_config {
	char *path;
	bool explicit;			/* --config: a missing file is an error */
	unsigned io_timeout_ms;		/* 0: not set */
	struct cfg_entry nbd[7];	/* the nbd_* keywords said */
	unsigned nnbd;
	char *metrics;			/* tcp:HOST:PORT or unix:PATH; NULL: not said */
	struct cfg_section defaults;
	struct cfg_map *maps;
	unsigned nmaps;
	unsigned cap;
	struct umd_policy policy;	/* the defaults', resolved */
};

/* A map the configuration made: reconfigure may reload or remove it. */
struct cfg_owned {
	char *name;
	char *table;			/* as last applied */
};

static struct {
	pthread_mutex_t lock;
	struct umd *d;			/* NULL until umd_config_apply */
	struct umd_config *cfg;		/* the file applied last */
	struct umd_policy base;		/* d->defaults before the file: built-ins and --policy */
	unsigned start_io_timeout_ms;	/* the file's io_timeout at start */
	struct cfg_owned *owned;
	unsigned nowned;
} cfg_state = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- helpers ------------------------------------------------------------ */

static int cfg_errf(char *err, size_t errlen, const char *file, unsigned line,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "FILE:LINE: reason" (or "FILE: reason" for line 0); -EINVAL. */
static int cfg_errf(char *err, size_t errlen, const char *file, unsigned line,
		    const char *fmt, ...)
{
	char reason[CFG_MAX_ERR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s:%u: %s", file, line, reason);
	else
		snprintf(err, errlen, "%s: %s", file, reason);
	return -EINVAL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Map names become NBD export names and FUSE file names; path strings
 * become table words.  Neither may hold white space or control bytes. */
static bool valid_word(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (!len || len > max)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static bool valid_alias(const char *s)
{
	return valid_word(s, 127) && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

/* A whole unsigned decimal number, at most max. */
static bool parse_uint(const char *s, unsigned max, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* "N word..." with exactly N words: features and hardware_handler. */
static bool counted_words(const char *s)
{
	char *copy = strdup(s), *save = NULL, *w;
	unsigned n, count = 0;
	bool ok;

	if (!copy)
		return false;
	w = strtok_r(copy, " ", &save);
	ok = w && parse_uint(w, 1000, &n);
	while (ok && (w = strtok_r(NULL, " ", &save)))
		count++;
	free(copy);
	return ok && count == n;
}

static bool policy_equal(const struct umd_policy *a, const struct umd_policy *b)
{
	return a->polling_interval_ms == b->polling_interval_ms &&
	       a->max_polling_interval_ms == b->max_polling_interval_ms &&
	       a->checker_timeout_ms == b->checker_timeout_ms &&
	       a->failback == b->failback &&
	       (a->failback != FAILBACK_DEFERRED || a->failback_delay_ms == b->failback_delay_ms) &&
	       a->no_path_retry == b->no_path_retry &&
	       a->flap_threshold == b->flap_threshold &&
	       a->flap_window_ms == b->flap_window_ms &&
	       a->flap_recovery_ms == b->flap_recovery_ms &&
	       a->checker == b->checker &&
	       a->checker_kind == b->checker_kind &&
	       a->reservation_key == b->reservation_key &&
	       a->fence_command == b->fence_command &&	/* interned */
	       a->fence_timeout_ms == b->fence_timeout_ms &&
	       a->read_hedge_ms == b->read_hedge_ms;
}

/* ---- freeing -------------------------------------------------------------- */

static void section_free(struct cfg_section *s)
{
	for (unsigned i = 0; i < s->nentries; i++)
		free(s->entries[i].value);
	free(s->selector);
	free(s->features);
	free(s->hwhandler);
	free(s->prio_args);
}

void umd_config_free(struct umd_config *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < cfg->nmaps; i++) {
		struct cfg_map *cm = &cfg->maps[i];

		for (unsigned j = 0; j < cm->npaths; j++)
			free(cm->paths[j].path);
		free(cm->paths);
		free(cm->alias);
		free(cm->table);
		free(cm->target);
		free(cm->v0_args);
		section_free(&cm->s);
	}
	free(cfg->maps);
	for (unsigned i = 0; i < cfg->nnbd; i++)
		free(cfg->nbd[i].value);
	free(cfg->metrics);
	section_free(&cfg->defaults);
	free(cfg->path);
	free(cfg);
}

/* ---- parsing ---------------------------------------------------------- */

struct cfg_token {
	char *text;
	bool quoted;	/* a quoted "{" is a word, not a brace */
};

struct cfg_parser {
	struct umd_config *cfg;
	const char *file;
	char *err;
	size_t errlen;
	unsigned line;
	/* The sections open: 0 top level, then "defaults", "multipaths",
	 * "multipath". */
	unsigned depth;
	const char *sect[3];
	unsigned sect_line[3];
	struct cfg_map *map;	/* the multipath section open, if any */
	unsigned top_seen[2];	/* lines of "defaults {" and "multipaths {" */
};

static bool is_brace(const struct cfg_token *t, char c)
{
	return !t->quoted && t->text[0] == c && !t->text[1];
}

static int push_token(struct cfg_token **toks, unsigned *cap, unsigned *n, char *text,
		      bool quoted)
{
	if (*n == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 16;
		struct cfg_token *nt = realloc(*toks, ncap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		*toks = nt;
		*cap = ncap;
	}
	(*toks)[(*n)++] = (struct cfg_token){ text, quoted };
	return 0;
}

/* Split one line (NUL-terminated, modified in place) into words: white
 * space separates them, "..." quotes one, an unquoted { or } is a word of
 * its own, and an unquoted word starting with # or ! starts a comment. */
static int tokenize(struct cfg_parser *p, char *s, struct cfg_token **toks, unsigned *cap,
		    unsigned *ret_n)
{
	unsigned n = 0;
	int r = 0;

	while (!r) {
		while (is_space(*s))
			s++;
		if (!*s || *s == '#' || *s == '!')
			break;
		if (*s == '"') {
			char *end = strchr(s + 1, '"');

			if (!end)
				return cfg_errf(p->err, p->errlen, p->file, p->line,
						"unterminated quoted string");
			*end = '\0';
			r = push_token(toks, cap, &n, s + 1, true);
			s = end + 1;
			if (*s && !is_space(*s) && *s != '{' && *s != '}')
				return cfg_errf(p->err, p->errlen, p->file, p->line,
						"no space after a quoted string");
		} else if (*s == '{' || *s == '}') {
			/* Static strings: the line's byte may be overwritten
			 * when it ends the word before it. */
			r = push_token(toks, cap, &n, *s == '{' ? (char *)"{" : (char *)"}", false);
			s++;
		} else {
			char *word = s, stop;

			while (*s && !is_space(*s) && *s != '{' && *s != '}' && *s != '"')
				s++;
			if (*s == '"')
				return cfg_errf(p->err, p->errlen, p->file, p->line,
						"a quote inside a word");
			stop = *s;
			*s = '\0';
			r = push_token(toks, cap, &n, word, false);
			if (!r && (stop == '{' || stop == '}'))
				r = push_token(toks, cap, &n, stop == '{' ? (char *)"{" : (char *)"}",
					       false);
			if (stop)
				s++;
		}
	}
	*ret_n = n;
	return r;
}

static const struct cfg_keyword *find_keyword(const char *name, unsigned *ret_idx)
{
	for (unsigned i = 0; i < NR_KEYWORDS; i++) {
		if (!strcmp(keywords[i].name, name)) {
			*ret_idx = i;
			return &keywords[i];
		}
	}
	return NULL;
}

/* The values of a string keyword, its words joined by single spaces (a
 * quoted value may hold tabs or runs of spaces: the table wants one). */
static char *join_values(struct cfg_token *v, unsigned n)
{
	size_t len = 1;
	char *s, *q;

	for (unsigned i = 0; i < n; i++)
		len += strlen(v[i].text) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	q = s;
	for (unsigned i = 0; i < n; i++) {
		for (const char *c = v[i].text; *c; c++) {
			if (!is_space(*c))
				*q++ = *c;
			else if (q > s && q[-1] != ' ')
				*q++ = ' ';
		}
		if (q > s && q[-1] != ' ')
			*q++ = ' ';
	}
	if (q > s && q[-1] == ' ')
		q--;
	*q = '\0';
	return s;
}

/* "round-robin 0" and the like: a known selector and its counted group
 * arguments; a bare name gets " 0". */
static int check_selector(struct cfg_parser *p, char **sel)
{
	char *copy = strdup(*sel), *save = NULL, *name, *w;
	unsigned n = 0, count = 0;
	bool known = false, counted = true;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	name = strtok_r(copy, " ", &save);
	for (unsigned i = 0; name && umpath_selector_name(i); i++)
		known |= !strcmp(name, umpath_selector_name(i));
	if (!known) {
		char names[256] = "";
		size_t len = 0;

		/* "a, b, c or d" */
		for (unsigned i = 0; umpath_selector_name(i) && len < sizeof(names); i++)
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
						!i ? "" : umpath_selector_name(i + 1) ? ", " : " or ",
						umpath_selector_name(i));
		r = cfg_errf(p->err, p->errlen, p->file, p->line,
			     "path_selector: unknown selector '%s' (expected %s)",
			     name ? name : "", names);
		goto out;
	}
	w = strtok_r(NULL, " ", &save);
	if (w) {
		counted = parse_uint(w, 1000, &n);
		while (counted && strtok_r(NULL, " ", &save))
			count++;
	}
	if (!counted || count != n) {
		r = cfg_errf(p->err, p->errlen, p->file, p->line,
			     "path_selector: expected a selector, the number of its arguments "
			     "and the arguments, e.g. \"service-time 0\"");
		goto out;
	}
	if (!w) {
		char *full = malloc(strlen(*sel) + 3);

		if (!full) {
			r = -ENOMEM;
			goto out;
		}
		sprintf(full, "%s 0", *sel);
		free(*sel);
		*sel = full;
	}
out:
	free(copy);
	return r;
}

static int add_path(struct cfg_parser *p, const char *path, unsigned prio)
{
	struct cfg_map *cm = p->map;

	if (!valid_word(path, 4096))
		return cfg_errf(p->err, p->errlen, p->file, p->line,
				"path '%s': empty, or contains white space or control characters",
				path);
	for (unsigned i = 0; i < cm->npaths; i++)
		if (!strcmp(cm->paths[i].path, path))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"path '%s' is listed twice", path);
	if (cm->npaths == cm->cap) {
		unsigned ncap = cm->cap ? cm->cap * 2 : 4;
		struct cfg_path *np = realloc(cm->paths, ncap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		cm->paths = np;
		cm->cap = ncap;
	}
	cm->paths[cm->npaths].path = strdup(path);
	if (!cm->paths[cm->npaths].path)
		return -ENOMEM;
	cm->paths[cm->npaths].configured = prio;
	cm->paths[cm->npaths++].prio = prio;
	return 0;
}

/* One "keyword value..." line inside defaults or multipath. */
static int keyword_line(struct cfg_parser *p, struct cfg_token *t, unsigned n)
{
	bool in_map = p->map != NULL;
	struct cfg_section *s = in_map ? &p->map->s : &p->cfg->defaults;
	const char *name = t[0].text;
	struct cfg_token *v = t + 1;
	unsigned nv = n - 1, idx;
	const struct cfg_keyword *kw = find_keyword(name, &idx);
	char *str;
	int r;

	if (!kw || t[0].quoted)
		return cfg_errf(p->err, p->errlen, p->file, p->line, "unknown keyword '%s'", name);
	if (!(kw->where & (in_map ? IN_MAP : IN_DEFAULTS)))
		return cfg_errf(p->err, p->errlen, p->file, p->line,
				"%s: not allowed in a %s section", name,
				in_map ? "multipath" : "defaults");
	if (kw->kind != KW_PATH && kw->kind != KW_PATHS) {
		if (s->seen[idx])
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"%s: given twice in this section (first on line %u)",
					name, s->seen[idx]);
		s->seen[idx] = p->line;
	}
	if (!nv)
		return cfg_errf(p->err, p->errlen, p->file, p->line, "%s: missing value", name);

	switch (kw->kind) {
	case KW_POLICY: {
		struct umd_policy scratch;
		char why[CFG_MAX_ERR];

		if (nv != 1)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"%s: expected one value", name);
		/* Checked now, for the line number; applied at resolve. */
		umd_policy_defaults(&scratch);
		why[0] = '\0';
		if (umd_policy_set(&scratch, name, v[0].text, why, sizeof(why)) < 0)
			return cfg_errf(p->err, p->errlen, p->file, p->line, "%s",
					*why ? why : "invalid value");
		str = strdup(v[0].text);
		if (!str)
			return -ENOMEM;
		s->entries[s->nentries].key = kw->name;
		s->entries[s->nentries++].value = str;
		return 0;
	}
	case KW_PGPOLICY:
		if (nv == 1) {
			for (unsigned i = 0; i < sizeof(pgpolicy_names) / sizeof(pgpolicy_names[0]); i++) {
				if (!strcmp(v[0].text, pgpolicy_names[i])) {
					s->pgpolicy = (enum cfg_pgpolicy)i;
					s->pgpolicy_set = true;
					return 0;
				}
			}
		}
		return cfg_errf(p->err, p->errlen, p->file, p->line,
				"path_grouping_policy: expected failover, multibus or group_by_prio");
	case KW_SELECTOR:
		s->selector = join_values(v, nv);
		if (!s->selector)
			return -ENOMEM;
		return check_selector(p, &s->selector);
	case KW_FEATURES:
		s->features = join_values(v, nv);
		if (!s->features)
			return -ENOMEM;
		if (!counted_words(s->features))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"features: expected a count and that many words, "
					"e.g. \"1 queue_if_no_path\"");
		return 0;
	case KW_HWHANDLER:
		s->hwhandler = join_values(v, nv);
		if (!s->hwhandler)
			return -ENOMEM;
		if (!counted_words(s->hwhandler))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"hardware_handler: expected a count and that many words, "
					"e.g. \"0\" or \"1 alua\"");
		return 0;
	case KW_PRIO:
		s->prio = nv == 1 ? umd_prio_find(v[0].text) : NULL;
		if (!s->prio)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"prio: expected %s (alua: umpath's transports do not "
					"send REPORT TARGET PORT GROUPS)", umd_prio_names());
		return 0;
	case KW_PRIO_ARGS:
		/* Checked against the map's prio once the file is read. */
		s->prio_args = join_values(v, nv);
		return s->prio_args ? 0 : -ENOMEM;
	case KW_IO_TIMEOUT: {
		char *end;
		double sec;

		errno = 0;
		sec = nv == 1 ? strtod(v[0].text, &end) : NAN;
		if (nv != 1 || errno || end == v[0].text || *end || !(sec > 0) || sec > 3600)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"io_timeout: expected a number of seconds in (0, 3600]");
		p->cfg->io_timeout_ms = (unsigned)(sec * 1000 + 0.5);
		if (!p->cfg->io_timeout_ms)
			p->cfg->io_timeout_ms = 1;
		return 0;
	}
	case KW_NBD: {
		struct umd_nbd_opts scratch = { 0 };
		char why[CFG_MAX_ERR];

		str = join_values(v, nv);
		if (!str)
			return -ENOMEM;
		/* Checked now, for the line number; applied at start. */
		why[0] = '\0';
		r = umd_nbd_opt_set(&scratch, name, str, why, sizeof(why));
		umd_nbd_opts_fini(&scratch);
		if (r < 0 || p->cfg->nnbd >= sizeof(p->cfg->nbd) / sizeof(p->cfg->nbd[0])) {
			free(str);
			return cfg_errf(p->err, p->errlen, p->file, p->line, "%s",
					*why ? why : "invalid value");
		}
		p->cfg->nbd[p->cfg->nnbd].key = kw->name;
		p->cfg->nbd[p->cfg->nnbd++].value = str;
		return 0;
	}
	case KW_METRICS: {
		char why[CFG_MAX_ERR] = "";

		/* Checked now, for the line number; it listens at start. */
		if (nv != 1)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"metrics: expected one value, tcp:HOST:PORT or unix:PATH");
		if (umd_metrics_check(v[0].text, why, sizeof(why)) < 0) {
			char shown[128];

			snprintf(shown, sizeof(shown), "%s", v[0].text);
			um_sanitize(shown);
			return cfg_errf(p->err, p->errlen, p->file, p->line, "metrics %s: %s",
					shown, why);
		}
		p->cfg->metrics = strdup(v[0].text);
		return p->cfg->metrics ? 0 : -ENOMEM;
	}
	case KW_ALIAS:
		if (nv != 1 || !valid_alias(v[0].text))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"alias: expected one map name (at most 127 bytes, no '/', "
					"white space or control characters)");
		for (unsigned i = 0; i + 1 < p->cfg->nmaps; i++) {
			struct cfg_map *o = &p->cfg->maps[i];

			if (!strcmp(o->alias, v[0].text))
				return cfg_errf(p->err, p->errlen, p->file, p->line,
						"duplicate alias '%s' (also on line %u)",
						v[0].text, o->s.seen[idx]);
		}
		p->map->alias = strdup(v[0].text);
		return p->map->alias ? 0 : -ENOMEM;
	case KW_UBLK:
		if (nv != 1 || (strcmp(v[0].text, "yes") && strcmp(v[0].text, "no")))
			return cfg_errf(p->err, p->errlen, p->file, p->line, "ublk: expected yes or no");
		p->map->ex.ublk = !strcmp(v[0].text, "yes");
		return 0;
	case KW_UBLK_ID: {
		unsigned id;

		if (nv != 1 || !parse_uint(v[0].text, INT32_MAX, &id))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"ublk_id: expected a device number (N of /dev/ublkbN)");
		p->map->ex.ublk_id = (int)id;
		p->map->ex.ublk = true;
		return 0;
	}
	case KW_TARGET: {
		bool known = false;

		for (unsigned i = 0; nv == 1 && umpath_target_name(i); i++)
			known |= !strcmp(umpath_target_name(i), v[0].text);
		if (!known)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"target: expected multipath or multipath-v0");
		p->map->target = strdup(v[0].text);
		return p->map->target ? 0 : -ENOMEM;
	}
	case KW_V0_PATH_ARGS: {
		/* Checked as the table is (each path's line); here the shape. */
		if (nv != 4)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"v0_path_args: expected N|L|M MIN_IOS FAILURE_MAX "
					"REACTIVATION_TIMEOUT");
		p->map->v0_args = malloc(strlen(v[0].text) + strlen(v[1].text) +
					 strlen(v[2].text) + strlen(v[3].text) + 4);
		if (!p->map->v0_args)
			return -ENOMEM;
		sprintf(p->map->v0_args, "%s %s %s %s", v[0].text, v[1].text, v[2].text,
			v[3].text);
		return 0;
	}
	case KW_PATHS:
		for (unsigned i = 0; i < nv; i++) {
			r = add_path(p, v[i].text, 1);
			if (r < 0)
				return r;
		}
		return 0;
	case KW_PATH: {
		unsigned prio = 1;

		if (nv != 1 && (nv != 3 || strcmp(v[1].text, "prio") ||
				!parse_uint(v[2].text, CFG_MAX_PRIO, &prio)))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"path: expected PATH [prio N], N from 0 to %u",
					CFG_MAX_PRIO);
		return add_path(p, v[0].text, prio);
	}
	}
	return -EINVAL;
}

static int open_section(struct cfg_parser *p, const struct cfg_token *t)
{
	const char *name = t->text;
	const char *parent = p->depth ? p->sect[p->depth - 1] : NULL;
	bool ok;

	if (!parent)
		ok = !strcmp(name, "defaults") || !strcmp(name, "multipaths");
	else if (!strcmp(parent, "multipaths"))
		ok = !strcmp(name, "multipath");
	else
		ok = false;
	if (!ok || t->quoted)
		return cfg_errf(p->err, p->errlen, p->file, p->line,
				"unknown section '%s'%s%s", name, parent ? " in " : "",
				parent ? parent : "");
	if (!parent) {
		/* One of each: with two, which value wins would be left to
		 * the reader's guess. */
		unsigned *seen = !strcmp(name, "defaults") ? &p->top_seen[0] : &p->top_seen[1];

		if (*seen)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"section '%s' given twice (first on line %u)", name, *seen);
		*seen = p->line;
	}
	if (!strcmp(name, "multipath")) {
		struct umd_config *cfg = p->cfg;

		/* Refused while reading, before any memory or time goes to
		 * maps the daemon would refuse anyway. */
		if (cfg->nmaps == UMD_MAX_MAPS)
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"too many maps: at most %u in one daemon (umpath.conf(5))",
					UMD_MAX_MAPS);
		if (cfg->nmaps == cfg->cap) {
			unsigned ncap = cfg->cap ? cfg->cap * 2 : 8;
			struct cfg_map *nm = realloc(cfg->maps, ncap * sizeof(*nm));

			if (!nm)
				return -ENOMEM;
			cfg->maps = nm;
			cfg->cap = ncap;
		}
		p->map = &cfg->maps[cfg->nmaps++];
		memset(p->map, 0, sizeof(*p->map));
		p->map->ex.ublk_id = -1;
		p->map->line = p->line;
	}
	p->sect[p->depth] = !strcmp(name, "defaults") ? "defaults" :
			    !strcmp(name, "multipaths") ? "multipaths" : "multipath";
	p->sect_line[p->depth++] = p->line;
	return 0;
}

/* A section's prio_args go with its prio, as multipathd takes both from
 * the same place; checked by the prioritizer at the section's end. */
static int check_prio_section(struct cfg_parser *p, const struct cfg_section *s)
{
	unsigned pi = 0, ai = 0, line;
	char why[CFG_MAX_ERR] = "";

	find_keyword("prio", &pi);
	find_keyword("prio_args", &ai);
	line = s->seen[ai] ? s->seen[ai] : s->seen[pi];
	if (s->prio_args && !s->prio)
		return cfg_errf(p->err, p->errlen, p->file, line,
				"prio_args: given without prio in this section");
	if (s->prio && s->prio->check_args(s->prio_args, why, sizeof(why)) < 0)
		return cfg_errf(p->err, p->errlen, p->file, line, "%s", why);
	return 0;
}

static int close_section(struct cfg_parser *p)
{
	struct cfg_map *cm = p->map;
	int r;

	if (!p->depth)
		return cfg_errf(p->err, p->errlen, p->file, p->line, "'}' without a section to close");
	p->depth--;
	if (!strcmp(p->sect[p->depth], "defaults")) {
		r = check_prio_section(p, &p->cfg->defaults);
		if (r < 0)
			return r;
	}
	if (!strcmp(p->sect[p->depth], "multipath")) {
		r = check_prio_section(p, &cm->s);
		if (r < 0)
			return r;
		if (!cm->alias)
			return cfg_errf(p->err, p->errlen, p->file, cm->line,
					"multipath section without an alias");
		if (!cm->npaths)
			return cfg_errf(p->err, p->errlen, p->file, cm->line,
					"multipath '%s' has no paths", cm->alias);
		p->map = NULL;
	}
	return 0;
}

/* One line's words: closing braces, "name {" openings and keyword lines,
 * in any mix ("multipath { alias a }" is fine). */
static int parse_line(struct cfg_parser *p, struct cfg_token *t, unsigned n)
{
	unsigned i = 0;
	int r;

	while (i < n) {
		unsigned j;

		if (is_brace(&t[i], '}')) {
			r = close_section(p);
			if (r < 0)
				return r;
			i++;
			continue;
		}
		if (is_brace(&t[i], '{'))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"'{' without a section name before it");
		if (i + 1 < n && is_brace(&t[i + 1], '{')) {
			r = open_section(p, &t[i]);
			if (r < 0)
				return r;
			i += 2;
			continue;
		}
		/* A keyword and its values, up to a brace or the end. */
		for (j = i + 1; j < n && !is_brace(&t[j], '{') && !is_brace(&t[j], '}'); j++)
			;
		if (j < n && is_brace(&t[j], '{'))
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"unknown section '%s'", t[j - 1].text);
		if (!p->depth || !strcmp(p->sect[p->depth - 1], "multipaths")) {
			unsigned idx;

			if (find_keyword(t[i].text, &idx))
				return cfg_errf(p->err, p->errlen, p->file, p->line,
						"%s: outside a %s section", t[i].text,
						keywords[idx].where & IN_DEFAULTS ? "defaults or multipath"
										: "multipath");
			return cfg_errf(p->err, p->errlen, p->file, p->line,
					"unknown keyword '%s'", t[i].text);
		}
		r = keyword_line(p, t + i, j - i);
		if (r < 0)
			return r;
		i = j;
	}
	return 0;
}

static int read_file(const char *path, char **ret_buf, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	size_t len = 0, cap = 4096;
	char *buf;
	int r = 0;

	if (!f)
		return -errno;
	buf = malloc(cap + 1);
	while (buf) {
		size_t n;

		if (len == cap) {
			char *nb;

			if (cap >= CFG_MAX_SIZE) {
				r = -EFBIG;
				break;
			}
			nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		errno = 0;
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			/* fread's errno: EISDIR for a directory, not just "EIO" */
			if (ferror(f))
				r = errno ? -errno : -EIO;
			break;
		}
	}
	fclose(f);
	if (!buf)
		return -ENOMEM;
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static int parse_buffer(struct cfg_parser *p, char *buf, size_t len)
{
	struct cfg_token *toks = NULL;
	unsigned cap = 0, n = 0;
	char *line = buf, *end = buf + len;
	int r = 0;

	if (memchr(buf, '\0', len))
		return cfg_errf(p->err, p->errlen, p->file, 0, "not a text file (NUL bytes)");
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));

		if (nl)
			*nl = '\0';
		p->line++;
		r = tokenize(p, line, &toks, &cap, &n);
		if (!r)
			r = parse_line(p, toks, n);
		if (r < 0)
			break;
		line = nl ? nl + 1 : end;
	}
	free(toks);
	if (!r && p->depth)
		r = cfg_errf(p->err, p->errlen, p->file, p->sect_line[p->depth - 1],
			     "section '%s' is not closed", p->sect[p->depth - 1]);
	return r;
}

/* ---- assembling tables (multipathd's assemble_map) ------------------------- */

struct sbuf {
	char *s;
	size_t len;
	size_t cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t ncap;
	char *ns;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (b->len + (size_t)n >= b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap <= b->len + (size_t)n)
			ncap *= 2;
		ns = realloc(b->s, ncap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* The features words with queue_if_no_path as no_path_retry wants it:
 * multipathd drops it from the features when no_path_retry is set and adds
 * it back for queue or a number of retries (select_features,
 * assemble_map). */
static void emit_features(struct sbuf *b, const char *features, int no_path_retry)
{
	char *copy = strdup(features), *save = NULL, *w;
	const char *words[1001];
	unsigned n = 0;

	if (!copy) {
		b->oom = true;
		return;
	}
	strtok_r(copy, " ", &save);	/* the count, checked at parse */
	while ((w = strtok_r(NULL, " ", &save)) && n < 1000)
		if (strcmp(w, "queue_if_no_path"))
			words[n++] = w;
	if (no_path_retry != NO_PATH_RETRY_FAIL)
		words[n++] = "queue_if_no_path";
	sb_printf(b, "%u", n);
	for (unsigned i = 0; i < n; i++)
		sb_printf(b, " %s", words[i]);
	free(copy);
}

/* Indexes of the paths by prio, highest first, ties in file order. */
static unsigned *paths_by_prio(const struct cfg_map *cm)
{
	unsigned *ix = malloc(cm->npaths * sizeof(*ix));

	if (!ix)
		return NULL;
	for (unsigned i = 0; i < cm->npaths; i++) {
		unsigned j = i;

		/* Insertion sort: stable, and maps have a few paths. */
		while (j && cm->paths[ix[j - 1]].prio < cm->paths[i].prio) {
			ix[j] = ix[j - 1];
			j--;
		}
		ix[j] = i;
	}
	return ix;
}

static void emit_group(struct sbuf *b, const struct cfg_map *cm, const char *selector,
		       const unsigned *ix, unsigned from, unsigned to)
{
	/* "<selector> <#paths> 1" then "<path> 1" each: one per-path
	 * argument, the repeat count, as multipathd writes it. */
	sb_printf(b, " %s %u 1", selector, to - from);
	for (unsigned i = from; i < to; i++)
		sb_printf(b, " %s 1", cm->paths[ix[i]].path);
}

static char *assemble_table(const struct cfg_map *cm, enum cfg_pgpolicy pgp,
			    const char *selector, const char *features, const char *hwhandler,
			    int no_path_retry)
{
	struct sbuf b = { NULL, 0, 0, false };
	unsigned *ix = paths_by_prio(cm), ngroups = 0;

	if (!ix)
		return NULL;
	if (pgp == PGP_MULTIBUS) {
		/* One group, the paths in the file's order. */
		for (unsigned i = 0; i < cm->npaths; i++)
			ix[i] = i;
		ngroups = 1;
	} else if (pgp == PGP_FAILOVER) {
		ngroups = cm->npaths;
	} else {
		for (unsigned i = 0; i < cm->npaths; i++)
			if (!i || cm->paths[ix[i]].prio != cm->paths[ix[i - 1]].prio)
				ngroups++;
	}
	emit_features(&b, features, no_path_retry);
	sb_printf(&b, " %s %u 1", hwhandler, ngroups);
	if (pgp == PGP_MULTIBUS) {
		emit_group(&b, cm, selector, ix, 0, cm->npaths);
	} else if (pgp == PGP_FAILOVER) {
		for (unsigned i = 0; i < cm->npaths; i++)
			emit_group(&b, cm, selector, ix, i, i + 1);
	} else {
		for (unsigned i = 0, j; i < cm->npaths; i = j) {
			for (j = i + 1; j < cm->npaths && cm->paths[ix[j]].prio == cm->paths[ix[i]].prio; j++)
				;
			emit_group(&b, cm, selector, ix, i, j);
		}
	}
	free(ix);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* A multipath-v0 table: "<path> <prio> <v0_path_args>" per path, in the
 * file's order. */
static char *assemble_v0_table(const struct cfg_map *cm)
{
	struct sbuf b = { NULL, 0, 0, false };

	sb_printf(&b, "%s", "");
	for (unsigned i = 0; i < cm->npaths; i++)
		sb_printf(&b, "%s%s %u %s", i ? " " : "", cm->paths[i].path, cm->paths[i].prio,
			  cm->v0_args ? cm->v0_args : "N 0 0 0");
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* Every map's policy and table, from the base policy (built-ins and
 * --policy), the defaults section and its own section. */
/* Each path's priority from the map's prioritizer (its section's prio,
 * else the defaults', else const), which may read the paths (prio.h). */
static int resolve_prios(struct umd *d, const struct umd_config *cfg, struct cfg_map *cm)
{
	const struct cfg_section *src = cm->s.prio ? &cm->s : &cfg->defaults;
	const struct umd_prioritizer *pr = src->prio ? src->prio : umd_prio_find("const");

	for (unsigned i = 0; i < cm->npaths; i++) {
		struct umd_prio_path pp = { cm->paths[i].path, cm->paths[i].configured };
		char why[CFG_MAX_ERR] = "";
		int r;

		/* path_latency reads every path: a signal does not wait
		 * for thousands of them. */
		if (d->stopping)
			return -ECANCELED;
		r = pr->prio(d, src->prio_args, &pp, cm->policy.checker_timeout_ms,
			     &cm->paths[i].prio, why, sizeof(why));
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			cm->paths[i].prio = 0;
			um_log("map %s: path %s: prio %s: %s; priority 0", cm->alias,
			       cm->paths[i].path, pr->name, *why ? why : strerror(-r));
		} else if (pr != umd_prio_find("const")) {
			um_log("map %s: path %s: prio %s: %u", cm->alias, cm->paths[i].path,
			       pr->name, cm->paths[i].prio);
		}
	}
	return 0;
}

static int cfg_resolve(struct umd *d, struct umd_config *cfg, const struct umd_policy *base)
{
	const struct cfg_section *ds = &cfg->defaults;
	char why[CFG_MAX_ERR];
	int r;

	cfg->policy = *base;
	for (unsigned i = 0; i < ds->nentries; i++)
		umd_policy_set(&cfg->policy, ds->entries[i].key, ds->entries[i].value, why, sizeof(why));
	for (unsigned i = 0; i < cfg->nmaps; i++) {
		struct cfg_map *cm = &cfg->maps[i];
		const struct cfg_section *s = &cm->s;

		cm->policy = cfg->policy;
		for (unsigned j = 0; j < s->nentries; j++)
			umd_policy_set(&cm->policy, s->entries[j].key, s->entries[j].value, why,
				       sizeof(why));
		free(cm->table);
		if (cm->target && strcmp(cm->target, "multipath")) {
			cm->table = assemble_v0_table(cm);
			if (!cm->table)
				return -ENOMEM;
			continue;
		}
		r = resolve_prios(d, cfg, cm);
		if (r < 0)
			return r;
		cm->table = assemble_table(cm,
			s->pgpolicy_set ? s->pgpolicy : ds->pgpolicy_set ? ds->pgpolicy : DEF_PGPOLICY,
			s->selector ? s->selector : ds->selector ? ds->selector : DEF_SELECTOR,
			s->features ? s->features : ds->features ? ds->features : DEF_FEATURES,
			s->hwhandler ? s->hwhandler : ds->hwhandler ? ds->hwhandler : DEF_HWHANDLER,
			cm->policy.no_path_retry);
		if (!cm->table)
			return -ENOMEM;
	}
	return 0;
}

int umd_config_read(const char *path, struct umd_config **ret, char *err, size_t errlen)
{
	struct cfg_parser p = { .err = err, .errlen = errlen };
	struct umd_config *cfg;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (errlen)
		err[0] = '\0';
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	cfg->explicit = path != NULL;
	cfg->path = strdup(path ? path : UMD_CONFIG_DEFAULT);
	if (!cfg->path) {
		free(cfg);
		return -ENOMEM;
	}
	p.cfg = cfg;
	p.file = cfg->path;
	r = read_file(cfg->path, &buf, &len);
	if (r == -ENOENT && !cfg->explicit) {
		r = 0;	/* no file: the built-in defaults and no maps */
	} else if (r < 0) {
		cfg_errf(err, errlen, cfg->path, 0, "%s", strerror(-r));
	} else {
		r = parse_buffer(&p, buf, len);
		if (r == -ENOMEM && !*err)
			cfg_errf(err, errlen, cfg->path, p.line, "out of memory");
	}
	free(buf);
	if (r < 0) {
		umd_config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

const char *umd_config_metrics(const struct umd_config *cfg)
{
	return cfg ? cfg->metrics : NULL;
}

unsigned umd_config_io_timeout_ms(const struct umd_config *cfg)
{
	return cfg ? cfg->io_timeout_ms : 0;
}

int umd_config_nbd(const struct umd_config *cfg, struct umd_nbd_opts *o)
{
	char why[CFG_MAX_ERR];

	for (unsigned i = 0; cfg && i < cfg->nnbd; i++) {
		int r = umd_nbd_opt_set(o, cfg->nbd[i].key, cfg->nbd[i].value, why, sizeof(why));

		if (r < 0)
			return r;	/* checked when read: out of memory */
	}
	return 0;
}

/* ---- applying ----------------------------------------------------------- */

static void owned_free(struct cfg_owned *o, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(o[i].name);
		free(o[i].table);
	}
	free(o);
}

static const struct cfg_owned *owned_find(const char *name)
{
	for (unsigned i = 0; i < cfg_state.nowned; i++)
		if (!strcmp(cfg_state.owned[i].name, name))
			return &cfg_state.owned[i];
	return NULL;
}

static int owned_add(struct cfg_owned **o, unsigned *n, const char *name, const char *table)
{
	struct cfg_owned *no = realloc(*o, (*n + 1) * sizeof(*no));

	if (!no)
		return -ENOMEM;
	*o = no;
	no[*n].name = strdup(name);
	no[*n].table = strdup(table);
	if (!no[*n].name || !no[*n].table) {
		free(no[*n].name);
		free(no[*n].table);
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

static void set_defaults(struct umd *d, const struct umd_policy *p)
{
	pthread_mutex_lock(&d->lock);
	d->defaults = *p;
	pthread_mutex_unlock(&d->lock);
}

int umd_config_apply(struct umd *d, struct umd_config *cfg, char *err, size_t errlen)
{
	struct cfg_owned *owned = NULL;
	unsigned nowned = 0;
	struct umd_policy base;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	base = d->defaults;
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_lock(&cfg_state.lock);
	r = cfg_resolve(d, cfg, &base);
	if (r == -ECANCELED)
		snprintf(err, errlen, "%s: startup interrupted by a signal while finding paths' priorities",
			 cfg->path);
	else if (r < 0)
		snprintf(err, errlen, "%s: out of memory", cfg->path);
	for (unsigned i = 0; !r && i < cfg->nmaps; i++) {
		struct cfg_map *cm = &cfg->maps[i];
		char why[CFG_MAX_ERR] = "";

		/* A signal during a long startup is not kept waiting. */
		if (d->stopping) {
			snprintf(err, errlen, "%s: startup interrupted by a signal after %u of %u maps",
				 cfg->path, i, cfg->nmaps);
			r = -ECANCELED;
			break;
		}
		r = umd_map_create_ex(d, cm->alias, cm->target, cm->table, 0, &cm->policy, &cm->ex,
				      why, sizeof(why));
		if (r < 0) {
			cfg_errf(err, errlen, cfg->path, cm->line, "map %s: %s%s%s", cm->alias,
				 *why ? why : strerror(-r), *umpath_error_detail() ? ": " : "",
				 umpath_error_detail());
			break;
		}
		um_log("map %s: created from %s: %s", cm->alias, cfg->path, cm->table);
		r = owned_add(&owned, &nowned, cm->alias, cm->table);
		if (r < 0)
			snprintf(err, errlen, "%s: out of memory", cfg->path);
	}
	if (r < 0) {
		/* At start: umpathd exits, and umd_fini frees what was made. */
		owned_free(owned, nowned);
		pthread_mutex_unlock(&cfg_state.lock);
		umd_config_free(cfg);
		return r;
	}
	set_defaults(d, &cfg->policy);
	umd_config_free(cfg_state.cfg);
	owned_free(cfg_state.owned, cfg_state.nowned);
	cfg_state.d = d;
	cfg_state.cfg = cfg;
	cfg_state.base = base;
	cfg_state.start_io_timeout_ms = cfg->io_timeout_ms;
	cfg_state.owned = owned;
	cfg_state.nowned = nowned;
	pthread_mutex_unlock(&cfg_state.lock);
	return 0;
}

int umd_config_path_prio(struct umd *d, const char *map, const char *path, unsigned *ret)
{
	int r = -ENOENT;

	pthread_mutex_lock(&cfg_state.lock);
	for (unsigned i = 0; cfg_state.d == d && cfg_state.cfg && i < cfg_state.cfg->nmaps; i++) {
		const struct cfg_map *cm = &cfg_state.cfg->maps[i];

		if (strcmp(cm->alias, map) || (cm->target && strcmp(cm->target, "multipath")))
			continue;
		for (unsigned j = 0; j < cm->npaths; j++) {
			if (!strcmp(cm->paths[j].path, path)) {
				*ret = cm->paths[j].prio;
				r = 0;
			}
		}
	}
	pthread_mutex_unlock(&cfg_state.lock);
	return r;
}

void umd_config_fini(struct umd *d)
{
	pthread_mutex_lock(&cfg_state.lock);
	if (cfg_state.d == d) {
		umd_config_free(cfg_state.cfg);
		owned_free(cfg_state.owned, cfg_state.nowned);
		cfg_state.cfg = NULL;
		cfg_state.owned = NULL;
		cfg_state.nowned = 0;
		cfg_state.d = NULL;
	}
	pthread_mutex_unlock(&cfg_state.lock);
}

/* What reconfigure does to one map of the new file. */
struct cfg_plan {
	struct umd_map *m;	/* a reference, if the map exists */
	bool created;
	bool reload;
	bool reloaded;
	bool policy;
};

/* Would m load table?  A path too small for m shows only once opened:
 * the table is loaded as m's inactive one and cleared again, so that the
 * live table is untouched.  Not when m has an inactive table of its own
 * (someone's `umpath load`): that is left alone, and the reload finds it. */
static int probe_load(struct umd_map *m, const char *target, const char *table, char *why,
		      size_t len)
{
	struct umpath_snapshot *snap;
	bool own = false;
	int r;

	if (!umpath_map_snapshot(m->map, &snap)) {
		own = snap->has_inactive;
		umpath_snapshot_free(snap);
	}
	if (own)
		return 0;
	r = umpath_map_load_target(m->map, target, table, why, len);
	if (!r)
		umpath_map_clear(m->map);
	return r;
}

static void report(FILE *out, const char *name, const char *what)
{
	fprintf(out, "%s: %s\n", name, what);
	um_log("reconfigure: %s: %s", name, what);
}

int umd_config_reconfigure(struct umd *d, umd_reload_fn *reload, void *opaque, FILE *out,
			   char *err, size_t errlen)
{
	struct cfg_owned *owned = NULL;
	unsigned nowned = 0, nplan = 0;
	struct cfg_plan *plan = NULL;
	struct umd_config *cfg = NULL, *old;
	struct umd_policy defaults;
	char why[CFG_MAX_ERR];
	bool oom = false;
	int r, failed = 0;

	pthread_mutex_lock(&cfg_state.lock);
	old = cfg_state.cfg;
	if (cfg_state.d != d || !old) {
		pthread_mutex_unlock(&cfg_state.lock);
		snprintf(err, errlen, "umpathd was started without a configuration");
		return -ENOENT;
	}
	r = umd_config_read(old->explicit ? old->path : NULL, &cfg, err, errlen);
	if (r < 0)
		goto out;
	r = cfg_resolve(d, cfg, &cfg_state.base);
	if (!r) {
		plan = calloc(cfg->nmaps ? cfg->nmaps : 1, sizeof(*plan));
		r = plan ? 0 : -ENOMEM;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", cfg->path,
			 r == -ECANCELED ? "umpathd is stopping" : "out of memory");
		goto out;
	}
	nplan = cfg->nmaps;

	/* 1. Tables that change: each must load, or nothing is done. */
	for (unsigned i = 0; i < nplan; i++) {
		struct cfg_map *cm = &cfg->maps[i];
		const struct cfg_owned *o;

		plan[i].m = umd_map_get(d, cm->alias, false);
		if (!plan[i].m)
			continue;
		/* A map made by hand that the file now names is taken
		 * over: its table is the file's from now on. */
		o = owned_find(cm->alias);
		if (o && !strcmp(o->table, cm->table) &&
		    !strcmp(umpath_map_target(plan[i].m->map), cm->target ? cm->target : "multipath"))
			continue;
		plan[i].reload = true;
		why[0] = '\0';
		/* The library's check: the parse umpath_map_new would do, each
		 * path must exist, nothing opened; then a load that is taken
		 * back at once, for a path too small for m. */
		r = umpath_table_check_target(d->ctx, cm->target, cm->table, why, sizeof(why));
		if (!r)
			r = probe_load(plan[i].m, cm->target, cm->table, why, sizeof(why));
		if (r < 0) {
			cfg_errf(err, errlen, cfg->path, cm->line, "map %s: %s%s%s", cm->alias,
				 *why ? why : strerror(-r), *umpath_error_detail() ? ": " : "",
				 umpath_error_detail());
			goto undo;
		}
	}
	/* 2. New maps, taken back if a later one fails. */
	for (unsigned i = 0; i < nplan; i++) {
		struct cfg_map *cm = &cfg->maps[i];

		if (plan[i].m)
			continue;
		why[0] = '\0';
		r = umd_map_create_ex(d, cm->alias, cm->target, cm->table, 0, &cm->policy, &cm->ex,
				      why, sizeof(why));
		if (r < 0) {
			cfg_errf(err, errlen, cfg->path, cm->line, "map %s: %s%s%s", cm->alias,
				 *why ? why : strerror(-r), *umpath_error_detail() ? ": " : "",
				 umpath_error_detail());
			goto undo;
		}
		plan[i].created = true;
	}

	/* 3. Commit.  A reload checked above fails now only if a path went
	 * away in between: the others go on, and the map keeps its table
	 * (and its old table is remembered, so the next reconfigure tries
	 * again). */
	for (unsigned i = 0; i < nplan; i++) {
		struct cfg_map *cm = &cfg->maps[i];
		const struct cfg_owned *o = owned_find(cm->alias);
		const char *table = cm->table;
		struct umd_policy cur;
		char line[CFG_MAX_ERR + 64];

		if (plan[i].created) {
			report(out, cm->alias, "created");
			oom |= owned_add(&owned, &nowned, cm->alias, table) < 0;
			continue;
		}
		if (plan[i].reload) {
			why[0] = '\0';
			r = reload(opaque, plan[i].m, cm->target, table, why, sizeof(why));
			if (r < 0) {
				/* The cause after the kernel's reason, as in step 1:
				 * which path is too small, and how small. */
				const char *detail = umpath_error_detail();

				snprintf(line, sizeof(line), "reload failed: %s%s%s",
					 *why ? why : strerror(-r), *detail ? ": " : "", detail);
				report(out, cm->alias, line);
				if (!failed)
					cfg_errf(err, errlen, cfg->path, cm->line,
						 "map %s: %s", cm->alias, line);
				failed = r;
				table = o ? o->table : "";
			} else {
				plan[i].reloaded = true;
			}
		}
		pthread_mutex_lock(&d->lock);
		cur = plan[i].m->policy;
		pthread_mutex_unlock(&d->lock);
		if (!policy_equal(&cur, &cm->policy) && !umd_map_set_policy(d, cm->alias, &cm->policy))
			plan[i].policy = true;
		if (plan[i].reloaded && plan[i].policy)
			report(out, cm->alias, "reloaded, policy updated");
		else if (plan[i].reloaded)
			report(out, cm->alias, "reloaded");
		else if (plan[i].policy)
			report(out, cm->alias, "policy updated");
		else if (!plan[i].reload)
			report(out, cm->alias, "unchanged");
		oom |= owned_add(&owned, &nowned, cm->alias, table) < 0;
	}
	/* Maps that left the file go, unless a client holds them: those stay,
	 * still ours, for a later reconfigure to remove. */
	for (unsigned i = 0; i < cfg_state.nowned; i++) {
		const struct cfg_owned *o = &cfg_state.owned[i];
		bool listed = false;

		for (unsigned j = 0; j < nplan && !listed; j++)
			listed = !strcmp(cfg->maps[j].alias, o->name);
		if (listed)
			continue;
		r = umd_map_remove(d, o->name, false);
		if (!r) {
			report(out, o->name, "removed");
		} else if (r == -EBUSY) {
			report(out, o->name, "kept: not in the file any more, but open by a client");
			oom |= owned_add(&owned, &nowned, o->name, o->table) < 0;
		}
		/* -ENXIO: removed by hand already; nothing to say. */
	}
	pthread_mutex_lock(&d->lock);
	defaults = d->defaults;
	d->defaults = cfg->policy;
	pthread_mutex_unlock(&d->lock);
	if (!policy_equal(&defaults, &cfg->policy))
		report(out, "defaults", "policy updated");
	if (cfg->io_timeout_ms != cfg_state.start_io_timeout_ms)
		report(out, "io_timeout", "changed in the file: takes effect when umpathd restarts");

	owned_free(cfg_state.owned, cfg_state.nowned);
	cfg_state.owned = owned;
	cfg_state.nowned = nowned;
	owned = NULL;
	nowned = 0;
	umd_config_free(old);
	cfg_state.cfg = cfg;
	cfg = NULL;
	r = failed;
	if (oom) {
		/* The maps are as reported; only what we remember of them
		 * is short. */
		snprintf(err, errlen, "out of memory while applying the file");
		r = -ENOMEM;
	}
	goto out;

undo:
	for (unsigned i = 0; i < nplan; i++)
		if (plan[i].created)
			umd_map_remove(d, cfg->maps[i].alias, true);
out:
	for (unsigned i = 0; i < nplan; i++)
		umd_map_put(plan[i].m, false);
	free(plan);
	owned_free(owned, nowned);
	umd_config_free(cfg);
	pthread_mutex_unlock(&cfg_state.lock);
	return r;
}
