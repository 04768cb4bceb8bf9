/* Description: three nbdkit servers share one image; one of them starts
 * failing every request with EIO (error filter, error-file created in the
 * middle of a rewrite of the whole image).  That path is failed (status
 * F), I/O goes on through the other two, no error reaches the caller and
 * every block reads back - through the map and in the image file - as
 * last written. */
#include "nbdtest.h"

#define SIZE (16u << 20)
#define NBLOCKS (SIZE / T_BS)

static void inject(void *opaque)
{
	const char *flag = opaque;
	int fd = open(flag, O_WRONLY | O_CREAT, 0644);

	CHECK(fd >= 0);
	close(fd);
}

int main(void)
{
	static const char *const filters[] = { "error", NULL };
	char image[256], flag[256], errfile[300], table[2048];
	struct umpath_ctx_opts o = { .io_timeout_ms = 5000 };
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	struct t_srv *s[3];
	struct t_load ld;

	t_setup(filters);
	t_image("disk.img", SIZE, image, sizeof(image));
	t_path(flag, sizeof(flag), "inject");
	snprintf(errfile, sizeof(errfile), "error-file=%s", flag);
	s[0] = t_srv_start("a", (const char *const[]){ "file", image, NULL });
	s[1] = t_srv_start("b", (const char *const[]){ "--filter=error", "file", image,
							"error=EIO", "error-rate=100%",
							errfile, NULL });
	s[2] = t_srv_start("c", (const char *const[]){ "file", image, NULL });

	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 3 1 %s 1 %s 1 %s 1", s[0]->uri,
		 s[1]->uri, s[2]->uri);
	map = t_map_new(ctx, table);
	CHECK_EQ_INT(umpath_map_size(map), SIZE);

	t_load_init(&ld, map, 16);
	t_write_all(&ld, NBLOCKS, 1);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK(t_stats(ctx, s[1]->uri).ios > 0);
	CHECK_EQ_INT(t_path_state(map, s[1]->uri), 'A');

	t_rewrite_with_fault(&ld, NBLOCKS, 2, inject, flag);
	if (ld.errors)
		fprintf(stderr, "first error %d\n", ld.first_err);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	CHECK_EQ_INT(t_path_state(map, s[1]->uri), 'F');
	CHECK_EQ_INT(t_path_state(map, s[0]->uri), 'A');
	CHECK_EQ_INT(t_path_state(map, s[2]->uri), 'A');
	CHECK(t_stats(ctx, s[1]->uri).errors >= 1);

	/* A failed path gets no I/O: the errors stop at the failing one(s). */
	uint64_t ios_b = t_stats(ctx, s[1]->uri).ios;
	t_verify_all(&ld, NBLOCKS, 2);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	CHECK_EQ_INT(t_stats(ctx, s[1]->uri).ios, ios_b);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	t_verify_file(image, NBLOCKS, 2);

	t_load_fini(&ld);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
	return 0;
}
