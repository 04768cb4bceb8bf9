/* fuzz-config.c - umpathd's configuration file (daemon/config.c): read,
 * applied to a daemon (maps created on mem paths), then reconfigured from
 * the same file twice.
 *
 * A refused file must say "FILE:LINE: reason" (or "FILE: reason") in one
 * line; a file that applied must reconfigure from the same text without
 * error; in the end every map it made goes away.  Paths: the mem stores
 * a..d and p0..p3 (as bare names too); '/' is kept out of inputs so that
 * no path string leaves the process. */
#undef NDEBUG
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <umpath/umpath-mem.h>

#include "daemon.h"
#include "fuzz.h"
#include "log.h"

#define FZ_MAX_INPUT 16384

static struct umd d;
static const char *const names[] = { "a", "b", "c", "d", "p0", "p1", "p2", "p3" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct umd_opts o = { .io_timeout_ms = 1000 };

	if (fz_private_cwd())
		return 1;
	FZ_CHECK(umd_init(&d, &o) == 0);
	FZ_CHECK(umpath_mem_store_new(d.ctx, 64 * 1024, 8, names, 1) == 0);
	return 0;
}

/* reconfigure's reload, as the control socket does it. */
static int reload(void *opaque, struct umd_map *m, const char *target, const char *table,
		  char *err, size_t errlen)
{
	int r = umpath_map_load_target(m->map, target, table, err, errlen);

	if (r < 0)
		return r;
	r = umpath_map_suspend(m->map, UMPATH_SUSPEND_NOFLUSH);
	if (r == 0)
		r = umpath_map_resume(m->map);
	return r;
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

static void check_err(const char *err, const char *file)
{
	FZ_CHECK(err[0] != '\0' && !strchr(err, '\n'));
	FZ_CHECK(!strncmp(err, file, strlen(file)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct umd_config *cfg = NULL;
	char path[64], err[1024];
	int fd, r;

	if (size > FZ_MAX_INPUT || fz_reaches_out(data, size))
		return 0;
	fd = memfd_create("umpath.conf", 0);
	FZ_CHECK(fd >= 0);
	FZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	err[0] = '\0';
	r = umd_config_read(path, &cfg, err, sizeof(err));
	if (r < 0) {
		FZ_CHECK(!cfg);
		check_err(err, path);
		goto out;
	}
	FZ_CHECK(cfg);
	(void)umd_config_io_timeout_ms(cfg);
	err[0] = '\0';
	r = umd_config_apply(&d, cfg, err, sizeof(err));
	if (r < 0) {
		check_err(err, path);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);

		FZ_CHECK(out);
		err[0] = '\0';
		r = umd_config_reconfigure(&d, reload, NULL, out, err, sizeof(err));
		fclose(out);
		if (r < 0) {
			fprintf(stderr, "reconfigure from the file just applied: %d %s\n", r, err);
			FZ_CHECK(!"a file that applied reconfigures");
		}
		free(buf);
	}
out:
	umd_config_fini(&d);
	umd_map_foreach(&d, remove_one, NULL);
	FZ_CHECK(nr_maps() == 0);	/* no reference left behind */
	umd_policy_defaults(&d.defaults);
	close(fd);
	return 0;
}
