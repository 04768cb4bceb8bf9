/* nbd-int.h - the NBD export's private interfaces: the objects that its
 * three parts share, and what each part offers the others.
 *
 *   listener.c    sockets (unix, TCP), accepting, start and stop
 *   handshake.c   the fixed newstyle negotiation, one thread per client
 *   connection.c  the transmission phase on worker threads: requests in,
 *                 map I/O, replies out
 *   tls.c         GnuTLS credentials and sessions (STARTTLS)
 *   options.c     the limits as umpathd's options and config set them
 *
 * The protocol's numbers are in nbd-proto.h.
 */
#ifndef UMPATH_NBD_INT_H
#define UMPATH_NBD_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "export.h"
#include "nbd-proto.h"
#include "wait.h"

#define NBD_MAX_REQUEST (32u << 20)	/* advertised as the maximum block size */
#define NBD_PREF_BLOCK 4096u
#define NBD_MIN_BLOCK 512u
#define CONN_SLOTS 128			/* requests in flight per connection */
#define RBUF_SIZE (256u << 10)
#define SLOT_KEEP (1u << 20)		/* a slot keeps a buffer up to this size */
#define MAX_HANDSHAKES 64		/* negotiating at once; the oldest is evicted */
#define MAX_OPTIONS 64
#define MAX_OPTION_LEN 4096u
#define DEFAULT_WORKERS 2
#define NBD_INLINE_STUCK_NS 10000000u	/* an inline write blocked this long: replace its thread */
#define NBD_WATCH_NS 5000000u		/* the watcher's period while inline writes happen */
#define NBD_WATCH_IDLE 20u		/* looks finding none running: the watcher sleeps */
#define NBD_MAX_SPARE_THREADS 32u	/* threads beyond the workers' (blocked or parked) */

struct nbd_acl;
struct nbd_conn;
struct nbd_export;

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
	struct nbd_simple_reply reply;
	size_t out_len, out_off;	/* reply bytes to send, sent */
};

/* A worker: an epoll set of connections and the thread serving it.  The
 * thread reads requests and, for buffered writes to local files, makes the
 * write itself (inline, umpath_inline_allow).  One blocked in such a write
 * longer than NBD_INLINE_STUCK_NS is replaced by another thread (the
 * export's watcher, connection.c), so that a hung path holds a thread, not
 * the worker's connections. */
struct worker {
	struct nbd_export *e;
	int epfd;
	int efd;			/* kicks: a connection has work for us */
	struct nbd_thr *thr;		/* serving now; guarded by e->thr_lock */
	pthread_mutex_t lock;
	struct list_head kicked;	/* guarded by lock */
	bool stop;			/* guarded by lock */
};

struct nbd_thr {
	struct list_head node;		/* in e->thrs; guarded by e->thr_lock */
	struct list_head spare_node;	/* in e->spares while it has no worker */
	struct nbd_export *e;
	pthread_t thread;
	struct worker *w;		/* served, NULL: parked; guarded by e->thr_lock */
	bool rescan;			/* a replacement: look at every connection first */
	bool exited;			/* guarded by e->thr_lock: to be joined */
	struct umpath_inline guard;	/* its inline write, watched */
	atomic_bool allowing;		/* around a submit that may write inline */
};

struct nbd_conn {
	struct list_head node;		/* in e->conns, guarded by e->lock */
	struct list_head kick_node;	/* in w->kicked, guarded by w->lock */
	struct list_head dead_node;	/* closed, to be freed by the worker */
	bool kick_queued;		/* guarded by w->lock */
	struct nbd_export *e;
	struct worker *w;
	int fd;
	gnutls_session_t tls;		/* NULL: plain; sends under lock, receives on the worker */
	struct umd_map *m;
	struct umpath_map *map;
	uint64_t size;

	/* input: the worker thread only */
	uint8_t *rbuf;
	size_t rpos, rlen;
	struct nbd_req *cur;		/* write whose payload is being read */
	size_t payload_got;
	bool discard;			/* cur's payload is dropped: it was refused */
	bool in_dead;			/* EOF, error, DISC or protocol error */

	pthread_mutex_t lock;
	unsigned inflight;		/* guarded by lock: slots in use */
	size_t held;			/* guarded by lock: bytes of the slots' buffers */
	struct list_head free_slots;	/* guarded by lock */
	struct list_head outq;		/* guarded by lock: replies partly sent */
	struct list_head retry;		/* guarded by lock: submit said -EAGAIN */
	bool paused;			/* guarded by lock: out of slots or bytes */
	bool out_dead;			/* guarded by lock: sending failed */
	bool want_out;			/* guarded by lock: EPOLLOUT on */
	bool closed;			/* guarded by lock */
	struct umpath_pool_wait pool_wait; /* armed while retry waits for the map's pool */
	struct nbd_req slots[CONN_SLOTS];
};

struct nbd_export {
	struct umd *d;
	struct umd_nbd_opts opts;	/* limits, from d at start */
	int lfd;			/* listening socket, -1 for none */
	char *unix_path;
	pthread_t accept_thread;
	bool accepting;			/* accept_thread runs */
	struct nbd_tls *tls;		/* credentials, NULL without TLS */
	bool tls_required;		/* refuse clients that do not STARTTLS */
	struct nbd_acl *acl;		/* TCP peers let in; none: all */
	unsigned nacl;
	struct worker *workers;
	unsigned nworkers;
	bool inline_writes;		/* UMPATH_NBD_INLINE, default on */
	pthread_mutex_t thr_lock;
	pthread_cond_t thr_cond;	/* a parked thread got a worker, or stop */
	pthread_cond_t watch_cond;	/* the watcher: inline writes began, or stop */
	struct list_head thrs;		/* every nbd_thr not yet joined; guarded by thr_lock */
	struct list_head spares;	/* nbd_thr without a worker; guarded by thr_lock */
	unsigned nthrs;			/* in thrs and not exited; guarded by thr_lock */
	bool thr_stop;			/* guarded by thr_lock */
	atomic_bool watch_on;		/* the watcher looks every NBD_WATCH_NS */
	pthread_t watch_thread;
	bool watch_started;
	unsigned long takeovers;	/* threads replaced for a blocked write; guarded by thr_lock */
	atomic_uint next_worker;
	atomic_bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_head conns;		/* guarded by lock */
	unsigned nconns;		/* guarded by lock */
	unsigned nhandshakes;		/* guarded by lock: handshake threads */
	struct list_head handshakes;	/* guarded by lock: negotiating, oldest first */
	unsigned nlisted;		/* guarded by lock: length of handshakes */
	uint64_t log_last_ns;		/* guarded by lock: refusals logged ... */
	unsigned log_quiet;		/* guarded by lock: ... and not */
};

/* A client negotiating. */
struct nbd_handshake {
	struct list_head node;		/* in e->handshakes while listed, guarded by e->lock */
	struct nbd_export *e;
	int fd;				/* the handshake thread's: it closes it */
	uint64_t start_ns;		/* CLOCK_MONOTONIC */
	char peer[64];			/* for the log */
};

/* ---- handshake.c ---------------------------------------------------- */

/* Negotiate with the client on fd until it asks for an export (0, an open
 * reference in *ret_map, and in *ret_tls the TLS session if it did
 * STARTTLS, else NULL), or fails, or deadline_ns (CLOCK_MONOTONIC) passes
 * (-ETIMEDOUT).  Never closes fd. */
int nbd_negotiate(struct nbd_export *e, int fd, uint64_t deadline_ns, struct umd_map **ret_map,
		  gnutls_session_t *ret_tls);

/* ---- tls.c ------------------------------------------------------------ */

struct nbd_tls;
/* Credentials from o (*ret NULL when TLS is off); -EINVAL, logged, when
 * they cannot be loaded. */
int nbd_tls_new(const struct umd_nbd_opts *o, struct nbd_tls **ret);
void nbd_tls_free(struct nbd_tls *t);
/* A server session on the non-blocking socket fd, not yet shaken hands. */
int nbd_tls_session(struct nbd_tls *t, int fd, gnutls_session_t *ret);

/* ---- connection.c --------------------------------------------------- */

/* Serve map m (an open reference, which the connection takes over) on fd
 * in the transmission phase, through tls if not NULL (taken too).  -errno, and fd and m left to the caller, on
 * failure. */
int nbd_conn_start(struct nbd_export *e, int fd, struct umd_map *m, gnutls_session_t tls);
/* Set up and start e->nworkers worker threads; on failure the ones
 * started are stopped again (nbd_workers_free still to be called). */
int nbd_workers_start(struct nbd_export *e);
/* Stop and join the first n workers. */
void nbd_workers_stop(struct nbd_export *e, unsigned n);
/* Free what nbd_workers_start set up, also half of it. */
void nbd_workers_free(struct nbd_export *e);

/* ---- listener.c ------------------------------------------------------ */

/* For tests and fuzzing: an export that listens nowhere (its stop() is
 * umd_nbd_export.stop) ... */
int nbd_export_new(struct umd *d, struct umd_export **ret);
/* ... and a connected socket served on it as if accepted: the handshake
 * runs on the calling thread, then transmission on a worker.  Takes fd.
 * Returns once the handshake is over (0 when transmission started). */
int nbd_serve_fd(struct umd_export *ue, int fd);

#endif
