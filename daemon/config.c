/* config.c - placeholder: the configuration file is being written. */
#include "daemon.h"
