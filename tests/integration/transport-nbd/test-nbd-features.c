/* Description: what reaches an NBD server for each kind of request.  On an
 * export with every feature, FUA writes, flushes, trims and write-zeroes
 * (with NO_HOLE) go out as such (seen in the server's log) and zeroes read
 * back as zeros; without FUA, a FUA write becomes write + flush; on an
 * export with no flush, trim or zero, write-zeroes become writes (larger
 * than one zero chunk, data around intact), flush completes at once and
 * trim fails with EOPNOTSUPP without failing the path; on a read-only
 * export every write fails with EROFS, the path staying active.  Also:
 * which path strings the transport takes for existing (EINVAL vs ENOENT
 * in messages), and a table naming a socket nobody listens on. */
#include "nbdtest.h"

#define SIZE (8u << 20)

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	CHECK(f);
	CHECK(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	CHECK(n >= 0);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	CHECK(buf);
	CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return buf;
}

/* The first line of the log at or after from holding every word of
 * words (NULL-terminated); NULL if none. */
static const char *log_find(const char *from, const char *const *words)
{
	for (const char *line = from; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		bool all = true;

		for (unsigned i = 0; words[i] && all; i++) {
			const char *p = memmem(line, len, words[i], strlen(words[i]));

			all = p != NULL;
		}
		if (all)
			return line;
		line = eol ? eol + 1 : NULL;
	}
	return NULL;
}

#define LOG_HAS(log, ...) (log_find((log), (const char *const[]){ __VA_ARGS__, NULL }) != NULL)

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static struct umpath_map *one_path_map(struct umpath_ctx *ctx, const struct t_srv *s)
{
	char table[1024];

	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 1 1 %s 1", s->uri);
	return t_map_new(ctx, table);
}

static int zeroes(struct umpath_map *map, uint64_t off, uint64_t len, unsigned flags)
{
	struct t_io t;
	int r;

	t_io_init(&t, UMPATH_OP_WRITE_ZEROES, off, len, NULL);
	t.io.flags = flags;
	r = umpath_map_submit(map, &t.io);
	if (r)
		return r;
	CHECK(t_io_wait(&t, 10));
	return t.err;
}

static int fua_write(struct umpath_map *map, uint64_t off, uint64_t len, void *buf)
{
	struct t_io t;
	int r;

	t_io_init(&t, UMPATH_OP_WRITE, off, len, buf);
	t.io.flags = UMPATH_IO_FUA;
	r = umpath_map_submit(map, &t.io);
	if (r)
		return r;
	CHECK(t_io_wait(&t, 10));
	return t.err;
}

static void test_full(struct umpath_ctx *ctx, const struct t_srv *s, const char *image)
{
	struct umpath_map *map = one_path_map(ctx, s);
	static unsigned char buf[64 * T_BS], want[T_BS];
	char *log;

	for (unsigned b = 0; b < 64; b++)
		t_pattern(buf + b * T_BS, b, 1);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, sizeof(buf), buf), 0);
	t_pattern(want, 0, 2);
	CHECK_EQ_INT(fua_write(map, 0, T_BS, want), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(zeroes(map, 8 * T_BS, 8 * T_BS, 0), 0);
	CHECK_EQ_INT(zeroes(map, 16 * T_BS, 8 * T_BS, UMPATH_IO_NO_HOLE | UMPATH_IO_FUA), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 32 * T_BS, 8 * T_BS, NULL), 0);

	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, sizeof(buf), buf), 0);
	CHECK(!memcmp(buf, want, T_BS));
	t_pattern(want, 1, 1);
	CHECK(!memcmp(buf + T_BS, want, T_BS));
	CHECK(all_zero(buf + 8 * T_BS, 16 * T_BS));
	t_pattern(want, 24, 1);
	CHECK(!memcmp(buf + 24 * T_BS, want, T_BS));
	CHECK_EQ_INT(t_path_state(map, s->uri), 'A');
	umpath_map_free(map);	/* closes the connection: the log is complete */

	/* The image holds it too. */
	int fd = open(image, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, 24 * T_BS, 0) == 24 * T_BS);
	close(fd);
	t_pattern(want, 0, 2);
	CHECK(!memcmp(buf, want, T_BS));
	CHECK(all_zero(buf + 8 * T_BS, 16 * T_BS));

	log = slurp(s->log);
	CHECK(LOG_HAS(log, " Write ", "offset=0x0 ", "count=0x1000 ", "fua=1"));
	CHECK(LOG_HAS(log, " Flush "));
	CHECK(LOG_HAS(log, " Zero ", "offset=0x8000 ", "count=0x8000 ", "trim=1", "fua=0"));
	CHECK(LOG_HAS(log, " Zero ", "offset=0x10000 ", "count=0x8000 ", "trim=0", "fua=1"));
	CHECK(LOG_HAS(log, " Trim ", "offset=0x20000 ", "count=0x8000 "));
	free(log);
}

static void test_no_fua(struct umpath_ctx *ctx, const struct t_srv *s)
{
	struct umpath_map *map = one_path_map(ctx, s);
	static unsigned char buf[T_BS];
	const char *w;
	char *log;

	t_pattern(buf, 2, 3);
	CHECK_EQ_INT(fua_write(map, 2 * T_BS, T_BS, buf), 0);
	umpath_map_free(map);
	log = slurp(s->log);
	CHECK(LOG_HAS(log, "fua=0", "flush=1"));	/* the Connect line */
	w = log_find(log, (const char *const[]){ " Write ", "offset=0x2000 ", "fua=0", NULL });
	CHECK(w);
	CHECK(LOG_HAS(w, " Flush "));			/* after the write */
	free(log);
}

static void test_bare(struct umpath_ctx *ctx, const struct t_srv *s, const char *image)
{
	struct umpath_map *map = one_path_map(ctx, s);
	const uint64_t zoff = T_BS, zlen = (3u << 20) + T_BS;	/* > the 1 MiB zero chunk */
	unsigned char *buf = malloc(4u << 20), want[T_BS];
	int fd;
	char *log;

	CHECK(buf);
	/* The pattern goes into the image directly: the server (dd per
	 * request) reads the file every time. */
	for (unsigned b = 0; b < 1024; b++)
		t_pattern(buf + b * T_BS, b, 4);
	fd = open(image, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, buf, 4u << 20, 0) == 4 << 20);
	close(fd);

	CHECK_EQ_INT(zeroes(map, zoff, zlen, UMPATH_IO_NO_HOLE), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, 4u << 20, buf), 0);
	t_pattern(want, 0, 4);
	CHECK(!memcmp(buf, want, T_BS));
	CHECK(all_zero(buf + zoff, zlen));
	t_pattern(want, (zoff + zlen) / T_BS, 4);
	CHECK(!memcmp(buf + zoff + zlen, want, T_BS));

	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 0, T_BS, NULL), -EOPNOTSUPP);
	CHECK_EQ_INT(t_path_state(map, s->uri), 'A');
	t_pattern(want, 1023, 5);
	CHECK_EQ_INT(fua_write(map, 1023 * T_BS, T_BS, want), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 1023 * T_BS, T_BS, buf), 0);
	CHECK(!memcmp(buf, want, T_BS));
	umpath_map_free(map);

	log = slurp(s->log);
	CHECK(LOG_HAS(log, "flush=0", "trim=0", "zero=0", "fua=0"));
	CHECK(!LOG_HAS(log, " Zero "));
	CHECK(!LOG_HAS(log, " Flush "));
	CHECK(!LOG_HAS(log, " Trim "));
	CHECK(LOG_HAS(log, " Write ", "offset=0x1000 ", "count=0x100000 "));
	CHECK(LOG_HAS(log, " Write ", "offset=0x301000 ", "count=0x1000 "));
	free(log);
	free(buf);
}

static void test_read_only(struct umpath_ctx *ctx, const struct t_srv *s)
{
	struct umpath_map *map = one_path_map(ctx, s);
	static unsigned char buf[T_BS];

	CHECK_EQ_INT(t_sync(map, UMPATH_OP_WRITE, 0, T_BS, buf), -EROFS);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_TRIM, 0, T_BS, NULL), -EROFS);
	CHECK_EQ_INT(zeroes(map, 0, T_BS, 0), -EROFS);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_READ, 0, T_BS, buf), 0);
	CHECK_EQ_INT(t_sync(map, UMPATH_OP_FLUSH, 0, 0, NULL), 0);
	CHECK_EQ_INT(t_path_state(map, s->uri), 'A');
	CHECK_EQ_INT(t_stats(ctx, s->uri).errors, 3);
	umpath_map_free(map);
}

static void test_path_strings(struct umpath_ctx *ctx, const struct t_srv *s)
{
	struct umpath_map *map = one_path_map(ctx, s);
	char table[1024], err[256] = "", nosock[300];
	struct umpath_map *bad = NULL;

	/* Well-formed but not in the map: EINVAL; malformed: ENOENT. */
	t_msg(map, "fail_path nbd+unix:///?socket=/nonexistent/x.sock", -EINVAL);
	t_msg(map, "fail_path nbd+unix:///export?socket=/x.sock&tls-certificates=/c", -EINVAL);
	t_msg(map, "fail_path nbd://localhost:10809/exp", -EINVAL);
	t_msg(map, "fail_path nbds://192.0.2.1/", -EINVAL);
	t_msg(map, "fail_path nbd+vsock://2:10809/", -EINVAL);
	t_msg(map, "fail_path nbd+unix:///", -ENOENT);		/* no socket= */
	t_msg(map, "fail_path nbd+unix:///?socket=", -ENOENT);
	t_msg(map, "fail_path nbd://host/?socket=/x.sock", -ENOENT);	/* socket= on TCP */
	t_msg(map, "fail_path nbd://[::1/", -ENOENT);
	t_msg(map, "fail_path nbd://host:port/", -ENOENT);
	t_msg(map, "fail_path nbd:/host", -ENOENT);
	umpath_map_free(map);

	/* Nobody listening: the table is refused as the kernel refuses a
	 * device it cannot open. */
	t_path(nosock, sizeof(nosock), "nobody.sock");
	snprintf(table, sizeof(table), "0 0 1 1 round-robin 0 1 1 nbd+unix:///?socket=%s 1",
		 nosock);
	CHECK(umpath_map_new(ctx, "bad", table, 0, err, sizeof(err), &bad) < 0);
	CHECK_STR(err, "error getting device");
}

int main(void)
{
	static const char *const filters[] = { "log", "fua", "nozero", NULL };
	char image[256], bare_image[256], log_full[300], log_nofua[300], log_bare[300];
	char get_size[400], pread_[400], pwrite_[400];
	struct umpath_ctx *ctx;
	struct t_srv *full, *nofua, *bare, *ro;

	t_setup(filters);
	t_image("disk.img", SIZE, image, sizeof(image));
	t_image("bare.img", SIZE, bare_image, sizeof(bare_image));
	snprintf(log_full, sizeof(log_full), "logfile=%s/full.nbdlog", t_dir);
	snprintf(log_nofua, sizeof(log_nofua), "logfile=%s/nofua.nbdlog", t_dir);
	snprintf(log_bare, sizeof(log_bare), "logfile=%s/bare.nbdlog", t_dir);
	snprintf(get_size, sizeof(get_size), "get_size=stat -Lc %%s %s", bare_image);
	snprintf(pread_, sizeof(pread_),
		 "pread=dd if=%s skip=$4 count=$3 iflag=count_bytes,skip_bytes status=none",
		 bare_image);
	snprintf(pwrite_, sizeof(pwrite_),
		 "pwrite=dd of=%s seek=$4 conv=notrunc oflag=seek_bytes status=none", bare_image);

	full = t_srv_start("full", (const char *const[]){ "--filter=log", "file", image, log_full,
							   NULL });
	nofua = t_srv_start("nofua", (const char *const[]){ "--filter=log", "--filter=fua", "file",
							     image, log_nofua, NULL });
	bare = t_srv_start("bare", (const char *const[]){ "--filter=log", "--filter=nozero", "eval",
							   get_size, pread_, pwrite_, log_bare,
							   NULL });
	ro = t_srv_start("ro", (const char *const[]){ "-r", "file", image, NULL });
	/* The logs the tests read are the filter's, not nbdkit's stderr. */
	snprintf(full->log, sizeof(full->log), "%s/full.nbdlog", t_dir);
	snprintf(nofua->log, sizeof(nofua->log), "%s/nofua.nbdlog", t_dir);
	snprintf(bare->log, sizeof(bare->log), "%s/bare.nbdlog", t_dir);

	CHECK(umpath_ctx_new(NULL, &ctx) == 0);
	test_full(ctx, full, image);
	test_no_fua(ctx, nofua);
	test_bare(ctx, bare, bare_image);
	test_read_only(ctx, ro);
	test_path_strings(ctx, full);
	umpath_ctx_free(ctx);
	return 0;
}
