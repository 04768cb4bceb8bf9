/* errclass.c - errors: the one place that decides whether an I/O error is
 * the path's fault (fail the path, retry elsewhere) or the request's
 * (return it to the caller), mirroring Linux blk_path_error(): anything not
 * known to be a target error counts as a path error; and the detail that a
 * refused table or message carries beyond the kernel's reason. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Per thread, as libnbd's nbd_get_error(): callers on several threads
 * each read their own call's detail. */
static _Thread_local char detail[512];

void um_detail_clear(void)
{
	detail[0] = '\0';
}

void um_detail_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
}

const char *um_detail_get(void)
{
	return detail;
}

const char *umpath_error_detail(void)
{
	return detail;
}

int um_escape_word(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[5];
		size_t k;

		if (c == ' ' || c == '\\')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", c);
		else if (c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		else
			k = (size_t)snprintf(tmp, sizeof(tmp), "%c", c);
		for (size_t i = 0; i < k; i++, n++)
			if (n + 1 < len)
				buf[n] = tmp[i];
	}
	if (len)
		buf[n < len ? n : len - 1] = '\0';
	return (int)n;
}

void um_escape_detail(char *buf, size_t len, const char *s)
{
	if ((size_t)um_escape_word(buf, len, s) >= len)
		memcpy(buf + len - 4, "...", 4);
}

int umpath_is_path_error(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return 0;
	case ENOSPC:		/* BLK_STS_NOSPC */
	case EINVAL:		/* out of range, malformed */
	case EOPNOTSUPP:	/* BLK_STS_NOTSUPP */
	case EPERM:		/* read-only or refused */
	case EROFS:
	case EOVERFLOW:
	case EFBIG:
	case EDQUOT:
	case EREMOTEIO:		/* BLK_STS_TARGET */
	case EBADE:		/* BLK_STS_RESV_CONFLICT */
	case ENODATA:		/* BLK_STS_MEDIUM */
	case EILSEQ:		/* BLK_STS_PROTECTION */
		return 0;
	default:
		return 1;
	}
}
