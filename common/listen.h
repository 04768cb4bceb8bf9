/* listen.h - listening sockets for umpathd's listeners (listen.c). */
#ifndef UMPATH_COMMON_LISTEN_H
#define UMPATH_COMMON_LISTEN_H

#include <stddef.h>

/* A unix socket listening on path; a stale socket file there (nobody
 * answers) is replaced, a live one is -EADDRINUSE. */
int um_listen_unix(const char *path, int *ret_fd);
/* Split a TCP spec as um_listen_tcp does, and check its port; nothing is
 * opened (a spec in a config file is checked when it is read). */
int um_parse_tcp(const char *spec, const char *def_port, char host[256], char port[32],
		 char *why, size_t whylen);
/* TCP on "", "PORT", "HOST:PORT" or "[V6]:PORT" (host 127.0.0.1 and port
 * def_port when not given; def_port NULL: a port must be given).  On error
 * why says what was wrong ("invalid port ..."). */
int um_listen_tcp(const char *spec, const char *def_port, int *ret_fd, char *why, size_t whylen);

#endif
