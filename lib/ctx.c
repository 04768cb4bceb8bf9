/* ctx.c - the library context: loop thread, path registry, options. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "ioclock.h"

#define UMPATH_DEFAULT_IO_TIMEOUT_MS 10000u
/* Threads for buffered file writes, shared by every path of the context
 * (file.c caps each path's share): enough to keep two CPUs' page-cache
 * copies busy while some wait on the file's lock. */
#define UMPATH_WRITERS 16u

int umpath_ctx_new(const struct umpath_ctx_opts *opts, struct umpath_ctx **ret_ctx)
{
	struct umpath_ctx *ctx = calloc(1, sizeof(*ctx));
	int r;

	if (!ctx)
		return -ENOMEM;
	um_ioclock_init();	/* not at the first I/O */
	if (name_hash_init(&ctx->paths) < 0 || name_hash_init(&ctx->mem_names) < 0) {
		name_hash_free(&ctx->paths);
		free(ctx);
		return -ENOMEM;
	}
	pthread_mutex_init(&ctx->lock, NULL);
	list_init(&ctx->hw_handlers);
	list_init(&ctx->mem_stores);
	pthread_mutex_init(&ctx->maps_lock, NULL);
	list_init(&ctx->maps);
	ctx->io_timeout_ms = opts && opts->io_timeout_ms ? opts->io_timeout_ms
							 : UMPATH_DEFAULT_IO_TIMEOUT_MS;
	ctx->pool_size = opts && opts->pool_size ? opts->pool_size : UMPATH_DEFAULT_POOL;
	r = um_workers_new(UMPATH_WRITERS, &ctx->writers);
	if (r == 0) {
		r = um_loop_new(&ctx->loop);
		if (r < 0)
			um_workers_free(ctx->writers);
	}
	if (r < 0) {
		name_hash_free(&ctx->paths);
		name_hash_free(&ctx->mem_names);
		pthread_mutex_destroy(&ctx->maps_lock);
		pthread_mutex_destroy(&ctx->lock);
		free(ctx);
		return r;
	}
	*ret_ctx = ctx;
	return 0;
}

void umpath_ctx_free(struct umpath_ctx *ctx)
{
	if (!ctx)
		return;
	/* The loop goes first: no timer or transport callback runs after. */
	um_loop_free(ctx->loop);
	um_workers_free(ctx->writers);
	um_mem_stores_free(ctx);
	um_hw_handlers_free(ctx);
	name_hash_free(&ctx->paths);
	name_hash_free(&ctx->mem_names);
	pthread_mutex_destroy(&ctx->maps_lock);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}
