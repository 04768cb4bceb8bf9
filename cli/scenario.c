/* scenario.c - `umpath scenario [--daemon ...] FILE.scn`: runs a conformance
 * scenario (the language of shared/conformance/README.md) and prints the
 * transcript the way the kernel recorder does (without its "# kernel"
 * header line).  Paths p0..pN-1 are mem paths over one 64 MiB store; the
 * commands go to the engine in this process or, with --daemon, to a
 * umpathd through its control socket and NBD export (scenario.h).
 * I/O is issued as the recorder's dd does it: one 512-byte request at a
 * time, stopping at the first error. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nettle/md5.h>

#include "cli.h"
#include "ctlproto.h"
#include "scenario.h"

#define SCN_MAX_MAPS 64
#define SCN_MAX_BG 64
#define SCN_MAX_WORDS 256

struct scn_bg {
	pthread_t thread;
	struct scenario *scn;
	atomic_bool done;
	bool is_write;
	char *map_name;
	unsigned long sector, count;
	char result[64];
};

struct scenario {
	struct scn_backend *b;
	char *maps[SCN_MAX_MAPS];	/* created and not removed: for the reset */
	unsigned nmaps;
	struct scn_bg *bg[SCN_MAX_BG];
	unsigned nbg;
	unsigned npaths;
};

const char *cli_errname(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "EOTHER";
}

static void forget_map(struct scenario *scn, const char *name)
{
	for (unsigned i = 0; i < scn->nmaps; i++) {
		if (!strcmp(scn->maps[i], name)) {
			free(scn->maps[i]);
			scn->maps[i] = scn->maps[--scn->nmaps];
			return;
		}
	}
}

/* ---- data I/O, as dd does it ------------------------------------------ */

static void md5_prefix(const uint8_t *data, size_t len, char out[13])
{
	struct md5_ctx c;
	uint8_t digest[MD5_DIGEST_SIZE];

	md5_init(&c);
	md5_update(&c, len, data);
	md5_digest(&c, sizeof(digest), digest);
	for (int i = 0; i < 6; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
}

static void do_data_io(struct scenario *scn, bool is_write, const char *name,
		       unsigned long sector, unsigned long count, char *result, size_t rlen)
{
	const struct scn_backend_ops *ops = scn->b->ops;
	size_t len = count * 512;
	struct scn_io *io;
	uint8_t *data;
	int r;

	data = calloc(1, len ? len : 1);
	if (!data) {
		snprintf(result, rlen, "error ENOMEM");
		return;
	}
	if (is_write) {
		/* yes "s<SECTOR>" | head -c LEN */
		char word[32];
		int wl = snprintf(word, sizeof(word), "s%lu\n", sector);

		for (size_t i = 0; i < len; i++)
			data[i] = (uint8_t)word[i % (size_t)wl];
	}
	r = ops->io_open(scn->b, name, &io);
	if (!r) {
		for (unsigned long i = 0; i < count && !r; i++)
			r = ops->io(io, is_write, (sector + i) * 512, data + i * 512, 512);
		ops->io_close(io);
	}
	if (r) {
		snprintf(result, rlen, "error %s", cli_errname(r));
	} else if (is_write) {
		snprintf(result, rlen, "ok");
	} else {
		char sum[13];

		md5_prefix(data, len, sum);
		snprintf(result, rlen, "ok %s", sum);
	}
	free(data);
}

static void *bg_thread(void *arg)
{
	struct scn_bg *bg = arg;

	do_data_io(bg->scn, bg->is_write, bg->map_name, bg->sector, bg->count, bg->result,
		   sizeof(bg->result));
	bg->done = true;
	return NULL;
}

static void scn_wait_bg(struct scenario *scn, bool print)
{
	for (unsigned i = 0; i < scn->nbg; i++) {
		struct scn_bg *bg = scn->bg[i];

		pthread_join(bg->thread, NULL);
		if (print)
			printf("bg%u %s\n", i, bg->result);
		free(bg->map_name);
		free(bg);
	}
	scn->nbg = 0;
}

/* Back to no maps and no paths, as the recorder's cleanup does. */
static void scn_reset(struct scenario *scn)
{
	const struct scn_backend_ops *ops = scn->b->ops;
	char *fail[] = { (char *)"fail_if_no_path" };

	/* Background I/O may be queued or held: let it finish or fail. */
	for (unsigned i = 0; i < scn->nmaps; i++) {
		ops->resume(scn->b, scn->maps[i]);
		ops->message(scn->b, scn->maps[i], 1, fail);
	}
	for (unsigned i = 0; i < scn->npaths; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%u", i);
		ops->set_online(scn->b, name, true);
	}
	scn_wait_bg(scn, false);
	while (scn->nmaps) {
		ops->remove(scn->b, scn->maps[0]);
		forget_map(scn, scn->maps[0]);
	}
	if (scn->npaths)
		ops->paths_reset(scn->b);
	scn->npaths = 0;
}

/* ---- commands --------------------------------------------------------- */

static bool parse_ulong(const char *s, unsigned long *ret)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*ret = strtoul(s, &end, 10);
	return !*end && !errno;
}

static void print_result(int r)
{
	if (r)
		printf("error %s\n", cli_errname(r));
	else
		printf("ok\n");
}

static void cmd_paths(struct scenario *scn, int argc, char **argv)
{
	unsigned long n;
	int r;

	scn_reset(scn);
	if (argc != 1 || !parse_ulong(argv[0], &n) || !n || n > 64) {
		printf("error EINVAL\n");
		return;
	}
	r = scn->b->ops->paths(scn->b, (unsigned)n);
	if (!r)
		scn->npaths = (unsigned)n;
	print_result(r);
}

static void cmd_create_load(struct scenario *scn, bool create, int argc, char **argv)
{
	const struct scn_backend_ops *ops = scn->b->ops;
	char err[512] = "", *table, *name;
	int r;

	if (argc < 1) {
		printf("error EINVAL\n");
		return;
	}
	if (create && scn->nmaps == SCN_MAX_MAPS) {
		printf("error ENOMEM: too many maps\n");
		return;
	}
	table = ctl_join_words(argc - 1, argv + 1);
	name = strdup(argv[0]);
	if (!table || !name) {
		free(table);
		free(name);
		printf("error ENOMEM\n");
		return;
	}
	if (create)
		r = ops->create(scn->b, name, table, err, sizeof(err));
	else
		r = ops->load(scn->b, name, table, err, sizeof(err));
	if (create && !r)
		scn->maps[scn->nmaps++] = name;
	else
		free(name);
	free(table);
	if (r)
		printf("error %s%s%s\n", cli_errname(r), *err ? ": " : "", err);
	else
		printf("ok\n");
}

static void cmd_map_op(struct scenario *scn, const char *cmd, int argc, char **argv)
{
	const struct scn_backend_ops *ops = scn->b->ops;
	char buf[4096];
	int r;

	if (argc < 1) {
		printf("error EINVAL\n");
		return;
	}
	if (!strcmp(cmd, "table") || !strcmp(cmd, "status")) {
		r = ops->status(scn->b, argv[0], !strcmp(cmd, "table"), buf, sizeof(buf));
		if (!r)
			printf("%s\n", buf);
		else
			print_result(r);
		return;
	}
	if (!strcmp(cmd, "message")) {
		r = ops->message(scn->b, argv[0], argc - 1, argv + 1);
	} else if (!strcmp(cmd, "suspend")) {
		r = ops->suspend(scn->b, argv[0], argc > 1 && !strcmp(argv[1], "noflush"));
	} else if (!strcmp(cmd, "resume")) {
		r = ops->resume(scn->b, argv[0]);
	} else {
		r = ops->remove(scn->b, argv[0]);
		if (!r)
			forget_map(scn, argv[0]);
	}
	print_result(r);
}

static void cmd_online(struct scenario *scn, bool online, int argc, char **argv)
{
	print_result(argc == 1 ? scn->b->ops->set_online(scn->b, argv[0], online) : -EINVAL);
}

static void cmd_data(struct scenario *scn, bool is_write, bool bg, int argc, char **argv)
{
	unsigned long sector, count;
	char result[64];

	if (argc != 3 || !parse_ulong(argv[1], &sector) || !parse_ulong(argv[2], &count)) {
		printf("error EINVAL\n");
		return;
	}
	if (!bg) {
		do_data_io(scn, is_write, argv[0], sector, count, result, sizeof(result));
		printf("%s\n", result);
		return;
	}
	if (scn->nbg == SCN_MAX_BG) {
		printf("error ENOMEM\n");
		return;
	}
	struct scn_bg *b = calloc(1, sizeof(*b));
	if (!b || !(b->map_name = strdup(argv[0]))) {
		free(b);
		printf("error ENOMEM\n");
		return;
	}
	b->scn = scn;
	b->is_write = is_write;
	b->sector = sector;
	b->count = count;
	int before = scn->b->ops->busy(scn->b, argv[0]);

	if (pthread_create(&b->thread, NULL, bg_thread, b)) {
		free(b->map_name);
		free(b);
		printf("error EAGAIN\n");
		return;
	}
	/* Started means the map has it (or it is over already): the next
	 * lines of a scenario (a "sleep 1" on the recorder's side) must not
	 * race with a thread that a loaded machine has not run yet. */
	for (int i = 0; before >= 0 && !b->done && i < 30000; i++) {
		if (scn->b->ops->busy(scn->b, argv[0]) > before)
			break;
		usleep(1000);
	}
	printf("started bg%u\n", scn->nbg);
	scn->bg[scn->nbg++] = b;
}

static void run_line(struct scenario *scn, char *line)
{
	char *argv[SCN_MAX_WORDS];
	int argc = 0;
	char *save = NULL;
	const char *cmd;

	for (char *w = strtok_r(line, " \t\r\n", &save); w && argc < SCN_MAX_WORDS;
	     w = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = w;
	if (!argc)
		return;
	cmd = argv[0];
	argc--;
	char **args = argv + 1;

	if (!strcmp(cmd, "paths"))
		cmd_paths(scn, argc, args);
	else if (!strcmp(cmd, "create") || !strcmp(cmd, "load"))
		cmd_create_load(scn, !strcmp(cmd, "create"), argc, args);
	else if (!strcmp(cmd, "table") || !strcmp(cmd, "status") || !strcmp(cmd, "message") ||
		 !strcmp(cmd, "suspend") || !strcmp(cmd, "resume") || !strcmp(cmd, "remove"))
		cmd_map_op(scn, cmd, argc, args);
	else if (!strcmp(cmd, "offline") || !strcmp(cmd, "online"))
		cmd_online(scn, !strcmp(cmd, "online"), argc, args);
	else if (!strcmp(cmd, "read") || !strcmp(cmd, "write"))
		cmd_data(scn, !strcmp(cmd, "write"), false, argc, args);
	else if (!strcmp(cmd, "read-bg") || !strcmp(cmd, "write-bg"))
		cmd_data(scn, !strcmp(cmd, "write-bg"), true, argc, args);
	else if (!strcmp(cmd, "wait"))
		scn_wait_bg(scn, true);
	else if (!strcmp(cmd, "sleep")) {
		double s = argc == 1 ? strtod(args[0], NULL) : 0;

		if (s > 0)
			usleep((useconds_t)(s * 1e6));
		printf("ok\n");
	} else
		printf("unknown command %s\n", cmd);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: umpath scenario [--daemon [--socket PATH --nbd unix:PATH|tcp:HOST:PORT]] FILE.scn\n");
}

int cli_scenario(const char *socket_path, int argc, char **argv)
{
	struct scenario scn = { .nmaps = 0 };
	const char *nbd = NULL, *file;
	bool daemon = false;
	char line[8192];
	FILE *f;
	int r;

	for (; argc > 1 && !strncmp(argv[0], "--", 2); argc--, argv++) {
		if (!strcmp(argv[0], "--daemon")) {
			daemon = true;
		} else if (!strcmp(argv[0], "--socket") && argc > 2) {
			socket_path = *++argv;
			argc--;
		} else if (!strcmp(argv[0], "--nbd") && argc > 2) {
			nbd = *++argv;
			argc--;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc != 1 || (!daemon && (socket_path || nbd)) || (daemon && !socket_path != !nbd)) {
		usage(stderr);
		if (daemon && !socket_path != !nbd)
			fprintf(stderr, "umpath: scenario: a running umpathd needs both --socket and --nbd\n");
		return 2;
	}
	file = argv[0];
	f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) {
		fprintf(stderr, "umpath: %s: %s\n", file, strerror(errno));
		return 1;
	}
	r = daemon ? scn_daemon_new(socket_path, nbd, &scn.b) : scn_engine_new(&scn.b);
	if (r < 0) {
		/* The backend said why on stderr. */
		if (f != stdin)
			fclose(f);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), f)) {
		char *p = line;

		line[strcspn(line, "\r\n")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		printf("> %s\n", line);
		run_line(&scn, line);
	}
	if (f != stdin)
		fclose(f);
	scn_reset(&scn);
	scn.b->ops->free(scn.b);
	return 0;
}
