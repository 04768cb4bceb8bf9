/* fuzz-pr.c - the PERSISTENT RESERVE IN reply parsers (lib/pr.c) through
 * the public API.
 *
 * Each input is a target's reply, in a buffer of exactly its size (so that
 * a read past the end is ASan's to see), given to each parser whole and
 * cut at every length up to 64 bytes.  A parser may refuse (-EBADMSG) but
 * never read past len, and what it accepts holds together: as many keys
 * as the ADDITIONAL LENGTH says, a reservation type of four bits, a
 * capability type mask of known types only. */
#undef NDEBUG
#include <errno.h>
#include <string.h>

#include <umpath/umpath.h>

#include "fuzz.h"

#define FZ_MAX_INPUT 65536
#define FZ_KEYS 16

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static void parse(const uint8_t *b, size_t len)
{
	struct umpath_pr_reservation res;
	struct umpath_pr_caps caps;
	uint64_t keys[FZ_KEYS];
	uint32_t gen;
	unsigned n;
	int r;

	r = umpath_pr_parse_keys(b, len, &gen, keys, FZ_KEYS, &n);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	if (!r)
		FZ_CHECK(len >= 8 && (uint64_t)n * 8 == ((uint64_t)b[4] << 24 | (uint64_t)b[5] << 16 |
							  (uint64_t)b[6] << 8 | b[7]));
	r = umpath_pr_parse_reservation(b, len, &res);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	if (!r)
		FZ_CHECK(res.type <= 0xf && res.scope <= 0xf && (res.held || !res.key));
	r = umpath_pr_parse_caps(b, len, &caps);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	if (!r) {
		FZ_CHECK(!(caps.type_mask & ~(1u << 1 | 1u << 3 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8)));
		for (unsigned t = 0; t < 16; t++)
			if (caps.type_mask & 1u << t)
				FZ_CHECK(umpath_pr_type_name(t) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b;

	if (size > FZ_MAX_INPUT)
		return 0;
	for (size_t len = 0; len <= size && len <= 64; len++) {
		b = malloc(len ? len : 1);
		FZ_CHECK(b);
		memcpy(b, data, len);
		parse(b, len);
		free(b);
	}
	b = malloc(size ? size : 1);
	FZ_CHECK(b);
	memcpy(b, data, size);
	parse(b, size);
	free(b);
	return 0;
}
