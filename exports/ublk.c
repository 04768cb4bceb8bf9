/* ublk.c - the ublk export: a map as the block device /dev/ublkbN, served
 * over io_uring with the kernel's ublk driver (Linux >= 6.0, ublk_drv).
 *
 * A map asks for it at create (umpath create --ublk, the config's `ublk`)
 * or every map has one (umpathd --ublk).  Per device:
 *
 *  - control commands (ADD_DEV, SET_PARAMS, START_DEV, STOP_DEV, DEL_DEV,
 *    START/END_USER_RECOVERY) go as IORING_OP_URING_CMD to
 *    /dev/ublk-control on one ring with 128-byte SQEs, one at a time;
 *  - one queue per CPU (at most UBLK_MAX_QUEUES), each a thread with its
 *    own ring on /dev/ublkcN: FETCH_REQ for every tag, then a
 *    COMMIT_AND_FETCH_REQ per answered request.  The kernel takes a tag's
 *    commands only from the task that fetched it (6.12 checks
 *    ubq_daemon == current), so the engine's completion callbacks, on the
 *    transports' threads, cannot commit themselves: they push the request
 *    on the queue's lock-free list and, if it was empty, write the
 *    queue's eventfd, on which the ring keeps a read.  One write wakes
 *    the thread for a whole batch.  IORING_OP_MSG_RING would spare that
 *    write but needs a ring on the sending side, which the engine's
 *    threads (io_uring reapers, libnbd, the loop) do not have.
 *  - data goes through per-tag buffers given with FETCH (the driver copies
 *    between them and the request's pages in the queue thread's task
 *    work), not UBLK_F_USER_COPY, which would add a pread/pwrite system
 *    call per request.  The buffers are one anonymous mapping per queue
 *    (depth x max I/O, page aligned for O_DIRECT paths): virtual memory,
 *    resident only as far as I/O touched it.
 *
 * Devices are made with UBLK_F_USER_RECOVERY | _REISSUE: if umpathd dies
 * (SIGKILL, a crash) the kernel keeps /dev/ublkbN, holds new I/O and
 * requeues what was in flight; `umpathd --recover` finds the device of
 * each map (its number, or the map name's hash the device carries in
 * ublksrv_flags) and re-attaches to it.  A remove, or SIGTERM, stops the
 * device after its I/O drained (STOP_DEV waits for it) and deletes it;
 * a remove is refused while the block device is mounted or open.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/ublk_cmd.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "log.h"
#include "util.h"
#include "wait.h"

/* What Debian 12's UAPI header (Linux 6.1) lacks of 6.12's: the
 * ioctl-encoded command numbers (type 'u', the legacy number as nr) that
 * kernels built without CONFIG_BLKDEV_UBLK_LEGACY_OPCODES require. */
#ifndef UBLK_U_CMD_ADD_DEV
#define UBLK_U_CMD_GET_DEV_INFO _IOR('u', UBLK_CMD_GET_DEV_INFO, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_ADD_DEV _IOWR('u', UBLK_CMD_ADD_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_DEL_DEV _IOWR('u', UBLK_CMD_DEL_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_DEV _IOWR('u', UBLK_CMD_START_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_STOP_DEV _IOWR('u', UBLK_CMD_STOP_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_SET_PARAMS _IOWR('u', UBLK_CMD_SET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_GET_PARAMS _IOR('u', UBLK_CMD_GET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_USER_RECOVERY _IOWR('u', UBLK_CMD_START_USER_RECOVERY, \
					     struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_END_USER_RECOVERY _IOWR('u', UBLK_CMD_END_USER_RECOVERY, \
					   struct ublksrv_ctrl_cmd)
#define UBLK_U_IO_FETCH_REQ _IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ _IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, \
					     struct ublksrv_io_cmd)
#endif

#define UBLK_CONTROL "/dev/ublk-control"
#define UBLK_MAX_QUEUES 4u
#define UBLK_MAX_IO (512u << 10)	/* bytes per request, and per tag buffer */
/* The kernel maps each queue's descriptors at this stride, whatever the
 * depth: room for the most tags a queue may have. */
#define UBLK_DESC_STRIDE(ps) \
	(((UBLK_MAX_QUEUE_DEPTH * sizeof(struct ublksrv_io_desc)) + (ps) - 1) / (ps) * (ps))
#define EFD_TAG UINT64_MAX		/* user_data of the eventfd read */
/* ublksrv_flags of our devices: this mark and the map name's hash, so
 * that --recover finds a map's device without a file of its own. */
#define UBLK_OWNER_MARK 0x554d000000000000ull	/* "UM" */
#define UBLK_OWNER_MASK 0xffff000000000000ull
/* START_USER_RECOVERY says EBUSY until the killed daemon's files are
 * closed and the kernel has quiesced the device: asked again this often,
 * this long (the kernel offers nothing to wait on). */
#define RECOVER_POLL_MS 50
#define RECOVER_WAIT_MS 10000

struct ublk_queue;

/* One tag of a queue: the request the kernel gave it, as a map I/O. */
struct ublk_req {
	struct umpath_io io;		/* first: done() gives us back */
	struct ublk_queue *q;
	struct ublk_req *next;		/* q->done stack, or the parked list */
	unsigned tag;
	int result;			/* for the commit */
	bool rw;			/* read or write: the result is a length */
};

struct ublk_queue {
	struct ublk_dev *dev;
	unsigned id;
	struct io_uring ring;		/* the thread's only */
	bool ring_ok;
	pthread_t thread;
	bool started;
	const struct ublksrv_io_desc *descs;	/* the kernel's, mapped */
	size_t descs_len;
	char *bufs;			/* depth x max_io */
	int efd;			/* wakes the thread */
	uint64_t efd_val;		/* the eventfd read's target */
	struct ublk_req *reqs;		/* depth */
	/* Requests the engine ended, pushed by done() (any thread). */
	_Atomic(struct ublk_req *) done;
	atomic_bool stop;		/* set once STOP_DEV returned */
	atomic_bool pool_ready;		/* the map's pool has room again */
	struct umpath_pool_wait pool_wait;
	/* The thread's only: */
	unsigned in_engine;		/* submitted, done() not yet seen */
	struct ublk_req *parked, **parked_tail;	/* submit said -EAGAIN */
	unsigned live;			/* tags with a command at the kernel */
	/* done() calls between their push and their return: the queue is
	 * freed only once none is left (guarded by dev->lock). */
	unsigned pushing;
};

struct ublk_dev {
	struct list_head node;		/* in e->devs, guarded by e->lock */
	struct umd_export *e;
	struct umd_map *m;		/* our reference */
	int id;
	int cfd;			/* /dev/ublkcN */
	unsigned nr_queues, depth, max_io;
	struct ublk_queue *queues;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned nready;		/* guarded by lock: queue threads that fetched */
	int setup_err;			/* guarded by lock */
};

struct umd_export {
	struct umd *d;
	bool all;			/* --ublk: every map */
	bool recover;			/* --recover: re-attach to existing devices */
	unsigned depth;
	struct umd_map_sub *sub;
	pthread_mutex_t lock;		/* guards devs, stopping */
	struct list_head devs;
	bool stopping;
	pthread_mutex_t ctrl_lock;	/* guards the control ring and ctrl_* */
	struct io_uring ctrl;
	int ctrl_fd;			/* -1: not open (yet) */
	int ctrl_err;			/* why it cannot be opened, once tried */
};

/* ---- control commands --------------------------------------------------- */

/* /dev/ublk-control and its ring, opened at the first device: umpathd
 * without ublk maps never needs ublk_drv.  The caller holds ctrl_lock. */
static int ctrl_open_locked(struct umd_export *e, char *err, size_t errlen)
{
	int r;

	if (e->ctrl_fd >= 0)
		return 0;
	if (e->ctrl_err)
		goto fail;
	e->ctrl_fd = open(UBLK_CONTROL, O_RDWR | O_CLOEXEC);
	if (e->ctrl_fd < 0) {
		e->ctrl_err = -errno;
		goto fail;
	}
	r = io_uring_queue_init(8, &e->ctrl, IORING_SETUP_SQE128);
	if (r < 0) {
		close(e->ctrl_fd);
		e->ctrl_fd = -1;
		e->ctrl_err = r;
		goto fail;
	}
	return 0;
fail:
	if (e->ctrl_err == -ENOENT || e->ctrl_err == -ENODEV || e->ctrl_err == -ENXIO)
		snprintf(err, errlen, "%s: %s: this kernel has no ublk (modprobe ublk_drv, "
			 "Linux >= 6.0)", UBLK_CONTROL, strerror(-e->ctrl_err));
	else if (e->ctrl_err == -EACCES || e->ctrl_err == -EPERM)
		snprintf(err, errlen, "%s: %s: ublk devices need root (or CAP_SYS_ADMIN), "
			 "and the module ublk_drv (modprobe ublk_drv)", UBLK_CONTROL,
			 strerror(-e->ctrl_err));
	else
		snprintf(err, errlen, "%s: %s (module ublk_drv: modprobe ublk_drv)", UBLK_CONTROL,
			 strerror(-e->ctrl_err));
	return e->ctrl_err;
}

/* One control command, waited for: its result (>= 0) or -errno. */
static int ctrl_cmd(struct umd_export *e, uint32_t op, int dev_id, void *buf, uint16_t len,
		    uint64_t data0)
{
	struct ublksrv_ctrl_cmd *c;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int r;

	pthread_mutex_lock(&e->ctrl_lock);
	if (e->ctrl_fd < 0) {
		pthread_mutex_unlock(&e->ctrl_lock);
		return -ENODEV;
	}
	sqe = io_uring_get_sqe(&e->ctrl);
	if (!sqe) {	/* never: one command at a time */
		pthread_mutex_unlock(&e->ctrl_lock);
		return -EBUSY;
	}
	memset(sqe, 0, 2 * sizeof(*sqe));	/* a 128-byte entry */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = e->ctrl_fd;
	sqe->cmd_op = op;
	c = (struct ublksrv_ctrl_cmd *)sqe->cmd;
	c->dev_id = (uint32_t)dev_id;
	c->queue_id = (uint16_t)-1;
	c->addr = (uintptr_t)buf;
	c->len = len;
	c->data[0] = data0;
	r = io_uring_submit(&e->ctrl);
	if (r >= 0) {
		do
			r = io_uring_wait_cqe(&e->ctrl, &cqe);
		while (r == -EINTR);
	}
	if (r >= 0) {
		r = cqe->res;
		io_uring_cqe_seen(&e->ctrl, cqe);
	}
	pthread_mutex_unlock(&e->ctrl_lock);
	return r;
}

static uint64_t owner_tag(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return UBLK_OWNER_MARK | (h & ~UBLK_OWNER_MASK);
}

/* ---- the queue threads -------------------------------------------------- */

static void q_prep(struct ublk_queue *q, uint32_t op, unsigned tag, int result)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct ublksrv_io_cmd *c;

	/* Never NULL: the ring has room for every tag and the eventfd read,
	 * and each takes one entry at a time. */
	assert(sqe);
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->dev->cfd;
	sqe->cmd_op = op;
	sqe->user_data = tag;
	c = (struct ublksrv_io_cmd *)sqe->cmd;
	c->q_id = (uint16_t)q->id;
	c->tag = (uint16_t)tag;
	c->result = result;
	c->addr = (uintptr_t)(q->bufs + (size_t)tag * q->dev->max_io);
}

static void q_prep_efd(struct ublk_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	assert(sqe);
	io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof(q->efd_val), 0);
	sqe->user_data = EFD_TAG;
}

static void q_wake(struct ublk_queue *q)
{
	uint64_t one = 1;
	ssize_t r = write(q->efd, &one, sizeof(one));

	(void)r;	/* a full counter is a pending wake-up anyway */
}

/* The engine ended a request: on its thread, hand it to the queue's. */
static void req_done(struct umpath_io *io, int err)
{
	struct ublk_req *rq = (struct ublk_req *)io;
	struct ublk_queue *q = rq->q;
	struct ublk_dev *dev = q->dev;
	struct ublk_req *old;

	if (err == -EOPNOTSUPP && io->op == UMPATH_OP_TRIM)
		err = 0;	/* a discard is a hint: the data may stay */
	rq->result = err ? err : rq->rw ? (int)io->length : 0;
	pthread_mutex_lock(&dev->lock);
	q->pushing++;
	pthread_mutex_unlock(&dev->lock);
	old = atomic_load_explicit(&q->done, memory_order_relaxed);
	do
		rq->next = old;
	while (!atomic_compare_exchange_weak_explicit(&q->done, &old, rq, memory_order_release,
						      memory_order_relaxed));
	if (!old)
		q_wake(q);
	pthread_mutex_lock(&dev->lock);
	if (!--q->pushing)
		pthread_cond_broadcast(&dev->cond);
	pthread_mutex_unlock(&dev->lock);
}

static void q_pool_ready(struct umpath_pool_wait *w)
{
	struct ublk_queue *q = w->opaque;

	atomic_store(&q->pool_ready, true);
	q_wake(q);
}

static void q_park(struct ublk_queue *q, struct ublk_req *rq)
{
	rq->next = NULL;
	*q->parked_tail = rq;
	q->parked_tail = &rq->next;
}

/* Submit rq to the map; false if the pool is full (rq then waits). */
static bool q_submit(struct ublk_queue *q, struct ublk_req *rq)
{
	int r = umpath_map_submit(q->dev->m->map, &rq->io);

	if (!r) {
		q->in_engine++;
		return true;
	}
	if (r == -EAGAIN)
		return false;
	q_prep(q, UBLK_U_IO_COMMIT_AND_FETCH_REQ, rq->tag, r == -EINVAL ? -EINVAL : -EIO);
	return true;
}

/* The kernel gave tag a request (its descriptor says what). */
static void q_start(struct ublk_queue *q, unsigned tag)
{
	const struct ublksrv_io_desc *iod = &q->descs[tag];
	struct ublk_req *rq = &q->reqs[tag];
	struct umpath_io *io = &rq->io;
	uint32_t flags = ublksrv_get_flags(iod);

	memset(io, 0, sizeof(*io));
	io->done = req_done;
	io->offset = iod->start_sector << 9;
	io->length = (uint64_t)iod->nr_sectors << 9;
	rq->rw = false;
	switch (ublksrv_get_op(iod)) {
	case UBLK_IO_OP_READ:
		io->op = UMPATH_OP_READ;
		rq->rw = true;
		break;
	case UBLK_IO_OP_WRITE:
		io->op = UMPATH_OP_WRITE;
		rq->rw = true;
		if (flags & UBLK_IO_F_FUA)
			io->flags |= UMPATH_IO_FUA;
		break;
	case UBLK_IO_OP_FLUSH:
		io->op = UMPATH_OP_FLUSH;
		io->offset = io->length = 0;
		break;
	case UBLK_IO_OP_DISCARD:
		io->op = UMPATH_OP_TRIM;
		break;
	case UBLK_IO_OP_WRITE_ZEROES:
		io->op = UMPATH_OP_WRITE_ZEROES;
		if (flags & UBLK_IO_F_NOUNMAP)
			io->flags |= UMPATH_IO_NO_HOLE;
		if (flags & UBLK_IO_F_FUA)
			io->flags |= UMPATH_IO_FUA;
		break;
	default:
		q_prep(q, UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, -EOPNOTSUPP);
		return;
	}
	if (rq->rw) {
		if (io->length > q->dev->max_io) {
			q_prep(q, UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, -EIO);
			return;
		}
		io->buf = q->bufs + (size_t)tag * q->dev->max_io;
	}
	/* Parked requests go first, in order. */
	if (q->parked || !q_submit(q, rq))
		q_park(q, rq);
}

static void q_retry_parked(struct ublk_queue *q)
{
	while (q->parked) {
		struct ublk_req *rq = q->parked;

		if (!q_submit(q, rq)) {
			int r = umpath_map_pool_wait(q->dev->m->map, &q->pool_wait);

			if (r == 1)
				continue;	/* room already */
			return;		/* armed (or armed before): q_pool_ready wakes us */
		}
		q->parked = rq->next;
		if (!q->parked)
			q->parked_tail = &q->parked;
	}
}

/* Commit what the engine ended: newest first off the stack, committed
 * in any order (each tag is independent). */
static void q_commit_done(struct ublk_queue *q)
{
	struct ublk_req *rq = atomic_exchange_explicit(&q->done, NULL, memory_order_acquire);

	while (rq) {
		struct ublk_req *next = rq->next;

		q->in_engine--;
		q_prep(q, UBLK_U_IO_COMMIT_AND_FETCH_REQ, rq->tag, rq->result);
		rq = next;
	}
}

static void q_handle(struct ublk_queue *q, const struct io_uring_cqe *cqe)
{
	unsigned tag;

	if (cqe->user_data == EFD_TAG) {
		q_commit_done(q);
		if (atomic_exchange(&q->pool_ready, false) || q->parked)
			q_retry_parked(q);
		if (!atomic_load(&q->stop) || q->in_engine)
			q_prep_efd(q);
		return;
	}
	tag = (unsigned)cqe->user_data;
	if (cqe->res == UBLK_IO_RES_OK) {
		q_start(q, tag);
		return;
	}
	/* UBLK_IO_RES_ABORT: the device is going away; this tag is done. */
	q->live--;
	if (cqe->res != UBLK_IO_RES_ABORT && !atomic_load(&q->stop))
		um_log("ublk: /dev/ublkb%d queue %u tag %u: %s", q->dev->id, q->id, tag,
		       strerror(-cqe->res));
}

static void q_setup_done(struct ublk_queue *q, int err)
{
	struct ublk_dev *dev = q->dev;

	pthread_mutex_lock(&dev->lock);
	if (err && !dev->setup_err)
		dev->setup_err = err;
	dev->nready++;
	pthread_cond_broadcast(&dev->cond);
	pthread_mutex_unlock(&dev->lock);
}

static void *q_thread(void *arg)
{
	struct ublk_queue *q = arg;
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int r, err = 0;

	for (unsigned tag = 0; tag < q->dev->depth; tag++)
		q_prep(q, UBLK_U_IO_FETCH_REQ, tag, -1);
	q_prep_efd(q);
	q->live = q->dev->depth;
	r = io_uring_submit(&q->ring);
	if (r < 0)
		err = r;
	/* A refused FETCH completes at once; accepted ones stay pending. */
	io_uring_for_each_cqe(&q->ring, head, cqe) {
		if (cqe->user_data != EFD_TAG && cqe->res < 0 && !err)
			err = cqe->res;
	}
	q_setup_done(q, err);
	if (err) {
		um_log("ublk: /dev/ublkb%d queue %u: FETCH_REQ: %s", q->dev->id, q->id,
		       strerror(-err));
		return NULL;
	}
	for (;;) {
		n = 0;
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			q_handle(q, cqe);
			n++;
		}
		io_uring_cq_advance(&q->ring, n);
		/* After STOP_DEV: nothing more will come; leave once the engine
		 * has answered all we gave it (its commits go out first). */
		if (atomic_load(&q->stop) && !q->in_engine) {
			io_uring_submit(&q->ring);
			break;
		}
		r = io_uring_submit_and_wait(&q->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			um_log("ublk: /dev/ublkb%d queue %u: io_uring: %s", q->dev->id, q->id,
			       strerror(-r));
			break;
		}
	}
	/* Requests never submitted (pool full at stop) end here. */
	while (q->parked) {
		struct ublk_req *rq = q->parked;

		q->parked = rq->next;
		q_prep(q, UBLK_U_IO_COMMIT_AND_FETCH_REQ, rq->tag, -EIO);
	}
	q->parked_tail = &q->parked;
	io_uring_submit(&q->ring);
	return NULL;
}

/* ---- devices ------------------------------------------------------------ */

static void dev_free(struct ublk_dev *dev)
{
	if (!dev)
		return;
	for (unsigned i = 0; dev->queues && i < dev->nr_queues; i++) {
		struct ublk_queue *q = &dev->queues[i];

		if (q->started)
			pthread_join(q->thread, NULL);
		/* A done() may still be between its push and its return. */
		pthread_mutex_lock(&dev->lock);
		while (q->pushing)
			pthread_cond_wait(&dev->cond, &dev->lock);
		pthread_mutex_unlock(&dev->lock);
		umpath_map_pool_cancel(dev->m->map, &q->pool_wait);
		if (q->ring_ok)
			io_uring_queue_exit(&q->ring);
		if (q->descs)
			munmap((void *)q->descs, q->descs_len);
		if (q->bufs)
			munmap(q->bufs, (size_t)dev->depth * dev->max_io);
		if (q->efd >= 0)
			close(q->efd);
		free(q->reqs);
	}
	free(dev->queues);
	if (dev->cfd >= 0)
		close(dev->cfd);
	pthread_cond_destroy(&dev->cond);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

/* Open /dev/ublkcN: devtmpfs makes it at ADD_DEV, udev may still be
 * setting its mode; a short bounded wait for that. */
static int open_cdev(int id)
{
	char path[64];
	int fd = -1;

	snprintf(path, sizeof(path), "/dev/ublkc%d", id);
	for (int i = 0; i < 100; i++) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0 || (errno != ENOENT && errno != EACCES))
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	return fd < 0 ? -errno : fd;
}

/* Queues set up, their threads started and their tags fetched. */
static int dev_start_queues(struct ublk_dev *dev, char *err, size_t errlen)
{
	long ps = sysconf(_SC_PAGESIZE);
	sigset_t all, old;
	int r = 0;

	dev->cfd = open_cdev(dev->id);
	if (dev->cfd < 0) {
		r = dev->cfd;
		snprintf(err, errlen, "/dev/ublkc%d: %s", dev->id, strerror(-r));
		return r;
	}
	dev->queues = calloc(dev->nr_queues, sizeof(*dev->queues));
	if (!dev->queues)
		return -ENOMEM;
	for (unsigned i = 0; i < dev->nr_queues; i++)
		dev->queues[i].efd = -1;
	for (unsigned i = 0; i < dev->nr_queues; i++) {
		struct ublk_queue *q = &dev->queues[i];
		off_t off = UBLKSRV_CMD_BUF_OFFSET + (off_t)i * (off_t)UBLK_DESC_STRIDE((size_t)ps);
		void *p;

		q->dev = dev;
		q->id = i;
		q->parked_tail = &q->parked;
		q->pool_wait.fn = q_pool_ready;
		q->pool_wait.opaque = q;
		q->descs_len = (dev->depth * sizeof(struct ublksrv_io_desc) + (size_t)ps - 1) /
			       (size_t)ps * (size_t)ps;
		p = mmap(NULL, q->descs_len, PROT_READ, MAP_SHARED | MAP_POPULATE, dev->cfd, off);
		if (p == MAP_FAILED) {
			r = -errno;
			snprintf(err, errlen, "/dev/ublkc%d: mmap of queue %u: %s", dev->id, i,
				 strerror(-r));
			return r;
		}
		q->descs = p;
		p = mmap(NULL, (size_t)dev->depth * dev->max_io, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		q->bufs = p;
		q->reqs = calloc(dev->depth, sizeof(*q->reqs));
		if (!q->reqs)
			return -ENOMEM;
		for (unsigned t = 0; t < dev->depth; t++) {
			q->reqs[t].q = q;
			q->reqs[t].tag = t;
		}
		q->efd = eventfd(0, EFD_CLOEXEC);
		if (q->efd < 0)
			return -errno;
		r = io_uring_queue_init(2 * dev->depth + 2, &q->ring, 0);
		if (r < 0) {
			snprintf(err, errlen, "io_uring for queue %u: %s", i, strerror(-r));
			return r;
		}
		q->ring_ok = true;
	}
	/* Signals stay with the daemon's signal thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < dev->nr_queues && !r; i++) {
		r = -pthread_create(&dev->queues[i].thread, NULL, q_thread, &dev->queues[i]);
		dev->queues[i].started = !r;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return r;
	pthread_mutex_lock(&dev->lock);
	while (dev->nready < dev->nr_queues)
		pthread_cond_wait(&dev->cond, &dev->lock);
	r = dev->setup_err;
	pthread_mutex_unlock(&dev->lock);
	if (r < 0)
		snprintf(err, errlen, "/dev/ublkc%d: FETCH_REQ: %s", dev->id, strerror(-r));
	return r;
}

/* Tell the queue threads nothing more will come (STOP_DEV returned, or
 * setup failed), so that they leave once the engine answered. */
static void dev_stop_queues(struct ublk_dev *dev)
{
	for (unsigned i = 0; dev->queues && i < dev->nr_queues; i++) {
		atomic_store(&dev->queues[i].stop, true);
		if (dev->queues[i].efd >= 0)
			q_wake(&dev->queues[i]);
	}
}

static struct ublk_dev *dev_new(struct umd_export *e, struct umd_map *m)
{
	struct ublk_dev *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	dev->e = e;
	dev->m = m;
	dev->id = -1;
	dev->cfd = -1;
	list_init(&dev->node);
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->cond, NULL);
	return dev;
}

static void set_params(struct ublk_params *p, uint64_t size, uint32_t lbs, unsigned max_io)
{
	unsigned shift = 9;

	while ((1u << shift) < lbs && shift < 12)
		shift++;
	memset(p, 0, sizeof(*p));
	p->len = sizeof(*p);
	p->types = UBLK_PARAM_TYPE_BASIC | UBLK_PARAM_TYPE_DISCARD;
	/* A volatile cache with FUA: the file system sends FLUSH and FUA,
	 * which the engine fans out to every path written since its flush. */
	p->basic.attrs = UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA;
	/* The map's logical block: a 4 KiB LUN makes a 4Kn device. */
	p->basic.logical_bs_shift = (uint8_t)shift;
	p->basic.physical_bs_shift = (uint8_t)(shift > 12 ? shift : 12);
	p->basic.io_min_shift = (uint8_t)shift;
	p->basic.io_opt_shift = (uint8_t)(shift > 12 ? shift : 12);
	p->basic.max_sectors = max_io >> 9;
	p->basic.dev_sectors = size >> 9;
	/* Every transport takes TRIM (or says EOPNOTSUPP, which a discard
	 * may ignore) and WRITE_ZEROES (emulated by writes where the path has
	 * none). */
	p->discard.discard_granularity = 4096;
	p->discard.max_discard_sectors = UINT32_MAX >> 9;
	p->discard.max_write_zeroes_sectors = UINT32_MAX >> 9;
	p->discard.max_discard_segments = 1;
}

/* Re-attach to the device a killed umpathd left for this map: id, or the
 * one whose owner tag is the map's.  0 with *ret_info filled, -ENOENT if
 * there is none. */
static int find_left(struct umd_export *e, struct umd_map *m, struct ublksrv_ctrl_dev_info *info)
{
	uint64_t tag = owner_tag(m->name);
	struct dirent *de;
	DIR *dir;

	if (m->ublk_id >= 0) {
		if (ctrl_cmd(e, UBLK_U_CMD_GET_DEV_INFO, m->ublk_id, info, sizeof(*info), 0) < 0)
			return -ENOENT;
		return 0;
	}
	dir = opendir("/sys/class/ublk-char");
	if (!dir)
		return -ENOENT;
	while ((de = readdir(dir))) {
		int id;

		if (sscanf(de->d_name, "ublkc%d", &id) != 1)
			continue;
		if (ctrl_cmd(e, UBLK_U_CMD_GET_DEV_INFO, id, info, sizeof(*info), 0) >= 0 &&
		    info->ublksrv_flags == tag) {
			closedir(dir);
			return 0;
		}
	}
	closedir(dir);
	return -ENOENT;
}

static int dev_recover(struct ublk_dev *dev, const struct ublksrv_ctrl_dev_info *info,
		       char *err, size_t errlen)
{
	struct umd_export *e = dev->e;
	struct ublk_params p = { .len = sizeof(p) };
	uint64_t waited = 0;
	int r;

	dev->id = (int)info->dev_id;
	dev->nr_queues = info->nr_hw_queues;
	dev->depth = info->queue_depth;
	dev->max_io = info->max_io_buf_bytes;
	r = ctrl_cmd(e, UBLK_U_CMD_GET_PARAMS, dev->id, &p, sizeof(p), 0);
	if (r < 0) {
		snprintf(err, errlen, "/dev/ublkb%d: GET_PARAMS: %s", dev->id, strerror(-r));
		return r;
	}
	if (p.basic.dev_sectors != umpath_map_size(dev->m->map) >> 9) {
		snprintf(err, errlen, "/dev/ublkb%d has %llu sectors, map %s %llu: not recovered",
			 dev->id, (unsigned long long)p.basic.dev_sectors, dev->m->name,
			 (unsigned long long)(umpath_map_size(dev->m->map) >> 9));
		return -EINVAL;
	}
	for (;;) {
		r = ctrl_cmd(e, UBLK_U_CMD_START_USER_RECOVERY, dev->id, NULL, 0, 0);
		if (r != -EBUSY || waited >= RECOVER_WAIT_MS)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = RECOVER_POLL_MS * 1000000L }, NULL);
		waited += RECOVER_POLL_MS;
	}
	if (r < 0) {
		snprintf(err, errlen, "/dev/ublkb%d: START_USER_RECOVERY: %s%s", dev->id,
			 strerror(-r), r == -EBUSY ? " (its old server still holds it)" : "");
		return r;
	}
	r = dev_start_queues(dev, err, errlen);
	if (r < 0)
		return r;
	r = ctrl_cmd(e, UBLK_U_CMD_END_USER_RECOVERY, dev->id, NULL, 0, (uint64_t)getpid());
	if (r < 0)
		snprintf(err, errlen, "/dev/ublkb%d: END_USER_RECOVERY: %s", dev->id, strerror(-r));
	return r;
}

static int dev_add(struct ublk_dev *dev, char *err, size_t errlen)
{
	struct umd_export *e = dev->e;
	struct umd_map *m = dev->m;
	struct ublksrv_ctrl_dev_info info;
	struct ublk_params p;
	int nproc = get_nprocs();
	int r;

	dev->nr_queues = nproc < 1 ? 1 : (unsigned)nproc < UBLK_MAX_QUEUES ? (unsigned)nproc :
		UBLK_MAX_QUEUES;
	dev->depth = e->depth;
	dev->max_io = UBLK_MAX_IO;
	/* ublk takes logical blocks up to the page size. */
	if (umpath_map_block_size(m->map) > 4096) {
		snprintf(err, errlen, "ublk: %u-byte blocks: ublk devices take at most 4096",
			 umpath_map_block_size(m->map));
		return -EINVAL;
	}
	memset(&info, 0, sizeof(info));
	info.nr_hw_queues = (uint16_t)dev->nr_queues;
	info.queue_depth = (uint16_t)dev->depth;
	info.max_io_buf_bytes = dev->max_io;
	info.dev_id = m->ublk_id >= 0 ? (uint32_t)m->ublk_id : UINT32_MAX;
	info.ublksrv_pid = getpid();
	info.flags = UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE;
	info.ublksrv_flags = owner_tag(m->name);
	r = ctrl_cmd(e, UBLK_U_CMD_ADD_DEV, (int)info.dev_id, &info, sizeof(info), 0);
	if (r < 0) {
		if (r == -EEXIST)
			snprintf(err, errlen, "ublk id %d is taken: /dev/ublkb%d exists already",
				 m->ublk_id, m->ublk_id);
		else
			snprintf(err, errlen, "ublk ADD_DEV: %s", strerror(-r));
		return r;
	}
	dev->id = (int)info.dev_id;
	/* The kernel may have lowered what we asked for. */
	dev->nr_queues = info.nr_hw_queues;
	dev->depth = info.queue_depth;
	set_params(&p, umpath_map_size(m->map), umpath_map_block_size(m->map), dev->max_io);
	r = ctrl_cmd(e, UBLK_U_CMD_SET_PARAMS, dev->id, &p, sizeof(p), 0);
	if (r < 0) {
		snprintf(err, errlen, "/dev/ublkb%d: SET_PARAMS: %s", dev->id, strerror(-r));
		return r;
	}
	r = dev_start_queues(dev, err, errlen);
	if (r < 0)
		return r;
	/* Returns once the disk is added (its partition table read through
	 * the queues, which serve already). */
	r = ctrl_cmd(e, UBLK_U_CMD_START_DEV, dev->id, NULL, 0, (uint64_t)getpid());
	if (r < 0)
		snprintf(err, errlen, "/dev/ublkb%d: START_DEV: %s", dev->id, strerror(-r));
	return r;
}

/* Is /dev/ublkbN in use?  Mounted, or held by a holder that opened it
 * exclusively (a file system, LVM, md, swap): an O_EXCL open says EBUSY.
 * Opened plainly by a process (dd, fio): found in /proc/PID/fd.  0 with
 * *ret_fd an exclusive open to keep until the disk is stopped, so that
 * nothing mounts it meanwhile; -EBUSY, err saying who, otherwise. */
static int bdev_claim(int id, int *ret_fd, char *err, size_t errlen)
{
	char path[64], link[PATH_MAX], dev[64];
	struct dirent *pe;
	DIR *proc;
	int fd;

	snprintf(dev, sizeof(dev), "/dev/ublkb%d", id);
	fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY) {
		snprintf(err, errlen, "%s is mounted or held open: Device or resource busy", dev);
		return -EBUSY;
	}
	proc = opendir("/proc");
	while (proc && (pe = readdir(proc))) {
		struct dirent *fe;
		DIR *fds;
		int pid = atoi(pe->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		while (fds && (fe = readdir(fds))) {
			char fpath[300];
			ssize_t n;

			snprintf(fpath, sizeof(fpath), "/proc/%d/fd/%s", pid, fe->d_name);
			n = readlink(fpath, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (!strcmp(link, dev)) {
				closedir(fds);
				closedir(proc);
				if (fd >= 0)
					close(fd);
				snprintf(err, errlen, "%s is open by process %d: Device or resource busy",
					 dev, pid);
				return -EBUSY;
			}
		}
		if (fds)
			closedir(fds);
	}
	if (proc)
		closedir(proc);
	*ret_fd = fd;
	return 0;
}

/* Stop (the kernel drains the disk's I/O through the queues first), let
 * the queue threads go, delete the device, drop the map.  Without stop
 * (a recovery that failed) the device stays for another umpathd. */
static void dev_destroy(struct ublk_dev *dev, bool stop, int claim_fd)
{
	struct umd_export *e = dev->e;
	struct umd_map *m = dev->m;
	int r, id = dev->id;

	if (id >= 0 && stop) {
		r = ctrl_cmd(e, UBLK_U_CMD_STOP_DEV, id, NULL, 0, 0);
		if (r < 0)
			um_log("ublk: /dev/ublkb%d: STOP_DEV: %s", id, strerror(-r));
	}
	/* An open block device keeps the disk, and DEL_DEV waits for it. */
	if (claim_fd >= 0)
		close(claim_fd);
	dev_stop_queues(dev);
	dev_free(dev);	/* joins the threads, closes /dev/ublkcN */
	if (id >= 0 && stop) {
		r = ctrl_cmd(e, UBLK_U_CMD_DEL_DEV, id, NULL, 0, 0);
		if (r < 0)
			um_log("ublk: /dev/ublkb%d: DEL_DEV: %s", id, strerror(-r));
	}
	umd_map_set_ublk_dev(m, -1);
	umd_map_put(m, false);
}

/* ---- the registry's hooks ------------------------------------------------- */

static void ublk_notify(void *opaque, struct umd_map *m, enum umd_map_change what,
			const struct umpath_event *ev)
{
}

static int ublk_attach(void *opaque, struct umd_map *m, char *err, size_t errlen)
{
	struct umd_export *e = opaque;
	struct ublksrv_ctrl_dev_info info;
	struct ublk_dev *dev;
	bool recovering = false;
	bool want = e->all || m->ublk;
	char why[512];
	int r;

	/* With --recover, a device left for the map is taken over even if
	 * this start did not ask for ublk again. */
	if (!want && !e->recover)
		return 0;
	pthread_mutex_lock(&e->lock);
	r = e->stopping ? -ESHUTDOWN : 0;
	pthread_mutex_unlock(&e->lock);
	if (r < 0)
		return 0;
	pthread_mutex_lock(&e->ctrl_lock);
	r = ctrl_open_locked(e, why, sizeof(why));
	pthread_mutex_unlock(&e->ctrl_lock);
	if (r < 0 && !want)
		return 0;
	if (r < 0) {
		/* The map stays, served by the other exports. */
		snprintf(err, errlen, "map %s has no /dev/ublkbN: %s; it is served over NBD only",
			 m->name, why);
		um_log("ublk: %s", err);
		return 1;
	}
	/* Our own reference: the device holds the map until it is gone. */
	m = umd_map_get(e->d, m->name, false);
	if (!m)
		return 0;
	dev = dev_new(e, m);
	if (!dev) {
		umd_map_put(m, false);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*why = '\0';
	if (e->recover && !find_left(e, m, &info)) {
		recovering = true;
		r = dev_recover(dev, &info, why, sizeof(why));
	} else if (want) {
		r = dev_add(dev, why, sizeof(why));
	} else {
		dev_free(dev);
		umd_map_put(m, false);
		return 0;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s", *why ? why : strerror(-r));
		um_log("ublk: map %s: %s", m->name, err);
		dev_destroy(dev, !recovering, -1);
		return r;
	}
	umd_map_set_ublk_dev(m, dev->id);
	pthread_mutex_lock(&e->lock);
	list_add_tail(&dev->node, &e->devs);
	pthread_mutex_unlock(&e->lock);
	um_log("ublk: map %s: /dev/ublkb%d%s (%u queues of %u)", m->name, dev->id,
	       recovering ? " recovered" : "", dev->nr_queues, dev->depth);
	return 0;
}

static struct ublk_dev *dev_of_locked(struct umd_export *e, struct umd_map *m)
{
	struct ublk_dev *dev;

	list_for_each_entry(dev, &e->devs, node)
		if (dev->m == m)
			return dev;
	return NULL;
}

static int ublk_detach(void *opaque, struct umd_map *m, bool force, char *err, size_t errlen)
{
	struct umd_export *e = opaque;
	struct ublk_dev *dev;
	int r, claim = -1;

	pthread_mutex_lock(&e->lock);
	dev = dev_of_locked(e, m);
	if (dev)
		list_del_init(&dev->node);	/* ours to stop, or to put back */
	pthread_mutex_unlock(&e->lock);
	if (!dev)
		return 0;
	r = bdev_claim(dev->id, &claim, err, errlen);
	if (r < 0 && !force) {
		pthread_mutex_lock(&e->lock);
		list_add_tail(&dev->node, &e->devs);
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	um_log("ublk: map %s: stopping /dev/ublkb%d", m->name, dev->id);
	dev_destroy(dev, true, claim);
	return 0;
}

static const struct umd_map_observer ublk_observer = {
	.name = "ublk",
	.notify = ublk_notify,
	.attach = ublk_attach,
	.detach = ublk_detach,
};

/* ---- start and stop ------------------------------------------------------- */

static void export_free(struct umd_export *e)
{
	if (e->ctrl_fd >= 0) {
		io_uring_queue_exit(&e->ctrl);
		close(e->ctrl_fd);
	}
	pthread_mutex_destroy(&e->ctrl_lock);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* spec: comma-separated words: "all" (every map), "recover",
 * "depth=N" (queue depth). */
static int ublk_start(struct umd *d, const char *spec, struct umd_export **ret)
{
	struct umd_export *e = calloc(1, sizeof(*e));
	char *copy, *save = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	e->d = d;
	e->depth = UMD_UBLK_DEPTH;
	e->ctrl_fd = -1;
	list_init(&e->devs);
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->ctrl_lock, NULL);
	copy = strdup(spec ? spec : "");
	if (!copy) {
		export_free(e);
		return -ENOMEM;
	}
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		unsigned long n;
		char *end;

		if (!strcmp(w, "all")) {
			e->all = true;
		} else if (!strcmp(w, "recover")) {
			e->recover = true;
		} else if (!strncmp(w, "depth=", 6)) {
			errno = 0;
			n = strtoul(w + 6, &end, 10);
			if (errno || *end || n < 1 || n > UMD_UBLK_MAX_DEPTH) {
				free(copy);
				export_free(e);
				return -EINVAL;
			}
			e->depth = (unsigned)n;
		} else {
			free(copy);
			export_free(e);
			return -EINVAL;
		}
	}
	free(copy);
	r = umd_registry_subscribe(d, &ublk_observer, e, &e->sub, NULL);
	if (r < 0) {
		export_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

/* Step 1: no new device. */
static void ublk_quiesce(struct umd_export *e)
{
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
}

/* Steps 2 to 4: each device is stopped, which drains its I/O (the kernel
 * waits for what the queues hold, which the engine ends within
 * io_timeout now that queueing is off), and deleted. */
static int ublk_stop(struct umd_export *e, uint64_t deadline_ns, uint64_t hard_ns)
{
	if (!e)
		return 0;
	ublk_quiesce(e);
	for (;;) {
		struct ublk_dev *dev = NULL;

		pthread_mutex_lock(&e->lock);
		if (!list_empty(&e->devs)) {
			dev = list_first_entry(&e->devs, struct ublk_dev, node);
			list_del_init(&dev->node);
		}
		pthread_mutex_unlock(&e->lock);
		if (!dev)
			break;
		um_log("ublk: map %s: stopping /dev/ublkb%d", dev->m->name, dev->id);
		dev_destroy(dev, true, -1);
	}
	umd_registry_unsubscribe(e->sub);
	export_free(e);
	return 0;
}

const struct umd_export_ops umd_ublk_export = {
	.name = "ublk",
	.start = ublk_start,
	.quiesce = ublk_quiesce,
	.stop = ublk_stop,
};
