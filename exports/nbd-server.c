/* nbd-server.c - placeholder: the NBD server is being written. */
#include <errno.h>

#include "daemon.h"

static int nbd_start(struct umd *d, const char *spec, struct umd_export **ret)
{
	return -ENOTSUP;
}

static void nbd_stop(struct umd_export *e)
{
}

const struct umd_export_ops umd_nbd_export = {
	.name = "nbd",
	.start = nbd_start,
	.stop = nbd_stop,
};
