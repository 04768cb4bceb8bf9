/* path.c - the registry of open paths: one um_path per path string, shared
 * (by reference) by every table that names it, so that reloading a table
 * or naming a path twice never opens a second connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "transports/iscsi.h"

/* In order: the first transport that claims a path string serves it. */
static const struct um_transport *const transports[] = {
	&um_mem_transport,	/* mem:NAME, or a registered bare name */
	&um_nbd_transport,	/* nbd://, nbds://, nbd+unix://, ... URIs */
	&um_iscsi_transport,	/* iscsi:// URLs */
	&um_file_transport,	/* anything else: a file or block device */
};

const struct um_transport *um_transport_for(struct umpath_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < UM_ARRAY_SIZE(transports); i++)
		if (transports[i]->claims(ctx, name))
			return transports[i];
	return NULL;
}

bool um_path_exists(struct umpath_ctx *ctx, const char *name)
{
	const struct um_transport *tp = um_transport_for(ctx, name);

	return tp && tp->exists(ctx, name);
}

int um_path_check(struct umpath_ctx *ctx, const char *name)
{
	const struct um_transport *tp = um_transport_for(ctx, name);

	if (tp && tp->exists(ctx, name))
		return 0;
	if (tp && tp->missing)
		um_detail_set("%s", tp->missing);
	return -ENOENT;
}

static struct um_path *path_find_locked(struct umpath_ctx *ctx, const char *name)
{
	struct name_node *e = name_hash_find(&ctx->paths, name);

	return e ? container_of(e, struct um_path, node) : NULL;
}

int um_path_get(struct umpath_ctx *ctx, const char *name, bool new_user,
		struct um_path **ret_path)
{
	const struct um_transport *tp;
	struct um_path *p;
	int r;

	pthread_mutex_lock(&ctx->lock);
	p = path_find_locked(ctx, name);
	if (p) {
		p->refs++;
		pthread_mutex_unlock(&ctx->lock);
		r = new_user && p->tp->attach ? p->tp->attach(p) : 0;
		if (r < 0) {
			um_path_put(p);
			return r;
		}
		*ret_path = p;
		return 0;
	}
	pthread_mutex_unlock(&ctx->lock);

	tp = um_transport_for(ctx, name);
	if (!tp)
		return -ENOENT;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->name = strdup(name);
	if (!p->name) {
		free(p);
		return -ENOMEM;
	}
	p->ctx = ctx;
	p->tp = tp;
	p->refs = 1;
	r = tp->open(ctx, p);
	if (r < 0) {
		free(p->name);
		free(p);
		return r;
	}

	/* Another thread may have opened the same path meanwhile: keep one. */
	pthread_mutex_lock(&ctx->lock);
	struct um_path *q = path_find_locked(ctx, name);
	if (q) {
		q->refs++;
		pthread_mutex_unlock(&ctx->lock);
		tp->close(p);
		free(p->name);
		free(p);
		*ret_path = q;
		return 0;
	}
	p->node.name = p->name;
	name_hash_add(&ctx->paths, &p->node);
	pthread_mutex_unlock(&ctx->lock);
	*ret_path = p;
	return 0;
}

void um_path_ref(struct um_path *p)
{
	pthread_mutex_lock(&p->ctx->lock);
	p->refs++;
	pthread_mutex_unlock(&p->ctx->lock);
}

void um_path_put(struct um_path *p)
{
	struct umpath_ctx *ctx;
	bool last;

	if (!p)
		return;
	ctx = p->ctx;
	pthread_mutex_lock(&ctx->lock);
	last = --p->refs == 0;
	if (last)
		name_hash_del(&ctx->paths, &p->node);
	pthread_mutex_unlock(&ctx->lock);
	if (!last)
		return;
	p->tp->close(p);
	free(p->name);
	free(p);
}

struct probe {
	struct um_tio tio;
	void (*done)(void *opaque, int err);
	void *opaque;
	unsigned char buf[];
};

static void probe_done(struct um_tio *tio, int err)
{
	struct probe *pr = container_of(tio, struct probe, tio);

	pr->done(pr->opaque, err);
	free(pr);
}

int um_path_probe_flags(struct um_path *p, unsigned tio_flags,
			void (*done)(void *opaque, int err), void *opaque)
{
	uint64_t len = p->size < 4096 ? p->size : 4096;
	struct probe *pr;

	/* Aligned for O_DIRECT paths. */
	if (posix_memalign((void **)&pr, 4096, sizeof(*pr) + 4096 + 4096))
		return -ENOMEM;
	memset(&pr->tio, 0, sizeof(pr->tio));
	list_init(&pr->tio.tp_node);
	pr->done = done;
	pr->opaque = opaque;
	pr->tio.op = UMPATH_OP_READ;
	pr->tio.flags = tio_flags;
	/* O_DIRECT reads whole logical blocks. */
	if ((tio_flags & UM_TIO_DIRECT) && len > 512)
		len &= ~(uint64_t)511;
	pr->tio.length = len;
	pr->tio.buf = (void *)(((uintptr_t)pr->buf + 4095) & ~(uintptr_t)4095);
	pr->tio.done = probe_done;
	um_path_submit(p, &pr->tio);
	return 0;
}

const char *umpath_transport_name(unsigned i)
{
	return i < UM_ARRAY_SIZE(transports) ? transports[i]->name : NULL;
}

unsigned um_lat_bucket(uint64_t ns)
{
	unsigned b = ns ? 64 - (unsigned)__builtin_clzll(ns) : 0;

	return b < UM_LAT_BUCKETS ? b : UM_LAT_BUCKETS - 1;
}

uint64_t um_lat_p99(const uint64_t *hist, unsigned n)
{
	uint64_t total = 0, seen = 0;

	for (unsigned b = 0; b < n; b++)
		total += hist[b];
	for (unsigned b = 0; b < n && total; b++) {
		seen += hist[b];
		if (seen * 100 >= total * 99)
			return b ? 1ull << b : 1;	/* bucket b: [2^(b-1), 2^b) */
	}
	return 0;
}

/* Windows of 256 reads (the first ones of 16 and 48, so that a new path
 * soon has a figure): recent enough to follow a path that slows down,
 * large enough for a p99. */
#define RLAT_WINDOW 256u

void um_path_read_latency(struct um_path *p, uint64_t ns)
{
	uint64_t n;

	atomic_fetch_add_explicit(&p->rlat_win[um_lat_bucket(ns)], 1, memory_order_relaxed);
	n = atomic_fetch_add_explicit(&p->rlat_n, 1, memory_order_relaxed) + 1;
	if (n == 16 || n == 64 || n % RLAT_WINDOW == 0) {
		uint64_t hist[UM_LAT_BUCKETS];

		/* A read counted meanwhile lands in this window or the next:
		 * either is right for an estimate. */
		for (unsigned b = 0; b < UM_LAT_BUCKETS; b++)
			hist[b] = atomic_exchange_explicit(&p->rlat_win[b], 0, memory_order_relaxed);
		atomic_store_explicit(&p->read_p99_ns, um_lat_p99(hist, UM_LAT_BUCKETS),
				      memory_order_relaxed);
	}
}

/* The plain sum of a path's counters. */
struct counts {
	uint64_t started, errors, path_errors, lat_ns_sum, read_bytes, write_bytes;
	uint64_t lat_hist[UM_LAT_BUCKETS];
};

static void counts_add(struct counts *sum, struct um_path_counters *c)
{
	/* The completed first: an I/O is started before it completes, so
	 * started read after them is not below their count (the reader
	 * clamps it anyway: relaxed loads promise no order). */
	for (unsigned b = 0; b < UM_LAT_BUCKETS; b++)
		sum->lat_hist[b] += atomic_load_explicit(&c->lat_hist[b], memory_order_relaxed);
	sum->errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
	sum->path_errors += atomic_load_explicit(&c->path_errors, memory_order_relaxed);
	sum->lat_ns_sum += atomic_load_explicit(&c->lat_ns_sum, memory_order_relaxed);
	sum->read_bytes += atomic_load_explicit(&c->read_bytes, memory_order_relaxed);
	sum->write_bytes += atomic_load_explicit(&c->write_bytes, memory_order_relaxed);
	sum->started += atomic_load_explicit(&c->started, memory_order_relaxed);
}

/* Caller holds ctx->lock: the owner does not change meanwhile. */
static void counts_read_locked(struct um_path *p, struct counts *sum)
{
	*sum = (struct counts){ 0 };
	counts_add(sum, &p->shared);
	if (p->owner)
		counts_add(sum, p->owner);
}

bool um_path_counters_claim(struct um_path *p, struct um_path_counters *own)
{
	bool mine;

	pthread_mutex_lock(&p->ctx->lock);
	if (!p->owner)
		p->owner = own;
	mine = p->owner == own;
	pthread_mutex_unlock(&p->ctx->lock);
	return mine;
}

void um_path_counters_release(struct um_path *p, struct um_path_counters *own)
{
	struct counts sum = { 0 };

	pthread_mutex_lock(&p->ctx->lock);
	if (p->owner == own) {
		/* Its writer is done: no I/O of its table is left, and its
		 * map's lock was released after the last. */
		counts_add(&sum, own);
		for (unsigned b = 0; b < UM_LAT_BUCKETS; b++)
			um_counter_add(&p->shared.lat_hist[b], sum.lat_hist[b], false);
		um_counter_add(&p->shared.errors, sum.errors, false);
		um_counter_add(&p->shared.path_errors, sum.path_errors, false);
		um_counter_add(&p->shared.lat_ns_sum, sum.lat_ns_sum, false);
		um_counter_add(&p->shared.read_bytes, sum.read_bytes, false);
		um_counter_add(&p->shared.write_bytes, sum.write_bytes, false);
		um_counter_add(&p->shared.started, sum.started, false);
		p->owner = NULL;
	}
	pthread_mutex_unlock(&p->ctx->lock);
}

void um_path_stats_read_locked(struct um_path *p, struct umpath_path_stats *ret)
{
	struct counts c;
	uint64_t ios = 0;

	counts_read_locked(p, &c);
	for (unsigned b = 0; b < UM_LAT_BUCKETS; b++)
		ios += c.lat_hist[b];
	*ret = (struct umpath_path_stats){
		.ios = ios,
		.bytes = c.read_bytes + c.write_bytes,
		.errors = c.errors,
		.inflight = c.started > ios ? (uint32_t)(c.started - ios) : 0,
		.mean_latency_ns = ios ? c.lat_ns_sum / ios : 0,
		.p99_latency_ns = um_lat_p99(c.lat_hist, UM_LAT_BUCKETS),
		.aborts = um_iscsi_aborts(p),
	};
}

void um_path_io_stats_read_locked(struct um_path *p, struct umpath_path_io_stats *ret)
{
	struct counts c;

	counts_read_locked(p, &c);
	*ret = (struct umpath_path_io_stats){
		.read_bytes = c.read_bytes,
		.write_bytes = c.write_bytes,
		.path_errors = c.path_errors,
		.target_errors = c.errors > c.path_errors ? c.errors - c.path_errors : 0,
		.lat_sum_ns = c.lat_ns_sum,
		.hedges_won = atomic_load(&p->st_hedges_won),
		.hedges_lost = atomic_load(&p->st_hedges_lost),
		.hedged_reads = atomic_load(&p->st_hedged),
	};
	/* A histogram's count is the sum of its buckets. */
	for (unsigned b = 0; b < UM_LAT_BUCKETS; b++)
		ret->lat_count += ret->lat_buckets[b] = c.lat_hist[b];
}

int umpath_path_stats(struct umpath_ctx *ctx, const char *name, struct umpath_path_stats *ret)
{
	struct um_path *p;

	pthread_mutex_lock(&ctx->lock);
	p = path_find_locked(ctx, name);
	if (p)
		um_path_stats_read_locked(p, ret);
	pthread_mutex_unlock(&ctx->lock);
	return p ? 0 : -ENOENT;
}

int umpath_path_io_stats(struct umpath_ctx *ctx, const char *name, struct umpath_path_io_stats *ret)
{
	struct um_path *p;

	pthread_mutex_lock(&ctx->lock);
	p = path_find_locked(ctx, name);
	if (p)
		um_path_io_stats_read_locked(p, ret);
	pthread_mutex_unlock(&ctx->lock);
	return p ? 0 : -ENOENT;
}

struct um_path *um_path_find(struct umpath_ctx *ctx, const char *name)
{
	struct um_path *p;

	pthread_mutex_lock(&ctx->lock);
	p = path_find_locked(ctx, name);
	if (p)
		p->refs++;
	pthread_mutex_unlock(&ctx->lock);
	return p;
}

struct pub_probe {
	struct um_path *p;
	void (*done)(void *opaque, int err);
	void *opaque;
};

static void pub_probe_done(void *opaque, int err)
{
	struct pub_probe *pp = opaque;

	pp->done(pp->opaque, err);
	um_path_put(pp->p);
	free(pp);
}

int umpath_path_probe(struct umpath_ctx *ctx, const char *name,
		      void (*done)(void *opaque, int err), void *opaque)
{
	struct pub_probe *pp;
	struct um_path *p;
	int r = -ENOENT;

	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	/* Only paths some map has open: a probe never opens a new one. */
	pthread_mutex_lock(&ctx->lock);
	p = path_find_locked(ctx, name);
	if (p) {
		p->refs++;
		pp->p = p;
		r = 0;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (r) {
		free(pp);
		return r;
	}
	pp->done = done;
	pp->opaque = opaque;
	r = um_path_probe(pp->p, pub_probe_done, pp);
	if (r) {
		um_path_put(pp->p);
		free(pp);
	}
	return r;
}
