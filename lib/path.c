/* path.c - the registry of open paths: one um_path per path string, shared
 * (by reference) by every table that names it, so that reloading a table
 * or naming a path twice never opens a second connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct um_transport *const transports[] = {
	&um_mem_transport,
};

static const struct um_transport *transport_for(struct umpath_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < UM_ARRAY_SIZE(transports); i++)
		if (transports[i]->claims(ctx, name))
			return transports[i];
	return NULL;
}

bool um_path_exists(struct umpath_ctx *ctx, const char *name)
{
	const struct um_transport *tp = transport_for(ctx, name);

	return tp && tp->exists(ctx, name);
}

int um_path_get(struct umpath_ctx *ctx, const char *name, struct um_path **ret_path)
{
	const struct um_transport *tp;
	struct um_path *p;
	int r;

	pthread_mutex_lock(&ctx->lock);
	list_for_each_entry(p, &ctx->paths, node) {
		if (!strcmp(p->name, name)) {
			p->refs++;
			pthread_mutex_unlock(&ctx->lock);
			*ret_path = p;
			return 0;
		}
	}
	pthread_mutex_unlock(&ctx->lock);

	tp = transport_for(ctx, name);
	if (!tp)
		return -ENOENT;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->name = strdup(name);
	if (!p->name) {
		free(p);
		return -ENOMEM;
	}
	p->ctx = ctx;
	p->tp = tp;
	p->refs = 1;
	r = tp->open(ctx, p);
	if (r < 0) {
		free(p->name);
		free(p);
		return r;
	}

	/* Another thread may have opened the same path meanwhile: keep one. */
	pthread_mutex_lock(&ctx->lock);
	struct um_path *q;
	list_for_each_entry(q, &ctx->paths, node) {
		if (!strcmp(q->name, name)) {
			q->refs++;
			pthread_mutex_unlock(&ctx->lock);
			tp->close(p);
			free(p->name);
			free(p);
			*ret_path = q;
			return 0;
		}
	}
	list_add_tail(&p->node, &ctx->paths);
	pthread_mutex_unlock(&ctx->lock);
	*ret_path = p;
	return 0;
}

void um_path_put(struct um_path *p)
{
	struct umpath_ctx *ctx;
	bool last;

	if (!p)
		return;
	ctx = p->ctx;
	pthread_mutex_lock(&ctx->lock);
	last = --p->refs == 0;
	if (last)
		list_del_init(&p->node);
	pthread_mutex_unlock(&ctx->lock);
	if (!last)
		return;
	p->tp->close(p);
	free(p->name);
	free(p);
}
