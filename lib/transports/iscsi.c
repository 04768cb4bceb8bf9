/* iscsi.c - the iscsi transport: a path is an iSCSI session to one LUN,
 * driven through libiscsi's asynchronous API (iscsi_get_fd,
 * iscsi_which_events, iscsi_service) by the context's event loop.
 *
 * Path strings: libiscsi URLs,
 *   iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN
 * as iscsi_parse_full_url() reads them (CHAP also from LIBISCSI_CHAP_USERNAME
 * and LIBISCSI_CHAP_PASSWORD).  open() logs in with a 10 s bound, reads
 * READ CAPACITY(16) for the size and logical block size and the Block
 * Limits and Logical Block Provisioning VPD pages for UNMAP and WRITE SAME.
 *
 * Threads: libiscsi contexts are single-threaded, so a path's context is
 * touched only on the loop thread (and by open() before the path is
 * published).  submit() and um_iscsi_command() run on any thread: they
 * queue a command on ip->incoming and arm a zero-delay timer that issues it
 * on the loop, corked (TCP_CORK) while a batch of several is written so
 * that the target gets them in one segment and one wake-up (bench/iscsi.sh:
 * tgtd's CPU per read fell from 90-99 to 57-69 us).  Completions are collected
 * on ip->done and delivered after
 * the libiscsi call that produced them has returned, with no lock held (a
 * done() may submit again, or close the path).
 *
 * Commands: READ(16)/WRITE(16) (FUA bit for FUA writes), SYNCHRONIZE
 * CACHE(16) for FLUSH, UNMAP for TRIM when the LUN has LBPU (else
 * -EOPNOTSUPP), WRITE SAME(16) for WRITE_ZEROES (with UNMAP when it may punch
 * and the LUN has LBPWS and LBPRZ), else WRITE(16) from a zero buffer.  I/O
 * must be aligned to the logical block size (-EINVAL otherwise; the exports
 * advertise the block size).  What an answer means is scsierr.c's table.
 *
 * Deadlines (io_timeout, docs/stale-writes.md): a command that misses its
 * deadline gets ABORT TASK and a second deadline.  When the abort is
 * answered (FUNCTION COMPLETE or TASK DOES NOT EXIST) the command is over at
 * the target: the I/O ends with -ETIMEDOUT (a path error: the engine retries
 * it elsewhere) and nothing of it can land later.  When the second deadline
 * passes too, the session is dropped: its I/O ends with -ETIMEDOUT or
 * -ENOTCONN, writes among them unsettled (tio->unsettled = the session's
 * generation).  They settle when a new session of the same initiator and
 * ISID has logged in: session reinstatement makes the target terminate every
 * task of the old session first (RFC 7143 6.3.5).
 *
 * Connection loss: every command in flight ends with -ENOTCONN (writes
 * unsettled, as above) and the session reconnects in the background after
 * 100 ms, doubling to 5 s between attempts (the NBD transport's backoff),
 * each attempt bounded by 10 s.  While there is no session, I/O fails at
 * once with -ENOTCONN. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "internal.h"
#include "iscsi.h"
#include "selector.h"

#define ISCSI_CONNECT_TIMEOUT_MS 10000u
#define ISCSI_BACKOFF_MIN_MS 100u
#define ISCSI_BACKOFF_MAX_MS 5000u
#define ISCSI_UA_RETRIES 5		/* Linux sd: SD_MAX_RETRIES */
#define ISCSI_RETRY_DELAY_MS 10u	/* BUSY, TASK SET FULL, becoming ready */
#define ISCSI_ZERO_CHUNK (1u << 20)	/* emulated WRITE_ZEROES per command */
#define ISCSI_MAX_XFER (8u << 20)	/* largest READ/WRITE sent as one command */
#define ISCSI_INITIATOR "iqn.2026-12.io.umpath:initiator"	/* or $UMPATH_ISCSI_INITIATOR */
#define MS_NS 1000000ull

static unsigned char iscsi_zero_buf[ISCSI_ZERO_CHUNK];

struct iscsi_path;
struct isess;

enum cmd_state {
	CMD_QUEUED,	/* on ip->incoming or ip->retry, or being issued */
	CMD_SENT,	/* at libiscsi, in s->cmds */
	CMD_ABORTING,	/* ABORT TASK sent for it */
};

struct iabort;

struct icmd {
	struct list_head node;		/* incoming, retry, s->cmds or ip->done */
	struct iscsi_path *ip;
	struct isess *s;		/* while at libiscsi */
	struct um_tio *tio;		/* an engine I/O, or NULL: a raw command */
	enum cmd_state state;
	struct scsi_task *task;
	struct iabort *abort;		/* the ABORT TASK in flight for it */
	struct scsi_iovec iov;
	struct unmap_list ul;
	uint64_t pos, clen;		/* bytes done by earlier commands, of this one */
	uint64_t deadline_ns;
	uint64_t retry_at_ns;
	unsigned retries;
	bool abort_done;		/* the target answered the abort: task is over */
	int err;			/* result, once done */
	/* raw commands (um_iscsi_command) */
	uint8_t cdb[16];
	unsigned cdb_len;
	int dir;			/* UM_SCSI_* */
	void *buf;
	size_t len;
	um_scsi_done_fn rdone;
	void *opaque;
	int status;
	uint8_t sense[96];
	size_t sense_len, xfer;
};

/* An ABORT TASK in flight; outlives its command if that is answered first. */
struct iabort {
	struct icmd *c;			/* NULL once the command ended */
};

/* One session (one libiscsi context); loop thread only once published. */
struct isess {
	struct iscsi_path *ip;
	struct iscsi_context *ic;
	int fd;				/* registered with the loop, or -1 */
	uint32_t events;
	bool ready;			/* logged in, LUN checked */
	int checked;			/* a new login's READ CAPACITY: 0 not sent,
					 * 1 in flight, 2 the same LU, -1 not */
	bool lost;			/* noticed inside a libiscsi callback */
	bool dropping;			/* torn down by us: callbacks use drop_err */
	bool cancel_due;		/* some command has abort_done, to cancel */
	bool unsettled;			/* a write of it ended while the target had it */
	int connect_status;		/* the login's answer, 1 until then */
	uint64_t gen;
	uint64_t drop_now;		/* dropping at this time (deadline), or 0 */
	struct list_head cmds;		/* icmd at libiscsi */
};

struct iscsi_path {
	struct umpath_ctx *ctx;
	struct um_path *path;
	struct umpath_loop *loop;
	char *portal, *target, *user, *passwd;
	int lun;
	uint32_t isid;			/* the same for every session: reinstatement */
	uint64_t size;
	uint32_t block_size;
	bool can_unmap, can_ws_unmap;
	uint32_t max_unmap;		/* blocks per UNMAP descriptor */
	uint64_t timeout_ns;
	pthread_mutex_t lock;
	struct list_head incoming;	/* guarded by lock */
	bool kicked;			/* guarded by lock: kick_timer armed */
	bool up;			/* guarded by lock: a ready session */
	bool closing;			/* guarded by lock */
	bool close_done;		/* guarded by lock */
	pthread_cond_t close_cond;	/* with lock */
	/* loop thread only */
	struct isess *s;
	struct list_head retry;		/* icmd waiting for retry_at_ns */
	struct list_head done;		/* icmd to complete */
	bool deadline_armed;
	unsigned backoff_ms;
	uint64_t *settle_gens;		/* sessions with unsettled writes */
	size_t nr_settle;
	struct um_timer kick_timer, deadline_timer, retry_timer, reconnect_timer, close_timer;
	uint64_t next_gen;
	_Atomic uint64_t aborts;	/* ABORT TASK sent */
};

static void sess_fd_event(void *opaque, uint32_t events);
static void ip_issue(struct iscsi_path *ip, struct icmd *c);

/* ---- URLs ------------------------------------------------------------- */

static int iscsi_claims(struct umpath_ctx *ctx, const char *path)
{
	return !strncmp(path, "iscsi://", 8);
}

static bool iscsi_exists(struct umpath_ctx *ctx, const char *path)
{
	struct iscsi_context *ic = iscsi_create_context(ISCSI_INITIATOR);
	struct iscsi_url *u;

	if (!ic)
		return false;
	u = iscsi_parse_full_url(ic, path);
	if (u)
		iscsi_destroy_url(u);
	iscsi_destroy_context(ic);
	return u != NULL;
}

/* ---- commands --------------------------------------------------------- */

static bool cmd_writes(const struct icmd *c)
{
	if (!c->tio)
		return c->dir == UM_SCSI_WRITE;
	return c->tio->op == UMPATH_OP_WRITE || c->tio->op == UMPATH_OP_WRITE_ZEROES ||
	       c->tio->op == UMPATH_OP_TRIM;
}

/* c is finished with err: delivered after the libiscsi call returned. */
static void cmd_finish(struct iscsi_path *ip, struct icmd *c, int err)
{
	c->err = err;
	list_add_tail(&c->node, &ip->done);
}

/* Deliver every finished command: no lock held, outside libiscsi. */
static void ip_deliver(struct iscsi_path *ip)
{
	while (!list_empty(&ip->done)) {
		struct icmd *c = list_first_entry(&ip->done, struct icmd, node);

		list_del_init(&c->node);
		if (c->tio) {
			struct um_tio *tio = c->tio;
			int err = c->err;

			free(c);
			tio->done(tio, err);
		} else {
			c->rdone(c->opaque, c->err ? c->err : c->status,
				 c->sense_len ? c->sense : NULL, c->sense_len, c->xfer);
			free(c);
		}
	}
}

/* The raw command's answer, copied before libiscsi frees the PDU. */
static void raw_answer(struct icmd *c, int status, struct scsi_task *task)
{
	c->status = status;
	if (status == SCSI_STATUS_CHECK_CONDITION && task->datain.size > 2) {
		size_t n = (size_t)task->datain.data[0] << 8 | task->datain.data[1];

		if (n > (size_t)task->datain.size - 2)
			n = (size_t)task->datain.size - 2;
		if (n > sizeof(c->sense))
			n = sizeof(c->sense);
		memcpy(c->sense, task->datain.data + 2, n);
		c->sense_len = n;
	} else if (c->dir == UM_SCSI_READ && status == SCSI_STATUS_GOOD) {
		c->xfer = c->len;
		if (task->residual_status == SCSI_RESIDUAL_UNDERFLOW && task->residual < c->len)
			c->xfer = c->len - task->residual;
	}
}

/* libiscsi's callback of a SCSI command (loop thread, inside libiscsi):
 * every command sent gets exactly one, at the latest from
 * iscsi_destroy_context(). */
static void cmd_cb(struct iscsi_context *ic, int status, void *data, void *opaque)
{
	struct icmd *c = opaque;
	struct iscsi_path *ip = c->ip;
	struct isess *s = c->s;
	struct scsi_task *task = c->task;
	struct um_scsi_verdict v;
	bool transport = status == SCSI_STATUS_CANCELLED || status == SCSI_STATUS_ERROR ||
			 status == SCSI_STATUS_TIMEOUT;

	list_del_init(&c->node);
	c->s = NULL;
	if (c->abort) {
		c->abort->c = NULL;
		c->abort = NULL;
	}
	if (transport && c->abort_done) {
		/* Cancelled here after the target answered the abort: it is
		 * over at the target, nothing of it can land any more. */
		c->task = NULL;
		scsi_free_scsi_task(task);
		cmd_finish(ip, c, -ETIMEDOUT);
		return;
	}
	if (transport) {
		int err = -ENOTCONN;

		/* The session went (or is being taken) down under it: the
		 * target may still execute a write it had. */
		if (s->dropping)
			err = s->drop_now && c->deadline_ns <= s->drop_now ? -ETIMEDOUT : -ENOTCONN;
		else
			s->lost = true;
		if (c->tio && cmd_writes(c)) {
			c->tio->unsettled = s->gen;
			s->unsettled = true;
		}
		c->task = NULL;
		scsi_free_scsi_task(task);
		cmd_finish(ip, c, err);
		return;
	}
	if (!c->tio) {
		raw_answer(c, status, task);
		c->task = NULL;
		scsi_free_scsi_task(task);
		cmd_finish(ip, c, 0);
		return;
	}
	v = um_scsi_classify(status, task->sense.key, (unsigned)task->sense.ascq >> 8,
			     (unsigned)task->sense.ascq & 0xff);
	c->task = NULL;
	scsi_free_scsi_task(task);
	switch (v.action) {
	case UM_SCSI_OK:
		c->pos += c->clen;
		if (c->pos < c->tio->length) {
			c->state = CMD_QUEUED;
			ip_issue(ip, c);
			return;
		}
		cmd_finish(ip, c, 0);
		return;
	case UM_SCSI_RETRY:
		if (++c->retries <= ISCSI_UA_RETRIES) {
			c->state = CMD_QUEUED;
			ip_issue(ip, c);
			return;
		}
		cmd_finish(ip, c, v.err);
		return;
	case UM_SCSI_RETRY_DELAYED: {
		uint64_t at = um_now_ns() + ISCSI_RETRY_DELAY_MS * MS_NS;

		if (at >= c->deadline_ns) {
			cmd_finish(ip, c, -ETIMEDOUT);
			return;
		}
		c->state = CMD_QUEUED;
		c->retry_at_ns = at;
		list_add_tail(&c->node, &ip->retry);
		um_timer_arm(ip->loop, &ip->retry_timer, ISCSI_RETRY_DELAY_MS * MS_NS);
		return;
	}
	case UM_SCSI_FAIL:
		cmd_finish(ip, c, v.err);
		return;
	}
}

/* Send c's next command on the current session (loop thread). */
static void ip_issue(struct iscsi_path *ip, struct icmd *c)
{
	struct isess *s = ip->s;
	struct iscsi_context *ic;
	struct um_tio *tio = c->tio;
	struct scsi_task *task = NULL;
	uint32_t bs = ip->block_size;

	if (!s || !s->ready || s->lost) {
		cmd_finish(ip, c, -ENOTCONN);
		return;
	}
	ic = s->ic;
	c->clen = 0;
	if (!tio) {
		struct iscsi_data d = { .size = c->dir == UM_SCSI_WRITE ? c->len : 0,
					.data = c->buf };

		task = scsi_create_task((int)c->cdb_len, c->cdb,
					c->dir == UM_SCSI_READ ? SCSI_XFER_READ :
					c->dir == UM_SCSI_WRITE ? SCSI_XFER_WRITE : SCSI_XFER_NONE,
					(int)c->len);
		if (task && c->dir == UM_SCSI_READ && c->len &&
		    scsi_task_add_data_in_buffer(task, (int)c->len, c->buf) < 0) {
			scsi_free_scsi_task(task);
			task = NULL;
		}
		if (task && iscsi_scsi_command_async(ic, ip->lun, task, cmd_cb,
						     d.size ? &d : NULL, c) < 0) {
			scsi_free_scsi_task(task);
			task = NULL;
		}
	} else {
		uint64_t off = tio->offset + c->pos, left = tio->length - c->pos;
		int fua = !!(tio->flags & UMPATH_IO_FUA);

		switch (tio->op) {
		case UMPATH_OP_READ:
			c->clen = left < ISCSI_MAX_XFER ? left : ISCSI_MAX_XFER;
			c->iov = (struct scsi_iovec){ .iov_base = (char *)tio->buf + c->pos,
						      .iov_len = c->clen };
			task = iscsi_read16_iov_task(ic, ip->lun, off / bs, (uint32_t)c->clen, (int)bs,
						     0, 0, 0, 0, 0, cmd_cb, c, &c->iov, 1);
			break;
		case UMPATH_OP_WRITE:
			c->clen = left < ISCSI_MAX_XFER ? left : ISCSI_MAX_XFER;
			c->iov = (struct scsi_iovec){ .iov_base = (char *)tio->buf + c->pos,
						      .iov_len = c->clen };
			task = iscsi_write16_iov_task(ic, ip->lun, off / bs, NULL, (uint32_t)c->clen,
						      (int)bs, 0, 0, fua, 0, 0, cmd_cb, c, &c->iov, 1);
			break;
		case UMPATH_OP_FLUSH:
			task = iscsi_synchronizecache16_task(ic, ip->lun, 0, 0, 0, 0, cmd_cb, c);
			break;
		case UMPATH_OP_TRIM: {
			uint64_t blocks = left / bs;

			if (blocks > ip->max_unmap)
				blocks = ip->max_unmap;
			c->clen = blocks * bs;
			c->ul = (struct unmap_list){ .lba = off / bs, .num = (uint32_t)blocks };
			task = iscsi_unmap_task(ic, ip->lun, 0, 0, &c->ul, 1, cmd_cb, c);
			break;
		}
		case UMPATH_OP_WRITE_ZEROES:
			if (ip->can_ws_unmap && !(tio->flags & UMPATH_IO_NO_HOLE) && !fua) {
				/* WRITE SAME with UNMAP: the LUN reads zeroes
				 * back from unmapped blocks (LBPRZ). */
				uint64_t blocks = left / bs;

				if (blocks > ip->max_unmap)
					blocks = ip->max_unmap;
				c->clen = blocks * bs;
				task = iscsi_writesame16_task(ic, ip->lun, off / bs, iscsi_zero_buf, bs,
							      (uint32_t)blocks, 0, 1, 0, 0, cmd_cb, c);
			} else {
				c->clen = left < ISCSI_ZERO_CHUNK ? left : ISCSI_ZERO_CHUNK;
				c->iov = (struct scsi_iovec){ .iov_base = iscsi_zero_buf,
							      .iov_len = c->clen };
				task = iscsi_write16_iov_task(ic, ip->lun, off / bs, NULL,
							      (uint32_t)c->clen, (int)bs, 0, 0, fua,
							      0, 0, cmd_cb, c, &c->iov, 1);
			}
			break;
		}
	}
	if (!task) {
		/* libiscsi refused to queue it: out of memory or a dead
		 * context; the session is suspect. */
		s->lost = true;
		cmd_finish(ip, c, -ENOTCONN);
		return;
	}
	c->task = task;
	c->s = s;
	c->state = CMD_SENT;
	list_add_tail(&c->node, &s->cmds);
	if (!ip->deadline_armed) {
		ip->deadline_armed = true;
		um_timer_arm(ip->loop, &ip->deadline_timer, ip->timeout_ns);
	}
}

/* ---- sessions --------------------------------------------------------- */

static void sess_update_events(struct iscsi_path *ip, struct isess *s)
{
	int fd = iscsi_get_fd(s->ic);
	uint32_t ev = (uint32_t)iscsi_which_events(s->ic) & (EPOLLIN | EPOLLOUT);

	if (fd != s->fd) {
		/* libiscsi opened another socket (a portal of several
		 * addresses): follow it. */
		if (s->fd >= 0)
			um_loop_del_fd(ip->loop, s->fd);
		s->fd = -1;
		if (fd >= 0 && um_loop_add_fd(ip->loop, fd, ev, sess_fd_event, ip) == 0) {
			s->fd = fd;
			s->events = ev;
		} else if (fd >= 0) {
			s->lost = true;
		}
		return;
	}
	if (s->fd >= 0 && ev != s->events && um_loop_mod_fd(ip->loop, s->fd, ev) == 0)
		s->events = ev;
}

static void login_cb(struct iscsi_context *ic, int status, void *data, void *opaque)
{
	struct isess *s = opaque;

	if (s->connect_status == 1) {
		s->connect_status = status;
		if (status != SCSI_STATUS_GOOD)
			s->lost = true;
	} else if (status != SCSI_STATUS_GOOD) {
		s->lost = true;		/* the second call: the connection is gone */
	}
}

/* The initiator name: one per host in a cluster, so that persistent
 * reservations tell hosts apart. */
static const char *initiator_name(void)
{
	const char *e = getenv("UMPATH_ISCSI_INITIATOR");

	return e && *e ? e : ISCSI_INITIATOR;
}

static int sess_new(struct iscsi_path *ip, struct isess **ret_s)
{
	struct isess *s = calloc(1, sizeof(*s));
	struct iscsi_context *ic;

	if (!s)
		return -ENOMEM;
	s->ip = ip;
	s->fd = -1;
	s->connect_status = 1;
	s->gen = ++ip->next_gen;
	list_init(&s->cmds);
	ic = iscsi_create_context(initiator_name());
	if (!ic) {
		free(s);
		return -ENOMEM;
	}
	s->ic = ic;
	iscsi_set_targetname(ic, ip->target);
	iscsi_set_session_type(ic, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(ic, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	/* Our own reconnect (with backoff and unsettled accounting), not
	 * libiscsi's silent one that would replay commands. */
	iscsi_set_noautoreconnect(ic, 1);
	/* The same ISID on every session of the path: a new login
	 * reinstates the old session, which ends its tasks at the target. */
	iscsi_set_isid_random(ic, ip->isid, 0);
	if (ip->user && iscsi_set_initiator_username_pwd(ic, ip->user, ip->passwd) < 0)
		goto fail;
	if (iscsi_full_connect_async(ic, ip->portal, ip->lun, login_cb, s) < 0)
		goto fail;
	*ret_s = s;
	return 0;
fail:
	um_detail_set("%s", iscsi_get_error(ic));
	iscsi_destroy_context(ic);
	free(s);
	return -ECONNREFUSED;
}

/* Destroy s (loop thread, outside libiscsi; or open()): every command still
 * at libiscsi is called back from iscsi_destroy_context() and ends with
 * -ENOTCONN, or -ETIMEDOUT if past its deadline at now (now != 0). */
static void sess_drop(struct iscsi_path *ip, struct isess *s, uint64_t now)
{
	if (s->fd >= 0)
		um_loop_del_fd(ip->loop, s->fd);
	s->fd = -1;
	s->dropping = true;
	s->drop_now = now;
	iscsi_destroy_context(s->ic);	/* calls back every command and abort */
	while (!list_empty(&s->cmds)) {
		/* Not called back (a libiscsi that drops them silently). */
		struct icmd *c = list_first_entry(&s->cmds, struct icmd, node);

		list_del_init(&c->node);
		if (c->abort)
			c->abort->c = NULL;
		if (c->tio && cmd_writes(c) && !c->abort_done) {
			c->tio->unsettled = s->gen;
			s->unsettled = true;
		}
		scsi_free_scsi_task(c->task);
		c->task = NULL;
		cmd_finish(ip, c, now && c->deadline_ns <= now ? -ETIMEDOUT : -ENOTCONN);
	}
	if (s->unsettled) {
		uint64_t *g = realloc(ip->settle_gens, (ip->nr_settle + 1) * sizeof(*g));

		/* Without memory the record is lost and the writes stay
		 * unsettled until a fence: the safe side. */
		if (g) {
			g[ip->nr_settle++] = s->gen;
			ip->settle_gens = g;
		}
	}
	free(s);
}

static void ip_schedule_reconnect(struct iscsi_path *ip)
{
	unsigned delay = ip->backoff_ms;
	bool closing;

	pthread_mutex_lock(&ip->lock);
	closing = ip->closing;
	pthread_mutex_unlock(&ip->lock);
	if (closing)
		return;
	ip->backoff_ms = delay * 2 > ISCSI_BACKOFF_MAX_MS ? ISCSI_BACKOFF_MAX_MS : delay * 2;
	um_timer_arm(ip->loop, &ip->reconnect_timer, delay * MS_NS);
}

/* Loop thread: take the session down (now: at a deadline) and start over. */
static void ip_lost(struct iscsi_path *ip, uint64_t now)
{
	struct isess *s = ip->s;

	if (!s)
		return;
	pthread_mutex_lock(&ip->lock);
	ip->up = false;
	pthread_mutex_unlock(&ip->lock);
	ip->s = NULL;
	sess_drop(ip, s, now);
	ip_schedule_reconnect(ip);
}

/* A session logged in (loop thread): open for I/O, settle what the
 * sessions before it left unsettled. */
static void ip_session_ready(struct iscsi_path *ip, struct isess *s)
{
	uint64_t *gens = ip->settle_gens;
	size_t n = ip->nr_settle;

	s->ready = true;
	ip->backoff_ms = ISCSI_BACKOFF_MIN_MS;
	um_timer_cancel(ip->loop, &ip->reconnect_timer);
	pthread_mutex_lock(&ip->lock);
	ip->up = true;
	pthread_mutex_unlock(&ip->lock);
	ip->settle_gens = NULL;
	ip->nr_settle = 0;
	for (size_t i = 0; i < n; i++)
		um_path_settled(ip->path, gens[i]);
	free(gens);
}

/* A new login's READ CAPACITY(16): the LU must still have the size and
 * block size it had when the path was opened, or the path is not the same
 * storage any more (a LUN number reused for another LU): the session is
 * dropped and the path stays failed, as the NBD transport does. */
static void recheck_cb(struct iscsi_context *ic, int status, void *data, void *opaque)
{
	struct isess *s = opaque;
	struct iscsi_path *ip = s->ip;
	struct scsi_task *task = data;
	struct scsi_readcapacity16 *rc = NULL;

	if (status == SCSI_STATUS_GOOD && task)
		rc = scsi_datain_unmarshall(task);
	if (rc && rc->block_length == ip->block_size &&
	    (rc->returned_lba + 1) * rc->block_length == ip->size) {
		s->checked = 2;
	} else {
		s->checked = -1;
		s->lost = true;
	}
	if (task)
		scsi_free_scsi_task(task);
}

static void sess_recheck(struct iscsi_path *ip, struct isess *s)
{
	s->checked = 1;
	if (!iscsi_readcapacity16_task(s->ic, ip->lun, recheck_cb, s)) {
		s->checked = -1;
		s->lost = true;
	}
}

/* After libiscsi ran callbacks: cancel what the target aborted, notice a
 * lost session, follow the socket's direction, deliver completions. */
static void ip_after_service(struct iscsi_path *ip)
{
	struct isess *s = ip->s;

	if (s && s->cancel_due && !s->lost) {
		struct icmd *c, *n;

		s->cancel_due = false;
		list_for_each_entry_safe(c, n, &s->cmds, node)
			if (c->abort_done)
				iscsi_scsi_cancel_task(s->ic, c->task);	/* cmd_cb now */
	}
	if (s && !s->ready && !s->lost && s->connect_status == SCSI_STATUS_GOOD && !s->checked)
		sess_recheck(ip, s);
	if (s && !s->ready && !s->lost && s->checked == 2)
		ip_session_ready(ip, s);
	if (s && s->lost)
		ip_lost(ip, 0);
	else if (s)
		sess_update_events(ip, s);
	ip_deliver(ip);
}

static void sess_fd_event(void *opaque, uint32_t events)
{
	struct iscsi_path *ip = opaque;
	struct isess *s = ip->s;

	if (!s)
		return;
	/* EPOLL* and POLL* bits agree on Linux for these. */
	if (iscsi_service(s->ic, (int)(events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP))) < 0 ||
	    (events & (EPOLLERR | EPOLLHUP)))
		s->lost = true;
	ip_after_service(ip);
}

/* ---- deadlines and aborts --------------------------------------------- */

static void abort_cb(struct iscsi_context *ic, int status, void *data, void *opaque)
{
	struct iabort *a = opaque;
	struct icmd *c = a->c;

	free(a);
	if (!c)
		return;		/* the command was answered or dropped first */
	c->abort = NULL;
	if (status == SCSI_STATUS_GOOD && data) {
		uint32_t response = *(uint32_t *)data;

		/* FUNCTION COMPLETE: aborted.  TASK DOES NOT EXIST: it
		 * ended before (its answer came first on this connection,
		 * or it never arrived).  Either way it is over. */
		if (response == ISCSI_TMR_FUNC_COMPLETE ||
		    response == ISCSI_TMR_TASK_DOES_NOT_EXIST) {
			c->abort_done = true;
			c->s->cancel_due = true;
		}
	}
	/* Otherwise (rejected, not supported): the second deadline drops
	 * the session. */
}

static void ip_deadline_fire(struct um_timer *t)
{
	struct iscsi_path *ip = container_of(t, struct iscsi_path, deadline_timer);
	struct isess *s = ip->s;
	uint64_t now = um_now_ns(), next = UINT64_MAX;
	bool drop = false;
	struct icmd *c;

	ip->deadline_armed = false;
	if (!s)
		return;
	list_for_each_entry(c, &s->cmds, node) {
		if (c->deadline_ns > now) {
			next = c->deadline_ns < next ? c->deadline_ns : next;
			continue;
		}
		if (c->state == CMD_ABORTING || c->abort_done) {
			drop = true;	/* the abort went unanswered too */
			break;
		}
		c->abort = calloc(1, sizeof(*c->abort));
		if (!c->abort) {
			drop = true;
			break;
		}
		c->abort->c = c;
		if (iscsi_task_mgmt_abort_task_async(s->ic, c->task, abort_cb, c->abort) < 0) {
			free(c->abort);
			c->abort = NULL;
			drop = true;
			break;
		}
		atomic_fetch_add(&ip->aborts, 1);
		c->state = CMD_ABORTING;
		c->deadline_ns = now + ip->timeout_ns;
		next = c->deadline_ns < next ? c->deadline_ns : next;
	}
	if (drop) {
		pthread_mutex_lock(&ip->lock);
		ip->up = false;
		pthread_mutex_unlock(&ip->lock);
		ip->s = NULL;
		sess_drop(ip, s, now);
		ip_schedule_reconnect(ip);
		ip_deliver(ip);
		return;
	}
	if (next != UINT64_MAX) {
		ip->deadline_armed = true;
		um_timer_arm(ip->loop, &ip->deadline_timer, next - now);
	}
	ip_after_service(ip);
}

static void ip_retry_fire(struct um_timer *t)
{
	struct iscsi_path *ip = container_of(t, struct iscsi_path, retry_timer);
	uint64_t now = um_now_ns(), next = UINT64_MAX;
	struct icmd *c, *n;

	list_for_each_entry_safe(c, n, &ip->retry, node) {
		if (c->retry_at_ns > now) {
			next = c->retry_at_ns < next ? c->retry_at_ns : next;
			continue;
		}
		list_del_init(&c->node);
		ip_issue(ip, c);
	}
	if (next != UINT64_MAX)
		um_timer_arm(ip->loop, &ip->retry_timer, next - now);
	if (ip->s)
		ip_after_service(ip);
	else
		ip_deliver(ip);
}

/* Write out what was just queued at once, rather than one epoll round
 * later (libiscsi sends only from iscsi_service()). */
static void ip_flush(struct iscsi_path *ip)
{
	struct isess *s = ip->s;

	if (s && s->ready && !s->lost && (iscsi_which_events(s->ic) & POLLOUT) &&
	    iscsi_service(s->ic, POLLOUT) < 0)
		s->lost = true;
}

/* Commands queued by other threads: issue them on the loop. */
static void ip_kick_fire(struct um_timer *t)
{
	struct iscsi_path *ip = container_of(t, struct iscsi_path, kick_timer);
	struct list_head in;
	struct icmd *c, *n;

	int fd = ip->s && ip->s->ready ? ip->s->fd : -1, on = 1, off = 0;
	bool cork;

	list_init(&in);
	pthread_mutex_lock(&ip->lock);
	ip->kicked = false;
	list_splice_tail_init(&ip->incoming, &in);
	pthread_mutex_unlock(&ip->lock);
	/* Several commands: one TCP segment for all of them rather than one
	 * each (libiscsi writes a PDU a call), so the target is woken once. */
	cork = fd >= 0 && !list_empty(&in) && in.next->next != &in &&
	       !setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
	list_for_each_entry_safe(c, n, &in, node) {
		list_del_init(&c->node);
		ip_issue(ip, c);
	}
	ip_flush(ip);
	if (cork)
		setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
	if (ip->s)
		ip_after_service(ip);
	else
		ip_deliver(ip);
}

/* A reconnection attempt is due, or the one under way took too long. */
static void ip_reconnect_fire(struct um_timer *t)
{
	struct iscsi_path *ip = container_of(t, struct iscsi_path, reconnect_timer);
	struct isess *s;
	bool closing;

	pthread_mutex_lock(&ip->lock);
	closing = ip->closing;
	pthread_mutex_unlock(&ip->lock);
	if (closing)
		return;
	if (ip->s) {
		if (!ip->s->ready) {
			ip_lost(ip, 0);		/* the login did not finish in time */
			ip_deliver(ip);
		}
		return;
	}
	if (sess_new(ip, &s) < 0) {
		ip_schedule_reconnect(ip);
		return;
	}
	ip->s = s;
	sess_update_events(ip, s);
	if (s->lost) {
		ip_lost(ip, 0);
		return;
	}
	um_timer_arm(ip->loop, &ip->reconnect_timer, ISCSI_CONNECT_TIMEOUT_MS * MS_NS);
}

/* ---- open: on the caller's thread, before the path is published ------- */

/* Drive s's context until *flag leaves 1, or the deadline.  A socket
 * error (connection refused, unreachable) is kept in *sock_err, for a
 * better reason than libiscsi's. */
static int sync_drive_err(struct isess *s, const int *flag, uint64_t deadline, int *sock_err)
{
	while (*flag == 1) {
		uint64_t now = um_now_ns();
		struct pollfd pfd = { .fd = iscsi_get_fd(s->ic), .events = 0 };
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		pfd.events = (short)iscsi_which_events(s->ic);
		r = poll(&pfd, 1, (int)((deadline - now + MS_NS - 1) / MS_NS));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && (pfd.revents & (POLLERR | POLLHUP)) && sock_err && !*sock_err) {
			socklen_t l = sizeof(*sock_err);

			if (getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, sock_err, &l) < 0)
				*sock_err = 0;
		}
		if (r > 0 && iscsi_service(s->ic, pfd.revents) < 0 && *flag == 1)
			return -ECONNRESET;
	}
	return 0;
}

static int sync_drive(struct isess *s, const int *flag, uint64_t deadline)
{
	return sync_drive_err(s, flag, deadline, NULL);
}

struct sync_cmd {
	int status;			/* 1 until answered */
	struct scsi_task *task;
};

static void sync_cb(struct iscsi_context *ic, int status, void *data, void *opaque)
{
	struct sync_cmd *sc = opaque;

	sc->status = status;
}

/* Run the task made by mk synchronously, retrying unit attentions. */
static int sync_run(struct isess *s, uint64_t deadline, struct sync_cmd *sc,
		    struct scsi_task *(*mk)(struct iscsi_path *ip, struct isess *s,
					    struct sync_cmd *sc, int arg), int arg)
{
	for (unsigned i = 0; i <= ISCSI_UA_RETRIES; i++) {
		int r;

		sc->status = 1;
		sc->task = mk(s->ip, s, sc, arg);
		if (!sc->task) {
			um_detail_set("%s", iscsi_get_error(s->ic));
			return -EIO;
		}
		r = sync_drive(s, &sc->status, deadline);
		if (r < 0) {
			um_detail_set("the target did not answer: %s", strerror(-r));
			return r;	/* the task is freed with the context */
		}
		if (sc->status == SCSI_STATUS_CHECK_CONDITION &&
		    sc->task->sense.key == SCSI_SENSE_UNIT_ATTENTION) {
			scsi_free_scsi_task(sc->task);
			sc->task = NULL;
			continue;
		}
		return 0;
	}
	return 0;
}

static struct scsi_task *mk_readcap(struct iscsi_path *ip, struct isess *s,
				    struct sync_cmd *sc, int arg)
{
	return iscsi_readcapacity16_task(s->ic, ip->lun, sync_cb, sc);
}

static struct scsi_task *mk_vpd(struct iscsi_path *ip, struct isess *s, struct sync_cmd *sc,
				int page)
{
	return iscsi_inquiry_task(s->ic, ip->lun, 1, page, 255, sync_cb, sc);
}

/* Size, block size and provisioning of the LUN. */
static int ip_probe_lun(struct iscsi_path *ip, struct isess *s, uint64_t deadline)
{
	struct sync_cmd sc = { 0 };
	struct scsi_readcapacity16 *rc;
	bool lbpme;
	int r;

	r = sync_run(s, deadline, &sc, mk_readcap, 0);
	if (r < 0)
		return r;
	rc = sc.task && sc.status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(sc.task) : NULL;
	if (!rc || !rc->block_length || rc->block_length > 65536 ||
	    (rc->block_length & (rc->block_length - 1))) {
		um_detail_set("READ CAPACITY(16) failed: %s",
			      sc.task && sc.status == SCSI_STATUS_CHECK_CONDITION
				      ? scsi_sense_key_str(sc.task->sense.key) : iscsi_get_error(s->ic));
		if (sc.task)
			scsi_free_scsi_task(sc.task);
		return -EIO;
	}
	ip->block_size = rc->block_length;
	ip->size = (rc->returned_lba + 1) * rc->block_length;
	lbpme = rc->lbpme;
	scsi_free_scsi_task(sc.task);

	ip->max_unmap = 1u << 22;
	if (!lbpme)
		return 0;
	/* Logical Block Provisioning: UNMAP, WRITE SAME with UNMAP. */
	if (sync_run(s, deadline, &sc, mk_vpd, SCSI_INQUIRY_PAGECODE_LOGICAL_BLOCK_PROVISIONING) == 0 &&
	    sc.task && sc.status == SCSI_STATUS_GOOD) {
		struct scsi_inquiry_logical_block_provisioning *lbp = scsi_datain_unmarshall(sc.task);

		if (lbp) {
			ip->can_unmap = lbp->lbpu;
			ip->can_ws_unmap = lbp->lbpws && lbp->lbprz;
		}
	}
	if (sc.task)
		scsi_free_scsi_task(sc.task);
	sc.task = NULL;
	if (sync_run(s, deadline, &sc, mk_vpd, SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS) == 0 &&
	    sc.task && sc.status == SCSI_STATUS_GOOD) {
		struct scsi_inquiry_block_limits *bl = scsi_datain_unmarshall(sc.task);

		if (bl && bl->max_unmap && bl->max_unmap != 0xffffffffu &&
		    bl->max_unmap < ip->max_unmap)
			ip->max_unmap = bl->max_unmap;
	}
	if (sc.task)
		scsi_free_scsi_task(sc.task);
	return 0;
}

static int ip_parse(struct iscsi_path *ip, const char *name)
{
	struct iscsi_context *ic = iscsi_create_context(ISCSI_INITIATOR);
	struct iscsi_url *u;
	int r = 0;

	if (!ic)
		return -ENOMEM;
	u = iscsi_parse_full_url(ic, name);
	if (!u) {
		um_detail_set("not an iSCSI URL (iscsi://[USER[%%PASSWORD]@]HOST[:PORT]/IQN/LUN): %s",
			      iscsi_get_error(ic));
		iscsi_destroy_context(ic);
		return -EINVAL;
	}
	ip->portal = strdup(u->portal);
	ip->target = strdup(u->target);
	ip->lun = u->lun;
	if (u->user[0]) {
		ip->user = strdup(u->user);
		ip->passwd = strdup(u->passwd);
		if (!ip->user || !ip->passwd)
			r = -ENOMEM;
	}
	if (!ip->portal || !ip->target)
		r = -ENOMEM;
	iscsi_destroy_url(u);
	iscsi_destroy_context(ic);
	return r;
}

static void ip_free(struct iscsi_path *ip)
{
	pthread_mutex_destroy(&ip->lock);
	pthread_cond_destroy(&ip->close_cond);
	free(ip->portal);
	free(ip->target);
	free(ip->user);
	free(ip->passwd);
	free(ip->settle_gens);
	free(ip);
}

static void ip_close_fire(struct um_timer *t);

static int iscsi_open(struct umpath_ctx *ctx, struct um_path *p)
{
	struct iscsi_path *ip = calloc(1, sizeof(*ip));
	uint64_t deadline = um_now_ns() + ISCSI_CONNECT_TIMEOUT_MS * MS_NS;
	struct isess *s = NULL;
	int r, sock_err = 0;

	if (!ip)
		return -ENOMEM;
	ip->ctx = ctx;
	ip->path = p;
	ip->loop = ctx->loop;
	ip->timeout_ns = ctx->io_timeout_ms * MS_NS;
	ip->backoff_ms = ISCSI_BACKOFF_MIN_MS;
	pthread_mutex_init(&ip->lock, NULL);
	pthread_cond_init(&ip->close_cond, NULL);
	list_init(&ip->incoming);
	list_init(&ip->retry);
	list_init(&ip->done);
	um_timer_init(&ip->kick_timer, ip_kick_fire);
	um_timer_init(&ip->deadline_timer, ip_deadline_fire);
	um_timer_init(&ip->retry_timer, ip_retry_fire);
	um_timer_init(&ip->reconnect_timer, ip_reconnect_fire);
	um_timer_init(&ip->close_timer, ip_close_fire);
	/* 24 random bits of the ISID (type "random"), one per path. */
	if (getrandom(&ip->isid, sizeof(ip->isid), 0) != sizeof(ip->isid))
		ip->isid = (uint32_t)um_now_ns();
	ip->isid &= 0xffffff;

	r = ip_parse(ip, p->name);
	if (r < 0)
		goto fail;
	r = sess_new(ip, &s);
	if (r < 0)
		goto fail;
	r = sync_drive_err(s, &s->connect_status, deadline, &sock_err);
	if (r == -ETIMEDOUT) {
		um_detail_set("no login to %s within %u s", ip->portal,
			      ISCSI_CONNECT_TIMEOUT_MS / 1000);
		goto fail;
	}
	if (r < 0 || s->connect_status != SCSI_STATUS_GOOD) {
		if (sock_err)
			um_detail_set("cannot connect to %s: %s", ip->portal, strerror(sock_err));
		else
			um_detail_set("login to %s failed: %s", ip->portal, iscsi_get_error(s->ic));
		r = -ECONNREFUSED;
		goto fail;
	}
	s->lost = false;
	r = ip_probe_lun(ip, s, deadline);
	if (r < 0)
		goto fail;
	ip->s = s;
	s->ready = true;
	s->checked = 2;
	ip->up = true;
	sess_update_events(ip, s);
	if (s->fd < 0) {
		ip->s = NULL;
		r = -ENOMEM;
		goto fail;
	}
	p->priv = ip;
	p->size = ip->size;
	p->block_size = ip->block_size;
	return 0;
fail:
	if (s) {
		s->dropping = true;
		iscsi_destroy_context(s->ic);
		free(s);
	}
	ip_free(ip);
	return r;
}

static void ip_close_on_loop(struct iscsi_path *ip)
{
	um_timer_cancel(ip->loop, &ip->deadline_timer);
	um_timer_cancel(ip->loop, &ip->reconnect_timer);
	um_timer_cancel(ip->loop, &ip->retry_timer);
	um_timer_cancel(ip->loop, &ip->kick_timer);
	if (ip->s) {
		struct isess *s = ip->s;

		ip->s = NULL;
		sess_drop(ip, s, 0);
	}
	while (!list_empty(&ip->retry)) {
		struct icmd *c = list_first_entry(&ip->retry, struct icmd, node);

		list_del_init(&c->node);
		cmd_finish(ip, c, -ENOTCONN);
	}
	pthread_mutex_lock(&ip->lock);
	while (!list_empty(&ip->incoming)) {
		struct icmd *c = list_first_entry(&ip->incoming, struct icmd, node);

		list_del_init(&c->node);
		cmd_finish(ip, c, -ENOTCONN);
	}
	pthread_mutex_unlock(&ip->lock);
	ip_deliver(ip);
	pthread_mutex_lock(&ip->lock);
	ip->close_done = true;
	pthread_cond_broadcast(&ip->close_cond);
	pthread_mutex_unlock(&ip->lock);
}

static void ip_close_fire(struct um_timer *t)
{
	ip_close_on_loop(container_of(t, struct iscsi_path, close_timer));
}

static void iscsi_close_path(struct um_path *p)
{
	struct iscsi_path *ip = p->priv;

	pthread_mutex_lock(&ip->lock);
	ip->closing = true;
	ip->up = false;
	pthread_mutex_unlock(&ip->lock);
	if (um_loop_is_current(ip->loop)) {
		ip_close_on_loop(ip);
	} else {
		um_timer_arm(ip->loop, &ip->close_timer, 0);
		pthread_mutex_lock(&ip->lock);
		while (!ip->close_done)
			pthread_cond_wait(&ip->close_cond, &ip->lock);
		pthread_mutex_unlock(&ip->lock);
		um_timer_cancel(ip->loop, &ip->close_timer);
	}
	p->priv = NULL;
	ip_free(ip);
}

/* ---- submission ------------------------------------------------------- */

/* Queue c for the loop (any thread); false: the path takes nothing now. */
static bool ip_queue(struct iscsi_path *ip, struct icmd *c)
{
	bool kick;

	pthread_mutex_lock(&ip->lock);
	if (ip->closing || !ip->up) {
		pthread_mutex_unlock(&ip->lock);
		return false;
	}
	c->deadline_ns = um_now_ns() + ip->timeout_ns;
	list_add_tail(&c->node, &ip->incoming);
	kick = !ip->kicked;
	ip->kicked = true;
	/* Armed under ip->lock so that close (which cancels it on the
	 * loop after setting closing) cannot miss it. */
	if (kick)
		um_timer_arm(ip->loop, &ip->kick_timer, 0);
	pthread_mutex_unlock(&ip->lock);
	return true;
}

/* Whether tio is answered at once, with *err, without reaching the LUN. */
static bool ip_answers(const struct iscsi_path *ip, const struct um_tio *tio, int *err)
{
	uint64_t mask = ip->block_size - 1;

	*err = 0;
	if (tio->op == UMPATH_OP_FLUSH)
		return false;
	if ((tio->offset | tio->length) & mask) {
		*err = -EINVAL;		/* SCSI addresses whole blocks */
		return true;
	}
	if (tio->op == UMPATH_OP_TRIM && !ip->can_unmap) {
		*err = -EOPNOTSUPP;
		return true;
	}
	return !tio->length;
}

static void iscsi_submit(struct um_path *p, struct um_tio *tio)
{
	struct iscsi_path *ip = p->priv;
	struct icmd *c;
	int err;

	if (ip_answers(ip, tio, &err)) {
		tio->done(tio, err);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		tio->done(tio, -ENOMEM);
		return;
	}
	c->ip = ip;
	c->tio = tio;
	list_init(&c->node);
	if (!ip_queue(ip, c)) {
		free(c);
		tio->done(tio, -ENOTCONN);
	}
}

bool um_path_is_iscsi(const struct um_path *p)
{
	return p->tp == &um_iscsi_transport;
}

int um_iscsi_command(struct um_path *p, const uint8_t *cdb, size_t cdb_len, int dir,
		     void *buf, size_t len, um_scsi_done_fn done, void *opaque)
{
	struct iscsi_path *ip;
	struct icmd *c;

	if (!um_path_is_iscsi(p))
		return -ENOTTY;
	if (!cdb || cdb_len < 6 || cdb_len > 16 || !done || len > INT32_MAX ||
	    (dir != UM_SCSI_NONE && !buf && len) || (dir == UM_SCSI_NONE && len))
		return -EINVAL;
	ip = p->priv;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ip = ip;
	list_init(&c->node);
	memcpy(c->cdb, cdb, cdb_len);
	c->cdb_len = (unsigned)cdb_len;
	c->dir = dir;
	c->buf = buf;
	c->len = len;
	c->rdone = done;
	c->opaque = opaque;
	if (!ip_queue(ip, c)) {
		free(c);
		return -ENOTCONN;	/* no session now (it reconnects) */
	}
	return 0;
}

uint64_t um_iscsi_aborts(const struct um_path *p)
{
	const struct iscsi_path *ip = p->priv;

	return um_path_is_iscsi(p) && ip ? atomic_load(&ip->aborts) : 0;
}

/* struct um_transport.scsi: um_iscsi_command with the answer reduced to an
 * errno by the sense table (RESERVATION CONFLICT: -EBADE). */
#define SCSI_OP_TRIES 4	/* a UNIT ATTENTION is sent again, as libmpathpersist does */

struct scsi_op {
	void (*done)(void *opaque, int err);
	void *opaque;
	/* to send it again: the caller holds p and buf until done */
	struct um_path *p;
	uint8_t cdb[16];
	size_t cdb_len;
	int dir;
	void *buf;
	size_t len;
	unsigned tries;
};

static void scsi_op_done(void *opaque, int status, const uint8_t *sense, size_t sense_len,
			 size_t xfer_len)
{
	struct scsi_op *op = opaque;
	void (*done)(void *opaque, int err) = op->done;
	void *arg = op->opaque;
	unsigned key = 0, asc = 0, ascq = 0;
	int err = status;

	if (status >= 0) {
		struct um_scsi_verdict v;

		um_scsi_parse_sense(sense, sense_len, &key, &asc, &ascq);
		v = um_scsi_classify(status, key, asc, ascq);
		err = v.err;
		/* A UNIT ATTENTION (a new session, registrations preempted)
		 * is reported once per nexus: the command itself is fine. */
		if (v.action == UM_SCSI_RETRY && ++op->tries < SCSI_OP_TRIES &&
		    !um_iscsi_command(op->p, op->cdb, op->cdb_len, op->dir, op->buf, op->len,
				      scsi_op_done, op))
			return;
	}
	free(op);
	done(arg, err);
}

static int iscsi_scsi_op(struct um_path *p, const uint8_t *cdb, size_t cdb_len, int dir,
			 void *buf, size_t len, void (*done)(void *opaque, int err), void *opaque)
{
	struct scsi_op *op = malloc(sizeof(*op));
	int r;

	if (!op)
		return -ENOMEM;
	if (cdb_len > sizeof(op->cdb)) {
		free(op);
		return -EINVAL;
	}
	op->done = done;
	op->opaque = opaque;
	op->p = p;
	memcpy(op->cdb, cdb, cdb_len);
	op->cdb_len = cdb_len;
	op->dir = dir;
	op->buf = buf;
	op->len = len;
	op->tries = 0;
	r = um_iscsi_command(p, cdb, cdb_len, dir, buf, len, scsi_op_done, op);
	if (r == -ENOTCONN) {
		/* No session while it reconnects: answer at once, as a
		 * lost session would. */
		free(op);
		done(opaque, -ENOTCONN);
		return 0;
	}
	if (r < 0)
		free(op);
	return r;
}

const struct um_transport um_iscsi_transport = {
	.name = "iscsi",
	.claims = iscsi_claims,
	.exists = iscsi_exists,
	.open = iscsi_open,
	.close = iscsi_close_path,
	.submit = iscsi_submit,
	.scsi = iscsi_scsi_op,
	.default_checker = UMPATH_CHECKER_TUR,
};
