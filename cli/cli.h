/* cli.h - the subcommands of the umpath tool. */
#ifndef UMPATH_CLI_H
#define UMPATH_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <umpath/umpath.h>

/* socket_path: -S, a running umpathd for --daemon (NULL: none given). */
int cli_scenario(const char *socket_path, int argc, char **argv);
int cli_demo(int argc, char **argv);

/* The verbs served by umpathd over its control socket: argv[0] is the
 * verb.  socket_path NULL: $UMPATH_CONTROL or the default.  Exit status. */
int cli_ctl(const char *socket_path, int argc, char **argv);
bool cli_ctl_is_verb(const char *name);
/* One request to umpathd at path (NULL: the default): its whole answer,
 * status line and output, NUL-terminated, in *ret_reply (to free).  -errno
 * if umpathd cannot be reached, or cannot be trusted (err says why). */
int cli_ctl_request(const char *path, int argc, char **argv, char **ret_reply,
		    size_t *ret_len, char *err, size_t errlen);

/* Submit one I/O and wait for it: 0 or -errno. */
int cli_sync_io(struct umpath_map *map, enum umpath_op op, uint64_t off, uint64_t len, void *buf);
/* "EIO" for -EIO. */
const char *cli_errname(int err);

#endif
