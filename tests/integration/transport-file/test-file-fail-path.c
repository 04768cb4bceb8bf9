/* Description: a failed file path gets no I/O and the data stays intact:
 * after "fail_path" on the O_DIRECT path of an image, every read and write
 * goes through the buffered path (the failed path's I/O count stands
 * still), the image holds exactly what was written, and after
 * "reinstate_path" both paths carry I/O again. */
#include "filetest.h"

#define SIZE (4u << 20)
#define BS 4096u

int main(void)
{
	char img[PATH_MAX], direct[PATH_MAX + 32], table[2 * PATH_MAX + 128], msg[PATH_MAX + 64];
	unsigned char *w = ft_alloc(BS), *r = ft_alloc(BS);
	struct umpath_path_stats before, after;
	struct umpath_ctx *ctx;
	struct umpath_map *map;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_make_image(img, SIZE, 2);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", img, direct);
	ctx = ft_ctx(0);
	map = t_map(ctx, table);

	snprintf(msg, sizeof(msg), "fail_path %s", direct);
	t_msg(map, msg, 0);
	CHECK(strstr(t_status(map), "?direct F 1"));
	before = ft_stats(ctx, direct);
	for (unsigned i = 0; i < SIZE / BS; i++) {
		t_fill(w, BS, 500 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * BS, BS, w), 0);
	}
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	for (unsigned i = 0; i < SIZE / BS; i++) {
		t_fill(w, BS, 500 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)i * BS, BS, r), 0);
		CHECK(!memcmp(w, r, BS));
		CHECK(ft_file_has(img, (uint64_t)i * BS, w, BS));
	}
	after = ft_stats(ctx, direct);
	CHECK_EQ_INT(after.ios, before.ios);
	CHECK_EQ_INT(ft_stats(ctx, img).ios, 2 * (SIZE / BS) + 1);

	snprintf(msg, sizeof(msg), "reinstate_path %s", direct);
	t_msg(map, msg, 0);
	CHECK(strstr(t_status(map), "?direct A 1"));
	for (unsigned i = 0; i < 8; i++) {
		t_fill(w, BS, 500 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)i * BS, BS, r), 0);
		CHECK(!memcmp(w, r, BS));
	}
	CHECK_EQ_INT(ft_stats(ctx, direct).ios, after.ios + 4);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	free(w);
	free(r);
	return 0;
}
