/* fence.c - umpathd's fence_command: the engine asks for a path to be
 * fenced when a write it gave up on may still be applied by the storage
 * (docs/stale-writes.md); writes to the same blocks wait meanwhile.  The
 * command (the map's policy: fence_command, fence_timeout) runs through
 * /bin/sh with %p the path and %m the map, each shell-quoted, in its own
 * process group, once per map and path and engine request.  Exit status 0
 * is success; anything else, a spawn error, or running past fence_timeout
 * (the group is then SIGKILLed) is failure.  The result is logged, answered
 * to the engine, and kept for `umpath show paths`.
 *
 * One thread runs every fence: the engine's hook only queues the request
 * and wakes it (the hook is called on the engine's I/O threads and must
 * not block); the thread spawns with posix_spawn and waits for the
 * commands' pidfds, its wake-up eventfd and the nearest deadline in one
 * poll.  Locking: f->lock guards the lists; it is never held across an
 * engine call or a spawn. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

extern char **environ;

#define FENCE_MAX_RUNNING 64	/* more wait their turn */
#define FENCE_MAX_RESULTS 4096	/* remembered for show paths, oldest forgotten */

struct fence_job {
	struct list_head node;		/* f->todo or f->running */
	char *map, *path;
	struct umpath_map *um;		/* to tell a re-created map apart */
	uint64_t token;
	pid_t pid;
	int pidfd;
	uint64_t start_ns, deadline_ns;
};

struct fence_result {
	struct list_head node;		/* f->results, newest first */
	char *map, *path;
	char state[16];
	char detail[96];
};

struct umd_fencer {
	struct umd *d;
	pthread_t thread;
	pthread_mutex_t lock;
	int efd;
	bool stop;			/* guarded by lock */
	struct list_head todo;		/* guarded by lock */
	struct list_head running;	/* fence thread only */
	unsigned nrunning;		/* fence thread only */
	struct list_head results;	/* guarded by lock */
	unsigned nresults;		/* guarded by lock */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void job_free(struct fence_job *j)
{
	if (!j)
		return;
	if (j->pidfd >= 0)
		close(j->pidfd);
	free(j->map);
	free(j->path);
	free(j);
}

/* Record (and log) how a fence of path in map went. */
static void set_result(struct umd_fencer *f, const char *map, const char *path,
		       const char *state, const char *detail)
{
	struct fence_result *r;

	pthread_mutex_lock(&f->lock);
	list_for_each_entry(r, &f->results, node)
		if (!strcmp(r->map, map) && !strcmp(r->path, path))
			break;
	if (&r->node == &f->results) {
		r = calloc(1, sizeof(*r));
		if (r) {
			r->map = strdup(map);
			r->path = strdup(path);
			if (!r->map || !r->path) {
				free(r->map);
				free(r->path);
				free(r);
				r = NULL;
			}
		}
		if (r)
			f->nresults++;
	} else {
		list_del_init(&r->node);
	}
	if (r) {
		snprintf(r->state, sizeof(r->state), "%s", state);
		snprintf(r->detail, sizeof(r->detail), "%s", detail);
		list_add(&r->node, &f->results);
	}
	if (f->nresults > FENCE_MAX_RESULTS) {
		struct fence_result *old = container_of(f->results.prev, struct fence_result, node);

		list_del_init(&old->node);
		free(old->map);
		free(old->path);
		free(old);
		f->nresults--;
	}
	pthread_mutex_unlock(&f->lock);
}

/* Path strings may hold anything: log them with control bytes masked. */
static void clean(char *dst, size_t len, const char *s)
{
	size_t k = 0;

	for (; *s && k + 1 < len; s++)
		dst[k++] = (unsigned char)*s < ' ' || *s == 0x7f ? '?' : *s;
	dst[k] = '\0';
}

/* Tell the engine; the map may be gone, or another of the same name. */
static void answer(struct umd_fencer *f, struct fence_job *j, int result)
{
	struct umd_map *m = umd_map_get(f->d, j->map, false);

	if (m) {
		if (m->map == j->um)
			umpath_map_fence_done(m->map, j->path, j->token, result);
		umd_map_put(m, false);
	}
}

static void finish(struct umd_fencer *f, struct fence_job *j, const char *state, int result,
		   const char *detail)
{
	char p[512];

	clean(p, sizeof(p), j->path);
	um_log("map %s: path %s: fence %s: %s", j->map, p, state, detail);
	set_result(f, j->map, j->path, state, detail);
	answer(f, j, result);
}

/* Append s to the command, in single quotes (a ' as '\''). */
static bool put_quoted(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + 4 * strlen(s) + 3;

	if (need > *cap) {
		char *n = realloc(*buf, need * 2);

		if (!n)
			return false;
		*buf = n;
		*cap = need * 2;
	}
	(*buf)[(*len)++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(*buf + *len, "'\\''", 4);
			*len += 4;
		} else {
			(*buf)[(*len)++] = *s;
		}
	}
	(*buf)[(*len)++] = '\'';
	return true;
}

/* The command with %p, %m and %% replaced; NULL on ENOMEM. */
static char *expand(const char *tmpl, const char *map, const char *path)
{
	size_t len = 0, cap = strlen(tmpl) + 64;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (const char *c = tmpl; *c; c++) {
		bool ok = true;

		if (c[0] == '%' && (c[1] == 'p' || c[1] == 'm')) {
			ok = put_quoted(&buf, &len, &cap, c[1] == 'p' ? path : map);
			c++;
		} else {
			if (c[0] == '%' && c[1] == '%')
				c++;
			if (len + 2 > cap) {
				char *n = realloc(buf, cap * 2);

				if (!n)
					ok = false;
				else
					buf = n, cap *= 2;
			}
			if (ok)
				buf[len++] = *c;
		}
		if (!ok) {
			free(buf);
			return NULL;
		}
	}
	buf[len] = '\0';
	return buf;
}

/* Start j's command; false (and answered) if it could not start. */
static bool spawn(struct umd_fencer *f, struct fence_job *j)
{
	struct umd_map *m = umd_map_get(f->d, j->map, false);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	char *cmd = NULL, detail[96];
	const char *tmpl = NULL;
	unsigned timeout_ms = 30000;
	int r;

	if (m) {
		pthread_mutex_lock(&f->d->lock);
		tmpl = m->policy.fence_command;
		timeout_ms = m->policy.fence_timeout_ms;
		pthread_mutex_unlock(&f->d->lock);
		umd_map_put(m, false);
	}
	if (!tmpl) {
		finish(f, j, "none", -ENOSYS, "no fence_command: writes to its blocks wait for the path to answer");
		return false;
	}
	cmd = expand(tmpl, j->map, j->path);
	if (!cmd) {
		finish(f, j, "failed", -ENOMEM, "out of memory");
		return false;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);	/* umpathd ignores it; the command should not */
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);	/* the daemon blocks its signals */
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* Its output joins the daemon's log (stderr). */
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	char sh[] = "sh", dash_c[] = "-c";
	r = posix_spawn(&j->pid, "/bin/sh", &fa, &attr, (char *[]){ sh, dash_c, cmd, NULL },
			environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(cmd);
	if (r) {
		snprintf(detail, sizeof(detail), "cannot run /bin/sh: %s", strerror(r));
		finish(f, j, "failed", -r, detail);
		return false;
	}
	j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
	if (j->pidfd < 0) {
		/* Cannot wait for it without blocking: end it now. */
		snprintf(detail, sizeof(detail), "pidfd_open: %s", strerror(errno));
		kill(-j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
		finish(f, j, "failed", -EIO, detail);
		return false;
	}
	j->start_ns = now_ns();
	j->deadline_ns = j->start_ns + (uint64_t)timeout_ms * 1000000u;
	set_result(f, j->map, j->path, "running", "");
	return true;
}

/* j's command exited, or (timed_out) is past its deadline. */
static void reap(struct umd_fencer *f, struct fence_job *j, bool timed_out)
{
	char detail[96];
	double secs = (double)(now_ns() - j->start_ns) / 1e9;
	int st = 0;

	if (timed_out)
		kill(-j->pid, SIGKILL);	/* the whole group: sh and what it started */
	while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(detail, sizeof(detail), "killed after %.1f s (fence_timeout)", secs);
		finish(f, j, "timeout", -ETIMEDOUT, detail);
	} else if (WIFEXITED(st) && !WEXITSTATUS(st)) {
		snprintf(detail, sizeof(detail), "exit status 0 after %.1f s", secs);
		finish(f, j, "ok", 0, detail);
	} else {
		if (WIFEXITED(st))
			snprintf(detail, sizeof(detail), "exit status %d after %.1f s",
				 WEXITSTATUS(st), secs);
		else
			snprintf(detail, sizeof(detail), "killed by signal %d after %.1f s",
				 WTERMSIG(st), secs);
		finish(f, j, "failed", -EIO, detail);
	}
}

static void *fence_thread(void *opaque)
{
	struct umd_fencer *f = opaque;
	struct pollfd pfd[FENCE_MAX_RUNNING + 1];
	struct fence_job *jobs[FENCE_MAX_RUNNING];

	for (;;) {
		struct fence_job *j, *n;
		uint64_t now, next = UINT64_MAX;
		unsigned nj = 0;
		int timeout;
		bool stop;

		pthread_mutex_lock(&f->lock);
		stop = f->stop;
		while (!stop && f->nrunning < FENCE_MAX_RUNNING && !list_empty(&f->todo)) {
			j = list_first_entry(&f->todo, struct fence_job, node);
			list_del_init(&j->node);
			pthread_mutex_unlock(&f->lock);
			if (spawn(f, j)) {
				list_add_tail(&j->node, &f->running);
				f->nrunning++;
			} else {
				job_free(j);
			}
			pthread_mutex_lock(&f->lock);
		}
		pthread_mutex_unlock(&f->lock);
		if (stop)
			break;

		now = now_ns();
		list_for_each_entry_safe(j, n, &f->running, node) {
			if (j->deadline_ns <= now) {
				list_del_init(&j->node);
				f->nrunning--;
				reap(f, j, true);
				job_free(j);
				continue;
			}
			if (j->deadline_ns < next)
				next = j->deadline_ns;
			pfd[nj] = (struct pollfd){ .fd = j->pidfd, .events = POLLIN };
			jobs[nj++] = j;
		}
		pfd[nj] = (struct pollfd){ .fd = f->efd, .events = POLLIN };
		timeout = next == UINT64_MAX ? -1 : (int)((next - now) / 1000000u + 1);
		if (poll(pfd, nj + 1, timeout) < 0)
			continue;
		if (pfd[nj].revents) {
			uint64_t v;
			ssize_t r = read(f->efd, &v, sizeof(v));
			(void)r;
		}
		for (unsigned i = 0; i < nj; i++) {
			if (!pfd[i].revents)
				continue;
			list_del_init(&jobs[i]->node);
			f->nrunning--;
			reap(f, jobs[i], false);
			job_free(jobs[i]);
		}
	}
	return NULL;
}

/* The engine's hook: queue, wake the thread, never block. */
static void fence_hook(struct umpath_map *map, const char *path, uint64_t token, void *opaque)
{
	struct umd_fencer *f = opaque;
	struct fence_job *j = calloc(1, sizeof(*j));
	uint64_t one = 1;
	ssize_t r;

	if (j) {
		j->map = strdup(umpath_map_name(map));
		j->path = strdup(path);
		j->um = map;
		j->token = token;
		j->pidfd = -1;
	}
	if (!j || !j->map || !j->path) {
		job_free(j);
		umpath_map_fence_done(map, path, token, -ENOMEM);
		return;
	}
	pthread_mutex_lock(&f->lock);
	list_add_tail(&j->node, &f->todo);
	pthread_mutex_unlock(&f->lock);
	r = write(f->efd, &one, sizeof(one));
	(void)r;	/* a full counter still wakes it */
}

int umd_fence_start(struct umd *d)
{
	struct umd_fencer *f = calloc(1, sizeof(*f));
	struct umpath_fence_hook hook = { .fence = fence_hook };
	int r;

	if (!f)
		return -ENOMEM;
	f->d = d;
	pthread_mutex_init(&f->lock, NULL);
	list_init(&f->todo);
	list_init(&f->running);
	list_init(&f->results);
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&f->thread, NULL, fence_thread, f);
	if (r)
		goto fail;
	hook.opaque = f;
	d->fencer = f;
	umpath_set_fence_hook(d->ctx, &hook);
	return 0;
fail:
	if (f->efd >= 0)
		close(f->efd);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return r;
}

void umd_fence_stop(struct umd *d)
{
	struct umd_fencer *f = d->fencer;
	struct fence_job *j, *n;
	struct fence_result *r, *rn;
	uint64_t one = 1;
	ssize_t w;

	if (!f)
		return;
	umpath_set_fence_hook(d->ctx, NULL);
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_mutex_unlock(&f->lock);
	w = write(f->efd, &one, sizeof(one));
	(void)w;
	pthread_join(f->thread, NULL);
	/* Stopping: commands still running are ended, their fences failed
	 * (held writes then fail as the maps stop queueing). */
	list_for_each_entry_safe(j, n, &f->running, node) {
		list_del_init(&j->node);
		reap(f, j, true);
		job_free(j);
	}
	list_for_each_entry_safe(j, n, &f->todo, node) {
		list_del_init(&j->node);
		answer(f, j, -ESHUTDOWN);
		job_free(j);
	}
	list_for_each_entry_safe(r, rn, &f->results, node) {
		free(r->map);
		free(r->path);
		free(r);
	}
	close(f->efd);
	pthread_mutex_destroy(&f->lock);
	free(f);
	d->fencer = NULL;
}

const char *umd_fence_path_state(struct umd *d, const char *map, const char *path,
				 char *detail, size_t len)
{
	struct umd_fencer *f = d->fencer;
	struct fence_result *r;
	const char *state = "-";

	if (detail && len)
		detail[0] = '\0';
	if (!f)
		return state;
	pthread_mutex_lock(&f->lock);
	list_for_each_entry(r, &f->results, node) {
		if (!strcmp(r->map, map) && !strcmp(r->path, path)) {
			/* state[] is one of a few literals: return the literal. */
			static const char *const states[] = {
				"running", "ok", "failed", "timeout", "none",
			};
			for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
				if (!strcmp(r->state, states[i]))
					state = states[i];
			if (detail && len)
				snprintf(detail, len, "%s", r->detail);
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return state;
}
