/* ctlproto.c - helpers for the control socket's wire format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctlproto.h"

const char *ctl_socket_path(const char *explicit_path, char *buf, size_t len)
{
	const char *env = getenv("UMPATH_CONTROL");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (explicit_path && *explicit_path)
		snprintf(buf, len, "%s", explicit_path);
	else if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, len, "/run/umpath/control");
	else if (xdg && *xdg)
		snprintf(buf, len, "%s/umpath/control", xdg);
	else
		snprintf(buf, len, "/tmp/umpath-%u/control", (unsigned)geteuid());
	return buf;
}

int ctl_parse_request(char *buf, size_t len, char **argv, int max, int *ret_argc)
{
	size_t pos = 0;
	int argc = 0;

	while (pos < len) {
		char *end = memchr(buf + pos, '\0', len - pos);

		if (!end)
			return -EAGAIN;
		if (end == buf + pos) {	/* the empty word: done */
			if (pos + 1 != len)
				return -EINVAL;	/* bytes after the end */
			*ret_argc = argc;
			return 0;
		}
		if (argc == max)
			return -EINVAL;
		argv[argc++] = buf + pos;
		pos = (size_t)(end - buf) + 1;
	}
	return -EAGAIN;
}

char *ctl_join_words(int argc, char *const *argv)
{
	size_t len = 1;
	char *s, *p;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (i)
			*p++ = ' ';
		memcpy(p, argv[i], n);
		p += n;
	}
	*p = '\0';
	return s;
}
