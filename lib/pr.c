/* pr.c - SCSI-3 persistent reservations (SPC-4 6.15 PERSISTENT RESERVE IN,
 * 6.16 PERSISTENT RESERVE OUT): the CDBs and parameter lists built here,
 * sent on one path through its transport's scsi op, and the replies taken
 * apart with every length checked against what was really received: a
 * target's ADDITIONAL LENGTH is a claim, not a size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PR_IN_OPCODE 0x5e
#define PR_OUT_OPCODE 0x5f
#define PR_OUT_PARAM_LEN 24
#define PR_IN_MAX_ALLOC 0xffffu		/* the CDB's ALLOCATION LENGTH is 16 bits */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The open path, or NULL with -errno in *r and the detail set. */
static struct um_path *pr_path(struct umpath_ctx *ctx, const char *path, int *r)
{
	struct um_path *p = um_path_find(ctx, path);

	if (!p) {
		um_detail_set("%s: no map has this path open", path);
		*r = -ENOENT;
		return NULL;
	}
	if (!p->tp->scsi) {
		um_detail_set("%s: persistent reservations not supported by this transport (%s)",
			      path, p->tp->name);
		um_path_put(p);
		*r = -EOPNOTSUPP;
		return NULL;
	}
	*r = 0;
	return p;
}

int umpath_path_pr_supported(struct umpath_ctx *ctx, const char *path)
{
	struct um_path *p;
	int r;

	um_detail_clear();
	p = pr_path(ctx, path, &r);
	um_path_put(p);
	return r;
}

/* One command in flight: its path's reference and, for OUT, its
 * parameter list (the transport reads it until done). */
struct pr_cmd {
	struct um_path *p;
	void (*done)(void *opaque, int err);
	void *opaque;
	uint8_t param[PR_OUT_PARAM_LEN];
};

static void pr_done(void *opaque, int err)
{
	struct pr_cmd *c = opaque;

	c->done(c->opaque, err);
	um_path_put(c->p);
	free(c);
}

static int pr_send(struct umpath_ctx *ctx, const char *path, const uint8_t *cdb, int dir,
		   void *buf, size_t len, struct pr_cmd *c)
{
	int r;

	c->p = pr_path(ctx, path, &r);
	if (!c->p) {
		free(c);
		return r;
	}
	if (dir == UM_SCSI_WRITE)
		buf = c->param;
	r = c->p->tp->scsi(c->p, cdb, 10, dir, buf, len, pr_done, c);
	if (r < 0) {
		um_detail_set("%s: cannot send PERSISTENT RESERVE %s: %s", path,
			      dir == UM_SCSI_WRITE ? "OUT" : "IN", strerror(-r));
		um_path_put(c->p);
		free(c);
	}
	return r;
}

int umpath_path_pr_out(struct umpath_ctx *ctx, const char *path, const struct umpath_pr_out *req,
		       void (*done)(void *opaque, int err), void *opaque)
{
	uint8_t cdb[10] = { PR_OUT_OPCODE };
	struct pr_cmd *c;

	um_detail_clear();
	if (req->action > UMPATH_PR_OUT_REGISTER_AND_IGNORE || req->type > 0xf ||
	    (req->flags & ~(UMPATH_PR_APTPL | UMPATH_PR_ALL_TG_PT))) {
		um_detail_set("%s: bad PERSISTENT RESERVE OUT request (action %u, type %u)", path,
			      req->action, req->type);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->done = done;
	c->opaque = opaque;
	cdb[1] = (uint8_t)req->action;
	cdb[2] = (uint8_t)req->type;		/* scope 0: LU_SCOPE */
	cdb[8] = PR_OUT_PARAM_LEN;		/* bytes 5..8: parameter list length */
	put_be64(c->param, req->key);
	put_be64(c->param + 8, req->sa_key);
	c->param[20] = (uint8_t)((req->flags & UMPATH_PR_ALL_TG_PT ? 4 : 0) |
				 (req->flags & UMPATH_PR_APTPL ? 1 : 0));
	return pr_send(ctx, path, cdb, UM_SCSI_WRITE, NULL, PR_OUT_PARAM_LEN, c);
}

int umpath_path_pr_in(struct umpath_ctx *ctx, const char *path, enum umpath_pr_in_action action,
		      void *buf, size_t len, void (*done)(void *opaque, int err), void *opaque)
{
	uint8_t cdb[10] = { PR_IN_OPCODE };
	struct pr_cmd *c;

	um_detail_clear();
	if ((unsigned)action > UMPATH_PR_IN_REPORT_CAPABILITIES || len < 8) {
		um_detail_set("%s: bad PERSISTENT RESERVE IN request (action %u, %zu bytes)", path,
			      (unsigned)action, len);
		return -EINVAL;
	}
	if (len > PR_IN_MAX_ALLOC)
		len = PR_IN_MAX_ALLOC;
	/* What the target leaves unwritten reads as zeroes, not as old data. */
	memset(buf, 0, len);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->done = done;
	c->opaque = opaque;
	cdb[1] = (uint8_t)action;
	cdb[7] = (uint8_t)(len >> 8);
	cdb[8] = (uint8_t)len;
	return pr_send(ctx, path, cdb, UM_SCSI_READ, buf, len, c);
}

/* ---- replies ------------------------------------------------------------ */

int umpath_pr_parse_keys(const void *buf, size_t len, uint32_t *ret_generation,
			 uint64_t *keys, unsigned max, unsigned *ret_nkeys)
{
	const uint8_t *b = buf;
	uint32_t add;
	unsigned n, have;

	if (len < 8)
		return -EBADMSG;
	add = get_be32(b + 4);
	if (add % 8)
		return -EBADMSG;
	n = add / 8;
	/* Keys past the end of buf were cut off by the allocation length. */
	have = (unsigned)((len - 8) / 8);
	if (have > n)
		have = n;
	for (unsigned i = 0; i < have && i < max; i++)
		keys[i] = get_be64(b + 8 + 8 * (size_t)i);
	*ret_generation = get_be32(b);
	*ret_nkeys = n;
	return 0;
}

int umpath_pr_parse_reservation(const void *buf, size_t len, struct umpath_pr_reservation *ret)
{
	const uint8_t *b = buf;
	struct umpath_pr_reservation res = { 0 };
	uint32_t add;

	if (len < 8)
		return -EBADMSG;
	res.generation = get_be32(b);
	add = get_be32(b + 4);
	if (add && (add < 16 || len < 24))
		return -EBADMSG;
	if (add) {
		res.held = 1;
		res.key = get_be64(b + 8);
		res.scope = b[21] >> 4;
		res.type = b[21] & 0xf;
	}
	*ret = res;
	return 0;
}

int umpath_pr_parse_caps(const void *buf, size_t len, struct umpath_pr_caps *ret)
{
	const uint8_t *b = buf;
	struct umpath_pr_caps c = { 0 };
	unsigned rlen;

	if (len < 8)
		return -EBADMSG;
	rlen = (unsigned)b[0] << 8 | b[1];
	if (rlen < 8)
		return -EBADMSG;
	c.crh = !!(b[2] & 0x10);
	c.sip_c = !!(b[2] & 0x08);
	c.atp_c = !!(b[2] & 0x04);
	c.ptpl_c = !!(b[2] & 0x01);
	c.tmv = !!(b[3] & 0x80);
	c.allow_commands = (b[3] >> 4) & 7;
	c.ptpl_a = !!(b[3] & 0x01);
	if (c.tmv) {
		static const struct { uint8_t byte, bit; unsigned type; } mask[] = {
			{ 4, 0x80, UMPATH_PR_WRITE_EXCLUSIVE_ALL_REGS },
			{ 4, 0x40, UMPATH_PR_EXCLUSIVE_ACCESS_REG_ONLY },
			{ 4, 0x20, UMPATH_PR_WRITE_EXCLUSIVE_REG_ONLY },
			{ 4, 0x08, UMPATH_PR_EXCLUSIVE_ACCESS },
			{ 4, 0x02, UMPATH_PR_WRITE_EXCLUSIVE },
			{ 5, 0x01, UMPATH_PR_EXCLUSIVE_ACCESS_ALL_REGS },
		};

		for (size_t i = 0; i < UM_ARRAY_SIZE(mask); i++)
			if (b[mask[i].byte] & mask[i].bit)
				c.type_mask |= 1u << mask[i].type;
	}
	*ret = c;
	return 0;
}

const char *umpath_pr_type_name(unsigned type)
{
	/* mpathpersist's words. */
	switch (type) {
	case UMPATH_PR_WRITE_EXCLUSIVE: return "Write Exclusive";
	case UMPATH_PR_EXCLUSIVE_ACCESS: return "Exclusive Access";
	case UMPATH_PR_WRITE_EXCLUSIVE_REG_ONLY: return "Write Exclusive, registrants only";
	case UMPATH_PR_EXCLUSIVE_ACCESS_REG_ONLY: return "Exclusive Access, registrants only";
	case UMPATH_PR_WRITE_EXCLUSIVE_ALL_REGS: return "Write Exclusive, all registrants";
	case UMPATH_PR_EXCLUSIVE_ACCESS_ALL_REGS: return "Exclusive Access, all registrants";
	}
	return NULL;
}
