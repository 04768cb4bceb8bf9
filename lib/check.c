/* check.c - path checkers as multipathd names them (tur, directio,
 * readsector0): which one a path's transport can run, which one it gets
 * by default, and one probe of a path with one of them.  The daemon's
 * checker decides when to probe and what a verdict means. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const checker_names[] = {
	[UMPATH_CHECKER_DEFAULT] = "default",
	[UMPATH_CHECKER_READSECTOR0] = "readsector0",
	[UMPATH_CHECKER_DIRECTIO] = "directio",
	[UMPATH_CHECKER_TUR] = "tur",
};

const char *umpath_checker_name(enum umpath_checker c)
{
	return (unsigned)c < UM_ARRAY_SIZE(checker_names) ? checker_names[c] : NULL;
}

int umpath_checker_from_name(const char *name)
{
	for (unsigned i = 0; i < UM_ARRAY_SIZE(checker_names); i++)
		if (!strcmp(name, checker_names[i]))
			return (int)i;
	return -EINVAL;
}

static enum umpath_checker tp_default(const struct um_transport *tp)
{
	if (tp->default_checker != UMPATH_CHECKER_DEFAULT)
		return tp->default_checker;
	return tp->scsi ? UMPATH_CHECKER_TUR : UMPATH_CHECKER_READSECTOR0;
}

/* want resolved for tp, or -EOPNOTSUPP with the detail naming path. */
static int resolve(const struct um_transport *tp, const char *path, enum umpath_checker want)
{
	switch (want) {
	case UMPATH_CHECKER_DEFAULT:
		return (int)tp_default(tp);
	case UMPATH_CHECKER_READSECTOR0:
		return (int)want;
	case UMPATH_CHECKER_DIRECTIO:
		if (tp->directio)
			return (int)want;
		um_detail_set("%s: path_checker directio: the %s transport has no O_DIRECT read "
			      "(directio checks files and block devices)", path, tp->name);
		return -EOPNOTSUPP;
	case UMPATH_CHECKER_TUR:
		if (tp->scsi)
			return (int)want;
		um_detail_set("%s: path_checker tur: the %s transport carries no SCSI commands "
			      "(tur checks iSCSI paths)", path, tp->name);
		return -EOPNOTSUPP;
	}
	um_detail_set("%s: no such path checker (%d)", path, (int)want);
	return -EINVAL;
}

int umpath_path_checker(struct umpath_ctx *ctx, const char *path, enum umpath_checker want,
			enum umpath_checker *ret_checker)
{
	const struct um_transport *tp;
	int r;

	um_detail_clear();
	tp = um_transport_for(ctx, path);
	if (!tp) {
		um_detail_set("%s: no transport serves this path", path);
		return -ENOENT;
	}
	r = resolve(tp, path, want);
	if (r < 0)
		return r;
	if (ret_checker)
		*ret_checker = (enum umpath_checker)r;
	return 0;
}

/* One probe in flight: holds a reference on its path. */
struct check {
	struct um_path *p;
	void (*done)(void *opaque, int err);
	void *opaque;
};

static void check_done(void *opaque, int err)
{
	struct check *c = opaque;

	c->done(c->opaque, err);
	um_path_put(c->p);
	free(c);
}

int umpath_path_check(struct umpath_ctx *ctx, const char *path, enum umpath_checker checker,
		      void (*done)(void *opaque, int err), void *opaque)
{
	/* TEST UNIT READY: opcode 0, nothing else. */
	static const uint8_t tur[6] = { 0 };
	struct check *c;
	int r;

	um_detail_clear();
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* Only paths some map has open: a probe never opens a new one. */
	c->p = um_path_find(ctx, path);
	if (!c->p) {
		free(c);
		return -ENOENT;
	}
	c->done = done;
	c->opaque = opaque;
	r = resolve(c->p->tp, path, checker);
	if (r == UMPATH_CHECKER_TUR) {
		r = c->p->tp->scsi(c->p, tur, sizeof(tur), UM_SCSI_NONE, NULL, 0, check_done, c);
		/* No session now (it reconnects in the background): that is
		 * the probe's answer, as a lost NBD connection's is. */
		if (r < 0 && r != -ENOMEM) {
			check_done(c, r);
			return 0;
		}
	} else if (r == UMPATH_CHECKER_DIRECTIO)
		r = um_path_probe_flags(c->p, UM_TIO_DIRECT, check_done, c);
	else if (r >= 0)
		r = um_path_probe_flags(c->p, 0, check_done, c);
	if (r < 0) {
		um_path_put(c->p);
		free(c);
		return r;
	}
	return 0;
}
