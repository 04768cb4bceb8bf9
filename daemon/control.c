/* control.c - umpathd's control socket: the dmsetup-like verbs of the umpath
 * tool (ls, create, remove, reload, load, table, status, message, suspend,
 * resume, info), the operator's views (show topology|paths|maps, --json;
 * show.c formats them) and the event stream (events) over a unix stream
 * socket, in the wire format of ctlproto.h.
 *
 * Threads: the listening socket is watched on the daemon's event loop
 * (d->loop), which accepts; each connection gets a short-lived detached
 * thread.  A thread per connection rather than serving connections one
 * after the other: a request may legitimately take long (a suspend waits
 * for in-flight I/O, up to the I/O deadline of a hung path), and a client
 * may stay silent; served in turn, either would hold up every other client,
 * including the one that would fix things (a status, a fail_path).  The
 * threads are bounded (CTL_MAX_CONNS, further connections are refused with
 * EAGAIN) and so is each one's life: the request must arrive within
 * CTL_RECV_TIMEOUT_MS and the reply may block at most CTL_SEND_TIMEOUT_S.
 *
 * The exception is `events`: its thread answers OK and hands the
 * connection to the daemon's loop, which streams one line per event for
 * as long as the client stays (at most UMD_EVENTS_MAX_SUBS of them): no
 * thread is held by a follower.  It never blocks on the client: the loop
 * watches the socket and the subscription's eventfd, and while the client
 * does not read, events pile up in the subscription's bounded queue, which
 * drops the oldest.  The client leaving shows as end of file on the
 * socket; so does the shutdown(SHUT_RD) of umd_control_stop, which the
 * stream tells apart by c->stopping and answers with a last line (given
 * up after CTL_SEND_TIMEOUT_S if the client does not read it).
 *
 * Access: the socket is 0600 in a directory created 0700, and each peer is
 * checked with SO_PEERCRED: root and the daemon's own uid only.
 *
 * Locking: c->lock guards the connection list, the count and the names
 * being changed.  No lock of ours, nor the registry's, is held across an
 * engine call that may wait (load, suspend, resume).  Requests that change
 * a map's state (load, reload, suspend, resume) are serialised per map
 * name, as the kernel's suspend_lock does, so that a reload's
 * load-suspend-resume is never interleaved with another load or resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"
#include "daemon.h"
#include "format.h"
#include "log.h"
#include "show.h"
#include "showconf.h"
#include "util.h"
#include "verbs.h"
#include "wait.h"

#define CTL_MAX_CONNS 64		/* connection threads at once */
#define CTL_RECV_TIMEOUT_MS 5000	/* the whole request must arrive in this */
#define CTL_SEND_TIMEOUT_S 5		/* one blocked send of the reply */
#define CTL_REASON_MAX 512
#define CTL_BUF_INIT 4096
#define CTL_EVENTS_BATCH 64		/* events formatted per send */
#define CTL_ACCEPT_BACKOFF_MS 100	/* accept out of resources: pause this */

struct umd_control {
	struct umd *d;
	char *path;
	int listen_fd;			/* non-blocking, watched on d->loop */
	bool watched;			/* listen_fd is on d->loop */
	struct umpath_timer *backoff;	/* accept failed for want of resources */
	dev_t sock_dev;			/* the socket file we made, to unlink */
	ino_t sock_ino;			/* only that one at stop */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a connection ended or a name was freed */
	struct list_head conns;		/* guarded by lock */
	unsigned nconns;		/* guarded by lock */
	uint64_t accepted;		/* guarded by lock: connections served, in all */
	unsigned refs;			/* guarded by lock: 1 + one per connection */
	struct list_head busy;		/* guarded by lock: names being changed */
	bool stopping;			/* guarded by lock: umd_control_stop began */
};

struct ctl_conn {
	struct list_head node;		/* in c->conns, guarded by c->lock */
	struct umd_control *c;
	int fd;
	uid_t uid;
	pid_t pid;
	bool allowed;
};

struct ctl_busy {
	struct list_head node;		/* in c->busy, guarded by c->lock */
	const char *name;
};

/* One request's answer: an error (err < 0, reason) or output. */
struct ctl_reply {
	int err;
	char reason[CTL_REASON_MAX];	/* the kernel's words where it has some */
	char detail[CTL_REASON_MAX];	/* what the engine adds: object and cause */
	FILE *out;
	char *buf;
	size_t len;
	bool streamed;		/* OK went out already: nothing more to send */
};

/* ---- helpers ------------------------------------------------------------ */

static const char *errname(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "EIO";
}

__attribute__((format(printf, 3, 4)))
static int fail(struct ctl_reply *rep, int err, const char *fmt, ...)
{
	va_list ap;

	rep->err = err;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
	/* The status line is one line: a name or table word from the client
	 * may hold anything. */
	um_sanitize(rep->reason);
	return err;
}

/* um_log, with the words that came from a client made harmless: a newline
 * in a map name or table must not forge a log line. */
__attribute__((format(printf, 1, 2)))
static void ctl_log(const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	um_sanitize(line);
	um_log("%s", line);
}

/* The engine's reason if it gave one, else the errno's text; and the
 * engine's detail of this thread's failed call (each connection has its
 * own thread, so it is this request's).  The detail goes on a line of its
 * own after the status line: the status line keeps the kernel's words. */
static int fail_engine(struct ctl_reply *rep, int err, const char *why)
{
	fail(rep, err, "%s", why && *why ? why : strerror(-err));
	snprintf(rep->detail, sizeof(rep->detail), "%s", umpath_error_detail());
	um_sanitize(rep->detail);
	return err;
}

/* A refused change, in the log with its detail. */
static void log_refused(const char *name, const char *what, const struct ctl_reply *rep)
{
	ctl_log("map %s: %s refused: %s%s%s", name, what, rep->reason, *rep->detail ? ": " : "",
		rep->detail);
}


/* Take "--json" out of the words after the verb: whether it was there.
 * Only for the verbs that have the option: elsewhere it may be a word of
 * a table or a message. */
static bool take_json(int *argc, char **argv)
{
	bool json = false;
	int n = 1;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else
			argv[n++] = argv[i];
	}
	*argc = n;
	return json;
}


static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- per-name serialisation of state changes ---------------------------- */

static void busy_enter(struct umd_control *c, struct ctl_busy *b, const char *name)
{
	struct ctl_busy *o;
	bool taken;

	b->name = name;
	pthread_mutex_lock(&c->lock);
	do {
		taken = false;
		list_for_each_entry(o, &c->busy, node) {
			if (!strcmp(o->name, name)) {
				taken = true;
				break;
			}
		}
		if (taken)
			pthread_cond_wait(&c->cond, &c->lock);
	} while (taken);
	list_add_tail(&b->node, &c->busy);
	pthread_mutex_unlock(&c->lock);
}

static void busy_leave(struct umd_control *c, struct ctl_busy *b)
{
	pthread_mutex_lock(&c->lock);
	list_del_init(&b->node);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* ---- verbs ---------------------------------------------------------------- */

/* Look the map up with a reference, or fail with ENXIO like dmsetup on an
 * unknown device. */
static struct umd_map *get_map(struct umd *d, const char *name, struct ctl_reply *rep)
{
	struct umd_map *m = umd_map_get(d, name, false);

	if (!m)
		fail(rep, -ENXIO, "no such map");
	return m;
}

static unsigned map_opens(struct umd_map *m)
{
	unsigned n;

	pthread_mutex_lock(&m->d->lock);
	n = m->opens;
	pthread_mutex_unlock(&m->d->lock);
	return n;
}

static unsigned long long map_sectors(struct umd_map *m)
{
	return (unsigned long long)(umpath_map_size(m->map) / UMPATH_SECTOR_SIZE);
}

/* A status line as dmsetup prints it. */
static int print_line(struct umd_map *m, bool table, struct ctl_reply *rep)
{
	char *line = umd_map_line(m->map, table);

	if (!line)
		return fail(rep, -ENOMEM, "out of memory");
	fprintf(rep->out, "0 %llu %s %s\n", map_sectors(m), umpath_map_target(m->map), line);
	free(line);
	return 0;
}

struct ls_state {
	FILE *out;
	unsigned n;
};

static void ls_one(struct umd_map *m, void *opaque)
{
	struct ls_state *st = opaque;

	int dev = umd_map_ublk_dev(m);

	fprintf(st->out, "%s\t%llu\t%u", m->name, map_sectors(m), map_opens(m));
	/* The block device, where there is one (as dmsetup ls shows dm-N). */
	if (dev >= 0)
		fprintf(st->out, "\t/dev/ublkb%d", dev);
	/* The target type, where it is not the default one. */
	if (strcmp(umpath_map_target(m->map), "multipath"))
		fprintf(st->out, "\t%s", umpath_map_target(m->map));
	fputc('\n', st->out);
	st->n++;
}

static int do_ls(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	struct ls_state st = { .out = rep->out };

	if (argc != 1)
		return fail(rep, -EINVAL, "usage: ls");
	umd_map_foreach(c->d, ls_one, &st);
	if (!st.n)
		fprintf(rep->out, "No devices found\n");
	return 0;
}

static bool known_target(const char *name)
{
	for (unsigned i = 0; umpath_target_name(i); i++)
		if (!strcmp(umpath_target_name(i), name))
			return true;
	return false;
}

/* "--target TARGET" at argv[*first]: *first moves past it. */
static int take_target_opt(int argc, char **argv, int *first, const char **ret_target,
			   struct ctl_reply *rep)
{
	if (argc - *first < 1 || strcmp(argv[*first], "--target"))
		return 0;
	if (argc - *first < 2)
		return fail(rep, -EINVAL, "--target: which target? (multipath, multipath-v0)");
	if (!known_target(argv[*first + 1]))
		return fail(rep, -EINVAL, "--target %s: unknown target type (multipath, "
			    "multipath-v0)", argv[*first + 1]);
	*ret_target = argv[*first + 1];
	*first += 2;
	return 0;
}

/* A whole dm table line, "0 LENGTH TARGET PARAMS...", as dmsetup takes
 * it: *first moves past the prefix to the params, *ret_sectors gets
 * LENGTH (0 without the prefix: the size comes from the paths) and
 * *ret_target TARGET (multipath or multipath-v0; left alone without the
 * prefix: --target, or the default). */
static int take_dm_line(int argc, char **argv, int *first, uint64_t *ret_sectors,
			const char **ret_target, struct ctl_reply *rep)
{
	char *end;
	unsigned long long len;

	*ret_sectors = 0;
	if (argc - *first < 3 || !known_target(argv[*first + 2]))
		return 0;
	if (*ret_target && strcmp(*ret_target, argv[*first + 2]))
		return fail(rep, -EINVAL, "--target %s, but the table line is of %s", *ret_target,
			    argv[*first + 2]);
	errno = 0;
	len = strtoull(argv[*first + 1], &end, 10);
	if (strcmp(argv[*first], "0") || errno || end == argv[*first + 1] || *end || !len ||
	    len > UINT64_MAX / UMPATH_SECTOR_SIZE)
		return fail(rep, -EINVAL, "a table line must be one multipath target over the "
			    "whole map: 0 LENGTH multipath PARAMS...");
	*ret_sectors = len;
	*ret_target = argv[*first + 2];
	*first += 3;
	return 0;
}

/* create [--ublk [--ublk-id N]] NAME [--target TARGET] TABLE... */
static int do_create(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	struct umd_map_exports ex = { .ublk_id = -1 };
	char err[CTL_REASON_MAX] = "";
	const char *target = NULL;
	uint64_t sectors;
	int first, r;
	char *table;

	while (argc > 2 && !strncmp(argv[1], "--ublk", 6)) {
		if (!strcmp(argv[1], "--ublk")) {
			ex.ublk = true;
			argv++;
			argc--;
		} else if (!strcmp(argv[1], "--ublk-id") && argc > 3) {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(argv[2], &end, 10);
			if (*end || !*argv[2] || *argv[2] == '-' || errno || n > INT32_MAX)
				return fail(rep, -EINVAL, "--ublk-id: not a device number: %s",
					    argv[2]);
			ex.ublk = true;
			ex.ublk_id = (int)n;
			argv += 2;
			argc -= 2;
		} else {
			break;
		}
	}
	if (argc < 2)
		return fail(rep, -EINVAL, "usage: create [--ublk [--ublk-id N]] NAME "
			    "[--target TARGET] TABLE...");
	first = 2;
	if (take_target_opt(argc, argv, &first, &target, rep) < 0 ||
	    take_dm_line(argc, argv, &first, &sectors, &target, rep) < 0)
		return rep->err;
	table = ctl_join_words(argc - first, argv + first);
	if (!table)
		return fail(rep, -ENOMEM, "out of memory");
	r = umd_map_create_ex(c->d, argv[1], target, table, sectors * UMPATH_SECTOR_SIZE, NULL,
			      &ex, err, sizeof(err));
	if (r < 0) {
		fail_engine(rep, r, err);
		log_refused(argv[1], "create", rep);
	} else {
		ctl_log("map %s: created: %s", argv[1], table);
		if (r > 0) {
			/* Created, but not every export took it: say so. */
			um_sanitize(err);
			fprintf(rep->out, "warning: %s\n", err);
			r = 0;
		}
	}
	free(table);
	return r;
}

static int do_remove(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	char why[CTL_REASON_MAX];
	struct ctl_busy busy;
	bool force = false;
	int r;

	if (argc == 3 && !strcmp(argv[2], "--force"))
		force = true;
	else if (argc != 2)
		return fail(rep, -EINVAL, "usage: remove NAME [--force]");
	/* A forced remove swaps in a table that fails all I/O: not between
	 * a reload's load and its resume. */
	busy_enter(c, &busy, argv[1]);
	r = umd_map_remove_why(c->d, argv[1], force, why, sizeof(why));
	busy_leave(c, &busy);
	if (r == -ENXIO)
		return fail(rep, r, "no such map");
	if (r == -EBUSY && *why)
		return fail(rep, r, "%s (--force removes it anyway)", why);
	if (r == -EBUSY)
		return fail(rep, r, "map is open by a client (--force removes it anyway)");
	if (r < 0)
		return fail_engine(rep, r, NULL);
	ctl_log("map %s: removed%s", argv[1], force ? " (forced)" : "");
	return 0;
}

/* load, and reload = load + noflush suspend + resume. */
static int do_load(struct umd_control *c, int argc, char **argv, bool reload,
		   struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	const char *target = NULL;
	struct ctl_busy busy;
	struct umd_map *m;
	uint64_t sectors;
	int first = 2, r;
	char *table;

	if (argc < 2)
		return fail(rep, -EINVAL, "usage: %s NAME [--target TARGET] TABLE...", argv[0]);
	if (take_target_opt(argc, argv, &first, &target, rep) < 0 ||
	    take_dm_line(argc, argv, &first, &sectors, &target, rep) < 0)
		return rep->err;
	m = get_map(c->d, argv[1], rep);
	if (!m)
		return rep->err;
	if (sectors && sectors != map_sectors(m)) {
		r = fail(rep, -EINVAL, "table length %llu sectors differs from the map's %llu "
			 "(resizing is not supported)", (unsigned long long)sectors, map_sectors(m));
		umd_map_put(m, false);
		return r;
	}
	table = ctl_join_words(argc - first, argv + first);
	if (!table) {
		umd_map_put(m, false);
		return fail(rep, -ENOMEM, "out of memory");
	}
	busy_enter(c, &busy, argv[1]);
	r = umpath_map_load_target(m->map, target, table, err, sizeof(err));
	if (r < 0) {
		fail_engine(rep, r, err);
		log_refused(argv[1], argv[0], rep);
	} else if (reload && !umpath_map_is_suspended(m->map)) {
		/* What multipathd does: a noflush suspend keeps queued I/O
		 * queued across the swap instead of failing it.  A map the
		 * user suspended stays suspended: the table goes live at
		 * their resume. */
		r = umpath_map_suspend(m->map, UMPATH_SUSPEND_NOFLUSH);
		if (!r)
			r = umpath_map_resume(m->map);
		if (r < 0)
			fail_engine(rep, r, NULL);
	}
	busy_leave(c, &busy);
	if (!r)
		ctl_log("map %s: %s: %s", argv[1], reload ? "reloaded" : "loaded", table);
	free(table);
	umd_map_put(m, false);
	return r;
}

static int do_show(struct umd_control *c, int argc, char **argv, bool table,
		   struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	struct umd_map *m;
	bool json = false;
	int r;

	if (!table)
		json = take_json(&argc, argv);
	if (argc != 2)
		return fail(rep, -EINVAL, table ? "usage: table NAME" : "usage: status NAME [--json]");
	m = get_map(c->d, argv[1], rep);
	if (!m)
		return rep->err;
	if (json) {
		r = umd_show_status_json(m, rep->out, err, sizeof(err));
		if (r < 0)
			fail(rep, r, "%s", err);
	} else {
		r = print_line(m, table, rep);
	}
	umd_map_put(m, false);
	return r;
}

/* show topology|paths|maps [NAME] [--json] */
static int do_view(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	bool json = take_json(&argc, argv);
	const char *name;
	int r;

	if (argc < 2 || argc > 3)
		return fail(rep, -EINVAL, "usage: show topology|paths|maps [NAME] [--json]");
	name = argc == 3 ? argv[2] : NULL;
	if (!strcmp(argv[1], "topology"))
		r = umd_show_topology(c->d, name, json, rep->out, err, sizeof(err));
	else if (!strcmp(argv[1], "paths"))
		r = umd_show_paths(c->d, name, json, rep->out, err, sizeof(err));
	else if (!strcmp(argv[1], "maps"))
		r = umd_show_maps(c->d, name, json, rep->out, err, sizeof(err));
	else
		return fail(rep, -EINVAL, "unknown view '%s': topology, paths, maps, status, daemon "
			    "or config", argv[1]);
	if (r < 0)
		return fail(rep, r, "%s", *err ? err : strerror(-r));
	return 0;
}

static int do_message(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	struct umd_map *m;
	int r;

	if (argc < 2)
		return fail(rep, -EINVAL, "usage: message NAME ARGS...");
	m = get_map(c->d, argv[1], rep);
	if (!m)
		return rep->err;
	r = umpath_map_message(m->map, argc - 2, argv + 2);
	umd_map_put(m, false);
	/* The kernel answers a message with an errno only; say what it means
	 * for the one case where it is not obvious. */
	if (r == -EBUSY)
		return fail(rep, r, "map is suspended");
	if (r == -ENOENT && argc == 4)
		fail(rep, r, "error getting device %s", argv[3]);
	else if (r < 0)
		fail_engine(rep, r, NULL);
	if (r < 0) {
		log_refused(argv[1], "message", rep);
		return r;
	}
	if (argc > 2)
		ctl_log("map %s: message %s%s%s", argv[1], argv[2], argc > 3 ? " " : "",
			argc > 3 ? argv[3] : "");
	return 0;
}

static int do_suspend_resume(struct umd_control *c, int argc, char **argv, bool suspend,
			     struct ctl_reply *rep)
{
	struct ctl_busy busy;
	unsigned flags = 0;
	struct umd_map *m;
	int r;

	if (suspend && argc == 3 && !strcmp(argv[2], "--noflush"))
		flags = UMPATH_SUSPEND_NOFLUSH;
	else if (argc != 2)
		return fail(rep, -EINVAL, suspend ? "usage: suspend NAME [--noflush]"
						  : "usage: resume NAME");
	m = get_map(c->d, argv[1], rep);
	if (!m)
		return rep->err;
	busy_enter(c, &busy, argv[1]);
	r = suspend ? umpath_map_suspend(m->map, flags) : umpath_map_resume(m->map);
	busy_leave(c, &busy);
	umd_map_put(m, false);
	if (r < 0)
		return fail_engine(rep, r, NULL);
	ctl_log("map %s: %s", argv[1],
		suspend ? (flags ? "suspended (noflush)" : "suspended") : "resumed");
	return 0;
}

static int do_info(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	struct umd_map *m;

	if (argc != 2)
		return fail(rep, -EINVAL, "usage: info NAME");
	m = get_map(c->d, argv[1], rep);
	if (!m)
		return rep->err;
	/* dmsetup info's layout, less what has no meaning here (major:minor,
	 * read-ahead, UUID). */
	fprintf(rep->out,
		"Name:              %s\n"
		"State:             %s\n"
		"Open count:        %u\n"
		"Event number:      %u\n"
		"Size:              %llu sectors\n"
		"Block size:        %u bytes\n"
		"Number of targets: 1\n",
		m->name, umpath_map_is_suspended(m->map) ? "SUSPENDED" : "ACTIVE", map_opens(m),
		(unsigned)umpath_map_event_nr(m->map), map_sectors(m),
		umpath_map_block_size(m->map));
	umd_map_put(m, false);
	return 0;
}

static int swap_table_locked(struct umd_map *m, const char *target, const char *table,
			     char *err, size_t errlen);

/* reconfigure's table swap (config.c): what reload does, under the same
 * per-name serialisation. */
static int reconfigure_reload(void *opaque, struct umd_map *m, const char *target,
			      const char *table, char *err, size_t errlen)
{
	struct umd_control *c = opaque;
	struct ctl_busy busy;
	int r;

	busy_enter(c, &busy, m->name);
	r = swap_table_locked(m, target, table, err, errlen);
	busy_leave(c, &busy);
	return r;
}

static int do_reconfigure(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	int r;

	if (argc != 1)
		return fail(rep, -EINVAL, "usage: reconfigure");
	r = umd_control_reconfigure(c, rep->out, err, sizeof(err));
	if (r < 0)
		return fail(rep, r, "%s", *err ? err : strerror(-r));	/* err has the detail */
	return 0;
}

static int do_mem(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	int r = umd_control_mem(c->d, argc, argv, err, sizeof(err));

	if (r < 0)
		return fail_engine(rep, r, err);
	ctl_log("mem: %s%s%s%s%s", argc > 1 ? argv[1] : "", argc > 2 ? " " : "",
		argc > 2 ? argv[2] : "", argc > 3 ? " " : "", argc > 3 ? argv[3] : "");
	return 0;
}

/* persist MAP OPTIONS: persistent reservations (persist.c). */
static int do_persist(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	int r = umd_persist(c->d, argc, argv, rep->out, err, sizeof(err));

	if (r < 0)
		return fail(rep, r, "%s", *err ? err : strerror(-r));
	return 0;
}

/* ---- multipathd's path verbs and views (verbs.c, format.c) ----------------- */

/* A reload's swap of m's table, its name held busy by the caller: load,
 * then noflush suspend and resume unless the user suspended it. */
static int swap_table_locked(struct umd_map *m, const char *target, const char *table,
			     char *err, size_t errlen)
{
	int r = umpath_map_load_target(m->map, target, table, err, errlen);

	if (!r && !umpath_map_is_suspended(m->map)) {
		r = umpath_map_suspend(m->map, UMPATH_SUSPEND_NOFLUSH);
		if (!r)
			r = umpath_map_resume(m->map);
	}
	return r;
}

#define HOLDERS_MAX 16

/* The maps whose table names a path, each with a reference. */
struct holders {
	const char *path;
	struct umd_map *m[HOLDERS_MAX];
	unsigned n;
	bool more;		/* more maps than HOLDERS_MAX have it */
	bool found;		/* scratch, per map */
};

static void holder_path(const struct umpath_path_info *p, void *opaque)
{
	struct holders *h = opaque;

	if (!strcmp(p->path, h->path))
		h->found = true;
}

static void holder_map(struct umd_map *m, void *opaque)
{
	struct holders *h = opaque;

	h->found = false;
	umpath_map_foreach(m->map, NULL, holder_path, h);
	if (h->found && h->n == HOLDERS_MAX)
		h->more = true;
	if (h->found && h->n < HOLDERS_MAX) {
		h->m[h->n] = umd_map_get(m->d, m->name, false);
		h->n += h->m[h->n] != NULL;
	}
}

static void holders_put(struct holders *h)
{
	for (unsigned i = 0; i < h->n; i++)
		umd_map_put(h->m[i], false);
	h->n = 0;
}

/* fail path PATH, reinstate path PATH: in every map that has it.  As
 * multipathd, a failed path is left alone by the checker until it is
 * reinstated by the operator. */
static int do_fail_reinstate(struct umd_control *c, const char *path, bool fail_it,
			     struct ctl_reply *rep)
{
	struct holders h = { .path = path };
	char *msg[2] = { (char *)(fail_it ? "fail_path" : "reinstate_path"), (char *)path };
	int r = 0;

	umd_map_foreach(c->d, holder_map, &h);
	if (!h.n)
		return fail(rep, -ENODEV, "no map has path %s", path);
	if (h.more) {
		holders_put(&h);
		return fail(rep, -E2BIG, "more than %u maps have path %s: fail_path and "
			    "reinstate_path messages to each", HOLDERS_MAX, path);
	}
	for (unsigned i = 0; i < h.n && !r; i++) {
		r = umpath_map_message(h.m[i]->map, 2, msg);
		if (r < 0) {
			fail_engine(rep, r, r == -EBUSY ? "map is suspended" : NULL);
			log_refused(h.m[i]->name, msg[0], rep);
			break;
		}
		umd_checker_path_disable(h.m[i], path, fail_it);
		ctl_log("map %s: %s %s (operator)", h.m[i]->name, fail_it ? "fail path" :
			"reinstate path", path);
		fputs(h.m[i]->name, rep->out);
		fprintf(rep->out, ": path %s\n", fail_it ? "failed" : "reinstated");
	}
	holders_put(&h);
	return r;
}

/* The map a path verb acts on: MAP if named, else the one that holds the
 * path (del), or the only map (add). */
static struct umd_map *path_verb_map(struct umd_control *c, const char *path, const char *name,
				     bool add, struct ctl_reply *rep)
{
	struct holders h = { .path = path };
	struct umd_map *m;

	if (name)
		return get_map(c->d, name, rep);
	if (add) {
		m = umd_map_get_default(c->d, false);
		if (!m)
			fail(rep, -EINVAL, "to which map? (add path PATH to MAP)");
		return m;
	}
	umd_map_foreach(c->d, holder_map, &h);
	if (h.n == 1) {
		m = h.m[0];
		h.n = 0;
		return m;
	}
	holders_put(&h);
	if (!h.n)
		fail(rep, -ENODEV, "no map has path %s", path);
	else
		fail(rep, -EINVAL, "several maps have path %s: del path PATH from MAP", path);
	return NULL;
}

/* add path PATH [to MAP] [group N], del path PATH [from MAP]: the map's
 * table rewritten with it or without it and swapped in as a reload does,
 * queued I/O kept.  A refusal leaves the map as it was. */
static int do_add_del(struct umd_control *c, int argc, char **argv, bool add,
		      struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "", *table = NULL, *end;
	const char *path = argv[2], *name = NULL;
	struct umpath_snapshot *snap = NULL;
	unsigned long group = 0;
	unsigned where = 0;
	struct ctl_busy busy;
	struct umd_map *m;
	int r;

	for (int i = 3; i < argc; i += 2) {
		if (i + 1 < argc && !strcmp(argv[i], add ? "to" : "from") && !name) {
			name = argv[i + 1];
		} else if (add && i + 1 < argc && !strcmp(argv[i], "group") && !group) {
			errno = 0;
			group = strtoul(argv[i + 1], &end, 10);
			if (*end || errno || !group || group > UINT32_MAX || *argv[i + 1] == '-')
				return fail(rep, -EINVAL, "group %s: not a group number",
					    argv[i + 1]);
		} else {
			return fail(rep, -EINVAL, add ? "usage: add path PATH [to MAP] [group N]"
						      : "usage: del path PATH [from MAP]");
		}
	}
	m = path_verb_map(c, path, name, add, rep);
	if (!m)
		return rep->err;
	if (strcmp(umpath_map_target(m->map), "multipath")) {
		r = fail(rep, -EOPNOTSUPP, "%s path: not for %s maps (reload the table)",
			 argv[0], umpath_map_target(m->map));
		goto out;
	}
	/* Opened and measured before anything is held: that may take as
	 * long as a connection does. */
	if (add && (r = umd_path_fits(c->d, m->map, path, err, sizeof(err))) < 0) {
		fail(rep, r, "%s", err);
		goto refused;
	}
	busy_enter(c, &busy, m->name);
	r = umpath_map_snapshot(m->map, &snap);
	/* Our load would replace the one the user left for their resume. */
	if (!r && snap->has_inactive) {
		snprintf(err, sizeof(err), "a loaded table waits for resume (resume the map, or "
			 "reload it)");
		r = -EBUSY;
	}
	if (!r && add)
		r = umd_table_add_path(snap, path, (unsigned)group, &table, &where, err,
				       sizeof(err));
	else if (!r)
		r = umd_table_del_path(snap, path, &table, &where, err, sizeof(err));
	if (!r) {
		r = swap_table_locked(m, NULL, table, err, sizeof(err));
		if (r < 0)
			umpath_map_clear(m->map);	/* a load that went in */
		if (r < 0)
			fail_engine(rep, r, err);
	} else {
		fail(rep, r, "%s", *err ? err : strerror(-r));
	}
	busy_leave(c, &busy);
	umpath_snapshot_free(snap);
	if (r < 0)
		goto refused;
	ctl_log("map %s: %s path %s (operator): %s", m->name, argv[0], path, table);
	fputs(m->name, rep->out);
	if (add)
		fprintf(rep->out, ": path added to group %u%s\n", where,
			group ? "" : " (a new group)");
	else if (where)
		fprintf(rep->out, ": path deleted with group %u, which it left empty\n", where);
	else
		fprintf(rep->out, ": path deleted\n");
	goto out;
refused:
	log_refused(m->name, argv[0], rep);
out:
	free(table);
	umd_map_put(m, false);
	return r;
}

static int do_path_verb(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	bool add = !strcmp(argv[0], "add");

	if (argc < 3 || strcmp(argv[1], "path") || !*argv[2])
		return fail(rep, -EINVAL, "usage: %s path PATH%s", argv[0],
			    add ? " [to MAP] [group N]" : strcmp(argv[0], "del") ? "" :
			    " [from MAP]");
	if (add || !strcmp(argv[0], "del"))
		return do_add_del(c, argc, argv, add, rep);
	if (argc != 3)
		return fail(rep, -EINVAL, "usage: %s path PATH", argv[0]);
	return do_fail_reinstate(c, argv[2], !strcmp(argv[0], "fail"), rep);
}

/* resize map MAP: the map takes its paths' size now, as multipathd's
 * resize map after a LUN grew; clients that connect from then on see it. */
static int do_resize(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	unsigned long long old;
	struct ctl_busy busy;
	struct umd_map *m;
	uint64_t size;
	int r;

	if (argc != 3 || strcmp(argv[1], "map"))
		return fail(rep, -EINVAL, "usage: resize map MAP");
	m = get_map(c->d, argv[2], rep);
	if (!m)
		return rep->err;
	if (umd_map_ublk_dev(m) >= 0) {
		r = fail(rep, -EOPNOTSUPP, "the map is /dev/ublkb%d, whose size is fixed",
			 umd_map_ublk_dev(m));
		goto out;
	}
	old = map_sectors(m);
	busy_enter(c, &busy, m->name);
	r = umpath_map_resize(m->map, &size);
	busy_leave(c, &busy);
	if (r < 0) {
		fail_engine(rep, r, r == -EINVAL ? "cannot resize" : NULL);
		log_refused(m->name, "resize", rep);
		goto out;
	}
	size /= UMPATH_SECTOR_SIZE;
	if (size == old) {
		fputs(m->name, rep->out);
		fprintf(rep->out, ": map is still the same size (%llu sectors)\n", old);
	} else {
		ctl_log("map %s: resized from %llu to %llu sectors (operator)", m->name, old,
			(unsigned long long)size);
		fputs(m->name, rep->out);
		fprintf(rep->out, ": resized from %llu to %llu sectors\n", old,
			(unsigned long long)size);
	}
out:
	umd_map_put(m, false);
	return r;
}

/* The daemon's state, in multipathd's words: idle, running (a map's
 * state is being changed), shutdown. */
static const char *daemon_state(struct umd_control *c, bool *ret_busy)
{
	const char *s;

	pthread_mutex_lock(&c->lock);
	*ret_busy = !list_empty(&c->busy);
	s = c->stopping ? "shutdown" : *ret_busy ? "running" : "idle";
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* show status | daemon | paths [raw] format F | maps [raw] format F: 1 if
 * it was one of those (rep set), 0 if not. */
static int do_show_verbs(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	char err[CTL_REASON_MAX] = "";
	bool raw, busy, paths;
	int r, f;

	if (argc == 2 && !strcmp(argv[1], "config")) {
		r = umd_show_config(c->d, rep->out, err, sizeof(err));
		if (r < 0)
			fail(rep, r, "%s", *err ? err : strerror(-r));
		return 1;
	}
	if (argc == 2 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "daemon"))) {
		const char *state = daemon_state(c, &busy);

		if (!strcmp(argv[1], "daemon")) {
			umd_show_daemon(rep->out, state);
			return 1;
		}
		r = umd_show_status(c->d, busy, rep->out, err, sizeof(err));
		if (r < 0)
			fail(rep, r, "%s", err);
		return 1;
	}
	/* multipathd's words win over a map named "raw" or "format". */
	if (argc < 3 || (strcmp(argv[1], "paths") && strcmp(argv[1], "maps")) ||
	    (strcmp(argv[2], "raw") && strcmp(argv[2], "format")))
		return 0;
	raw = !strcmp(argv[2], "raw");
	f = 2 + raw;
	paths = !strcmp(argv[1], "paths");
	if (argc != f + 2 || strcmp(argv[f], "format")) {
		fail(rep, -EINVAL, "usage: show %s [raw] format FORMAT", argv[1]);
		return 1;
	}
	r = paths ? umd_show_paths_format(c->d, !raw, argv[f + 1], rep->out, err, sizeof(err))
		  : umd_show_maps_format(c->d, !raw, argv[f + 1], rep->out, err, sizeof(err));
	if (r < 0)
		fail(rep, r, "%s", *err ? err : strerror(-r));
	return 1;
}

static void dispatch(struct umd_control *c, int argc, char **argv, struct ctl_reply *rep)
{
	const char *verb = argv[0];

	if (!strcmp(verb, "ls"))
		do_ls(c, argc, argv, rep);
	else if (!strcmp(verb, "create"))
		do_create(c, argc, argv, rep);
	else if (!strcmp(verb, "remove"))
		do_remove(c, argc, argv, rep);
	else if (!strcmp(verb, "load") || !strcmp(verb, "reload"))
		do_load(c, argc, argv, !strcmp(verb, "reload"), rep);
	else if (!strcmp(verb, "table") || !strcmp(verb, "status"))
		do_show(c, argc, argv, !strcmp(verb, "table"), rep);
	else if (!strcmp(verb, "message"))
		do_message(c, argc, argv, rep);
	else if (!strcmp(verb, "suspend") || !strcmp(verb, "resume"))
		do_suspend_resume(c, argc, argv, !strcmp(verb, "suspend"), rep);
	else if (!strcmp(verb, "info"))
		do_info(c, argc, argv, rep);
	else if (!strcmp(verb, "show") && !do_show_verbs(c, argc, argv, rep))
		do_view(c, argc, argv, rep);
	else if (!strcmp(verb, "show"))
		;	/* answered */
	else if (!strcmp(verb, "add") || !strcmp(verb, "del") || !strcmp(verb, "fail") ||
		 !strcmp(verb, "reinstate"))
		do_path_verb(c, argc, argv, rep);
	else if (!strcmp(verb, "resize"))
		do_resize(c, argc, argv, rep);
	else if (!strcmp(verb, "reconfigure"))
		do_reconfigure(c, argc, argv, rep);
	else if (!strcmp(verb, "mem"))
		do_mem(c, argc, argv, rep);
	else if (!strcmp(verb, "persist"))
		do_persist(c, argc, argv, rep);
	else
		fail(rep, -EINVAL, "unknown command '%s'", verb);
}

/* ---- connections ---------------------------------------------------------- */

/* Read one request, bounded in size and in time: a silent or trickling
 * client gives up its thread after CTL_RECV_TIMEOUT_MS.  0 and the words,
 * -ENODATA if the client went away before saying anything, or -errno. */
static int read_request(int fd, char **ret_buf, char ***ret_argv, int *ret_argc)
{
	long long deadline = now_ms() + CTL_RECV_TIMEOUT_MS;
	size_t len = 0, cap = 0;
	char *buf = NULL, **argv;
	int r;

	argv = calloc(CTL_MAX_WORDS, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : CTL_BUF_INIT;
			char *nb;

			if (cap == CTL_MAX_REQUEST) {
				r = -E2BIG;
				break;
			}
			if (ncap > CTL_MAX_REQUEST)
				ncap = CTL_MAX_REQUEST;
			nb = realloc(buf, ncap);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			r = -errno;
			break;
		}
		if (!r)
			continue;	/* the deadline, checked above */
		n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (!n) {	/* EOF before the end of the request */
			r = len ? -EPROTO : -ENODATA;
			break;
		}
		len += (size_t)n;
		r = ctl_parse_request(buf, len, argv, CTL_MAX_WORDS, ret_argc);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0) {
		free(buf);
		free(argv);
		return r;
	}
	*ret_buf = buf;
	*ret_argv = argv;
	return 0;
}

static void send_reply(int fd, struct ctl_reply *rep)
{
	char line[CTL_REASON_MAX + 64];

	if (rep->out) {
		fclose(rep->out);	/* sets buf and len */
		rep->out = NULL;
	}
	if (rep->err) {
		snprintf(line, sizeof(line), "ERR %s %s\n", errname(rep->err), rep->reason);
		if (!um_send_all(fd, line, strlen(line)) && *rep->detail) {
			snprintf(line, sizeof(line), "%s\n", rep->detail);
			um_send_all(fd, line, strlen(line));
		}
		return;
	}
	if (!um_send_all(fd, "OK\n", 3) && rep->len)
		um_send_all(fd, rep->buf, rep->len);
}

/* ---- the event stream ------------------------------------------------ */

static bool control_stopping(struct umd_control *c)
{
	bool stopping;

	pthread_mutex_lock(&c->lock);
	stopping = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return stopping;
}

/* Format what waits in the subscription, at most max events (0: all);
 * NULL on ENOMEM, else a buffer (maybe empty) to free. */
static char *take_events(struct umd_event_sub *s, bool json, unsigned max, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (unsigned n = 0; !max || n < max; n++) {
		struct umd_event_msg *msg;
		uint64_t lost;

		msg = umd_events_next(s, &lost);
		if (lost)
			umd_show_events_lost(f, lost, json);
		if (!msg)
			break;
		umd_show_event(f, msg, json);
		umd_event_msg_put(msg);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	*ret_len = len;
	return buf;
}

/* A follower of `events`, served on the daemon's loop once its OK is
 * sent: no thread waits for it.  Everything here runs on d->loop. */
struct follower {
	struct ctl_conn *conn;
	struct umd_event_sub *s;
	bool json;
	char *out;			/* formatted, not yet all sent */
	size_t len, off;
	bool ending;			/* the last word is in out: close once sent */
	struct umpath_timer *give_up;	/* a follower that does not read its last word */
	struct umpath_timer *kick;	/* the first step, on the loop */
};

static void conn_end(struct ctl_conn *conn);

static void follower_finish(struct follower *f, const char *why)
{
	struct ctl_conn *conn = f->conn;
	struct umpath_loop *loop = conn->c->d->loop;

	umpath_loop_del_fd(loop, conn->fd);
	umpath_loop_del_fd(loop, umd_events_fd(f->s));
	umpath_timer_free(f->give_up);
	umpath_timer_free(f->kick);
	umd_events_unsubscribe(f->s);
	ctl_log("control: pid %ld: event stream ended: %s", (long)conn->pid, why);
	free(f->out);
	free(f);
	conn_end(conn);
}

/* Send what the socket takes; false if f is gone. */
static bool follower_flush(struct follower *f)
{
	while (f->off < f->len) {
		ssize_t n = send(f->conn->fd, f->out + f->off, f->len - f->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n < 0) {
			follower_finish(f, "client left");
			return false;
		}
		f->off += (size_t)n;
	}
	free(f->out);
	f->out = NULL;
	f->len = f->off = 0;
	if (f->ending) {
		follower_finish(f, "umpathd stopping");
		return false;
	}
	return true;
}

/* The daemon stops: what is pending, what is queued, the end line, so
 * that the follower knows this was no crash. */
static void follower_end(struct follower *f)
{
	char *rest, *end = NULL;
	size_t rest_len = 0, end_len = 0;
	FILE *out;

	if (f->ending)
		return;
	f->ending = true;
	umpath_timer_arm(f->give_up, CTL_SEND_TIMEOUT_S * 1000000000ull);
	out = open_memstream(&end, &end_len);
	if (!out)
		return;
	if (f->off < f->len)
		fwrite(f->out + f->off, 1, f->len - f->off, out);
	rest = take_events(f->s, f->json, 0, &rest_len);
	if (rest)
		fwrite(rest, 1, rest_len, out);
	free(rest);
	umd_show_events_end(out, f->json);
	if (fclose(out)) {
		free(end);
		return;
	}
	free(f->out);
	f->out = end;
	f->len = end_len;
	f->off = 0;
}

/* Watch for what can move: the socket's input always (end of file is the
 * client gone, or our stop), its output while something waits, new
 * events while nothing does. */
static void follower_update(struct follower *f)
{
	struct umpath_loop *loop = f->conn->c->d->loop;
	bool pending = f->off < f->len;

	umpath_loop_mod_fd(loop, f->conn->fd, EPOLLIN | EPOLLRDHUP | (pending ? EPOLLOUT : 0));
	umpath_loop_mod_fd(loop, umd_events_fd(f->s), pending || f->ending ? 0 : EPOLLIN);
}

/* Format more events when the last batch is out; false if f is gone. */
static bool follower_step(struct follower *f)
{
	if (!f->ending && f->off == f->len) {
		free(f->out);
		f->out = take_events(f->s, f->json, CTL_EVENTS_BATCH, &f->len);
		f->off = 0;
		if (!f->out) {
			f->len = 0;
			follower_finish(f, "out of memory");
			return false;
		}
		if (!f->len && umd_events_closed(f->s))
			follower_end(f);
	}
	if (!follower_flush(f))
		return false;
	follower_update(f);
	return true;
}

static void on_follower_sock(void *opaque, uint32_t events)
{
	struct follower *f = opaque;

	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		char junk[256];
		ssize_t n = recv(f->conn->fd, junk, sizeof(junk), MSG_DONTWAIT);

		/* Words from the client mean nothing here; end of file is
		 * the client gone or our stop. */
		if (!n || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (!control_stopping(f->conn->c)) {
				follower_finish(f, "client left");
				return;
			}
			follower_end(f);
		}
	}
	follower_step(f);
}

static void on_follower_events(void *opaque, uint32_t events)
{
	follower_step(opaque);
}

static void on_follower_kick(void *opaque)
{
	follower_step(opaque);
}

static void on_follower_give_up(void *opaque)
{
	follower_finish(opaque, "umpathd stopping, the client did not read its last line");
}

/* Serve s to conn from the loop from now on; false (nothing handed off)
 * if that cannot start. */
static bool follower_start(struct ctl_conn *conn, struct umd_event_sub *s, bool json)
{
	struct umpath_loop *loop = conn->c->d->loop;
	struct follower *f = calloc(1, sizeof(*f));
	int flags = fcntl(conn->fd, F_GETFL);

	if (!f || flags < 0 || fcntl(conn->fd, F_SETFL, flags | O_NONBLOCK) < 0)
		goto fail;
	f->conn = conn;
	f->s = s;
	f->json = json;
	if (umpath_timer_new(loop, on_follower_give_up, f, &f->give_up) < 0 ||
	    umpath_timer_new(loop, on_follower_kick, f, &f->kick) < 0)
		goto fail;
	/* Watched for nothing until the first step sets what to watch. */
	if (umpath_loop_add_fd(loop, umd_events_fd(s), 0, on_follower_events, f) < 0)
		goto fail;
	if (umpath_loop_add_fd(loop, conn->fd, 0, on_follower_sock, f) < 0) {
		umpath_loop_del_fd(loop, umd_events_fd(s));
		goto fail;
	}
	/* Last: from here on f is the loop's. */
	umpath_timer_arm(f->kick, 0);
	return true;
fail:
	if (f) {
		umpath_timer_free(f->give_up);
		umpath_timer_free(f->kick);
	}
	free(f);
	return false;
}

/* events [NAME] [--json]: true if the stream was handed to the loop (conn
 * is no longer ours), false with rep set (an error, or rep->err 0 and
 * nothing to send when the stream could not start after its OK). */
static bool do_events(struct ctl_conn *conn, int argc, char **argv, struct ctl_reply *rep)
{
	bool json = take_json(&argc, argv);
	const char *map = argc == 2 ? argv[1] : NULL;
	struct umd_event_sub *s;
	int r;

	if (argc > 2) {
		fail(rep, -EINVAL, "usage: events [NAME] [--json]");
		return false;
	}
	r = umd_events_subscribe(conn->c->d, map, &s);
	if (r == -EAGAIN) {
		fail(rep, r, "too many event followers (at most %u)", UMD_EVENTS_MAX_SUBS);
		return false;
	}
	if (r < 0) {
		fail(rep, r, "%s", r == -ESHUTDOWN ? "umpathd is stopping" : strerror(-r));
		return false;
	}
	rep->streamed = true;
	if (um_send_all(conn->fd, "OK\n", 3) < 0) {
		umd_events_unsubscribe(s);
		return false;
	}
	ctl_log("control: pid %ld uid %u follows the events of %s", (long)conn->pid,
		(unsigned)conn->uid, map ? map : "every map");
	if (follower_start(conn, s, json))
		return true;
	ctl_log("control: pid %ld: event stream ended: cannot watch it", (long)conn->pid);
	umd_events_unsubscribe(s);
	return false;
}

static void control_put(struct umd_control *c);

/* Serve one request; true if conn was handed to the loop (an event
 * stream), which ends it. */
static bool serve(struct ctl_conn *conn)
{
	struct ctl_reply rep = { .err = 0 };
	char *buf = NULL, **argv = NULL;
	bool handed_off = false;
	int argc = 0, r;

	r = read_request(conn->fd, &buf, &argv, &argc);
	if (r == -ENODATA)
		return false;	/* connected and left: a liveness probe */
	if (!conn->allowed) {
		/* Whatever it asked: the request was read only so that the
		 * close does not reset the connection before it reads this. */
		fail(&rep, -EACCES, "permission denied: uid %u is not allowed",
		     (unsigned)conn->uid);
	} else if (r == -ETIMEDOUT) {
		fail(&rep, r, "request not received within %d ms", CTL_RECV_TIMEOUT_MS);
	} else if (r == -E2BIG) {
		fail(&rep, r, "request larger than %u bytes", CTL_MAX_REQUEST);
	} else if (r < 0) {
		fail(&rep, r == -ENOMEM ? r : -EINVAL, "malformed request");
	} else if (!argc) {
		fail(&rep, -EINVAL, "empty request");
	} else if (!strcmp(argv[0], "events")) {
		handed_off = do_events(conn, argc, argv, &rep);
	} else {
		rep.out = open_memstream(&rep.buf, &rep.len);
		if (!rep.out)
			fail(&rep, -ENOMEM, "out of memory");
		else
			dispatch(conn->c, argc, argv, &rep);
	}
	if (handed_off)
		goto out;	/* conn is the loop's now */
	if (!conn->allowed)
		ctl_log("control: pid %ld uid %u refused", (long)conn->pid, (unsigned)conn->uid);
	else if (rep.err)
		ctl_log("control: pid %ld uid %u: %s%s%s: %s", (long)conn->pid, (unsigned)conn->uid,
			argc ? argv[0] : "request", argc > 1 ? " " : "", argc > 1 ? argv[1] : "",
			rep.reason);
	if (!rep.streamed)
		send_reply(conn->fd, &rep);
out:
	free(rep.buf);
	free(buf);
	free(argv);
	return handed_off;
}

/* A connection is over: off the list, closed, its reference dropped. */
static void conn_end(struct ctl_conn *conn)
{
	struct umd_control *c = conn->c;

	pthread_mutex_lock(&c->lock);
	list_del_init(&conn->node);
	close(conn->fd);	/* under the lock: stop may shutdown() it */
	c->nconns--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	free(conn);
	control_put(c);
}

static void *conn_thread(void *arg)
{
	struct ctl_conn *conn = arg;

	if (!serve(conn))
		conn_end(conn);
	return NULL;
}

/* Refuse a connection from the accepting loop itself, without blocking it. */
static void refuse_now(int fd, int err, const char *reason)
{
	char line[256];

	snprintf(line, sizeof(line), "ERR %s %s\n", errname(err), reason);
	/* Best effort: a client gone already needs no answer. */
	send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void start_conn(struct umd_control *c, int fd)
{
	struct timeval tv = { .tv_sec = CTL_SEND_TIMEOUT_S };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct ctl_conn *conn;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		ctl_log("control: SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return;
	}
	/* A client that does not read its reply blocks a send at most this. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		refuse_now(fd, -ENOMEM, "out of memory");
		return;
	}
	conn->c = c;
	conn->fd = fd;
	conn->uid = cred.uid;
	conn->pid = cred.pid;
	conn->allowed = cred.uid == 0 || cred.uid == geteuid();

	pthread_mutex_lock(&c->lock);
	if (c->nconns >= CTL_MAX_CONNS) {
		pthread_mutex_unlock(&c->lock);
		free(conn);
		refuse_now(fd, -EAGAIN, "too many requests at once, try again");
		return;
	}
	c->nconns++;
	c->accepted++;
	c->refs++;
	list_add_tail(&conn->node, &c->conns);
	pthread_mutex_unlock(&c->lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, conn_thread, conn);
	pthread_attr_destroy(&attr);
	if (r) {
		pthread_mutex_lock(&c->lock);
		list_del_init(&conn->node);
		c->nconns--;
		c->refs--;	/* stop holds its own: never the last */
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		free(conn);
		refuse_now(fd, -r, "cannot start a thread for the request");
	}
}

/* The listening socket is readable: take every waiting client (on the
 * daemon's loop; start_conn never blocks). */
static void on_listen(void *opaque, uint32_t events)
{
	struct umd_control *c = opaque;

	for (;;) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			start_conn(c, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN)
			return;
		/* Out of descriptors or memory: stop watching for a while
		 * rather than spin on a socket that stays readable. */
		ctl_log("control: accept: %s", strerror(errno));
		umpath_loop_mod_fd(c->d->loop, c->listen_fd, 0);
		umpath_timer_arm(c->backoff, CTL_ACCEPT_BACKOFF_MS * 1000000ull);
		return;
	}
}

static void on_backoff(void *opaque)
{
	struct umd_control *c = opaque;

	umpath_loop_mod_fd(c->d->loop, c->listen_fd, EPOLLIN);
}

/* ---- start and stop --------------------------------------------------- */

/* mkdir -p of the socket's directory, new levels 0700.  An existing
 * directory must belong to us or root: whoever owns it can replace the
 * socket under us. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash)
		return 0;	/* relative to the working directory */
	if (slash == dir)
		return 0;	/* "/NAME" */
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		ctl_log("control: directory %s belongs to uid %u", dir, (unsigned)st.st_uid);
		return -EPERM;
	}
	return 0;
}

/* A socket file left by a daemon that died is removed; one that a live
 * daemon answers on is not ours to take. */
static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	r = r < 0 ? -errno : 0;
	close(fd);
	/* EAGAIN: its backlog is full, so somebody is listening. */
	if (!r || r == -EAGAIN || r == -EINPROGRESS)
		return -EADDRINUSE;
	if (r != -ECONNREFUSED)
		return r;
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	ctl_log("control: removed stale socket %s", sa->sun_path);
	return 0;
}

static void control_free(struct umd_control *c)
{
	umpath_timer_free(c->backoff);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->path);
	free(c);
}

static void control_put(struct umd_control *c)
{
	bool last;

	pthread_mutex_lock(&c->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		control_free(c);
}

static void unlink_ours(struct umd_control *c)
{
	struct stat st;

	/* Only the file we bound: a daemon started since may own the path. */
	if (!lstat(c->path, &st) && st.st_dev == c->sock_dev && st.st_ino == c->sock_ino)
		unlink(c->path);
}

int umd_control_start(struct umd *d, const char *path, struct umd_control **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct umd_control *c;
	struct stat st;
	mode_t old_mask;
	int r;

	*ret = NULL;
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->d = d;
	c->listen_fd = -1;
	c->refs = 1;
	pthread_mutex_init(&c->lock, NULL);
	um_cond_init_monotonic(&c->cond);
	list_init(&c->conns);
	list_init(&c->busy);
	c->path = strdup(path);
	if (!c->path) {
		r = -ENOMEM;
		goto fail;
	}
	r = make_parent(path);
	if (r < 0)
		goto fail;
	r = clear_stale(&sa);
	if (r < 0)
		goto fail;
	r = umpath_timer_new(d->loop, on_backoff, c, &c->backoff);
	if (r < 0)
		goto fail;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		r = -errno;
		goto fail;
	}
	/* Born 0600: no window in which another user could connect.  The
	 * umask is per process; nothing else creates files this early. */
	old_mask = umask(0177);
	r = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	r = r < 0 ? -errno : 0;
	umask(old_mask);
	if (r < 0)
		goto fail;
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
		r = -errno;
		unlink(path);
		goto fail;
	}
	c->sock_dev = st.st_dev;
	c->sock_ino = st.st_ino;
	if (listen(c->listen_fd, 64) < 0) {
		r = -errno;
		unlink_ours(c);
		goto fail;
	}
	r = umpath_loop_add_fd(d->loop, c->listen_fd, EPOLLIN, on_listen, c);
	if (r < 0) {
		unlink_ours(c);
		goto fail;
	}
	c->watched = true;
	*ret = c;
	return 0;
fail:
	control_free(c);
	return r;
}

void umd_control_counts(struct umd_control *c, unsigned *ret_open, uint64_t *ret_accepted)
{
	pthread_mutex_lock(&c->lock);
	*ret_open = c->nconns;
	*ret_accepted = c->accepted;
	pthread_mutex_unlock(&c->lock);
}

void umd_control_quiesce(struct umd_control *c)
{
	if (!c || c->listen_fd < 0)
		return;
	/* Once these return, on_listen is not running and will not run
	 * again. */
	if (c->watched) {
		umpath_loop_del_fd(c->d->loop, c->listen_fd);
		umpath_timer_cancel(c->backoff);
		c->watched = false;
	}
	/* No new clients from here on: the path may be reused at once. */
	unlink_ours(c);
	close(c->listen_fd);
	c->listen_fd = -1;
}

int umd_control_stop(struct umd_control *c, uint64_t deadline_ns)
{
	struct ctl_conn *conn;
	int r = 0;

	if (!c)
		return 0;
	umd_control_quiesce(c);

	pthread_mutex_lock(&c->lock);
	/* A client still sending (or silent) is cut short; a request being
	 * served goes on and can still write its reply.  An event stream sees
	 * the end of file and, by this flag, says goodbye and ends. */
	c->stopping = true;
	list_for_each_entry(conn, &c->conns, node)
		shutdown(conn->fd, SHUT_RD);
	while (c->nconns && !um_cond_wait_until(&c->cond, &c->lock, deadline_ns))
		;
	if (c->nconns) {
		ctl_log("control: %u request(s) still running at the shutdown bound, not waiting",
			c->nconns);
		r = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&c->lock);
	/* The last connection thread frees it if some are still running. */
	control_put(c);
	return r;
}

int umd_control_reconfigure(struct umd_control *c, FILE *out, char *err, size_t errlen)
{
	int r;

	umd_notify_reloading();
	r = umd_config_reconfigure(c->d, reconfigure_reload, c, out, err, errlen);
	umd_notify_reloaded(c->d, r, err);
	return r;
}
