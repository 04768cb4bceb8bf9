/* listener.c - the NBD export: every map of umpathd is an NBD export of the
 * same name, on a unix socket or TCP.  This part listens, accepts, hands
 * each new client to a handshake thread, and starts and stops the whole.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "nbd-int.h"
#include "util.h"

/* ---- who may connect ------------------------------------------------ */

struct nbd_acl {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;		/* leading bits that must match */
};

/* "ADDR" or "ADDR/PREFIX", IPv4 or IPv6. */
static int acl_parse(const char *spec, struct nbd_acl *ret)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	struct nbd_acl a = { 0 };
	unsigned max;

	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, a.addr) == 1) {
		a.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, a.addr) == 1) {
		a.family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	a.prefix = max;
	if (slash) {
		errno = 0;
		unsigned long v = strtoul(slash + 1, &end, 10);

		if (errno || end == slash + 1 || *end || v > max)
			return -EINVAL;
		a.prefix = (unsigned)v;
	}
	*ret = a;
	return 0;
}

static bool acl_match(const struct nbd_acl *a, int family, const uint8_t *addr)
{
	unsigned full = a->prefix / 8, rest = a->prefix % 8;

	if (a->family != family || memcmp(a->addr, addr, full))
		return false;
	return !rest || !((a->addr[full] ^ addr[full]) & (0xff00 >> rest));
}

/* The peer of a TCP connection as text, and whether the allow list lets it
 * in (always, with no list). */
static bool peer_allowed(struct nbd_export *e, const struct sockaddr_storage *ss, char *peer,
			 size_t len)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	const uint8_t *addr;
	int family = ss->ss_family;
	char host[INET6_ADDRSTRLEN];

	if (family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		addr = (const uint8_t *)&in->sin_addr;
		inet_ntop(AF_INET, addr, host, sizeof(host));
		snprintf(peer, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		addr = (const uint8_t *)&in6->sin6_addr;
		inet_ntop(AF_INET6, addr, host, sizeof(host));
		snprintf(peer, len, "[%s]:%u", host, ntohs(in6->sin6_port));
		if (!memcmp(addr, v4mapped, 12)) {
			family = AF_INET;	/* an IPv4 peer on a dual-stack socket */
			addr += 12;
		}
	} else {
		snprintf(peer, len, "unix socket");
		return true;	/* the file's permissions decide */
	}
	if (!e->nacl)
		return true;
	for (unsigned i = 0; i < e->nacl; i++)
		if (acl_match(&e->acl[i], family, addr))
			return true;
	return false;
}

/* ---- accepting ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A peer can make us log on every connection: at most a line a second,
 * saying how many were not logged. */
static void log_refusal(struct nbd_export *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_refusal(struct nbd_export *e, const char *fmt, ...)
{
	uint64_t now = now_ns();
	char msg[512];
	va_list ap;

	pthread_mutex_lock(&e->lock);
	bool say = !e->log_last_ns || now - e->log_last_ns >= 1000000000u;
	unsigned quiet = e->log_quiet;
	if (say) {
		e->log_last_ns = now;
		e->log_quiet = 0;
	} else {
		e->log_quiet++;
	}
	pthread_mutex_unlock(&e->lock);
	if (!say)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (quiet)
		um_log("nbd: %s (and %u more refused or dropped in the last second)", msg, quiet);
	else
		um_log("nbd: %s", msg);
}

/* Negotiate, then off the list of negotiations (so that nobody evicts the
 * descriptor any more) and on to transmission, or closed. */
static int handshake_run(struct nbd_export *e, struct nbd_handshake *h)
{
	struct umd_map *m = NULL;
	gnutls_session_t tls = NULL;
	int r = nbd_negotiate(e, h->fd, h->start_ns + e->opts.handshake_timeout_ms * 1000000ull, &m,
			      &tls);

	pthread_mutex_lock(&e->lock);
	if (!list_empty(&h->node)) {
		list_del_init(&h->node);
		e->nlisted--;
	}
	pthread_mutex_unlock(&e->lock);
	if (r == -ETIMEDOUT)
		log_refusal(e, "%s: dropped: no handshake within %u ms", h->peer,
			    e->opts.handshake_timeout_ms);
	if (!r) {
		r = nbd_conn_start(e, h->fd, m, tls);
		if (r < 0) {
			umd_map_put(m, true);
			if (tls)
				gnutls_deinit(tls);
		}
	}
	if (r < 0)
		close(h->fd);
	return r;
}

static void *handshake_thread(void *arg)
{
	struct nbd_handshake *h = arg;
	struct nbd_export *e = h->e;

	handshake_run(e, h);
	free(h);
	pthread_mutex_lock(&e->lock);
	e->nhandshakes--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* End the oldest negotiation still going on; the caller holds e->lock. */
static void evict_oldest_locked(struct nbd_export *e, const char *why, char *ret_peer, size_t len)
{
	struct nbd_handshake *old = list_first_entry(&e->handshakes, struct nbd_handshake, node);

	list_del_init(&old->node);
	e->nlisted--;
	/* Its thread still owns the descriptor: it fails, then closes it. */
	shutdown(old->fd, SHUT_RDWR);
	snprintf(ret_peer, len, "%s: dropped after %.1f s of handshake: %s", old->peer,
		 (double)(now_ns() - old->start_ns) / 1e9, why);
}

/* Admit a new client: 0, or -EBUSY when the connection limit is reached
 * with no negotiation left to evict.  Oldest-first eviction keeps
 * half-open connections from locking real clients out. */
static int admit(struct nbd_export *e, struct nbd_handshake *h)
{
	char evicted[256] = "";
	unsigned conns;
	int r = 0;

	pthread_mutex_lock(&e->lock);
	conns = e->nconns + e->nlisted;
	if (e->nlisted && (e->nlisted >= MAX_HANDSHAKES || conns >= e->opts.max_connections))
		evict_oldest_locked(e, e->nlisted >= MAX_HANDSHAKES ?
				    "too many clients negotiating at once" :
				    "at the connection limit (nbd_max_connections)",
				    evicted, sizeof(evicted));
	else if (conns >= e->opts.max_connections)
		r = -EBUSY;
	if (!r) {
		list_add_tail(&h->node, &e->handshakes);
		e->nlisted++;
		e->nhandshakes++;
	}
	pthread_mutex_unlock(&e->lock);
	if (*evicted)
		log_refusal(e, "%s", evicted);
	if (r)
		log_refusal(e, "%s: refused: %u clients connected (nbd_max_connections)", h->peer,
			    conns);
	return r;
}

static void *accept_thread(void *arg)
{
	struct nbd_export *e = arg;

	while (!atomic_load(&e->stopping)) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(e->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

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
		struct nbd_handshake *h = calloc(1, sizeof(*h));
		pthread_t t;
		pthread_attr_t attr;

		if (!h) {
			close(fd);
			continue;
		}
		h->e = e;
		h->fd = fd;
		h->start_ns = now_ns();
		list_init(&h->node);
		if (!peer_allowed(e, &ss, h->peer, sizeof(h->peer))) {
			log_refusal(e, "%s: refused: not in the allowed peers (nbd_allow)", h->peer);
			goto refuse;
		}
		if (admit(e, h) < 0)
			goto refuse;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, handshake_thread, h)) {
			pthread_mutex_lock(&e->lock);
			if (!list_empty(&h->node)) {
				list_del_init(&h->node);
				e->nlisted--;
			}
			e->nhandshakes--;
			pthread_mutex_unlock(&e->lock);
			pthread_attr_destroy(&attr);
			goto refuse;
		}
		pthread_attr_destroy(&attr);
		continue;
refuse:
		close(fd);
		free(h);
	}
	return NULL;
}

/* ---- listening ------------------------------------------------------ */

static void export_free(struct nbd_export *e)
{
	if (e->lfd >= 0)
		close(e->lfd);
	if (e->unix_path) {
		unlink(e->unix_path);
		free(e->unix_path);
	}
	nbd_workers_free(e);
	nbd_tls_free(e->tls);
	free(e->acl);
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
	list_init(&e->handshakes);
	e->opts = *umd_nbd_opts(d);
	if (!e->opts.max_connections)
		e->opts.max_connections = UMD_NBD_MAX_CONNECTIONS;
	if (!e->opts.conn_budget)
		e->opts.conn_budget = UMD_NBD_CONN_BUDGET;
	if (!e->opts.handshake_timeout_ms)
		e->opts.handshake_timeout_ms = UMD_NBD_HANDSHAKE_TIMEOUT_MS;
	e->opts.allow = NULL;	/* parsed into e->acl by nbd_start */
	e->opts.nallow = 0;
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
	struct nbd_handshake h = { .e = e, .fd = fd, .start_ns = now_ns(), .peer = "fd" };
	int r;

	list_init(&h.node);	/* not listed: nobody evicts it */
	pthread_mutex_lock(&e->lock);
	e->nhandshakes++;
	pthread_mutex_unlock(&e->lock);
	r = handshake_run(e, &h);
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
	const struct umd_nbd_opts *o = umd_nbd_opts(d);
	r = nbd_tls_new(o, &e->tls);
	if (r < 0)
		goto fail;
	e->tls_required = e->tls && o->tls != UMD_NBD_TLS_ON;
	if (o->nallow) {
		e->acl = calloc(o->nallow, sizeof(*e->acl));
		r = e->acl ? 0 : -ENOMEM;
		for (unsigned i = 0; !r && i < o->nallow; i++) {
			r = acl_parse(o->allow[i], &e->acl[i]);
			if (r < 0) {
				char shown[128];

				snprintf(shown, sizeof(shown), "%s", o->allow[i]);
				um_sanitize(shown);
				um_log("nbd: allowed peer '%s': not an IPv4 or IPv6 address, "
				       "with or without /PREFIX", shown);
			}
		}
		if (r < 0)
			goto fail;
		e->nacl = o->nallow;
	}
	if (!strncmp(spec, "unix:", 5)) {
		r = um_listen_unix(spec + 5, &e->lfd);
		if (!r && !(e->unix_path = strdup(spec + 5)))
			r = -ENOMEM;
	} else if (!strncmp(spec, "tcp:", 4) || !strcmp(spec, "tcp")) {
		char why[128] = "";

		r = um_listen_tcp(spec[3] ? spec + 4 : "", "10809", &e->lfd, why, sizeof(why));
		if (r == -EINVAL)
			um_log("nbd: tcp: %s", why);
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
/* 1. Stop accepting: no new client; negotiations still going on end at
 * once (their threads close their sockets).  Idempotent. */
static void nbd_quiesce(struct umd_export *ue)
{
	struct nbd_export *e = (struct nbd_export *)ue;

	atomic_store(&e->stopping, true);
	if (e->accepting) {
		shutdown(e->lfd, SHUT_RDWR);
		pthread_join(e->accept_thread, NULL);
		e->accepting = false;
	}
	pthread_mutex_lock(&e->lock);
	while (!list_empty(&e->handshakes)) {
		struct nbd_handshake *h = list_first_entry(&e->handshakes, struct nbd_handshake, node);

		list_del_init(&h->node);
		e->nlisted--;
		shutdown(h->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&e->lock);
}

static int nbd_stop(struct umd_export *ue, uint64_t deadline_ns, uint64_t hard_ns)
{
	struct nbd_export *e = (struct nbd_export *)ue;
	struct nbd_conn *c;
	bool busy;

	nbd_quiesce(ue);	/* if the daemon did not already */

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
	.quiesce = nbd_quiesce,
	.stop = nbd_stop,
};
