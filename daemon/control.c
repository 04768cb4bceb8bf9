/* control.c - placeholder: the control socket is being written. */
#include <errno.h>

#include "daemon.h"

int umd_control_start(struct umd *d, const char *path, struct umd_control **ret)
{
	*ret = NULL;
	return 0;
}

void umd_control_stop(struct umd_control *c)
{
}
