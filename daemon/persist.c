/* persist.c - `umpath persist MAP ...`: SCSI-3 persistent reservations on
 * a map's paths, what mpathpersist does for a multipath device.
 *
 * Each path is its own I_T nexus, so a registration (--register,
 * --register-ignore, --unregister) is made on every path of the map; a
 * register that fails on one path is taken back on those it reached.  The
 * other verbs go to one active path, the next one when a path fails with a
 * path error.  Before anything is sent, every path must carry SCSI
 * commands: a map with an NBD or file path answers "not supported by this
 * transport", naming the path, and nothing changes.
 *
 * The key this host registered last through a map (or its
 * reservation_key) is remembered here by map name: RESERVE, RELEASE,
 * CLEAR and PREEMPT carry it, as mpathpersist's --param-rk.
 *
 * Runs on a control connection's thread: each command is waited for, with
 * a bound (io_timeout + PR_WAIT_EXTRA_MS); a command that outlives it
 * frees its wait when it answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "persist.h"
#include "util.h"
#include "wait.h"

#define PR_WAIT_EXTRA_MS 5000u
#define PR_IN_LEN 8192u		/* READ KEYS: 1023 keys */
#define PR_MAX_KEYS ((PR_IN_LEN - 8) / 8)

enum pr_verb {
	V_NONE,
	V_READ_KEYS,
	V_READ_RESERVATION,
	V_REPORT_CAPS,
	V_REGISTER,
	V_REGISTER_IGNORE,
	V_UNREGISTER,
	V_RESERVE,
	V_RELEASE,
	V_CLEAR,
	V_PREEMPT,
	V_PREEMPT_ABORT,
};

static const struct {
	const char *opt;
	enum pr_verb verb;
	bool arg;
} options[] = {
	{ "--read-keys", V_READ_KEYS, false },
	{ "--read-reservation", V_READ_RESERVATION, false },
	{ "--report-capabilities", V_REPORT_CAPS, false },
	{ "--register", V_REGISTER, true },
	{ "--register-ignore", V_REGISTER_IGNORE, true },
	{ "--unregister", V_UNREGISTER, false },
	{ "--reserve", V_RESERVE, true },
	{ "--release", V_RELEASE, false },
	{ "--clear", V_CLEAR, false },
	{ "--preempt", V_PREEMPT, true },
	{ "--preempt-abort", V_PREEMPT_ABORT, true },
};

static const char *const out_names[] = {
	[UMPATH_PR_OUT_REGISTER] = "REGISTER",
	[UMPATH_PR_OUT_RESERVE] = "RESERVE",
	[UMPATH_PR_OUT_RELEASE] = "RELEASE",
	[UMPATH_PR_OUT_CLEAR] = "CLEAR",
	[UMPATH_PR_OUT_PREEMPT] = "PREEMPT",
	[UMPATH_PR_OUT_PREEMPT_AND_ABORT] = "PREEMPT AND ABORT",
	[UMPATH_PR_OUT_REGISTER_AND_IGNORE] = "REGISTER AND IGNORE EXISTING KEY",
};

/* ---- the keys this host registered, by map ------------------------------ */

struct known_key {
	struct known_key *next;
	uint64_t key;
	char name[];
};

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct known_key *keys;		/* guarded by keys_lock */

static void key_set(const char *map, uint64_t key)
{
	struct known_key *k;

	pthread_mutex_lock(&keys_lock);
	for (k = keys; k; k = k->next)
		if (!strcmp(k->name, map))
			break;
	if (!k && (k = malloc(sizeof(*k) + strlen(map) + 1))) {
		strcpy(k->name, map);
		k->next = keys;
		keys = k;
	}
	if (k)
		k->key = key;
	pthread_mutex_unlock(&keys_lock);
}

/* This host's key for map: the last one registered here, else the
 * map's reservation_key; 0 if neither. */
static uint64_t key_get(struct umd_map *m)
{
	struct known_key *k;
	uint64_t key = 0;

	pthread_mutex_lock(&keys_lock);
	for (k = keys; k; k = k->next)
		if (!strcmp(k->name, m->name))
			key = k->key;
	pthread_mutex_unlock(&keys_lock);
	if (!key) {
		pthread_mutex_lock(&m->d->lock);
		key = m->policy.reservation_key;
		pthread_mutex_unlock(&m->d->lock);
	}
	return key;
}

void umd_persist_fini(void)
{
	pthread_mutex_lock(&keys_lock);
	while (keys) {
		struct known_key *k = keys;

		keys = k->next;
		free(k);
	}
	pthread_mutex_unlock(&keys_lock);
}

/* ---- one command, waited for --------------------------------------------- */

struct pr_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned refs;		/* guarded by lock: the waiter's, the command's */
	bool done;		/* guarded by lock */
	int err;		/* guarded by lock */
	uint8_t buf[PR_IN_LEN];	/* PR IN data; the command's until done */
};

static void wait_put_locked(struct pr_wait *w, bool *ret_free)
{
	*ret_free = --w->refs == 0;
}

static void wait_free(struct pr_wait *w)
{
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

static void wait_done(void *opaque, int err)
{
	struct pr_wait *w = opaque;
	bool last;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->err = err;
	pthread_cond_broadcast(&w->cond);
	wait_put_locked(w, &last);
	pthread_mutex_unlock(&w->lock);
	if (last)
		wait_free(w);
}

static struct pr_wait *wait_new(void)
{
	struct pr_wait *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	um_cond_init_monotonic(&w->cond);
	w->refs = 2;
	return w;
}

/* Wait for w's answer; 0 or -errno, -ETIMEDOUT past the bound.  When
 * ret_buf is given and the command answered, w is kept for the caller
 * (wait_free), else dropped. */
static int wait_end(struct umd *d, struct pr_wait *w, struct pr_wait **ret_keep)
{
	uint64_t deadline = umpath_now_ns() +
			    (uint64_t)(d->io_timeout_ms + PR_WAIT_EXTRA_MS) * 1000000u;
	bool last;
	int r;

	pthread_mutex_lock(&w->lock);
	while (!w->done && um_cond_wait_until(&w->cond, &w->lock, deadline) == 0)
		;
	r = w->done ? w->err : -ETIMEDOUT;
	if (w->done && ret_keep) {
		pthread_mutex_unlock(&w->lock);
		*ret_keep = w;	/* the command's reference is gone: ours alone */
		return r;
	}
	wait_put_locked(w, &last);
	pthread_mutex_unlock(&w->lock);
	if (last)
		wait_free(w);
	return r;
}

static const char *pr_strerror(int err);

static int pr_out_sync(struct umd *d, const char *path, const struct umpath_pr_out *req)
{
	struct pr_wait *w = wait_new();
	int r;

	if (!w)
		return -ENOMEM;
	r = umpath_path_pr_out(d->ctx, path, req, wait_done, w);
	if (r < 0) {
		wait_free(w);
		return r;
	}
	return wait_end(d, w, NULL);
}

/* PR IN: 0 and *ret_w (wait_free it) holding the data, or -errno. */
static int pr_in_sync(struct umd *d, const char *path, enum umpath_pr_in_action action,
		      struct pr_wait **ret_w)
{
	struct pr_wait *w = wait_new();
	int r;

	if (!w)
		return -ENOMEM;
	r = umpath_path_pr_in(d->ctx, path, action, w->buf, sizeof(w->buf), wait_done, w);
	if (r < 0) {
		wait_free(w);
		return r;
	}
	r = wait_end(d, w, ret_w);
	if (r < 0 && r != -ETIMEDOUT)
		wait_free(*ret_w);
	return r;
}

int umd_pr_register_new_map(struct umd *d, const char *name, struct umpath_map *map,
			    uint64_t key)
{
	struct umpath_pr_out req = {
		.action = UMPATH_PR_OUT_REGISTER_AND_IGNORE,
		.sa_key = key,
	};
	struct umpath_snapshot *ss;
	unsigned failed = 0;
	int r;

	if (!key)
		return 0;
	r = umpath_map_snapshot(map, &ss);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < ss->nr_paths; i++) {
		const char *path = ss->paths[i].path;
		char verb[] = "fail_path";
		char *argv[2] = { verb, (char *)path };

		r = pr_out_sync(d, path, &req);
		if (r == -EOPNOTSUPP || !r)
			continue;	/* no SCSI path: used as it is */
		/* Not registered: it takes no I/O until the checker has
		 * registered it and reinstates it. */
		um_log("map %s: path %s: reservation_key 0x%" PRIx64 " not registered: %s: "
		       "failed until it is", name, path, key, pr_strerror(r));
		umpath_map_message(map, 2, argv);
		failed++;
	}
	umpath_snapshot_free(ss);
	return (int)failed;
}

/* ---- the map's paths ------------------------------------------------------- */

struct pr_paths {
	struct umpath_snapshot *ss;
	const char **names;	/* each path once: active ones first */
	unsigned n;
};

static void paths_free(struct pr_paths *pp)
{
	free(pp->names);
	umpath_snapshot_free(pp->ss);
}

static bool listed(const struct pr_paths *pp, const char *name)
{
	for (unsigned i = 0; i < pp->n; i++)
		if (!strcmp(pp->names[i], name))
			return true;
	return false;
}

/* Every path of m, each once, and each able to carry persistent
 * reservations; else nothing is sent and err says which path is not. */
static int paths_take(struct umd_map *m, struct pr_paths *pp, char *err, size_t errlen)
{
	int r;

	memset(pp, 0, sizeof(*pp));
	r = umpath_map_snapshot(m->map, &pp->ss);
	if (r < 0) {
		snprintf(err, errlen, "map %s: %s", m->name, strerror(-r));
		return r;
	}
	pp->names = calloc(pp->ss->nr_paths + 1, sizeof(*pp->names));
	if (!pp->names) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int pass = 1; pass >= 0; pass--)
		for (unsigned i = 0; i < pp->ss->nr_paths; i++)
			if (!!pp->ss->paths[i].active == pass && !listed(pp, pp->ss->paths[i].path))
				pp->names[pp->n++] = pp->ss->paths[i].path;
	if (!pp->n) {
		snprintf(err, errlen, "map %s has no paths", m->name);
		return -ENODEV;
	}
	for (unsigned i = 0; i < pp->n; i++) {
		r = umpath_path_pr_supported(m->d->ctx, pp->names[i]);
		if (r < 0) {
			snprintf(err, errlen, "map %s: %s", m->name, umpath_error_detail());
			return r;
		}
	}
	return 0;
}

static const char *pr_strerror(int err)
{
	return err == -EBADE ? "reservation conflict" : strerror(-err);
}

/* ---- the verbs ---------------------------------------------------------------- */

/* A PR IN on the first path that answers; 0 and *ret_w, or -errno. */
static int pr_in_any(struct umd_map *m, const struct pr_paths *pp, enum umpath_pr_in_action a,
		     struct pr_wait **ret_w, char *err, size_t errlen)
{
	int r = -ENODEV;

	for (unsigned i = 0; i < pp->n; i++) {
		r = pr_in_sync(m->d, pp->names[i], a, ret_w);
		if (!r)
			return 0;
		snprintf(err, errlen, "map %s: path %s: PERSISTENT RESERVE IN: %s", m->name,
			 pp->names[i], pr_strerror(r));
		if (!umpath_is_path_error(r))
			break;
	}
	return r;
}

static int pr_out_any(struct umd_map *m, const struct pr_paths *pp,
		      const struct umpath_pr_out *req, char *err, size_t errlen)
{
	int r = -ENODEV;

	for (unsigned i = 0; i < pp->n; i++) {
		r = pr_out_sync(m->d, pp->names[i], req);
		if (!r)
			return 0;
		snprintf(err, errlen, "map %s: path %s: PERSISTENT RESERVE OUT %s: %s", m->name,
			 pp->names[i], out_names[req->action], pr_strerror(r));
		if (!umpath_is_path_error(r))
			break;
	}
	return r;
}

static int read_reservation(struct umd_map *m, const struct pr_paths *pp,
			    struct umpath_pr_reservation *res, char *err, size_t errlen)
{
	struct pr_wait *w;
	int r = pr_in_any(m, pp, UMPATH_PR_IN_READ_RESERVATION, &w, err, errlen);

	if (r < 0)
		return r;
	r = umpath_pr_parse_reservation(w->buf, sizeof(w->buf), res);
	wait_free(w);
	if (r < 0)
		snprintf(err, errlen, "map %s: READ RESERVATION: a malformed reply", m->name);
	return r;
}

static int show_keys(struct umd_map *m, const struct pr_paths *pp, FILE *out, char *err,
		     size_t errlen)
{
	uint64_t *k = calloc(PR_MAX_KEYS, sizeof(*k));
	struct pr_wait *w;
	uint32_t gen;
	unsigned n;
	int r = k ? pr_in_any(m, pp, UMPATH_PR_IN_READ_KEYS, &w, err, errlen) : -ENOMEM;

	if (r < 0) {
		free(k);
		return r;
	}
	r = umpath_pr_parse_keys(w->buf, sizeof(w->buf), &gen, k, PR_MAX_KEYS, &n);
	if (r < 0) {
		snprintf(err, errlen, "map %s: READ KEYS: a malformed reply", m->name);
	} else if (!n) {
		fprintf(out, "  PR generation=0x%" PRIx32 ", \tthere are NO registered reservation keys\n",
			gen);
	} else {
		fprintf(out, "  PR generation=0x%" PRIx32 ", \t%u registered reservation key%s follow%s:\n",
			gen, n, n == 1 ? "" : "s", n == 1 ? "s" : "");
		for (unsigned i = 0; i < n && i < PR_MAX_KEYS; i++)
			fprintf(out, "    0x%" PRIx64 "\n", k[i]);
		if (n > PR_MAX_KEYS)
			fprintf(out, "    (%u more not shown)\n", n - (unsigned)PR_MAX_KEYS);
	}
	free(k);
	wait_free(w);
	return r;
}

static int show_reservation(struct umd_map *m, const struct pr_paths *pp, FILE *out, char *err,
			    size_t errlen)
{
	struct umpath_pr_reservation res;
	int r = read_reservation(m, pp, &res, err, errlen);
	const char *type;

	if (r < 0)
		return r;
	if (!res.held) {
		fprintf(out, "  PR generation=0x%" PRIx32 ", there is NO reservation held\n",
			res.generation);
		return 0;
	}
	type = umpath_pr_type_name(res.type);
	fprintf(out, "  PR generation=0x%" PRIx32 ", Reservation follows:\n", res.generation);
	fprintf(out, "   Key = 0x%" PRIx64 "\n", res.key);
	fprintf(out, "  scope = %s, type = %s", res.scope ? "obsolete scope" : "LU_SCOPE",
		type ? type : "obsolete type");
	if (!type)
		fprintf(out, " (%u)", res.type);
	fputc('\n', out);
	return 0;
}

static int show_caps(struct umd_map *m, const struct pr_paths *pp, FILE *out, char *err,
		     size_t errlen)
{
	static const unsigned order[] = {
		UMPATH_PR_WRITE_EXCLUSIVE_ALL_REGS, UMPATH_PR_EXCLUSIVE_ACCESS_REG_ONLY,
		UMPATH_PR_WRITE_EXCLUSIVE_REG_ONLY, UMPATH_PR_EXCLUSIVE_ACCESS,
		UMPATH_PR_WRITE_EXCLUSIVE, UMPATH_PR_EXCLUSIVE_ACCESS_ALL_REGS,
	};
	struct umpath_pr_caps c;
	struct pr_wait *w;
	int r = pr_in_any(m, pp, UMPATH_PR_IN_REPORT_CAPABILITIES, &w, err, errlen);

	if (r < 0)
		return r;
	r = umpath_pr_parse_caps(w->buf, sizeof(w->buf), &c);
	wait_free(w);
	if (r < 0) {
		snprintf(err, errlen, "map %s: REPORT CAPABILITIES: a malformed reply", m->name);
		return r;
	}
	fprintf(out, "Report capabilities response:\n"
		"  Compatible Reservation Handling(CRH): %u\n"
		"  Specify Initiator Ports Capable(SIP_C): %u\n"
		"  All Target Ports Capable(ATP_C): %u\n"
		"  Persist Through Power Loss Capable(PTPL_C): %u\n"
		"  Type Mask Valid(TMV): %u\n"
		"  Allow Commands: %u\n"
		"  Persist Through Power Loss Active(PTPL_A): %u\n",
		c.crh, c.sip_c, c.atp_c, c.ptpl_c, c.tmv, c.allow_commands, c.ptpl_a);
	if (c.tmv) {
		fprintf(out, "    Support indicated in Type mask:\n");
		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
			fprintf(out, "      %s: %u\n", umpath_pr_type_name(order[i]),
				!!(c.type_mask & 1u << order[i]));
	}
	return 0;
}

/* A registration on every path; on a failure, the paths it reached are
 * put back as they were (rk: the key they had, 0 none). */
static int register_all(struct umd_map *m, const struct pr_paths *pp,
			const struct umpath_pr_out *req, char *err, size_t errlen)
{
	unsigned done = 0;
	int r = 0;

	for (; done < pp->n; done++) {
		r = pr_out_sync(m->d, pp->names[done], req);
		if (r < 0) {
			snprintf(err, errlen, "map %s: path %s: PERSISTENT RESERVE OUT %s: %s",
				 m->name, pp->names[done], out_names[req->action],
				 pr_strerror(r));
			break;
		}
	}
	if (!r)
		return 0;
	for (unsigned i = 0; i < done; i++) {
		struct umpath_pr_out undo = {
			.action = UMPATH_PR_OUT_REGISTER_AND_IGNORE,
			.sa_key = req->action == UMPATH_PR_OUT_REGISTER ? req->key : 0,
		};
		int u = pr_out_sync(m->d, pp->names[i], &undo);

		if (u < 0)
			um_log("map %s: path %s: registration not taken back: %s", m->name,
			       pp->names[i], pr_strerror(u));
	}
	return r;
}

int umd_pr_parse_type(const char *v, unsigned *ret_type)
{
	static const struct { const char *name; unsigned type; } names[] = {
		{ "wr-ex", UMPATH_PR_WRITE_EXCLUSIVE }, { "ex-ac", UMPATH_PR_EXCLUSIVE_ACCESS },
		{ "wr-ex-ro", UMPATH_PR_WRITE_EXCLUSIVE_REG_ONLY },
		{ "ex-ac-ro", UMPATH_PR_EXCLUSIVE_ACCESS_REG_ONLY },
		{ "wr-ex-ar", UMPATH_PR_WRITE_EXCLUSIVE_ALL_REGS },
		{ "ex-ac-ar", UMPATH_PR_EXCLUSIVE_ACCESS_ALL_REGS },
	};
	char *end;
	unsigned long t;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(v, names[i].name)) {
			*ret_type = names[i].type;
			return 0;
		}
	}
	errno = 0;
	t = strtoul(v, &end, 10);
	if (errno || end == v || *end || !umpath_pr_type_name((unsigned)t))
		return -EINVAL;
	*ret_type = (unsigned)t;
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int usage_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int umd_persist(struct umd *d, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	enum pr_verb verb = V_NONE;
	const char *arg = NULL, *verb_opt = NULL;
	bool have_rk = false, have_type = false;
	struct umpath_pr_out req = { 0 };
	struct umpath_pr_reservation res;
	struct pr_paths pp;
	uint64_t rk = 0, key = 0;
	unsigned type = 0;
	struct umd_map *m;
	int r;

	if (argc < 3)
		return usage_err(err, errlen, "usage: persist MAP --read-keys|--read-reservation|"
				 "--report-capabilities|--register KEY|--register-ignore KEY|"
				 "--unregister|--reserve TYPE|--release|--clear|--preempt KEY|"
				 "--preempt-abort KEY [--param-rk KEY] [--prout-type TYPE]");
	for (int i = 2; i < argc; i++) {
		size_t k;

		if (!strcmp(argv[i], "--param-rk") && i + 1 < argc) {
			if (umd_pr_parse_key(argv[++i], &rk) < 0)
				return usage_err(err, errlen, "--param-rk: '%s' is not a key (hex, up "
						 "to 16 digits)", argv[i]);
			have_rk = true;
			continue;
		}
		if (!strcmp(argv[i], "--prout-type") && i + 1 < argc) {
			if (umd_pr_parse_type(argv[++i], &type) < 0)
				return usage_err(err, errlen, "--prout-type: '%s' is not a reservation "
						 "type (1, 3, 5, 6, 7, 8)", argv[i]);
			have_type = true;
			continue;
		}
		for (k = 0; k < sizeof(options) / sizeof(options[0]); k++)
			if (!strcmp(argv[i], options[k].opt))
				break;
		if (k == sizeof(options) / sizeof(options[0]))
			return usage_err(err, errlen, "persist: unknown option '%s'", argv[i]);
		if (verb != V_NONE)
			return usage_err(err, errlen, "persist: one of %s and %s, not both", verb_opt,
					 argv[i]);
		verb = options[k].verb;
		verb_opt = options[k].opt;
		if (options[k].arg) {
			if (i + 1 >= argc)
				return usage_err(err, errlen, "persist: %s needs an argument", argv[i]);
			arg = argv[++i];
		}
	}
	if (verb == V_NONE)
		return usage_err(err, errlen, "persist: no command (--read-keys, --register KEY...)");
	if (verb == V_RESERVE && umd_pr_parse_type(arg, &type) < 0)
		return usage_err(err, errlen, "--reserve: '%s' is not a reservation type (1 wr-ex, "
				 "3 ex-ac, 5 wr-ex-ro, 6 ex-ac-ro, 7 wr-ex-ar, 8 ex-ac-ar)", arg);
	if ((verb == V_REGISTER || verb == V_REGISTER_IGNORE || verb == V_PREEMPT ||
	     verb == V_PREEMPT_ABORT) && umd_pr_parse_key(arg, &key) < 0)
		return usage_err(err, errlen, "%s: '%s' is not a key (hex, up to 16 digits)",
				 verb_opt, arg);

	m = umd_map_get(d, argv[1], false);
	if (!m) {
		snprintf(err, errlen, "no such map");
		return -ENXIO;
	}
	r = paths_take(m, &pp, err, errlen);
	if (r < 0)
		goto out;
	if (!have_rk)
		rk = key_get(m);
	switch (verb) {
	case V_NONE:
		break;
	case V_READ_KEYS:
		r = show_keys(m, &pp, out, err, errlen);
		break;
	case V_READ_RESERVATION:
		r = show_reservation(m, &pp, out, err, errlen);
		break;
	case V_REPORT_CAPS:
		r = show_caps(m, &pp, out, err, errlen);
		break;
	case V_REGISTER:
	case V_REGISTER_IGNORE:
	case V_UNREGISTER:
		req.action = verb == V_REGISTER ? UMPATH_PR_OUT_REGISTER :
			     UMPATH_PR_OUT_REGISTER_AND_IGNORE;
		req.key = verb == V_REGISTER ? (have_rk ? rk : 0) : 0;
		req.sa_key = key;
		r = register_all(m, &pp, &req, err, errlen);
		if (!r)
			key_set(m->name, key);
		break;
	case V_RESERVE:
	case V_RELEASE:
	case V_CLEAR:
	case V_PREEMPT:
	case V_PREEMPT_ABORT:
		if (!rk) {
			r = usage_err(err, errlen, "map %s: no reservation key of this host: "
				      "--register one first, or give --param-rk KEY", m->name);
			break;
		}
		/* RELEASE must name the reservation's type; PREEMPT keeps it
		 * unless told otherwise. */
		if (!have_type && (verb == V_RELEASE || verb == V_PREEMPT || verb == V_PREEMPT_ABORT)) {
			r = read_reservation(m, &pp, &res, err, errlen);
			if (r < 0)
				break;
			if (verb == V_RELEASE && !res.held)
				break;	/* nothing to release: as the target would say */
			type = res.held ? res.type : UMPATH_PR_WRITE_EXCLUSIVE_REG_ONLY;
		}
		req.action = verb == V_RESERVE ? UMPATH_PR_OUT_RESERVE :
			     verb == V_RELEASE ? UMPATH_PR_OUT_RELEASE :
			     verb == V_CLEAR ? UMPATH_PR_OUT_CLEAR :
			     verb == V_PREEMPT ? UMPATH_PR_OUT_PREEMPT : UMPATH_PR_OUT_PREEMPT_AND_ABORT;
		req.type = verb == V_CLEAR ? 0 : type;
		req.key = rk;
		req.sa_key = key;
		r = pr_out_any(m, &pp, &req, err, errlen);
		break;
	}
	if (!r && verb >= V_REGISTER)
		um_log("map %s: persist %s%s%s: done", m->name, verb_opt, arg ? " " : "",
		       arg ? arg : "");
out:
	paths_free(&pp);
	umd_map_put(m, false);
	return r;
}
