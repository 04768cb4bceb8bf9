/* metrics.c - umpathd's Prometheus endpoint (metrics.h): HTTP served by
 * libmicrohttpd, GET or HEAD of /metrics only, the text from show.c.
 *
 * Threads: MHD's own polling thread (MHD_USE_INTERNAL_POLLING_THREAD), not
 * the daemon's event loop.  A scrape snapshots every map, which with ten
 * thousand maps takes long enough to stall the checker's timers and the
 * control socket's accepts if it ran on the loop (whose handlers must not
 * block); on one thread of its own, scrapes are served one at a time and
 * cost the rest of the daemon nothing but the maps' short lock holds.
 *
 * Bounds: clients at once and per address, an idle timeout (a client that
 * never finishes its request is dropped), and the memory of a request's
 * line and headers (a larger one is refused by MHD with 431/414).  The
 * listening socket is ours (common/listen.c, as the NBD export's), handed
 * to MHD with MHD_OPTION_LISTEN_SOCKET, for TCP and unix sockets alike.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "show.h"
#include "util.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct umd_metrics {
	struct umd *d;
	struct umd_control *ctl;
	struct MHD_Daemon *mhd;
	char *unix_path;	/* removed at stop */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text,
			     const char *allow)
{
	struct MHD_Response *rsp =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;

	if (!rsp)
		return MHD_NO;
	MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(rsp, MHD_HTTP_HEADER_ALLOW, allow);
	r = MHD_queue_response(c, status, rsp);
	MHD_destroy_response(rsp);
	return r;
}

/* Called by MHD once the request line and headers are in (before any
 * body: a POST is answered without reading it). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct umd_metrics *m = cls;
	struct MHD_Response *rsp;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: only /metrics is served\n", NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: GET or HEAD\n",
			     "GET, HEAD");
	f = open_memstream(&buf, &len);
	if (!f)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	r = umd_show_metrics(m->d, m->ctl, f);
	if (fclose(f) && !r)
		r = -ENOMEM;
	if (r < 0) {
		free(buf);
		um_log("metrics: a scrape failed: %s", strerror(-r));
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics not available\n", NULL);
	}
	rsp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!rsp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, rsp);

	MHD_destroy_response(rsp);
	return ok;
}

/* Split spec: *ret_unix for "unix:PATH" (*ret_tcp NULL), or *ret_tcp for
 * "tcp:..." (*ret_unix NULL). */
static int parse_spec(const char *spec, const char **ret_unix, const char **ret_tcp,
		      char *why, size_t whylen)
{
	struct sockaddr_un sa;

	if (!strncmp(spec, "unix:", 5)) {
		if (!spec[5]) {
			snprintf(why, whylen, "missing socket path");
			return -EINVAL;
		}
		if (strlen(spec + 5) >= sizeof(sa.sun_path)) {
			snprintf(why, whylen, "socket path too long (at most %zu bytes)",
				 sizeof(sa.sun_path) - 1);
			return -EINVAL;
		}
		*ret_unix = spec + 5;
		*ret_tcp = NULL;
		return 0;
	}
	if (!strncmp(spec, "tcp:", 4)) {
		*ret_unix = NULL;
		*ret_tcp = spec + 4;
		return 0;
	}
	snprintf(why, whylen, "expected tcp:HOST:PORT or unix:PATH");
	return -EINVAL;
}

int umd_metrics_check(const char *spec, char *why, size_t whylen)
{
	const char *upath = NULL, *tcp = NULL;
	char host[256], port[32];
	int r = parse_spec(spec, &upath, &tcp, why, whylen);

	return r < 0 || upath ? r : um_parse_tcp(tcp, NULL, host, port, why, whylen);
}

int umd_metrics_start(struct umd *d, struct umd_control *ctl, const char *spec,
		      struct umd_metrics **ret, char *why, size_t whylen)
{
	const char *upath = NULL, *tcp = NULL;
	struct umd_metrics *m;
	int fd = -1, r;

	r = umd_metrics_check(spec, why, whylen);
	if (r < 0)
		return r;
	parse_spec(spec, &upath, &tcp, why, whylen);
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	m->d = d;
	m->ctl = ctl;
	if (upath) {
		r = um_listen_unix(upath, &fd);
		if (r < 0)
			snprintf(why, whylen, "%s", strerror(-r));
		else if (!(m->unix_path = strdup(upath)))
			r = -ENOMEM;
	} else {
		r = um_listen_tcp(tcp, NULL, &fd, why, whylen);
	}
	if (r < 0)
		goto fail;
	/* The per-address limit means nothing on a unix socket: every peer
	 * there has the same (empty) address.  MHD_USE_ITC: what lets
	 * MHD_quiesce_daemon hand the listening socket back at stop. */
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0,
				  NULL, NULL, on_request, m,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)UMD_METRICS_MAX_CONNS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  upath ? 0u : (unsigned)UMD_METRICS_MAX_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)UMD_METRICS_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)UMD_METRICS_MEMORY,
				  MHD_OPTION_END);
	if (!m->mhd) {
		r = -EIO;
		snprintf(why, whylen, "cannot start the HTTP server (libmicrohttpd)");
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (m->unix_path)
		unlink(m->unix_path);
	free(m->unix_path);
	free(m);
	return r;
}

void umd_metrics_stop(struct umd_metrics *m)
{
	if (!m)
		return;
	/* Joins MHD's thread; the listening socket was ours: close it (had
	 * MHD not given it back, MHD_stop_daemon would close it). */
	int fd = (int)MHD_quiesce_daemon(m->mhd);

	MHD_stop_daemon(m->mhd);
	if (fd >= 0)
		close(fd);
	if (m->unix_path) {
		unlink(m->unix_path);
		free(m->unix_path);
	}
	free(m);
}
