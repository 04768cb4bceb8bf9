/* listener.c - the NBD export: every map of umpathd is an NBD export of the
 * same name, on a unix socket or TCP.  This part listens, accepts, hands
 * each new client to a handshake thread, and starts and stops the whole.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "nbd-int.h"

struct handshake {
	struct nbd_export *e;
	int fd;
};

static void *handshake_thread(void *arg)
{
	struct handshake *h = arg;
	struct nbd_export *e = h->e;

	nbd_handshake(e, h->fd);
	free(h);
	pthread_mutex_lock(&e->lock);
	e->nhandshakes--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return NULL;
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


static void export_free(struct nbd_export *e)
{
	if (e->lfd >= 0)
		close(e->lfd);
	if (e->unix_path) {
		unlink(e->unix_path);
		free(e->unix_path);
	}
	nbd_workers_free(e);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
}

/* An export with its workers running, listening nowhere yet. */
static int export_new(struct umd *d, struct nbd_export **ret)
{
	struct nbd_export *e = calloc(1, sizeof(*e));
	const char *env = getenv("UMPATH_NBD_THREADS");
	int r;

	if (!e)
		return -ENOMEM;
	e->d = d;
	e->lfd = -1;
	pthread_mutex_init(&e->lock, NULL);
	um_cond_init_monotonic(&e->cond);
	list_init(&e->conns);
	e->nworkers = env && atoi(env) > 0 && atoi(env) <= 64 ? (unsigned)atoi(env) : DEFAULT_WORKERS;
	r = nbd_workers_start(e);
	if (r < 0) {
		export_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

int nbd_export_new(struct umd *d, struct umd_export **ret)
{
	struct nbd_export *e;
	int r = export_new(d, &e);

	if (r < 0)
		return r;
	*ret = (struct umd_export *)e;
	return 0;
}

int nbd_serve_fd(struct umd_export *ue, int fd)
{
	struct nbd_export *e = (struct nbd_export *)ue;
	int r;

	pthread_mutex_lock(&e->lock);
	e->nhandshakes++;
	pthread_mutex_unlock(&e->lock);
	r = nbd_handshake(e, fd);
	pthread_mutex_lock(&e->lock);
	e->nhandshakes--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return r;
}

static int nbd_start(struct umd *d, const char *spec, struct umd_export **ret)
{
	struct nbd_export *e;
	int r;

	r = export_new(d, &e);
	if (r < 0)
		return r;
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
	r = -pthread_create(&e->accept_thread, NULL, accept_thread, e);
	if (r)
		goto fail;
	e->accepting = true;
	*ret = (struct umd_export *)e;
	return 0;
fail:
	nbd_workers_stop(e, e->nworkers);
	export_free(e);
	return r;
}

/* The shutdown protocol (export.h). */
static int nbd_stop(struct umd_export *ue, uint64_t deadline_ns, uint64_t hard_ns)
{
	struct nbd_export *e = (struct nbd_export *)ue;
	struct nbd_conn *c;
	bool busy;

	/* 1. Stop accepting. */
	atomic_store(&e->stopping, true);
	if (e->accepting) {
		shutdown(e->lfd, SHUT_RDWR);
		pthread_join(e->accept_thread, NULL);
	}

	/* 2. End every client's input; the answers to requests in flight
	 * still go out, then each connection closes itself. */
	pthread_mutex_lock(&e->lock);
	list_for_each_entry(c, &e->conns, node)
		shutdown(c->fd, SHUT_RD);
	while ((e->nconns || e->nhandshakes) && !um_cond_wait_until(&e->cond, &e->lock, deadline_ns))
		;
	/* 3. A client that does not read its replies is cut off. */
	if (e->nconns)
		um_log("nbd: %u connections still busy at the drain bound: disconnecting", e->nconns);
	list_for_each_entry(c, &e->conns, node)
		shutdown(c->fd, SHUT_RDWR);
	while ((e->nconns || e->nhandshakes) && !um_cond_wait_until(&e->cond, &e->lock, hard_ns))
		;
	busy = e->nconns || e->nhandshakes;
	if (busy)
		um_log("nbd: %u connections, %u handshakes still running at the shutdown bound",
		       e->nconns, e->nhandshakes);
	pthread_mutex_unlock(&e->lock);
	if (busy)
		return -ETIMEDOUT;	/* 4. not freed under them: the daemon exits */

	nbd_workers_stop(e, e->nworkers);
	export_free(e);
	return 0;
}

const struct umd_export_ops umd_nbd_export = {
	.name = "nbd",
	.start = nbd_start,
	.stop = nbd_stop,
};
