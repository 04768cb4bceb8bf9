/* Description: three nbdkit servers share one image; one is killed with
 * SIGKILL in the middle of a rewrite of the whole image.  Its I/O fails
 * over, no error reaches the caller, the data reads back intact.  Then the
 * server is started again on the same socket: the transport reconnects by
 * itself, so reinstate_path succeeds and I/O flows through that path
 * again (its I/O count grows, it stays active). */
#include "nbdtest.h"

#define SIZE (8u << 20)
#define NBLOCKS (SIZE / T_BS)

static void kill_server(void *opaque)
{
	t_srv_kill(opaque);
}

int main(void)
{
	char image[256], table[2048], msg[512];
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	struct t_srv *s[3];
	struct t_load ld;

	t_setup(NULL);
	t_image("disk.img", SIZE, image, sizeof(image));
	for (unsigned i = 0; i < 3; i++) {
		char name[2] = { (char)('a' + i), 0 };

		s[i] = t_srv_start(name, (const char *const[]){ "file", image, NULL });
	}
	CHECK(umpath_ctx_new(NULL, &ctx) == 0);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 3 1 %s 1 %s 1 %s 1", s[0]->uri,
		 s[1]->uri, s[2]->uri);
	map = t_map_new(ctx, table);

	t_load_init(&ld, map, 16);
	t_write_all(&ld, NBLOCKS, 1);
	CHECK_EQ_INT(ld.errors, 0);

	t_rewrite_with_fault(&ld, NBLOCKS, 2, kill_server, s[1]);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	CHECK_EQ_INT(t_path_state(map, s[1]->uri), 'F');
	t_verify_all(&ld, NBLOCKS, 2);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	t_verify_file(image, NBLOCKS, 2);

	/* While the server is down, a reinstated path fails again at once
	 * (the transport has no connection) and nothing reaches the caller. */
	snprintf(msg, sizeof(msg), "reinstate_path %s", s[1]->uri);
	t_msg(map, msg, 0);
	t_verify_all(&ld, 64, 2);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(t_path_state(map, s[1]->uri), 'F');

	/* Back: within the reconnect backoff (5 s at most) plus a margin. */
	t_srv_restart(s[1]);
	CHECK(t_reinstate_when_back(ctx, map, &ld, s[1]->uri, 2, 15));
	/* And it carries writes too. */
	uint64_t ios = t_stats(ctx, s[1]->uri).ios;
	t_write_all(&ld, NBLOCKS, 3);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK(t_stats(ctx, s[1]->uri).ios > ios + NBLOCKS / 4);
	CHECK_EQ_INT(t_path_state(map, s[1]->uri), 'A');
	t_verify_all(&ld, NBLOCKS, 3);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);

	t_load_fini(&ld);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
	return 0;
}
