/* fuzz-nbd.c - umpathd's NBD export fed a whole client byte stream on a
 * socketpair: the fixed newstyle handshake (options, export names, info
 * requests) and then the transmission phase (reads, writes, flushes,
 * trims, zeroes, disconnect) against map "a" on mem paths (64 KiB: a
 * read costs at most that, and every bound check is still reached).
 *
 * The input is sent and that side closed for writing (a writer thread
 * sends what the socket buffer cannot take); the export serves the other
 * side (nbd_serve_fd: the handshake on this
 * thread, transmission on a worker) while this thread drains the replies
 * until the server closes.  Then the map's references must come back to
 * the registry's own (no client open, nothing held) - bounded wait, as
 * the worker lets go after its last reply.  '/' is not special here: the
 * bytes reach no path string. */
#undef NDEBUG
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <umpath/umpath-mem.h>

#include "daemon.h"
#include "fuzz.h"
#include "nbd-int.h"

#define FZ_MAX_INPUT 16384	/* bounds the I/O one input asks for */

static struct umd d;
static struct umd_export *ue;
static const char *const names[] = { "p0", "p1" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct umd_opts o = { .io_timeout_ms = 1000 };
	char err[256];

	if (fz_private_cwd())
		return 1;
	FZ_CHECK(umd_init(&d, &o) == 0);
	FZ_CHECK(umpath_mem_store_new(d.ctx, 64 * 1024, 2, names, 1) == 0);
	FZ_CHECK(umd_map_create(&d, "a", "0 0 1 1 round-robin 0 2 1 p0 1 p1 1",
				err, sizeof(err)) == 0);
	/* Without CAP_NET_ADMIN the socket buffer may still fill up: such an
	 * input then costs a second, not the default 10. */
	d.nbd.handshake_timeout_ms = 1000;
	FZ_CHECK(nbd_export_new(&d, &ue) == 0);
	return 0;
}

struct feed {
	int fd;
	const uint8_t *data;
	size_t size;
};

static void *writer(void *arg)
{
	struct feed *f = arg;
	size_t off = 0;

	while (off < f->size) {
		ssize_t n = send(f->fd, f->data + off, f->size - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* the server hung up: the rest is not read */
		off += (size_t)n;
	}
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* Map "a" held by nobody but the registry (and this look-up). */
static bool map_idle(void)
{
	struct umd_map *m = umd_map_get(&d, "a", false);
	bool idle;

	FZ_CHECK(m);
	pthread_mutex_lock(&d.lock);
	idle = m->opens == 0 && m->refs == 2;
	pthread_mutex_unlock(&d.lock);
	umd_map_put(m, false);
	return idle;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char sink[65536];
	static const int sndbuf = 64 << 20;
	struct feed f;
	pthread_t t;
	bool writing;
	int sv[2];

	if (size > FZ_MAX_INPUT)
		return 0;
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	/* The handshake's replies are read only after it: room for all of
	 * them (an input of options each answered with a few small packets
	 * would otherwise fill the buffer and stall the handshake until its
	 * timeout).  FORCE needs CAP_NET_ADMIN; else up to wmem_max. */
	if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* Most inputs fit in the socket buffer: sent at once, no writer
	 * thread (a thread and its wake-ups per input cost more than the
	 * server's work).  A writer sends what did not fit. */
	ssize_t n = send(sv[0], data, size, MSG_NOSIGNAL | MSG_DONTWAIT);

	f.fd = sv[0];
	f.data = data + (n > 0 ? (size_t)n : 0);
	f.size = size - (n > 0 ? (size_t)n : 0);
	writing = f.size > 0;
	if (writing)
		FZ_CHECK(pthread_create(&t, NULL, writer, &f) == 0);
	else
		shutdown(sv[0], SHUT_WR);
	/* Drained on this thread only after the handshake (see above). */
	(void)nbd_serve_fd(ue, sv[1]);	/* takes sv[1] */
	for (;;) {
		ssize_t got = recv(sv[0], sink, sizeof(sink), 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
	}
	if (writing)
		pthread_join(t, NULL);
	close(sv[0]);

	/* The server closed: its last reference goes within moments.  Yield
	 * first (usually enough), then sleep: a fixed sleep per input would
	 * bound the rate at a few hundred inputs a second. */
	for (int i = 0; !map_idle(); i++) {
		if (i == 1000 + 5000) {
			fprintf(stderr, "map a still referenced 5 s after the client left\n");
			FZ_CHECK(!"refcounts back to normal after the client leaves");
		}
		if (i < 1000)
			sched_yield();
		else
			usleep(1000);
	}
	return 0;
}
