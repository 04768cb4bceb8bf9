/* fuzz-table.c - the dm-multipath table parser through the public API.
 *
 * Each input is a table (the words after "multipath").  A refused table
 * must give a reason and leave no path open; an accepted one must print
 * back (TABLE line) as a table that is accepted again and prints the same
 * (print -> reparse -> print is a fixed point), both as a new map and as a
 * load + resume of the first.  Paths: four mem paths p0..p3 (bare names,
 * so that the seeds read like real tables); any other path string goes to
 * the file transport in an empty directory. */
#undef NDEBUG
#include <errno.h>
#include <string.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

#include "fuzz.h"

#define SIZE (64u * 1024)
#define FZ_MAX_INPUT 4096

static struct umpath_ctx *ctx;
static const char *const names[] = { "p0", "p1", "p2", "p3" };

/* A hardware handler the tables may name: activates at once. */
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
	FZ_CHECK(umpath_mem_store_new(ctx, SIZE, 4, names, 1) == 0);
	return 0;
}

static void table_of(struct umpath_map *m, char *buf, size_t len)
{
	int n = umpath_map_table(m, buf, len);

	FZ_CHECK(n >= 0 && (size_t)n < len && (size_t)n == strlen(buf));
	FZ_CHECK(!strchr(buf, '\n'));
}

static void status_of(struct umpath_map *m)
{
	char buf[8192];
	int n = umpath_map_status(m, buf, sizeof(buf));

	FZ_CHECK(n >= 0 && (size_t)n < sizeof(buf) && (size_t)n == strlen(buf));
	FZ_CHECK(!strchr(buf, '\n'));
}

/* Every path closed: the store can go and come back under the same names. */
static void check_nothing_open(void)
{
	umpath_mem_reset(ctx);
	FZ_CHECK(umpath_mem_store_new(ctx, SIZE, 4, names, 1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char table[FZ_MAX_INPUT + 1], t1[8192], t2[8192], t3[8192];
	struct umpath_map *m = NULL, *m2 = NULL;
	char err[512];
	int r;

	if (size > FZ_MAX_INPUT || fz_reaches_out(data, size))
		return 0;
	memcpy(table, data, size);
	table[size] = '\0';	/* a NUL inside ends the table early */

	err[0] = '\0';
	r = umpath_map_new(ctx, "f", table, 0, err, sizeof(err), &m);
	if (r < 0) {
		/* Refused: -errno, a reason, nothing left behind. */
		FZ_CHECK(r >= -4095 && !m);
		FZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		check_nothing_open();
		return 0;
	}
	FZ_CHECK(r == 0 && m);
	table_of(m, t1, sizeof(t1));
	status_of(m);

	/* Reparse as a new map: accepted, same text. */
	err[0] = '\0';
	r = umpath_map_new(ctx, "g", t1, 0, err, sizeof(err), &m2);
	if (r < 0) {
		fprintf(stderr, "table '%s' printed as '%s', refused: %d %s\n", table, t1, r, err);
		FZ_CHECK(!"printed table reparses");
	}
	table_of(m2, t2, sizeof(t2));
	if (strcmp(t1, t2)) {
		fprintf(stderr, "fixed point: '%s' -> '%s' -> '%s'\n", table, t1, t2);
		FZ_CHECK(!"print -> reparse -> print is a fixed point");
	}
	status_of(m2);
	umpath_map_free(m2);

	/* Reload the first map with its own printed table. */
	err[0] = '\0';
	r = umpath_map_load(m, t1, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "load of printed table '%s': %d %s\n", t1, r, err);
		FZ_CHECK(!"printed table loads");
	}
	FZ_CHECK(umpath_map_suspend(m, 0) == 0);
	FZ_CHECK(umpath_map_resume(m) == 0);
	table_of(m, t3, sizeof(t3));
	if (strcmp(t1, t3)) {
		fprintf(stderr, "reload: '%s' -> '%s'\n", t1, t3);
		FZ_CHECK(!"load + resume of the printed table prints the same");
	}
	status_of(m);
	umpath_map_free(m);
	check_nothing_open();
	return 0;
}
