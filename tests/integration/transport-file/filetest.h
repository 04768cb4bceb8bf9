/* filetest.h - shared by the file transport's integration tests: a private
 * temporary directory, image files checked with pread, programs run without
 * a shell, a loop device, and a FUSE file served by nbdkit through nbdfuse.
 * Whatever a test sets up is torn down at exit, also after a failed CHECK;
 * a child nbdfuse gets SIGTERM (and unmounts) if the test dies. */
#ifndef UMPATH_FILETEST_H
#define UMPATH_FILETEST_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "../../unit/testlib.h"

#define FT_SKIP 77

static char ft_dir[PATH_MAX];		/* the test's temporary directory */
static char ft_loop[64];		/* an attached loop device, or "" */
static char ft_mnt[PATH_MAX];		/* a FUSE mount point, or "" */
static pid_t ft_fuse_pid;		/* nbdfuse, or 0 */
static char ft_paused[108];		/* nbdkit's pause socket while paused, or "" */

static inline void ft_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(FT_SKIP);
}

/* Run argv[0] (from PATH) with argv, stdout into out (if not NULL).
 * Returns the exit status, 127 if it could not be run. */
static inline int ft_run(const char *const argv[], char *out, size_t outlen)
{
	int pfd[2], status;
	size_t got = 0;
	pid_t pid;

	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		dup2(devnull, 0);
		dup2(out ? pfd[1] : devnull, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[256];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n <= 0)
			break;
		if (out && got + 1 < outlen) {
			size_t k = (size_t)n < outlen - 1 - got ? (size_t)n : outlen - 1 - got;

			memcpy(out + got, tmp, k);
			got += k;
		}
	}
	close(pfd[0]);
	if (out) {
		out[got] = 0;
		while (got && (out[got - 1] == '\n' || out[got - 1] == ' '))
			out[--got] = 0;
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static inline bool ft_have(const char *prog)
{
	const char *argv[] = { "sh", "-c", "command -v \"$0\" >/dev/null", prog, NULL };

	return ft_run(argv, NULL, 0) == 0;
}

static int ft_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);	/* best effort */
	return 0;
}

static void ft_fuse_stop(void);

/* Resume a paused nbdkit; async-signal-safe.  A process cannot finish
 * exiting while a FUSE request of its own is held (io_uring waits for its
 * requests at exit), so every way out resumes first. */
static void ft_resume_raw(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char c = 'r';
	int fd;

	if (!ft_paused[0])
		return;
	memcpy(sa.sun_path, ft_paused, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && write(fd, &c, 1) == 1)
		(void)!read(fd, &c, 1);
	if (fd >= 0)
		close(fd);
}

/* meson's timeout (SIGTERM), a watchdog alarm, an abort. */
static void ft_on_signal(int sig)
{
	ft_resume_raw();
	_exit(1);
}

static void ft_cleanup(void)
{
	ft_resume_raw();
	ft_paused[0] = 0;
	/* The loop device first: one over the FUSE file keeps it busy. */
	if (ft_loop[0]) {
		const char *argv[] = { "losetup", "-d", ft_loop, NULL };

		ft_run(argv, NULL, 0);
		ft_loop[0] = 0;
	}
	if (ft_fuse_pid)
		ft_fuse_stop();
	if (ft_dir[0]) {
		nftw(ft_dir, ft_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		ft_dir[0] = 0;
	}
}

/* The test's own directory, removed at exit.  Under $TMPDIR, else /var/tmp:
 * the tests need O_DIRECT, which /tmp as an older tmpfs refuses. */
static inline const char *ft_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(ft_dir, sizeof(ft_dir), "%s/umpath-file-XXXXXX", base && *base ? base : "/var/tmp");
	CHECK(mkdtemp(ft_dir));
	atexit(ft_cleanup);
	return ft_dir;
}

static inline void ft_path(char *buf, size_t len, const char *name)
{
	CHECK((size_t)snprintf(buf, len, "%s/%s", ft_dir, name) < len);
}

/* An image of size bytes, every byte written (so allocated): pattern seed. */
static inline void ft_make_image(const char *path, uint64_t size, unsigned seed)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	static unsigned char buf[1 << 20];

	CHECK(fd >= 0);
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);

		t_fill(buf, n, seed + (unsigned)(off >> 20));
		CHECK(pwrite(fd, buf, n, (off_t)off) == (ssize_t)n);
	}
	CHECK(fsync(fd) == 0);
	close(fd);
}

/* Whether the file at path holds len bytes of buf at off (read with pread,
 * through the page cache, as any other reader of the image would). */
static inline bool ft_file_has(const char *path, uint64_t off, const void *buf, size_t len)
{
	unsigned char *got = malloc(len);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool same;

	CHECK(got && fd >= 0);
	CHECK(pread(fd, got, len, (off_t)off) == (ssize_t)len);
	same = !memcmp(got, buf, len);
	close(fd);
	free(got);
	return same;
}

static inline bool ft_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* A page-aligned buffer, for O_DIRECT paths. */
static inline void *ft_alloc(size_t len)
{
	void *p = NULL;

	CHECK(posix_memalign(&p, 4096, len) == 0);
	return p;
}

/* Skip unless files in the test directory can be opened with O_DIRECT. */
static inline void ft_need_direct(void)
{
	char path[PATH_MAX];
	int fd;

	ft_path(path, sizeof(path), "direct-probe");
	fd = open(path, O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0)
		ft_skip("%s: O_DIRECT not supported here (%s)", ft_dir, strerror(errno));
	close(fd);
	unlink(path);
}

static inline struct umpath_ctx *ft_ctx(unsigned io_timeout_ms)
{
	struct umpath_ctx_opts o = { .io_timeout_ms = io_timeout_ms };
	struct umpath_ctx *ctx;

	CHECK(umpath_ctx_new(&o, &ctx) == 0);
	return ctx;
}

static inline struct umpath_path_stats ft_stats(struct umpath_ctx *ctx, const char *path)
{
	struct umpath_path_stats st;

	CHECK(umpath_path_stats(ctx, path, &st) == 0);
	return st;
}

/* Attach a loop device over image; skip where loop devices cannot be used. */
static inline const char *ft_loop_attach(const char *image)
{
	const char *argv[] = { "losetup", "-f", "--show", image, NULL };
	int r;

	if (!ft_have("losetup"))
		ft_skip("losetup not installed");
	if (access("/dev/loop-control", R_OK | W_OK))
		ft_skip("/dev/loop-control: %s", strerror(errno));
	r = ft_run(argv, ft_loop, sizeof(ft_loop));
	if (r || strncmp(ft_loop, "/dev/loop", 9)) {
		ft_loop[0] = 0;
		ft_skip("losetup -f --show failed (%d): loop devices not usable here", r);
	}
	return ft_loop;
}

/* ---- a FUSE file served by nbdkit ----------------------------------------- */

/* Serve image through nbdkit's file plugin as the FUSE file MNT/nbd, and
 * return its path.  filters: nbdkit options before the plugin
 * ("--filter=error"), params: after it ("error-rate=100%"); both NULL-ended.
 * Skip where nbdfuse, nbdkit or FUSE mounts are missing or not permitted. */
static inline const char *ft_fuse_start(const char *image, const char *const *filters,
					const char *const *params)
{
	static char file[PATH_MAX + 8];
	const char *argv[64], **nbdkit;
	char pidfile[PATH_MAX];
	unsigned n = 0, k;
	struct stat st;

	if (!ft_have("nbdfuse") || !ft_have("nbdkit") || !ft_have("fusermount3"))
		ft_skip("nbdfuse, nbdkit or fusermount3 not installed");
	if (access("/dev/fuse", R_OK | W_OK))
		ft_skip("/dev/fuse: %s", strerror(errno));
	ft_path(ft_mnt, sizeof(ft_mnt), "mnt");
	ft_path(pidfile, sizeof(pidfile), "nbdfuse.pid");
	CHECK(mkdir(ft_mnt, 0700) == 0);
	snprintf(file, sizeof(file), "%s/nbd", ft_mnt);

	argv[n++] = "nbdfuse";
	argv[n++] = "-P";
	argv[n++] = pidfile;
	argv[n++] = file;
	argv[n++] = "[";
	nbdkit = &argv[n];
	argv[n++] = "nbdkit";
	argv[n++] = "--exit-with-parent";
	for (; *filters; filters++) {
		CHECK(n + 8 < sizeof(argv) / sizeof(argv[0]));
		argv[n++] = *filters;
	}
	argv[n++] = "file";
	argv[n++] = image;
	for (; *params; params++) {
		CHECK(n + 4 < sizeof(argv) / sizeof(argv[0]));
		argv[n++] = *params;
	}
	argv[n++] = "]";
	argv[n] = NULL;

	/* A wrong nbdkit command line must fail the test, not skip it: try
	 * it alone first (nbdkit serves on a private socket, runs "true"). */
	{
		const char *check[64];

		k = 0;
		check[k++] = "nbdkit";
		check[k++] = "-U";
		check[k++] = "-";
		for (const char **a = nbdkit + 1; a < &argv[n - 1]; a++)
			check[k++] = *a;
		check[k++] = "--run";
		check[k++] = "true";
		check[k] = NULL;
		if (ft_run(check, NULL, 0)) {
			fprintf(stderr, "nbdkit refused its command line\n");
			exit(1);
		}
	}

	signal(SIGTERM, ft_on_signal);
	signal(SIGINT, ft_on_signal);
	signal(SIGALRM, ft_on_signal);
	signal(SIGABRT, ft_on_signal);
	ft_fuse_pid = fork();
	CHECK(ft_fuse_pid >= 0);
	if (ft_fuse_pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		/* Unmount (nbdfuse does on SIGTERM) if the test dies. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(devnull, 0);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (unsigned i = 0; i < 200; i++) {
		int status;

		if (waitpid(ft_fuse_pid, &status, WNOHANG) == ft_fuse_pid) {
			ft_fuse_pid = 0;
			ft_mnt[0] = 0;
			ft_skip("nbdfuse exited (status %d): FUSE mounts not usable here", status);
		}
		if (!access(pidfile, F_OK) && !stat(file, &st))
			return file;
		usleep(50000);
	}
	fprintf(stderr, "nbdfuse did not become ready in 10 s\n");
	exit(1);
}

static void ft_fuse_stop(void)
{
	const char *um[] = { "fusermount3", "-u", ft_mnt, NULL };
	const char *lazy[] = { "fusermount3", "-u", "-z", ft_mnt, NULL };
	int status;

	if (!ft_fuse_pid)
		return;
	if (ft_run(um, NULL, 0))
		ft_run(lazy, NULL, 0);
	for (unsigned i = 0; i < 100; i++) {
		if (waitpid(ft_fuse_pid, &status, WNOHANG) == ft_fuse_pid) {
			ft_fuse_pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(ft_fuse_pid, SIGKILL);
	waitpid(ft_fuse_pid, &status, 0);
	ft_fuse_pid = 0;
}

/* Send one command to nbdkit's pause filter and wait for its answer
 * ('p' -> 'P' once in-flight requests have been served, 'r' -> 'R'). */
static inline void ft_pause_cmd(const char *sock, char cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char answer = 0;

	CHECK(fd >= 0);
	CHECK(strlen(sock) < sizeof(sa.sun_path) && sizeof(ft_paused) == sizeof(sa.sun_path));
	strcpy(sa.sun_path, sock);
	if (cmd == 'p')
		strcpy(ft_paused, sock);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(write(fd, &cmd, 1) == 1);
	CHECK(read(fd, &answer, 1) == 1);
	CHECK(answer == cmd - 'a' + 'A');
	if (cmd == 'r')
		ft_paused[0] = 0;
	close(fd);
}

#endif
