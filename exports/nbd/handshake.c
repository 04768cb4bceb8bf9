/* handshake.c - the NBD export's fixed newstyle negotiation: EXPORT_NAME,
 * GO, INFO, LIST, ABORT.
 *
 * It runs on a short-lived thread per new client with blocking I/O and
 * timeouts; it is rare and must not stall anyone.  Flush fan-out in the
 * engine makes a FLUSH cover writes of every connection, so CAN_MULTI_CONN
 * is advertised.  NBD_OPT_STRUCTURED_REPLY is answered NBD_REP_ERR_UNSUP
 * and clients fall back to simple replies.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "nbd-int.h"

/* One negotiation: its socket (blocking) and when it must be over. */
struct hs {
	int fd;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC */
	bool timed_out;
	gnutls_session_t tls;		/* after STARTTLS */
};

/* Wait until fd is ready for events or the deadline passes: 0, -ETIMEDOUT,
 * -errno. */
static int hs_wait(struct hs *h, short events)
{
	for (;;) {
		struct pollfd pfd = { .fd = h->fd, .events = events };
		struct timespec ts;
		uint64_t now;
		int r;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (now >= h->deadline_ns) {
			h->timed_out = true;
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, (int)((h->deadline_ns - now + 999999) / 1000000));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(struct hs *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		int w = hs_wait(h, POLLOUT);

		if (w < 0)
			return w;
		ssize_t r;
		if (h->tls) {
			/* After AGAIN GnuTLS wants the same buffer: p did not move. */
			r = gnutls_record_send(h->tls, p, len);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				continue;
		} else {
			r = send(h->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
		}
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int recv_all(struct hs *h, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		/* GnuTLS may hold decrypted bytes that poll cannot see. */
		int w = h->tls && gnutls_record_check_pending(h->tls) ? 0 : hs_wait(h, POLLIN);

		if (w < 0)
			return w;
		ssize_t r;
		if (h->tls) {
			r = gnutls_record_recv(h->tls, p, len);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				continue;
		} else {
			r = recv(h->fd, p, len, MSG_DONTWAIT);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
		}
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int opt_reply(struct hs *h, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	struct nbd_fixed_new_option_reply hdr = {
		.magic = htobe64(NBD_REP_MAGIC),
		.option = htobe32(opt),
		.reply = htobe32(type),
		.len = htobe32(len),
	};

	if (send_all(h, &hdr, sizeof(hdr)) < 0)
		return -1;
	return len ? send_all(h, data, len) : 0;
}

static int opt_error(struct hs *h, uint32_t opt, uint32_t type, const char *msg)
{
	return opt_reply(h, opt, type, msg, (uint32_t)strlen(msg));
}

static uint16_t export_flags(void)
{
	return NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
	       NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
}

struct list_ctx {
	struct hs *h;
	int err;
};

static void list_one(struct umd_map *m, void *opaque)
{
	struct list_ctx *l = opaque;
	uint32_t nlen = (uint32_t)strlen(m->name);
	uint8_t buf[4 + 256];
	uint32_t be = htobe32(nlen);

	if (l->err || nlen > 256)
		return;
	memcpy(buf, &be, 4);
	memcpy(buf + 4, m->name, nlen);
	if (opt_reply(l->h, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + nlen) < 0)
		l->err = -1;
}

static struct umd_map *lookup(struct nbd_export *e, const char *name)
{
	return *name ? umd_map_get(e->d, name, true) : umd_map_get_default(e->d, true);
}

/* NBD_OPT_INFO / NBD_OPT_GO: 1 to go on to transmission, 0 to go on with
 * options, -1 to drop the client. */
static int opt_info_go(struct nbd_export *e, struct hs *h, uint32_t opt, uint8_t *data, uint32_t len,
		       struct umd_map **ret_map)
{
	uint32_t nlen;
	uint16_t nreq;
	char name[MAX_OPTION_LEN + 1];
	bool want_bs = false, want_name = false;
	struct umd_map *m;

	if (len < 6)
		return opt_error(h, opt, NBD_REP_ERR_INVALID, "short request") < 0 ? -1 : 0;
	memcpy(&nlen, data, 4);
	nlen = be32toh(nlen);
	if (nlen > len - 6)
		return opt_error(h, opt, NBD_REP_ERR_INVALID, "bad name length") < 0 ? -1 : 0;
	memcpy(name, data + 4, nlen);
	name[nlen] = '\0';
	memcpy(&nreq, data + 4 + nlen, 2);
	nreq = be16toh(nreq);
	if (len != 4 + nlen + 2 + 2u * nreq)
		return opt_error(h, opt, NBD_REP_ERR_INVALID, "bad request length") < 0 ? -1 : 0;
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t;

		memcpy(&t, data + 4 + nlen + 2 + 2 * i, 2);
		t = be16toh(t);
		want_bs |= t == NBD_INFO_BLOCK_SIZE;
		want_name |= t == NBD_INFO_NAME;
	}
	if (memchr(name, '\0', nlen))
		return opt_error(h, opt, NBD_REP_ERR_INVALID, "NUL in name") < 0 ? -1 : 0;
	m = lookup(e, name);
	if (!m)
		return opt_error(h, opt, NBD_REP_ERR_UNKNOWN, "no such export") < 0 ? -1 : 0;

	uint8_t info[12];
	uint16_t t = htobe16(NBD_INFO_EXPORT), fl = htobe16(export_flags());
	uint64_t sz = htobe64(umpath_map_size(m->map));
	memcpy(info, &t, 2);
	memcpy(info + 2, &sz, 8);
	memcpy(info + 10, &fl, 2);
	if (opt_reply(h, opt, NBD_REP_INFO, info, 12) < 0)
		goto drop;
	if (want_name) {
		uint8_t nb[2 + 256];
		size_t l = strlen(m->name);
		uint16_t nt = htobe16(NBD_INFO_NAME);

		memcpy(nb, &nt, 2);
		memcpy(nb + 2, m->name, l);
		if (opt_reply(h, opt, NBD_REP_INFO, nb, (uint32_t)(2 + l)) < 0)
			goto drop;
	}
	if (want_bs) {
		uint8_t bs[14];
		uint16_t bt = htobe16(NBD_INFO_BLOCK_SIZE);
		/* The map's logical block (a 4 KiB LUN's 4096) is the least
		 * a client should send. */
		uint32_t lbs = umpath_map_block_size(m->map);
		uint32_t mn = htobe32(lbs > NBD_MIN_BLOCK ? lbs : NBD_MIN_BLOCK),
			 pr = htobe32(lbs > NBD_PREF_BLOCK ? lbs : NBD_PREF_BLOCK),
			 mx = htobe32(NBD_MAX_REQUEST);

		memcpy(bs, &bt, 2);
		memcpy(bs + 2, &mn, 4);
		memcpy(bs + 6, &pr, 4);
		memcpy(bs + 10, &mx, 4);
		if (opt_reply(h, opt, NBD_REP_INFO, bs, 14) < 0)
			goto drop;
	}
	if (opt_reply(h, opt, NBD_REP_ACK, NULL, 0) < 0)
		goto drop;
	if (opt == NBD_OPT_GO) {
		*ret_map = m;
		return 1;
	}
	umd_map_put(m, true);
	return 0;
drop:
	umd_map_put(m, true);
	return -1;
}

/* NBD_OPT_STARTTLS answered, then the TLS handshake: 0, or -1 to drop. */
static int start_tls(struct nbd_export *e, struct hs *h, uint32_t len)
{
	int r;

	if (!e->tls)
		return opt_error(h, NBD_OPT_STARTTLS, NBD_REP_ERR_UNSUP, "TLS is not configured") < 0 ?
		       -1 : 0;
	if (h->tls)
		return opt_error(h, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "TLS is already on") < 0 ?
		       -1 : 0;
	if (len)
		return opt_error(h, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "STARTTLS takes no data") < 0 ?
		       -1 : 0;
	if (opt_reply(h, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0) < 0)
		return -1;
	if (nbd_tls_session(e->tls, h->fd, &h->tls) < 0)
		return -1;
	while ((r = gnutls_handshake(h->tls)) < 0) {
		if (gnutls_error_is_fatal(r)) {
			um_log("nbd: TLS handshake failed: %s", gnutls_strerror(r));
			return -1;
		}
		if (hs_wait(h, gnutls_record_get_direction(h->tls) ? POLLOUT : POLLIN) < 0)
			return -1;
	}
	return 0;
}

int nbd_negotiate(struct nbd_export *e, int fd, uint64_t deadline_ns, struct umd_map **ret_map,
		  gnutls_session_t *ret_tls)
{
	struct nbd_new_handshake hello = {
		.magic = htobe64(NBD_MAGIC),
		.ihaveopt = htobe64(NBD_IHAVEOPT),
		.flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};
	struct hs hs = { .fd = fd, .deadline_ns = deadline_ns }, *h = &hs;
	uint32_t cflags;
	struct umd_map *m = NULL;
	uint8_t *data = NULL;

	/* Non-blocking: GnuTLS reads and writes the socket itself. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (send_all(h, &hello, sizeof(hello)) < 0 || recv_all(h, &cflags, 4) < 0)
		goto drop;
	cflags = be32toh(cflags);
	if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		goto drop;	/* unknown client flags: the protocol says disconnect */
	bool no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

	data = malloc(MAX_OPTION_LEN + 1);
	if (!data)
		goto drop;
	for (unsigned n = 0; n < MAX_OPTIONS && !atomic_load(&e->stopping); n++) {
		struct nbd_option oh;
		int r;

		if (recv_all(h, &oh, sizeof(oh)) < 0 || be64toh(oh.magic) != NBD_IHAVEOPT)
			goto drop;
		uint32_t opt = be32toh(oh.option), len = be32toh(oh.len);
		if (len > MAX_OPTION_LEN) {
			opt_error(h, opt, NBD_REP_ERR_INVALID, "option too long");
			goto drop;
		}
		if (recv_all(h, data, len) < 0)
			goto drop;
		data[len] = '\0';

		if (e->tls_required && !h->tls && opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT) {
			/* The spec: EXPORT_NAME cannot be refused, so disconnect. */
			if (opt == NBD_OPT_EXPORT_NAME ||
			    opt_error(h, opt, NBD_REP_ERR_TLS_REQD, "TLS is required: STARTTLS first") < 0)
				goto drop;
			continue;
		}
		switch (opt) {
		case NBD_OPT_STARTTLS:
			if (start_tls(e, h, len) < 0)
				goto drop;
			break;
		case NBD_OPT_EXPORT_NAME: {
			uint8_t reply[NBD_EXPORT_NAME_REPLY_SIZE + NBD_EXPORT_NAME_ZEROES];
			uint64_t sz;
			uint16_t fl = htobe16(export_flags());

			if (memchr(data, '\0', len))
				goto drop;
			m = lookup(e, (char *)data);
			if (!m)
				goto drop;	/* this option has no way to say no */
			sz = htobe64(umpath_map_size(m->map));
			memset(reply, 0, sizeof(reply));
			memcpy(reply, &sz, 8);
			memcpy(reply + 8, &fl, 2);
			if (send_all(h, reply, no_zeroes ? NBD_EXPORT_NAME_REPLY_SIZE : sizeof(reply)) < 0)
				goto drop;	/* which puts m back */
			goto go;
		}
		case NBD_OPT_ABORT:
			opt_reply(h, opt, NBD_REP_ACK, NULL, 0);
			goto drop;
		case NBD_OPT_LIST: {
			struct list_ctx l = { .h = h };

			if (len) {
				if (opt_error(h, opt, NBD_REP_ERR_INVALID, "LIST takes no data") < 0)
					goto drop;
				break;
			}
			umd_map_foreach(e->d, list_one, &l);
			if (l.err || opt_reply(h, opt, NBD_REP_ACK, NULL, 0) < 0)
				goto drop;
			break;
		}
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			r = opt_info_go(e, h, opt, data, len, &m);
			if (r < 0)
				goto drop;
			if (r > 0)
				goto go;
			break;
		default:
			if (opt_error(h, opt, NBD_REP_ERR_UNSUP, "unsupported option") < 0)
				goto drop;
			break;
		}
	}
drop:
	free(data);
	if (m)
		umd_map_put(m, true);
	if (h->tls)
		gnutls_deinit(h->tls);
	return h->timed_out ? -ETIMEDOUT : -ECONNABORTED;
go:
	free(data);
	*ret_map = m;
	*ret_tls = h->tls;
	return 0;
}
