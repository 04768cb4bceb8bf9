/* Description: the checkers' probe (um_path_probe, a read of the first
 * 4 KiB) works on file paths: it reports 0 on a buffered and on an O_DIRECT
 * path to an image and on a 1 KiB file (read whole), and -EIO once the
 * image has been truncated under the open path (a read that finds end of
 * file before the path's size is a path error). */
#include "filetest.h"

#include "internal.h"

struct probe_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
};

static void probe_done(void *opaque, int err)
{
	struct probe_wait *pw = opaque;

	pthread_mutex_lock(&pw->lock);
	CHECK(!pw->done);
	pw->done = true;
	pw->err = err;
	pthread_cond_broadcast(&pw->cond);
	pthread_mutex_unlock(&pw->lock);
}

static int probe(struct umpath_ctx *ctx, const char *name, uint64_t want_size)
{
	struct probe_wait pw = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct um_path *p;
	struct timespec dl;

	CHECK_EQ_INT(um_path_get(ctx, name, true, &p), 0);
	CHECK_EQ_INT(p->size, want_size);
	CHECK_EQ_INT(um_path_probe(p, probe_done, &pw), 0);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&pw.lock);
	while (!pw.done && !pthread_cond_timedwait(&pw.cond, &pw.lock, &dl))
		;
	CHECK(pw.done);
	pthread_mutex_unlock(&pw.lock);
	um_path_put(p);
	return pw.err;
}

int main(void)
{
	char img[PATH_MAX], small[PATH_MAX], direct[PATH_MAX + 32];
	struct umpath_ctx *ctx;
	struct um_path *keep;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_path(small, sizeof(small), "small.img");
	ft_make_image(img, 1u << 20, 6);
	ft_make_image(small, 1024, 7);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	ctx = ft_ctx(2000);

	CHECK_EQ_INT(probe(ctx, img, 1u << 20), 0);
	CHECK_EQ_INT(probe(ctx, direct, 1u << 20), 0);
	CHECK_EQ_INT(probe(ctx, small, 1024), 0);

	/* Hold the path open (size 1 MiB) while the file shrinks to 0. */
	CHECK_EQ_INT(um_path_get(ctx, img, true, &keep), 0);
	CHECK(truncate(img, 0) == 0);
	CHECK_EQ_INT(probe(ctx, img, 1u << 20), -EIO);
	CHECK(umpath_is_path_error(-EIO));
	um_path_put(keep);

	umpath_ctx_free(ctx);
	return 0;
}
