/* nbd-int.h - the NBD export's private interfaces: the objects that its
 * three parts share, and what each part offers the others.
 *
 *   listener.c    sockets (unix, TCP), accepting, start and stop
 *   handshake.c   the fixed newstyle negotiation, one thread per client
 *   connection.c  the transmission phase on worker threads: requests in,
 *                 map I/O, replies out
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

#include "export.h"
#include "nbd-proto.h"
#include "wait.h"

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
	struct umpath_pool_wait pool_wait; /* armed while retry waits for the map's pool */
	struct nbd_req slots[CONN_SLOTS];
};

struct nbd_export {
	struct umd *d;
	int lfd;			/* listening socket, -1 for none */
	char *unix_path;
	pthread_t accept_thread;
	bool accepting;			/* accept_thread runs */
	struct worker *workers;
	unsigned nworkers;
	atomic_uint next_worker;
	atomic_bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_head conns;		/* guarded by lock */
	unsigned nconns;		/* guarded by lock */
	unsigned nhandshakes;		/* guarded by lock */
};

/* ---- handshake.c ---------------------------------------------------- */

/* Negotiate with the client on fd (blocking, with timeouts); on success
 * (0) the connection goes on to a worker, else fd is closed.  Takes fd. */
int nbd_handshake(struct nbd_export *e, int fd);

/* ---- connection.c --------------------------------------------------- */

/* Serve map m (an open reference, which the connection takes over) on fd
 * in the transmission phase.  -errno, and fd and m left to the caller, on
 * failure. */
int nbd_conn_start(struct nbd_export *e, int fd, struct umd_map *m);
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
