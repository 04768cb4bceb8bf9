/* cli.h - the subcommands of the umpath tool. */
#ifndef UMPATH_CLI_H
#define UMPATH_CLI_H

#include <stdint.h>

#include <umpath/umpath.h>

int cli_scenario(int argc, char **argv);
int cli_demo(int argc, char **argv);

/* Submit one I/O and wait for it: 0 or -errno. */
int cli_sync_io(struct umpath_map *map, enum umpath_op op, uint64_t off, uint64_t len, void *buf);
/* "EIO" for -EIO. */
const char *cli_errname(int err);

#endif
