/* fuzz-message.c - a map's life as a script: messages interleaved with
 * suspend (flushing or not), resume, load, clear, path faults and I/O on
 * mem paths.
 *
 * The input is lines.  The first is the table (a map is made of it; a
 * refused one ends the input).  Then, one per line:
 *   m MESSAGE          umpath_map_message_str
 *   s / S              suspend, flushing / noflush
 *   r                  resume
 *   l TABLE            load an inactive table;  c  clear it
 *   w|R|T|Z OFF LEN    write, read, trim, write zeroes (sectors); F flush;
 *                      a 'u' after the letter sets FUA
 *   o|x|h|d N          mem path pN online, offline, hung, delayed 50 us
 *   e N ERRNO          mem path pN fails every I/O with -ERRNO
 *   q                  info, status, table and layout, checked
 * At the end every path comes back, the map is resumed and freed: every
 * I/O must have completed exactly once, and none after map_free returned.
 * A suspend or resume first releases hung paths: they wait for in-flight
 * I/O, and a hung mem path, unlike a real one, has no I/O deadline.  For
 * the same reason every table's pg_init retry delay is cut to a few ms
 * (cap_pg_init_delay, short_pg_init_delay): inputs cost milliseconds. */
#undef NDEBUG
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "fuzz.h"

#define SECTORS 256u
#define SIZE (SECTORS * UMPATH_SECTOR_SIZE)
#define FZ_MAX_INPUT 8192
#define MAX_OPS 256
#define NR_IOS 32
#define NR_PATHS 4

static struct umpath_ctx *ctx;
static const char *const names[NR_PATHS] = { "p0", "p1", "p2", "p3" };

struct fz_io {
	struct umpath_io io;
	atomic_int done;	/* completions seen */
	bool busy;		/* submitted, not yet seen done by the script */
	unsigned char buf[8 * UMPATH_SECTOR_SIZE];
};
static struct fz_io ios[NR_IOS];
static atomic_bool map_gone;	/* map_free returned: no completion may follow */
static atomic_int late;		/* completions after map_free returned */

static void io_done(struct umpath_io *io, int err)
{
	struct fz_io *f = io->opaque;

	/* Counted, checked by the fuzzing thread: two threads aborting at
	 * once would lose libFuzzer's copy of the input. */
	if (atomic_load(&map_gone)) {
		fprintf(stderr, "I/O %d (op %d, %llu+%llu) completed (%d) after umpath_map_free\n",
			(int)(f - ios), io->op, (unsigned long long)io->offset,
			(unsigned long long)io->length, err);
		atomic_fetch_add(&late, 1);
	}
	FZ_CHECK(err <= 0 && err >= -4095);
	FZ_CHECK(atomic_fetch_add(&f->done, 1) == 0);
}

static void on_event(struct umpath_map *map, const struct umpath_event *ev, void *opaque)
{
	struct umpath_map_info info;

	switch (ev->type) {
	case UMPATH_EV_PATH_FAILED:
	case UMPATH_EV_PATH_REINSTATED:
		FZ_CHECK(ev->path && *ev->path);
		break;
	default:
		break;
	}
	/* Called without the map's lock: the map can be asked. */
	FZ_CHECK(umpath_map_info(map, &info) == 0);
}

static void hh_activate(const char *path, const char *params, void *opaque,
			void (*complete)(void *token, enum umpath_pg_init_result r), void *token)
{
	complete(token, UMPATH_PG_INIT_OK);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct umpath_hw_handler hh = { .name = "fuzz-hh", .activate = hh_activate };
	struct umpath_ctx_opts o = { .pool_size = 16 };

	if (fz_private_cwd())
		return 1;
	FZ_CHECK(umpath_ctx_new(&o, &ctx) == 0);
	FZ_CHECK(umpath_register_hw_handler(ctx, &hh) == 0);
	FZ_CHECK(umpath_mem_store_new(ctx, SIZE, NR_PATHS, names, 1) == 0);
	return 0;
}

static void all_online(void)
{
	for (unsigned i = 0; i < NR_PATHS; i++)
		FZ_CHECK(umpath_mem_set_fault(ctx, names[i], UMPATH_MEM_ONLINE, 0) == 0);
}

static void count_group(const struct umpath_group_info *g, void *opaque)
{
	unsigned *n = opaque;

	FZ_CHECK(g->state == 'A' || g->state == 'E' || g->state == 'D');
	FZ_CHECK(g->selector && g->num == ++n[0]);
	n[1] += g->nr_paths;
}

static void count_path(const struct umpath_path_info *p, void *opaque)
{
	unsigned *n = opaque;

	FZ_CHECK(p->path && p->group >= 1 && p->group <= n[0]);
	n[2]++;
	n[3] += p->active != 0;
}

static void query(struct umpath_map *m)
{
	char buf[8192];
	struct umpath_map_info info;
	unsigned n[4] = { 0 };	/* groups, paths by group, paths, active */
	int len;

	len = umpath_map_status(m, buf, sizeof(buf));
	FZ_CHECK(len >= 0 && (size_t)len < sizeof(buf) && !strchr(buf, '\n'));
	len = umpath_map_table(m, buf, sizeof(buf));
	FZ_CHECK(len >= 0 && (size_t)len < sizeof(buf) && !strchr(buf, '\n'));
	FZ_CHECK(umpath_map_info(m, &info) == 0);
	FZ_CHECK(info.size == SIZE);
	FZ_CHECK(umpath_map_foreach(m, count_group, count_path, n) == 0);
	/* The walk and the info agree; the status line's counts are the
	 * same state, taken under the same lock. */
	FZ_CHECK(n[0] == info.nr_groups && n[1] == n[2]);
	FZ_CHECK(!info.nr_groups || (info.current_group <= info.nr_groups));
}

static struct fz_io *free_io(void)
{
	for (unsigned i = 0; i < NR_IOS; i++) {
		if (ios[i].busy && atomic_load(&ios[i].done) == 1)
			ios[i].busy = false;	/* retired */
		if (!ios[i].busy)
			return &ios[i];
	}
	return NULL;
}

static void submit(struct umpath_map *m, const char *line)
{
	static const struct { char c; enum umpath_op op; } ops[] = {
		{ 'w', UMPATH_OP_WRITE }, { 'R', UMPATH_OP_READ }, { 'T', UMPATH_OP_TRIM },
		{ 'Z', UMPATH_OP_WRITE_ZEROES }, { 'F', UMPATH_OP_FLUSH },
	};
	struct fz_io *f = free_io();
	unsigned long long off = 0, len = 0;
	const char *p = line + 1;
	int r;

	if (!f)
		return;
	memset(&f->io, 0, sizeof(f->io));
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].c == line[0])
			f->io.op = ops[i].op;
	if (*p == 'u') {
		f->io.flags |= UMPATH_IO_FUA;
		p++;
	}
	if (f->io.op != UMPATH_OP_FLUSH) {
		char *end;

		off = strtoull(p, &end, 10);
		len = strtoull(end, NULL, 10);
		/* Mostly in range, but let the edges and beyond be tried. */
		if (len > 8)
			len = 8;
		if (off > SECTORS + 2)
			off = SECTORS + 2;
	}
	f->io.offset = off * UMPATH_SECTOR_SIZE;
	f->io.length = len * UMPATH_SECTOR_SIZE;
	f->io.buf = f->buf;
	f->io.done = io_done;
	f->io.opaque = f;
	memset(f->buf, (int)(f - ios) + 1, sizeof(f->buf));
	atomic_store(&f->done, 0);
	r = umpath_map_submit(m, &f->io);
	if (r == 0) {
		f->busy = true;
		return;
	}
	FZ_CHECK(r == -EINVAL || r == -EAGAIN);
	FZ_CHECK(atomic_load(&f->done) == 0);	/* refused: never done */
}

static void fault(const char *line)
{
	char *end;
	unsigned long n = strtoul(line + 1, &end, 10), arg = 0;
	enum umpath_mem_fault f;

	if (n >= NR_PATHS)
		return;
	switch (line[0]) {
	case 'o': f = UMPATH_MEM_ONLINE; break;
	case 'x': f = UMPATH_MEM_OFFLINE; break;
	case 'h': f = UMPATH_MEM_HANG; break;
	case 'd': f = UMPATH_MEM_DELAY; arg = 50; break;
	default:
		f = UMPATH_MEM_ERROR;
		arg = strtoul(end, NULL, 10);
		if (!arg || arg > 133)
			arg = EIO;
		break;
	}
	FZ_CHECK(umpath_mem_set_fault(ctx, names[n], f, (unsigned)arg) == 0);
}

/* A table's pg_init_delay_msecs (up to 60 s) is what a suspend or a
 * resume waits for when a pg_init retry is pending: every value is cut to
 * at most 9 ms, in place (leading zeros), so that an input costs
 * milliseconds, not seconds; the parser's ranges are the table target's. */
static void cap_pg_init_delay(char *text)
{
	static const char key[] = "pg_init_delay_msecs";
	char *p = text;

	while ((p = strstr(p, key))) {
		char *num = p + sizeof(key) - 1, *end;

		while (*num == ' ')
			num++;
		for (end = num; *end >= '0' && *end <= '9'; end++)
			;
		for (; end - num > 1; num++)
			*num = '0';
		p = end;
	}
}

/* A table without pg_init_delay_msecs retries pg_init after 2 s (the
 * kernel's default), and every suspend waits for it: one input then took
 * 24 s.  Such a table (a plain feature count first) gets
 * "pg_init_delay_msecs 1" added to its features; into buf. */
static const char *short_pg_init_delay(const char *table, char *buf, size_t len)
{
	const char *p = table, *rest;
	unsigned long n;
	char *end;

	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return table;
	n = strtoul(p, &end, 10);
	if (n > 64 || (*end && *end != ' '))
		return table;
	rest = end;
	for (unsigned long i = 0; i < n; i++) {
		const char *w;

		while (*rest == ' ')
			rest++;
		w = rest;
		while (*rest && *rest != ' ')
			rest++;
		if (rest - w == 19 && !strncmp(w, "pg_init_delay_msecs", 19))
			return table;
	}
	if ((size_t)snprintf(buf, len, "%lu pg_init_delay_msecs 1%s", n + 2, end) >= len)
		return table;
	return buf;
}

static int run(struct umpath_map *m, char *line)
{
	static char table[FZ_MAX_INPUT + 64];
	char err[512];
	int r;

	switch (line[0]) {
	case 'm':
		r = umpath_map_message_str(m, line + 1 + (line[1] == ' '));
		FZ_CHECK(r == 0 || (r < 0 && r >= -4095));
		break;
	case 's':
	case 'S':
		all_online();
		FZ_CHECK(umpath_map_suspend(m, line[0] == 'S' ? UMPATH_SUSPEND_NOFLUSH : 0) == 0);
		FZ_CHECK(umpath_map_is_suspended(m) == 1);
		break;
	case 'r':
		all_online();	/* a resume with a loaded table suspends first */
		r = umpath_map_resume(m);
		FZ_CHECK(r <= 0);
		break;
	case 'l':
		err[0] = '\0';
		r = umpath_map_load(m, short_pg_init_delay(line + 1 + (line[1] == ' '), table,
							   sizeof(table)), err, sizeof(err));
		FZ_CHECK(r == 0 || (r < 0 && err[0]));
		break;
	case 'c':
		FZ_CHECK(umpath_map_clear(m) <= 0);
		break;
	case 'w': case 'R': case 'T': case 'Z': case 'F':
		submit(m, line);
		break;
	case 'o': case 'x': case 'h': case 'd': case 'e':
		fault(line);
		break;
	case 'q':
		query(m);
		break;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[FZ_MAX_INPUT + 1], table[FZ_MAX_INPUT + 64];
	struct umpath_map *m = NULL;
	char err[512], *save = NULL, *line;
	unsigned nops = 0;

	if (size > FZ_MAX_INPUT || fz_reaches_out(data, size) || memchr(data, '\0', size))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cap_pg_init_delay(text);
	all_online();
	memset(ios, 0, sizeof(ios));
	atomic_store(&map_gone, false);

	line = strtok_r(text, "\n", &save);
	if (!line || umpath_map_new(ctx, "f", short_pg_init_delay(line, table, sizeof(table)), 0,
				    err, sizeof(err), &m) < 0)
		return 0;
	umpath_map_set_event_cb(m, on_event, NULL);
	while ((line = strtok_r(NULL, "\n", &save)) && nops++ < MAX_OPS)
		run(m, line);

	/* Wind down: every path back, the map running, then freed. */
	all_online();
	if (umpath_map_is_suspended(m) == 1)
		umpath_map_resume(m);
	query(m);
	umpath_map_free(m);
	atomic_store(&map_gone, true);
	for (unsigned i = 0; i < NR_IOS; i++) {
		if (ios[i].busy && atomic_load(&ios[i].done) != 1) {
			fprintf(stderr, "I/O %u (op %d, %llu+%llu) not completed when "
				"umpath_map_free returned\n", i, ios[i].io.op,
				(unsigned long long)ios[i].io.offset,
				(unsigned long long)ios[i].io.length);
			FZ_CHECK(!"every I/O completed once map_free returns");
		}
	}
	FZ_CHECK(atomic_load(&late) == 0);
	return 0;
}
