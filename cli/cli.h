/* cli.h - the subcommands of the umpath tool. */
#ifndef UMPATH_CLI_H
#define UMPATH_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <umpath/umpath.h>

int cli_scenario(int argc, char **argv);
int cli_demo(int argc, char **argv);

/* The verbs served by umpathd over its control socket: argv[0] is the
 * verb.  socket_path NULL: $UMPATH_CONTROL or the default.  Exit status. */
int cli_ctl(const char *socket_path, int argc, char **argv);
bool cli_ctl_is_verb(const char *name);

/* Submit one I/O and wait for it: 0 or -errno. */
int cli_sync_io(struct umpath_map *map, enum umpath_op op, uint64_t off, uint64_t len, void *buf);
/* "EIO" for -EIO. */
const char *cli_errname(int err);

#endif
