/* Description: two paths to one image file, one through the page cache
 * (IMG) and one with O_DIRECT (file:IMG?direct), in one round-robin group:
 * the map takes the image's size, a pattern written over the whole image
 * through the map reads back the same through the map and with pread on the
 * image, and both paths carried about half of the I/O. */
#include "filetest.h"

#define SIZE (8u << 20)
#define BS (64u << 10)

int main(void)
{
	char img[PATH_MAX], direct[PATH_MAX + 32], table[2 * PATH_MAX + 128];
	unsigned char *w = ft_alloc(BS), *r = ft_alloc(BS);
	struct umpath_path_stats a, b;
	struct umpath_ctx *ctx;
	struct umpath_map *map;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_make_image(img, SIZE, 1);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", img, direct);

	ctx = ft_ctx(0);
	map = t_map(ctx, table);
	CHECK_EQ_INT(umpath_map_size(map), SIZE);

	for (unsigned i = 0; i < SIZE / BS; i++) {
		t_fill(w, BS, 100 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * BS, BS, w), 0);
	}
	for (unsigned i = 0; i < SIZE / BS; i++) {
		t_fill(w, BS, 100 + i);
		memset(r, 0xa5, BS);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)i * BS, BS, r), 0);
		CHECK(!memcmp(w, r, BS));
		CHECK(ft_file_has(img, (uint64_t)i * BS, w, BS));
	}
	/* Sub-block sizes through the buffered path are fine too; the direct
	 * path needs 512-byte multiples, which these are. */
	t_fill(w, 4096, 7);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, SIZE - 4096, 4096, w), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 512, 1024, w), 0);
	CHECK(ft_file_has(img, SIZE - 4096, w, 4096));
	CHECK(ft_file_has(img, 512, w, 1024));

	a = ft_stats(ctx, img);
	b = ft_stats(ctx, direct);
	CHECK_EQ_INT(a.ios + b.ios, 2 * (SIZE / BS) + 2);
	CHECK(a.ios >= SIZE / BS - 2 && b.ios >= SIZE / BS - 2);
	CHECK_EQ_INT(a.errors + b.errors, 0);
	CHECK_EQ_INT(a.inflight + b.inflight, 0);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	free(w);
	free(r);
	return 0;
}
