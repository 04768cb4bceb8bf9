/* Description: concurrent I/O on two paths to one image (buffered and
 * O_DIRECT, round-robin): four threads each keep 96 I/Os in flight - more
 * than a path has slots, so some wait in its FIFO - mixing reads, writes,
 * FUA writes, write-zeroes, trims and flushes over their own quarter of the
 * image, submitting again from the completion callbacks; every I/O
 * completes exactly once without error and each quarter ends holding what
 * its thread last wrote there, in the map and in the file. */
#include "filetest.h"

#define SIZE (16u << 20)
#define BS 4096u
#define THREADS 4u
#define DEPTH 96u
#define ROUNDS 3000u
#define BLOCKS (SIZE / BS / THREADS)

struct worker;

struct op {
	struct umpath_io io;
	struct worker *w;
	unsigned char *buf;
};

struct worker {
	struct umpath_map *map;
	unsigned id;
	unsigned seed;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned left;			/* I/Os still to submit */
	unsigned inflight;
	unsigned errors;
	unsigned gen[BLOCKS];		/* what each block holds: 0 zeros, else a seed */
	bool busy[BLOCKS];		/* one I/O per block at a time */
	struct op ops[DEPTH];
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void op_done(struct umpath_io *io, int err);

/* Pick a free block and an op for o; false if all are busy (worker lock held). */
static bool op_prepare(struct worker *w, struct op *o)
{
	unsigned b = rnd(&w->seed) % BLOCKS, kind = rnd(&w->seed) % 16;

	for (unsigned n = 0; w->busy[b]; n++, b = (b + 1) % BLOCKS)
		if (n == BLOCKS)
			return false;
	memset(&o->io, 0, sizeof(o->io));
	o->io.offset = ((uint64_t)w->id * BLOCKS + b) * BS;
	o->io.length = BS;
	o->io.buf = o->buf;
	o->io.done = op_done;
	o->io.opaque = (void *)(uintptr_t)b;
	if (kind < 6) {
		o->io.op = UMPATH_OP_READ;
	} else if (kind < 12) {
		unsigned g = (rnd(&w->seed) | 1u) & 0xffffff;

		o->io.op = UMPATH_OP_WRITE;
		o->io.flags = kind == 11 ? UMPATH_IO_FUA : 0;
		t_fill(o->buf, BS, g);
		w->gen[b] = g;
	} else if (kind < 14) {
		o->io.op = UMPATH_OP_WRITE_ZEROES;
		o->io.flags = kind == 13 ? UMPATH_IO_NO_HOLE : 0;
		w->gen[b] = 0;
	} else if (kind == 14) {
		o->io.op = UMPATH_OP_TRIM;
		w->gen[b] = 0;
	} else {
		o->io.op = UMPATH_OP_FLUSH;
		o->io.offset = o->io.length = 0;
		return true;
	}
	w->busy[b] = true;
	return true;
}

static void op_submit(struct worker *w, struct op *o)
{
	pthread_mutex_lock(&w->lock);
	if (!w->left || !op_prepare(w, o)) {
		w->inflight--;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->left--;
	pthread_mutex_unlock(&w->lock);
	CHECK_EQ_INT(umpath_map_submit(w->map, &o->io), 0);
}

static void op_done(struct umpath_io *io, int err)
{
	struct op *o = (struct op *)io;	/* io is its first member */
	struct worker *w = o->w;
	unsigned b = (unsigned)(uintptr_t)io->opaque;

	pthread_mutex_lock(&w->lock);
	if (err) {
		fprintf(stderr, "worker %u: op %d at %llu: %d\n", w->id, io->op,
			(unsigned long long)io->offset, err);
		w->errors++;
	}
	if (io->op == UMPATH_OP_READ && !err) {
		unsigned char *want = malloc(BS);

		CHECK(want);
		if (w->gen[b])
			t_fill(want, BS, w->gen[b]);
		else
			memset(want, 0, BS);
		if (memcmp(want, o->buf, BS)) {
			fprintf(stderr, "worker %u: block %u differs\n", w->id, b);
			w->errors++;
		}
		free(want);
	}
	if (io->op != UMPATH_OP_FLUSH)
		w->busy[b] = false;
	pthread_mutex_unlock(&w->lock);
	op_submit(w, o);	/* from the completion: maybe the loop thread */
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	double end = t_now() + 40;

	pthread_mutex_lock(&w->lock);
	w->inflight = DEPTH;
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < DEPTH; i++)
		op_submit(w, &w->ops[i]);
	pthread_mutex_lock(&w->lock);
	while (w->inflight) {
		struct timespec dl = { .tv_sec = time(NULL) + 1 };

		CHECK(t_now() < end);
		pthread_cond_timedwait(&w->cond, &w->lock, &dl);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int main(void)
{
	char img[PATH_MAX], direct[PATH_MAX + 32], table[2 * PATH_MAX + 128];
	static struct worker workers[THREADS];
	pthread_t threads[THREADS];
	unsigned char *r = ft_alloc(BS), *want = malloc(BS);
	struct umpath_ctx *ctx;
	struct umpath_map *map;

	ft_setup();
	ft_need_direct();
	ft_path(img, sizeof(img), "disk.img");
	ft_make_image(img, SIZE, 0);
	snprintf(direct, sizeof(direct), "file:%s?direct", img);
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 2 1 %s 1 %s 1", img, direct);
	ctx = ft_ctx(0);
	map = t_map(ctx, table);

	for (unsigned t = 0; t < THREADS; t++) {
		struct worker *w = &workers[t];

		w->map = map;
		w->id = t;
		w->seed = 17 + t;
		w->left = ROUNDS;
		pthread_mutex_init(&w->lock, NULL);
		pthread_cond_init(&w->cond, NULL);
		for (unsigned i = 0; i < DEPTH; i++) {
			w->ops[i].w = w;
			w->ops[i].buf = ft_alloc(BS);
		}
	}
	/* Start from zeros (gen 0 everywhere); a write-zeroes of it all. */
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE_ZEROES, 0, SIZE, NULL), 0);

	for (unsigned t = 0; t < THREADS; t++)
		CHECK(pthread_create(&threads[t], NULL, worker_main, &workers[t]) == 0);
	for (unsigned t = 0; t < THREADS; t++)
		CHECK(pthread_join(threads[t], NULL) == 0);

	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	for (unsigned t = 0; t < THREADS; t++) {
		struct worker *w = &workers[t];

		CHECK_EQ_INT(w->errors, 0);
		CHECK_EQ_INT(w->left, 0);
		for (unsigned b = 0; b < BLOCKS; b++) {
			uint64_t off = ((uint64_t)t * BLOCKS + b) * BS;

			if (w->gen[b])
				t_fill(want, BS, w->gen[b]);
			else
				memset(want, 0, BS);
			CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, off, BS, r), 0);
			CHECK(!memcmp(want, r, BS));
			CHECK(ft_file_has(img, off, want, BS));
		}
		for (unsigned i = 0; i < DEPTH; i++)
			free(w->ops[i].buf);
	}
	CHECK_EQ_INT(ft_stats(ctx, img).errors + ft_stats(ctx, direct).errors, 0);
	CHECK(ft_stats(ctx, img).ios > 1000 && ft_stats(ctx, direct).ios > 1000);

	umpath_map_free(map);
	umpath_ctx_free(ctx);
	free(r);
	free(want);
	return 0;
}
