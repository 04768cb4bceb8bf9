/* Description: the programs' shared helpers (common/util.h): the growable
 * array keeps its contents and refuses sizes that overflow, a full send
 * delivers every byte (larger than the socket buffer) or says why not, and
 * sanitising replaces control characters and DEL but nothing else. */
#undef NDEBUG
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "util.h"

#define BIG (4u << 20)

static void *reader(void *arg)
{
	int fd = *(int *)arg;
	unsigned char *buf = malloc(BIG);
	size_t got = 0;
	ssize_t n;

	CHECK(buf);
	while ((n = read(fd, buf + got, BIG - got)) > 0)
		got += (size_t)n;
	CHECK(got == BIG);
	for (size_t i = 0; i < BIG; i++)
		CHECK(buf[i] == (unsigned char)(i * 7));
	free(buf);
	return NULL;
}

int main(void)
{
	size_t cap = 0;
	int *a = NULL, *na;
	int sv[2];
	pthread_t t;
	unsigned char *big;
	char s[] = "a\tb\nc\x7f" "d\xc3\xb1 e";
	char *line = NULL;
	size_t len = 0;
	FILE *f;

	for (int i = 0; i < 1000; i++) {
		na = um_grow(a, &cap, (size_t)i + 1, sizeof(*a));
		CHECK(na && cap >= (size_t)i + 1);
		a = na;
		a[i] = i;
	}
	for (int i = 0; i < 1000; i++)
		CHECK(a[i] == i);
	CHECK(um_grow(a, &cap, SIZE_MAX / 2, sizeof(*a)) == NULL && cap >= 1000);
	CHECK(a[999] == 999);
	free(a);

	um_sanitize(s);
	CHECK(!strcmp(s, "a?b?c?d\xc3\xb1 e"));
	f = open_memstream(&line, &len);
	CHECK(f);
	um_fput_clean(f, "x\ry\x1b");
	fclose(f);
	CHECK(!strcmp(line, "x?y?"));
	free(line);

	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	big = malloc(BIG);
	CHECK(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 7);
	CHECK(!pthread_create(&t, NULL, reader, &sv[1]));
	CHECK(um_send_all(sv[0], big, BIG) == 0);
	close(sv[0]);
	CHECK(!pthread_join(t, NULL));
	/* The peer is gone: an error, not a SIGPIPE. */
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	close(sv[1]);
	CHECK(um_send_all(sv[0], big, 16) == -EPIPE);
	close(sv[0]);
	free(big);
	return 0;
}
