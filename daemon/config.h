/* config.h - the configuration file, umpath.conf(5) (config.c). */
#ifndef UMPATH_DAEMON_CONFIG_H
#define UMPATH_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct umd;
struct umd_map;

#define UMD_CONFIG_DEFAULT "/etc/umpath.conf"

/* A configuration file, read and its tables assembled. */
struct umd_config;

/* Read path, or UMD_CONFIG_DEFAULT if NULL (which may be missing: no maps,
 * the built-in defaults).  On error, err says "FILE:LINE: reason". */
int umd_config_read(const char *path, struct umd_config **ret, char *err, size_t errlen);
void umd_config_free(struct umd_config *cfg);
/* The file's io_timeout in ms, 0 if it sets none. */
unsigned umd_config_io_timeout_ms(const struct umd_config *cfg);
/* The file's metrics endpoint (read at start only), or NULL. */
const char *umd_config_metrics(const struct umd_config *cfg);
/* The file's nbd_* keywords, set on o (read at start only). */
struct umd_nbd_opts;
int umd_config_nbd(const struct umd_config *cfg, struct umd_nbd_opts *o);
/* At start: d->defaults (as they are: built-ins and --policy) with the
 * file's defaults on top, and the file's maps created.  Takes cfg, also on
 * error, and keeps it for umd_config_reconfigure. */
int umd_config_apply(struct umd *d, struct umd_config *cfg, char *err, size_t errlen);
/* How reconfigure swaps a live map's table without failing queued I/O:
 * load, noflush suspend, resume (control.c's, serialised with the control
 * socket's other changes to m); err gets the engine's reason. */
typedef int umd_reload_fn(void *opaque, struct umd_map *m, const char *target,
			  const char *table, char *err, size_t errlen);
/* Re-read the file umd_config_apply was given and apply it: new maps
 * created, changed tables reloaded, policies replaced, maps gone from the
 * file removed unless open; maps not from the file are left alone.  One
 * line per map to out.  A file with an error, or a table the engine's
 * check refuses (umpath_table_check), changes nothing (err: "FILE:LINE:
 * reason"); a reload that fails anyway (paths too small) is reported. */
int umd_config_reconfigure(struct umd *d, umd_reload_fn *reload, void *opaque, FILE *out,
			   char *err, size_t errlen);
/* The priority the applied file's prioritizer gave path of map (prio.h),
 * -ENOENT if the map is not the file's (or is multipath-v0) or has no
 * such path.  A reload by hand that adds a path leaves it without one. */
int umd_config_path_prio(struct umd *d, const char *map, const char *path, unsigned *ret);
/* Forget the applied file (at exit). */
void umd_config_fini(struct umd *d);

#endif
