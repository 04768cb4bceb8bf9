/* Description: a file path that really fails: two paths to one image, one
 * the image itself (O_DIRECT), one a FUSE file (nbdfuse) served by nbdkit's
 * file plugin on that image through its error filter, which fails every
 * request with EIO while a trigger file exists.  Once the trigger exists,
 * the first I/O that meets the FUSE path fails it (EIO is a path error),
 * is retried on the image path, and no I/O is lost or goes wrong; the
 * failed path gets no more I/O; after the trigger is gone and the path is
 * reinstated, it carries I/O again.  Skipped (77) without nbdfuse, nbdkit
 * or FUSE. */
#include "filetest.h"

#define SIZE (8u << 20)
#define BS (64u << 10)

int main(void)
{
	char img[PATH_MAX], trigger[PATH_MAX], arg[PATH_MAX + 16], direct[PATH_MAX + 32];
	char fuse[PATH_MAX + 32], table[3 * PATH_MAX], msg[PATH_MAX + 64];
	unsigned char *w = ft_alloc(BS), *r = ft_alloc(BS);
	struct umpath_path_stats st;
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	const char *file;
	int fd;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_path(trigger, sizeof(trigger), "fail");
	ft_make_image(img, SIZE, 9);
	snprintf(arg, sizeof(arg), "error-file=%s", trigger);
	{
		const char *filters[] = { "--filter=error", NULL };
		const char *params[] = { "error=EIO", "error-rate=100%", arg, NULL };

		file = ft_fuse_start(img, filters, params);
	}
	/* O_DIRECT on the FUSE file too: no FUSE page cache to go stale
	 * while the other path writes the image. */
	snprintf(fuse, sizeof(fuse), "file:%s?direct", file);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", fuse, direct);
	ctx = ft_ctx(5000);
	map = t_map(ctx, table);
	CHECK_EQ_INT(umpath_map_size(map), SIZE);

	for (unsigned i = 0; i < SIZE / BS / 2; i++) {
		t_fill(w, BS, 300 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * BS, BS, w), 0);
	}
	CHECK(ft_stats(ctx, fuse).ios > 0);

	fd = open(trigger, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	for (unsigned i = SIZE / BS / 2; i < SIZE / BS; i++) {
		t_fill(w, BS, 300 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * BS, BS, w), 0);
	}
	CHECK(strstr(t_status(map), "/nbd?direct F 1 "));
	CHECK_EQ_INT(ft_stats(ctx, fuse).errors, 1);
	/* The flush fan-out still visits the failed path, which completed
	 * writes since its last flush (docs/flush.md): counted from here. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	st = ft_stats(ctx, fuse);
	for (unsigned i = 0; i < SIZE / BS; i++) {
		t_fill(w, BS, 300 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)i * BS, BS, r), 0);
		CHECK(!memcmp(w, r, BS));
		CHECK(ft_file_has(img, (uint64_t)i * BS, w, BS));
	}
	CHECK_EQ_INT(ft_stats(ctx, fuse).ios, st.ios);

	CHECK(unlink(trigger) == 0);
	snprintf(msg, sizeof(msg), "reinstate_path %s", fuse);
	t_msg(map, msg, 0);
	for (unsigned i = 0; i < 8; i++) {
		t_fill(w, BS, 300 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)i * BS, BS, r), 0);
		CHECK(!memcmp(w, r, BS));
	}
	CHECK(ft_stats(ctx, fuse).ios > st.ios);
	CHECK_EQ_INT(ft_stats(ctx, fuse).errors, st.errors);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	ft_fuse_stop();
	free(w);
	free(r);
	return 0;
}
