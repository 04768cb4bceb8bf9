/* connection.c - the NBD export's transmission phase.
 *
 * After the handshake a connection moves to a worker thread's epoll set:
 *
 *  - the worker reads requests (non-blocking, batched through a receive
 *    buffer), takes a request slot from the connection's fixed set and
 *    submits it to the map - no allocation or thread hop per request;
 *  - the map completes it on whichever thread the path's transport
 *    completes on, and that thread sends the reply at once (writev of the
 *    header and data under the connection's lock); only when the socket is
 *    full do replies wait in a queue that the worker drains on EPOLLOUT;
 *  - a buffered write to a local file the worker's thread makes itself
 *    (inline, umpath_inline_allow), and a watcher replaces a thread that
 *    blocks there for over NBD_INLINE_STUCK_NS: the replacement takes over
 *    the worker, and the blocked thread, once its write returns, leaves the
 *    worker alone and waits as a spare (docs/writes.md).
 *
 * A malformed request (bad magic, oversized write) closes that connection
 * only; a bad offset or length gets NBD_EINVAL.  Simple replies only.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "nbd-int.h"

static void conn_free(struct nbd_conn *c);

/* The thread record of the worker thread running this, NULL elsewhere. */
static _Thread_local struct nbd_thr *nbd_self;

/* This thread was replaced while blocked in an inline write (its watcher
 * claimed the write): it must leave its connection and worker alone. */
static bool self_replaced(void)
{
	return nbd_self && umpath_inline_claimed(&nbd_self->guard);
}

/* ---- helpers ------------------------------------------------------- */

static uint32_t nbd_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case EOPNOTSUPP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

/* Wake w's thread out of epoll_wait. */
static void worker_wake(struct worker *w)
{
	uint64_t one = 1;
	ssize_t r = write(w->efd, &one, sizeof(one));

	(void)r;	/* a full counter is a pending wake-up anyway */
}

/* Ask the worker to look at c.  Called with c->lock held, so that once the
 * worker has closed c (under c->lock) nobody kicks it any more. */
static void worker_kick_locked(struct nbd_conn *c)
{
	struct worker *w = c->w;

	pthread_mutex_lock(&w->lock);
	if (!c->kick_queued) {
		c->kick_queued = true;
		list_add_tail(&c->kick_node, &w->kicked);
	}
	pthread_mutex_unlock(&w->lock);
	worker_wake(w);
}

/* EPOLLIN while we take requests, EPOLLOUT while replies wait; the
 * caller holds c->lock. */
static void conn_update_events_locked(struct nbd_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->closed)
		return;
	if (!c->in_dead && !c->paused)
		ev.events |= EPOLLIN;
	if (c->want_out)
		ev.events |= EPOLLOUT;
	/* A dead peer keeps reporting HUP: once only, while I/O drains. */
	if (c->in_dead)
		ev.events |= EPOLLET;
	epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void slot_free_buf_locked(struct nbd_conn *c, struct nbd_req *rq)
{
	free(rq->buf);
	rq->buf = NULL;
	c->held -= rq->cap;
	rq->cap = 0;
}

/* A slot comes back.  A connection that stopped reading for want of slots
 * or bytes reads again - and the worker is kicked, as whole requests may
 * wait in the receive buffer that no EPOLLIN will announce; one whose input
 * ended may close once nothing is in flight. */
static void slot_release_locked(struct nbd_conn *c, struct nbd_req *rq)
{
	if (rq->cap > SLOT_KEEP)
		slot_free_buf_locked(c, rq);
	list_add(&rq->node, &c->free_slots);
	c->inflight--;
	if (c->paused && list_empty(&c->retry)) {
		c->paused = false;
		conn_update_events_locked(c);
		worker_kick_locked(c);
	} else if (c->in_dead && !c->inflight) {
		worker_kick_locked(c);
	}
}

/* ---- replies ------------------------------------------------------- */

static size_t req_iov(struct nbd_req *rq, struct iovec *iov)
{
	size_t off = rq->out_off, n = 0;

	if (off < sizeof(rq->reply)) {
		iov[n].iov_base = (uint8_t *)&rq->reply + off;
		iov[n++].iov_len = sizeof(rq->reply) - off;
		off = 0;
	} else {
		off -= sizeof(rq->reply);
	}
	if (rq->out_len > sizeof(rq->reply)) {
		iov[n].iov_base = rq->buf + off;
		iov[n++].iov_len = rq->out_len - sizeof(rq->reply) - off;
	}
	return n;
}

/* GnuTLS's answers as recv(2)'s and writev(2)'s: -1 with EAGAIN, EINTR
 * or ECONNRESET. */
static ssize_t tls_result(ssize_t r)
{
	if (r >= 0)
		return r;
	errno = r == GNUTLS_E_AGAIN ? EAGAIN : r == GNUTLS_E_INTERRUPTED ? EINTR : ECONNRESET;
	return -1;
}

static ssize_t conn_recv(struct nbd_conn *c, void *buf, size_t len)
{
	if (!c->tls)
		return recv(c->fd, buf, len, 0);
	return tls_result(gnutls_record_recv(c->tls, buf, len));
}

/* A record at a time through TLS: after EAGAIN GnuTLS wants the same
 * buffer again, which the next call gives (out_off did not move). */
static ssize_t conn_send_locked(struct nbd_conn *c, const struct iovec *iov, size_t n)
{
	if (!c->tls)
		return writev(c->fd, iov, (int)n);
	return tls_result(gnutls_record_send(c->tls, iov[0].iov_base, iov[0].iov_len));
}

/* Send what the socket takes; true when rq's reply is fully out.  The
 * caller holds c->lock (replies of one connection go out one at a time). */
static bool reply_send_locked(struct nbd_conn *c, struct nbd_req *rq)
{
	while (rq->out_off < rq->out_len) {
		struct iovec iov[2];
		size_t n = req_iov(rq, iov);
		ssize_t r = conn_send_locked(c, iov, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return false;
			c->out_dead = true;
			return true;	/* nobody will read it: drop */
		}
		rq->out_off += (size_t)r;
	}
	return true;
}

static void conn_drain_outq_locked(struct nbd_conn *c)
{
	while (!list_empty(&c->outq)) {
		struct nbd_req *rq = list_first_entry(&c->outq, struct nbd_req, node);

		if (!c->out_dead && !reply_send_locked(c, rq))
			return;
		list_del_init(&rq->node);
		slot_release_locked(c, rq);
	}
}

static void req_submit(struct nbd_conn *c, struct nbd_req *rq);

/* A request is done: reply now if the socket takes it, else queue. */
static void req_reply(struct nbd_req *rq, int err)
{
	struct nbd_conn *c = rq->c;

	rq->reply.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC);
	rq->reply.error = htobe32(nbd_errno(err));
	rq->reply.cookie = rq->cookie;
	rq->out_off = 0;
	rq->out_len = sizeof(rq->reply) + (rq->type == NBD_CMD_READ && !err ? rq->len : 0);

	pthread_mutex_lock(&c->lock);
	if (c->out_dead) {
		slot_release_locked(c, rq);
	} else if (list_empty(&c->outq) && reply_send_locked(c, rq)) {
		slot_release_locked(c, rq);
	} else {
		list_add_tail(&rq->node, &c->outq);
		if (!c->want_out) {
			c->want_out = true;
			conn_update_events_locked(c);
		}
	}
	/* Requests wait for the map's pool: this completion made room. */
	if (!list_empty(&c->retry))
		worker_kick_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static void req_done(struct umpath_io *io, int err)
{
	struct nbd_req *rq = (struct nbd_req *)io;

	if (!err && rq->flush_after) {
		rq->flush_after = false;
		rq->io.op = UMPATH_OP_FLUSH;
		rq->io.flags = 0;
		req_submit(rq->c, rq);
		return;
	}
	req_reply(rq, err);
}

/* The map's pool has room again: the worker retries what was parked. */
static void conn_pool_ready(struct umpath_pool_wait *w)
{
	struct nbd_conn *c = w->opaque;

	pthread_mutex_lock(&c->lock);
	if (!c->closed)
		worker_kick_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static void req_submit(struct nbd_conn *c, struct nbd_req *rq)
{
	int r = umpath_map_submit(c->map, &rq->io);

	if (r == -EAGAIN) {
		/* The map's pool is full: park it, stop reading, and retry when
		 * a request of the map frees (whichever client's it was). */
		pthread_mutex_lock(&c->lock);
		list_add_tail(&rq->node, &c->retry);
		c->paused = true;
		conn_update_events_locked(c);
		pthread_mutex_unlock(&c->lock);
		if (umpath_map_pool_wait(c->map, &c->pool_wait) == 1)
			conn_pool_ready(&c->pool_wait);	/* freed meanwhile */
		return;
	}
	if (r < 0)
		req_reply(rq, r);
}

/* ---- requests ------------------------------------------------------ */

/* Give the slot just taken, rq, a buffer of len bytes within the
 * connection's budget: 0; -EAGAIN when other requests must give bytes
 * back first (rq is then free again and the connection paused, which the
 * next slot released ends); -ENOMEM.  A request alone always fits. */
static int slot_reserve(struct nbd_conn *c, struct nbd_req *rq, size_t len)
{
	size_t want = len < 4096 ? 4096 : len;
	struct nbd_req *o;
	void *p;

	if (rq->cap >= len)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (c->held - rq->cap + want > c->e->opts.conn_budget) {
		/* Buffers kept by idle slots go first. */
		list_for_each_entry(o, &c->free_slots, node)
			if (o->buf)
				slot_free_buf_locked(c, o);
	}
	if (c->held - rq->cap + want > c->e->opts.conn_budget && c->inflight > 1) {
		list_add(&rq->node, &c->free_slots);
		c->inflight--;
		if (!c->paused) {
			c->paused = true;
			conn_update_events_locked(c);
		}
		pthread_mutex_unlock(&c->lock);
		return -EAGAIN;
	}
	slot_free_buf_locked(c, rq);
	c->held += want;	/* counted before it exists: the budget holds */
	pthread_mutex_unlock(&c->lock);
	/* Aligned for O_DIRECT paths. */
	if (posix_memalign(&p, 4096, want)) {
		pthread_mutex_lock(&c->lock);
		c->held -= want;
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	rq->buf = p;
	rq->cap = want;
	return 0;
}

/* Turn a parsed request into a map I/O, or answer it at once. */
static void req_start(struct nbd_conn *c, struct nbd_req *rq, int early_err)
{
	struct umpath_io *io = &rq->io;

	if (early_err) {
		req_reply(rq, early_err);
		return;
	}
	memset(io, 0, sizeof(*io));
	io->done = req_done;
	io->offset = rq->off;
	io->length = rq->len;
	io->buf = rq->buf;
	rq->flush_after = false;
	switch (rq->type) {
	case NBD_CMD_READ:
		io->op = UMPATH_OP_READ;
		break;
	case NBD_CMD_WRITE:
		io->op = UMPATH_OP_WRITE;
		if (rq->flags & NBD_CMD_FLAG_FUA)
			io->flags |= UMPATH_IO_FUA;
		break;
	case NBD_CMD_FLUSH:
		io->op = UMPATH_OP_FLUSH;
		io->offset = io->length = 0;
		io->buf = NULL;
		break;
	case NBD_CMD_TRIM:
		io->op = UMPATH_OP_TRIM;
		io->buf = NULL;
		rq->flush_after = rq->flags & NBD_CMD_FLAG_FUA;
		break;
	case NBD_CMD_WRITE_ZEROES:
		io->op = UMPATH_OP_WRITE_ZEROES;
		io->buf = NULL;
		if (rq->flags & NBD_CMD_FLAG_FUA)
			io->flags |= UMPATH_IO_FUA;
		if (rq->flags & NBD_CMD_FLAG_NO_HOLE)
			io->flags |= UMPATH_IO_NO_HOLE;
		break;
	}
	if (!rq->len && rq->type != NBD_CMD_FLUSH) {
		req_reply(rq, 0);	/* nothing to do */
		return;
	}
	req_submit(c, rq);
}

/* Check a header's command against the export: 0, or the error to reply. */
static int req_check(struct nbd_conn *c, const struct nbd_req *rq)
{
	uint16_t allowed;

	switch (rq->type) {
	case NBD_CMD_READ:
		allowed = 0;
		break;
	case NBD_CMD_WRITE:
		allowed = NBD_CMD_FLAG_FUA;
		break;
	case NBD_CMD_FLUSH:
		return rq->flags ? -EINVAL : 0;
	case NBD_CMD_TRIM:
		allowed = NBD_CMD_FLAG_FUA;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
		break;
	default:
		return -EINVAL;	/* CACHE, BLOCK_STATUS, ...: not advertised */
	}
	if (rq->flags & ~allowed)
		return -EINVAL;
	if (rq->off > c->size || rq->len > c->size - rq->off)
		return -EINVAL;
	if ((rq->type == NBD_CMD_READ) && rq->len > NBD_MAX_REQUEST)
		return -EINVAL;
	return 0;
}

static struct nbd_req *slot_take(struct nbd_conn *c)
{
	struct nbd_req *rq = NULL;

	pthread_mutex_lock(&c->lock);
	if (!list_empty(&c->free_slots)) {
		rq = list_first_entry(&c->free_slots, struct nbd_req, node);
		list_del_init(&rq->node);
		c->inflight++;
	} else if (!c->paused) {
		c->paused = true;
		conn_update_events_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	return rq;
}

static void watch_wake(struct nbd_export *e);

/* req_start for a write whose payload is in: this thread may make the
 * write itself (file transport, umpath_inline_allow).  false if it blocked
 * there long enough to be replaced: c and the worker are the replacement's
 * now. */
static bool req_start_inline(struct nbd_conn *c, struct nbd_req *rq, int early_err)
{
	struct nbd_thr *t = nbd_self;
	bool replaced;

	if (early_err || !t || !c->e->inline_writes || (rq->flags & NBD_CMD_FLAG_FUA)) {
		req_start(c, rq, early_err);
		return true;
	}
	/* Said before watch_on is read, and the watcher reads it after it
	 * clears watch_on (both sequentially consistent): it never sleeps
	 * while a call it did not see may begin. */
	atomic_store(&t->allowing, true);
	if (!atomic_load(&c->e->watch_on))
		watch_wake(c->e);
	umpath_inline_allow(&t->guard);
	req_start(c, rq, 0);
	replaced = umpath_inline_claimed(&t->guard);
	umpath_inline_allow(NULL);
	atomic_store_explicit(&t->allowing, false, memory_order_relaxed);
	return !replaced;
}

/* Parse the requests in the receive buffer.  false: stop for now (out of
 * slots, or the connection's input ended, or this thread was replaced). */
static bool conn_parse(struct nbd_conn *c)
{
	while (!c->in_dead) {
		if (c->cur) {
			struct nbd_req *rq = c->cur;
			size_t n = c->rlen - c->rpos;

			if (n > rq->len - c->payload_got)
				n = rq->len - c->payload_got;
			if (!c->discard)
				memcpy(rq->buf + c->payload_got, c->rbuf + c->rpos, n);
			c->rpos += n;
			c->payload_got += n;
			if (c->payload_got < rq->len)
				return true;	/* more payload to come */
			c->cur = NULL;
			if (!req_start_inline(c, rq, c->discard ? -EINVAL : 0))
				return false;	/* replaced: c is another thread's */
			continue;
		}
		if (c->rlen - c->rpos < NBD_REQUEST_SIZE)
			return true;

		struct nbd_request h;
		uint32_t len;
		uint16_t type;

		memcpy(&h, c->rbuf + c->rpos, sizeof(h));
		if (be32toh(h.magic) != NBD_REQUEST_MAGIC) {
			um_log("nbd: bad request magic 0x%08x: closing the connection",
			       be32toh(h.magic));
			c->in_dead = true;
			return false;
		}
		type = be16toh(h.type);
		len = be32toh(h.count);
		if (type == NBD_CMD_DISC) {
			c->rpos += NBD_REQUEST_SIZE;
			c->in_dead = true;
			return false;
		}
		if (type == NBD_CMD_WRITE && len > NBD_MAX_REQUEST) {
			/* Its payload cannot be skipped safely: end this client. */
			um_log("nbd: write of %u bytes is over the %u maximum: closing the connection",
			       len, NBD_MAX_REQUEST);
			c->in_dead = true;
			return false;
		}
		struct nbd_req *rq = slot_take(c);
		if (!rq)
			return false;
		rq->type = type;
		rq->flags = be16toh(h.flags);
		rq->cookie = h.cookie;	/* opaque: echoed as received */
		rq->off = be64toh(h.offset);
		rq->len = len;
		/* Checked before any buffer exists: a bad length costs nothing. */
		int err = req_check(c, rq), r = 0;
		bool payload = type == NBD_CMD_WRITE && len;

		if (!err && (type == NBD_CMD_READ || payload))
			r = slot_reserve(c, rq, len);
		if (r == -EAGAIN)
			return false;	/* header stays: read again when bytes are back */
		c->rpos += NBD_REQUEST_SIZE;
		if (r < 0 && payload) {
			c->in_dead = true;	/* cannot take its payload */
			pthread_mutex_lock(&c->lock);
			slot_release_locked(c, rq);
			pthread_mutex_unlock(&c->lock);
			return false;
		}
		if (payload) {
			/* A refused write's payload is read and dropped. */
			c->cur = rq;
			c->discard = err != 0;
			c->payload_got = 0;
			continue;
		}
		req_start(c, rq, err ? err : r);
	}
	return false;
}

static void conn_retry(struct nbd_conn *c)
{
	struct list_head todo;
	struct nbd_req *rq, *n;

	list_init(&todo);
	pthread_mutex_lock(&c->lock);
	list_splice_tail_init(&c->retry, &todo);
	pthread_mutex_unlock(&c->lock);
	list_for_each_entry_safe(rq, n, &todo, node) {
		list_del_init(&rq->node);
		req_submit(c, rq);
	}
}

/* Read and parse until the socket is empty, slots run out or input ends. */
static void conn_input(struct nbd_conn *c)
{
	conn_retry(c);
	pthread_mutex_lock(&c->lock);
	bool paused = c->paused;
	pthread_mutex_unlock(&c->lock);
	if (paused)
		return;

	while (!c->in_dead) {
		size_t *got;
		ssize_t r;

		if (!conn_parse(c)) {
			if (self_replaced())
				return;
			break;
		}
		if (c->cur && !c->discard && c->rpos == c->rlen) {
			/* A large write payload goes straight into its slot. */
			got = &c->payload_got;
			r = conn_recv(c, c->cur->buf + *got, c->cur->len - *got);
		} else {
			/* Keep a partial header at the front, fill the rest. */
			if (c->rpos) {
				memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
				c->rlen -= c->rpos;
				c->rpos = 0;
			}
			got = &c->rlen;
			r = conn_recv(c, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
		}
		if (r > 0)
			*got += (size_t)r;
		else if (r < 0 && errno == EAGAIN)
			break;
		else if (!(r < 0 && errno == EINTR))
			c->in_dead = true;	/* EOF or error */
	}
	if (c->in_dead) {
		pthread_mutex_lock(&c->lock);
		conn_update_events_locked(c);
		pthread_mutex_unlock(&c->lock);
	}
}

/* ---- connection lifetime ------------------------------------------- */

static void conn_free(struct nbd_conn *c)
{
	struct worker *w = c->w;

	pthread_mutex_lock(&w->lock);
	if (c->kick_queued)
		list_del_init(&c->kick_node);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < CONN_SLOTS; i++)
		free(c->slots[i].buf);
	free(c->rbuf);
	if (c->tls)
		gnutls_deinit(c->tls);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Close once input has ended and every request is answered.  On the
 * worker thread; true if c is gone. */
static bool conn_maybe_close(struct nbd_conn *c)
{
	struct nbd_export *e = c->e;

	pthread_mutex_lock(&c->lock);
	if (!c->in_dead || c->inflight || c->closed) {
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	c->closed = true;
	pthread_mutex_unlock(&c->lock);
	/* Before the map may go: a waiter still armed is the map's to call. */
	umpath_map_pool_cancel(c->map, &c->pool_wait);

	/* Off the export's list first: nbd_stop must not shutdown() a closed
	 * (or reused) descriptor. */
	pthread_mutex_lock(&e->lock);
	list_del_init(&c->node);
	pthread_mutex_unlock(&e->lock);
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	/* The map before the socket: a client that has seen the end of file
	 * may remove the map at once, as after closing a block device. */
	umd_map_put(c->m, true);
	close(c->fd);
	pthread_mutex_lock(&e->lock);
	e->nconns--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return true;
}

/* Input ended in the middle of a write's payload: its slot goes back. */
static void conn_abort_cur(struct nbd_conn *c)
{
	if (c->in_dead && c->cur) {
		pthread_mutex_lock(&c->lock);
		slot_release_locked(c, c->cur);
		pthread_mutex_unlock(&c->lock);
		c->cur = NULL;
	}
}

static void conn_event(struct nbd_conn *c, uint32_t events, struct list_head *dead)
{
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* Both ways are gone (the peer left, or shutdown at stop):
		 * nobody takes the queued replies.  Dropping them frees their
		 * slots, so that a connection paused for want of them reads on
		 * to its EOF (requests already sent are still carried out). */
		pthread_mutex_lock(&c->lock);
		c->out_dead = true;
		conn_drain_outq_locked(c);
		if (c->want_out) {
			c->want_out = false;
			conn_update_events_locked(c);
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (events & EPOLLOUT) {
		pthread_mutex_lock(&c->lock);
		conn_drain_outq_locked(c);
		if (list_empty(&c->outq) && c->want_out) {
			c->want_out = false;
			conn_update_events_locked(c);
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		conn_input(c);
		if (self_replaced())
			return;
	}
	conn_abort_cur(c);
	pthread_mutex_lock(&c->lock);
	bool closable = c->in_dead && !c->inflight && !c->closed;
	pthread_mutex_unlock(&c->lock);
	if (closable && conn_maybe_close(c))
		list_add_tail(&c->dead_node, dead);	/* freed after this batch */
}

/* Free the connections closed in this batch. */
static void free_dead(struct list_head *dead)
{
	struct nbd_conn *c, *n;

	list_for_each_entry_safe(c, n, dead, dead_node) {
		list_del_init(&c->dead_node);
		conn_free(c);
	}
}

/* Serve w's connections until w stops (false) or this thread, blocked in
 * an inline write, has been replaced (true). */
static bool worker_run(struct nbd_thr *t, struct worker *w)
{
	struct epoll_event evs[64];
	uint32_t kick_events = EPOLLIN;

	for (;;) {
		struct list_head dead;
		struct nbd_conn *c;
		int nev;

		nev = epoll_wait(w->epfd, evs, 64, -1);
		if (nev < 0 && errno != EINTR)
			return false;
		list_init(&dead);
		for (int i = 0; i < nev; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;
				ssize_t r = read(w->efd, &v, sizeof(v));
				(void)r;
				continue;
			}
			c = evs[i].data.ptr;
			pthread_mutex_lock(&c->lock);
			bool closed = c->closed;
			pthread_mutex_unlock(&c->lock);
			if (!closed)
				conn_event(c, evs[i].events, &dead);
			if (self_replaced()) {
				free_dead(&dead);
				return true;
			}
		}
		/* A replacement's first round: every connection, as events the
		 * replaced thread took from epoll may be lost with it (replies
		 * waiting for EPOLLOUT too). */
		if (t->rescan) {
			kick_events |= EPOLLOUT;
			t->rescan = false;
		}
		/* Connections kicked by completions or by room in their map's
		 * pool: take them one at a time, so that a new kick can queue a
		 * connection again meanwhile; only as many as were queued now. */
		pthread_mutex_lock(&w->lock);
		unsigned budget = 0;
		list_for_each_entry(c, &w->kicked, kick_node)
			budget++;
		bool stop = w->stop;
		pthread_mutex_unlock(&w->lock);
		while (budget--) {
			pthread_mutex_lock(&w->lock);
			if (list_empty(&w->kicked)) {
				pthread_mutex_unlock(&w->lock);
				break;
			}
			c = list_first_entry(&w->kicked, struct nbd_conn, kick_node);
			list_del_init(&c->kick_node);
			c->kick_queued = false;
			pthread_mutex_unlock(&w->lock);

			pthread_mutex_lock(&c->lock);
			bool closed = c->closed;
			pthread_mutex_unlock(&c->lock);
			if (!closed)
				conn_event(c, kick_events, &dead);
			if (self_replaced()) {
				free_dead(&dead);
				return true;
			}
		}
		kick_events = EPOLLIN;
		free_dead(&dead);
		if (stop)
			return false;
	}
}

/* A thread of the export: serves its worker; once replaced and back from
 * the blocked write, waits as a spare for a worker to serve, or ends. */
static void *thr_main(void *arg)
{
	struct nbd_thr *t = arg;
	struct nbd_export *e = t->e;

	nbd_self = t;
	pthread_mutex_lock(&e->thr_lock);
	for (;;) {
		while (!t->w && !e->thr_stop)
			pthread_cond_wait(&e->thr_cond, &e->thr_lock);
		if (!t->w)
			break;
		struct worker *w = t->w;

		pthread_mutex_unlock(&e->thr_lock);
		umpath_inline_allow(&t->guard);	/* unclaimed again */
		umpath_inline_allow(NULL);
		bool replaced = worker_run(t, w);
		pthread_mutex_lock(&e->thr_lock);
		t->w = NULL;
		if (!replaced || e->thr_stop || !list_empty(&e->spares))
			break;	/* one spare is enough: the watcher starts more */
		list_add_tail(&t->spare_node, &e->spares);
	}
	t->exited = true;
	e->nthrs--;
	pthread_mutex_unlock(&e->thr_lock);
	return NULL;
}

/* A new thread, spare until given a worker (NULL: none); thr_lock held. */
static struct nbd_thr *thr_new_locked(struct nbd_export *e, struct worker *w)
{
	struct nbd_thr *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->e = e;
	t->w = w;
	list_init(&t->spare_node);
	if (pthread_create(&t->thread, NULL, thr_main, t)) {
		free(t);
		return NULL;
	}
	list_add_tail(&t->node, &e->thrs);
	e->nthrs++;
	if (!w)
		list_add_tail(&t->spare_node, &e->spares);
	return t;
}

/* Join and free the threads that ended (all of them at stop). */
static void thr_reap(struct nbd_export *e, bool all)
{
	struct nbd_thr *t, *n;
	struct list_head done;

	list_init(&done);
	pthread_mutex_lock(&e->thr_lock);
	list_for_each_entry_safe(t, n, &e->thrs, node)
		if (all || t->exited) {
			list_del_init(&t->node);
			list_add_tail(&t->node, &done);
		}
	pthread_mutex_unlock(&e->thr_lock);
	list_for_each_entry_safe(t, n, &done, node) {
		pthread_join(t->thread, NULL);
		free(t);
	}
}

/* ---- the watcher: replaces a thread blocked in an inline write ------- */

static void watch_wake(struct nbd_export *e)
{
	pthread_mutex_lock(&e->thr_lock);
	if (!atomic_load(&e->watch_on)) {
		atomic_store(&e->watch_on, true);
		pthread_cond_signal(&e->watch_cond);
	}
	pthread_mutex_unlock(&e->thr_lock);
}

/* w's thread t is blocked in an inline write: give w to a spare (started
 * if none waits) and claim t's write, which tells t, when its call
 * returns, that w is no longer its.  thr_lock held. */
static void watch_replace_locked(struct nbd_export *e, struct worker *w, struct nbd_thr *t)
{
	struct nbd_thr *s = NULL;
	struct nbd_conn *c;

	if (!list_empty(&e->spares)) {
		s = list_first_entry(&e->spares, struct nbd_thr, spare_node);
	} else if (e->nthrs < e->nworkers + NBD_MAX_SPARE_THREADS) {
		s = thr_new_locked(e, NULL);
	}
	if (!s) {
		um_log("nbd: a worker thread is blocked in a write and no thread is left to replace it (%u running): its connections wait",
		       e->nthrs);
		return;
	}
	if (!umpath_inline_claim(&t->guard, NBD_INLINE_STUCK_NS))
		return;	/* it came back meanwhile; s stays spare */
	list_del_init(&s->spare_node);
	s->rescan = true;
	s->w = w;
	w->thr = s;
	um_log("nbd: a worker thread blocked in a write for over %u ms: replaced (%lu so far); the path makes no inline writes for 1 s",
	       NBD_INLINE_STUCK_NS / 1000000u, ++e->takeovers);
	/* Every connection of w to the new thread's first round. */
	pthread_mutex_lock(&e->lock);
	list_for_each_entry(c, &e->conns, node) {
		if (c->w != w)
			continue;
		pthread_mutex_lock(&w->lock);
		if (!c->kick_queued) {
			c->kick_queued = true;
			list_add_tail(&c->kick_node, &w->kicked);
		}
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_unlock(&e->lock);
	worker_wake(w);
	pthread_cond_broadcast(&e->thr_cond);
}

/* Looks every NBD_WATCH_NS while inline writes are being made, sleeps
 * after NBD_WATCH_IDLE looks that found none running (the next one's
 * req_start_inline wakes it). */
static void *watch_main(void *arg)
{
	struct nbd_export *e = arg;
	unsigned quiet = 0;

	pthread_mutex_lock(&e->thr_lock);
	while (!e->thr_stop) {
		if (!atomic_load(&e->watch_on)) {
			pthread_cond_wait(&e->watch_cond, &e->thr_lock);
			quiet = 0;
			continue;
		}
		struct timespec ts;
		uint64_t due = umpath_now_ns() + NBD_WATCH_NS;
		bool busy = false;

		ts.tv_sec = (time_t)(due / 1000000000u);
		ts.tv_nsec = (long)(due % 1000000000u);
		pthread_cond_timedwait(&e->watch_cond, &e->thr_lock, &ts);
		if (e->thr_stop)
			break;
		for (unsigned i = 0; i < e->nworkers; i++) {
			struct worker *w = &e->workers[i];
			struct nbd_thr *t = w->thr;

			if (!t)
				continue;
			uint64_t ns = umpath_inline_busy_ns(&t->guard);

			busy |= ns > 0;
			if (ns >= NBD_INLINE_STUCK_NS)
				watch_replace_locked(e, w, t);
		}
		if (!busy) {
			if (++quiet >= NBD_WATCH_IDLE) {
				atomic_store(&e->watch_on, false);
				for (unsigned i = 0; i < e->nworkers; i++) {
					struct nbd_thr *t = e->workers[i].thr;

					if (t && atomic_load(&t->allowing)) {
						atomic_store(&e->watch_on, true);
						quiet = 0;
						break;
					}
				}
			}
		} else {
			quiet = 0;
		}
		pthread_mutex_unlock(&e->thr_lock);
		thr_reap(e, false);
		pthread_mutex_lock(&e->thr_lock);
	}
	pthread_mutex_unlock(&e->thr_lock);
	return NULL;
}

/* ---- connection start, workers ------------------------------------- */

int nbd_conn_start(struct nbd_export *e, int fd, struct umd_map *m, gnutls_session_t tls)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	struct timeval tv = { 0 };
	int one = 1;

	if (!c)
		return -ENOMEM;
	c->rbuf = malloc(RBUF_SIZE);
	if (!c->rbuf) {
		free(c);
		return -ENOMEM;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));	/* fails harmlessly on unix */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->e = e;
	c->fd = fd;
	c->tls = tls;
	c->m = m;
	c->map = m->map;
	c->size = umpath_map_size(m->map);
	c->pool_wait.fn = conn_pool_ready;
	c->pool_wait.opaque = c;
	pthread_mutex_init(&c->lock, NULL);
	list_init(&c->free_slots);
	list_init(&c->outq);
	list_init(&c->retry);
	list_init(&c->kick_node);
	list_init(&c->dead_node);
	for (unsigned i = 0; i < CONN_SLOTS; i++) {
		c->slots[i].c = c;
		list_add_tail(&c->slots[i].node, &c->free_slots);
	}
	c->w = &e->workers[atomic_fetch_add(&e->next_worker, 1) % e->nworkers];

	pthread_mutex_lock(&e->lock);
	if (atomic_load(&e->stopping)) {
		pthread_mutex_unlock(&e->lock);
		c->tls = NULL;	/* the caller's still */
		conn_free(c);
		return -ESHUTDOWN;
	}
	list_add_tail(&c->node, &e->conns);
	e->nconns++;
	pthread_mutex_unlock(&e->lock);

	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		pthread_mutex_lock(&e->lock);
		list_del_init(&c->node);
		e->nconns--;
		pthread_mutex_unlock(&e->lock);
		c->tls = NULL;	/* the caller's still */
		conn_free(c);
		return r;
	}
	return 0;
}

int nbd_workers_start(struct nbd_export *e)
{
	const char *env = getenv("UMPATH_NBD_INLINE");

	e->inline_writes = !env || strcmp(env, "0");
	pthread_mutex_init(&e->thr_lock, NULL);
	pthread_cond_init(&e->thr_cond, NULL);
	um_cond_init_monotonic(&e->watch_cond);
	list_init(&e->thrs);
	list_init(&e->spares);
	e->workers = calloc(e->nworkers, sizeof(*e->workers));
	if (!e->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < e->nworkers; i++) {
		struct worker *w = &e->workers[i];

		w->e = e;
		w->epfd = w->efd = -1;
		pthread_mutex_init(&w->lock, NULL);
		list_init(&w->kicked);
	}
	for (unsigned i = 0; i < e->nworkers; i++) {
		struct worker *w = &e->workers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->epfd < 0 || w->efd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &ev) < 0)
			return -errno;
	}
	pthread_mutex_lock(&e->thr_lock);
	for (unsigned i = 0; i < e->nworkers; i++) {
		e->workers[i].thr = thr_new_locked(e, &e->workers[i]);
		if (!e->workers[i].thr) {
			pthread_mutex_unlock(&e->thr_lock);
			nbd_workers_stop(e, i);
			return -EAGAIN;
		}
	}
	pthread_mutex_unlock(&e->thr_lock);
	if (pthread_create(&e->watch_thread, NULL, watch_main, e)) {
		nbd_workers_stop(e, e->nworkers);
		return -EAGAIN;
	}
	e->watch_started = true;
	return 0;
}

void nbd_workers_stop(struct nbd_export *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &e->workers[i];

		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_mutex_unlock(&w->lock);
		worker_wake(w);
	}
	pthread_mutex_lock(&e->thr_lock);
	e->thr_stop = true;
	pthread_cond_broadcast(&e->thr_cond);
	pthread_cond_broadcast(&e->watch_cond);
	pthread_mutex_unlock(&e->thr_lock);
	if (e->watch_started) {
		pthread_join(e->watch_thread, NULL);
		e->watch_started = false;
	}
	/* A thread blocked in a write is waited for, as the writer threads
	 * are: its I/O still holds the map. */
	thr_reap(e, true);
}

void nbd_workers_free(struct nbd_export *e)
{
	if (!e->workers)
		return;
	for (unsigned i = 0; i < e->nworkers; i++) {
		if (e->workers[i].epfd >= 0)
			close(e->workers[i].epfd);
		if (e->workers[i].efd >= 0)
			close(e->workers[i].efd);
		pthread_mutex_destroy(&e->workers[i].lock);
	}
	free(e->workers);
	e->workers = NULL;
	pthread_mutex_destroy(&e->thr_lock);
	pthread_cond_destroy(&e->thr_cond);
	pthread_cond_destroy(&e->watch_cond);
}
