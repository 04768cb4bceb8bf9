/* scenario.c - `umpath scenario FILE.scn`: runs a conformance scenario (the
 * language of shared/conformance/README.md) against the engine, with paths
 * p0..pN-1 as mem paths over one 64 MiB store, and prints the transcript the
 * way the kernel recorder does (without its "# kernel" header line).
 * I/O is issued as the recorder's dd does it: one 512-byte request at a
 * time, stopping at the first error. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nettle/md5.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "cli.h"
#include "ctlproto.h"

#define SCN_SECTORS 131072u
#define SCN_MAX_MAPS 64
#define SCN_MAX_BG 64
#define SCN_MAX_WORDS 256

struct scn_map {
	char *name;
	struct umpath_map *map;
};

struct scn_bg {
	pthread_t thread;
	struct scenario *scn;
	bool is_write;
	char *map_name;
	unsigned long sector, count;
	char result[64];
};

struct scenario {
	struct umpath_ctx *ctx;
	pthread_mutex_t lock;	/* guards maps against bg threads */
	struct scn_map maps[SCN_MAX_MAPS];
	unsigned nmaps;
	struct scn_bg *bg[SCN_MAX_BG];
	unsigned nbg;
	unsigned npaths;
};

/* ---- synchronous I/O over the async API ------------------------------- */

struct sync_io {
	struct umpath_io io;
	struct umpath_pool_wait pool;	/* while the map's pool is full */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool pool_ready;
	int err;
};

static void sync_done(struct umpath_io *io, int err)
{
	struct sync_io *s = (struct sync_io *)io;

	pthread_mutex_lock(&s->lock);
	s->done = true;
	s->err = err;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void sync_pool_ready(struct umpath_pool_wait *w)
{
	struct sync_io *s = w->opaque;

	pthread_mutex_lock(&s->lock);
	s->pool_ready = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int cli_sync_io(struct umpath_map *map, enum umpath_op op, uint64_t off, uint64_t len, void *buf)
{
	struct sync_io s = {
		.io = { .op = op, .offset = off, .length = len, .buf = buf, .done = sync_done },
	};
	int r;

	s.pool.fn = sync_pool_ready;
	s.pool.opaque = &s;
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	/* A full pool: wait until the map frees a request, then retry. */
	while ((r = umpath_map_submit(map, &s.io)) == -EAGAIN) {
		s.pool_ready = false;
		if (umpath_map_pool_wait(map, &s.pool) == 1)
			continue;
		pthread_mutex_lock(&s.lock);
		while (!s.pool_ready)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
	}
	if (r == 0) {
		pthread_mutex_lock(&s.lock);
		while (!s.done)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
		r = s.err;
	}
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.cond);
	return r;
}

const char *cli_errname(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "EOTHER";
}

/* ---- maps by name ----------------------------------------------------- */

static struct umpath_map *scn_find(struct scenario *scn, const char *name)
{
	struct umpath_map *map = NULL;

	pthread_mutex_lock(&scn->lock);
	for (unsigned i = 0; i < scn->nmaps; i++)
		if (!strcmp(scn->maps[i].name, name))
			map = scn->maps[i].map;
	pthread_mutex_unlock(&scn->lock);
	return map;
}

static void scn_remove(struct scenario *scn, const char *name)
{
	struct umpath_map *map = NULL;

	pthread_mutex_lock(&scn->lock);
	for (unsigned i = 0; i < scn->nmaps; i++) {
		if (!strcmp(scn->maps[i].name, name)) {
			map = scn->maps[i].map;
			free(scn->maps[i].name);
			scn->maps[i] = scn->maps[--scn->nmaps];
			break;
		}
	}
	pthread_mutex_unlock(&scn->lock);
	umpath_map_free(map);
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
	struct umpath_map *map = scn_find(scn, name);
	size_t len = count * UMPATH_SECTOR_SIZE;
	uint8_t *data;
	int r = 0;

	if (!map) {
		snprintf(result, rlen, "error ENXIO");
		return;
	}
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
	for (unsigned long i = 0; i < count && !r; i++)
		r = cli_sync_io(map, is_write ? UMPATH_OP_WRITE : UMPATH_OP_READ,
				(sector + i) * UMPATH_SECTOR_SIZE, UMPATH_SECTOR_SIZE,
				data + i * UMPATH_SECTOR_SIZE);
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

static void scn_reset(struct scenario *scn)
{
	char *fail[] = { (char *)"fail_if_no_path" };

	/* Background I/O may be queued or held: let it finish or fail. */
	for (unsigned i = 0; i < scn->nmaps; i++) {
		umpath_map_resume(scn->maps[i].map);
		umpath_map_message(scn->maps[i].map, 1, fail);
	}
	for (unsigned i = 0; i < scn->npaths; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%u", i);
		umpath_mem_set_fault(scn->ctx, name, UMPATH_MEM_ONLINE, 0);
	}
	scn_wait_bg(scn, false);
	while (scn->nmaps)
		scn_remove(scn, scn->maps[0].name);
	umpath_mem_reset(scn->ctx);
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

static void cmd_paths(struct scenario *scn, int argc, char **argv)
{
	unsigned long n;
	char names[64][16];
	const char *ptrs[64];
	int r;

	scn_reset(scn);
	if (argc != 1 || !parse_ulong(argv[0], &n) || !n || n > 64) {
		printf("error EINVAL\n");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "p%u", i);
		ptrs[i] = names[i];
	}
	r = umpath_mem_store_new(scn->ctx, (uint64_t)SCN_SECTORS * UMPATH_SECTOR_SIZE, (unsigned)n,
				 ptrs, 1);
	if (r < 0) {
		printf("error %s\n", cli_errname(r));
		return;
	}
	scn->npaths = (unsigned)n;
	printf("ok\n");
}

static void cmd_create_load(struct scenario *scn, bool create, int argc, char **argv)
{
	char err[256] = "";
	char *table;
	int r;

	if (argc < 1) {
		printf("error EINVAL\n");
		return;
	}
	table = ctl_join_words(argc - 1, argv + 1);
	if (!table) {
		printf("error ENOMEM\n");
		return;
	}
	if (create) {
		struct umpath_map *map;

		if (scn_find(scn, argv[0])) {
			r = -EBUSY;
			snprintf(err, sizeof(err), "device %s already exists", argv[0]);
		} else if (scn->nmaps == SCN_MAX_MAPS) {
			r = -ENOMEM;
			snprintf(err, sizeof(err), "too many maps");
		} else {
			r = umpath_map_new(scn->ctx, argv[0], table,
					   (uint64_t)SCN_SECTORS * UMPATH_SECTOR_SIZE, err,
					   sizeof(err), &map);
			if (r == 0) {
				pthread_mutex_lock(&scn->lock);
				scn->maps[scn->nmaps].name = strdup(argv[0]);
				scn->maps[scn->nmaps++].map = map;
				pthread_mutex_unlock(&scn->lock);
			}
		}
	} else {
		struct umpath_map *map = scn_find(scn, argv[0]);

		if (!map) {
			r = -ENXIO;
			snprintf(err, sizeof(err), "device %s does not exist", argv[0]);
		} else {
			r = umpath_map_load(map, table, err, sizeof(err));
		}
	}
	free(table);
	if (r == 0)
		printf("ok\n");
	else
		printf("error %s: %s\n", cli_errname(r), err);
}

static void cmd_map_op(struct scenario *scn, const char *cmd, int argc, char **argv)
{
	struct umpath_map *map = argc >= 1 ? scn_find(scn, argv[0]) : NULL;
	char buf[4096];
	int r = 0;

	if (!map) {
		printf("error ENXIO\n");
		return;
	}
	if (!strcmp(cmd, "table") || !strcmp(cmd, "status")) {
		if (!strcmp(cmd, "table"))
			umpath_map_table(map, buf, sizeof(buf));
		else
			umpath_map_status(map, buf, sizeof(buf));
		printf("%s\n", buf);
		return;
	}
	if (!strcmp(cmd, "message"))
		r = umpath_map_message(map, argc - 1, argv + 1);
	else if (!strcmp(cmd, "suspend"))
		r = umpath_map_suspend(map, argc > 1 && !strcmp(argv[1], "noflush") ?
					    UMPATH_SUSPEND_NOFLUSH : 0);
	else if (!strcmp(cmd, "resume"))
		r = umpath_map_resume(map);
	else if (!strcmp(cmd, "remove"))
		scn_remove(scn, argv[0]);
	if (r)
		printf("error %s\n", cli_errname(r));
	else
		printf("ok\n");
}

static void cmd_fault(struct scenario *scn, bool offline, int argc, char **argv)
{
	int r = argc == 1 ? umpath_mem_set_fault(scn->ctx, argv[0],
						 offline ? UMPATH_MEM_OFFLINE : UMPATH_MEM_ONLINE, 0)
			  : -EINVAL;

	if (r)
		printf("error %s\n", cli_errname(r));
	else
		printf("ok\n");
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
	if (pthread_create(&b->thread, NULL, bg_thread, b)) {
		free(b->map_name);
		free(b);
		printf("error EAGAIN\n");
		return;
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
		cmd_fault(scn, !strcmp(cmd, "offline"), argc, args);
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

int cli_scenario(int argc, char **argv)
{
	struct scenario scn = { .nmaps = 0 };
	char line[8192];
	FILE *f;
	int r;

	if (argc != 1) {
		fprintf(stderr, "usage: umpath scenario FILE.scn\n");
		return 2;
	}
	f = strcmp(argv[0], "-") ? fopen(argv[0], "r") : stdin;
	if (!f) {
		fprintf(stderr, "umpath: %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	r = umpath_ctx_new(NULL, &scn.ctx);
	if (r < 0) {
		fprintf(stderr, "umpath: cannot start the engine: %s\n", strerror(-r));
		if (f != stdin)
			fclose(f);
		return 1;
	}
	pthread_mutex_init(&scn.lock, NULL);
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
	umpath_mem_reset(scn.ctx);
	umpath_ctx_free(scn.ctx);
	pthread_mutex_destroy(&scn.lock);
	return 0;
}
