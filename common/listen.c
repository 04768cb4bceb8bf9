/* listen.c - the listening sockets of umpathd's listeners (the NBD export,
 * the metrics endpoint): a unix socket that replaces a stale one but not a
 * live one, and TCP on HOST:PORT with the port checked before getaddrinfo
 * sees it. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"
#include "util.h"

int um_listen_unix(const char *path, int *ret_fd)
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

int um_parse_tcp(const char *spec, const char *def_port, char host[256], char port[32],
		 char *why, size_t whylen)
{
	const char *colon;

	snprintf(host, 256, "127.0.0.1");
	snprintf(port, 32, "%s", def_port ? def_port : "");
	/* "", "PORT", "HOST:PORT", "[V6]:PORT" */
	if (*spec) {
		colon = strrchr(spec, ':');
		if (!colon || (spec[0] == '[' && colon < strchr(spec, ']'))) {
			snprintf(port, 32, "%s", spec);
		} else {
			size_t hl = (size_t)(colon - spec);

			if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
				spec++;
				hl -= 2;
			}
			if (hl >= 256) {
				snprintf(why, whylen, "host name too long");
				return -ENAMETOOLONG;
			}
			if (hl) {
				memcpy(host, spec, hl);
				host[hl] = '\0';
			}
			snprintf(port, 32, "%s", colon + 1);
		}
	}
	/* getaddrinfo would take 999999 modulo 65536, or a service name. */
	char *end;
	errno = 0;
	unsigned long pn = strtoul(port, &end, 10);
	if (!*port || *end || errno || pn < 1 || pn > 65535 || strspn(port, "0123456789") != strlen(port)) {
		if (*port) {
			snprintf(why, whylen, "invalid port: the port must be a number in 1..65535, not '%s'",
				 port);
			um_sanitize(why);	/* the command line's, printed back */
		} else {
			snprintf(why, whylen, "missing port");
		}
		return -EINVAL;
	}
	return 0;
}

int um_listen_tcp(const char *spec, const char *def_port, int *ret_fd, char *why, size_t whylen)
{
	char host[256], port[32];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res, *ai;
	int r, fd = -1, one = 1;

	r = um_parse_tcp(spec, def_port, host, port, why, whylen);
	if (r < 0)
		return r;
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		snprintf(why, whylen, "%s: %s", host, gai_strerror(r));
		return r == EAI_SYSTEM ? -errno : -EINVAL;
	}
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
	if (fd < 0) {
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	*ret_fd = fd;
	return 0;
}
