/* ctlproto.h - the control socket's wire format, shared by umpathd and the
 * umpath tool.
 *
 * One request per connection.  The client sends its words, each ended by a
 * NUL byte, then one more NUL (an empty word ends the request; at most
 * CTL_MAX_REQUEST bytes).  The server answers with one status line -
 * "OK" or "ERR <ERRNO-NAME> <reason>" - then the command's output, and
 * closes the connection.  After an ERR line may come one more line, the
 * detail: what was refused and why ("/x/y: No such file or directory"),
 * beyond the reason, which keeps the kernel's words where it has some.
 */
#ifndef UMPATH_CTLPROTO_H
#define UMPATH_CTLPROTO_H

#include <stddef.h>

#define CTL_MAX_REQUEST (1u << 20)
#define CTL_MAX_WORDS 4096

/* The socket path: explicit (if not NULL), else $UMPATH_CONTROL, else
 * /run/umpath/control for root, $XDG_RUNTIME_DIR/umpath/control for others
 * (or /tmp/umpath-UID/control without XDG_RUNTIME_DIR). */
const char *ctl_socket_path(const char *explicit_path, char *buf, size_t len);

/* Split a request buffer into words; -EINVAL if malformed or incomplete
 * (-EAGAIN: more bytes are needed). */
int ctl_parse_request(char *buf, size_t len, char **argv, int max, int *ret_argc);

/* The words joined by single spaces, malloc'd; NULL without memory. */
char *ctl_join_words(int argc, char *const *argv);

#endif
