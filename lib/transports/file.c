/* file.c - the file transport: regular files and block devices through
 * io_uring, completions reaped on the context's event loop thread, no
 * thread per request; buffered writes through the context's writer
 * threads instead where the file system trusts a non-blocking attempt
 * (see "buffered writes on writer threads" below, docs/writes.md).
 *
 * Path strings (this transport is last in path.c's list: it claims every
 * string the others leave):
 *
 *   /path/to/img, /dev/sdX       the file or block device, read-write,
 *                                through the page cache
 *   file:PATH[?OPT[&OPT]...]     the same, with options:
 *       direct                   O_DIRECT: buffers, offsets and lengths must
 *                                be aligned to the logical block size, else
 *                                the kernel refuses the I/O with EINVAL
 *       ro                       opened read-only; writes, trims and
 *                                write-zeroes fail with EROFS (a target error)
 *
 * A plain path is taken literally ('?' and all); in the file: form PATH ends
 * at the first '?'.  Two strings naming one file are two paths to the same
 * storage (/tmp/x/disk.img and file:/tmp/x/disk.img?direct).  The size is
 * the file's size (fstat) or the device's (BLKGETSIZE64).
 *
 * Rings: one io_uring per path, not per context.  A path's ring is its own
 * in-flight bound and its own lock, so paths never contend with each other
 * on submission, a hung path cannot use up the slots or CQ of a healthy one,
 * and close() drains exactly the I/O of the path it closes.  The cost is
 * two descriptors (file, ring; a third, O_DIRECT, once the directio checker
 * probes it) and 8 KiB of ring memory in two mappings per path: thousands
 * of paths need RLIMIT_NOFILE raised, more than about 32,000 (8,000 maps
 * of 4) vm.max_map_count (65,530 by default: mmap then fails, and so does
 * the open, with ENOMEM), and kernels before 5.12 RLIMIT_MEMLOCK, which
 * rings were charged to.  The loop watches the ring's own descriptor, no
 * eventfd: an io_uring fd polls readable while its CQ holds CQEs (or the
 * kernel holds overflowed ones), and the watch is level-triggered, so a
 * reap that leaves some behind is simply called again.
 *
 * Submission runs on the caller's thread under fp->lock (it guards the SQ
 * and the CQ).  Ops that complete inline during submission (page-cache
 * hits) are reaped right there by the submitting thread, so their done()
 * costs no thread hop; the ring's descriptor wakes the loop thread for
 * the rest (and, harmlessly, for those too: it then finds nothing to reap).
 * The ring is set up
 * without COOP_TASKRUN/DEFER_TASKRUN: completions of I/O submitted by a
 * client thread must be posted even while that thread is idle.  Submitting
 * must never block, since the loop thread submits too (continuations, the
 * FIFO, the engine's retries): files on file systems not known to honour
 * io_uring's non-blocking first attempt get IOSQE_ASYNC (file_trusts_nowait).
 *
 * Deadlines: every I/O has ctx->io_timeout_ms from its submission.  Each
 * SQE is linked (IOSQE_IO_LINK) to an IORING_OP_LINK_TIMEOUT for the time
 * left; when it fires, the kernel cancels the op, the op's CQE says
 * -ECANCELED (or -EINTR, or a short count) and the I/O ends with -ETIMEDOUT,
 * a path error: the engine fails the path and retries elsewhere.  io_uring
 * arms the link timeout of an op it hands to its io-wq workers only when a
 * worker starts it, so a sweep on the loop thread also cancels
 * (IORING_OP_ASYNC_CANCEL) any op still in the kernel shortly after its
 * deadline: one queued behind workers stuck on a hung file.  An op the
 * kernel cannot cancel (a FUSE request, an uninterruptible device wait)
 * keeps running, and it keeps the caller's buffer: a read still lands in it,
 * a write still reads from it.  So done() is called only when the CQE of the
 * op itself has arrived, never at the deadline: had we given the buffer back
 * early, a late read would overwrite data the client has moved on to, and a
 * late write would carry whatever the client put there next.  Such an I/O
 * ends with -ETIMEDOUT too (even if the op succeeded late: the path missed
 * its deadline, and the retry is harmless since no done() was called).  See
 * docs/stale-writes.md for what a late write means for the storage.
 *
 * Queueing: at most FILE_QUEUE_DEPTH I/Os per path are in the kernel; more
 * wait in a FIFO and are started as completions free slots.  Waiting counts
 * against the deadline: an I/O still in the FIFO at its deadline ends with
 * -ETIMEDOUT at once (the kernel never saw its buffer).
 *
 * Ops: read and write (continued after short counts; a read or write that
 * makes no progress is -EIO: the file shrank below the map), FUA writes with
 * RWF_DSYNC, flush as fdatasync, trim as fallocate(PUNCH_HOLE) on files and
 * discard on block devices, write-zeroes as fallocate PUNCH_HOLE (unless
 * UMPATH_IO_NO_HOLE), then ZERO_RANGE, then writing zeroes, each step taken
 * when the previous one is not supported.  On a block device, fallocate
 * PUNCH_HOLE/ZERO_RANGE is the kernel's zeroout (what BLKZEROOUT does), run
 * asynchronously.  -EINTR and -EAGAIN are resubmitted until the deadline.
 *
 * Kernel features are probed per ring (IORING_REGISTER_PROBE): without
 * IORING_OP_READ/WRITE (5.6) READV/WRITEV are used, without FALLOCATE (5.6)
 * write-zeroes writes zeroes and trim is EOPNOTSUPP, without a block
 * device's URING_CMD discard (6.12) BLKDISCARD is called synchronously.
 * Kernels without IORING_FEAT_NODROP (before 5.5, which also lack
 * LINK_TIMEOUT) are refused: no deadline could be kept.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "internal.h"
#include "selector.h"

#ifndef BLOCK_URING_CMD_DISCARD
#define BLOCK_URING_CMD_DISCARD _IO(0x12, 0)	/* Linux 6.12 uapi/linux/fs.h */
#endif

#define FILE_QUEUE_DEPTH 64u			/* I/Os in the kernel per path */
/* The SQ is small: SQEs are handed to the kernel as soon as they are
 * prepared, and when it is full it is submitted first (a slot waits on the
 * retry list if the kernel takes none).  The CQ holds the two CQEs of
 * every slot (its op and its link timeout); a cancel's, sent only at a
 * deadline, may overflow it, which the kernel then keeps for us
 * (IORING_FEAT_NODROP, required).  Two pages of ring a path, where 4 x 64
 * entries each way took 25 KiB (bench/scale.sh). */
#define FILE_SQ_ENTRIES 32u
#define FILE_CQ_ENTRIES (2u * FILE_QUEUE_DEPTH)
/* Slots come in chunks as I/O needs them: an idle path (its checker's
 * probe: one) holds one chunk, a busy one up to FILE_QUEUE_DEPTH. */
#define FILE_SLOT_CHUNK 8u
#define FILE_SLOT_CHUNKS (FILE_QUEUE_DEPTH / FILE_SLOT_CHUNK)
/* Writer threads one path may keep busy at once (file_submit_pool): a path
 * that hangs holds no more.  One: writes to a file are serialised by its
 * inode lock anyway, and a second writer measured slower (docs/writes.md). */
#define FILE_WRITERS 1u
/* Writes a writer thread does for one path before it lets others go first. */
#define FILE_WRITER_BATCH 32u
#define FILE_MAX_CHUNK (1u << 30)		/* SQE lengths are 32 bits */
#define FILE_RETRY_NS 1000000u			/* back-off for EAGAIN, refused submissions */
#define FILE_CANCEL_GRACE_NS 100000000u	/* then cancel what the link timeout missed */
#define FILE_TAG_TIMEOUT 1u			/* user_data bits: the CQE of a link timeout, */
#define FILE_TAG_CANCEL 2u			/* of an ASYNC_CANCEL */
#define FILE_TAGS (FILE_TAG_TIMEOUT | FILE_TAG_CANCEL)
#define FILE_ZEROES (64u << 10)

enum file_step {
	STEP_READ,
	STEP_WRITE,
	STEP_FSYNC,		/* flush, or the FUA of a fallocate or discard */
	STEP_PUNCH,		/* fallocate PUNCH_HOLE|KEEP_SIZE */
	STEP_ZERO_RANGE,	/* fallocate ZERO_RANGE|KEEP_SIZE */
	STEP_ZERO_WRITE,	/* write from file_zeroes */
	STEP_DISCARD,		/* block device URING_CMD discard */
};

/* One I/O in the kernel.  A slot is reused only once every CQE it is owed
 * (the op's and its link timeout's for each submission, a cancel's) has
 * arrived: their user_data point to it. */
struct file_slot {
	struct list_head node;		/* in free_slots or retry; guarded by fp->lock */
	struct um_tio *tio;		/* NULL once the I/O has ended; guarded by fp->lock */
	enum file_step step;		/* what the op in flight does */
	uint64_t done;			/* bytes of tio done by READ/WRITE/ZERO_WRITE */
	unsigned cqes;			/* CQEs still to come; guarded by fp->lock */
	bool timed_out;			/* its link timeout fired */
	bool cancel_sent;		/* file_sweep_locked asked to cancel it */
	struct __kernel_timespec ts;	/* the link timeout (the kernel copies it at submission) */
	struct iovec iov;		/* for READV/WRITEV */
};

struct file_path {
	struct umpath_ctx *ctx;
	int fd;
	/* The directio checker's: the same file opened O_DIRECT read-only at
	 * its first probe, so that it reads the storage, not a page cache
	 * that fd may share.  -1 until then. */
	_Atomic int dfd;
	char *fname;
	bool bdev, ro;
	bool force_async;		/* IOSQE_ASYNC on every op (file_trusts_nowait) */
	bool try_nowait;		/* page-cache fast path (file_submit_nowait) */
	bool pool_writes;		/* buffered writes on writer threads (file_submit_pool) */
	bool has_rw;			/* IORING_OP_READ/WRITE */
	bool has_fallocate;		/* IORING_OP_FALLOCATE */
	bool has_uring_cmd;		/* IORING_OP_URING_CMD */
	/* Learned from EOPNOTSUPP, so later I/O skips the step; written under
	 * lock, read without it (file_submit). */
	_Atomic bool no_punch, no_zero_range, no_uring_discard, no_nowait_write;
	pthread_mutex_t lock;
	pthread_t lock_owner;		/* guarded by lock */
	bool lock_held;			/* guarded by lock */
	pthread_cond_t idle;		/* no slot busy, FIFO empty */
	struct io_uring ring;		/* SQ and CQ guarded by lock */
	struct list_head free_slots;	/* guarded by lock */
	struct list_head retry;		/* slots to resubmit after EAGAIN; guarded by lock */
	struct list_head fifo;		/* um_tio waiting for a slot, by deadline; guarded by lock */
	unsigned busy;			/* slots not free; guarded by lock */
	bool closing;			/* guarded by lock */
	struct um_timer timer;		/* FIFO deadlines, retries, the sweep */
	uint64_t timer_due;		/* when timer is armed for, 0 if not; guarded by lock */
	struct file_slot *slot_chunk[FILE_SLOT_CHUNKS];	/* guarded by lock */
	unsigned nchunks;		/* guarded by lock */
	/* Buffered writes for the writer threads (file_submit_pool). */
	struct list_head wq;		/* um_tio waiting, by deadline; guarded by lock */
	struct um_work wwork;		/* this path in the writers' queue */
	bool wqueued;			/* wwork is in the writers' queue; guarded by lock */
	unsigned wrunning;		/* writers taking their turn with it; guarded by lock */
	/* No inline writes before this (um_now_ns): one blocked long enough
	 * for its submitter to go on without it (um_inline_begin). */
	_Atomic uint64_t inline_after;
};

/* Written once, then only read: the source of STEP_ZERO_WRITE.  Touched at
 * first use so that O_DIRECT pins real pages, not the shared zero page. */
static uint8_t file_zeroes[FILE_ZEROES] __attribute__((aligned(4096)));
static pthread_once_t file_zeroes_once = PTHREAD_ONCE_INIT;

static void file_zeroes_init(void)
{
	memset(file_zeroes, 0, sizeof(file_zeroes));
}

/* ---- path strings ------------------------------------------------------ */

struct file_spec {
	char *path;
	bool direct, ro;
};

static int file_parse(const char *name, struct file_spec *ret_spec)
{
	struct file_spec spec = { 0 };
	const char *q, *opt;

	if (strncmp(name, "file:", 5)) {
		spec.path = strdup(name);
		if (!spec.path)
			return -ENOMEM;
		*ret_spec = spec;
		return 0;
	}
	name += 5;
	q = strchr(name, '?');
	spec.path = q ? strndup(name, (size_t)(q - name)) : strdup(name);
	if (!spec.path)
		return -ENOMEM;
	if (!*spec.path) {
		um_detail_set("no file name after \"file:\"");
		goto bad;
	}
	for (opt = q; opt; opt = strchr(opt, '&')) {
		size_t len;

		opt++;
		len = strcspn(opt, "&");
		if (len == 6 && !strncmp(opt, "direct", 6)) {
			spec.direct = true;
		} else if (len == 2 && !strncmp(opt, "ro", 2)) {
			spec.ro = true;
		} else {
			um_detail_set("unknown file: option '%.*s' (direct, ro)",
				      len > 32 ? 32 : (int)len, opt);
			goto bad;
		}
	}
	*ret_spec = spec;
	return 0;
bad:
	free(spec.path);
	return -EINVAL;
}

/* ---- locking and completion ------------------------------------------- */

static void file_lock(struct file_path *fp)
{
	pthread_mutex_lock(&fp->lock);
	fp->lock_owner = pthread_self();
	fp->lock_held = true;
}

static void file_unlock(struct file_path *fp)
{
	fp->lock_held = false;
	pthread_mutex_unlock(&fp->lock);
}

static void file_assert_locked(struct file_path *fp)
{
	assert(fp->lock_held && pthread_equal(fp->lock_owner, pthread_self()));
}

/* An ended I/O waits on a local list for done(), which is called without
 * fp->lock (done() may submit again, to this path or another).  Its
 * tp_time_ns, the deadline until now, carries the result meanwhile. */
static void file_finish(struct list_head *out, struct um_tio *tio, int err)
{
	tio->tp_time_ns = (uint64_t)(int64_t)err;
	list_add_tail(&tio->tp_node, out);
}

/* Call done() for every I/O on the list.  Callers touch nothing of the
 * path after this: a done() on the loop thread may end up closing it. */
static void file_complete(struct list_head *list)
{
	struct um_tio *tio, *n;

	list_for_each_entry_safe(tio, n, list, tp_node) {
		int err = (int)(int64_t)tio->tp_time_ns;

		list_del_init(&tio->tp_node);
		tio->done(tio, err);
	}
}

/* Arm the timer for due_ns unless it is armed for earlier already. */
static void file_timer_at_locked(struct file_path *fp, uint64_t due_ns)
{
	uint64_t now = um_now_ns();

	file_assert_locked(fp);
	if (fp->timer_due && fp->timer_due <= due_ns)
		return;
	fp->timer_due = due_ns;
	um_timer_arm(fp->ctx->loop, &fp->timer, due_ns > now ? due_ns - now : 0);
}

static bool file_idle_locked(struct file_path *fp)
{
	file_assert_locked(fp);
	return !fp->busy && list_empty(&fp->fifo) &&
	       list_empty(&fp->wq) && !fp->wqueued && !fp->wrunning;
}

static void file_slot_put_locked(struct file_path *fp, struct file_slot *slot)
{
	file_assert_locked(fp);
	assert(!slot->tio && !slot->cqes);
	list_add(&slot->node, &fp->free_slots);
	fp->busy--;
}

/* ---- submission --------------------------------------------------------- */

static void file_prep_rw(struct file_path *fp, struct io_uring_sqe *sqe, struct file_slot *slot,
			 bool write, const void *buf, unsigned len, uint64_t off)
{
	int fd = !write && (slot->tio->flags & UM_TIO_DIRECT) ? atomic_load(&fp->dfd) : fp->fd;

	if (fp->has_rw) {
		io_uring_prep_rw(write ? IORING_OP_WRITE : IORING_OP_READ, sqe, fd, buf, len, off);
	} else {
		slot->iov.iov_base = (void *)buf;
		slot->iov.iov_len = len;
		io_uring_prep_rw(write ? IORING_OP_WRITEV : IORING_OP_READV, sqe, fd,
				 &slot->iov, 1, off);
	}
	if (write && (slot->tio->flags & UMPATH_IO_FUA))
		sqe->rw_flags = RWF_DSYNC;
}

static void file_flush_sq_locked(struct file_path *fp);

/* Queue the slot's next op, linked to a timeout for the time its I/O has
 * left (or put the slot on the retry list when the SQ is full and the
 * kernel takes none).  -ETIMEDOUT if none is left.  The caller submits (file_flush_sq). */
static int file_prep_locked(struct file_path *fp, struct file_slot *slot)
{
	struct um_tio *tio = slot->tio;
	uint64_t now = um_now_ns(), left, rest;
	struct io_uring_sqe *sqe, *lt;

	file_assert_locked(fp);
	if (now >= tio->tp_time_ns)
		return -ETIMEDOUT;
	left = tio->tp_time_ns - now;
	if (io_uring_sq_space_left(&fp->ring) < 2)
		file_flush_sq_locked(fp);
	if (io_uring_sq_space_left(&fp->ring) < 2) {
		/* The kernel took none (short of memory): the slot waits
		 * for the timer, as after -EAGAIN. */
		list_add_tail(&slot->node, &fp->retry);
		file_timer_at_locked(fp, now + FILE_RETRY_NS);
		return 0;
	}
	sqe = io_uring_get_sqe(&fp->ring);
	lt = io_uring_get_sqe(&fp->ring);
	assert(sqe && lt);

	rest = tio->length - slot->done;
	switch (slot->step) {
	case STEP_READ:
	case STEP_WRITE:
		file_prep_rw(fp, sqe, slot, slot->step == STEP_WRITE, (char *)tio->buf + slot->done,
			     (unsigned)(rest < FILE_MAX_CHUNK ? rest : FILE_MAX_CHUNK),
			     tio->offset + slot->done);
		break;
	case STEP_ZERO_WRITE:
		file_prep_rw(fp, sqe, slot, true, file_zeroes,
			     (unsigned)(rest < FILE_ZEROES ? rest : FILE_ZEROES),
			     tio->offset + slot->done);
		break;
	case STEP_FSYNC:
		io_uring_prep_fsync(sqe, fp->fd, IORING_FSYNC_DATASYNC);
		break;
	case STEP_PUNCH:
		io_uring_prep_fallocate(sqe, fp->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)tio->offset, (off_t)tio->length);
		break;
	case STEP_ZERO_RANGE:
		io_uring_prep_fallocate(sqe, fp->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)tio->offset, (off_t)tio->length);
		break;
	case STEP_DISCARD:
		/* Linux 6.12 blkdev_uring_cmd: start in addr, length in addr3. */
		io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fp->fd, NULL, 0, 0);
		sqe->cmd_op = BLOCK_URING_CMD_DISCARD;
		sqe->addr = tio->offset;
		sqe->addr3 = tio->length;
		break;
	}
	io_uring_sqe_set_data(sqe, slot);
	sqe->flags |= IOSQE_IO_LINK | (fp->force_async ? IOSQE_ASYNC : 0);

	slot->ts.tv_sec = (long long)(left / 1000000000u);
	slot->ts.tv_nsec = (long long)(left % 1000000000u);
	io_uring_prep_link_timeout(lt, &slot->ts, 0);
	io_uring_sqe_set_data64(lt, (uintptr_t)slot | FILE_TAG_TIMEOUT);
	slot->cqes += 2;
	return 0;
}

/* Hand the queued SQEs to the kernel. */
static void file_flush_sq_locked(struct file_path *fp)
{
	file_assert_locked(fp);
	while (io_uring_sq_ready(&fp->ring)) {
		int r = io_uring_submit(&fp->ring);

		if (r > 0 || r == -EINTR)
			continue;
		/* -EAGAIN, -EBUSY, -ENOMEM: the kernel is short of memory.
		 * The SQEs stay queued; the timer tries again.  Their link
		 * timeouts start only when the kernel takes them. */
		file_timer_at_locked(fp, um_now_ns() + FILE_RETRY_NS);
		break;
	}
}

static enum file_step file_zero_step_locked(struct file_path *fp, const struct um_tio *tio)
{
	if (!fp->has_fallocate)
		return STEP_ZERO_WRITE;
	if (!(tio->flags & UMPATH_IO_NO_HOLE) && !fp->no_punch)
		return STEP_PUNCH;
	return fp->no_zero_range ? STEP_ZERO_WRITE : STEP_ZERO_RANGE;
}

/* Start tio in a free slot; if it cannot be, it ends on out. */
static void file_start_locked(struct file_path *fp, struct um_tio *tio, struct list_head *out)
{
	struct file_slot *slot;
	int r;

	file_assert_locked(fp);
	slot = list_first_entry(&fp->free_slots, struct file_slot, node);
	list_del_init(&slot->node);
	fp->busy++;
	slot->tio = tio;
	slot->done = 0;
	slot->timed_out = false;
	slot->cancel_sent = false;
	switch (tio->op) {
	case UMPATH_OP_READ:
		slot->step = STEP_READ;
		break;
	case UMPATH_OP_WRITE:
		slot->step = STEP_WRITE;
		break;
	case UMPATH_OP_FLUSH:
		slot->step = STEP_FSYNC;
		break;
	case UMPATH_OP_TRIM:
		/* Block devices without URING_CMD discard never get here
		 * (file_submit runs BLKDISCARD). */
		slot->step = fp->bdev ? STEP_DISCARD : STEP_PUNCH;
		break;
	case UMPATH_OP_WRITE_ZEROES:
		slot->step = file_zero_step_locked(fp, tio);
		break;
	}
	r = file_prep_locked(fp, slot);
	if (r) {
		slot->tio = NULL;
		file_slot_put_locked(fp, slot);
		file_finish(out, tio, r);
		return;
	}
	file_timer_at_locked(fp, tio->tp_time_ns + FILE_CANCEL_GRACE_NS);
}

/* Whether a slot is free, after one more chunk if none was and the path
 * may have more (false without memory: the I/O waits in the FIFO). */
static bool file_slot_room_locked(struct file_path *fp)
{
	struct file_slot *c;

	file_assert_locked(fp);
	if (!list_empty(&fp->free_slots))
		return true;
	if (fp->nchunks == FILE_SLOT_CHUNKS)
		return false;
	c = calloc(FILE_SLOT_CHUNK, sizeof(*c));
	if (!c)
		return false;
	for (unsigned i = 0; i < FILE_SLOT_CHUNK; i++)
		list_add_tail(&c[i].node, &fp->free_slots);
	fp->slot_chunk[fp->nchunks++] = c;
	return true;
}

/* Start FIFO entries while slots are free. */
static void file_fill_locked(struct file_path *fp, struct list_head *out)
{
	file_assert_locked(fp);
	while (!list_empty(&fp->fifo) && file_slot_room_locked(fp)) {
		struct um_tio *tio = list_first_entry(&fp->fifo, struct um_tio, tp_node);

		list_del_init(&tio->tp_node);
		file_start_locked(fp, tio, out);
	}
}

/* BLKDISCARD, synchronously on the calling thread: the submitter's, or the
 * loop thread when an I/O is requeued from a completion, or once per path
 * when the kernel turns the URING_CMD discard down.  It cannot be cancelled,
 * so it has no deadline; its buffer-less nature makes that safe. */
static int file_discard_ioctl(struct file_path *fp, const struct um_tio *tio)
{
	uint64_t range[2] = { tio->offset, tio->length };

	return ioctl(fp->fd, BLKDISCARD, range) < 0 ? -errno : 0;
}

/* ---- completion ------------------------------------------------------- */

/* The op of slot ended with res: go on, retry, fall back, or end. */
static void file_op_cqe_locked(struct file_path *fp, struct file_slot *slot, int res,
			       struct list_head *out, struct list_head *redo)
{
	struct um_tio *tio = slot->tio;
	int err = 0;

	file_assert_locked(fp);
	if (res == -ECANCELED || res == -EINTR || res == -EAGAIN) {
		/* -ECANCELED also when the thread that submitted it exited
		 * (io_uring cancels a task's requests): not the path's fault
		 * before the deadline. */
		if (slot->timed_out || slot->cancel_sent || um_now_ns() >= tio->tp_time_ns) {
			err = -ETIMEDOUT;
			goto end;
		}
		if (res == -EAGAIN) {
			list_add_tail(&slot->node, &fp->retry);
			file_timer_at_locked(fp, um_now_ns() + FILE_RETRY_NS);
			return;
		}
		goto again;
	}
	if (res == -EOPNOTSUPP) {
		switch (slot->step) {
		case STEP_PUNCH:
			if (tio->op != UMPATH_OP_WRITE_ZEROES)
				break;
			fp->no_punch = true;
			slot->step = file_zero_step_locked(fp, tio);
			goto again;
		case STEP_ZERO_RANGE:
			fp->no_zero_range = true;
			slot->step = STEP_ZERO_WRITE;
			goto again;
		case STEP_DISCARD:
			/* A kernel before 6.12: block devices have no
			 * uring_cmd.  BLKDISCARD after the lock is dropped. */
			fp->no_uring_discard = true;
			slot->tio = NULL;
			list_add_tail(&tio->tp_node, redo);
			return;
		default:
			break;
		}
	}
	if (res < 0) {
		err = res;
		goto end;
	}

	switch (slot->step) {
	case STEP_READ:
	case STEP_WRITE:
	case STEP_ZERO_WRITE:
		if (!res) {
			/* No progress: end of file, the file shrank below
			 * the size it was opened with. */
			err = -EIO;
			goto end;
		}
		slot->done += (unsigned)res;
		if (slot->done < tio->length)
			goto again;
		break;
	case STEP_PUNCH:
	case STEP_ZERO_RANGE:
	case STEP_DISCARD:
		if (tio->flags & UMPATH_IO_FUA) {
			slot->step = STEP_FSYNC;
			goto again;
		}
		break;
	case STEP_FSYNC:
		break;
	}
	goto end;
again:
	err = file_prep_locked(fp, slot);
	if (!err)
		return;
end:
	/* An op that outlived its deadline (its link timeout fired, or the
	 * sweep had to cancel it): the path is at fault whatever the op said,
	 * and a retry elsewhere is harmless since done() was not called.  A
	 * target error stays the request's. */
	if ((slot->timed_out || slot->cancel_sent) && (!err || umpath_is_path_error(err)))
		err = -ETIMEDOUT;
	slot->tio = NULL;
	file_finish(out, tio, err);
}

static void file_cqe_locked(struct file_path *fp, const struct io_uring_cqe *cqe,
			    struct list_head *out, struct list_head *redo)
{
	uintptr_t ud = (uintptr_t)io_uring_cqe_get_data64(cqe);
	struct file_slot *slot = (struct file_slot *)(ud & ~(uintptr_t)FILE_TAGS);

	file_assert_locked(fp);
	assert(slot->cqes > 0);
	slot->cqes--;
	if (ud & FILE_TAG_TIMEOUT) {
		/* -ECANCELED: the op ended first.  Else it fired: -ETIME if
		 * it cancelled the op, -EALREADY (or -ENOENT) if the op runs
		 * on regardless. */
		if (cqe->res != -ECANCELED)
			slot->timed_out = true;
	} else if (ud & FILE_TAG_CANCEL) {
		/* 0: cancelled, the op's CQE says -ECANCELED; -EALREADY,
		 * -ENOENT: running or over, its CQE will tell. */
	} else if (slot->tio) {
		file_op_cqe_locked(fp, slot, cqe->res, out, redo);
	}
	if (!slot->cqes && !slot->tio)
		file_slot_put_locked(fp, slot);
}

/* Reap every CQE, and start what waited for a slot; the caller holds
 * fp->lock (which makes the CQ's consumer one at a time).  Finished I/O goes
 * to out; discards to be done by ioctl go to redo (still in flight). */
static void file_reap_locked(struct file_path *fp, struct list_head *out, struct list_head *redo)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen;
	bool flushed = false;

	file_assert_locked(fp);
	do {
		seen = 0;
		io_uring_for_each_cqe(&fp->ring, head, cqe) {
			file_cqe_locked(fp, cqe, out, redo);
			seen++;
		}
		io_uring_cq_advance(&fp->ring, seen);
		/* The in-flight bound keeps the CQ from overflowing; should
		 * it still, the kernel keeps the rest (FEAT_NODROP) until
		 * asked once. */
		if (!seen && !flushed && io_uring_cq_has_overflow(&fp->ring)) {
			flushed = true;
			seen = io_uring_get_events(&fp->ring) == 0;
		}
		if (!seen) {
			/* Ops started from the FIFO may complete inline. */
			file_fill_locked(fp, out);
			file_flush_sq_locked(fp);
			seen = io_uring_cq_ready(&fp->ring);
		}
	} while (seen);
	if (file_idle_locked(fp))
		pthread_cond_broadcast(&fp->idle);
}

/* After unlocking: the discards by ioctl (their I/O is still in flight, so
 * the path cannot be closed meanwhile), then every completion.  Nothing of
 * fp is touched after the first done(): it may close the path. */
static void file_finish_all(struct file_path *fp, struct list_head *out, struct list_head *redo)
{
	struct um_tio *tio, *n;

	list_for_each_entry_safe(tio, n, redo, tp_node) {
		list_del_init(&tio->tp_node);
		file_finish(out, tio, file_discard_ioctl(fp, tio));
	}
	file_complete(out);
}

/* End a locked section that submitted: reap the ops that completed inline
 * (page-cache hits) right here, still under the lock - once it is dropped,
 * another thread may complete this path's last I/O and close it - then
 * unlock and complete. */
static void file_reap_unlock(struct file_path *fp, struct list_head *out)
{
	struct list_head redo;

	list_init(&redo);
	if (io_uring_cq_ready(&fp->ring))
		file_reap_locked(fp, out, &redo);
	file_unlock(fp);
	file_finish_all(fp, out, &redo);
}

/* Runs on the loop thread when the ring's descriptor polls readable. */
static void file_reap(struct file_path *fp)
{
	struct list_head out, redo;

	list_init(&out);
	list_init(&redo);
	file_lock(fp);
	file_reap_locked(fp, &out, &redo);
	file_unlock(fp);
	file_finish_all(fp, &out, &redo);
}

/* Nothing to read or clear: the ring stays readable until its CQ is
 * empty (file_reap_locked empties it and flushes an overflow), and the
 * level-triggered watch calls again if a CQE came meanwhile.  Readable
 * with nothing to reap (another thread reaped first) is harmless. */
static void file_ring_event(void *opaque, uint32_t events)
{
	(void)events;
	file_reap(opaque);
}

/* The link timeout of an op that io_uring hands to its io-wq workers is
 * armed only when a worker starts it: an op queued behind workers stuck on
 * a hung file would wait with no deadline running.  So an op still in the
 * kernel FILE_CANCEL_GRACE_NS after its deadline is cancelled by user_data
 * (IORING_OP_ASYNC_CANCEL removes queued work; running work ends when it
 * ends).  Returns when the next op is due, 0 if none. */
static uint64_t file_sweep_locked(struct file_path *fp, uint64_t now)
{
	uint64_t next = 0;

	file_assert_locked(fp);
	for (unsigned i = 0; i < fp->nchunks * FILE_SLOT_CHUNK; i++) {
		struct file_slot *slot = &fp->slot_chunk[i / FILE_SLOT_CHUNK][i % FILE_SLOT_CHUNK];
		struct io_uring_sqe *sqe;
		uint64_t due;

		/* Not in flight: free, or waiting on the retry list. */
		if (!slot->tio || slot->cancel_sent || !list_empty(&slot->node))
			continue;
		due = slot->tio->tp_time_ns + FILE_CANCEL_GRACE_NS;
		if (due > now) {
			if (!next || due < next)
				next = due;
			continue;
		}
		if (!io_uring_sq_space_left(&fp->ring))
			file_flush_sq_locked(fp);
		sqe = io_uring_get_sqe(&fp->ring);
		if (!sqe) {
			/* The kernel takes none now: next time. */
			if (!next || now + FILE_RETRY_NS < next)
				next = now + FILE_RETRY_NS;
			break;
		}
		io_uring_prep_cancel64(sqe, (uintptr_t)slot, 0);
		io_uring_sqe_set_data64(sqe, (uintptr_t)slot | FILE_TAG_CANCEL);
		slot->cqes++;
		slot->cancel_sent = true;
	}
	return next;
}

/* End with -ETIMEDOUT the I/O of a by-deadline list (the FIFO, the
 * writers' wq) whose deadline has passed: none of it has started. */
static void file_expire(struct list_head *list, uint64_t now, struct list_head *out)
{
	while (!list_empty(list)) {
		struct um_tio *tio = list_first_entry(list, struct um_tio, tp_node);

		if (tio->tp_time_ns > now)
			break;
		list_del_init(&tio->tp_node);
		file_finish(out, tio, -ETIMEDOUT);
	}
}

/* due (0: none), or the first deadline of a by-deadline list if earlier. */
static uint64_t file_earliest(struct list_head *list, uint64_t due)
{
	uint64_t head;

	if (list_empty(list))
		return due;
	head = list_first_entry(list, struct um_tio, tp_node)->tp_time_ns;
	return !due || head < due ? head : due;
}

/* FIFO deadlines, EAGAIN retries, refused submissions, the sweep. */
static void file_timer_fn(struct um_timer *t)
{
	struct file_path *fp = container_of(t, struct file_path, timer);
	struct file_slot *slot, *sn;
	struct list_head out, retry;
	uint64_t now = um_now_ns(), due = 0;

	list_init(&out);
	file_lock(fp);
	fp->timer_due = 0;
	file_expire(&fp->fifo, now, &out);
	file_expire(&fp->wq, now, &out);
	/* Taken off first: a slot that must wait again goes back on it. */
	list_init(&retry);
	list_splice_tail_init(&fp->retry, &retry);
	list_for_each_entry_safe(slot, sn, &retry, node) {
		struct um_tio *tio = slot->tio;
		int r;

		list_del_init(&slot->node);
		r = file_prep_locked(fp, slot);
		if (r) {
			slot->tio = NULL;
			if (!slot->cqes)
				file_slot_put_locked(fp, slot);
			file_finish(&out, tio, r);
		}
	}
	file_fill_locked(fp, &out);
	due = file_sweep_locked(fp, now);
	file_flush_sq_locked(fp);
	due = file_earliest(&fp->fifo, due);
	due = file_earliest(&fp->wq, due);
	if (due)
		file_timer_at_locked(fp, due);
	if (file_idle_locked(fp))
		pthread_cond_broadcast(&fp->idle);
	file_reap_unlock(fp, &out);
}

/* The page-cache fast path: a buffered read (or write, where the file
 * system allows it) that RWF_NOWAIT completes without waiting for I/O is
 * done right here on the submitting thread - no ring, no CQE, no wake-up of
 * the loop thread.  Anything that would wait (-EAGAIN) or comes up short
 * goes through the ring with its deadline; a short write rewritten there is
 * harmless (same data, same place).  true if tio is done. */
static bool file_submit_nowait(struct file_path *fp, struct um_tio *tio)
{
	struct iovec iov = { .iov_base = tio->buf, .iov_len = tio->length };
	ssize_t n;

	if (tio->op == UMPATH_OP_READ) {
		n = preadv2(fp->fd, &iov, 1, (off_t)tio->offset, RWF_NOWAIT);
	} else if (tio->op == UMPATH_OP_WRITE && !(tio->flags & UMPATH_IO_FUA) && !fp->ro &&
		   !atomic_load_explicit(&fp->no_nowait_write, memory_order_relaxed)) {
		n = pwritev2(fp->fd, &iov, 1, (off_t)tio->offset, RWF_NOWAIT);
		if (n < 0 && errno == EOPNOTSUPP)	/* e.g. ext4: never again */
			atomic_store_explicit(&fp->no_nowait_write, true, memory_order_relaxed);
	} else {
		return false;
	}
	if (n != (ssize_t)tio->length)
		return false;
	tio->done(tio, 0);
	return true;
}

/* ---- buffered writes on writer threads ------------------------------------
 *
 * Buffered writes to ext4 (and any file system without RWF_NOWAIT for
 * them) cannot complete inline in io_uring: every one goes to an io-wq
 * worker, whose completion then wakes the loop thread, which calls done().
 * Two thread hops an I/O; io-wq also runs the buffered writes of one file
 * one at a time.  A writer thread of the context's pool makes it one hop:
 * it calls pwritev2 and then done() itself.  docs/writes.md has the
 * measurements.
 *
 * Deadlines: a write in pwritev2 cannot be cancelled, as a buffered write
 * that io_uring runs on io-wq cannot be either; like that one, it keeps
 * the caller's buffer until the call returns, and ends with -ETIMEDOUT if
 * that is past its deadline (the data is in the file then; the engine's
 * retry elsewhere writes it again, harmlessly).  A write whose deadline
 * passed before a writer took it is never started.  Only file systems
 * trusted not to block a non-blocking attempt (file_trusts_nowait) get
 * writers: on the others (FUSE, NFS) a write may hang, and the ring's
 * cancellation is the better tool. */

/* The write, on a writer thread or inline, no lock held: 0 or -errno. */
static int file_write_sync(struct file_path *fp, struct um_tio *tio)
{
	int flags = tio->flags & UMPATH_IO_FUA ? RWF_DSYNC : 0, err = 0;
	uint64_t done = 0;

	while (done < tio->length) {
		struct iovec iov = { .iov_base = (char *)tio->buf + done,
				     .iov_len = tio->length - done };
		ssize_t n;

		if (um_now_ns() >= tio->tp_time_ns) {
			err = -ETIMEDOUT;
			break;
		}
		n = pwritev2(fp->fd, &iov, 1, (off_t)(tio->offset + done), flags);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			/* No progress: the file shrank below the map. */
			err = n < 0 ? -errno : -EIO;
			break;
		}
		done += (uint64_t)n;
	}
	if ((!err || umpath_is_path_error(err)) && um_now_ns() > tio->tp_time_ns)
		err = -ETIMEDOUT;
	return err;
}

/* Put the path in the writers' queue if it has writes waiting and room for
 * one more writer.  true: the caller calls um_workers_queue after
 * unlocking (the path cannot be closed meanwhile: file_idle_locked). */
static bool file_wkick_locked(struct file_path *fp)
{
	file_assert_locked(fp);
	if (fp->wqueued || fp->wrunning >= FILE_WRITERS || list_empty(&fp->wq))
		return false;
	fp->wqueued = true;
	return true;
}

/* The writers' queue refused (no thread could be started): the waiting
 * writes go through the ring instead.  Called after unlocking. */
static void file_wqueue(struct file_path *fp)
{
	struct list_head out;

	if (um_workers_queue(fp->ctx->writers, &fp->wwork))
		return;
	list_init(&out);
	file_lock(fp);
	fp->wqueued = false;
	/* Their deadlines are armed already (file_submit_pool). */
	list_splice_tail_init(&fp->wq, &fp->fifo);
	file_fill_locked(fp, &out);
	file_flush_sq_locked(fp);
	if (file_idle_locked(fp))
		pthread_cond_broadcast(&fp->idle);
	file_reap_unlock(fp, &out);
}

/* A writer thread's turn with the path: its writes one after the other
 * while more wait (up to FILE_WRITER_BATCH, then the path goes to the back
 * of the writers' queue, behind other paths).  Each done() is called after
 * the next write is taken: an I/O of the path still in hand keeps the path
 * open (the engine closes a path only once its I/O has ended). */
static void file_write_work(struct um_work *work)
{
	struct file_path *fp = container_of(work, struct file_path, wwork);
	struct um_tio *tio = NULL, *next;
	unsigned n = 0;
	bool more;
	int err = 0;

	file_lock(fp);
	fp->wqueued = false;
	fp->wrunning++;
	for (;;) {
		next = NULL;
		if (n++ < FILE_WRITER_BATCH && !list_empty(&fp->wq)) {
			next = list_first_entry(&fp->wq, struct um_tio, tp_node);
			list_del_init(&next->tp_node);
		} else {
			fp->wrunning--;
		}
		/* The rest to another writer, if the path may have one more. */
		more = file_wkick_locked(fp);
		if (file_idle_locked(fp))
			pthread_cond_broadcast(&fp->idle);
		file_unlock(fp);
		if (more)
			file_wqueue(fp);
		/* Without a next one, nothing of fp after this: done() may
		 * close the path. */
		if (tio)
			tio->done(tio, err);
		if (!next)
			return;
		tio = next;
		err = file_write_sync(fp, tio);
		file_lock(fp);
	}
}

/* The write on the submitting thread, where its submitter allowed it
 * (umpath_inline_allow): no hand-off to a writer, and the data is still in
 * this CPU's cache.  Not FUA writes (they wait for the device by design),
 * nor on a path that blocked an inline write in the last second
 * (UM_INLINE_BACKOFF_NS).  true if tio is done. */
static bool file_write_inline(struct file_path *fp, struct um_tio *tio)
{
	uint64_t after = atomic_load_explicit(&fp->inline_after, memory_order_relaxed);
	struct umpath_inline *g;
	int err;

	if ((tio->flags & UMPATH_IO_FUA) || (after && um_now_ns() < after) ||
	    !(g = um_inline_begin(&fp->inline_after)))
		return false;
	err = file_write_sync(fp, tio);
	um_inline_end(g);
	tio->done(tio, err);
	return true;
}

/* Give a buffered write to the writer threads: it waits in the path's wq
 * (its deadline kept by the path's timer, as in the FIFO) until one takes
 * it.  Or make it inline (file_write_inline). */
static void file_submit_pool(struct file_path *fp, struct um_tio *tio)
{
	struct list_head out;
	bool kick = false;

	list_init(&out);
	tio->tp_time_ns = um_now_ns() + (uint64_t)fp->ctx->io_timeout_ms * 1000000u;
	if (file_write_inline(fp, tio))
		return;
	file_lock(fp);
	if (fp->closing) {
		file_finish(&out, tio, -ENXIO);
	} else {
		list_add_tail(&tio->tp_node, &fp->wq);
		file_timer_at_locked(fp, tio->tp_time_ns);
		kick = file_wkick_locked(fp);
	}
	file_unlock(fp);
	if (kick)
		file_wqueue(fp);
	file_complete(&out);
}

/* The O_DIRECT descriptor of the directio checker, opened at first use:
 * 0, or -errno (a file system without O_DIRECT says -EINVAL). */
static int file_direct_fd(struct file_path *fp)
{
	int fd, none = -1;

	if (atomic_load(&fp->dfd) >= 0)
		return 0;
	fd = open(fp->fname, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Two maps' checkers may race here: one descriptor is kept. */
	if (!atomic_compare_exchange_strong(&fp->dfd, &none, fd))
		close(fd);
	return 0;
}

static void file_submit(struct um_path *p, struct um_tio *tio)
{
	struct file_path *fp = p->priv;
	struct list_head out;
	int r = 0;

	if (tio->op != UMPATH_OP_FLUSH &&
	    (tio->offset > p->size || tio->length > p->size - tio->offset))
		r = -EINVAL;
	else if (fp->ro && tio->op != UMPATH_OP_READ && tio->op != UMPATH_OP_FLUSH)
		r = -EROFS;
	else if (tio->op == UMPATH_OP_TRIM && !fp->has_fallocate && !fp->bdev)
		r = -EOPNOTSUPP;
	if (r || (tio->op != UMPATH_OP_FLUSH && !tio->length)) {
		tio->done(tio, r);
		return;
	}
	if (tio->op == UMPATH_OP_TRIM && fp->bdev && (!fp->has_uring_cmd || fp->no_uring_discard)) {
		tio->done(tio, file_discard_ioctl(fp, tio));
		return;
	}

	if ((tio->flags & UM_TIO_DIRECT) && (r = file_direct_fd(fp)) < 0) {
		tio->done(tio, r);
		return;
	}
	if (fp->try_nowait && !(tio->flags & UM_TIO_DIRECT) && file_submit_nowait(fp, tio))
		return;
	if (tio->op == UMPATH_OP_WRITE && fp->pool_writes) {
		file_submit_pool(fp, tio);
		return;
	}

	list_init(&out);
	tio->tp_time_ns = um_now_ns() + (uint64_t)fp->ctx->io_timeout_ms * 1000000u;
	file_lock(fp);
	if (fp->closing) {
		/* The engine puts a path only after its I/O has ended. */
		file_finish(&out, tio, -ENXIO);
	} else if (!file_slot_room_locked(fp)) {
		list_add_tail(&tio->tp_node, &fp->fifo);
		file_timer_at_locked(fp, tio->tp_time_ns);
	} else {
		file_start_locked(fp, tio, &out);
		file_flush_sq_locked(fp);
	}
	file_reap_unlock(fp, &out);
}

/* ---- open and close ------------------------------------------------------ */

static int file_claims(struct umpath_ctx *ctx, const char *name)
{
	return 1;	/* last in the list: whatever the others leave */
}

static bool file_exists(struct umpath_ctx *ctx, const char *name)
{
	struct file_spec spec;
	struct stat st;
	bool ok;

	if (file_parse(name, &spec))
		return false;
	ok = stat(spec.path, &st) == 0;
	free(spec.path);
	return ok;
}

/* Whether io_uring may issue this file's reads and writes inline, in the
 * submitting thread.  io_uring first tries an op there without blocking
 * (IOCB_NOWAIT) and hands it to its io-wq workers when the file would
 * block; block devices and these local file systems keep that promise.
 * Others may not: a FUSE file blocks the submitter in fuse_get_req while
 * its server is slow, holding fp->lock and the ring's own lock, and then
 * every submission to the path - also from the loop thread - hangs, and no
 * deadline can fire.  Their ops are all sent to io-wq (IOSQE_ASYNC), at the
 * cost of a thread hop per op. */
static bool file_trusts_nowait(int fd, const struct stat *st)
{
	static const unsigned long trusted[] = {
		0xef53,		/* ext2, ext3, ext4 */
		0x58465342,	/* xfs */
		0x9123683e,	/* btrfs */
		0x01021994,	/* tmpfs */
		0xf2f52010,	/* f2fs */
	};
	struct statfs sfs;

	if (S_ISBLK(st->st_mode))
		return true;
	if (fstatfs(fd, &sfs) < 0)
		return false;
	for (size_t i = 0; i < UM_ARRAY_SIZE(trusted); i++)
		if ((unsigned long)sfs.f_type == trusted[i])
			return true;
	return false;
}

/* false on kernels without IORING_REGISTER_PROBE (5.5): READV, WRITEV,
 * FSYNC and LINK_TIMEOUT only. */
static bool file_probe_features(struct file_path *fp)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&fp->ring);

	if (!probe)
		return false;
	fp->has_rw = io_uring_opcode_supported(probe, IORING_OP_READ) &&
		     io_uring_opcode_supported(probe, IORING_OP_WRITE);
	fp->has_fallocate = io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
	fp->has_uring_cmd = io_uring_opcode_supported(probe, IORING_OP_URING_CMD);
	io_uring_free_probe(probe);
	return true;
}

static void file_free(struct file_path *fp)
{
	if (!fp)
		return;
	if (fp->ring.ring_fd >= 0)
		io_uring_queue_exit(&fp->ring);
	if (fp->fd >= 0)
		close(fp->fd);
	if (atomic_load(&fp->dfd) >= 0)
		close(atomic_load(&fp->dfd));
	for (unsigned i = 0; i < fp->nchunks; i++)
		free(fp->slot_chunk[i]);
	free(fp->fname);
	pthread_cond_destroy(&fp->idle);
	pthread_mutex_destroy(&fp->lock);
	free(fp);
}

/* The size of the open file or device now (a file grown, a LUN resized). */
static int file_read_size(struct um_path *p, uint64_t *ret_size)
{
	struct file_path *fp = p->priv;
	struct stat st;
	uint64_t size;

	if (fp->bdev) {
		if (ioctl(fp->fd, BLKGETSIZE64, &size) < 0)
			return -errno;
	} else {
		if (fstat(fp->fd, &st) < 0)
			return -errno;
		size = (uint64_t)st.st_size;
	}
	*ret_size = size;
	return 0;
}

static int file_open(struct umpath_ctx *ctx, struct um_path *p)
{
	struct io_uring_params params;
	struct file_path *fp = NULL;
	struct file_spec spec;
	uint64_t size;
	struct stat st;
	int r, flags, lbs = 0;

	r = file_parse(p->name, &spec);
	if (r)
		return r;
	flags = (spec.ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | (spec.direct ? O_DIRECT : 0);

	fp = calloc(1, sizeof(*fp));
	if (!fp) {
		r = -ENOMEM;
		goto fail;
	}
	fp->ctx = ctx;
	atomic_init(&fp->dfd, -1);
	fp->ring.ring_fd = -1;
	fp->ro = spec.ro;
	pthread_mutex_init(&fp->lock, NULL);
	pthread_cond_init(&fp->idle, NULL);
	list_init(&fp->free_slots);
	list_init(&fp->retry);
	list_init(&fp->fifo);
	list_init(&fp->wq);
	um_timer_init(&fp->timer, file_timer_fn);

	fp->fd = open(spec.path, flags);
	if (fp->fd < 0) {
		r = -errno;
		goto fail;
	}
	if (fstat(fp->fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		fp->bdev = true;
		if (ioctl(fp->fd, BLKGETSIZE64, &size) < 0) {
			r = -errno;
			goto fail;
		}
		/* Its logical block: a 4Kn disk's is 4096, with or without
		 * O_DIRECT (the map tells its clients). */
		if (ioctl(fp->fd, BLKSSZGET, &lbs) < 0 || lbs < 0)
			lbs = 0;
	} else {
		um_detail_set(S_ISDIR(st.st_mode) ? "Is a directory" :
			      "neither a file nor a block device");
		r = -ENODEV;
		goto fail;
	}

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_CQSIZE;
	params.cq_entries = FILE_CQ_ENTRIES;
	r = io_uring_queue_init_params(FILE_SQ_ENTRIES, &fp->ring, &params);
	if (r < 0) {
		/* ENOMEM: mmap past vm.max_map_count (two mappings a
		 * ring), or, before 5.12, past RLIMIT_MEMLOCK. */
		um_detail_set("cannot set up io_uring: %s%s", strerror(-r),
			      r == -ENOMEM ? " (vm.max_map_count or RLIMIT_MEMLOCK reached?)" : "");
		fp->ring.ring_fd = -1;
		goto fail;	/* -ENOSYS, -EPERM: io_uring disabled or filtered */
	}
	if (!(params.features & IORING_FEAT_NODROP)) {
		r = -EOPNOTSUPP;	/* before 5.5: no LINK_TIMEOUT either */
		goto fail;
	}
	/* IOSQE_ASYNC came with the probe, in 5.6. */
	fp->force_async = file_probe_features(fp) && !file_trusts_nowait(fp->fd, &st);
	/* O_DIRECT never hits the page cache; untrusted file systems may
	 * block even when asked not to. */
	fp->try_nowait = !spec.direct && !fp->force_async;
	fp->pool_writes = fp->try_nowait && !spec.ro;
	fp->wwork.fn = file_write_work;
	pthread_once(&file_zeroes_once, file_zeroes_init);

	r = um_loop_add_fd(ctx->loop, fp->ring.ring_fd, EPOLLIN, file_ring_event, fp);
	if (r < 0)
		goto fail;
	fp->fname = spec.path;
	p->priv = fp;
	p->size = size;
	p->block_size = (uint32_t)lbs;
	return 0;
fail:
	file_free(fp);
	free(spec.path);
	return r;
}

struct file_barrier {
	struct um_timer t;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ran;	/* guarded by lock */
};

static void file_barrier_fn(struct um_timer *t)
{
	struct file_barrier *b = container_of(t, struct file_barrier, t);

	pthread_mutex_lock(&b->lock);
	b->ran = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Return once the loop thread has finished whatever it was doing: after
 * um_loop_del_fd, it may still be inside (or about to enter) our ring's
 * callback with fp, since del_fd does not wait for a running callback.  The
 * loop runs one callback at a time, so a timer armed now runs after it. */
static void file_loop_barrier(struct umpath_loop *loop)
{
	struct file_barrier b = { .ran = false };

	um_timer_init(&b.t, file_barrier_fn);
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	um_timer_arm(loop, &b.t, 0);
	pthread_mutex_lock(&b.lock);
	while (!b.ran)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	um_timer_cancel(loop, &b.t);	/* waits until file_barrier_fn has returned */
	pthread_cond_destroy(&b.cond);
	pthread_mutex_destroy(&b.lock);
}

/* Wait until nothing of this path is in the kernel or the FIFO.  Bounded by
 * the deadlines, except for an op the kernel cannot cancel: its buffer and
 * its slot are in use until it ends, so close waits for it. */
static void file_drain(struct file_path *fp)
{
	bool on_loop = um_loop_is_current(fp->ctx->loop);

	file_lock(fp);
	fp->closing = true;
	while (!file_idle_locked(fp)) {
		struct pollfd pfd = { .fd = fp->ring.ring_fd, .events = POLLIN };

		if (!on_loop) {
			fp->lock_held = false;
			pthread_cond_wait(&fp->idle, &fp->lock);
			fp->lock_owner = pthread_self();
			fp->lock_held = true;
			continue;
		}
		/* Closing on the loop thread (from a done()): nobody else
		 * reaps or runs the timer meanwhile, so do both here. */
		file_unlock(fp);
		file_timer_fn(&fp->timer);
		poll(&pfd, 1, 10);
		file_ring_event(fp, 0);
		file_lock(fp);
	}
	file_unlock(fp);
}

static void file_close(struct um_path *p)
{
	struct file_path *fp = p->priv;
	struct umpath_loop *loop = fp->ctx->loop;

	file_drain(fp);
	um_loop_del_fd(loop, fp->ring.ring_fd);
	if (!um_loop_is_current(loop))
		file_loop_barrier(loop);
	um_timer_cancel(loop, &fp->timer);
	file_free(fp);
}

const struct um_transport um_file_transport = {
	.name = "file",
	.claims = file_claims,
	.exists = file_exists,
	.open = file_open,
	.close = file_close,
	.read_size = file_read_size,
	.submit = file_submit,
	.directio = true,
	.default_checker = UMPATH_CHECKER_DIRECTIO,
};
