/* nbd-proto.h - the NBD protocol's numbers (fixed newstyle handshake and
 * simple replies), as in the protocol document (doc/proto.md of the NBD
 * project). */
#ifndef UMPATH_NBD_PROTO_H
#define UMPATH_NBD_PROTO_H

#include <stdint.h>

#define NBD_MAGIC		0x4e42444d41474943ull	/* "NBDMAGIC" */
#define NBD_IHAVEOPT		0x49484156454f5054ull	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE	(1u << 0)
#define NBD_FLAG_NO_ZEROES	(1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES	NBD_FLAG_NO_ZEROES

/* options */
#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_LIST		3
#define NBD_OPT_STARTTLS	5
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7

/* option replies */
#define NBD_REP_ACK		1u
#define NBD_REP_SERVER		2u
#define NBD_REP_INFO		3u
#define NBD_REP_FLAG_ERROR	(1u << 31)
#define NBD_REP_ERR_UNSUP	(NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY	(NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID	(NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_TLS_REQD	(NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN	(NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN	(NBD_REP_FLAG_ERROR | 7u)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_DESCRIPTION	2
#define NBD_INFO_BLOCK_SIZE	3

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS	(1u << 0)
#define NBD_FLAG_READ_ONLY	(1u << 1)
#define NBD_FLAG_SEND_FLUSH	(1u << 2)
#define NBD_FLAG_SEND_FUA	(1u << 3)
#define NBD_FLAG_SEND_TRIM	(1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN	(1u << 8)

/* commands and their flags */
#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_WRITE_ZEROES	6
#define NBD_CMD_FLAG_FUA	(1u << 0)
#define NBD_CMD_FLAG_NO_HOLE	(1u << 1)

/* errors on the wire */
#define NBD_EPERM	1
#define NBD_EIO		5
#define NBD_ENOMEM	12
#define NBD_EINVAL	22
#define NBD_ENOSPC	28
#define NBD_EOVERFLOW	75
#define NBD_ENOTSUP	95
#define NBD_ESHUTDOWN	108

/* What goes over the wire, big-endian. */
struct nbd_new_handshake {		/* server's greeting */
	uint64_t magic;			/* NBD_MAGIC */
	uint64_t ihaveopt;		/* NBD_IHAVEOPT */
	uint16_t flags;			/* NBD_FLAG_FIXED_NEWSTYLE, ... */
} __attribute__((packed));

struct nbd_option {			/* client's option header, then len bytes */
	uint64_t magic;			/* NBD_IHAVEOPT */
	uint32_t option;		/* NBD_OPT_* */
	uint32_t len;
} __attribute__((packed));

struct nbd_fixed_new_option_reply {	/* server's answer to an option */
	uint64_t magic;			/* NBD_REP_MAGIC */
	uint32_t option;
	uint32_t reply;			/* NBD_REP_* */
	uint32_t len;
} __attribute__((packed));

/* The reply to NBD_OPT_EXPORT_NAME: size, flags and (without
 * NBD_FLAG_C_NO_ZEROES) 124 zero bytes. */
#define NBD_EXPORT_NAME_REPLY_SIZE	10
#define NBD_EXPORT_NAME_ZEROES		124

struct nbd_request {			/* transmission: client's request */
	uint32_t magic;			/* NBD_REQUEST_MAGIC */
	uint16_t flags;			/* NBD_CMD_FLAG_* */
	uint16_t type;			/* NBD_CMD_* */
	uint64_t cookie;		/* opaque: echoed in the reply */
	uint64_t offset;
	uint32_t count;
} __attribute__((packed));
#define NBD_REQUEST_SIZE	28

struct nbd_simple_reply {		/* transmission: server's reply */
	uint32_t magic;			/* NBD_SIMPLE_REPLY_MAGIC */
	uint32_t error;			/* NBD_E* */
	uint64_t cookie;
} __attribute__((packed));

_Static_assert(sizeof(struct nbd_request) == NBD_REQUEST_SIZE, "request header");
_Static_assert(sizeof(struct nbd_simple_reply) == 16, "simple reply");

#endif
