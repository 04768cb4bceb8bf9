/* tls.c - TLS for the NBD export (GnuTLS): the server's credentials, a
 * pre-shared key file (psktool) or an X.509 certificate directory
 * (certtool), and a server session for a client that sent
 * NBD_OPT_STARTTLS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "nbd-int.h"

struct nbd_tls {
	gnutls_psk_server_credentials_t psk;
	gnutls_certificate_credentials_t x509;
	bool verify_client;		/* DIR/ca-cert.pem given: clients must show a cert */
};

static int tls_err(const char *what, const char *file, int r)
{
	um_log("nbd: TLS: %s %s: %s", what, file, gnutls_strerror(r));
	return -EINVAL;
}

int nbd_tls_new(const struct umd_nbd_opts *o, struct nbd_tls **ret)
{
	struct nbd_tls *t;
	char path[4096];
	int r;

	*ret = NULL;
	if (o->tls == UMD_NBD_TLS_OFF || (!o->tls_psk && !o->tls_creds)) {
		if (o->tls == UMD_NBD_TLS_ON || o->tls == UMD_NBD_TLS_REQUIRE) {
			um_log("nbd: --tls %s needs --tls-psk FILE or --tls-creds DIR",
			       o->tls == UMD_NBD_TLS_ON ? "on" : "require");
			return -EINVAL;
		}
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (o->tls_psk) {
		if (access(o->tls_psk, R_OK) < 0) {
			r = -errno;
			um_log("nbd: TLS: PSK file %s: %s", o->tls_psk, strerror(-r));
			goto fail;
		}
		r = gnutls_psk_allocate_server_credentials(&t->psk);
		if (r < 0 || (r = gnutls_psk_set_server_credentials_file(t->psk, o->tls_psk)) < 0) {
			r = tls_err("PSK file", o->tls_psk, r);
			goto fail;
		}
	}
	if (o->tls_creds) {
		char key[4096];

		r = gnutls_certificate_allocate_credentials(&t->x509);
		if (r < 0) {
			r = tls_err("credentials", o->tls_creds, r);
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/server-cert.pem", o->tls_creds);
		snprintf(key, sizeof(key), "%s/server-key.pem", o->tls_creds);
		r = gnutls_certificate_set_x509_key_file(t->x509, path, key, GNUTLS_X509_FMT_PEM);
		if (r < 0) {
			r = tls_err("certificate and key", path, r);
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/ca-cert.pem", o->tls_creds);
		if (access(path, R_OK) == 0) {
			r = gnutls_certificate_set_x509_trust_file(t->x509, path, GNUTLS_X509_FMT_PEM);
			if (r < 0) {
				r = tls_err("CA", path, r);
				goto fail;
			}
			t->verify_client = true;
		}
	}
	*ret = t;
	return 0;
fail:
	nbd_tls_free(t);
	return r;
}

void nbd_tls_free(struct nbd_tls *t)
{
	if (!t)
		return;
	if (t->psk)
		gnutls_psk_free_server_credentials(t->psk);
	if (t->x509)
		gnutls_certificate_free_credentials(t->x509);
	free(t);
}

int nbd_tls_session(struct nbd_tls *t, int fd, gnutls_session_t *ret)
{
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK);
	if (r < 0)
		return -ENOMEM;
	if (t->psk) {
		r = gnutls_set_default_priority_append(s, "+ECDHE-PSK:+DHE-PSK:+PSK", NULL, 0);
		if (r >= 0)
			r = gnutls_credentials_set(s, GNUTLS_CRD_PSK, t->psk);
	} else {
		r = gnutls_set_default_priority(s);
	}
	if (r >= 0 && t->x509) {
		r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
		if (r >= 0 && t->verify_client)
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	}
	if (r < 0) {
		gnutls_deinit(s);
		return -EINVAL;
	}
	gnutls_transport_set_int(s, fd);
	*ret = s;
	return 0;
}
