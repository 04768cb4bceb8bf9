/* scenario.h - how `umpath scenario` reaches a multipath implementation.
 *
 * scenario.c reads the conformance language (shared/conformance/README.md)
 * and writes the transcript; a backend carries out each command, either on
 * the engine in this process (scenario-engine.c) or on a umpathd through its
 * control socket and NBD export (scenario-daemon.c).  Every function returns
 * 0 or -errno; err, where there is one, gets the reason of a refused table.
 */
#ifndef UMPATH_CLI_SCENARIO_H
#define UMPATH_CLI_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCN_SECTORS 131072u	/* every path: a 64 MiB store */

struct scn_backend;
struct scn_io;

struct scn_backend_ops {
	/* A fresh store of SCN_SECTORS sectors with paths p0..p(n-1); the
	 * previous store and its maps are gone already. */
	int (*paths)(struct scn_backend *b, unsigned n);
	/* Forget the store (every map is removed). */
	void (*paths_reset)(struct scn_backend *b);
	int (*create)(struct scn_backend *b, const char *name, const char *table,
		      char *err, size_t errlen);
	int (*load)(struct scn_backend *b, const char *name, const char *table,
		    char *err, size_t errlen);
	int (*suspend)(struct scn_backend *b, const char *name, bool noflush);
	int (*resume)(struct scn_backend *b, const char *name);
	int (*remove)(struct scn_backend *b, const char *name);
	/* The TABLE (table=true) or INFO status params, without "0 N multipath". */
	int (*status)(struct scn_backend *b, const char *name, bool table, char *buf, size_t len);
	int (*message)(struct scn_backend *b, const char *name, int argc, char **argv);
	/* I/O the map holds: queued for a path, or in flight; or -errno. */
	int (*busy)(struct scn_backend *b, const char *name);
	int (*set_online)(struct scn_backend *b, const char *path, bool online);
	/* Data I/O as dd does it: open the map, 512-byte requests, close.
	 * Called from several threads at once (background I/O). */
	int (*io_open)(struct scn_backend *b, const char *name, struct scn_io **ret);
	int (*io)(struct scn_io *io, bool write, uint64_t offset, void *buf, size_t len);
	void (*io_close)(struct scn_io *io);
	void (*free)(struct scn_backend *b);
};

struct scn_backend {
	const struct scn_backend_ops *ops;
};

int scn_engine_new(struct scn_backend **ret);
/* socket: a running umpathd's control socket, nbd its NBD export
 * ("unix:PATH" or "tcp:HOST:PORT"); both NULL: start a umpathd for the
 * scenario and stop it at the end. */
int scn_daemon_new(const char *socket, const char *nbd, struct scn_backend **ret);

#endif
