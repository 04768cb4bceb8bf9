/* Description: flush, FUA writes, trim and write-zeroes through a map of two
 * paths to one image file land on the file: a FUA write and a flushed write
 * are in the file; a trim punches a hole (SEEK_DATA skips it, st_blocks
 * drops) that reads as zeros; a write-zeroes punches too; a write-zeroes
 * with UMPATH_IO_NO_HOLE reads as zeros but allocates (st_blocks rises
 * again); out-of-range I/O is refused at submission. */
#include "filetest.h"

#define SIZE (16u << 20)
#define MB (1u << 20)

static uint64_t blocks_of(const char *path)
{
	struct stat st;

	CHECK(stat(path, &st) == 0);
	return (uint64_t)st.st_blocks * 512u;
}

/* Whether [off, off+len) of the file holds no data extent. */
static bool is_hole(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t data;

	CHECK(fd >= 0);
	data = lseek(fd, (off_t)off, SEEK_DATA);
	close(fd);
	return data < 0 || (uint64_t)data >= off + len;
}

/* Whether the file system of dir supports what the hole checks need. */
static bool fs_has_holes(const char *dir)
{
	char path[PATH_MAX];
	bool ok;
	int fd;

	ft_path(path, sizeof(path), "hole-probe");
	ft_make_image(path, 2 * MB, 0);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	ok = !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, MB) &&
	     is_hole(path, 0, MB) && !is_hole(path, MB, MB) &&
	     !fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, MB);
	close(fd);
	unlink(path);
	if (!ok)
		fprintf(stderr, "%s: no punch hole/zero range: checking contents only\n", dir);
	return ok;
}

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

int main(void)
{
	char img[PATH_MAX], direct[PATH_MAX + 32], table[2 * PATH_MAX + 128];
	unsigned char *w = ft_alloc(MB);
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	uint64_t blocks;
	bool holes;
	struct t_io t;

	ft_setup();
	ft_need_direct();
	holes = fs_has_holes(ft_dir);
	ft_path(img, sizeof(img), "disk.img");
	ft_make_image(img, SIZE, 3);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", img, direct);
	ctx = ft_ctx(0);
	map = t_map(ctx, table);

	/* FUA writes (RWF_DSYNC) on each path, then plain writes and a flush. */
	for (unsigned i = 0; i < 4; i++) {
		struct t_io f;

		t_fill(w, MB, 40 + i);
		t_io_init(&f, UMPATH_OP_WRITE, (uint64_t)i * MB, MB, w);
		f.io.flags = UMPATH_IO_FUA;
		CHECK_EQ_INT(umpath_map_submit(map, &f.io), 0);
		CHECK(t_io_wait(&f, 10));
		CHECK_EQ_INT(f.err, 0);
		CHECK(ft_file_has(img, (uint64_t)i * MB, w, MB));
	}
	for (unsigned i = 4; i < 8; i++) {
		t_fill(w, MB, 40 + i);
		CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, (uint64_t)i * MB, MB, w), 0);
	}
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	for (unsigned i = 4; i < 8; i++) {
		t_fill(w, MB, 40 + i);
		CHECK(ft_file_has(img, (uint64_t)i * MB, w, MB));
	}

	/* Trim: a hole. */
	blocks = blocks_of(img);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 2 * MB, 2 * MB, NULL), 0);
	check_zero(map, img, 2 * MB, 2 * MB);
	if (holes) {
		CHECK(is_hole(img, 2 * MB, 2 * MB));
		CHECK(blocks_of(img) <= blocks - 2 * MB);
	}
	t_fill(w, MB, 40 + 1);
	CHECK(ft_file_has(img, MB, w, MB));	/* its neighbours untouched */
	t_fill(w, MB, 40 + 4);
	CHECK(ft_file_has(img, 4 * MB, w, MB));

	/* Write-zeroes, may punch: a hole again. */
	blocks = blocks_of(img);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 8 * MB, 2 * MB, NULL), 0);
	check_zero(map, img, 8 * MB, 2 * MB);
	if (holes) {
		CHECK(is_hole(img, 8 * MB, 2 * MB));
		CHECK(blocks_of(img) <= blocks - 2 * MB);
	}

	/* Write-zeroes with NO_HOLE (and FUA) over the hole: zeros, allocated. */
	blocks = blocks_of(img);
	t_io_init(&t, UMPATH_OP_WRITE_ZEROES, 8 * MB, 2 * MB, NULL);
	t.io.flags = UMPATH_IO_NO_HOLE | UMPATH_IO_FUA;
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
	CHECK(t_io_wait(&t, 10));
	CHECK_EQ_INT(t.err, 0);
	check_zero(map, img, 8 * MB, 2 * MB);
	if (holes)
		CHECK(blocks_of(img) >= blocks + 2 * MB);

	/* Write-zeroes of partial file system blocks: zeroed in place. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 12 * MB + 512, 4096, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 12 * MB + 8192, 4096, NULL), 0);
	check_zero(map, img, 12 * MB + 512, 4096);
	check_zero(map, img, 12 * MB + 8192, 4096);

	/* Out of range: refused, done() never called. */
	t_io_init(&t, UMPATH_OP_READ, SIZE - 4096, 8192, w);
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), -EINVAL);
	CHECK(!t_io_is_done(&t));
	CHECK_EQ_INT(ft_stats(ctx, img).errors + ft_stats(ctx, direct).errors, 0);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	free(w);
	return 0;
}
