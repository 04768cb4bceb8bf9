/* umpath-mem.h - libumpath's in-memory transport, for tests and demos.
 *
 * Paths named "mem:NAME" reach an in-memory store with fault injection
 * (offline, hung, delayed, erroring), so that failover can be shown and
 * tested without storage.  It is not meant for data anyone keeps: umpathd
 * uses it only for --mem-store, and the test suite for its scenarios.
 */
#ifndef UMPATH_UMPATH_MEM_H
#define UMPATH_UMPATH_MEM_H

#include <stdint.h>

#include <umpath/umpath.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* Create a store of size bytes reachable by nr paths named names[i]; the
 * paths are then usable in tables as "mem:NAME" or, if bare is set, "NAME". */
int umpath_mem_store_new(struct umpath_ctx *ctx, uint64_t size, unsigned nr,
			 const char *const *names, int bare);
enum umpath_mem_fault {
	UMPATH_MEM_ONLINE,	/* works */
	UMPATH_MEM_OFFLINE,	/* every I/O fails with EIO; a table naming it
				 * is refused (ENXIO), as an offline disk is */
	UMPATH_MEM_HANG,	/* I/O is held until the fault changes */
	UMPATH_MEM_DELAY,	/* every I/O completes after arg microseconds */
	UMPATH_MEM_ERROR,	/* every I/O fails with -arg (an errno) */
	UMPATH_MEM_FAIL_NEXT,	/* the next arg I/Os fail with EIO, then it is online */
};
/* Held (hung) I/O is released into the new state: done when online or
 * delayed, failed when offline or erroring. */
int umpath_mem_set_fault(struct umpath_ctx *ctx, const char *name,
			 enum umpath_mem_fault fault, unsigned arg);
/* I/O count seen by a mem path (for tests of selector spread). */
int umpath_mem_io_count(struct umpath_ctx *ctx, const char *name, uint64_t *ret_count);
/* Forget every mem store: its names are free for a new store at once; a
 * store that a map still uses lives on until its last path closes. */
void umpath_mem_reset(struct umpath_ctx *ctx);


#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
