/* nbdtest.h - what the nbd transport's integration tests share: a scratch
 * directory (removed at exit), an image file, nbdkit servers on Unix
 * sockets in it (started with --exit-with-parent, so none outlives a
 * test), and a driver that keeps a number of I/Os in flight through a map,
 * timing each and checking what comes back.  Exit 77 (skip) when nbdkit or
 * a filter a test needs is not installed. */
#ifndef UMPATH_NBDTEST_H
#define UMPATH_NBDTEST_H

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "../../unit/testlib.h"

#define T_MAX_SRV 8
#define T_MAX_ARGS 24

struct t_srv {
	pid_t pid;
	char sock[256];
	char uri[320];
	char log[256];
	char *argv[T_MAX_ARGS];	/* for a restart */
};

static char t_dir[128];
static struct t_srv t_srvs[T_MAX_SRV];
static unsigned t_nsrv;

static inline void t_cleanup(void)
{
	char cmd[256];

	for (unsigned i = 0; i < t_nsrv; i++) {
		struct t_srv *s = &t_srvs[i];

		if (s->pid > 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
			s->pid = 0;
		}
		for (unsigned j = 0; s->argv[j]; j++)
			free(s->argv[j]);
		memset(s->argv, 0, sizeof(s->argv));
	}
	if (t_dir[0] && !getenv("UMPATH_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", t_dir);
	}
	t_dir[0] = 0;
}

/* Skip unless nbdkit runs with each filter named (NULL-terminated). */
static inline void t_need_nbdkit(const char *const *filters)
{
	char cmd[512];
	size_t n;

	n = (size_t)snprintf(cmd, sizeof(cmd), "nbdkit");
	for (unsigned i = 0; filters && filters[i]; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " --filter=%s", filters[i]);
	snprintf(cmd + n, sizeof(cmd) - n, " null --version >/dev/null 2>&1");
	if (system(cmd) != 0) {
		fprintf(stderr, "skip: '%s' failed: nbdkit or a filter is missing\n", cmd);
		exit(77);
	}
}

/* The scratch directory, removed at exit (kept with UMPATH_TEST_KEEP). */
static inline void t_setup(const char *const *filters)
{
	t_need_nbdkit(filters);
	snprintf(t_dir, sizeof(t_dir), "/tmp/umpath-nbd-XXXXXX");
	CHECK(mkdtemp(t_dir) != NULL);
	atexit(t_cleanup);
	signal(SIGPIPE, SIG_IGN);
}

static inline void t_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", t_dir, name);
}

/* An image of size bytes in the scratch directory. */
static inline void t_image(const char *name, uint64_t size, char *ret_path, size_t len)
{
	int fd;

	t_path(ret_path, len, name);
	fd = open(ret_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	close(fd);
}

/* nbdkit writes its pidfile once it accepts connections. */
static inline bool t_pidfile_ready(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_size > 0;
}

static inline void t_srv_spawn(struct t_srv *s)
{
	char *argv[T_MAX_ARGS + 8];
	char pidfile[300];
	unsigned n = 0;
	double until;

	snprintf(pidfile, sizeof(pidfile), "%s.pid", s->sock);

	argv[n++] = (char *)"nbdkit";
	argv[n++] = (char *)"-f";
	argv[n++] = (char *)"--exit-with-parent";
	argv[n++] = (char *)"-P";
	argv[n++] = pidfile;
	argv[n++] = (char *)"-U";
	argv[n++] = s->sock;
	for (unsigned i = 0; s->argv[i]; i++)
		argv[n++] = s->argv[i];
	argv[n] = NULL;

	unlink(s->sock);	/* a killed server leaves its socket behind */
	unlink(pidfile);
	s->pid = fork();
	CHECK(s->pid >= 0);
	if (!s->pid) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp("nbdkit", argv);
		_exit(127);
	}
	until = t_now() + 10;
	while (!t_pidfile_ready(pidfile)) {
		int status;

		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "nbdkit for %s exited; see %s\n", s->sock, s->log);
			s->pid = 0;
			exit(1);
		}
		CHECK(t_now() < until);
		usleep(10000);
	}
}

/* Start "nbdkit -f --exit-with-parent -U DIR/NAME.sock ARGS..." (ARGS
 * NULL-terminated), wait until it accepts connections; its URI is
 * nbd+unix:///?socket=DIR/NAME.sock. */
static inline struct t_srv *t_srv_start(const char *name, const char *const *args)
{
	struct t_srv *s;
	unsigned i;

	CHECK(t_nsrv < T_MAX_SRV);
	s = &t_srvs[t_nsrv++];
	memset(s, 0, sizeof(*s));
	snprintf(s->sock, sizeof(s->sock), "%s/%s.sock", t_dir, name);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", t_dir, name);
	snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s/%s.sock", t_dir, name);
	for (i = 0; args[i]; i++) {
		CHECK(i + 1 < T_MAX_ARGS);
		s->argv[i] = strdup(args[i]);
		CHECK(s->argv[i]);
	}
	t_srv_spawn(s);
	return s;
}

static inline void t_srv_kill(struct t_srv *s)
{
	CHECK(s->pid > 0);
	CHECK(kill(s->pid, SIGKILL) == 0);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

static inline void t_srv_restart(struct t_srv *s)
{
	CHECK(s->pid == 0);
	t_srv_spawn(s);
}

/* Send nbdkit's pause filter (pause-control=ctl) a command, 'p' to pause
 * or 'r' to resume, and wait for its answer: 'P' comes once the requests
 * it had already received are done. */
static inline void t_pause_ctl(const char *ctl, char cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char c = cmd;

	CHECK(fd >= 0);
	CHECK(strlen(ctl) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, ctl, strlen(ctl) + 1);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(write(fd, &c, 1) == 1);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(read(fd, &c, 1) == 1);
	CHECK_EQ_INT(c, cmd - 'a' + 'A');
	close(fd);
}

/* Counters of an open path. */
static inline struct umpath_path_stats t_stats(struct umpath_ctx *ctx, const char *path)
{
	struct umpath_path_stats st;

	CHECK(umpath_path_stats(ctx, path, &st) == 0);
	return st;
}

/* The state letter (A or F) the status line shows for path. */
static inline char t_path_state(struct umpath_map *map, const char *path)
{
	const char *st = t_status(map);
	size_t n = strlen(path);

	for (const char *p = strstr(st, path); p; p = strstr(p + 1, path))
		if (p[n] == ' ' && (p[n + 1] == 'A' || p[n + 1] == 'F') && p[-1] == ' ')
			return p[n + 1];
	fprintf(stderr, "path %s not in status: %s\n", path, st);
	exit(1);
}

static inline struct umpath_map *t_map_new(struct umpath_ctx *ctx, const char *table)
{
	return t_map(ctx, table);
}

/* ---- a driver: I/Os in flight through a map --------------------------- */

#define T_BS 4096u
#define T_MAX_DEPTH 256

/* The byte pattern of a block in a generation: every block differs. */
static inline void t_pattern(unsigned char *buf, uint64_t block, unsigned gen)
{
	uint64_t *w = (uint64_t *)buf;

	for (unsigned i = 0; i < T_BS / 8; i++)
		w[i] = (block << 24) ^ ((uint64_t)gen << 56) ^ (i * 0x9e3779b97f4a7c15ull);
}

struct t_load;

struct t_job {
	struct umpath_io io;
	struct t_load *ld;
	double start;
	uint64_t block;
	unsigned gen;			/* expected generation (reads) */
	bool busy;
	unsigned char *buf;
};

struct t_load {
	struct umpath_map *map;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned depth, inflight;
	uint64_t done, errors, bad_data;
	int first_err;
	double max_lat;
	unsigned char *rewritten;	/* per block: new generation is in */
	struct t_job jobs[T_MAX_DEPTH];
};

static inline void t_load_done(struct umpath_io *io, int err)
{
	struct t_job *j = (struct t_job *)io;	/* io is the first member */
	struct t_load *ld = j->ld;
	double lat = t_now() - j->start;
	bool bad = false;

	if (!err && io->op == UMPATH_OP_READ) {
		unsigned char want[T_BS];

		t_pattern(want, j->block, j->gen);
		bad = memcmp(want, j->buf, T_BS) != 0;
	}
	pthread_mutex_lock(&ld->lock);
	if (err) {
		if (!ld->errors++)
			ld->first_err = err;
	}
	if (bad)
		ld->bad_data++;
	if (!err && io->op == UMPATH_OP_WRITE && ld->rewritten)
		ld->rewritten[j->block] = 1;
	if (lat > ld->max_lat)
		ld->max_lat = lat;
	ld->done++;
	ld->inflight--;
	j->busy = false;
	pthread_cond_broadcast(&ld->cond);
	pthread_mutex_unlock(&ld->lock);
}

static inline void t_load_init(struct t_load *ld, struct umpath_map *map, unsigned depth)
{
	memset(ld, 0, sizeof(*ld));
	CHECK(depth <= T_MAX_DEPTH);
	ld->map = map;
	ld->depth = depth;
	pthread_mutex_init(&ld->lock, NULL);
	pthread_cond_init(&ld->cond, NULL);
	for (unsigned i = 0; i < depth; i++) {
		ld->jobs[i].ld = ld;
		CHECK(posix_memalign((void **)&ld->jobs[i].buf, 4096, T_BS) == 0);
	}
}

static inline void t_load_fini(struct t_load *ld)
{
	for (unsigned i = 0; i < ld->depth; i++)
		free(ld->jobs[i].buf);
	pthread_mutex_destroy(&ld->lock);
	pthread_cond_destroy(&ld->cond);
}

/* Wait (30 s at most) for a free job slot. */
static inline struct t_job *t_load_slot(struct t_load *ld)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&ld->lock);
	while (ld->inflight == ld->depth)
		CHECK(pthread_cond_timedwait(&ld->cond, &ld->lock, &dl) == 0);
	for (unsigned i = 0; i < ld->depth; i++) {
		if (!ld->jobs[i].busy) {
			ld->jobs[i].busy = true;
			ld->inflight++;
			pthread_mutex_unlock(&ld->lock);
			return &ld->jobs[i];
		}
	}
	pthread_mutex_unlock(&ld->lock);
	CHECK(0);
	return NULL;
}

/* Submit a write of block's pattern in generation gen, or a read of block
 * checked against generation gen; returns at once (up to depth in flight). */
static inline void t_load_submit(struct t_load *ld, enum umpath_op op, uint64_t block, unsigned gen)
{
	struct t_job *j = t_load_slot(ld);

	memset(&j->io, 0, sizeof(j->io));
	j->io.op = op;
	j->io.offset = block * T_BS;
	j->io.length = T_BS;
	j->io.buf = j->buf;
	j->io.done = t_load_done;
	j->block = block;
	j->gen = gen;
	if (op == UMPATH_OP_WRITE)
		t_pattern(j->buf, block, gen);
	j->start = t_now();
	CHECK_EQ_INT(umpath_map_submit(ld->map, &j->io), 0);
}

/* Wait (30 s at most) until nothing is in flight. */
static inline void t_load_wait(struct t_load *ld)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&ld->lock);
	while (ld->inflight)
		CHECK(pthread_cond_timedwait(&ld->cond, &ld->lock, &dl) == 0);
	pthread_mutex_unlock(&ld->lock);
}

/* Write generation gen over blocks [0, nblocks), depth in flight. */
static inline void t_write_all(struct t_load *ld, uint64_t nblocks, unsigned gen)
{
	for (uint64_t b = 0; b < nblocks; b++)
		t_load_submit(ld, UMPATH_OP_WRITE, b, gen);
	t_load_wait(ld);
}

/* Read blocks [0, nblocks) back through the map against generation gen. */
static inline void t_verify_all(struct t_load *ld, uint64_t nblocks, unsigned gen)
{
	for (uint64_t b = 0; b < nblocks; b++)
		t_load_submit(ld, UMPATH_OP_READ, b, gen);
	t_load_wait(ld);
}

/* Check the image file itself holds generation gen in [0, nblocks). */
static inline void t_verify_file(const char *image, uint64_t nblocks, unsigned gen)
{
	unsigned char want[T_BS], got[T_BS];
	int fd = open(image, O_RDONLY);

	CHECK(fd >= 0);
	for (uint64_t b = 0; b < nblocks; b++) {
		t_pattern(want, b, gen);
		CHECK(pread(fd, got, T_BS, (off_t)(b * T_BS)) == T_BS);
		if (memcmp(want, got, T_BS)) {
			fprintf(stderr, "%s: block %llu is not generation %u\n", image,
				(unsigned long long)b, gen);
			exit(1);
		}
	}
	close(fd);
}

/* The phase during which a fault strikes: generation gen written over
 * every block once, with a read of a block whose rewrite has completed
 * (checked against gen) after every other write; fault() is called once,
 * when a quarter of the blocks have been submitted. */
static inline void t_rewrite_with_fault(struct t_load *ld, uint64_t nblocks, unsigned gen,
				 void (*fault)(void *), void *opaque)
{
	uint64_t cursor = 0;

	ld->rewritten = calloc(nblocks, 1);
	CHECK(ld->rewritten);
	for (uint64_t b = 0; b < nblocks; b++) {
		int64_t r = -1;

		if (b == nblocks / 4)
			fault(opaque);
		t_load_submit(ld, UMPATH_OP_WRITE, b, gen);
		if (b % 2)
			continue;
		pthread_mutex_lock(&ld->lock);
		for (uint64_t i = 0; i < b && r < 0; i++) {
			uint64_t c = (cursor + i) % b;

			if (ld->rewritten[c])
				r = (int64_t)c;
		}
		pthread_mutex_unlock(&ld->lock);
		if (r >= 0) {
			cursor = (uint64_t)r + 7;
			t_load_submit(ld, UMPATH_OP_READ, (uint64_t)r, gen);
		}
	}
	t_load_wait(ld);
	pthread_mutex_lock(&ld->lock);
	free(ld->rewritten);
	ld->rewritten = NULL;
	pthread_mutex_unlock(&ld->lock);
}

/* Reinstate path until it stays active and carries reads (a checker's
 * job in the daemon): until the transport has reconnected, a reinstated
 * path fails again at its first I/O, which is retried elsewhere.  True if
 * it came back within secs; no I/O may fail meanwhile. */
static inline bool t_reinstate_when_back(struct umpath_ctx *ctx, struct umpath_map *map,
					 struct t_load *ld, const char *path, unsigned gen,
					 double secs)
{
	double until = t_now() + secs;
	char msg[512];

	snprintf(msg, sizeof(msg), "reinstate_path %s", path);
	while (t_now() < until) {
		struct umpath_path_stats before = t_stats(ctx, path), after;

		t_msg(map, msg, 0);
		t_verify_all(ld, 64, gen);
		CHECK_EQ_INT(ld->errors, 0);
		CHECK_EQ_INT(ld->bad_data, 0);
		after = t_stats(ctx, path);
		if (t_path_state(map, path) == 'A' && after.errors == before.errors &&
		    after.ios >= before.ios + 8)
			return true;
		usleep(100000);
	}
	return false;
}

#endif
