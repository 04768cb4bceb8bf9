/* scenario-daemon.c - the scenario backend that drives a umpathd: the
 * dmsetup verbs go over its control socket to daemon/control.c's dispatch,
 * paths are made and faulted with the test verb `mem` (served only by a
 * umpathd run with --mem-store), and data I/O goes through its NBD export,
 * one connection per command as dd opens and closes the device.
 *
 * Without --socket, a umpathd is started for the run in a private
 * directory (umpathd beside this umpath, or $UMPATH_UMPATHD), with path
 * checkers off so that only the scenario changes path states, and stopped
 * with SIGTERM at the end.  Its log is kept and shown if it fails. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libnbd.h>

#include "cli.h"
#include "scenario.h"

#define DMN_MAX_WORDS 512

struct dmn {
	struct scn_backend b;
	char *socket;			/* the control socket */
	char *nbd;			/* "unix:PATH" or "tcp:HOST:PORT" */
	/* a umpathd of our own, or pid 0 */
	pid_t pid;
	char dir[PATH_MAX];		/* its private directory */
	int log_fd;			/* read end of its stderr */
	pthread_t log_thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready, log_ended;		/* guarded by lock */
	char *log;			/* everything it said, guarded by lock */
	size_t log_len;
};

struct scn_io {
	struct nbd_handle *h;
};

static struct dmn *to_dmn(struct scn_backend *b)
{
	return (struct dmn *)b;
}

/* ---- the control socket -------------------------------------------------- */

/* "EIO" -> -EIO; -EPROTO for a name this libc does not know. */
static int errno_from_name(const char *name)
{
	for (int e = 1; e < 4096; e++) {
		const char *n = strerrorname_np(e);

		if (n && !strcmp(n, name))
			return -e;
	}
	return -EPROTO;
}

/* One request: 0 and its output (to free) in *ret_out, or -errno with
 * umpathd's reason in err. */
static int dmn_call(struct dmn *d, char **argv, int argc, char **ret_out, char *err, size_t errlen)
{
	char *reply = NULL, *nl;
	size_t len = 0;
	int r;

	if (ret_out)
		*ret_out = NULL;
	r = cli_ctl_request(d->socket, argc, argv, &reply, &len, err, errlen);
	if (r < 0) {
		/* Said here; err stays for umpathd's own reasons. */
		fprintf(stderr, "umpath: scenario: %s\n", err);
		*err = '\0';
		return r;
	}
	nl = strchr(reply, '\n');
	if (nl && !strncmp(reply, "OK\n", 3)) {
		if (ret_out) {
			*ret_out = strdup(nl + 1);
			r = *ret_out ? 0 : -ENOMEM;
		}
	} else if (nl && !strncmp(reply, "ERR ", 4)) {
		char *name = reply + 4, *reason = strchr(name, ' ');

		*nl = '\0';
		if (reason && reason < nl)
			*reason++ = '\0';
		r = errno_from_name(name);
		snprintf(err, errlen, "%s", reason ? reason : "");
	} else {
		fprintf(stderr, "umpath: scenario: %s: malformed answer from umpathd\n", argv[0]);
		*err = '\0';
		r = -EPROTO;
	}
	free(reply);
	return r;
}

/* A request of fixed words and a table's words. */
static int dmn_call_table(struct dmn *d, const char *verb, const char *name, bool dm_line,
			  const char *table, char *err, size_t errlen)
{
	char *argv[DMN_MAX_WORDS], *copy = strdup(table), *save = NULL, len[32];
	int argc = 0, r;

	if (!copy)
		return -ENOMEM;
	argv[argc++] = (char *)verb;
	argv[argc++] = (char *)name;
	if (dm_line) {
		/* The whole dm table line, as the recorder gives it to
		 * dmsetup: the size comes with it, also for a map without
		 * paths. */
		snprintf(len, sizeof(len), "%u", SCN_SECTORS);
		argv[argc++] = (char *)"0";
		argv[argc++] = len;
		argv[argc++] = (char *)"multipath";
	}
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (argc == DMN_MAX_WORDS) {
			free(copy);
			snprintf(err, errlen, "table of more than %d words", DMN_MAX_WORDS);
			return -E2BIG;
		}
		argv[argc++] = w;
	}
	r = dmn_call(d, argv, argc, NULL, err, errlen);
	free(copy);
	return r;
}

static int dmn_call_words(struct dmn *d, int argc, char **argv)
{
	char err[512];

	return dmn_call(d, argv, argc, NULL, err, sizeof(err));
}

/* ---- commands --------------------------------------------------------- */

static int dmn_paths(struct scn_backend *b, unsigned n)
{
	char *argv[70], names[64][16], size[32], err[512];
	int argc = 0, r;

	if (n > 64)
		return -EINVAL;
	snprintf(size, sizeof(size), "%llu", (unsigned long long)SCN_SECTORS * 512);
	argv[argc++] = (char *)"mem";
	argv[argc++] = (char *)"store";
	argv[argc++] = (char *)"--bare";	/* tables name them pK */
	argv[argc++] = size;
	for (unsigned i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "p%u", i);
		argv[argc++] = names[i];
	}
	r = dmn_call(to_dmn(b), argv, argc, NULL, err, sizeof(err));
	if (r < 0 && *err)	/* e.g. a umpathd without --mem-store */
		fprintf(stderr, "umpath: scenario: paths: %s\n", err);
	return r;
}

static void dmn_paths_reset(struct scn_backend *b)
{
	char *argv[] = { (char *)"mem", (char *)"reset" };

	dmn_call_words(to_dmn(b), 2, argv);
}

static int dmn_create(struct scn_backend *b, const char *name, const char *table, char *err,
		      size_t errlen)
{
	return dmn_call_table(to_dmn(b), "create", name, true, table, err, errlen);
}

static int dmn_load(struct scn_backend *b, const char *name, const char *table, char *err,
		    size_t errlen)
{
	return dmn_call_table(to_dmn(b), "load", name, true, table, err, errlen);
}

static int dmn_suspend(struct scn_backend *b, const char *name, bool noflush)
{
	char *argv[] = { (char *)"suspend", (char *)name, (char *)"--noflush" };

	return dmn_call_words(to_dmn(b), noflush ? 3 : 2, argv);
}

static int dmn_resume(struct scn_backend *b, const char *name)
{
	char *argv[] = { (char *)"resume", (char *)name };

	return dmn_call_words(to_dmn(b), 2, argv);
}

static int dmn_remove(struct scn_backend *b, const char *name)
{
	char *argv[] = { (char *)"remove", (char *)name };

	return dmn_call_words(to_dmn(b), 2, argv);
}

/* "0 131072 multipath PARAMS\n" -> "PARAMS", as the recorder strips it. */
static int dmn_status(struct scn_backend *b, const char *name, bool table, char *buf, size_t len)
{
	char *argv[] = { table ? (char *)"table" : (char *)"status", (char *)name };
	char err[512], *out, *p;
	int r = dmn_call(to_dmn(b), argv, 2, &out, err, sizeof(err));

	if (r < 0)
		return r;
	out[strcspn(out, "\n")] = '\0';
	p = out;
	if (!strncmp(p, "0 ", 2)) {
		p += 2 + strspn(p + 2, "0123456789");
		if (!strncmp(p, " multipath ", 11))
			p += 11;
		else
			p = out;
	}
	snprintf(buf, len, "%s", p);
	free(out);
	return 0;
}

/* queued_ios + inflight_ios of `show maps NAME --json`. */
static int dmn_busy(struct scn_backend *b, const char *name)
{
	char *argv[] = { (char *)"show", (char *)"maps", (char *)name, (char *)"--json" };
	static const char *const keys[] = { "\"queued_ios\":", "\"inflight_ios\":" };
	char err[512], *out;
	long n = 0;
	int r = dmn_call(to_dmn(b), argv, 4, &out, err, sizeof(err));

	if (r < 0)
		return r;
	for (unsigned i = 0; i < 2; i++) {
		const char *p = strstr(out, keys[i]);

		if (!p) {
			r = -EPROTO;
			break;
		}
		n += strtol(p + strlen(keys[i]), NULL, 10);
	}
	free(out);
	return r < 0 ? r : (int)n;
}

static int dmn_message(struct scn_backend *b, const char *name, int argc, char **argv)
{
	char *words[DMN_MAX_WORDS];

	if (argc + 2 > DMN_MAX_WORDS)
		return -E2BIG;
	words[0] = (char *)"message";
	words[1] = (char *)name;
	memcpy(words + 2, argv, (size_t)argc * sizeof(*argv));
	return dmn_call_words(to_dmn(b), argc + 2, words);
}

static int dmn_set_online(struct scn_backend *b, const char *path, bool online)
{
	char *argv[] = { (char *)"mem", (char *)"fault", (char *)path,
			 online ? (char *)"online" : (char *)"offline" };

	return dmn_call_words(to_dmn(b), 4, argv);
}

/* ---- data I/O through the NBD export ------------------------------------ */

static int nbd_err(struct nbd_handle *h, const char *what, const char *name)
{
	int e = nbd_get_errno();

	fprintf(stderr, "umpath: scenario: %s %s: %s\n", what, name, nbd_get_error());
	return e > 0 ? -e : -EIO;
}

static int dmn_io_open(struct scn_backend *b, const char *name, struct scn_io **ret)
{
	struct dmn *d = to_dmn(b);
	struct scn_io *io = calloc(1, sizeof(*io));
	int r = -ENOMEM;

	if (!io || !(io->h = nbd_create()))
		goto fail;
	if (nbd_set_export_name(io->h, name) < 0) {
		r = nbd_err(io->h, "export", name);
		goto fail;
	}
	if (!strncmp(d->nbd, "unix:", 5)) {
		r = nbd_connect_unix(io->h, d->nbd + 5);
	} else {
		char host[256];
		const char *colon = strrchr(d->nbd + 4, ':');

		if (strncmp(d->nbd, "tcp:", 4) || !colon ||
		    (size_t)(colon - (d->nbd + 4)) >= sizeof(host)) {
			fprintf(stderr, "umpath: scenario: --nbd %s: expected unix:PATH or tcp:HOST:PORT\n",
				d->nbd);
			r = -EINVAL;
			goto fail;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - (d->nbd + 4)), d->nbd + 4);
		r = nbd_connect_tcp(io->h, host, colon + 1);
	}
	if (r < 0) {
		/* No such export: what opening a missing /dev/mapper node
		 * gives the recorder. */
		r = nbd_get_errno() == ENOENT ? -ENXIO : nbd_err(io->h, "connect to", name);
		goto fail;
	}
	*ret = io;
	return 0;
fail:
	if (io && io->h)
		nbd_close(io->h);
	free(io);
	return r;
}

static int dmn_io(struct scn_io *io, bool write, uint64_t offset, void *buf, size_t len)
{
	int r = write ? nbd_pwrite(io->h, buf, len, offset, 0) : nbd_pread(io->h, buf, len, offset, 0);

	if (r < 0) {
		r = nbd_get_errno();
		return r > 0 ? -r : -EIO;
	}
	return 0;
}

/* Waits for umpathd to close the connection: by then it has let go of the
 * map (nbd-server.c drops it first), as a closed block device is. */
static void dmn_io_close(struct scn_io *io)
{
	nbd_shutdown(io->h, 0);
	nbd_close(io->h);
	free(io);
}

/* ---- a umpathd of our own ----------------------------------------------- */

static void *log_thread(void *arg)
{
	struct dmn *d = arg;
	char buf[4096];
	size_t line_start = 0;

	for (;;) {
		ssize_t n = read(d->log_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&d->lock);
		if (n <= 0) {
			d->log_ended = true;
			pthread_cond_broadcast(&d->cond);
			pthread_mutex_unlock(&d->lock);
			return NULL;
		}
		char *nl = realloc(d->log, d->log_len + (size_t)n + 1);
		if (nl) {
			d->log = nl;
			memcpy(d->log + d->log_len, buf, (size_t)n);
			d->log_len += (size_t)n;
			d->log[d->log_len] = '\0';
			/* umpathd says "ready" once its sockets are up. */
			for (char *p; !d->ready && (p = strchr(d->log + line_start, '\n'));) {
				*p = '\0';
				size_t l = strlen(d->log + line_start);
				if (l >= 6 && !strcmp(d->log + line_start + l - 6, " ready"))
					d->ready = true;
				*p = '\n';
				line_start = (size_t)(p + 1 - d->log);
			}
			if (d->ready)
				pthread_cond_broadcast(&d->cond);
		}
		pthread_mutex_unlock(&d->lock);
	}
}

static void print_log(struct dmn *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->log_len)
		fprintf(stderr, "umpath: scenario: umpathd's log:\n%s", d->log);
	pthread_mutex_unlock(&d->lock);
}

/* umpathd beside this program (the build tree, an installed pair), or
 * $UMPATH_UMPATHD, or the PATH's. */
static void find_umpathd(char *buf, size_t len)
{
	const char *env = getenv("UMPATH_UMPATHD");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(buf, len, "%s/umpathd", self) < (int)len && !access(buf, X_OK))
				return;
		}
	}
	snprintf(buf, len, "umpathd");
}

static int start_umpathd(struct dmn *d)
{
	const char *tmp = getenv("TMPDIR");
	char bin[PATH_MAX + 16], control[PATH_MAX + 16], nbd[PATH_MAX + 16], conf[PATH_MAX + 16];
	int pipefd[2], fd, r;

	snprintf(d->dir, sizeof(d->dir), "%s/umpath-scenario-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->dir)) {
		r = -errno;
		fprintf(stderr, "umpath: scenario: mkdtemp %s: %s\n", d->dir, strerror(errno));
		d->dir[0] = '\0';
		return r;
	}
	snprintf(control, sizeof(control), "%s/control", d->dir);
	snprintf(nbd, sizeof(nbd), "unix:%s/nbd.sock", d->dir);
	/* An empty configuration: not the machine's /etc/umpath.conf. */
	snprintf(conf, sizeof(conf), "%s/umpath.conf", d->dir);
	fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		fprintf(stderr, "umpath: scenario: %s: %s\n", conf, strerror(errno));
		return r;
	}
	close(fd);
	d->socket = strdup(control);
	d->nbd = strdup(nbd);
	if (!d->socket || !d->nbd)
		return -ENOMEM;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	find_umpathd(bin, sizeof(bin));
	d->pid = fork();
	if (d->pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		d->pid = 0;
		return r;
	}
	if (!d->pid) {
		int devnull = open("/dev/null", O_RDWR);

		/* Never outlive the scenario. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
		    dup2(pipefd[1], 2) < 0)
			_exit(127);
		execlp(bin, "umpathd", "--control", control, "--nbd", nbd, "--config", conf,
		       /* the run's stores come from `mem store`: this one only
			* turns the verb on */
		       "--mem-store", "512:umpath-scenario",
		       /* only the scenario changes path states */
		       "--policy", "path_checker=none", (char *)NULL);
		fprintf(stderr, "umpath: scenario: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	d->log_fd = pipefd[0];
	r = -pthread_create(&d->log_thread, NULL, log_thread, d);
	if (r < 0) {
		close(d->log_fd);
		d->log_fd = -1;
		return r;
	}
	pthread_mutex_lock(&d->lock);
	while (!d->ready && !d->log_ended)
		pthread_cond_wait(&d->cond, &d->lock);
	r = d->ready ? 0 : -ESRCH;
	pthread_mutex_unlock(&d->lock);
	if (r < 0) {
		fprintf(stderr, "umpath: scenario: umpathd (%s) ended before it was ready\n", bin);
		print_log(d);
	}
	return r;
}

static void rm_dir(struct dmn *d)
{
	static const char *const files[] = { "umpath.conf", "control", "nbd.sock" };
	char path[PATH_MAX + 32];

	if (!d->dir[0])
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->dir, files[i]);
		unlink(path);
	}
	rmdir(d->dir);
}

static void stop_umpathd(struct dmn *d)
{
	int status = 0;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "umpath: scenario: umpathd ended badly (status 0x%x)\n",
				(unsigned)status);
			if (d->log_fd >= 0)
				pthread_join(d->log_thread, NULL);
			d->log_fd = -1;
			print_log(d);
		}
	}
	if (d->log_fd >= 0) {
		pthread_join(d->log_thread, NULL);
		close(d->log_fd);
	}
	d->log_fd = -1;
	rm_dir(d);
}

static void dmn_free(struct scn_backend *b)
{
	struct dmn *d = to_dmn(b);

	stop_umpathd(d);
	free(d->socket);
	free(d->nbd);
	free(d->log);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

static const struct scn_backend_ops dmn_ops = {
	.paths = dmn_paths,
	.paths_reset = dmn_paths_reset,
	.create = dmn_create,
	.load = dmn_load,
	.suspend = dmn_suspend,
	.resume = dmn_resume,
	.remove = dmn_remove,
	.status = dmn_status,
	.busy = dmn_busy,
	.message = dmn_message,
	.set_online = dmn_set_online,
	.io_open = dmn_io_open,
	.io = dmn_io,
	.io_close = dmn_io_close,
	.free = dmn_free,
};

int scn_daemon_new(const char *socket, const char *nbd, struct scn_backend **ret)
{
	struct dmn *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->b.ops = &dmn_ops;
	d->log_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	if (socket) {
		d->socket = strdup(socket);
		d->nbd = strdup(nbd);
		r = d->socket && d->nbd ? 0 : -ENOMEM;
	} else {
		r = start_umpathd(d);
	}
	if (r < 0) {
		dmn_free(&d->b);
		return r;
	}
	*ret = &d->b;
	return 0;
}
