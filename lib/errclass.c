/* errclass.c - the one place that decides whether an I/O error is the
 * path's fault (fail the path, retry elsewhere) or the request's (return it
 * to the caller).  Mirrors Linux blk_path_error(): anything not known to be
 * a target error counts as a path error. */
#include <errno.h>

#include <umpath/umpath.h>

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
