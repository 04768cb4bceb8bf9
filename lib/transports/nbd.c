/* nbd.c - placeholder until the nbd transport lands: claims no path. */
#include "internal.h"

static int nbd_claims(struct umpath_ctx *ctx, const char *path)
{
	return 0;
}

const struct um_transport um_nbd_transport = {
	.name = "nbd",
	.claims = nbd_claims,
};
