/* Description: closing a file path is safe against its own completions:
 * closed on another thread right after its I/O completed (the loop thread
 * may still be reaping the link timeouts' CQEs in the path's callback), and
 * closed from inside the completion of its last I/O, on the loop thread or
 * on the submitting thread that reaped an inline completion (the path
 * drains itself there); no I/O is lost or completed twice, and nothing
 * is touched after it is freed (run under ASan by make check-sanitize). */
#include "filetest.h"

#include "internal.h"

#define BS 4096u
#define NR 8u

struct c_tio {
	struct um_tio tio;
	struct um_path *put;	/* put this path from done(), on whichever
				 * thread reaps it: the loop's, or the
				 * submitter's for inline completions */
	struct umpath_ctx *ctx;
	int err;
	_Atomic bool done;
};

static void c_done(struct um_tio *tio, int err)
{
	struct c_tio *c = container_of(tio, struct c_tio, tio);

	CHECK(!c->done);
	c->err = err;
	if (c->put)
		um_path_put(c->put);	/* the last reference: closes here */
	c->done = true;
}

static void c_init(struct c_tio *c, struct umpath_ctx *ctx, void *buf, unsigned i)
{
	memset(c, 0, sizeof(*c));
	list_init(&c->tio.tp_node);
	c->tio.op = UMPATH_OP_READ;
	c->tio.offset = (uint64_t)i * BS;
	c->tio.length = BS;
	c->tio.buf = buf;
	c->tio.done = c_done;
	c->ctx = ctx;
}

static void wait_done(struct c_tio *c)
{
	double end = t_now() + 10;

	while (!c->done) {
		CHECK(t_now() < end);
		usleep(100);
	}
}

int main(void)
{
	char img[PATH_MAX], direct[PATH_MAX + 32];
	unsigned char *buf = ft_alloc(NR * BS);
	struct c_tio c[NR];
	struct umpath_ctx *ctx;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_make_image(img, 1u << 20, 11);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	ctx = ft_ctx(0);

	for (unsigned round = 0; round < 300; round++) {
		const char *name = round & 1 ? direct : img;
		struct um_path *p;

		CHECK_EQ_INT(um_path_get(ctx, name, true, &p), 0);
		for (unsigned i = 0; i < NR; i++) {
			c_init(&c[i], ctx, buf + i * BS, i);
			um_path_submit(p, &c[i].tio);
		}
		for (unsigned i = 0; i < NR; i++) {
			wait_done(&c[i]);
			CHECK_EQ_INT(c[i].err, 0);
		}
		um_path_put(p);
	}

	for (unsigned round = 0; round < 100; round++) {
		const char *name = round & 1 ? direct : img;
		struct um_path *p;

		CHECK_EQ_INT(um_path_get(ctx, name, true, &p), 0);
		c_init(&c[0], ctx, buf, round % NR);
		c[0].put = p;
		um_path_submit(p, &c[0].tio);
		wait_done(&c[0]);
		CHECK_EQ_INT(c[0].err, 0);
	}
	CHECK_EQ_INT(umpath_path_stats(ctx, img, &(struct umpath_path_stats){ 0 }), -ENOENT);

	umpath_ctx_free(ctx);
	free(buf);
	return 0;
}
