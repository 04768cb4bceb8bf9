/* fuse.c - placeholder: the FUSE export is being written. */
#include <errno.h>

#include "daemon.h"

static int fuse_start(struct umd *d, const char *spec, struct umd_export **ret)
{
	return -ENOTSUP;
}

static void fuse_stop(struct umd_export *e)
{
}

const struct umd_export_ops umd_fuse_export = {
	.name = "fuse",
	.start = fuse_start,
	.stop = fuse_stop,
};
