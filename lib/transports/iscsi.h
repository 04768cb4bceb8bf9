/* iscsi.h - what the rest of libumpath may ask of an iSCSI path beyond
 * struct um_transport: a raw SCSI command on the path's session (TEST UNIT
 * READY for the checker, PERSISTENT RESERVE IN/OUT for umpath persist), and
 * the SCSI status/sense table that decides what an answer means. */
#ifndef UMPATH_ISCSI_H
#define UMPATH_ISCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct um_path;

/* status: the SCSI status byte (0 GOOD, 2 CHECK CONDITION, 0x18
 * RESERVATION CONFLICT, ...) when the target answered, or -errno when it
 * did not (-ENOTCONN: no session, or it was lost; -ETIMEDOUT: no answer
 * within io_timeout, the command was aborted or the session dropped).
 * sense: the sense data of a CHECK CONDITION (fixed or descriptor format,
 * as sent), else NULL.  xfer_len: bytes read into buf (UM_SCSI_READ).
 * Called once, on the path's event loop thread, with no lock held; it must
 * not block. */
typedef void (*um_scsi_done_fn)(void *opaque, int status, const uint8_t *sense,
				size_t sense_len, size_t xfer_len);

/* Run one SCSI command (cdb, at most 16 bytes) on the LUN of an iSCSI path,
 * from any thread: it is queued to the path's event loop, which owns the
 * libiscsi session (libiscsi is single-threaded).  buf (len bytes) stays
 * the caller's until done; dir is UM_SCSI_NONE (no data), UM_SCSI_READ (into
 * buf) or UM_SCSI_WRITE (from buf), as in internal.h.  The command has the
 * io_timeout deadline and is aborted (ABORT TASK) when it misses it.  0 (done will be called) or
 * -errno (it will not): -EINVAL for a bad cdb/len, -ENOTTY if the path is
 * not an iSCSI path, -ENOTCONN while it has no session (it reconnects in
 * the background). */
int um_iscsi_command(struct um_path *p, const uint8_t *cdb, size_t cdb_len, int dir,
		     void *buf, size_t len, um_scsi_done_fn done, void *opaque);

bool um_path_is_iscsi(const struct um_path *p);
/* ABORT TASKs sent on the path since it was opened (0 for other paths). */
uint64_t um_iscsi_aborts(const struct um_path *p);

/* ---- SCSI answers: one table (scsierr.c, docs/scsi-errors.md) ---------- */

enum um_scsi_action {
	UM_SCSI_OK,		/* done, err 0 */
	UM_SCSI_FAIL,		/* done with err (umpath_is_path_error() decides the class) */
	UM_SCSI_RETRY,		/* send again on the same path at once, a bounded number of times */
	UM_SCSI_RETRY_DELAYED,	/* send again on the same path after a pause, until the deadline */
};

struct um_scsi_verdict {
	enum um_scsi_action action;
	int err;		/* -errno for UM_SCSI_FAIL, and for retries that run out */
};

/* What a SCSI status with its sense key/ASC/ASCQ means, as Linux's SCSI
 * midlayer decides (scsi_check_sense(), scsi_io_completion_action(),
 * scsi_result_to_blk_status()). */
struct um_scsi_verdict um_scsi_classify(int status, unsigned key, unsigned asc, unsigned ascq);
/* key, asc, ascq of raw sense data (fixed 0x70/0x71 or descriptor
 * 0x72/0x73); false if it is neither. */
bool um_scsi_parse_sense(const uint8_t *sense, size_t len, unsigned *key, unsigned *asc,
			 unsigned *ascq);

#endif
