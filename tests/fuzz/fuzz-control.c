/* fuzz-control.c - umpathd's control protocol, request to reply: the bytes
 * a client sends, split into requests (each ends with an empty word, as
 * ctlproto.h says), each served by control.c's own connection code on a
 * socketpair, as a connection thread serves it.
 *
 * Every reply must be "OK\n" and output, or "ERR ENAME reason\n" and at
 * most one detail line;
 * the output of a --json view must be one valid JSON value (UTF-8, escaped
 * control characters).  Each input starts from two maps, a and b, on mem
 * paths, and every map is removed at its end: none may stay referenced.
 * control.c is included, white-box, to reach serve() without a socket
 * file or threads. */
#undef NDEBUG
#include "../../daemon/control.c"

#include <umpath/umpath-mem.h>

#include "fuzz.h"

#define FZ_MAX_INPUT 16384
#define MAX_REQUESTS 8

static struct umd d;
static struct umd_control ctl;
static const char *const names[] = { "p0", "p1", "p2", "p3" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct umd_opts o = { .io_timeout_ms = 1000, .pool_size = 16 };

	if (fz_private_cwd())
		return 1;
	FZ_CHECK(umd_init(&d, &o) == 0);
	FZ_CHECK(umpath_mem_store_new(d.ctx, 64 * 1024, 4, names, 1) == 0);
	/* What umd_control_start sets up, without the socket and acceptor. */
	ctl.d = &d;
	ctl.listen_fd = -1;
	pthread_mutex_init(&ctl.lock, NULL);
	pthread_cond_init(&ctl.cond, NULL);
	list_init(&ctl.conns);
	list_init(&ctl.busy);
	ctl.refs = 1;
	return 0;
}

static void remove_one(struct umd_map *m, void *opaque)
{
	FZ_CHECK(umd_map_remove(m->d, m->name, true) == 0);
}

static unsigned nr_maps(void)
{
	struct umd_map *m;
	unsigned n = 0;

	pthread_mutex_lock(&d.lock);
	list_for_each_entry(m, &d.maps, node)
		n++;
	pthread_mutex_unlock(&d.lock);
	return n;
}

/* Whether the request has the flag: a word that is not the value of the
 * word before it ("show maps raw format --json" prints the format
 * "--json", as multipathd's verb would, and is no JSON view). */
static bool has_flag(const char *req, size_t len, const char *flag)
{
	const char *prev = "";

	for (size_t i = 0; i < len; i += strlen(req + i) + 1) {
		if (!strcmp(req + i, flag) && strcmp(prev, "format"))
			return true;
		prev = req + i;
	}
	return false;
}

static void check_reply(const char *req, size_t reqlen, const char *rep, size_t len)
{
	if (len >= 3 && !memcmp(rep, "OK\n", 3)) {
		bool view = !strcmp(req, "show") || !strcmp(req, "status");

		if (view && has_flag(req, reqlen, "--json") && !fz_json_valid(rep + 3, len - 3)) {
			fprintf(stderr, "invalid JSON: %.*s\n", (int)(len - 3), rep + 3);
			FZ_CHECK(!"--json output is valid JSON");
		}
		return;
	}
	/* "ERR ENAME reason\n", maybe one detail line after it (ctlproto.h). */
	const char *nl = memchr(rep, '\n', len);
	bool ok = len > 5 && !memcmp(rep, "ERR E", 5) && nl && !memchr(rep, '\0', len);

	if (ok && nl != rep + len - 1) {
		const char *nl2 = memchr(nl + 1, '\n', len - (size_t)(nl + 1 - rep));

		ok = nl2 == rep + len - 1 && nl2 > nl + 1;
	}
	if (!ok) {
		fprintf(stderr, "bad reply to '%s': '%.*s'\n", req, (int)len, rep);
		FZ_CHECK(!"an error is one status line and at most one detail line");
	}
}

/* Serve one request (req, len bytes, as the client sends it). */
static void serve_one(const char *req, size_t len)
{
	struct ctl_conn conn = { .c = &ctl, .uid = getuid(), .pid = getpid(), .allowed = true };
	char *rep = NULL;
	size_t replen = 0, cap = 0;
	int sv[2];
	ssize_t n;

	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	/* FZ_MAX_INPUT fits in the socket buffer: no writer thread needed. */
	FZ_CHECK(send(sv[0], req, len, MSG_NOSIGNAL) == (ssize_t)len);
	FZ_CHECK(shutdown(sv[0], SHUT_WR) == 0);
	conn.fd = sv[1];
	serve(&conn);
	close(sv[1]);
	for (;;) {
		if (replen == cap) {
			cap = cap ? cap * 2 : 4096;
			rep = realloc(rep, cap + 1);
			FZ_CHECK(rep);
		}
		n = recv(sv[0], rep + replen, cap - replen, 0);
		if (n < 0 && errno == EINTR)
			continue;	/* e.g. stopped and continued (SIGSTOP, SIGCONT) */
		FZ_CHECK(n >= 0);
		if (!n)
			break;
		replen += (size_t)n;
	}
	close(sv[0]);
	/* A client that left before a word gets no answer; any other does. */
	if (replen || len)
		check_reply(req, len, rep ? rep : "", replen);
	free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char err[256];

	if (size > FZ_MAX_INPUT || fz_reaches_out(data, size))
		return 0;
	FZ_CHECK(umd_map_create(&d, "a", "0 0 1 1 round-robin 0 2 1 p0 1 p1 1",
				err, sizeof(err)) == 0);
	FZ_CHECK(umd_map_create(&d, "b", "1 queue_if_no_path 0 2 1 round-robin 0 1 1 p2 1 "
				"round-robin 0 1 1 p3 1", err, sizeof(err)) == 0);
	for (int i = 0; i < MAX_REQUESTS && p < end; i++) {
		const char *start = p;

		/* Up to and with the empty word that ends a request. */
		for (;;) {
			const char *nul = memchr(p, '\0', (size_t)(end - p));

			if (!nul) {
				p = end;
				break;
			}
			p = nul + 1;
			if (nul == start || nul[-1] == '\0')
				break;
		}
		serve_one(start, (size_t)(p - start));
	}
	umd_map_foreach(&d, remove_one, NULL);
	FZ_CHECK(nr_maps() == 0);	/* no reference left behind */
	for (unsigned i = 0; i < 4; i++)
		FZ_CHECK(umpath_mem_set_fault(d.ctx, names[i], UMPATH_MEM_ONLINE, 0) == 0);
	return 0;
}
