/* snapshot.c - what callers outside the engine may see of a map, in one
 * piece: a structured copy of its live table and state taken in one hold
 * of the map's lock (so groups and paths never mix two tables), and the
 * table check that parses without opening paths.
 *
 * The snapshot is one allocation: the structs first (the paths' io_stats
 * after the paths), then the strings, sized by a first walk and filled by
 * a second, both under the lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mpath.h"

/* Strings copied into the snapshot's tail; with buf NULL only counted. */
struct strspace {
	char *buf;
	size_t len;
};

static const char *put_str(struct strspace *sp, const char *s, size_t n)
{
	char *at = sp->buf ? sp->buf + sp->len : NULL;

	if (at) {
		memcpy(at, s, n);
		at[n] = '\0';
	}
	sp->len += n + 1;
	return at;
}

/* Run an emitter into a scratch buffer, growing it when the words do not
 * fit; the words end in a space each, which is dropped.  -ENOMEM. */
struct scratch {
	char *buf;
	size_t cap;
};

enum emit_kind { EM_FEATURES, EM_HWH, EM_PS };

struct emit {
	enum emit_kind kind;
	struct multipath *m;
	struct priority_group *pg;
	struct pgpath *p;		/* EM_PS: NULL for the group's words */
	enum ps_status_type type;
};

static void emit_run(const struct emit *e, struct sbuf *sb)
{
	switch (e->kind) {
	case EM_FEATURES:
		mp_features_emit(e->m, sb);
		break;
	case EM_HWH:
		mp_hw_handler_emit(e->m, sb);
		break;
	case EM_PS:
		e->pg->ps.type->status(&e->pg->ps, e->p ? &e->p->ps : NULL, e->type, sb);
		break;
	}
}

static const char *put_emit(struct strspace *sp, struct scratch *sc, const struct emit *e,
			    int *err)
{
	struct sbuf sb;

	for (;;) {
		sbuf_init(&sb, sc->buf, sc->cap);
		emit_run(e, &sb);
		if (sb.len < sc->cap)
			break;
		char *nb = realloc(sc->buf, sb.len + 1);

		if (!nb) {
			*err = -ENOMEM;
			return put_str(sp, "", 0);
		}
		sc->buf = nb;
		sc->cap = sb.len + 1;
	}
	if (sb.len && sc->buf[sb.len - 1] == ' ')
		sb.len--;
	return put_str(sp, sc->buf, sb.len);
}

/* The paths' io_stats, after the paths in the snapshot's block. */
static struct umpath_path_io_stats *snap_io(struct umpath_snapshot *snap)
{
	return (struct umpath_path_io_stats *)(snap->paths + snap->nr_paths);
}

/* One walk of the live table: counts (snap NULL) or fills. */
static int snapshot_walk_locked(struct umpath_map *map, struct umpath_snapshot *snap,
				struct strspace *sp, struct scratch *sc,
				unsigned *ret_groups, unsigned *ret_paths)
{
	struct multipath *m = map->live;
	struct umpath_snapshot_path *sp_path = snap ? snap->paths : NULL;
	struct umpath_snapshot_group *sp_group = snap ? snap->groups : NULL;
	struct priority_group *pg;
	struct pgpath *p;
	unsigned ng = 0, np = 0;
	const char *s;
	int err = 0;

	map_assert_locked(map);
	s = put_str(sp, map->name, strlen(map->name));
	if (snap)
		snap->name = s;
	s = put_emit(sp, sc, &(struct emit){ .kind = EM_FEATURES, .m = m }, &err);
	if (snap)
		snap->features = s;
	s = put_emit(sp, sc, &(struct emit){ .kind = EM_HWH, .m = m }, &err);
	if (snap)
		snap->hw_handler = s;

	list_for_each_entry(pg, &m->priority_groups, list) {
		struct umpath_snapshot_group *g = sp_group ? &sp_group[ng] : NULL;
		struct emit e = { .kind = EM_PS, .m = m, .pg = pg };
		unsigned i = 0;

		e.type = PS_STATUS_TABLE;
		s = put_emit(sp, sc, &e, &err);
		if (g) {
			*g = (struct umpath_snapshot_group){
				.num = pg->pg_num,
				.state = pg->bypassed ? 'D' : pg == m->current_pg ? 'A' : 'E',
				.selector = pg->ps.type->name,
				.selector_args = s,
				.nr_paths = pg->nr_pgpaths,
				.nr_table_args = pg->ps.type->table_args,
				.nr_status_args = pg->ps.type->info_args,
				.paths = &sp_path[np],
			};
		}
		e.type = PS_STATUS_INFO;
		s = put_emit(sp, sc, &e, &err);
		if (g)
			g->selector_status = s;
		list_for_each_entry(p, &pg->pgpaths, list) {
			struct umpath_snapshot_path *sn = sp_path ? &sp_path[np] : NULL;

			s = put_str(sp, p->path->name, strlen(p->path->name));
			if (sn) {
				*sn = (struct umpath_snapshot_path){
					.path = s,
					.group = pg->pg_num,
					.index = i,
					.active = p->is_active,
					.fail_count = p->fail_count,
				};
				pthread_mutex_lock(&map->ctx->lock);	/* after the map's */
				um_path_stats_read_locked(p->path, &sn->stats);
				um_path_io_stats_read_locked(p->path, &snap_io(snap)[np]);
				pthread_mutex_unlock(&map->ctx->lock);
				sn->io_stats = &snap_io(snap)[np];
			}
			e.p = p;
			e.type = PS_STATUS_TABLE;
			s = put_emit(sp, sc, &e, &err);
			if (sn)
				sn->table_args = s;
			e.type = PS_STATUS_INFO;
			s = put_emit(sp, sc, &e, &err);
			if (sn)
				sn->status_args = s;
			i++;
			np++;
		}
		ng++;
	}
	*ret_groups = ng;
	*ret_paths = np;
	return err;
}

int umpath_map_snapshot(struct umpath_map *map, struct umpath_snapshot **ret_snap)
{
	struct strspace sp = { 0 };
	struct scratch sc = { 0 };
	struct umpath_snapshot *snap = NULL;
	struct multipath *m;
	struct mp_req *rq;
	unsigned ng, np, queued = 0;
	size_t head;
	int r;

	map_lock(map);
	m = map->live;
	/* The layout cannot change while the lock is held: size, then fill. */
	r = snapshot_walk_locked(map, NULL, &sp, &sc, &ng, &np);
	if (r < 0)
		goto out;
	head = sizeof(*snap) + ng * sizeof(*snap->groups) +
	       np * (sizeof(*snap->paths) + sizeof(struct umpath_path_io_stats));
	snap = calloc(1, head + sp.len);
	if (!snap) {
		r = -ENOMEM;
		goto out;
	}
	snap->groups = (struct umpath_snapshot_group *)(snap + 1);
	snap->paths = (struct umpath_snapshot_path *)(snap->groups + ng);
	snap->nr_paths = np;	/* where snap_io() starts */
	sp = (struct strspace){ .buf = (char *)snap + head };
	r = snapshot_walk_locked(map, snap, &sp, &sc, &ng, &np);
	if (r < 0)
		goto out;

	list_for_each_entry(rq, &map->queued, node)
		queued++;
	list_for_each_entry(rq, &map->held, node)
		queued++;
	snap->size = sizeof(*snap);
	snap->target = m->target->name;
	snap->size_bytes = map->size;
	snap->nr_groups = ng;
	snap->current_group = m->next_pg ? m->next_pg->pg_num :
			      m->current_pg ? m->current_pg->pg_num :
			      m->nr_priority_groups ? 1u : 0u;
	snap->nr_valid_paths = m->nr_valid_paths;
	snap->nr_paths = np;
	snap->queue_if_no_path = !!(m->flags & MPATHF_QUEUE_IF_NO_PATH);
	snap->queue_io = !!(m->flags & MPATHF_QUEUE_IO);
	snap->pg_init_count = m->pg_init_count;
	snap->suspended = map->suspended;
	snap->has_inactive = map->inactive != NULL;
	snap->queued_ios = queued;
	snap->inflight_ios = map->inflight;
	snap->pool_size = map->ctx->pool_size;
	snap->pool_busy = map->busy;
	snap->event_nr = map->event_nr;
out:
	map_unlock(map);
	free(sc.buf);
	if (r < 0) {
		free(snap);
		return r;
	}
	*ret_snap = snap;
	return 0;
}

void umpath_snapshot_free(struct umpath_snapshot *snap)
{
	free(snap);
}

int umpath_table_check(struct umpath_ctx *ctx, const char *table, char *err, size_t errlen)
{
	return umpath_table_check_target(ctx, NULL, table, err, errlen);
}

int umpath_table_check_target(struct umpath_ctx *ctx, const char *target, const char *table,
			      char *err, size_t errlen)
{
	if (!ctx)
		return -EINVAL;
	return mp_table_check(ctx, mp_target_lookup(target), table, err, errlen);
}
