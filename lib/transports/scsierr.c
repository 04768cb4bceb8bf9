/* scsierr.c - what a SCSI answer means for multipath: the one table from
 * status byte and sense (key, ASC, ASCQ) to "done", "target error", "path
 * error" or "retry on the same path".  It follows Linux 6.12's SCSI
 * midlayer: drivers/scsi/scsi_error.c scsi_check_sense() and
 * scsi_decide_disposition(), drivers/scsi/scsi_lib.c
 * scsi_io_completion_action() and scsi_result_to_blk_status(), with the
 * ALUA device handler's check_sense() (scsi_dh_alua.c) that dm-multipath
 * setups attach; and block/blk-core.c blk_path_error() for the class, which
 * here is umpath_is_path_error() of the errno chosen (errclass.c).  The
 * same table, as prose, is docs/scsi-errors.md. */
#include <errno.h>

#include "internal.h"
#include "iscsi.h"

enum {
	ST_GOOD = 0x00,
	ST_CHECK_CONDITION = 0x02,
	ST_CONDITION_MET = 0x04,
	ST_BUSY = 0x08,
	ST_RESERVATION_CONFLICT = 0x18,
	ST_TASK_SET_FULL = 0x28,
	ST_ACA_ACTIVE = 0x30,
	ST_TASK_ABORTED = 0x40,
};

enum {
	SK_NO_SENSE = 0x0, SK_RECOVERED_ERROR = 0x1, SK_NOT_READY = 0x2,
	SK_MEDIUM_ERROR = 0x3, SK_HARDWARE_ERROR = 0x4, SK_ILLEGAL_REQUEST = 0x5,
	SK_UNIT_ATTENTION = 0x6, SK_DATA_PROTECT = 0x7, SK_BLANK_CHECK = 0x8,
	SK_COPY_ABORTED = 0xa, SK_ABORTED_COMMAND = 0xb, SK_VOLUME_OVERFLOW = 0xd,
	SK_MISCOMPARE = 0xe,
};

#define V(a, e) ((struct um_scsi_verdict){ .action = (a), .err = (e) })

/* CHECK CONDITION: by sense key, then ASC/ASCQ where Linux looks at them. */
static struct um_scsi_verdict check_sense(unsigned key, unsigned asc, unsigned ascq)
{
	switch (key) {
	case SK_NO_SENSE:
	case SK_RECOVERED_ERROR:
		/* scsi_check_sense: the command completed (SUCCESS). */
		return V(UM_SCSI_OK, 0);
	case SK_UNIT_ATTENTION:
		/* A reset, a changed mode/capacity/reservation, power on:
		 * the command was not executed; scsi_check_sense says
		 * NEEDS_RETRY (bounded by the command's retries). */
		return V(UM_SCSI_RETRY, -EIO);
	case SK_NOT_READY:
		if (asc == 0x04 && ascq == 0x0a)	/* ALUA state transition */
			return V(UM_SCSI_RETRY_DELAYED, -EIO);	/* alua: ADD_TO_MLQUEUE */
		if (asc == 0x04 && (ascq == 0x01 || ascq == 0x04 || ascq == 0x05 ||
				    ascq == 0x06 || ascq == 0x07 || ascq == 0x08 ||
				    ascq == 0x09 || ascq == 0x14 || ascq == 0x1a ||
				    ascq == 0x1b))
			return V(UM_SCSI_RETRY_DELAYED, -EIO);	/* becoming ready */
		/* Not ready, no retry: BLK_STS_IOERR, a path error (another
		 * port of the LU may be ready: standby, offline port). */
		return V(UM_SCSI_FAIL, -EIO);
	case SK_MEDIUM_ERROR:
		return V(UM_SCSI_FAIL, -ENODATA);	/* BLK_STS_MEDIUM */
	case SK_HARDWARE_ERROR:
		return V(UM_SCSI_FAIL, -EREMOTEIO);	/* SCSIML_STAT_TGT_FAILURE */
	case SK_ILLEGAL_REQUEST:
		if (asc == 0x20 || (asc == 0x24 && ascq == 0x00))
			return V(UM_SCSI_FAIL, -EOPNOTSUPP);	/* opcode / field unsupported */
		if (asc == 0x21)
			return V(UM_SCSI_FAIL, -EINVAL);	/* LBA out of range */
		return V(UM_SCSI_FAIL, -EREMOTEIO);		/* BLK_STS_TARGET */
	case SK_DATA_PROTECT:
		if (asc == 0x27 && ascq == 0x07)
			return V(UM_SCSI_FAIL, -ENOSPC);	/* space allocation failed */
		return V(UM_SCSI_FAIL, -EROFS);		/* write protected: BLK_STS_TARGET */
	case SK_ABORTED_COMMAND:
		if (asc == 0x10)			/* DIF/DIX: protection information */
			return V(UM_SCSI_FAIL, -EILSEQ);	/* BLK_STS_PROTECTION */
		/* The target aborted it (often a transport hiccup):
		 * scsi_check_sense NEEDS_RETRY. */
		return V(UM_SCSI_RETRY, -EIO);
	case SK_BLANK_CHECK:
	case SK_COPY_ABORTED:
	case SK_VOLUME_OVERFLOW:
	case SK_MISCOMPARE:
		return V(UM_SCSI_FAIL, -EREMOTEIO);	/* SCSIML_STAT_TGT_FAILURE */
	default:
		return V(UM_SCSI_FAIL, -EIO);		/* vendor specific and unknown */
	}
}

struct um_scsi_verdict um_scsi_classify(int status, unsigned key, unsigned asc, unsigned ascq)
{
	switch (status) {
	case ST_GOOD:
	case ST_CONDITION_MET:
		return V(UM_SCSI_OK, 0);
	case ST_CHECK_CONDITION:
		return check_sense(key, asc, ascq);
	case ST_RESERVATION_CONFLICT:
		/* The path is fine; this initiator is fenced off the LU. */
		return V(UM_SCSI_FAIL, -EBADE);		/* BLK_STS_RESV_CONFLICT */
	case ST_BUSY:
	case ST_TASK_SET_FULL:
		/* scsi_decide_disposition: ADD_TO_MLQUEUE, requeued to the
		 * same device after a pause (until the command times out). */
		return V(UM_SCSI_RETRY_DELAYED, -EIO);
	case ST_TASK_ABORTED:
		/* Aborted by another initiator's task management (TAS):
		 * scsi_decide_disposition retries it. */
		return V(UM_SCSI_RETRY, -EIO);
	case ST_ACA_ACTIVE:
	default:
		return V(UM_SCSI_FAIL, -EIO);		/* DID_ERROR-like: path error */
	}
}

bool um_scsi_parse_sense(const uint8_t *sense, size_t len, unsigned *key, unsigned *asc,
			 unsigned *ascq)
{
	if (!sense || len < 1)
		return false;
	switch (sense[0] & 0x7f) {
	case 0x70:
	case 0x71:		/* fixed format */
		if (len < 14)
			return false;
		*key = sense[2] & 0x0f;
		*asc = sense[12];
		*ascq = sense[13];
		return true;
	case 0x72:
	case 0x73:		/* descriptor format */
		if (len < 4)
			return false;
		*key = sense[1] & 0x0f;
		*asc = sense[2];
		*ascq = sense[3];
		return true;
	default:
		return false;
	}
}
