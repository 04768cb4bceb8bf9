/* nbd-server.c - the NBD export: every map of umpathd is an NBD export of
 * the same name, on unix sockets or TCP.
 *
 * The handshake (fixed newstyle: EXPORT_NAME, GO, INFO, LIST, ABORT) runs on
 * a short-lived thread per new client with blocking I/O and timeouts; it is
 * rare and must not stall anyone.  Then the connection moves to a worker
 * thread's epoll set for the transmission phase:
 *
 *  - the worker reads requests (non-blocking, batched through a receive
 *    buffer), takes a request slot from the connection's fixed set and
 *    submits it to the map - no allocation or thread hop per request;
 *  - the map completes it on whichever thread the path's transport
 *    completes on, and that thread sends the reply at once (writev of the
 *    header and data under the connection's lock); only when the socket is
 *    full do replies wait in a queue that the worker drains on EPOLLOUT.
 *
 * A malformed request (bad magic, oversized write) closes that connection
 * only; a bad offset or length gets NBD_EINVAL.  Flush fan-out in the engine
 * makes a FLUSH cover writes of every connection, so CAN_MULTI_CONN is
 * advertised.  Simple replies only: NBD_OPT_STRUCTURED_REPLY is answered
 * NBD_REP_ERR_UNSUP and clients fall back.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "nbd-proto.h"

#define NBD_MAX_REQUEST (32u << 20)	/* advertised as the maximum block size */
#define NBD_PREF_BLOCK 4096u
#define NBD_MIN_BLOCK 512u
#define CONN_SLOTS 128			/* requests in flight per connection */
#define RBUF_SIZE (256u << 10)
#define SLOT_KEEP (1u << 20)		/* a slot keeps a buffer up to this size */
#define MAX_HANDSHAKES 64
#define HANDSHAKE_TIMEOUT_S 30
#define MAX_OPTIONS 64
#define MAX_OPTION_LEN 4096u
#define DEFAULT_WORKERS 2

struct nbd_conn;

struct nbd_req {
	struct umpath_io io;		/* first: the map's completion gives us back */
	struct nbd_conn *c;
	struct list_head node;		/* free list, retry list or output queue */
	uint64_t cookie;
	uint16_t type, flags;
	uint32_t len;
	uint64_t off;
	uint8_t *buf;
	size_t cap;
	bool flush_after;		/* TRIM with FUA: flush before replying */
	struct {
		uint32_t magic;
		uint32_t error;
		uint64_t cookie;
	} __attribute__((packed)) reply;
	size_t out_len, out_off;	/* reply bytes to send, sent */
};

struct worker {
	struct nbd_export *e;
	int epfd;
	int efd;			/* kicks: a connection has work for us */
	pthread_t thread;
	pthread_mutex_t lock;
	struct list_head kicked;	/* guarded by lock */
	bool stop;			/* guarded by lock */
};

struct nbd_conn {
	struct list_head node;		/* in e->conns, guarded by e->lock */
	struct list_head kick_node;	/* in w->kicked, guarded by w->lock */
	struct list_head dead_node;	/* closed, to be freed by the worker */
	bool kick_queued;		/* guarded by w->lock */
	struct nbd_export *e;
	struct worker *w;
	int fd;
	struct umd_map *m;
	struct umpath_map *map;
	uint64_t size;

	/* input: the worker thread only */
	uint8_t *rbuf;
	size_t rpos, rlen;
	struct nbd_req *cur;		/* write whose payload is being read */
	size_t payload_got;
	bool in_dead;			/* EOF, error, DISC or protocol error */

	pthread_mutex_t lock;
	unsigned inflight;		/* guarded by lock: slots in use */
	struct list_head free_slots;	/* guarded by lock */
	struct list_head outq;		/* guarded by lock: replies partly sent */
	struct list_head retry;		/* guarded by lock: submit said -EAGAIN */
	bool paused;			/* guarded by lock: out of slots */
	bool out_dead;			/* guarded by lock: sending failed */
	bool want_out;			/* guarded by lock: EPOLLOUT on */
	bool closed;			/* guarded by lock */
	struct nbd_req slots[CONN_SLOTS];
};

struct nbd_export {
	struct umd *d;
	int lfd;
	char *unix_path;
	pthread_t accept_thread;
	struct worker *workers;
	unsigned nworkers;
	atomic_uint next_worker;
	atomic_uint handshakes;
	atomic_bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_head conns;		/* guarded by lock */
	unsigned nconns;		/* guarded by lock */
	unsigned nhandshakes;		/* guarded by lock */
};

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

/* Ask the worker to look at c.  Called with c->lock held, so that once the
 * worker has closed c (under c->lock) nobody kicks it any more. */
static void worker_kick_locked(struct nbd_conn *c)
{
	struct worker *w = c->w;
	uint64_t one = 1;
	ssize_t r;

	pthread_mutex_lock(&w->lock);
	if (!c->kick_queued) {
		c->kick_queued = true;
		list_add_tail(&c->kick_node, &w->kicked);
	}
	pthread_mutex_unlock(&w->lock);
	r = write(w->efd, &one, sizeof(one));
	(void)r;	/* a full counter is a pending wake-up anyway */
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

static void slot_release_locked(struct nbd_conn *c, struct nbd_req *rq)
{
	if (rq->cap > SLOT_KEEP) {
		free(rq->buf);
		rq->buf = NULL;
		rq->cap = 0;
	}
	list_add(&rq->node, &c->free_slots);
	c->inflight--;
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

/* Send what the socket takes; true when rq's reply is fully out.  The
 * caller holds c->lock (replies of one connection go out one at a time). */
static bool reply_send_locked(struct nbd_conn *c, struct nbd_req *rq)
{
	while (rq->out_off < rq->out_len) {
		struct iovec iov[2];
		size_t n = req_iov(rq, iov);
		ssize_t r = writev(c->fd, iov, (int)n);

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
	rq->reply.cookie = rq->cookie;	/* opaque: echoed as received */
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
	/* Slots are back: the worker may go on reading, or finish closing. */
	if (c->paused || (c->in_dead && !c->inflight) || !list_empty(&c->retry)) {
		if (c->paused && list_empty(&c->retry)) {
			c->paused = false;
			conn_update_events_locked(c);
		}
		worker_kick_locked(c);
	}
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

static void req_submit(struct nbd_conn *c, struct nbd_req *rq)
{
	int r = umpath_map_submit(c->map, &rq->io);

	if (r == -EAGAIN) {
		/* The map's pool is full: park it, stop reading, retry later. */
		pthread_mutex_lock(&c->lock);
		list_add_tail(&rq->node, &c->retry);
		c->paused = true;
		conn_update_events_locked(c);
		worker_kick_locked(c);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (r < 0)
		req_reply(rq, r);
}

/* ---- requests ------------------------------------------------------ */

static int slot_reserve(struct nbd_req *rq, size_t len)
{
	void *p;

	if (rq->cap >= len)
		return 0;
	free(rq->buf);
	rq->buf = NULL;
	rq->cap = 0;
	/* Aligned for O_DIRECT paths. */
	if (posix_memalign(&p, 4096, len < 4096 ? 4096 : len))
		return -ENOMEM;
	rq->buf = p;
	rq->cap = len < 4096 ? 4096 : len;
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

/* Parse the requests in the receive buffer.  false: stop for now (out of
 * slots, or the connection's input ended). */
static bool conn_parse(struct nbd_conn *c)
{
	while (!c->in_dead) {
		if (c->cur) {
			struct nbd_req *rq = c->cur;
			size_t n = c->rlen - c->rpos;

			if (n > rq->len - c->payload_got)
				n = rq->len - c->payload_got;
			memcpy(rq->buf + c->payload_got, c->rbuf + c->rpos, n);
			c->rpos += n;
			c->payload_got += n;
			if (c->payload_got < rq->len)
				return true;	/* more payload to come */
			c->cur = NULL;
			req_start(c, rq, req_check(c, rq));
			continue;
		}
		if (c->rlen - c->rpos < 28)
			return true;

		const uint8_t *h = c->rbuf + c->rpos;
		uint32_t magic, len;
		uint16_t flags, type;
		uint64_t cookie, off;

		memcpy(&magic, h, 4);
		if (be32toh(magic) != NBD_REQUEST_MAGIC) {
			um_log("nbd: bad request magic 0x%08x: closing the connection",
			       be32toh(magic));
			c->in_dead = true;
			return false;
		}
		memcpy(&flags, h + 4, 2);
		memcpy(&type, h + 6, 2);
		memcpy(&cookie, h + 8, 8);
		memcpy(&off, h + 16, 8);
		memcpy(&len, h + 24, 4);
		type = be16toh(type);
		if (type == NBD_CMD_DISC) {
			c->rpos += 28;
			c->in_dead = true;
			return false;
		}
		if (type == NBD_CMD_WRITE && be32toh(len) > NBD_MAX_REQUEST) {
			/* Its payload cannot be skipped safely: end this client. */
			um_log("nbd: write of %u bytes is over the %u maximum: closing the connection",
			       be32toh(len), NBD_MAX_REQUEST);
			c->in_dead = true;
			return false;
		}
		struct nbd_req *rq = slot_take(c);
		if (!rq)
			return false;
		c->rpos += 28;
		rq->type = type;
		rq->flags = be16toh(flags);
		rq->cookie = cookie;
		rq->off = be64toh(off);
		rq->len = be32toh(len);
		if ((type == NBD_CMD_READ || type == NBD_CMD_WRITE) &&
		    slot_reserve(rq, rq->len) < 0) {
			if (type == NBD_CMD_WRITE) {
				c->in_dead = true;	/* cannot take its payload */
				pthread_mutex_lock(&c->lock);
				slot_release_locked(c, rq);
				pthread_mutex_unlock(&c->lock);
				return false;
			}
			req_start(c, rq, -ENOMEM);
			continue;
		}
		if (type == NBD_CMD_WRITE && rq->len) {
			c->cur = rq;
			c->payload_got = 0;
			continue;
		}
		req_start(c, rq, req_check(c, rq));
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

		if (!conn_parse(c))
			break;
		if (c->cur && c->rpos == c->rlen) {
			/* A large write payload goes straight into its slot. */
			got = &c->payload_got;
			r = recv(c->fd, c->cur->buf + *got, c->cur->len - *got, 0);
		} else {
			/* Keep a partial header at the front, fill the rest. */
			if (c->rpos) {
				memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
				c->rlen -= c->rpos;
				c->rpos = 0;
			}
			got = &c->rlen;
			r = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
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

	/* Off the export's list first: nbd_stop must not shutdown() a closed
	 * (or reused) descriptor. */
	pthread_mutex_lock(&e->lock);
	list_del_init(&c->node);
	pthread_mutex_unlock(&e->lock);
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	umd_map_put(c->m, true);
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
	if (events & EPOLLOUT) {
		pthread_mutex_lock(&c->lock);
		conn_drain_outq_locked(c);
		if (list_empty(&c->outq) && c->want_out) {
			c->want_out = false;
			conn_update_events_locked(c);
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_input(c);
	conn_abort_cur(c);
	pthread_mutex_lock(&c->lock);
	bool closable = c->in_dead && !c->inflight && !c->closed;
	pthread_mutex_unlock(&c->lock);
	if (closable && conn_maybe_close(c))
		list_add_tail(&c->dead_node, dead);	/* freed after this batch */
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];

	for (;;) {
		struct list_head dead;
		struct nbd_conn *c, *n;
		bool retry_pending = false;
		int nev;

		nev = epoll_wait(w->epfd, evs, 64, -1);
		if (nev < 0 && errno != EINTR)
			break;
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
		}
		/* Connections kicked by completions: take them one at a time, so
		 * that a new kick can queue a connection again meanwhile; only
		 * as many as were queued now (a retrying one re-queues itself). */
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
			retry_pending |= !list_empty(&c->retry);
			pthread_mutex_unlock(&c->lock);
			if (!closed)
				conn_event(c, EPOLLIN, &dead);
		}
		list_for_each_entry_safe(c, n, &dead, dead_node) {
			list_del_init(&c->dead_node);
			conn_free(c);
		}
		if (retry_pending)
			usleep(200);	/* the map's pool was full: let it drain */
		if (stop)
			break;
	}
	return NULL;
}

/* ---- handshake ----------------------------------------------------- */

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = send(fd, p, len, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = recv(fd, p, len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int opt_reply(int fd, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	struct {
		uint64_t magic;
		uint32_t opt, type, len;
	} __attribute__((packed)) h = {
		.magic = htobe64(NBD_REP_MAGIC),
		.opt = htobe32(opt),
		.type = htobe32(type),
		.len = htobe32(len),
	};

	if (send_all(fd, &h, sizeof(h)) < 0)
		return -1;
	return len ? send_all(fd, data, len) : 0;
}

static int opt_error(int fd, uint32_t opt, uint32_t type, const char *msg)
{
	return opt_reply(fd, opt, type, msg, (uint32_t)strlen(msg));
}

static uint16_t export_flags(void)
{
	return NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
	       NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
}

struct list_ctx {
	int fd;
	int err;
};

static void list_one(struct umd_map *m, void *opaque)
{
	struct list_ctx *l = opaque;
	uint32_t nlen = (uint32_t)strlen(m->name);
	uint8_t buf[4 + 256];
	uint32_t be = htobe32(nlen);

	if (l->err || nlen > 256)
		return;
	memcpy(buf, &be, 4);
	memcpy(buf + 4, m->name, nlen);
	if (opt_reply(l->fd, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + nlen) < 0)
		l->err = -1;
}

static struct umd_map *lookup(struct nbd_export *e, const char *name)
{
	return *name ? umd_map_get(e->d, name, true) : umd_map_get_default(e->d, true);
}

/* NBD_OPT_INFO / NBD_OPT_GO: 1 to go on to transmission, 0 to go on with
 * options, -1 to drop the client. */
static int opt_info_go(struct nbd_export *e, int fd, uint32_t opt, uint8_t *data, uint32_t len,
		       struct umd_map **ret_map)
{
	uint32_t nlen;
	uint16_t nreq;
	char name[MAX_OPTION_LEN + 1];
	bool want_bs = false, want_name = false;
	struct umd_map *m;

	if (len < 6)
		return opt_error(fd, opt, NBD_REP_ERR_INVALID, "short request") < 0 ? -1 : 0;
	memcpy(&nlen, data, 4);
	nlen = be32toh(nlen);
	if (nlen > len - 6)
		return opt_error(fd, opt, NBD_REP_ERR_INVALID, "bad name length") < 0 ? -1 : 0;
	memcpy(name, data + 4, nlen);
	name[nlen] = '\0';
	memcpy(&nreq, data + 4 + nlen, 2);
	nreq = be16toh(nreq);
	if (len != 4 + nlen + 2 + 2u * nreq)
		return opt_error(fd, opt, NBD_REP_ERR_INVALID, "bad request length") < 0 ? -1 : 0;
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t;

		memcpy(&t, data + 4 + nlen + 2 + 2 * i, 2);
		t = be16toh(t);
		want_bs |= t == NBD_INFO_BLOCK_SIZE;
		want_name |= t == NBD_INFO_NAME;
	}
	if (memchr(name, '\0', nlen))
		return opt_error(fd, opt, NBD_REP_ERR_INVALID, "NUL in name") < 0 ? -1 : 0;
	m = lookup(e, name);
	if (!m)
		return opt_error(fd, opt, NBD_REP_ERR_UNKNOWN, "no such export") < 0 ? -1 : 0;

	uint8_t info[12];
	uint16_t t = htobe16(NBD_INFO_EXPORT), fl = htobe16(export_flags());
	uint64_t sz = htobe64(umpath_map_size(m->map));
	memcpy(info, &t, 2);
	memcpy(info + 2, &sz, 8);
	memcpy(info + 10, &fl, 2);
	if (opt_reply(fd, opt, NBD_REP_INFO, info, 12) < 0)
		goto drop;
	if (want_name) {
		uint8_t nb[2 + 256];
		size_t l = strlen(m->name);
		uint16_t nt = htobe16(NBD_INFO_NAME);

		memcpy(nb, &nt, 2);
		memcpy(nb + 2, m->name, l);
		if (opt_reply(fd, opt, NBD_REP_INFO, nb, (uint32_t)(2 + l)) < 0)
			goto drop;
	}
	if (want_bs) {
		uint8_t bs[14];
		uint16_t bt = htobe16(NBD_INFO_BLOCK_SIZE);
		uint32_t mn = htobe32(NBD_MIN_BLOCK), pr = htobe32(NBD_PREF_BLOCK),
			 mx = htobe32(NBD_MAX_REQUEST);

		memcpy(bs, &bt, 2);
		memcpy(bs + 2, &mn, 4);
		memcpy(bs + 6, &pr, 4);
		memcpy(bs + 10, &mx, 4);
		if (opt_reply(fd, opt, NBD_REP_INFO, bs, 14) < 0)
			goto drop;
	}
	if (opt_reply(fd, opt, NBD_REP_ACK, NULL, 0) < 0)
		goto drop;
	if (opt == NBD_OPT_GO) {
		*ret_map = m;
		return 1;
	}
	umd_map_put(m, true);
	return 0;
drop:
	umd_map_put(m, true);
	return -1;
}

static int conn_start(struct nbd_export *e, int fd, struct umd_map *m);

struct handshake {
	struct nbd_export *e;
	int fd;
};

/* Fixed newstyle negotiation; on success the connection goes to a worker. */
static void handshake(struct nbd_export *e, int fd)
{
	struct {
		uint64_t magic, ihaveopt;
		uint16_t flags;
	} __attribute__((packed)) hello = {
		.magic = htobe64(NBD_MAGIC),
		.ihaveopt = htobe64(NBD_IHAVEOPT),
		.flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};
	uint32_t cflags;
	struct umd_map *m = NULL;
	uint8_t *data = NULL;
	struct timeval tv = { .tv_sec = HANDSHAKE_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send_all(fd, &hello, sizeof(hello)) < 0 || recv_all(fd, &cflags, 4) < 0)
		goto drop;
	cflags = be32toh(cflags);
	if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		goto drop;	/* unknown client flags: the protocol says disconnect */
	bool no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

	data = malloc(MAX_OPTION_LEN + 1);
	if (!data)
		goto drop;
	for (unsigned n = 0; n < MAX_OPTIONS && !atomic_load(&e->stopping); n++) {
		struct {
			uint64_t magic;
			uint32_t opt, len;
		} __attribute__((packed)) oh;
		int r;

		if (recv_all(fd, &oh, sizeof(oh)) < 0 || be64toh(oh.magic) != NBD_IHAVEOPT)
			goto drop;
		uint32_t opt = be32toh(oh.opt), len = be32toh(oh.len);
		if (len > MAX_OPTION_LEN) {
			opt_error(fd, opt, NBD_REP_ERR_INVALID, "option too long");
			goto drop;
		}
		if (recv_all(fd, data, len) < 0)
			goto drop;
		data[len] = '\0';

		switch (opt) {
		case NBD_OPT_EXPORT_NAME: {
			uint8_t reply[10 + 124];
			uint64_t sz;
			uint16_t fl = htobe16(export_flags());

			if (memchr(data, '\0', len))
				goto drop;
			m = lookup(e, (char *)data);
			if (!m)
				goto drop;	/* this option has no way to say no */
			sz = htobe64(umpath_map_size(m->map));
			memset(reply, 0, sizeof(reply));
			memcpy(reply, &sz, 8);
			memcpy(reply + 8, &fl, 2);
			if (send_all(fd, reply, no_zeroes ? 10 : sizeof(reply)) < 0)
				goto drop;
			goto go;
		}
		case NBD_OPT_ABORT:
			opt_reply(fd, opt, NBD_REP_ACK, NULL, 0);
			goto drop;
		case NBD_OPT_LIST: {
			struct list_ctx l = { .fd = fd };

			if (len) {
				if (opt_error(fd, opt, NBD_REP_ERR_INVALID, "LIST takes no data") < 0)
					goto drop;
				break;
			}
			umd_map_foreach(e->d, list_one, &l);
			if (l.err || opt_reply(fd, opt, NBD_REP_ACK, NULL, 0) < 0)
				goto drop;
			break;
		}
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			r = opt_info_go(e, fd, opt, data, len, &m);
			if (r < 0)
				goto drop;
			if (r > 0)
				goto go;
			break;
		default:
			if (opt_error(fd, opt, NBD_REP_ERR_UNSUP, "unsupported option") < 0)
				goto drop;
			break;
		}
	}
drop:
	free(data);
	close(fd);
	return;
go:
	free(data);
	if (conn_start(e, fd, m) < 0) {
		umd_map_put(m, true);
		close(fd);
	}
}

static void *handshake_thread(void *arg)
{
	struct handshake *h = arg;
	struct nbd_export *e = h->e;

	handshake(e, h->fd);
	free(h);
	pthread_mutex_lock(&e->lock);
	e->nhandshakes--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static int conn_start(struct nbd_export *e, int fd, struct umd_map *m)
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
	c->m = m;
	c->map = m->map;
	c->size = umpath_map_size(m->map);
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
		conn_free(c);
		return r;
	}
	return 0;
}

static void *accept_thread(void *arg)
{
	struct nbd_export *e = arg;

	while (!atomic_load(&e->stopping)) {
		int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (atomic_load(&e->stopping))
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				usleep(100000);	/* out of resources: back off */
				continue;
			}
			um_log("nbd: accept: %s", strerror(errno));
			break;
		}
		struct handshake *h = malloc(sizeof(*h));
		pthread_t t;
		pthread_attr_t attr;

		pthread_mutex_lock(&e->lock);
		bool full = e->nhandshakes >= MAX_HANDSHAKES;
		if (!full && h)
			e->nhandshakes++;
		pthread_mutex_unlock(&e->lock);
		if (full || !h) {
			free(h);
			close(fd);	/* too many clients negotiating at once */
			continue;
		}
		h->e = e;
		h->fd = fd;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, handshake_thread, h)) {
			free(h);
			close(fd);
			pthread_mutex_lock(&e->lock);
			e->nhandshakes--;
			pthread_mutex_unlock(&e->lock);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

/* ---- listening ----------------------------------------------------- */

static int listen_unix(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a dead daemon: remove it; a live one: fail. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int listen_tcp(const char *spec, int *ret_fd)
{
	char host[256] = "127.0.0.1", port[32] = "10809";
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res, *ai;
	const char *colon;
	int r, fd = -1, one = 1;

	/* "", "PORT", "HOST:PORT", "[V6]:PORT" */
	if (*spec) {
		colon = strrchr(spec, ':');
		if (!colon) {
			snprintf(port, sizeof(port), "%s", spec);
		} else {
			size_t hl = (size_t)(colon - spec);

			if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
				spec++;
				hl -= 2;
			}
			if (hl >= sizeof(host))
				return -ENAMETOOLONG;
			if (hl) {
				memcpy(host, spec, hl);
				host[hl] = '\0';
			}
			snprintf(port, sizeof(port), "%s", colon + 1);
		}
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r)
		return r == EAI_SYSTEM ? -errno : -EINVAL;
	r = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		r = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return r;
	*ret_fd = fd;
	return 0;
}

/* Stop and join the first n workers. */
static void workers_stop(struct nbd_export *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &e->workers[i];
		uint64_t one = 1;

		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_mutex_unlock(&w->lock);
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* the counter is full: the worker wakes anyway */
		}
		pthread_join(w->thread, NULL);
	}
}

static void export_free(struct nbd_export *e)
{
	if (e->lfd >= 0)
		close(e->lfd);
	if (e->unix_path) {
		unlink(e->unix_path);
		free(e->unix_path);
	}
	for (unsigned i = 0; i < e->nworkers; i++) {
		if (e->workers[i].epfd >= 0)
			close(e->workers[i].epfd);
		if (e->workers[i].efd >= 0)
			close(e->workers[i].efd);
		pthread_mutex_destroy(&e->workers[i].lock);
	}
	free(e->workers);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
}

static int nbd_start(struct umd *d, const char *spec, struct umd_export **ret)
{
	struct nbd_export *e = calloc(1, sizeof(*e));
	const char *env = getenv("UMPATH_NBD_THREADS");
	unsigned started = 0;
	int r;

	if (!e)
		return -ENOMEM;
	e->d = d;
	e->lfd = -1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	list_init(&e->conns);
	e->nworkers = env && atoi(env) > 0 && atoi(env) <= 64 ? (unsigned)atoi(env) : DEFAULT_WORKERS;
	e->workers = calloc(e->nworkers, sizeof(*e->workers));
	if (!e->workers) {
		free(e);
		return -ENOMEM;
	}

	if (!strncmp(spec, "unix:", 5)) {
		r = listen_unix(spec + 5, &e->lfd);
		if (!r && !(e->unix_path = strdup(spec + 5)))
			r = -ENOMEM;
	} else if (!strncmp(spec, "tcp:", 4)) {
		r = listen_tcp(spec + 4, &e->lfd);
	} else if (!strcmp(spec, "tcp")) {
		r = listen_tcp("", &e->lfd);
	} else {
		r = -EINVAL;
	}
	if (r < 0)
		goto fail;

	for (unsigned i = 0; i < e->nworkers; i++) {
		struct worker *w = &e->workers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		w->e = e;
		pthread_mutex_init(&w->lock, NULL);
		list_init(&w->kicked);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->epfd < 0 || w->efd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &ev) < 0) {
			r = -errno;
			goto fail;
		}
	}
	for (; started < e->nworkers; started++) {
		r = -pthread_create(&e->workers[started].thread, NULL, worker_thread,
				    &e->workers[started]);
		if (r)
			goto fail;
	}
	r = -pthread_create(&e->accept_thread, NULL, accept_thread, e);
	if (r)
		goto fail;
	*ret = (struct umd_export *)e;
	return 0;
fail:
	workers_stop(e, started);
	export_free(e);
	return r;
}

static void nbd_stop(struct umd_export *ue)
{
	struct nbd_export *e = (struct nbd_export *)ue;
	struct nbd_conn *c;
	unsigned waited = 0;

	atomic_store(&e->stopping, true);
	shutdown(e->lfd, SHUT_RDWR);
	pthread_join(e->accept_thread, NULL);

	/* End every client's input; the answers to requests in flight still
	 * go out, then each connection closes itself. */
	pthread_mutex_lock(&e->lock);
	list_for_each_entry(c, &e->conns, node)
		shutdown(c->fd, SHUT_RD);
	while ((e->nconns || e->nhandshakes) && waited < 600) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 100000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&e->cond, &e->lock, &dl);
		waited++;	/* at most a minute: a path's deadline ends any I/O */
	}
	if (e->nconns)
		um_log("nbd: %u connections still busy at shutdown", e->nconns);
	pthread_mutex_unlock(&e->lock);

	workers_stop(e, e->nworkers);
	export_free(e);
}

const struct umd_export_ops umd_nbd_export = {
	.name = "nbd",
	.start = nbd_start,
	.stop = nbd_stop,
};
