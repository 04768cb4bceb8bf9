/* fuse.c - the FUSE export: every map of the daemon is a regular file
 * DIR/NAME of the map's size, for tools that want a file (losetup, dd,
 * qemu-img, mkfs through a loop device).
 *
 * Low-level libfuse API, run by fuse_session_loop_mt on threads of its own.
 * Data requests do not hold a FUSE thread: a handler turns the request
 * into a umpath_io and returns; the I/O's done() callback, on an engine
 * thread, sends the reply (libfuse allows a reply from any thread).  A
 * worker waiting on each request would tie up one of libfuse's few threads
 * per request in flight, so a loop device or an aio client could keep no
 * more I/O in flight than there are threads, and lookups would queue
 * behind data.  The price is one copy of written data, since libfuse
 * reuses its receive buffer once the handler returns.  A handler does
 * wait when the map's request pool is full and for a read-modify-write.
 *
 * The kernel passes a direct_io file's requests through at the client's
 * offsets and sizes (a 6-byte write, the tail of a split unaligned buffer),
 * and O_DIRECT paths take only aligned I/O: reads are widened to 4 KiB
 * blocks, other writes become read-modify-writes of their edge blocks,
 * ordered against the writes they overlap (range_lock).
 *
 * The directory is the registry, looked up on every access (entry and
 * attribute timeouts are 0), so maps created or removed through the control
 * socket appear and disappear at once.  An inode number stands for a map
 * name; the table below maps it back while the kernel remembers it.
 *
 * Files use direct I/O (no page cache between the client and the map: a
 * write has reached the map when it returns) with 1 MiB requests; O_SYNC,
 * O_DSYNC and RWF_DSYNC writes are FUA; fsync and close after writing are a
 * map FLUSH.  The size is fixed: writes past the end fail with ENOSPC like
 * a block device's, reads there return 0 bytes like a file's, and size
 * changes fail with EPERM.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "log.h"
#include "util.h"
#include "wait.h"

/* Largest read or write the kernel sends; libfuse 3.14 receives at most
 * 256 pages of data in one request anyway. */
#define FUSE_MAX_IO (1u << 20)
/* I/O is aligned to this for paths opened O_DIRECT (file:PATH?direct
 * fails unaligned I/O with EINVAL): 4 KiB covers disks of 512-byte and
 * 4 KiB sectors; a map of larger blocks (umpath_map_block_size) is
 * aligned to its blocks.  Buffers too. */
#define FUSE_ALIGN 4096u
#define FNODE_BUCKETS 1024u
/* Interrupts fuse_session_loop_mt's wait (see fuse_stop). */
#define FUSE_WAKE_SIGNAL SIGUSR2

/* A map name the kernel holds an inode for: nlookup counts the lookups it
 * has not forgotten yet. */
struct fnode {
	struct fnode *next_name, *next_ino;
	fuse_ino_t ino;
	uint64_t nlookup;
	char name[];
};

/* An open file: holds the map open (so remove says EBUSY) until release. */
struct fhandle {
	struct list_head node;		/* in e->handles */
	struct umd_map *m;
	fuse_ino_t ino;
	bool sync;			/* opened O_SYNC or O_DSYNC */
	bool dirty;			/* written since its last flush, under e->lock */
};

struct umd_export {
	struct umd *d;
	char *dir;
	struct fuse_session *se;
	pthread_t thread;
	uid_t uid;
	gid_t gid;
	struct timespec born;		/* every file's times */

	pthread_mutex_t lock;		/* guards all below */
	pthread_cond_t cond;		/* loop_done, inflight, sync I/O, pool room */
	bool loop_done;
	bool stopping;
	unsigned inflight;		/* requests between submit and reply */
	unsigned waiters;		/* threads waiting on cond for a completion */
	struct list_head writes;	/* struct freq in flight with wmap set */
	unsigned nr_rmw;		/* of which read-modify-writes */
	struct list_head handles;
	struct fnode *by_name[FNODE_BUCKETS];
	struct fnode *by_ino[FNODE_BUCKETS];
};

enum freq_reply {
	FR_DATA,	/* read: the data */
	FR_WRITTEN,	/* write: the count */
	FR_STATUS,	/* flush, fsync, fallocate: 0 or the error */
};

struct freq {
	struct umpath_io io;
	struct umd_export *e;
	struct fhandle *fh;		/* writes: marked dirty on success */
	fuse_req_t req;
	enum freq_reply reply;
	size_t skip;			/* read: bytes of io.buf before the data */
	size_t count;			/* read, write: bytes asked for */
	/* Writes in flight, for read-modify-write ordering (range_lock). */
	struct list_head wnode;		/* in e->writes, under e->lock */
	const struct umpath_map *wmap;	/* NULL: not in e->writes */
	uint64_t wstart, wend;
	bool rmw;
};

/* ---- inode numbers ----------------------------------------------------- */

static uint64_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return h;
}

static struct fnode *fnode_by_name(struct umd_export *e, const char *name)
{
	struct fnode *f;

	for (f = e->by_name[name_hash(name) % FNODE_BUCKETS]; f; f = f->next_name)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

static struct fnode *fnode_by_ino(struct umd_export *e, fuse_ino_t ino)
{
	struct fnode *f;

	for (f = e->by_ino[ino % FNODE_BUCKETS]; f; f = f->next_ino)
		if (f->ino == ino)
			return f;
	return NULL;
}

/* The inode number of a name: its hash, so that it stays the same across
 * forgets and restarts, moved on in the rare case of a collision. */
static fuse_ino_t name_ino_locked(struct umd_export *e, const char *name)
{
	struct fnode *f = fnode_by_name(e, name);
	fuse_ino_t ino;

	if (f)
		return f->ino;
	for (ino = name_hash(name); ino <= FUSE_ROOT_ID || fnode_by_ino(e, ino); ino++)
		;
	return ino;
}

/* Count a lookup of name; its inode number in *ret_ino. */
static int fnode_ref(struct umd_export *e, const char *name, fuse_ino_t *ret_ino)
{
	struct fnode *f;
	size_t len = strlen(name);

	pthread_mutex_lock(&e->lock);
	f = fnode_by_name(e, name);
	if (!f) {
		f = calloc(1, sizeof(*f) + len + 1);
		if (!f) {
			pthread_mutex_unlock(&e->lock);
			return -ENOMEM;
		}
		memcpy(f->name, name, len + 1);
		f->ino = name_ino_locked(e, name);
		f->next_name = e->by_name[name_hash(name) % FNODE_BUCKETS];
		e->by_name[name_hash(name) % FNODE_BUCKETS] = f;
		f->next_ino = e->by_ino[f->ino % FNODE_BUCKETS];
		e->by_ino[f->ino % FNODE_BUCKETS] = f;
	}
	f->nlookup++;
	*ret_ino = f->ino;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static void fnode_unlink_locked(struct umd_export *e, struct fnode *f)
{
	struct fnode **pp;

	for (pp = &e->by_name[name_hash(f->name) % FNODE_BUCKETS]; *pp != f; pp = &(*pp)->next_name)
		;
	*pp = f->next_name;
	for (pp = &e->by_ino[f->ino % FNODE_BUCKETS]; *pp != f; pp = &(*pp)->next_ino)
		;
	*pp = f->next_ino;
}

static void fnode_forget(struct umd_export *e, fuse_ino_t ino, uint64_t n)
{
	struct fnode *f;

	pthread_mutex_lock(&e->lock);
	f = fnode_by_ino(e, ino);
	if (f) {
		f->nlookup = n < f->nlookup ? f->nlookup - n : 0;
		if (!f->nlookup) {
			fnode_unlink_locked(e, f);
			free(f);
		}
	}
	pthread_mutex_unlock(&e->lock);
}

/* The map an inode stands for, with a reference; NULL if it is gone. */
static struct umd_map *ino_map(struct umd_export *e, fuse_ino_t ino, bool open)
{
	char name[256];
	struct fnode *f;

	pthread_mutex_lock(&e->lock);
	f = fnode_by_ino(e, ino);
	if (f)
		snprintf(name, sizeof(name), "%s", f->name);
	pthread_mutex_unlock(&e->lock);
	return f ? umd_map_get(e->d, name, open) : NULL;
}

/* ---- attributes -------------------------------------------------------- */

/* The alignment of m's I/O: FUSE_ALIGN or the map's larger block. */
static uint32_t map_align(const struct umd_map *m)
{
	uint32_t bs = umpath_map_block_size(m->map);

	return bs > FUSE_ALIGN ? bs : FUSE_ALIGN;
}

static void fill_attr(struct umd_export *e, fuse_ino_t ino, const struct umd_map *m,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_atim = st->st_mtim = st->st_ctim = e->born;
	st->st_blksize = m ? map_align(m) : FUSE_ALIGN;
	if (!m) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = (off_t)umpath_map_size(m->map);
	st->st_blocks = st->st_size / 512;
}

static struct umd_export *req_export(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fhandle *fi_handle(const struct fuse_file_info *fi)
{
	return fi ? (struct fhandle *)(uintptr_t)fi->fh : NULL;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = FUSE_MAX_IO;
	conn->max_read = FUSE_MAX_IO;	/* must match the max_read mount option */
	/* Data is copied out of libfuse's buffer anyway, so splicing would
	 * only add a system call per request. */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* Async direct I/O (loop devices, aio) keeps several requests of one
	 * file in flight; let the kernel send more of them at once. */
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->max_background = 64;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct umd_export *e = req_export(req);
	struct fuse_entry_param ep;
	struct umd_map *m;
	int r;

	m = parent == FUSE_ROOT_ID ? umd_map_get(e->d, name, false) : NULL;
	if (!m) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&ep, 0, sizeof(ep));
	r = fnode_ref(e, name, &ep.ino);
	if (r < 0) {
		umd_map_put(m, false);
		fuse_reply_err(req, -r);
		return;
	}
	fill_attr(e, ep.ino, m, &ep.attr);
	umd_map_put(m, false);
	/* Timeouts 0: maps come and go through the control socket. */
	if (fuse_reply_entry(req, &ep))
		fnode_forget(e, ep.ino, 1);	/* the kernel never saw it */
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fnode_forget(req_export(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fnode_forget(req_export(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The attributes of an inode: the root, the map of an open handle (which
 * keeps its map, even a removed one), the live map of that name, or a map
 * removed (--force) while open elsewhere: fstat() has no handle to give,
 * and sees it like an unlinked open file, with no links. */
static int ino_attr(struct umd_export *e, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct stat *st)
{
	struct fhandle *fh = fi_handle(fi);
	struct umd_map *m;
	int r = -ENOENT;

	if (ino == FUSE_ROOT_ID) {
		fill_attr(e, ino, NULL, st);
		return 0;
	}
	if (fh) {
		fill_attr(e, ino, fh->m, st);
		return 0;
	}
	m = ino_map(e, ino, false);
	if (m) {
		fill_attr(e, ino, m, st);
		umd_map_put(m, false);
		return 0;
	}
	/* A handle holds its map for as long as it is on the list. */
	pthread_mutex_lock(&e->lock);
	list_for_each_entry(fh, &e->handles, node) {
		if (fh->ino == ino) {
			fill_attr(e, ino, fh->m, st);
			st->st_nlink = 0;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = ino_attr(req_export(req), ino, fi, &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, 0);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int r = ino_attr(req_export(req), ino, fi, &st);

	/* The size is the map's; truncating to it is a no-op, as some tools
	 * do.  Times are accepted and forgotten (touch works); owner and mode
	 * stay those of the daemon's files. */
	if (!r && (to_set & FUSE_SET_ATTR_SIZE) &&
	    (S_ISDIR(st.st_mode) || attr->st_size != st.st_size))
		r = -EPERM;
	if (!r && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		r = -EPERM;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, 0);
}

/* ---- directory --------------------------------------------------------- */

struct dirsnap {
	size_t n, cap;
	char **names;
};

static void snap_one(struct umd_map *m, void *opaque)
{
	struct dirsnap *s = opaque;
	char *name;

	char **nn = um_grow(s->names, &s->cap, s->n + 1, sizeof(*s->names));

	if (!nn)
		return;
	s->names = nn;
	name = strdup(m->name);
	if (name)
		s->names[s->n++] = name;
}

static void snap_free(struct dirsnap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s);
}

/* The listing is taken at opendir so that offsets stay meaningful while
 * maps come and go. */
static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirsnap *s;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	umd_map_foreach(req_export(req)->d, snap_one, s);
	fi->fh = (uintptr_t)s;
	if (fuse_reply_open(req, fi))
		snap_free(s);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct umd_export *e = req_export(req);
	struct dirsnap *s = (struct dirsnap *)(uintptr_t)fi->fh;
	size_t used = 0;
	char *buf;

	if (size > FUSE_MAX_IO)
		size = FUSE_MAX_IO;
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offset i: entries "." and ".." first, then the maps. */
	for (size_t i = (size_t)(off < 0 ? 0 : off); i < s->n + 2; i++) {
		struct stat st = { .st_mode = S_IFDIR };
		const char *name;
		size_t need;

		if (i < 2) {
			name = i ? ".." : ".";
			st.st_ino = FUSE_ROOT_ID;
		} else {
			name = s->names[i - 2];
			st.st_mode = S_IFREG;
			pthread_mutex_lock(&e->lock);
			st.st_ino = name_ino_locked(e, name);
			pthread_mutex_unlock(&e->lock);
		}
		need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	snap_free((struct dirsnap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* The directory is the registry: files are made with "umpath create". */
static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EPERM);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	fuse_reply_err(req, EPERM);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EPERM);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EPERM);
}

/* ---- open files -------------------------------------------------------- */

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct umd_export *e = req_export(req);
	struct fhandle *fh;
	struct umd_map *m;

	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	m = ino_map(e, ino, true);
	if (!m) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fh = calloc(1, sizeof(*fh));
	if (!fh) {
		umd_map_put(m, true);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fh->m = m;
	fh->ino = ino;
	fh->sync = fi->flags & O_DSYNC;		/* O_SYNC includes O_DSYNC */
	pthread_mutex_lock(&e->lock);
	list_add_tail(&fh->node, &e->handles);
	pthread_mutex_unlock(&e->lock);
	/* O_TRUNC is ignored, as on a block device: "dd of=FILE" works
	 * without conv=notrunc.  Direct writes to one file are serialized by
	 * the kernel's inode lock until the write is sent (synchronous ones
	 * until answered): libfuse 3.14 cannot ask for
	 * FOPEN_PARALLEL_DIRECT_WRITES.  Async (aio, loop --direct-io) writes
	 * and all reads overlap. */
	fi->fh = (uintptr_t)fh;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi)) {		/* no release will come */
		pthread_mutex_lock(&e->lock);
		list_del_init(&fh->node);
		pthread_mutex_unlock(&e->lock);
		umd_map_put(m, true);
		free(fh);
	}
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct umd_export *e = req_export(req);
	struct fhandle *fh = fi_handle(fi);

	pthread_mutex_lock(&e->lock);
	list_del_init(&fh->node);
	pthread_mutex_unlock(&e->lock);
	umd_map_put(fh->m, true);
	free(fh);
	fuse_reply_err(req, 0);
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* ---- write ranges ------------------------------------------------------ */

static bool range_busy_locked(struct umd_export *e, const struct umpath_map *map,
			      uint64_t start, uint64_t end, bool rmw_only)
{
	struct freq *w;

	list_for_each_entry(w, &e->writes, wnode)
		if (w->wmap == map && (!rmw_only || w->rmw) && w->wstart < end && start < w->wend)
			return true;
	return false;
}

/* Register a write of [start, end) of map.  A read-modify-write waits
 * until no write overlaps its blocks, and other writes wait for the
 * read-modify-writes they overlap: else one would write back stale bytes
 * around its own over bytes the other just wrote.  Waits in the FUSE
 * thread: the writes in the way are in flight and end by themselves. */
static void range_lock(struct umd_export *e, struct freq *rq, const struct umpath_map *map,
		       uint64_t start, uint64_t end, bool rmw)
{
	pthread_mutex_lock(&e->lock);
	while (rmw ? range_busy_locked(e, map, start, end, false) :
		     e->nr_rmw && range_busy_locked(e, map, start, end, true)) {
		e->waiters++;
		pthread_cond_wait(&e->cond, &e->lock);
		e->waiters--;
	}
	rq->wmap = map;
	rq->wstart = start;
	rq->wend = end;
	rq->rmw = rmw;
	list_add_tail(&rq->wnode, &e->writes);
	if (rmw)
		e->nr_rmw++;
	pthread_mutex_unlock(&e->lock);
}

static void range_unlock_locked(struct umd_export *e, struct freq *rq)
{
	if (!rq->wmap)
		return;
	list_del_init(&rq->wnode);
	if (rq->rmw)
		e->nr_rmw--;
	rq->wmap = NULL;
	if (e->waiters)
		pthread_cond_broadcast(&e->cond);
}

/* ---- requests ---------------------------------------------------------- */

static void req_free(struct freq *rq)
{
	free(rq->io.buf);
	free(rq);
}

static void req_done(struct umpath_io *io, int err)
{
	struct freq *rq = container_of(io, struct freq, io);
	struct umd_export *e = rq->e;

	/* Before the reply: once the kernel has it, the file may be
	 * released and its handle freed. */
	pthread_mutex_lock(&e->lock);
	if (!err && rq->fh)
		rq->fh->dirty = true;
	range_unlock_locked(e, rq);
	pthread_mutex_unlock(&e->lock);
	if (err)
		fuse_reply_err(rq->req, -err);
	else if (rq->reply == FR_DATA)
		fuse_reply_buf(rq->req, (char *)io->buf + rq->skip, rq->count);
	else if (rq->reply == FR_WRITTEN)
		fuse_reply_write(rq->req, rq->count);
	else
		fuse_reply_err(rq->req, 0);
	req_free(rq);

	pthread_mutex_lock(&e->lock);
	e->inflight--;
	if (e->waiters || (e->stopping && !e->inflight))
		pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* A FUSE thread waiting for room in a map's request pool. */
struct pool_waiter {
	struct umpath_pool_wait w;
	struct umd_export *e;
	bool ready;			/* guarded by e->lock */
};

static void pool_ready(struct umpath_pool_wait *w)
{
	struct pool_waiter *pw = container_of(w, struct pool_waiter, w);
	struct umd_export *e = pw->e;

	pthread_mutex_lock(&e->lock);
	pw->ready = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* Submit io, waiting out a full request pool (-EAGAIN) here, in the FUSE
 * thread: the pool bounds the I/O in flight and the kernel holds the rest.
 * The map tells us when one of its requests frees, whoever's it was.  0
 * (done() will be called) or -errno. */
static int submit_io(struct umd_export *e, struct umd_map *m, struct umpath_io *io)
{
	struct pool_waiter pw = { .w = { .fn = pool_ready }, .e = e };
	int r;

	for (;;) {
		r = umpath_map_submit(m->map, io);
		if (r != -EAGAIN)
			break;
		pthread_mutex_lock(&e->lock);
		pw.ready = false;
		pthread_mutex_unlock(&e->lock);
		r = umpath_map_pool_wait(m->map, &pw.w);
		if (r == 1)
			continue;	/* a request freed meanwhile */
		pthread_mutex_lock(&e->lock);
		while (!pw.ready && !e->stopping)
			pthread_cond_wait(&e->cond, &e->lock);
		bool stopping = !pw.ready;
		pthread_mutex_unlock(&e->lock);
		if (stopping) {
			/* pw lives on this stack: disarmed before it goes. */
			umpath_map_pool_cancel(m->map, &pw.w);
			return -EIO;
		}
	}
	return r;
}

/* Submit rq, to be answered from its done(); on failure answer the error
 * now and free it. */
static void req_submit(struct umd_export *e, struct umd_map *m, struct freq *rq)
{
	int r;

	pthread_mutex_lock(&e->lock);
	e->inflight++;		/* before: done() may run before submit returns */
	pthread_mutex_unlock(&e->lock);
	r = submit_io(e, m, &rq->io);
	if (!r)
		return;
	pthread_mutex_lock(&e->lock);
	range_unlock_locked(e, rq);
	e->inflight--;
	if (e->stopping && !e->inflight)
		pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	fuse_reply_err(rq->req, -r);
	req_free(rq);
}

struct sync_io {
	struct umpath_io io;
	struct umd_export *e;
	bool done;
	int err;
};

static void sync_done(struct umpath_io *io, int err)
{
	struct sync_io *s = container_of(io, struct sync_io, io);
	struct umd_export *e = s->e;

	pthread_mutex_lock(&e->lock);
	s->err = err;
	s->done = true;		/* s may be gone once the lock is dropped */
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* The read half of a read-modify-write, waited for in the FUSE thread: it
 * is the rare path (a small or unaligned write), not worth a chain of
 * callbacks. */
static int read_sync(struct umd_export *e, struct umd_map *m, void *buf, uint64_t off,
		     uint64_t len)
{
	struct sync_io s = {
		.io = { .op = UMPATH_OP_READ, .offset = off, .length = len, .buf = buf,
			.done = sync_done },
		.e = e,
	};
	int r = submit_io(e, m, &s.io);

	if (r)
		return r;
	pthread_mutex_lock(&e->lock);
	while (!s.done)
		pthread_cond_wait(&e->cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
	return s.err;
}

static struct freq *req_new(fuse_req_t req, enum umpath_op op, enum freq_reply reply,
			    uint64_t off, uint64_t len)
{
	struct freq *rq = calloc(1, sizeof(*rq));

	if (!rq)
		return NULL;
	if (op == UMPATH_OP_READ || op == UMPATH_OP_WRITE) {
		if (posix_memalign(&rq->io.buf, FUSE_ALIGN, len ? (size_t)len : 1)) {
			free(rq);
			return NULL;
		}
	}
	list_init(&rq->wnode);
	rq->e = req_export(req);
	rq->req = req;
	rq->reply = reply;
	rq->io.op = op;
	rq->io.offset = off;
	rq->io.length = len;
	rq->io.done = req_done;
	return rq;
}

/* [off, end) widened to blocks of al bytes, within the map's size. */
static void align_range(uint64_t off, uint64_t end, uint64_t msize, uint32_t al,
			uint64_t *ret_start, uint64_t *ret_end)
{
	uint64_t aend = (end + al - 1) / al * al;

	*ret_start = off / al * al;
	*ret_end = aend < msize ? aend : msize;
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fhandle *fh = fi_handle(fi);
	uint64_t msize = umpath_map_size(fh->m->map);
	uint32_t al = map_align(fh->m);
	uint64_t start, end;
	struct freq *rq;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Like a file: a read at or past the end returns what is there. */
	if ((uint64_t)off >= msize || !size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > msize - (uint64_t)off)
		size = (size_t)(msize - (uint64_t)off);
	align_range((uint64_t)off, (uint64_t)off + size, msize, al, &start, &end);
	rq = req_new(req, UMPATH_OP_READ, FR_DATA, start, end - start);
	if (!rq) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rq->skip = (size_t)((uint64_t)off - start);
	rq->count = size;
	req_submit(rq->e, fh->m, rq);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct umd_export *e = req_export(req);
	struct fhandle *fh = fi_handle(fi);
	uint64_t msize = umpath_map_size(fh->m->map);
	uint32_t al = map_align(fh->m);
	uint64_t start, end, tail;
	struct freq *rq;
	bool rmw;
	int r = 0;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!size) {
		fuse_reply_write(req, 0);
		return;
	}
	/* Like a block device: short up to the end, ENOSPC at it. */
	if ((uint64_t)off >= msize) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	if (size > msize - (uint64_t)off)
		size = (size_t)(msize - (uint64_t)off);
	align_range((uint64_t)off, (uint64_t)off + size, msize, al, &start, &end);
	rq = req_new(req, UMPATH_OP_WRITE, FR_WRITTEN, start, end - start);
	if (!rq) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rq->count = size;
	rmw = start != (uint64_t)off || end != (uint64_t)off + size;
	range_lock(e, rq, fh->m->map, start, end, rmw);
	if (rmw && start != (uint64_t)off)
		r = read_sync(e, fh->m, rq->io.buf, start,
			      end - start < al ? end - start : al);
	/* The tail block, unless it is the head block just read. */
	tail = ((uint64_t)off + size) / al * al;
	if (!r && rmw && end != (uint64_t)off + size && !(start != (uint64_t)off && tail == start))
		r = read_sync(e, fh->m, (char *)rq->io.buf + (tail - start), tail, end - tail);
	if (r) {
		pthread_mutex_lock(&e->lock);
		range_unlock_locked(e, rq);
		pthread_mutex_unlock(&e->lock);
		fuse_reply_err(req, -r);
		req_free(rq);
		return;
	}
	memcpy((char *)rq->io.buf + ((uint64_t)off - start), buf, size);
	/* The kernel passes the file's flags with each write, RWF_DSYNC and
	 * RWF_SYNC included; the flags at open cover old kernels. */
	if (fh->sync || (fi->flags & O_DSYNC))
		rq->io.flags |= UMPATH_IO_FUA;
	rq->fh = fh;
	req_submit(e, fh->m, rq);
}

static void submit_flush(fuse_req_t req, struct fhandle *fh)
{
	struct freq *rq = req_new(req, UMPATH_OP_FLUSH, FR_STATUS, 0, 0);

	if (!rq) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	req_submit(rq->e, fh->m, rq);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct umd_export *e = req_export(req);
	struct fhandle *fh = fi_handle(fi);

	/* Always: other handles (another process) may have written. */
	pthread_mutex_lock(&e->lock);
	fh->dirty = false;
	pthread_mutex_unlock(&e->lock);
	submit_flush(req, fh);
}

/* close(): flush what this handle wrote, so "dd" without conv=fsync is
 * durable when it exits; a reader's close costs nothing. */
static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct umd_export *e = req_export(req);
	struct fhandle *fh = fi_handle(fi);
	bool dirty;

	pthread_mutex_lock(&e->lock);
	dirty = fh->dirty;
	fh->dirty = false;
	pthread_mutex_unlock(&e->lock);
	if (dirty)
		submit_flush(req, fh);
	else
		fuse_reply_err(req, 0);
}

/* fallocate(2) on a file of fixed size.  A punched hole must read back as
 * zeros (the loop driver turns REQ_OP_WRITE_ZEROES into a punch, and mkfs
 * zeroes inode tables and journals through it), which a TRIM does not
 * promise on every path (NBD trim, devices without discard_zeroes): so a
 * punch is a WRITE_ZEROES that may deallocate, a zero range one that must
 * not. */
static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct fhandle *fh = fi_handle(fi);
	uint64_t msize = umpath_map_size(fh->m->map);
	struct freq *rq;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Growing the file is the only thing that cannot be done. */
	if (!(mode & FALLOC_FL_KEEP_SIZE) &&
	    ((uint64_t)off > msize || (uint64_t)len > msize - (uint64_t)off)) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) || (uint64_t)off >= msize) {
		fuse_reply_err(req, 0);	/* every byte is allocated */
		return;
	}
	if ((uint64_t)len > msize - (uint64_t)off)
		len = (off_t)(msize - (uint64_t)off);
	rq = req_new(req, UMPATH_OP_WRITE_ZEROES, FR_STATUS, (uint64_t)off, (uint64_t)len);
	if (!rq) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rq->io.flags = mode & FALLOC_FL_ZERO_RANGE ? UMPATH_IO_NO_HOLE : 0;
	rq->fh = fh;
	/* Ordered against read-modify-writes of the same blocks. */
	range_lock(rq->e, rq, fh->m->map, (uint64_t)off, (uint64_t)(off + len), false);
	req_submit(rq->e, fh->m, rq);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.create = fs_create,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_unlink,
	.rename = fs_rename,
	.open = fs_open,
	.release = fs_release,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
};

/* ---- start and stop ---------------------------------------------------- */

__attribute__((format(printf, 2, 0)))
static void fuse_log_to_um(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level > FUSE_LOG_NOTICE)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n)
		um_log("%s%s", strncmp(line, "fuse", 4) ? "fuse: " : "", line);
}

static void wake_handler(int sig)
{
}

static void *loop_thread(void *arg)
{
	struct umd_export *e = arg;
	struct fuse_loop_config *cfg;
	sigset_t s;
	int r = -ENOMEM;

	/* The wake-up ends sem_wait in fuse_session_loop_mt (see
	 * fuse_stop).  The workers inherit the mask, but it is sent to this
	 * thread only; one that strayed there would just restart a read. */
	sigemptyset(&s);
	sigaddset(&s, FUSE_WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_max_threads(cfg, 16);
		r = fuse_session_loop_mt(e->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	pthread_mutex_lock(&e->lock);
	e->loop_done = true;
	pthread_cond_broadcast(&e->cond);
	if (!e->stopping)
		um_log("fuse: %s: the session ended (%s), no longer serving",
		       e->dir, r ? strerror(r < 0 ? -r : r) : "unmounted");
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* A FUSE mount whose daemon died answers ENOTCONN; take it away (as
 * fusermount3 -u -z would) so that we can mount on the directory again. */
static int clear_stale_mount(const char *dir)
{
	struct stat st;

	if (!stat(dir, &st) || errno != ENOTCONN)
		return 0;
	if (geteuid() == 0) {
		if (umount2(dir, MNT_DETACH) < 0) {
			int r = -errno;

			um_log("fuse: %s is a dead FUSE mount and cannot be unmounted: %s",
			       dir, strerror(-r));
			return -ENOTCONN;
		}
	} else {
		char *argv[] = { (char *)"fusermount3", (char *)"-u", (char *)"-q", (char *)"-z",
				 (char *)"--", (char *)dir, NULL };
		int status = 0;
		pid_t pid;

		if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) ||
		    waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
			um_log("fuse: %s is a dead FUSE mount (a killed umpathd?); "
			       "unmount it with: fusermount3 -u %s", dir, dir);
			return -ENOTCONN;
		}
	}
	um_log("fuse: %s was a dead FUSE mount (a killed umpathd?): unmounted it", dir);
	return 0;
}

static int check_dir(const char *dir)
{
	struct statfs sfs;
	struct stat st;
	int r;

	r = clear_stale_mount(dir);
	if (r < 0)
		return r;
	if (stat(dir, &st) < 0) {
		r = -errno;
		um_log("fuse: %s: %s", dir, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		um_log("fuse: %s: not a directory", dir);
		return -ENOTDIR;
	}
	if (!statfs(dir, &sfs) && sfs.f_type == FUSE_SUPER_MAGIC) {
		um_log("fuse: %s is a live FUSE mount already (another umpathd?)", dir);
		return -EBUSY;
	}
	return 0;
}

static int check_dev_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	int r;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	r = -errno;
	if (r == -ENOENT || r == -ENXIO || r == -ENODEV) {
		um_log("fuse: /dev/fuse: %s (no FUSE in this kernel or container)", strerror(-r));
		return -ENODEV;
	}
	um_log("fuse: /dev/fuse: %s", strerror(-r));
	return r;
}

static void export_free(struct umd_export *e)
{
	struct fhandle *fh, *n;

	/* Files still open when the session ended: no release will come. */
	list_for_each_entry_safe(fh, n, &e->handles, node) {
		list_del_init(&fh->node);
		umd_map_put(fh->m, true);
		free(fh);
	}
	for (unsigned i = 0; i < FNODE_BUCKETS; i++) {
		while (e->by_name[i]) {
			struct fnode *f = e->by_name[i];

			e->by_name[i] = f->next_name;
			free(f);
		}
	}
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e->dir);
	free(e);
}

static int fuse_start(struct umd *d, const char *spec, struct umd_export **ret)
{
	char opts[256];
	char *argv[] = { (char *)"umpathd", (char *)"-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct sigaction sa = { .sa_handler = wake_handler };
	pthread_condattr_t ca;
	struct umd_export *e;
	sigset_t all, old;
	int r;

	if (!spec || !*spec)
		return -EINVAL;
	fuse_set_log_func(fuse_log_to_um);
	r = check_dir(spec);
	if (r < 0)
		return r;
	r = check_dev_fuse();
	if (r < 0)
		return r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->d = d;
	e->uid = geteuid();
	e->gid = getegid();
	clock_gettime(CLOCK_REALTIME, &e->born);
	list_init(&e->handles);
	list_init(&e->writes);
	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	e->dir = realpath(spec, NULL);
	if (!e->dir) {
		r = -errno;
		goto fail;
	}

	/* Without allow_other the kernel lets only the mounting user in,
	 * root included (checked: a user's daemon's files give root EACCES,
	 * so losetup needs a root daemon).  As root it costs nothing: the
	 * files are root's, mode 0600, and default_permissions makes the
	 * kernel enforce that.  A user would need user_allow_other in
	 * /etc/fuse.conf, and fusermount3 fails without it: not asked. */
	snprintf(opts, sizeof(opts), "fsname=umpath,subtype=umpath,default_permissions,max_read=%u%s",
		 FUSE_MAX_IO, e->uid == 0 ? ",allow_other" : "");
	e->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), e);
	fuse_opt_free_args(&args);
	if (!e->se) {
		r = -EINVAL;
		goto fail;
	}
	/* errno is what libfuse's last failing call left: mount(2)'s or
	 * fusermount3's; ENOENT there is a helper not found, not the reason. */
	errno = 0;
	if (fuse_session_mount(e->se, e->dir)) {
		r = errno && errno != ENOENT ? -errno : -EPERM;
		um_log("fuse: cannot mount %s: %s", e->dir, strerror(-r));
		fuse_session_destroy(e->se);
		goto fail;
	}

	/* No SA_RESTART: the wake-up must end sem_wait with EINTR. */
	sigemptyset(&sa.sa_mask);
	sigaction(FUSE_WAKE_SIGNAL, &sa, NULL);
	/* The loop thread unblocks the wake-up itself; every other signal
	 * stays with the daemon's main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&e->thread, NULL, loop_thread, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		fuse_session_unmount(e->se);
		fuse_session_destroy(e->se);
		goto fail;
	}
	*ret = e;
	return 0;
fail:
	export_free(e);
	return r;
}

/* Step 1 of the shutdown protocol (export.h): the session's loop ends, so
 * no request is taken any more. */
static void fuse_quiesce(struct umd_export *e)
{
	struct timespec ts;

	pthread_mutex_lock(&e->lock);
	if (e->stopping) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	e->stopping = true;
	pthread_cond_broadcast(&e->cond);	/* threads waiting for pool room */
	pthread_mutex_unlock(&e->lock);

	/* libfuse 3.14's fuse_session_loop_mt sleeps in sem_wait until a
	 * worker leaves, and fuse_session_exit wakes nobody: a signal ends
	 * the wait (EINTR), the loop sees the session exited and cancels
	 * its workers in their read of /dev/fuse.  Unmounting first would
	 * not do: with a file still open (a loop device) the lazy unmount
	 * leaves the connection alive and the workers asleep.  Repeated, in
	 * case the signal lands before the loop is in sem_wait. */
	fuse_session_exit(e->se);
	pthread_mutex_lock(&e->lock);
	while (!e->loop_done) {
		pthread_kill(e->thread, FUSE_WAKE_SIGNAL);
		deadline_in(&ts, 50);
		pthread_cond_timedwait(&e->cond, &e->lock, &ts);
	}
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
}

/* Steps 2 to 4: requests in flight may answer until deadline_ns; then the
 * session is unmounted (the kernel fails what it still holds with
 * ENOTCONN, as a dead daemon's); the export is freed once the engine has
 * ended the I/O still in flight, which it does within io_timeout. */
static int fuse_stop(struct umd_export *e, uint64_t deadline_ns, uint64_t hard_ns)
{
	bool busy;

	if (!e)
		return 0;
	fuse_quiesce(e);

	/* Replies go out on the session's descriptor, which unmounting
	 * closes: let the I/O in flight finish first. */
	pthread_mutex_lock(&e->lock);
	while (e->inflight && !um_cond_wait_until(&e->cond, &e->lock, deadline_ns))
		;
	if (e->inflight)
		um_log("fuse: %s: %u requests still in flight at the drain bound: unmounting",
		       e->dir, e->inflight);
	pthread_mutex_unlock(&e->lock);

	/* Closing the descriptor aborts the connection. */
	fuse_session_unmount(e->se);

	/* Their completions still use e: only the last one lets it go. */
	pthread_mutex_lock(&e->lock);
	while (e->inflight && !um_cond_wait_until(&e->cond, &e->lock, hard_ns))
		;
	busy = e->inflight != 0;
	pthread_mutex_unlock(&e->lock);
	if (busy) {
		um_log("fuse: %s: %u requests still in the engine at the shutdown bound", e->dir,
		       e->inflight);
		return -ETIMEDOUT;	/* not freed: the daemon exits instead */
	}
	fuse_session_destroy(e->se);
	export_free(e);
	return 0;
}

const struct umd_export_ops umd_fuse_export = {
	.name = "fuse",
	.start = fuse_start,
	.quiesce = fuse_quiesce,
	.stop = fuse_stop,
};
