/* util.c - the shared helpers of util.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

static int is_unsafe(char c)
{
	return (unsigned char)c < ' ' || c == 0x7f;
}

void *um_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8;
	void *n;

	if (need <= *cap && arr)
		return arr;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return NULL;
		ncap *= 2;
	}
	if (elem && ncap > SIZE_MAX / elem)
		return NULL;
	n = realloc(arr, ncap * (elem ? elem : 1));
	if (!n)
		return NULL;
	*cap = ncap;
	return n;
}

int um_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void um_sanitize(char *s)
{
	for (; *s; s++)
		if (is_unsafe(*s))
			*s = '?';
}

void um_fput_clean(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc(is_unsafe(*s) ? '?' : *s, out);
}
