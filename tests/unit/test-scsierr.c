/* Description: the SCSI answer table (lib/transports/scsierr.c) classes each status and sense as docs/scsi-errors.md says, Linux's midlayer and blk_path_error() being the reference: medium, illegal request, data protect, protection information and reservation conflict are target errors; unit attention and aborted command are retried; busy, task set full, becoming ready and ALUA transitioning are retried after a pause; other not-ready answers are path errors; fixed and descriptor sense parse to the same key/ASC/ASCQ. */
#undef NDEBUG
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "transports/iscsi.h"

#include "check.h"

struct row {
	int status;
	unsigned key, asc, ascq;
	enum um_scsi_action action;
	int err;
	int path_error;		/* umpath_is_path_error(err): 1 path, 0 target, -1 n/a */
};

static const struct row rows[] = {
	{ 0x00, 0, 0, 0, UM_SCSI_OK, 0, -1 },
	{ 0x04, 0, 0, 0, UM_SCSI_OK, 0, -1 },			/* CONDITION MET */
	{ 0x02, 0x1, 0x18, 0, UM_SCSI_OK, 0, -1 },		/* RECOVERED ERROR */
	{ 0x02, 0x6, 0x29, 0, UM_SCSI_RETRY, -EIO, 1 },		/* UNIT ATTENTION: reset */
	{ 0x02, 0x6, 0x2a, 0x09, UM_SCSI_RETRY, -EIO, 1 },	/* capacity changed */
	{ 0x02, 0x2, 0x04, 0x01, UM_SCSI_RETRY_DELAYED, -EIO, 1 },	/* becoming ready */
	{ 0x02, 0x2, 0x04, 0x0a, UM_SCSI_RETRY_DELAYED, -EIO, 1 },	/* ALUA transition */
	{ 0x02, 0x2, 0x04, 0x03, UM_SCSI_FAIL, -EIO, 1 },	/* manual intervention */
	{ 0x02, 0x2, 0x3a, 0x00, UM_SCSI_FAIL, -EIO, 1 },	/* medium not present */
	{ 0x02, 0x3, 0x11, 0x00, UM_SCSI_FAIL, -ENODATA, 0 },	/* MEDIUM ERROR */
	{ 0x02, 0x4, 0x44, 0x00, UM_SCSI_FAIL, -EREMOTEIO, 0 },	/* HARDWARE ERROR */
	{ 0x02, 0x5, 0x20, 0x00, UM_SCSI_FAIL, -EOPNOTSUPP, 0 },	/* invalid opcode */
	{ 0x02, 0x5, 0x24, 0x00, UM_SCSI_FAIL, -EOPNOTSUPP, 0 },	/* invalid field in CDB */
	{ 0x02, 0x5, 0x21, 0x00, UM_SCSI_FAIL, -EINVAL, 0 },	/* LBA out of range */
	{ 0x02, 0x5, 0x25, 0x00, UM_SCSI_FAIL, -EREMOTEIO, 0 },	/* LUN not supported */
	{ 0x02, 0x7, 0x27, 0x00, UM_SCSI_FAIL, -EROFS, 0 },	/* write protected */
	{ 0x02, 0x7, 0x27, 0x07, UM_SCSI_FAIL, -ENOSPC, 0 },	/* space allocation failed */
	{ 0x02, 0xb, 0x10, 0x01, UM_SCSI_FAIL, -EILSEQ, 0 },	/* guard check failed */
	{ 0x02, 0xb, 0x47, 0x00, UM_SCSI_RETRY, -EIO, 1 },	/* ABORTED COMMAND */
	{ 0x02, 0xe, 0x1d, 0x00, UM_SCSI_FAIL, -EREMOTEIO, 0 },	/* MISCOMPARE */
	{ 0x02, 0x9, 0x00, 0x00, UM_SCSI_FAIL, -EIO, 1 },	/* vendor specific */
	{ 0x18, 0, 0, 0, UM_SCSI_FAIL, -EBADE, 0 },		/* RESERVATION CONFLICT */
	{ 0x08, 0, 0, 0, UM_SCSI_RETRY_DELAYED, -EIO, 1 },	/* BUSY */
	{ 0x28, 0, 0, 0, UM_SCSI_RETRY_DELAYED, -EIO, 1 },	/* TASK SET FULL */
	{ 0x40, 0, 0, 0, UM_SCSI_RETRY, -EIO, 1 },		/* TASK ABORTED */
	{ 0x30, 0, 0, 0, UM_SCSI_FAIL, -EIO, 1 },		/* ACA ACTIVE */
};

int main(void)
{
	for (size_t i = 0; i < UM_ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];
		struct um_scsi_verdict v = um_scsi_classify(r->status, r->key, r->asc, r->ascq);

		if (v.action != r->action || v.err != r->err ||
		    (r->path_error >= 0 && umpath_is_path_error(v.err) != r->path_error)) {
			fprintf(stderr, "row %zu (status %#x key %#x %02x/%02x): action %d err %d, "
				"want action %d err %d path_error %d\n", i, r->status, r->key,
				r->asc, r->ascq, v.action, v.err, r->action, r->err, r->path_error);
			return 1;
		}
	}

	/* Fixed and descriptor sense: DATA PROTECT 27/00. */
	static const uint8_t fixed[18] = { 0x70, 0, 0x07, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x27, 0x00 };
	static const uint8_t desc[8] = { 0x72, 0x07, 0x27, 0x00, 0, 0, 0, 0 };
	static const uint8_t junk[4] = { 0x12, 0, 0, 0 };
	unsigned key = 99, asc = 99, ascq = 99;

	CHECK(um_scsi_parse_sense(fixed, sizeof(fixed), &key, &asc, &ascq));
	CHECK(key == 0x7 && asc == 0x27 && ascq == 0);
	key = asc = ascq = 99;
	CHECK(um_scsi_parse_sense(desc, sizeof(desc), &key, &asc, &ascq));
	CHECK(key == 0x7 && asc == 0x27 && ascq == 0);
	CHECK(!um_scsi_parse_sense(junk, sizeof(junk), &key, &asc, &ascq));
	CHECK(!um_scsi_parse_sense(fixed, 10, &key, &asc, &ascq));	/* too short */
	CHECK(!um_scsi_parse_sense(NULL, 0, &key, &asc, &ascq));
	printf("PASS\n");
	return 0;
}
