/* Description: three nbdkit servers share one image; one of them is
 * paused (pause filter) in the middle of a rewrite of the whole image, so
 * its requests hang.  With io_timeout 1000 ms, the hung I/O completes
 * through another path within the timeout plus a small margin, no error
 * reaches the caller, the hung path is failed, and the data reads back
 * intact; resumed, the path can be reinstated (the transport reconnected
 * after the timeout) and carries I/O again.  Once with 16 I/Os in flight
 * over three paths, once with 200 over two (more than a connection takes:
 * some wait in its FIFO).  And a read that timed out on the only path
 * fails, and its buffer stays untouched when the server answers later. */
#include "nbdtest.h"

#define SIZE (8u << 20)
#define NBLOCKS (SIZE / T_BS)
#define TIMEOUT_MS 1000u
#define MARGIN_S 0.5

static void pause_server(void *opaque)
{
	t_pause_ctl(opaque, 'p');
}

/* n paths (the second one pausable) over one image, depth I/Os in flight
 * while the second path's server is paused. */
static void run(unsigned n, unsigned depth, const char *tag)
{
	char image[256], ctl[256], ctlarg[300], table[2048], name[32];
	struct umpath_ctx_opts o = { .io_timeout_ms = TIMEOUT_MS };
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	struct t_srv *s[3];
	struct t_load ld;
	size_t len;
	double t0;

	snprintf(name, sizeof(name), "%s.img", tag);
	t_image(name, SIZE, image, sizeof(image));
	snprintf(name, sizeof(name), "%s.ctl", tag);
	t_path(ctl, sizeof(ctl), name);
	snprintf(ctlarg, sizeof(ctlarg), "pause-control=%s", ctl);
	len = (size_t)snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 %u 1", n);
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s-%u", tag, i);
		/* --threads=1: nbdkit 1.32 aborts when a client hangs up
		 * while several of its threads still have replies to send
		 * (fixed upstream by 9d82aa4f), as our timeout does. */
		if (i == 1)
			s[i] = t_srv_start(name, (const char *const[]){ "--threads=1",
									 "--filter=pause", "file",
									 image, ctlarg, NULL });
		else
			s[i] = t_srv_start(name, (const char *const[]){ "file", image, NULL });
		len += (size_t)snprintf(table + len, sizeof(table) - len, " %s 1", s[i]->uri);
	}
	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	map = t_map_new(ctx, table);

	t_load_init(&ld, map, depth);
	t_write_all(&ld, NBLOCKS, 1);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK(ld.max_lat < TIMEOUT_MS / 1000.0);	/* nothing hung */

	t0 = t_now();
	t_rewrite_with_fault(&ld, NBLOCKS, 2, pause_server, ctl);
	fprintf(stderr, "%s: rewrite with a hung path: %.3f s, slowest I/O %.3f s\n", tag,
		t_now() - t0, ld.max_lat);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	/* Some I/O did hang, and none for longer than the timeout allows. */
	CHECK(ld.max_lat >= TIMEOUT_MS / 1000.0 * 0.9);
	CHECK(ld.max_lat <= TIMEOUT_MS / 1000.0 + MARGIN_S);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ_INT(t_path_state(map, s[i]->uri), i == 1 ? 'F' : 'A');
	CHECK(t_stats(ctx, s[1]->uri).errors >= 1);
	CHECK_EQ_INT(t_stats(ctx, s[1]->uri).inflight, 0);

	ld.max_lat = 0;
	t_verify_all(&ld, NBLOCKS, 2);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	CHECK(ld.max_lat < TIMEOUT_MS / 1000.0);	/* nothing hung */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	t_verify_file(image, NBLOCKS, 2);

	/* Resumed, the server answers the new connection the transport made
	 * after the timeout: the path can be reinstated and carries I/O. */
	t_pause_ctl(ctl, 'r');
	CHECK(t_reinstate_when_back(ctx, map, &ld, s[1]->uri, 2, 15));
	uint64_t ios = t_stats(ctx, s[1]->uri).ios;
	t_verify_all(&ld, NBLOCKS, 2);
	CHECK_EQ_INT(ld.errors, 0);
	CHECK_EQ_INT(ld.bad_data, 0);
	CHECK_EQ_INT(t_path_state(map, s[1]->uri), 'A');
	CHECK(t_stats(ctx, s[1]->uri).ios >= ios + NBLOCKS / n - 1);

	t_load_fini(&ld);
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

/* A read that timed out on a single path fails (no other path), and its
 * buffer is never written afterwards, not even when the server wakes up
 * and sends the data. */
static void stale_read(void)
{
	char image[256], ctl[256], ctlarg[300], table[1024], msg[512];
	struct umpath_ctx_opts o = { .io_timeout_ms = TIMEOUT_MS };
	static unsigned char buf[T_BS], want[T_BS], snap[T_BS];
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	struct t_srv *s;
	struct t_io t;
	double t0;

	t_image("stale.img", SIZE, image, sizeof(image));
	t_path(ctl, sizeof(ctl), "stale.ctl");
	snprintf(ctlarg, sizeof(ctlarg), "pause-control=%s", ctl);
	s = t_srv_start("stale", (const char *const[]){ "--threads=1", "--filter=pause", "file",
							image, ctlarg, NULL });
	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 1 1 %s 1", s->uri);
	map = t_map_new(ctx, table);
	t_pattern(want, 0, 7);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, T_BS, want), 0);

	t_pause_ctl(ctl, 'p');
	t_io_init(&t, UMPATH_OP_READ, 0, T_BS, buf);
	t0 = t_now();
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
	CHECK(t_io_wait(&t, TIMEOUT_MS / 1000.0 + 5));
	CHECK_EQ_INT(t.err, -EIO);	/* the only path failed: nothing left */
	CHECK(t.done_at - t0 >= TIMEOUT_MS / 1000.0 * 0.9);
	CHECK(t.done_at - t0 <= TIMEOUT_MS / 1000.0 + MARGIN_S);
	CHECK_EQ_INT(t_path_state(map, s->uri), 'F');

	/* (libnbd zeroes a read buffer when the read is sent.) */
	memcpy(snap, buf, T_BS);
	CHECK(memcmp(snap, want, T_BS));
	t_pause_ctl(ctl, 'r');	/* the server answers the read now */
	usleep(300000);
	CHECK(!memcmp(buf, snap, T_BS));

	/* The transport reconnected meanwhile: the path works again. */
	snprintf(msg, sizeof(msg), "reinstate_path %s", s->uri);
	double until = t_now() + 10;
	int r;
	do {
		t_msg(map, msg, 0);
		r = t_sync(map, UMPATH_OP_READ, 0, T_BS, buf);
		if (r)
			usleep(100000);
	} while (r && t_now() < until);
	CHECK_EQ_INT(r, 0);
	CHECK(!memcmp(buf, want, T_BS));
	umpath_map_free(map);
	umpath_ctx_free(ctx);
}

int main(void)
{
	static const char *const filters[] = { "pause", NULL };

	t_setup(filters);
	run(3, 16, "three");
	/* More in flight than a connection takes (64): the rest waits in the
	 * transport's FIFO, and times out from there too. */
	run(2, 200, "deep");
	stale_read();
	return 0;
}
