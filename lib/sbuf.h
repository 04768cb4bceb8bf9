/* sbuf.h - append-only string builder over a caller's buffer, snprintf-like:
 * the length keeps counting past the end so callers can detect truncation. */
#ifndef UMPATH_SBUF_H
#define UMPATH_SBUF_H

#include <stddef.h>

struct sbuf {
	char *buf;
	size_t cap;	/* bytes in buf, including the terminating NUL */
	size_t len;	/* bytes that would have been written */
};

static inline void sbuf_init(struct sbuf *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	if (cap)
		buf[0] = '\0';
}

void sbuf_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as one word of a table line, then a space (um_escape_word). */
void sbuf_word(struct sbuf *sb, const char *s);
/* Drop one trailing space, as dmsetup's output has none. */
void sbuf_trim(struct sbuf *sb);

#endif
