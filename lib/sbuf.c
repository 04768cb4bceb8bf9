/* sbuf.c - string builder for status and table lines. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "sbuf.h"

void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->len += (size_t)n;
}

void sbuf_trim(struct sbuf *sb)
{
	/* Every emitter ends its words with a space, written or not. */
	if (!sb->len)
		return;
	sb->len--;
	if (sb->len < sb->cap)
		sb->buf[sb->len] = '\0';
}

void sbuf_word(struct sbuf *sb, const char *s)
{
	size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;

	sb->len += (size_t)um_escape_word(room ? sb->buf + sb->len : NULL, room, s);
	sbuf_printf(sb, " ");
}
