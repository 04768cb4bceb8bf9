/* Description: I/O on a file path that hangs for real - a FUSE file
 * (nbdfuse) served by nbdkit whose pause filter holds every request - meets
 * its deadline (io_timeout_ms 1000) without giving a buffer back while the
 * kernel still holds it.  I/O that never reached the kernel (waiting for a
 * slot) ends with -ETIMEDOUT at its deadline, its buffer untouched; I/O in
 * the kernel, which cannot cancel a FUSE request, is not completed at the
 * deadline but only once the request really ends (after nbdkit resumes),
 * then with -ETIMEDOUT.  Through a map, a write on the hung path completes
 * only after that, retried on the other path, the hung path failed and the
 * data on the image.  Skipped (77) without nbdfuse, nbdkit or FUSE. */
#include "filetest.h"

#include "tiotest.h"

#define SIZE (8u << 20)
#define BS 4096u
#define NR 200u		/* more than a path's slots: some wait in its FIFO */
#define TIMEOUT_MS 1000u

static void test_direct(struct umpath_ctx *ctx, const char *fuse, const char *img,
			const char *sock)
{
	static struct w_tio w[NR];
	unsigned early = 0, late = 0;
	struct um_path *p;
	double t0, t1;

	CHECK_EQ_INT(um_path_get(ctx, fuse, true, &p), 0);
	for (unsigned i = 0; i < NR; i++)
		w_init(&w[i], UMPATH_OP_READ, (uint64_t)i * BS, BS, 0, 0xee);
	ft_pause_cmd(sock, 'p');
	t0 = t_now();
	for (unsigned i = 0; i < NR; i++)
		um_path_submit(p, &w[i].tio);
	usleep(2 * TIMEOUT_MS * 1000);

	/* Past the deadline: what never reached the kernel has ended, what
	 * did is still held, with its buffer. */
	pthread_mutex_lock(&w_lock);
	for (unsigned i = 0; i < NR; i++) {
		if (!w[i].done)
			continue;
		early++;
		CHECK_EQ_INT(w[i].err, -ETIMEDOUT);
		CHECK(w[i].done_at - t0 >= TIMEOUT_MS / 1000.0 - 0.01);
		CHECK(w[i].buf[0] == 0xee && w[i].buf[BS - 1] == 0xee);
	}
	pthread_mutex_unlock(&w_lock);
	CHECK(early > 0 && early < NR);

	t1 = t_now();
	ft_pause_cmd(sock, 'r');
	CHECK(w_wait_done(w, NR, NR, 10));
	for (unsigned i = 0; i < NR; i++) {
		if (w[i].done_at < t1)
			continue;
		late++;
		CHECK_EQ_INT(w[i].err, -ETIMEDOUT);
		/* The hazard done() waited for: the read landed in the
		 * buffer after the deadline. */
		CHECK(ft_file_has(img, (uint64_t)i * BS, w[i].buf, BS));
	}
	CHECK_EQ_INT(early + late, NR);
	for (unsigned i = 0; i < NR; i++)
		free(w[i].buf);
	um_path_put(p);
}

static void test_map(struct umpath_ctx *ctx, const char *fuse, const char *img, const char *sock)
{
	char direct[PATH_MAX + 32], table[3 * PATH_MAX];
	unsigned char *b = ft_alloc(BS), *r = ft_alloc(BS);
	struct umpath_map *map;
	struct t_io t;
	double t1;

	/* Failover: group 1 the FUSE path, group 2 the image. */
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	snprintf(table, sizeof(table),
		 "0 0 2 1 round-robin 0 1 1 %s 1 round-robin 0 1 1 %s 1", fuse, direct);
	map = t_map(ctx, table);
	t_fill(b, BS, 77);
	ft_pause_cmd(sock, 'p');
	t_io_init(&t, UMPATH_OP_WRITE, 5 * BS, BS, b);
	CHECK_EQ_INT(umpath_map_submit(map, &t.io), 0);
	CHECK(!t_io_wait(&t, 2 * TIMEOUT_MS / 1000.0));
	CHECK(!strstr(t_status(map), " F "));
	t1 = t_now();
	ft_pause_cmd(sock, 'r');
	CHECK(t_io_wait(&t, 10));
	CHECK_EQ_INT(t.err, 0);
	CHECK(t.done_at >= t1);
	CHECK(strstr(t_status(map), "/nbd?direct F 1 "));
	CHECK(ft_stats(ctx, direct).ios == 1);
	CHECK(ft_file_has(img, 5 * BS, b, BS));
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 5 * BS, BS, r), 0);
	CHECK(!memcmp(b, r, BS));
	umpath_map_free(map);
	free(b);
	free(r);
}

int main(void)
{
	char img[PATH_MAX], sock[PATH_MAX], arg[PATH_MAX + 32], fuse[PATH_MAX + 32];
	struct umpath_ctx *ctx;
	const char *file;

	alarm(45);	/* under meson's 60 s: resume nbdkit, then fail */
	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_path(sock, sizeof(sock), "pause.sock");
	ft_make_image(img, SIZE, 0);
	snprintf(arg, sizeof(arg), "pause-control=%s", sock);
	{
		const char *filters[] = { "--filter=pause", NULL };
		const char *params[] = { arg, NULL };

		file = ft_fuse_start(img, filters, params);
	}
	/* O_DIRECT: every read reaches nbdkit, none is served from cache. */
	snprintf(fuse, sizeof(fuse), "file:%s?direct", file);
	ctx = ft_ctx(TIMEOUT_MS);

	test_direct(ctx, fuse, img, sock);
	test_map(ctx, fuse, img, sock);

	umpath_ctx_free(ctx);
	ft_fuse_stop();
	return 0;
}
