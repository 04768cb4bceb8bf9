/* nbd.c - the nbd transport: a path is a connection to an NBD server,
 * driven through libnbd's asynchronous API by the context's event loop (no
 * thread per request, no thread per connection).
 *
 * Path strings: NBD URIs as libnbd's nbd_connect_uri(3) reads them -
 *   nbd://HOST[:PORT][/EXPORT]            TCP
 *   nbds://HOST[:PORT][/EXPORT]           TCP with TLS
 *   nbd+unix:///[EXPORT]?socket=PATH      Unix domain socket (nbds+unix: TLS)
 *   nbd+vsock://CID[:PORT][/EXPORT]       AF_VSOCK (nbds+vsock: TLS)
 * A string starting with one of these schemes and "://" is claimed.  It
 * "exists" (a message naming it outside the map gets EINVAL rather than
 * ENOENT) when libnbd parses it and the socket= rule of its scheme holds.
 * open() connects with a 10 s bound; the export's size is the path's.
 *
 * In flight: at most NBD_MAX_INFLIGHT commands per connection are at the
 * server; further I/O waits in a per-path FIFO.  Each in-flight I/O owns a
 * slot of a fixed per-connection array, so nothing is allocated per I/O.
 * Reads and writes larger than the server's maximum payload, and trims and
 * zeroes beyond NBD_MAX_EFFECT, go out as sequential commands.
 *
 * io_timeout: every I/O has a deadline, ctx->io_timeout_ms after it reached
 * the transport (time in the FIFO counts).  One timer per path is armed for
 * the oldest deadline.  When an I/O misses it, the connection is abandoned
 * at once: the socket is shut down, the I/O completes with -ETIMEDOUT and
 * every other one on the path (in flight or waiting) with -ENOTCONN - path
 * errors, so the engine fails the path and retries elsewhere within the
 * timeout.  An abandoned connection is never read from again, so no
 * completed read buffer is written later; libnbd's callbacks for the
 * abandoned commands find their slot orphaned and do nothing.
 *
 * Stale writes (docs/stale-writes.md): a write that was at libnbd when its
 * connection was abandoned or lost may still be applied by the server, so
 * it ends with tio->unsettled set to the connection's generation.  It
 * settles (um_path_settled) when
 *  - the connection was abandoned at a deadline with libnbd between
 *    messages: the socket is kept open as a "zombie" whose replies this
 *    file parses itself (libnbd is never driven again, so no late reply
 *    lands in a buffer given back); when every command sent on it has its
 *    reply, nothing of it can still be applied;
 *  - the server is a process on the other end of a Unix socket (its pid
 *    from SO_PEERCRED, held as a pidfd) and it has exited.
 * Otherwise only a fence settles it (the engine's fence hook).
 *
 * Reconnect: a lost connection (EOF, reset, timeout) completes its I/O as
 * above; while the path has no connection, I/O fails at once with
 * -ENOTCONN.  On the loop thread the transport reconnects in the background
 * after 100 ms, doubling to 5 s between attempts (each bounded by 10 s),
 * so a checker or a reinstate_path finds it working again.  Nothing of the
 * engine's state is touched here: failing and reinstating the path is the
 * engine's business.  (For nbd:// with a host name, an attempt resolves the
 * name synchronously on the loop thread, as libnbd does.)
 *
 * Features: FUA, TRIM and WRITE_ZEROES are sent when the export offers
 * them.  Otherwise FUA becomes write + flush (a plain write when the export
 * has no write cache, i.e. no flush), WRITE_ZEROES becomes writes from a
 * static zero buffer, TRIM fails with -EOPNOTSUPP and FLUSH completes at
 * once.  On a read-only export, writes fail with -EROFS.
 *
 * Threads and locks: submit() runs on any thread, libnbd's completion
 * callbacks run with the handle's lock held on whichever thread drove the
 * state machine, and only the loop thread reads from the socket.  Each path
 * has one mutex (np->lock) for its lists and slot states; it is taken
 * inside libnbd's lock (in callbacks), so no libnbd call that locks the
 * handle is made with it held.  Completions are collected on np->done and
 * delivered by np_drain() with no lock held, after the libnbd call that
 * produced them has returned (done() may submit again, to this path too).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <libnbd.h>

#include "internal.h"
#include "selector.h"

/* Commands at the server per connection: deep enough to keep a fast server
 * busy, small enough that a lost connection retries a bounded amount. */
#define NBD_MAX_INFLIGHT 64
#define NBD_CONNECT_TIMEOUT_MS 10000u
#define NBD_BACKOFF_MIN_MS 100u
#define NBD_BACKOFF_MAX_MS 5000u
/* Largest READ/WRITE payload sent when the server states no smaller one
 * (libnbd refuses more than 64 MiB; servers commonly take 32 MiB). */
#define NBD_MAX_PAYLOAD (32u << 20)
/* Largest TRIM/WRITE_ZEROES length in one command (32-bit on the wire). */
#define NBD_MAX_EFFECT (1u << 30)
/* Emulated WRITE_ZEROES writes this much per command. */
#define NBD_ZERO_CHUNK (1u << 20)

#define MS_NS 1000000ull

/* Never written: .bss, so it costs no memory until read. */
static unsigned char nbd_zero_buf[NBD_ZERO_CHUNK];

struct nbd_path;
struct nbd_conn;

enum req_state {
	REQ_FREE,	/* on conn->free_reqs */
	REQ_QUEUED,	/* on np->issue: its next command is to be sent */
	REQ_SENDING,	/* a thread is inside nbd_aio_*() for it */
	REQ_CB_EARLY,	/* the completion callback ran while REQ_SENDING */
	REQ_SENT,	/* at libnbd; the completion callback will come */
	REQ_ORPHAN,	/* tio completed by a teardown; libnbd may still call back */
};

/* One slot: a tio at the server, through one or more commands. */
struct nbd_req {
	struct list_head node;		/* free_reqs or np->issue */
	struct nbd_conn *conn;
	struct um_tio *tio;		/* NULL once completed */
	enum req_state state;
	uint64_t deadline_ns;
	uint64_t pos;			/* bytes done by earlier commands */
	uint64_t len;			/* bytes of the command being sent */
	bool flushing;			/* the flush that ends an emulated FUA */
	int cb_err;			/* REQ_CB_EARLY: the command's result */
	int abandon_err;		/* teardown met it sending: complete with this */
	int64_t cookie;			/* libnbd's (and the wire's) for the command sent */
	bool zpending;			/* zombie: its reply has not come yet */
	bool is_read;			/* zombie: the command sent reads len bytes */
};

enum conn_state {
	CONN_CONNECTING,	/* handshake driven by the loop */
	CONN_READY,
	CONN_DEAD,		/* torn down; freed with its last reference */
};

/* After a teardown, what still watches a connection with unsettled writes
 * (loop thread only, in np->zombies). */
enum zombie_state {
	Z_NONE,
	Z_READING,		/* its socket, for the replies still due */
	Z_PID,			/* its server's pidfd, for the exit */
};

/* One connection (one libnbd handle).  A path replaces it on reconnect; an
 * old one lives on only until the threads still inside libnbd with it
 * (bounded, non-blocking calls) have let go. */
struct nbd_conn {
	struct nbd_path *np;
	struct nbd_handle *h;
	/* Our dup of libnbd's socket: libnbd closes its descriptor when the
	 * connection dies, but this number stays ours (registered with the
	 * loop, shut down to wake it) until the conn is freed. */
	int fd;
	unsigned refs;			/* guarded by np->lock */
	enum conn_state state;		/* guarded by np->lock */
	bool watched;			/* fd in the loop; guarded by np->lock */
	uint32_t events;		/* registered; guarded by np->lock */
	/* The export's features, set before it turns CONN_READY. */
	bool can_flush, can_fua, can_trim, can_zero, read_only;
	uint64_t max_payload;
	bool structured;		/* structured replies negotiated */
	uint64_t gen;			/* tio->unsettled of its writes */
	int pidfd;			/* the server process (Unix socket), or -1 */
	/* zombie: loop thread only */
	enum zombie_state zstate;
	struct list_head znode;		/* in np->zombies */
	unsigned zpending;		/* replies still due */
	unsigned char zhdr[20];		/* reply header being read */
	unsigned zhlen;
	uint64_t zskip;			/* payload bytes still to discard */
	int64_t zcookie;		/* the command whose reply is read */
	bool zdone;			/* that command ends after the payload */
	struct list_head free_reqs;	/* guarded by np->lock */
	struct nbd_req reqs[NBD_MAX_INFLIGHT];
};

struct nbd_path {
	struct umpath_ctx *ctx;
	struct um_path *path;
	struct umpath_loop *loop;
	char *uri;
	uint64_t size;
	uint32_t min_block;		/* the server's minimum block size, > 512 */
	uint64_t timeout_ns;
	_Atomic unsigned refs;		/* the path's, each conn's, each drainer's */
	pthread_mutex_t lock;
	struct nbd_conn *conn;		/* current connection, or NULL */
	bool closing;
	struct list_head waiting;	/* tios beyond NBD_MAX_INFLIGHT, FIFO */
	struct list_head issue;		/* nbd_reqs with a command to send */
	struct list_head done;		/* tios to complete; err in tp_time_ns */
	bool deadline_armed;
	unsigned backoff_ms;		/* loop thread only */
	struct um_timer deadline_timer;
	struct um_timer reconnect_timer;	/* next attempt, or its time limit */
	struct um_timer close_timer;	/* runs the teardown on the loop thread */
	_Atomic uint64_t next_gen;
	struct list_head zombies;	/* loop thread only: conns still watched */
	pthread_cond_t close_cond;
	bool close_done;
};

static void np_fd_event(void *opaque, uint32_t events);

/* ---- URIs ------------------------------------------------------------- */

static const char *const nbd_schemes[] = {
	"nbd", "nbds", "nbd+unix", "nbds+unix", "nbd+vsock", "nbds+vsock",
};

/* The index of path's scheme in nbd_schemes, or -1. */
static int nbd_scheme(const char *path)
{
	for (size_t i = 0; i < UM_ARRAY_SIZE(nbd_schemes); i++) {
		size_t n = strlen(nbd_schemes[i]);

		if (!strncmp(path, nbd_schemes[i], n) && !strncmp(path + n, "://", 3))
			return (int)i;
	}
	return -1;
}

/* Whether the query part of uri has a non-empty socket= parameter. */
static bool uri_has_socket(const char *uri)
{
	const char *q = strchr(uri, '?');
	const char *end;

	if (!q)
		return false;
	q++;
	end = q + strcspn(q, "#");
	for (const char *s = q; s < end; s += strcspn(s, "&") + 1)
		if (!strncmp(s, "socket=", 7) && s + 7 < end && s[7] != '&')
			return true;
	return false;
}

static int nbd_claims(struct umpath_ctx *ctx, const char *path)
{
	return nbd_scheme(path) >= 0;
}

static bool nbd_exists(struct umpath_ctx *ctx, const char *path)
{
	int scheme = nbd_scheme(path);
	struct nbd_handle *h;
	bool parsed;

	if (scheme < 0)
		return false;
	if ((strstr(nbd_schemes[scheme], "+unix") != NULL) != uri_has_socket(path))
		return false;
	h = nbd_create();
	if (!h)
		return false;
	if (nbd_supports_uri(h) != 1) {
		nbd_close(h);
		return true;	/* nothing better to go by than the scheme */
	}
	/* With no transport allowed, libnbd parses the URI fully and then
	 * refuses to connect with EPERM; a malformed one fails with EINVAL. */
	parsed = nbd_set_uri_allow_transports(h, 0) == 0 &&
		 nbd_aio_connect_uri(h, path) == -1 && nbd_get_errno() == EPERM;
	nbd_close(h);
	return parsed;
}

/* ---- lifetimes -------------------------------------------------------- */

static void np_get(struct nbd_path *np)
{
	atomic_fetch_add(&np->refs, 1);
}

static void np_put(struct nbd_path *np)
{
	if (atomic_fetch_sub(&np->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&np->lock);
	pthread_cond_destroy(&np->close_cond);
	free(np->uri);
	free(np);
}

static void conn_free(struct nbd_conn *conn)
{
	struct nbd_path *np = conn->np;

	if (conn->h)
		nbd_close(conn->h);	/* calls no completion callback */
	if (conn->fd >= 0)
		close(conn->fd);
	if (conn->pidfd >= 0)
		close(conn->pidfd);
	free(conn);
	np_put(np);
}

static void conn_put(struct nbd_conn *conn)
{
	struct nbd_path *np = conn->np;
	bool last;

	pthread_mutex_lock(&np->lock);
	last = --conn->refs == 0;
	pthread_mutex_unlock(&np->lock);
	if (last)
		conn_free(conn);
}

/* ---- completion ------------------------------------------------------- */

static void np_complete_locked(struct nbd_path *np, struct um_tio *tio, int err)
{
	tio->tp_time_ns = (uint64_t)(int64_t)err;
	list_add_tail(&tio->tp_node, &np->done);
}

static void req_queue_locked(struct nbd_path *np, struct nbd_req *req)
{
	req->state = REQ_QUEUED;
	list_add_tail(&req->node, &np->issue);
}

static void req_assign_locked(struct nbd_path *np, struct nbd_req *req, struct um_tio *tio)
{
	req->tio = tio;
	req->deadline_ns = tio->tp_time_ns;
	req->pos = 0;
	req->len = 0;
	req->flushing = false;
	req->abandon_err = 0;
	req_queue_locked(np, req);
}

/* The tio of req is done: complete it and give the slot to the next
 * waiting tio. */
static void req_finish_locked(struct nbd_path *np, struct nbd_req *req, int err)
{
	struct nbd_conn *conn = req->conn;

	np_complete_locked(np, req->tio, err);
	req->tio = NULL;
	if (conn->state == CONN_DEAD) {
		req->state = REQ_ORPHAN;
		return;
	}
	if (!list_empty(&np->waiting)) {
		struct um_tio *next = list_first_entry(&np->waiting, struct um_tio, tp_node);

		list_del_init(&next->tp_node);
		req_assign_locked(np, req, next);
		return;
	}
	req->state = REQ_FREE;
	list_add(&req->node, &conn->free_reqs);
}

static bool req_needs_flush(const struct nbd_conn *conn, const struct um_tio *tio)
{
	return (tio->op == UMPATH_OP_WRITE || tio->op == UMPATH_OP_WRITE_ZEROES) &&
	       (tio->flags & UMPATH_IO_FUA) && !conn->can_fua && conn->can_flush;
}

/* A command of req ended with err: send the next one, or finish. */
static void req_step_done_locked(struct nbd_path *np, struct nbd_req *req, int err)
{
	struct um_tio *tio = req->tio;

	if (!err && !req->flushing) {
		req->pos += req->len;
		if (req->pos < tio->length) {
			req_queue_locked(np, req);
			return;
		}
		if (req_needs_flush(req->conn, tio)) {
			req->flushing = true;
			req_queue_locked(np, req);
			return;
		}
	}
	req_finish_locked(np, req, err);
}

/* Whether the command of req changes the storage (the flush that ends an
 * emulated FUA write comes after the write was answered). */
static bool req_writes(const struct nbd_req *req)
{
	enum umpath_op op = req->tio->op;

	return !req->flushing &&
	       (op == UMPATH_OP_WRITE || op == UMPATH_OP_WRITE_ZEROES || op == UMPATH_OP_TRIM);
}

/* libnbd's completion callback: runs with the handle's lock held, so it
 * only records the result (no nbd_* call, no done()). */
static int req_complete(void *opaque, int *error)
{
	struct nbd_req *req = opaque;
	struct nbd_path *np = req->conn->np;
	int err = *error ? -*error : 0;

	pthread_mutex_lock(&np->lock);
	switch (req->state) {
	case REQ_SENDING:
		req->state = REQ_CB_EARLY;
		req->cb_err = err;
		break;
	case REQ_SENT:
		req_step_done_locked(np, req, err);
		break;
	default:
		break;	/* REQ_ORPHAN: a teardown completed its tio already */
	}
	pthread_mutex_unlock(&np->lock);
	return 1;	/* retire the command */
}

/* ---- the connection and the loop -------------------------------------- */

static uint32_t dir_events(struct nbd_handle *h)
{
	unsigned dir = nbd_aio_get_direction(h);	/* lock-free in libnbd */
	uint32_t ev = 0;

	if (dir & LIBNBD_AIO_DIRECTION_READ)
		ev |= EPOLLIN;
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		ev |= EPOLLOUT;
	return ev;
}

/* The direction changes with every command and notification.  Whoever
 * changed the state machine recomputes it under np->lock afterwards, so the
 * last registration made follows the last change. */
static void conn_update_events_locked(struct nbd_path *np, struct nbd_conn *conn)
{
	uint32_t ev;

	if (np->conn != conn || !conn->watched)
		return;
	ev = dir_events(conn->h);
	if (ev != conn->events && um_loop_mod_fd(np->loop, conn->fd, ev) == 0)
		conn->events = ev;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static bool handle_alive(struct nbd_handle *h)
{
	return !nbd_aio_is_dead(h) && !nbd_aio_is_closed(h);
}

/* Send req's next command.  req is REQ_SENDING, taken off np->issue by
 * this thread, which holds a reference on req->conn and no lock. */
static void req_send(struct nbd_path *np, struct nbd_req *req)
{
	struct nbd_conn *conn = req->conn;
	struct nbd_handle *h = conn->h;
	struct um_tio *tio = req->tio;
	nbd_completion_callback cb = { .callback = req_complete, .user_data = req };
	uint64_t off = tio->offset + req->pos;
	uint64_t left = tio->length - req->pos;
	uint32_t flags = 0;
	int64_t cookie = -1;
	int err = 0;

	if ((tio->flags & UMPATH_IO_FUA) && conn->can_fua)
		flags |= LIBNBD_CMD_FLAG_FUA;
	req->len = 0;
	if (req->flushing) {
		cookie = nbd_aio_flush(h, cb, 0);
	} else {
		switch (tio->op) {
		case UMPATH_OP_READ:
			req->len = min_u64(left, conn->max_payload);
			cookie = nbd_aio_pread(h, (char *)tio->buf + req->pos, req->len, off, cb, 0);
			break;
		case UMPATH_OP_WRITE:
			req->len = min_u64(left, conn->max_payload);
			cookie = nbd_aio_pwrite(h, (const char *)tio->buf + req->pos, req->len, off,
						cb, flags);
			break;
		case UMPATH_OP_FLUSH:
			cookie = nbd_aio_flush(h, cb, 0);
			break;
		case UMPATH_OP_TRIM:
			req->len = min_u64(left, NBD_MAX_EFFECT);
			cookie = nbd_aio_trim(h, req->len, off, cb, 0);
			break;
		case UMPATH_OP_WRITE_ZEROES:
			if (conn->can_zero) {
				if (tio->flags & UMPATH_IO_NO_HOLE)
					flags |= LIBNBD_CMD_FLAG_NO_HOLE;
				req->len = min_u64(left, NBD_MAX_EFFECT);
				cookie = nbd_aio_zero(h, req->len, off, cb, flags);
			} else {
				req->len = min_u64(left, min_u64(NBD_ZERO_CHUNK, conn->max_payload));
				cookie = nbd_aio_pwrite(h, nbd_zero_buf, req->len, off, cb, flags);
			}
			break;
		default:
			err = -EINVAL;	/* refused by conn_answers_locked() */
			break;
		}
	}
	if (cookie < 0 && !err) {
		err = nbd_get_errno() ? -nbd_get_errno() : -EIO;
		/* A dead handle refuses with EINVAL ("invalid state"), which
		 * would pass for the request's fault. */
		if (!nbd_aio_is_ready(h) && !nbd_aio_is_processing(h))
			err = -ENOTCONN;
	}

	pthread_mutex_lock(&np->lock);
	req->cookie = cookie;
	if (req->abandon_err) {
		/* Torn down meanwhile; libnbd is done with the buffer now.  A
		 * write libnbd took and did not answer may still be applied. */
		if (cookie >= 0 && req->state != REQ_CB_EARLY && req_writes(req))
			tio->unsettled = conn->gen;
		np_complete_locked(np, tio, req->abandon_err);
		req->tio = NULL;
		req->state = REQ_ORPHAN;
	} else if (cookie < 0) {
		req_step_done_locked(np, req, err);
	} else if (req->state == REQ_CB_EARLY) {
		req_step_done_locked(np, req, req->cb_err);
	} else {
		req->state = REQ_SENT;
	}
	if (conn->state != CONN_DEAD && !handle_alive(h)) {
		/* The connection died in this thread: wake the loop, which
		 * tears it down and reconnects. */
		shutdown(conn->fd, SHUT_RDWR);
	}
	conn_update_events_locked(np, conn);
	pthread_mutex_unlock(&np->lock);
}

/* Send queued commands and deliver completions until neither is left.
 * Called with no lock held, after any libnbd call that may have run
 * completion callbacks. */
static void np_drain(struct nbd_path *np)
{
	struct list_head done;
	struct um_tio *tio, *n;

	np_get(np);	/* a done() may close the path */
	pthread_mutex_lock(&np->lock);
	for (;;) {
		if (!list_empty(&np->issue)) {
			struct nbd_req *req = list_first_entry(&np->issue, struct nbd_req, node);
			struct nbd_conn *conn = req->conn;

			list_del_init(&req->node);
			req->state = REQ_SENDING;
			conn->refs++;
			pthread_mutex_unlock(&np->lock);
			req_send(np, req);
			conn_put(conn);
			pthread_mutex_lock(&np->lock);
			continue;
		}
		if (list_empty(&np->done))
			break;
		list_init(&done);
		list_splice_tail_init(&np->done, &done);
		pthread_mutex_unlock(&np->lock);
		list_for_each_entry_safe(tio, n, &done, tp_node) {
			int err = (int)(int64_t)tio->tp_time_ns;

			list_del_init(&tio->tp_node);
			tio->done(tio, err);
		}
		pthread_mutex_lock(&np->lock);
	}
	pthread_mutex_unlock(&np->lock);
	np_put(np);
}

/* ---- stale writes: zombie connections and server exits ---------------- */

static void zombie_end(struct nbd_path *np, struct nbd_conn *conn, bool settled);

/* The reply to cookie has fully arrived. */
static void zombie_reply_done(struct nbd_path *np, struct nbd_conn *conn, int64_t cookie)
{
	for (unsigned i = 0; i < NBD_MAX_INFLIGHT; i++) {
		struct nbd_req *req = &conn->reqs[i];

		if (req->zpending && req->cookie == cookie) {
			req->zpending = false;
			conn->zpending--;
			return;
		}
	}
}

/* A reply header is complete in conn->zhdr.  false: not NBD, give up. */
static bool zombie_header(struct nbd_conn *conn)
{
	const unsigned char *h = conn->zhdr;
	uint32_t magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	int64_t cookie = 0;

	for (unsigned i = 8; i < 16; i++)
		cookie = (int64_t)((uint64_t)cookie << 8 | h[i]);
	conn->zcookie = cookie;
	conn->zskip = 0;
	if (magic == 0x67446698) {		/* simple reply */
		bool err = h[4] | h[5] | h[6] | h[7];

		conn->zdone = true;
		if (err || conn->structured)
			return true;
		for (unsigned i = 0; i < NBD_MAX_INFLIGHT; i++) {
			const struct nbd_req *req = &conn->reqs[i];

			/* A successful read's data follows (req->len: the
			 * command's length, kept after the tio went). */
			if (req->zpending && req->cookie == cookie && req->is_read)
				conn->zskip = req->len;
		}
		return true;
	}
	if (magic == 0x668e33ef) {		/* structured reply chunk */
		conn->zdone = h[5] & 1;		/* NBD_REPLY_FLAG_DONE */
		conn->zskip = (uint64_t)h[16] << 24 | (uint64_t)h[17] << 16 |
			      (uint64_t)h[18] << 8 | h[19];
		return true;
	}
	return false;
}

/* The zombie's socket is readable: read and discard replies, counting the
 * commands answered. */
static void zombie_event(void *opaque, uint32_t events)
{
	struct nbd_conn *conn = opaque;
	struct nbd_path *np = conn->np;
	unsigned char buf[16384];

	for (;;) {
		ssize_t n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t i = 0;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			zombie_end(np, conn, false);	/* EOF or error: fate unknown */
			return;
		}
		while (i < (size_t)n) {
			if (conn->zskip) {
				size_t take = (size_t)n - i < conn->zskip ? (size_t)n - i
									  : (size_t)conn->zskip;

				conn->zskip -= take;
				i += take;
			} else {
				size_t need = conn->zhlen < 4 ? 4 : 16;

				if (conn->zhlen >= 4 && conn->zhdr[0] == 0x66)
					need = 20;	/* structured header */
				while (conn->zhlen < need && i < (size_t)n)
					conn->zhdr[conn->zhlen++] = buf[i++];
				if (conn->zhlen < need || need == 4)
					continue;
				conn->zhlen = 0;
				if (!zombie_header(conn)) {
					zombie_end(np, conn, false);
					return;
				}
			}
			if (!conn->zskip && !conn->zhlen && conn->zdone) {
				conn->zdone = false;
				zombie_reply_done(np, conn, conn->zcookie);
				if (!conn->zpending) {
					zombie_end(np, conn, true);
					return;
				}
			}
		}
	}
}

/* The server process has exited: nothing it was given can land any more. */
static void zombie_pid_event(void *opaque, uint32_t events)
{
	struct nbd_conn *conn = opaque;

	zombie_end(conn->np, conn, true);
}

/* Watch conn (holding a reference) in state z; false if that cannot be. */
static bool zombie_watch(struct nbd_path *np, struct nbd_conn *conn, enum zombie_state z)
{
	int fd = z == Z_READING ? conn->fd : conn->pidfd;

	if (fd < 0)
		return false;
	if (um_loop_add_fd(np->loop, fd, EPOLLIN, z == Z_READING ? zombie_event : zombie_pid_event,
			   conn) < 0)
		return false;
	pthread_mutex_lock(&np->lock);
	conn->refs++;
	pthread_mutex_unlock(&np->lock);
	conn->zstate = z;
	list_add_tail(&conn->znode, &np->zombies);
	return true;
}

/* Stop watching conn; settled: its unsettled writes are settled. */
static void zombie_end(struct nbd_path *np, struct nbd_conn *conn, bool settled)
{
	enum zombie_state z = conn->zstate;

	um_loop_del_fd(np->loop, z == Z_READING ? conn->fd : conn->pidfd);
	list_del_init(&conn->znode);
	conn->zstate = Z_NONE;
	if (z == Z_READING)
		shutdown(conn->fd, SHUT_RDWR);
	if (settled)
		um_path_settled(np->path, conn->gen);
	else if (z == Z_READING)
		zombie_watch(np, conn, Z_PID);	/* the server may still end */
	conn_put(conn);
}

/* Close every watch (the path is closing: nobody needs to hear). */
static void zombies_free(struct nbd_path *np)
{
	while (!list_empty(&np->zombies)) {
		struct nbd_conn *conn = list_first_entry(&np->zombies, struct nbd_conn, znode);

		um_loop_del_fd(np->loop, conn->zstate == Z_READING ? conn->fd : conn->pidfd);
		list_del_init(&conn->znode);
		conn->zstate = Z_NONE;
		conn_put(conn);
	}
}

/* Abandon the path's connection (on the loop thread, or before the path
 * is published): complete every tio it holds and every waiting one -
 * -ETIMEDOUT if past its deadline at now (now != 0), else -ENOTCONN - and
 * shut the socket down.  Threads still inside libnbd with it complete
 * their own tio when they return (REQ_SENDING); nobody reads from it
 * again through libnbd, so no completed read buffer is filled later.
 * Writes libnbd had are unsettled: at a deadline (now != 0) with libnbd
 * between messages, the socket stays open as a zombie to hear their
 * replies; else the server's exit is watched for, if it can be. */
static void np_teardown(struct nbd_path *np, uint64_t now)
{
	struct nbd_conn *conn;
	struct um_tio *tio, *n;
	bool watched = false, sending = false, unsettled = false, closing;
	unsigned sent = 0;

	pthread_mutex_lock(&np->lock);
	closing = np->closing;
	conn = np->conn;
	np->conn = NULL;
	if (conn) {
		conn->state = CONN_DEAD;
		watched = conn->watched;
		conn->watched = false;
		for (unsigned i = 0; i < NBD_MAX_INFLIGHT; i++) {
			struct nbd_req *req = &conn->reqs[i];
			int err = now && req->deadline_ns <= now ? -ETIMEDOUT : -ENOTCONN;

			if (!req->tio)
				continue;
			switch (req->state) {
			case REQ_QUEUED:
				list_del_init(&req->node);
				np_complete_locked(np, req->tio, err);
				req->tio = NULL;
				req->state = REQ_ORPHAN;
				break;
			case REQ_SENT:
				req->is_read = req->tio->op == UMPATH_OP_READ && !req->flushing;
				if (req_writes(req)) {
					req->tio->unsettled = conn->gen;
					unsettled = true;
				}
				req->zpending = true;
				sent++;
				np_complete_locked(np, req->tio, err);
				req->tio = NULL;
				req->state = REQ_ORPHAN;
				break;
			case REQ_SENDING:
			case REQ_CB_EARLY:
				req->abandon_err = err;
				sending = true;
				break;
			default:
				break;
			}
		}
	}
	list_for_each_entry_safe(tio, n, &np->waiting, tp_node) {
		int err = now && tio->tp_time_ns <= now ? -ETIMEDOUT : -ENOTCONN;

		list_del_init(&tio->tp_node);
		np_complete_locked(np, tio, err);
	}
	pthread_mutex_unlock(&np->lock);
	if (!conn)
		return;
	if (watched)
		um_loop_del_fd(np->loop, conn->fd);
	if (closing || !(unsettled || sending)) {
		shutdown(conn->fd, SHUT_RDWR);
	} else if (now && !sending && nbd_aio_is_ready(conn->h)) {
		/* Between messages: no request half sent, no reply half
		 * read, so the stream can be followed from here. */
		conn->zpending = sent;
		if (!zombie_watch(np, conn, Z_READING)) {
			shutdown(conn->fd, SHUT_RDWR);
			zombie_watch(np, conn, Z_PID);
		}
	} else {
		shutdown(conn->fd, SHUT_RDWR);
		zombie_watch(np, conn, Z_PID);
	}
	conn_put(conn);		/* the path's reference */
}

/* Loop thread: try again after the current backoff, and back off more. */
static void np_schedule_reconnect(struct nbd_path *np)
{
	unsigned delay;

	pthread_mutex_lock(&np->lock);
	if (np->closing) {
		pthread_mutex_unlock(&np->lock);
		return;
	}
	pthread_mutex_unlock(&np->lock);
	delay = np->backoff_ms;
	np->backoff_ms = delay * 2 > NBD_BACKOFF_MAX_MS ? NBD_BACKOFF_MAX_MS : delay * 2;
	um_timer_arm(np->loop, &np->reconnect_timer, delay * MS_NS);
}

static void np_lost(struct nbd_path *np)
{
	np_teardown(np, 0);
	np_schedule_reconnect(np);
}

/* Start connecting: a new handle, its socket dup'ed. */
static int conn_start(struct nbd_path *np, struct nbd_conn **ret_conn)
{
	struct nbd_conn *conn = calloc(1, sizeof(*conn));
	int fd, r;

	if (!conn)
		return -ENOMEM;
	conn->np = np;
	np_get(np);
	conn->fd = -1;
	conn->pidfd = -1;
	conn->gen = atomic_fetch_add(&np->next_gen, 1) + 1;
	list_init(&conn->znode);
	conn->refs = 1;
	conn->state = CONN_CONNECTING;
	list_init(&conn->free_reqs);
	for (unsigned i = 0; i < NBD_MAX_INFLIGHT; i++) {
		conn->reqs[i].conn = conn;
		list_add_tail(&conn->reqs[i].node, &conn->free_reqs);
	}
	conn->h = nbd_create();
	if (!conn->h) {
		r = -(nbd_get_errno() ? nbd_get_errno() : ENOMEM);
		goto fail;
	}
	if (nbd_aio_connect_uri(conn->h, np->uri) < 0) {
		r = -(nbd_get_errno() ? nbd_get_errno() : ECONNREFUSED);
		goto fail;
	}
	fd = nbd_aio_get_fd(conn->h);
	if (fd < 0) {
		r = -ENOTCONN;
		goto fail;
	}
	conn->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (conn->fd < 0) {
		r = -errno;
		goto fail;
	}
	*ret_conn = conn;
	return 0;
fail:
	conn_free(conn);
	return r;
}

/* The process serving a Unix socket, as a pidfd (readable once it has
 * exited), or -1: TCP, another pid namespace, no pidfd_open. */
static int server_pidfd(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

#ifdef SYS_pidfd_open
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
		return (int)syscall(SYS_pidfd_open, cred.pid, 0);
#endif
	return -1;
}

/* The handshake is over: read the export's features (before the conn is
 * published as ready, so that they need no lock). */
static int conn_ready(struct nbd_path *np, struct nbd_conn *conn)
{
	struct nbd_handle *h = conn->h;
	int64_t size = nbd_get_size(h);
	int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);

	if (size < 0)
		return -(nbd_get_errno() ? nbd_get_errno() : EIO);
	if (np->size && ((uint64_t)size != np->size ||
			 (min > UM_MIN_BLOCK && (uint64_t)min > np->min_block)))
		return -ENXIO;		/* not the same storage any more */
	np->size = (uint64_t)size;
	/* A server that takes no less than, say, 4 KiB: the map's clients
	 * are told so. */
	if (min > UM_MIN_BLOCK && min <= 65536 && !(min & (min - 1)))
		np->min_block = (uint32_t)min;
	conn->read_only = nbd_is_read_only(h) != 0;
	conn->can_flush = nbd_can_flush(h) == 1;
	conn->can_fua = nbd_can_fua(h) == 1;
	conn->can_trim = nbd_can_trim(h) == 1;
	conn->can_zero = nbd_can_zero(h) == 1;
	conn->max_payload = max > 0 && max < NBD_MAX_PAYLOAD ? (uint64_t)max : NBD_MAX_PAYLOAD;
	conn->structured = nbd_get_structured_replies_negotiated(h) == 1;
	conn->pidfd = server_pidfd(conn->fd);
	return 0;
}

/* Publish conn as the path's connection and watch its socket. */
static int np_attach(struct nbd_path *np, struct nbd_conn *conn)
{
	int r;

	pthread_mutex_lock(&np->lock);
	np->conn = conn;
	conn->watched = true;
	conn->events = dir_events(conn->h);
	r = um_loop_add_fd(np->loop, conn->fd, conn->events, np_fd_event, np);
	if (r < 0)
		conn->watched = false;
	pthread_mutex_unlock(&np->lock);
	return r;
}

static void np_fd_event(void *opaque, uint32_t events)
{
	struct nbd_path *np = opaque;
	struct nbd_conn *conn;
	struct nbd_handle *h;
	unsigned dir;
	bool lost = false;

	pthread_mutex_lock(&np->lock);
	conn = np->conn;
	if (!conn || !conn->watched) {
		pthread_mutex_unlock(&np->lock);
		return;		/* a stale event of a conn torn down */
	}
	conn->refs++;
	pthread_mutex_unlock(&np->lock);
	h = conn->h;

	dir = nbd_aio_get_direction(h);
	if ((events & (EPOLLHUP | EPOLLERR)) && !(dir & LIBNBD_AIO_DIRECTION_BOTH))
		lost = true;	/* hung up while libnbd expects nothing */
	if ((dir & LIBNBD_AIO_DIRECTION_READ) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		nbd_aio_notify_read(h);
	dir = nbd_aio_get_direction(h);
	if ((dir & LIBNBD_AIO_DIRECTION_WRITE) && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		nbd_aio_notify_write(h);

	if (!handle_alive(h)) {
		lost = true;
	} else if (conn->state == CONN_CONNECTING && nbd_aio_is_ready(h)) {
		/* Only this thread changes a connecting conn's state. */
		if (conn_ready(np, conn) < 0) {
			lost = true;
		} else {
			pthread_mutex_lock(&np->lock);
			conn->state = CONN_READY;
			pthread_mutex_unlock(&np->lock);
			np->backoff_ms = NBD_BACKOFF_MIN_MS;
			um_timer_cancel(np->loop, &np->reconnect_timer);
		}
	}
	if (lost) {
		np_lost(np);
	} else {
		pthread_mutex_lock(&np->lock);
		conn_update_events_locked(np, conn);
		pthread_mutex_unlock(&np->lock);
	}
	conn_put(conn);
	np_drain(np);
}

/* The oldest deadline is due: abandon the connection if it was missed,
 * otherwise wait for the new oldest. */
static void np_close_fire(struct um_timer *t);

static void np_deadline_fire(struct um_timer *t)
{
	struct nbd_path *np = container_of(t, struct nbd_path, deadline_timer);
	uint64_t now = um_now_ns(), oldest = UINT64_MAX;
	struct nbd_conn *conn;

	pthread_mutex_lock(&np->lock);
	conn = np->conn;
	for (unsigned i = 0; conn && i < NBD_MAX_INFLIGHT; i++) {
		struct nbd_req *req = &conn->reqs[i];

		if (req->tio && !req->abandon_err)
			oldest = min_u64(oldest, req->deadline_ns);
	}
	if (!list_empty(&np->waiting))
		oldest = min_u64(oldest,
				 list_first_entry(&np->waiting, struct um_tio, tp_node)->tp_time_ns);
	if (oldest > now && oldest != UINT64_MAX)
		um_timer_arm(np->loop, &np->deadline_timer, oldest - now);
	else
		np->deadline_armed = false;
	pthread_mutex_unlock(&np->lock);

	if (oldest <= now) {
		np_teardown(np, now);
		np_schedule_reconnect(np);
	}
	np_drain(np);
}

/* A reconnection attempt is due, or the one under way took too long. */
static void np_reconnect_fire(struct um_timer *t)
{
	struct nbd_path *np = container_of(t, struct nbd_path, reconnect_timer);
	struct nbd_conn *conn;
	bool closing;

	pthread_mutex_lock(&np->lock);
	closing = np->closing;
	conn = np->conn;
	pthread_mutex_unlock(&np->lock);
	if (closing)
		return;
	if (conn) {
		if (conn->state == CONN_CONNECTING)
			np_lost(np);
		return;
	}
	if (conn_start(np, &conn) < 0) {
		np_schedule_reconnect(np);
		return;
	}
	if (np_attach(np, conn) < 0) {
		np_lost(np);
		return;
	}
	um_timer_arm(np->loop, &np->reconnect_timer, NBD_CONNECT_TIMEOUT_MS * MS_NS);
}

/* ---- the transport ---------------------------------------------------- */

/* The detail of a failed open: libnbd's message of this thread, or what. */
static void nbd_detail(const char *what)
{
	const char *e = nbd_get_error();

	um_detail_set("%s", e && *e ? e : what);
}

/* open() runs on a caller's thread: drive the handshake here. */
static int conn_wait_ready(struct nbd_conn *conn, unsigned timeout_ms)
{
	uint64_t deadline = um_now_ns() + timeout_ms * MS_NS;

	while (!nbd_aio_is_ready(conn->h)) {
		uint64_t now = um_now_ns();
		int r;

		if (!handle_alive(conn->h)) {
			nbd_detail("the connection failed");
			return -ECONNREFUSED;
		}
		if (now >= deadline) {
			um_detail_set("the NBD server did not finish the handshake: "
				      "timed out after %u s", timeout_ms / 1000);
			return -ETIMEDOUT;
		}
		r = nbd_poll(conn->h, (int)((deadline - now + MS_NS - 1) / MS_NS));
		if (r < 0) {
			nbd_detail("the connection failed");
			return -(nbd_get_errno() ? nbd_get_errno() : ECONNREFUSED);
		}
	}
	return 0;
}

static int nbd_open(struct umpath_ctx *ctx, struct um_path *p)
{
	struct nbd_path *np = calloc(1, sizeof(*np));
	struct nbd_conn *conn;
	int r;

	if (!np)
		return -ENOMEM;
	np->uri = strdup(p->name);
	if (!np->uri) {
		free(np);
		return -ENOMEM;
	}
	np->ctx = ctx;
	np->path = p;
	np->loop = ctx->loop;
	np->timeout_ns = ctx->io_timeout_ms * MS_NS;
	np->refs = 1;
	np->backoff_ms = NBD_BACKOFF_MIN_MS;
	pthread_mutex_init(&np->lock, NULL);
	pthread_cond_init(&np->close_cond, NULL);
	list_init(&np->waiting);
	list_init(&np->issue);
	list_init(&np->done);
	um_timer_init(&np->deadline_timer, np_deadline_fire);
	um_timer_init(&np->reconnect_timer, np_reconnect_fire);
	um_timer_init(&np->close_timer, np_close_fire);
	list_init(&np->zombies);

	r = conn_start(np, &conn);
	if (r < 0) {
		nbd_detail("cannot start the connection");
		goto fail;
	}
	r = conn_wait_ready(conn, NBD_CONNECT_TIMEOUT_MS);
	if (!r)
		r = conn_ready(np, conn);
	if (r < 0) {
		conn_put(conn);
		goto fail;
	}
	conn->state = CONN_READY;
	r = np_attach(np, conn);
	if (r < 0) {
		np_teardown(np, 0);
		goto fail;
	}
	p->priv = np;
	p->size = np->size;
	p->block_size = np->min_block;
	return 0;
fail:
	np_put(np);
	return r;
}

static void np_close_on_loop(struct nbd_path *np)
{
	um_timer_cancel(np->loop, &np->deadline_timer);
	um_timer_cancel(np->loop, &np->reconnect_timer);
	np_teardown(np, 0);
	zombies_free(np);
	np_drain(np);
	pthread_mutex_lock(&np->lock);
	np->close_done = true;
	pthread_cond_broadcast(&np->close_cond);
	pthread_mutex_unlock(&np->lock);
}

static void np_close_fire(struct um_timer *t)
{
	np_close_on_loop(container_of(t, struct nbd_path, close_timer));
}

/* The teardown runs on the loop thread, so it never overlaps np_fd_event
 * or a timer of the path; once it is done the loop no longer knows the
 * path.  Threads still inside libnbd with an old connection hold
 * references, and the last one frees the path. */
static void nbd_close_path(struct um_path *p)
{
	struct nbd_path *np = p->priv;

	pthread_mutex_lock(&np->lock);
	np->closing = true;
	pthread_mutex_unlock(&np->lock);
	if (um_loop_is_current(np->loop)) {
		np_close_on_loop(np);
	} else {
		um_timer_arm(np->loop, &np->close_timer, 0);
		pthread_mutex_lock(&np->lock);
		while (!np->close_done)
			pthread_cond_wait(&np->close_cond, &np->lock);
		pthread_mutex_unlock(&np->lock);
		um_timer_cancel(np->loop, &np->close_timer);	/* until fn returned */
	}
	p->priv = NULL;
	np_put(np);
}

/* Whether tio completes at once, with *err, without reaching the server. */
static bool conn_answers_locked(const struct nbd_conn *conn, const struct um_tio *tio, int *err)
{
	*err = 0;
	switch (tio->op) {
	case UMPATH_OP_READ:
		return !tio->length;
	case UMPATH_OP_WRITE:
	case UMPATH_OP_WRITE_ZEROES:
		if (conn->read_only)
			*err = -EROFS;
		return conn->read_only || !tio->length;
	case UMPATH_OP_TRIM:
		if (conn->read_only)
			*err = -EROFS;
		else if (!conn->can_trim)
			*err = -EOPNOTSUPP;
		return *err || !tio->length;
	case UMPATH_OP_FLUSH:
		return !conn->can_flush;	/* no write cache: nothing to flush */
	}
	*err = -EINVAL;
	return true;
}

static void nbd_submit(struct um_path *p, struct um_tio *tio)
{
	struct nbd_path *np = p->priv;
	struct nbd_conn *conn;
	int err;

	pthread_mutex_lock(&np->lock);
	conn = np->conn;
	if (np->closing || !conn || conn->state != CONN_READY) {
		err = -ENOTCONN;
		goto now;
	}
	if (conn_answers_locked(conn, tio, &err))
		goto now;
	tio->tp_time_ns = um_now_ns() + np->timeout_ns;
	if (list_empty(&np->waiting) && !list_empty(&conn->free_reqs)) {
		struct nbd_req *req = list_first_entry(&conn->free_reqs, struct nbd_req, node);

		list_del_init(&req->node);
		req_assign_locked(np, req, tio);
	} else {
		list_add_tail(&tio->tp_node, &np->waiting);
	}
	if (!np->deadline_armed) {
		np->deadline_armed = true;
		um_timer_arm(np->loop, &np->deadline_timer, np->timeout_ns);
	}
	pthread_mutex_unlock(&np->lock);
	np_drain(np);
	return;
now:
	pthread_mutex_unlock(&np->lock);
	tio->done(tio, err);
}

const struct um_transport um_nbd_transport = {
	.name = "nbd",
	.claims = nbd_claims,
	.exists = nbd_exists,
	.open = nbd_open,
	.close = nbd_close_path,
	.submit = nbd_submit,
};
