/* ctl.c - placeholder: the control-socket verbs are being written. */
#include "cli.h"
