/* Description: buffered writes run on the context's writer threads
 * (docs/writes.md), and a path that hangs there holds no more of them than
 * its share.  A loop device over a FUSE file (nbdfuse, nbdkit with the
 * pause filter) is a block device umpath trusts with a non-blocking
 * attempt, so its writes go to the writer threads; with nbdkit paused, FUA
 * writes hang in pwritev2.  Checked: writes complete on a writer thread,
 * not the submitter's; one FUA write hangs (the path's share of writers),
 * the ones queued behind them end with -ETIMEDOUT at their deadline
 * without reaching the device; writes to a healthy path meanwhile complete
 * at once; the hung one completes only after nbdkit resumes, then with
 * -ETIMEDOUT and their data on the device.  Skipped (77) without losetup,
 * nbdfuse, nbdkit or FUSE. */
#include "filetest.h"

#include "tiotest.h"

#define SIZE (8u << 20)
#define BS 4096u
#define HUNG 6u		/* FUA writes to the hung path: more than its share */
#define OK_NR 64u	/* writes to the healthy path meanwhile */
#define TIMEOUT_MS 1000u
#define SHARE 1u	/* file.c's FILE_WRITERS: writers a path may hold */

int main(void)
{
	char img[PATH_MAX], other[PATH_MAX], sock[PATH_MAX], arg[PATH_MAX + 32], dev[PATH_MAX];
	static struct w_tio hung[HUNG], ok[OK_NR], first;
	unsigned early = 0, late = 0;
	struct umpath_ctx *ctx;
	struct um_path *pa, *pb;
	const char *file;
	double t0, t1;

	alarm(45);	/* under meson's 60 s: resume nbdkit, then fail */
	ft_setup();
	ft_path(img, sizeof(img), "disk.img");
	ft_path(other, sizeof(other), "other.img");
	ft_path(sock, sizeof(sock), "pause.sock");
	ft_make_image(img, SIZE, 1);
	ft_make_image(other, SIZE, 2);
	snprintf(arg, sizeof(arg), "pause-control=%s", sock);
	{
		const char *filters[] = { "--filter=pause", NULL };
		const char *params[] = { arg, NULL };

		file = ft_fuse_start(img, filters, params);
	}
	snprintf(dev, sizeof(dev), "%s", ft_loop_attach(file));
	ctx = ft_ctx(TIMEOUT_MS);
	CHECK_EQ_INT(um_path_get(ctx, dev, true, &pa), 0);
	CHECK_EQ_INT(um_path_get(ctx, other, true, &pb), 0);
	CHECK_EQ_INT(um_workers_threads(ctx->writers), 0);

	/* A buffered write: done() on a writer thread. */
	w_init(&first, UMPATH_OP_WRITE, 0, BS, 0, 0x11);
	um_path_submit(pa, &first.tio);
	CHECK(w_wait_done(&first, 1, 1, 10));
	CHECK_EQ_INT(first.err, 0);
	CHECK(!pthread_equal(first.thread, pthread_self()));
	CHECK(um_workers_threads(ctx->writers) >= 1);

	/* The hung path: FUA writes wait for the device, which waits for
	 * nbdkit. */
	ft_pause_cmd(sock, 'p');
	for (unsigned i = 0; i < HUNG; i++)
		w_init(&hung[i], UMPATH_OP_WRITE, (uint64_t)(i + 1) * BS, BS, UMPATH_IO_FUA, (unsigned char)(0x20 + i));
	t0 = t_now();
	for (unsigned i = 0; i < HUNG; i++)
		um_path_submit(pa, &hung[i].tio);
	usleep(100000);

	/* The healthy path keeps its writers. */
	for (unsigned i = 0; i < OK_NR; i++)
		w_init(&ok[i], UMPATH_OP_WRITE, (uint64_t)i * BS, BS, i % 2 ? UMPATH_IO_FUA : 0, (unsigned char)i);
	for (unsigned i = 0; i < OK_NR; i++)
		um_path_submit(pb, &ok[i].tio);
	if (!w_wait_done(ok, OK_NR, OK_NR, 0.5))
		fprintf(stderr, "healthy path: %u of %u done after 0.5 s (%.3f s after the hang)\n",
			w_count_done(ok, OK_NR), OK_NR, t_now() - t0);
	CHECK(w_wait_done(ok, OK_NR, OK_NR, 0.5));
	for (unsigned i = 0; i < OK_NR; i++) {
		CHECK_EQ_INT(ok[i].err, 0);
		CHECK(ok[i].done_at - t0 < TIMEOUT_MS / 1000.0);
		CHECK(ft_file_has(other, (uint64_t)i * BS, ok[i].buf, BS));
	}

	/* Past the deadline: the writes queued behind the path's share have
	 * ended, unstarted; the ones in pwritev2 are still held. */
	CHECK(w_wait_done(hung, HUNG, HUNG - SHARE, 2 * TIMEOUT_MS / 1000.0));
	usleep(200000);
	pthread_mutex_lock(&w_lock);
	for (unsigned i = 0; i < HUNG; i++) {
		if (!hung[i].done)
			continue;
		early++;
		CHECK_EQ_INT(hung[i].err, -ETIMEDOUT);
		CHECK(hung[i].done_at - t0 >= TIMEOUT_MS / 1000.0 - 0.01);
	}
	pthread_mutex_unlock(&w_lock);
	CHECK_EQ_INT(early, HUNG - SHARE);

	t1 = t_now();
	ft_pause_cmd(sock, 'r');
	CHECK(w_wait_done(hung, HUNG, HUNG, 20));
	for (unsigned i = 0; i < HUNG; i++) {
		if (hung[i].done_at < t1)
			continue;
		late++;
		/* In the device by now, but past the deadline. */
		CHECK_EQ_INT(hung[i].err, -ETIMEDOUT);
		CHECK(ft_file_has(img, (uint64_t)(i + 1) * BS, hung[i].buf, BS));
	}
	CHECK_EQ_INT(late, SHARE);
	for (unsigned i = 0; i < HUNG; i++) {
		if (hung[i].done_at >= t1)
			continue;
		/* Never started: not on the device. */
		CHECK(!ft_file_has(img, (uint64_t)(i + 1) * BS, hung[i].buf, BS));
	}

	um_path_put(pa);
	um_path_put(pb);
	CHECK(um_workers_threads(ctx->writers) <= 32);
	umpath_ctx_free(ctx);
	for (unsigned i = 0; i < HUNG; i++)
		free(hung[i].buf);
	for (unsigned i = 0; i < OK_NR; i++)
		free(ok[i].buf);
	free(first.buf);
	return 0;	/* ft_cleanup detaches the loop device, then unmounts */
}
