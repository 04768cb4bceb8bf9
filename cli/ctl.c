/* ctl.c - the umpath verbs served by umpathd (ls, create, remove, reload,
 * load, table, status, message, suspend, resume, info, show, events,
 * reconfigure): one request over the control socket (ctlproto.h), its
 * output printed as received.  `events` streams: its lines are printed as
 * they arrive, until umpathd ends the stream (exit 0) or the user
 * interrupts.
 *
 * Exit status: 0 on "OK"; 1 when umpathd refused the request or cannot be
 * reached; 2 on a usage error caught here. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "ctlproto.h"
#include "util.h"

struct ctl_verb {
	const char *name;
	int min_args;		/* words after the verb */
	int max_args;		/* -1: any number */
	const char *usage;
	bool stream;		/* print the output as it comes, without end */
};

static const struct ctl_verb verbs[] = {
	{ "ls",      0, 0,  "ls", false },
	{ "create",  1, -1, "create [--ublk [--ublk-id N]] NAME [--target TARGET] TABLE...", false },
	{ "remove",  1, 2,  "remove NAME [--force]", false },
	{ "reload",  1, -1, "reload NAME [--target TARGET] TABLE...", false },
	{ "load",    1, -1, "load NAME [--target TARGET] TABLE...", false },
	{ "table",   1, 1,  "table NAME", false },
	{ "status",  1, 2,  "status NAME [--json]", false },
	{ "message", 1, -1, "message NAME ARGS...", false },
	{ "suspend", 1, 2,  "suspend NAME [--noflush]", false },
	{ "resume",  1, 1,  "resume NAME", false },
	{ "info",    1, 1,  "info NAME", false },
	{ "show",    1, 4,  "show topology|paths|maps [NAME] [--json] | show paths|maps [raw] "
	  "format FORMAT | show status | show daemon | show config", false },
	{ "add",     2, 6,  "add path PATH [to MAP] [group N]", false },
	{ "del",     2, 4,  "del path PATH [from MAP]", false },
	{ "fail",    2, 2,  "fail path PATH", false },
	{ "reinstate", 2, 2, "reinstate path PATH", false },
	{ "resize",  2, 2,  "resize map MAP", false },
	{ "events",  0, 2,  "events [NAME] [--json]", true },
	{ "reconfigure", 0, 0, "reconfigure", false },
	{ "persist", 2, 7, "persist MAP --read-keys|--read-reservation|--report-capabilities|"
	  "--register KEY|--register-ignore KEY|--unregister|--reserve TYPE|--release|--clear|"
	  "--preempt KEY|--preempt-abort KEY [--param-rk KEY] [--prout-type TYPE]", false },
	{ "mem",     1, -1, "mem store [--bare] SIZE NAME... | fault NAME STATE [ARG] | reset", false },
};

static const struct ctl_verb *find_verb(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

bool cli_ctl_is_verb(const char *name)
{
	return find_verb(name) != NULL;
}

/* The request: each word NUL-terminated, then an empty word. */
static char *build_request(int argc, char **argv, size_t *ret_len)
{
	size_t len = 1;
	char *buf, *p;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len > CTL_MAX_REQUEST || argc > CTL_MAX_WORDS)
		return NULL;
	buf = malloc(len);
	if (!buf)
		return NULL;
	p = buf;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;

		memcpy(p, argv[i], n);
		p += n;
	}
	*p = '\0';
	*ret_len = len;
	return buf;
}

/* Whether whoever answers on path may be believed.  The directory must be
 * root's or ours and not writable by others (a sticky one, as /tmp, keeps
 * others from replacing our socket): else its owner could have put a
 * socket of theirs there, e.g. /tmp/umpath-UID made by another user before
 * our daemon ever ran.  Checked before connecting, so that nothing is sent
 * to such a socket. */
static int check_dir(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];	/* path fits in one */
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return -ENAMETOOLONG;
	if (stat(dir, &st) < 0)
		return -errno;	/* connect says the same, with the path */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "its directory %s belongs to uid %u (only root or uid %u "
			 "may own it)", dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "its directory %s is writable by others (mode %04o)", dir,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* The process answering must be root or ourselves: anyone else may forge
 * any answer. */
static int check_peer(int fd, char *err, size_t errlen)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(err, errlen, "cannot tell who answers: SO_PEERCRED: %s", strerror(errno));
		return -EPERM;
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		snprintf(err, errlen, "it is served by uid %u (pid %ld), not by root or uid %u",
			 (unsigned)cred.uid, (long)cred.pid, (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

/* Connect to umpathd at path and check that it is to be trusted: the fd,
 * or -errno (-EPERM: not trusted, err says why). */
static int ctl_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	*err = '\0';
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = check_dir(path, err, errlen);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -EINTR)
			continue;
		close(fd);
		return r;
	}
	r = check_peer(fd, err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static void print_unreachable(const char *path, int r, const char *err)
{
	if (*err)
		fprintf(stderr, "umpath: not trusting umpathd at %s: %s\n", path, err);
	else
		fprintf(stderr, "umpath: cannot reach umpathd at %s: %s\n", path, strerror(-r));
}

/* Send the request.  A failure is not final: umpathd may have answered
 * (and closed) before reading it all, e.g. to refuse the peer, and that
 * answer is what the user needs to see. */
static void send_request(int fd, const char *buf, size_t len)
{
	(void)um_send_all(fd, buf, len);
}

/* The whole answer, until umpathd closes.  No timeout: a suspend waits for
 * in-flight I/O as long as the daemon's I/O deadline, which only it
 * knows; ^C ends the wait. */
static int read_reply(int fd, char **ret_buf, size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* A unix socket closed with our request unread reports
		 * ECONNRESET after the data: that is the end too. */
		if (n < 0 && errno == ECONNRESET && len)
			break;
		if (n < 0) {
			int r = -errno;

			free(buf);
			return r;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static void print_error(int argc, char **argv, const char *reason)
{
	if (argc > 1)
		fprintf(stderr, "umpath: %s %s: %s\n", argv[0], argv[1], reason);
	else
		fprintf(stderr, "umpath: %s: %s\n", argv[0], reason);
}

/* The status line, byte by byte so that nothing after it is consumed:
 * 0, or -errno (-EPROTO: none, or longer than a status line can be). */
static int read_status_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = recv(fd, buf + n, 1, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return n && errno == ECONNRESET ? -EPROTO : -errno;
		if (!r)
			return -EPROTO;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -EPROTO;
}

/* Exit status of a stream that umpathd ended without its last word (it
 * died, or was killed): apart from a refusal (1), see umpath(8). */
#define EXIT_DAEMON_DIED 3

/* A streaming verb: the status line, then every byte as it comes, until
 * umpathd closes.  It ends a stream only when it stops, and then with a
 * last line ("umpathd stopping"): exit 0; without it, umpathd died: exit
 * EXIT_DAEMON_DIED. */
static int stream_reply(int fd, int argc, char **argv, const char *path)
{
	static const char last_word[] = "umpathd stopping";
	char line[1024], buf[65536], tail[256] = "";
	size_t tail_len = 0;
	int r = read_status_line(fd, line, sizeof(line));

	if (r < 0) {
		fprintf(stderr, "umpath: %s: %s from umpathd at %s\n", argv[0],
			r == -EPROTO ? "malformed answer" : strerror(-r), path);
		return 1;
	}
	if (!strncmp(line, "ERR ", 4)) {
		char *name = line + 4, *reason = strchr(name, ' ');

		print_error(argc, argv, reason && reason[1] ? reason + 1 : name);
		return 1;
	}
	if (strcmp(line, "OK")) {
		fprintf(stderr, "umpath: %s: malformed answer from umpathd at %s\n", argv[0], path);
		return 1;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The last line, without its newline, names the end. */
			while (tail_len && tail[tail_len - 1] == '\n')
				tail[--tail_len] = '\0';
			if (!n && strstr(strrchr(tail, '\n') ? strrchr(tail, '\n') : tail, last_word))
				return 0;
			fprintf(stderr, "umpath: %s: umpathd at %s died: the stream ended %s\n",
				argv[0], path, n ? strerror(errno) : "without its last line");
			return EXIT_DAEMON_DIED;
		}
		/* Keep the end of what came, to find the last line in. */
		if ((size_t)n >= sizeof(tail) - 1) {
			memcpy(tail, buf + n - (sizeof(tail) - 1), sizeof(tail) - 1);
			tail_len = sizeof(tail) - 1;
		} else {
			if (tail_len + (size_t)n > sizeof(tail) - 1) {
				size_t drop = tail_len + (size_t)n - (sizeof(tail) - 1);

				memmove(tail, tail + drop, tail_len - drop);
				tail_len -= drop;
			}
			memcpy(tail + tail_len, buf, (size_t)n);
			tail_len += (size_t)n;
		}
		tail[tail_len] = '\0';
		/* Flushed at once: a follower piped into grep must see
		 * each event when it happens. */
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout)) {
			fprintf(stderr, "umpath: %s: writing the output: %s\n", argv[0],
				strerror(errno));
			return 1;
		}
	}
}

int cli_ctl(const char *socket_path, int argc, char **argv)
{
	const struct ctl_verb *v = find_verb(argv[0]);
	char pathbuf[512], why[512], *req, *reply = NULL, *nl;
	const char *path;
	size_t req_len, reply_len = 0;
	int fd, r;

	if (!v) {
		fprintf(stderr, "umpath: unknown command '%s'\n", argv[0]);
		return 2;
	}
	if (argc - 1 < v->min_args || (v->max_args >= 0 && argc - 1 > v->max_args)) {
		fprintf(stderr, "usage: umpath [-S SOCKET] %s\n", v->usage);
		return 2;
	}
	/* An empty word cannot travel (it ends a request).  In a table or a
	 * message it carries nothing, the words being joined by spaces, so it
	 * is left out: `create m ""` is an empty table, which the daemon
	 * refuses as such, not a "malformed request". */
	if (argc > 1 && !*argv[1]) {
		fprintf(stderr, "umpath: %s: the map name is empty\n", argv[0]);
		return 1;
	}
	if (argc > 2) {
		int n = 2;

		for (int i = 2; i < argc; i++)
			if (*argv[i])
				argv[n++] = argv[i];
		argc = n;
	}
	path = ctl_socket_path(socket_path, pathbuf, sizeof(pathbuf));
	req = build_request(argc, argv, &req_len);
	if (!req) {
		print_error(argc, argv, "request too large");
		return 1;
	}
	fd = ctl_connect(path, why, sizeof(why));
	if (fd < 0) {
		print_unreachable(path, fd, why);
		free(req);
		return 1;
	}
	send_request(fd, req, req_len);
	free(req);
	if (v->stream) {
		r = stream_reply(fd, argc, argv, path);
		close(fd);
		return r;
	}
	r = read_reply(fd, &reply, &reply_len);
	close(fd);
	if (r < 0) {
		fprintf(stderr, "umpath: %s: no answer from umpathd at %s: %s\n", argv[0], path,
			strerror(-r));
		return 1;
	}
	nl = memchr(reply, '\n', reply_len);
	if (!nl) {
		fprintf(stderr, "umpath: %s: %s from umpathd at %s\n", argv[0],
			reply_len ? "malformed answer" : "no answer", path);
		free(reply);
		return 1;
	}
	*nl = '\0';
	if (!strcmp(reply, "OK")) {
		size_t off = (size_t)(nl + 1 - reply);

		r = 0;
		if (fwrite(reply + off, 1, reply_len - off, stdout) != reply_len - off ||
		    fflush(stdout)) {
			fprintf(stderr, "umpath: %s: writing the output: %s\n", argv[0],
				strerror(errno));
			r = 1;
		}
	} else if (!strncmp(reply, "ERR ", 4)) {
		/* "ERR ENAME reason": the reason, or the errno's name alone;
		 * then maybe a line of detail, said after it. */
		char *name = reply + 4, *reason = strchr(name, ' ');
		char *detail = nl + 1, *end = memchr(detail, '\n', reply_len - (size_t)(detail - reply));
		char *full = NULL;

		reason = reason && reason[1] ? reason + 1 : name;
		if (end && end > detail) {
			*end = '\0';
			if (asprintf(&full, "%s: %s", reason, detail) < 0)
				full = NULL;
		}
		print_error(argc, argv, full ? full : reason);
		free(full);
		r = 1;
	} else {
		fprintf(stderr, "umpath: %s: malformed answer from umpathd at %s\n", argv[0], path);
		r = 1;
	}
	free(reply);
	return r;
}

int cli_ctl_request(const char *socket_path, int argc, char **argv, char **ret_reply,
		    size_t *ret_len, char *err, size_t errlen)
{
	char pathbuf[512], why[512], *req;
	const char *path = ctl_socket_path(socket_path, pathbuf, sizeof(pathbuf));
	size_t req_len;
	int fd, r;

	req = build_request(argc, argv, &req_len);
	if (!req) {
		snprintf(err, errlen, "request too large");
		return -E2BIG;
	}
	fd = ctl_connect(path, why, sizeof(why));
	if (fd < 0) {
		if (*why)
			snprintf(err, errlen, "not trusting umpathd at %s: %s", path, why);
		else
			snprintf(err, errlen, "cannot reach umpathd at %s: %s", path, strerror(-fd));
		free(req);
		return fd;
	}
	send_request(fd, req, req_len);
	free(req);
	r = read_reply(fd, ret_reply, ret_len);
	close(fd);
	if (r < 0)
		snprintf(err, errlen, "no answer from umpathd at %s: %s", path, strerror(-r));
	return r;
}
