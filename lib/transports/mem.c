/* mem.c - the in-memory transport: a store shared by N named paths, each
 * with its own fault state (online, offline, hang, delay), so the engine's
 * failover can be tested without a kernel or a network. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "selector.h"

struct mem_store;

struct mem_path {
	struct mem_store *store;
	char *name;			/* without the "mem:" prefix */
	struct name_node hnode;		/* in ctx->mem_names, guarded by ctx->lock */
	enum umpath_mem_fault fault;	/* written under store->lock (__atomic_store_n);
					 * mem_submit() reads it without, for online */
	unsigned arg;			/* delay in us, or errno; guarded by store->lock */
	unsigned opens;			/* guarded by ctx->lock */
	_Atomic uint64_t ios;
	struct list_head held;		/* hung I/O, guarded by store->lock */
	struct list_head delayed;	/* by deadline, guarded by store->lock */
	struct um_timer timer;		/* completes delayed I/O */
};

struct mem_store {
	struct list_head node;		/* in ctx->mem_stores, guarded by ctx->lock */
	struct umpath_ctx *ctx;
	pthread_mutex_t lock;
	uint8_t *data;
	uint64_t size;
	int bare;			/* names usable without "mem:" */
	bool forgotten;			/* reset: off ctx->mem_stores, freed at the
					 * last close; guarded by ctx->lock */
	unsigned opens;			/* of all its paths, guarded by ctx->lock */
	unsigned nr;
	struct mem_path paths[];
};

static const char *mem_strip(const char *name)
{
	return strncmp(name, "mem:", 4) ? name : name + 4;
}

/* Caller holds ctx->lock.  A name is in at most one store (bare or not),
 * so "mem:NAME" finds it in any and NAME only in a bare one. */
static struct mem_path *mem_find_locked(struct umpath_ctx *ctx, const char *name)
{
	struct name_node *e = name_hash_find(&ctx->mem_names, mem_strip(name));
	struct mem_path *mp = e ? container_of(e, struct mem_path, hnode) : NULL;

	if (mp && strncmp(name, "mem:", 4) && !mp->store->bare)
		return NULL;
	return mp;
}

/* Caller holds ctx->lock: off the names, which a new store may take. */
static void mem_store_unname_locked(struct mem_store *s)
{
	for (unsigned i = 0; i < s->nr; i++)
		name_hash_del(&s->ctx->mem_names, &s->paths[i].hnode);
}

static struct mem_path *mem_find(struct umpath_ctx *ctx, const char *name)
{
	struct mem_path *mp;

	pthread_mutex_lock(&ctx->lock);
	mp = mem_find_locked(ctx, name);
	pthread_mutex_unlock(&ctx->lock);
	return mp;
}

static int mem_do_io(struct mem_path *mp, struct um_tio *tio)
{
	struct mem_store *s = mp->store;

	if (tio->offset > s->size || tio->length > s->size - tio->offset)
		return -EINVAL;
	if (!tio->length)
		return 0;	/* buf may be NULL, which memcpy may not see */
	switch (tio->op) {
	case UMPATH_OP_READ:
		memcpy(tio->buf, s->data + tio->offset, tio->length);
		return 0;
	case UMPATH_OP_WRITE:
		memcpy(s->data + tio->offset, tio->buf, tio->length);
		return 0;
	case UMPATH_OP_TRIM:
	case UMPATH_OP_WRITE_ZEROES:
		memset(s->data + tio->offset, 0, tio->length);
		return 0;
	case UMPATH_OP_FLUSH:
		return 0;
	}
	return -EINVAL;
}

/* What an I/O meets on a path that does not hang or delay it. */
static int mem_fault_result(struct mem_path *mp, enum umpath_mem_fault fault, unsigned arg,
			    struct um_tio *tio)
{
	if (fault == UMPATH_MEM_OFFLINE)
		return -EIO;
	if (fault == UMPATH_MEM_ERROR)
		return arg ? -(int)arg : -EIO;
	return mem_do_io(mp, tio);
}

static void mem_delay_fire(struct um_timer *t)
{
	struct mem_path *mp = container_of(t, struct mem_path, timer);
	struct list_head due;
	struct um_tio *tio, *n;
	uint64_t now = um_now_ns();

	list_init(&due);
	pthread_mutex_lock(&mp->store->lock);
	list_for_each_entry_safe(tio, n, &mp->delayed, tp_node) {
		if (tio->tp_time_ns > now)
			break;
		list_move_tail(&tio->tp_node, &due);
	}
	if (!list_empty(&mp->delayed)) {
		tio = list_first_entry(&mp->delayed, struct um_tio, tp_node);
		um_timer_arm(mp->store->ctx->loop, &mp->timer, tio->tp_time_ns - now);
	}
	pthread_mutex_unlock(&mp->store->lock);
	list_for_each_entry_safe(tio, n, &due, tp_node) {
		list_del_init(&tio->tp_node);
		tio->done(tio, mem_do_io(mp, tio));
	}
}

static void mem_submit(struct um_path *p, struct um_tio *tio)
{
	struct mem_path *mp = p->priv;
	struct mem_store *s = mp->store;
	enum umpath_mem_fault fault;

	mp->ios++;
	/* Online - the usual case - needs no lock: an I/O racing with a
	 * fault being set met the state before it. */
	if (__atomic_load_n(&mp->fault, __ATOMIC_ACQUIRE) == UMPATH_MEM_ONLINE) {
		tio->done(tio, mem_do_io(mp, tio));
		return;
	}
	pthread_mutex_lock(&s->lock);
	fault = mp->fault;
	if (fault == UMPATH_MEM_HANG) {
		list_add_tail(&tio->tp_node, &mp->held);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (fault == UMPATH_MEM_DELAY && mp->arg) {
		struct um_tio *pos;

		tio->tp_time_ns = um_now_ns() + (uint64_t)mp->arg * 1000u;
		/* Same delay for all: arrival order is deadline order. */
		list_add_tail(&tio->tp_node, &mp->delayed);
		pos = list_first_entry(&mp->delayed, struct um_tio, tp_node);
		if (pos == tio)
			um_timer_arm(s->ctx->loop, &mp->timer, (uint64_t)mp->arg * 1000u);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	unsigned arg = mp->arg;
	if (fault == UMPATH_MEM_FAIL_NEXT) {
		/* Counted here, under the lock: each I/O meets its own turn. */
		if (arg)
			mp->arg--;
		if (!mp->arg)
			__atomic_store_n(&mp->fault, UMPATH_MEM_ONLINE, __ATOMIC_RELEASE);
		fault = arg ? UMPATH_MEM_OFFLINE : UMPATH_MEM_ONLINE;
	}
	pthread_mutex_unlock(&s->lock);
	tio->done(tio, mem_fault_result(mp, fault, arg, tio));
}

static void mem_close(struct um_path *p);
static void mem_store_free(struct mem_store *s);

static int mem_claims(struct umpath_ctx *ctx, const char *name)
{
	return !strncmp(name, "mem:", 4) || mem_find(ctx, name);
}

static bool mem_exists(struct umpath_ctx *ctx, const char *name)
{
	return mem_find(ctx, name) != NULL;
}

/* An offline path cannot be opened, as an offline SCSI disk cannot: Linux
 * refuses a table naming one with ENXIO, "error getting device". */
static int mem_check_online(struct mem_path *mp)
{
	bool offline;

	pthread_mutex_lock(&mp->store->lock);
	offline = mp->fault == UMPATH_MEM_OFFLINE;
	pthread_mutex_unlock(&mp->store->lock);
	return offline ? -ENXIO : 0;
}

static int mem_open(struct umpath_ctx *ctx, struct um_path *p)
{
	struct mem_path *mp;
	int r;

	pthread_mutex_lock(&ctx->lock);
	mp = mem_find_locked(ctx, p->name);
	if (mp) {
		mp->opens++;
		mp->store->opens++;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!mp) {
		um_detail_set("%s", um_mem_transport.missing);
		return -ENOENT;
	}
	p->priv = mp;
	r = mem_check_online(mp);
	if (r < 0) {
		mem_close(p);
		return r;
	}
	p->size = mp->store->size;
	return 0;
}

static int mem_attach(struct um_path *p)
{
	return mem_check_online(p->priv);
}

static void mem_close(struct um_path *p)
{
	struct mem_path *mp = p->priv;
	struct mem_store *s = mp->store;
	struct umpath_ctx *ctx = s->ctx;
	bool gone;

	pthread_mutex_lock(&ctx->lock);
	mp->opens--;
	gone = !--s->opens && s->forgotten;
	pthread_mutex_unlock(&ctx->lock);
	if (gone)
		mem_store_free(s);
}

const struct um_transport um_mem_transport = {
	.name = "mem",
	.claims = mem_claims,
	.exists = mem_exists,
	.missing = "no in-memory store has this path",
	.open = mem_open,
	.close = mem_close,
	.attach = mem_attach,
	.submit = mem_submit,
};

int umpath_mem_store_new(struct umpath_ctx *ctx, uint64_t size, unsigned nr,
			 const char *const *names, int bare)
{
	struct mem_store *s;
	int r = -ENOMEM;

	if (!nr || !size)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		if (!names[i] || !*mem_strip(names[i]))
			return -EEXIST;
	}
	s = calloc(1, sizeof(*s) + nr * sizeof(s->paths[0]));
	if (!s)
		return -ENOMEM;
	/* Anonymous memory reads as zeros and is only backed once written. */
	s->data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->data == MAP_FAILED) {
		s->data = NULL;
		goto fail;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->ctx = ctx;
	s->size = size;
	s->bare = bare;
	s->nr = nr;
	for (unsigned i = 0; i < nr; i++) {
		struct mem_path *mp = &s->paths[i];

		mp->store = s;
		mp->name = strdup(mem_strip(names[i]));
		if (!mp->name)
			goto fail;
		mp->hnode.name = mp->name;
		list_init(&mp->held);
		list_init(&mp->delayed);
		um_timer_init(&mp->timer, mem_delay_fire);
	}
	/* Taken under the lock that adds them: two stores never share a
	 * name, whether given with "mem:" or not, nor does one twice. */
	r = -EEXIST;
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < nr; i++) {
		if (name_hash_find(&ctx->mem_names, s->paths[i].name)) {
			while (i--)
				name_hash_del(&ctx->mem_names, &s->paths[i].hnode);
			pthread_mutex_unlock(&ctx->lock);
			goto fail;
		}
		name_hash_add(&ctx->mem_names, &s->paths[i].hnode);
	}
	list_add_tail(&s->node, &ctx->mem_stores);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
fail:
	for (unsigned i = 0; i < nr; i++)
		free(s->paths[i].name);
	if (s->data)
		munmap(s->data, size);
	free(s);
	return r;
}

int umpath_mem_set_fault(struct umpath_ctx *ctx, const char *name,
			 enum umpath_mem_fault fault, unsigned arg)
{
	struct mem_path *mp = mem_find(ctx, name);
	struct list_head release;
	struct um_tio *tio, *n;

	if (!mp)
		return -ENOENT;
	list_init(&release);
	pthread_mutex_lock(&mp->store->lock);
	mp->arg = arg;
	__atomic_store_n(&mp->fault, fault, __ATOMIC_RELEASE);
	if (fault != UMPATH_MEM_HANG)
		list_splice_tail_init(&mp->held, &release);
	pthread_mutex_unlock(&mp->store->lock);
	/* Hung I/O now sees the new state: done, or failed when offline. */
	list_for_each_entry_safe(tio, n, &release, tp_node) {
		list_del_init(&tio->tp_node);
		tio->done(tio, mem_fault_result(mp, fault, arg, tio));
	}
	return 0;
}

int umpath_mem_io_count(struct umpath_ctx *ctx, const char *name, uint64_t *ret_count)
{
	struct mem_path *mp = mem_find(ctx, name);

	if (!mp)
		return -ENOENT;
	*ret_count = mp->ios;
	return 0;
}

static void mem_store_free(struct mem_store *s)
{
	for (unsigned i = 0; i < s->nr; i++) {
		um_timer_cancel(s->ctx->loop, &s->paths[i].timer);
		free(s->paths[i].name);
	}
	munmap(s->data, s->size);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void umpath_mem_reset(struct umpath_ctx *ctx)
{
	struct mem_store *s, *n;
	struct list_head gone;

	list_init(&gone);
	pthread_mutex_lock(&ctx->lock);
	list_for_each_entry_safe(s, n, &ctx->mem_stores, node) {
		/* One still open goes at its last close: its names are free
		 * for a new store at once. */
		mem_store_unname_locked(s);
		if (s->opens) {
			list_del_init(&s->node);
			s->forgotten = true;
		} else {
			list_move_tail(&s->node, &gone);
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	list_for_each_entry_safe(s, n, &gone, node)
		mem_store_free(s);
}

/* At context teardown, after the loop has stopped. */
void um_mem_stores_free(struct umpath_ctx *ctx)
{
	struct mem_store *s, *n;

	list_for_each_entry_safe(s, n, &ctx->mem_stores, node) {
		for (unsigned i = 0; i < s->nr; i++)
			free(s->paths[i].name);
		munmap(s->data, s->size);
		pthread_mutex_destroy(&s->lock);
		free(s);
	}
	list_init(&ctx->mem_stores);
}
