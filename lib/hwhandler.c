/* hwhandler.c - registry of hardware handlers: the hooks that activate a
 * priority group (the kernel's scsi_dh activate, run by pg_init). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int umpath_register_hw_handler(struct umpath_ctx *ctx, const struct umpath_hw_handler *h)
{
	struct um_hw_entry *e;

	if (!h || !h->name || !*h->name || !h->activate)
		return -EINVAL;
	if (um_hw_handler_find(ctx, h->name))
		return -EEXIST;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->name = strdup(h->name);
	if (!e->name) {
		free(e);
		return -ENOMEM;
	}
	e->h = *h;
	e->h.name = e->name;
	pthread_mutex_lock(&ctx->lock);
	list_add_tail(&e->node, &ctx->hw_handlers);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

const struct umpath_hw_handler *um_hw_handler_find(struct umpath_ctx *ctx, const char *name)
{
	struct um_hw_entry *e;
	const struct umpath_hw_handler *found = NULL;

	pthread_mutex_lock(&ctx->lock);
	list_for_each_entry(e, &ctx->hw_handlers, node) {
		if (!strcmp(e->name, name)) {
			found = &e->h;
			break;
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	return found;
}

void um_hw_handlers_free(struct umpath_ctx *ctx)
{
	struct um_hw_entry *e, *n;

	list_for_each_entry_safe(e, n, &ctx->hw_handlers, node) {
		free(e->name);
		free(e);
	}
	list_init(&ctx->hw_handlers);
}
