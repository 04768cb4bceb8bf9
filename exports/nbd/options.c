/* options.c - the NBD export's limits and access list as umpathd's
 * options and config keys set them (struct umd_nbd_opts, export.h).  The
 * one part of the export that sees the daemon's state (daemon.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* "64M", "1G", "1048576": bytes; 0 on a bad number. */
static uint64_t parse_size(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0))
		return 0;
	switch (*end) {
	case 'k': case 'K': v *= 1024; end++; break;
	case 'm': case 'M': v *= 1024 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	}
	return *end || v > 1e15 ? 0 : (uint64_t)v;
}

static int add_allow(struct umd_nbd_opts *o, const char *value)
{
	char *copy = strdup(value), *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		char **a = realloc(o->allow, (o->nallow + 1) * sizeof(*a));

		if (!a)
			goto nomem;
		o->allow = a;
		if (!(a[o->nallow] = strdup(w)))
			goto nomem;
		o->nallow++;
	}
	free(copy);
	return 0;
nomem:
	free(copy);
	return -ENOMEM;
}

int umd_nbd_opt_set(struct umd_nbd_opts *o, const char *key, const char *value, char *err,
		    size_t errlen)
{
	if (!strcmp(key, "nbd_max_connections")) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(value, &end, 10);
		if (errno || end == value || *end || v < 1 || v > 65536) {
			snprintf(err, errlen, "%s: expected a number of clients in 1..65536", key);
			return -EINVAL;
		}
		o->max_connections = (unsigned)v;
	} else if (!strcmp(key, "nbd_conn_budget")) {
		uint64_t v = parse_size(value);

		if (v < (1u << 20) || v > (64ull << 30)) {
			snprintf(err, errlen, "%s: expected a size from 1M to 64G (k, M, G suffixes)",
				 key);
			return -EINVAL;
		}
		o->conn_budget = v;
	} else if (!strcmp(key, "nbd_handshake_timeout")) {
		char *end;
		double v;

		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || !(v >= 0.1) || v > 3600) {
			snprintf(err, errlen, "%s: expected a number of seconds in [0.1, 3600]", key);
			return -EINVAL;
		}
		o->handshake_timeout_ms = (unsigned)(v * 1000 + 0.5);
	} else if (!strcmp(key, "nbd_tls")) {
		if (!strcmp(value, "off"))
			o->tls = UMD_NBD_TLS_OFF;
		else if (!strcmp(value, "on"))
			o->tls = UMD_NBD_TLS_ON;
		else if (!strcmp(value, "require"))
			o->tls = UMD_NBD_TLS_REQUIRE;
		else {
			snprintf(err, errlen, "%s: expected off, on or require", key);
			return -EINVAL;
		}
	} else if (!strcmp(key, "nbd_tls_psk") || !strcmp(key, "nbd_tls_creds")) {
		char **slot = key[8] == 'p' ? &o->tls_psk : &o->tls_creds;
		char *v = strdup(value);

		if (!v) {
			snprintf(err, errlen, "%s: out of memory", key);
			return -ENOMEM;
		}
		free(*slot);
		*slot = v;
	} else if (!strcmp(key, "nbd_allow")) {
		if (add_allow(o, value) < 0) {
			snprintf(err, errlen, "%s: out of memory", key);
			return -ENOMEM;
		}
	} else {
		snprintf(err, errlen, "unknown NBD option '%s'", key);
		return -ENOENT;
	}
	return 0;
}

void umd_nbd_opts_fini(struct umd_nbd_opts *o)
{
	for (unsigned i = 0; i < o->nallow; i++)
		free(o->allow[i]);
	free(o->allow);
	o->allow = NULL;
	o->nallow = 0;
	free(o->tls_psk);
	free(o->tls_creds);
	o->tls_psk = o->tls_creds = NULL;
}

const struct umd_nbd_opts *umd_nbd_opts(const struct umd *d)
{
	return &d->nbd;
}
