/* Description: a block device as two paths, a loop device over an image
 * seen buffered (/dev/loopN) and with O_DIRECT (file:/dev/loopN?direct):
 * the map takes the device's size (BLKGETSIZE64); data written through the
 * map reads back through it and, after a flush of both paths, is in the
 * image; a trim (discard) and a write-zeroes (with and without
 * UMPATH_IO_NO_HOLE, the kernel's zeroout) read back as zeros through the
 * map and on the image, their neighbours untouched.  Skipped (77) where
 * loop devices cannot be attached. */
#include "filetest.h"

#define SIZE (16u << 20)
#define MB (1u << 20)

static void check_zero(struct umpath_map *map, const char *img, uint64_t off, uint64_t len)
{
	unsigned char *r = ft_alloc(len), *z = calloc(1, len);

	CHECK(z);
	memset(r, 0xa5, len);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, off, len, r), 0);
	CHECK(ft_is_zero(r, len));
	CHECK(ft_file_has(img, off, z, len));
	free(r);
	free(z);
}

static void check_data(struct umpath_map *map, const char *img, unsigned mb)
{
	unsigned char *w = ft_alloc(MB), *r = ft_alloc(MB);

	t_fill(w, MB, 900 + mb);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, (uint64_t)mb * MB, MB, r), 0);
	CHECK(!memcmp(w, r, MB));
	CHECK(ft_file_has(img, (uint64_t)mb * MB, w, MB));
	free(w);
	free(r);
}

int main(void)
{
	char img[PATH_MAX], direct[96], table[PATH_MAX + 256];
	unsigned char *w = ft_alloc(MB);
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	const char *loop;
	struct t_io t;

	ft_setup();
	ft_path(img, sizeof(img), "disk.img");
	ft_make_image(img, SIZE, 8);
	loop = ft_loop_attach(img);
	snprintf(direct, sizeof(direct), "file:%s?direct", loop);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", loop, direct);
	ctx = ft_ctx(0);
	map = t_map(ctx, table);
	CHECK_EQ_INT(umpath_map_size(map), SIZE);

	for (unsigned i = 0; i < SIZE / MB; i++) {
		t_fill(w, MB, 900 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * MB, MB, w), 0);
	}
	/* The buffered path's writes sit in the device's page cache until
	 * the flush fan-out reaches it. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	for (unsigned i = 0; i < SIZE / MB; i++)
		check_data(map, img, i);

	/* Discard (URING_CMD, or BLKDISCARD on kernels before 6.12); a loop
	 * device punches the image, which then reads as zeros. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 2 * MB, 2 * MB, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 6 * MB, MB, NULL), 0);
	check_zero(map, img, 2 * MB, 2 * MB);
	check_zero(map, img, 6 * MB, MB);
	check_data(map, img, 1);
	check_data(map, img, 4);
	check_data(map, img, 5);
	check_data(map, img, 7);

	/* Zeroout: unmapping allowed, then not (NO_HOLE), with FUA. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 8 * MB, 2 * MB, NULL), 0);
	t_io_init(&t, UMPATH_OP_WRITE_ZEROES, 11 * MB, MB, NULL);
	t.io.flags = UMPATH_IO_NO_HOLE | UMPATH_IO_FUA;
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
	CHECK(t_io_wait(&t, 10));
	CHECK_EQ_INT(t.err, 0);
	/* Where the kernel lacks fallocate through io_uring, zeroes are
	 * written, and those of the buffered path need the flush too. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	check_zero(map, img, 8 * MB, 2 * MB);
	check_zero(map, img, 11 * MB, MB);
	check_data(map, img, 10);
	check_data(map, img, 12);

	/* FUA writes on each path reach the image without a flush. */
	for (unsigned i = 13; i < 15; i++) {
		t_fill(w, MB, 900 + i);
		t_io_init(&t, UMPATH_OP_WRITE, (uint64_t)i * MB, MB, w);
		t.io.flags = UMPATH_IO_FUA;
		CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
		CHECK(t_io_wait(&t, 10));
		CHECK_EQ_INT(t.err, 0);
		check_data(map, img, i);
	}
	CHECK_EQ_INT(ft_stats(ctx, loop).errors + ft_stats(ctx, direct).errors, 0);
	CHECK(ft_stats(ctx, loop).ios > 0 && ft_stats(ctx, direct).ios > 0);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	free(w);
	return 0;
}
