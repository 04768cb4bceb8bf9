/* util.h - small helpers the programs (umpathd, umpath, the exports) share
 * instead of keeping copies: a growable array, a full send, and making
 * text that came from a client safe to print back.  Nothing here knows
 * about the engine; the engine does not use it. */
#ifndef UMPATH_COMMON_UTIL_H
#define UMPATH_COMMON_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Room for need elements of elem bytes in arr (capacity *cap elements),
 * doubling from 8: the array (arr itself if it was large enough, else
 * moved), or NULL without memory, arr and *cap left as they were:
 *	np = um_grow(a, &cap, n + 1, sizeof(*a)); if (!np) ...; a = np; */
void *um_grow(void *arr, size_t *cap, size_t need, size_t elem);

/* Send all of buf on a socket (no SIGPIPE; EINTR retried): 0 or -errno. */
int um_send_all(int fd, const void *buf, size_t len);

/* Control characters and DEL become '?', in place: a name or table word
 * from a client must not break (or forge) a line of a log or a reply. */
void um_sanitize(char *s);
/* Print s with the same replacement. */
void um_fput_clean(FILE *out, const char *s);

#endif
