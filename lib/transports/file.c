/* file.c - placeholder until the file transport lands: claims no path. */
#include "internal.h"

static int file_claims(struct umpath_ctx *ctx, const char *path)
{
	return 0;
}

const struct um_transport um_file_transport = {
	.name = "file",
	.claims = file_claims,
};
