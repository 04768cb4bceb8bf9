/* Description: file path strings: "file:IMG?ro" opens the image read-only
 * (reads work; writes, trims and write-zeroes end with EROFS, a target
 * error, and the path stays active); "file:IMG?direct&ro" combines options;
 * unknown options, an empty path, a missing file, a directory and a
 * character device are refused as "error getting device"; messages naming a
 * path outside the map get EINVAL when the file exists, ENOENT when not. */
#include "filetest.h"

#define SIZE (1u << 20)
#define BS 4096u

static void refused(struct umpath_ctx *ctx, const char *path)
{
	char table[PATH_MAX + 128], err[256] = "";
	struct umpath_map *map = NULL;

	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 1 1 %s 1", path);
	CHECK(umpath_map_new(ctx, "bad", table, 0, err, sizeof(err), &map) < 0);
	CHECK(!map);
	if (strcmp(err, "error getting device")) {
		fprintf(stderr, "%s: '%s'\n", path, err);
		exit(1);
	}
}

int main(void)
{
	char img[PATH_MAX], other[PATH_MAX], ro[PATH_MAX + 32], rod[PATH_MAX + 32];
	char table[2 * PATH_MAX + 128], bad[PATH_MAX + 64], msg[PATH_MAX + 128];
	unsigned char *w = ft_alloc(BS), *r = ft_alloc(BS);
	struct umpath_ctx *ctx;
	struct umpath_map *map;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_path(other, sizeof(other), "other.img");
	ft_make_image(img, SIZE, 4);
	ft_make_image(other, SIZE, 5);
	snprintf(ro, sizeof(ro), "file:%s?ro", img);
	snprintf(rod, sizeof(rod), "file:%s?direct&ro", img);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", ro, rod);
	ctx = ft_ctx(0);
	map = t_map(ctx, table);

	t_fill(w, BS, 4);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK(!memcmp(w, r, BS));
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, BS, r), 0);
	CHECK(!memcmp(w, r, BS));
	memset(w, 0x5a, BS);
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, BS, w), -EROFS);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 0, BS, NULL), -EROFS);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 0, BS, NULL), -EROFS);
	}
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK(!strstr(t_status(map), " F "));
	t_fill(w, BS, 4);
	CHECK(ft_file_has(img, 0, w, BS));	/* nothing was written */

	snprintf(msg, sizeof(msg), "fail_path %s", other);
	t_msg(map, msg, -EINVAL);
	ft_path(bad, sizeof(bad), "missing.img");
	snprintf(msg, sizeof(msg), "fail_path %s", bad);
	t_msg(map, msg, -ENOENT);

	refused(ctx, bad);
	snprintf(bad, sizeof(bad), "file:%s?bogus", img);
	refused(ctx, bad);
	snprintf(bad, sizeof(bad), "file:%s?direct&", img);
	refused(ctx, bad);
	refused(ctx, "file:?ro");
	refused(ctx, ft_dir);
	refused(ctx, "/dev/null");

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	free(w);
	free(r);
	return 0;
}
