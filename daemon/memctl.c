/* memctl.c - umpathd's in-memory stores (`--mem-store`) and the test-only
 * `mem` control verb that a umpathd started with --mem-store serves: make
 * and forget stores at run time and set a mem path's fault, so that a test
 * drives the whole daemon (`umpath scenario --daemon`) as it would drive
 * the engine.  A daemon without --mem-store refuses the verb: its paths are
 * real and nothing should reach into them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <umpath/umpath-mem.h>

#include "daemon.h"

/* "64M", "512", "1.5G": bytes, a multiple of 512; -EINVAL if not a size. */
static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	double size = strtod(s, &end);

	switch (*end) {
	case 'k': case 'K': size *= 1024; end++; break;
	case 'm': case 'M': size *= 1024 * 1024; end++; break;
	case 'g': case 'G': size *= 1024.0 * 1024 * 1024; end++; break;
	}
	if (end == s || *end || !(size >= 512) || size > 1e15)
		return -EINVAL;
	*ret = (uint64_t)size / 512 * 512;
	return 0;
}

int umd_mem_store_spec(struct umd *d, const char *spec)
{
	const char *colon = strchr(spec, ':');
	char *copy, *save = NULL, sz[64];
	const char *names[64];
	uint64_t size;
	unsigned n = 0;
	int r;

	if (!colon || (size_t)(colon - spec) >= sizeof(sz))
		return -EINVAL;
	memcpy(sz, spec, (size_t)(colon - spec));
	sz[colon - spec] = '\0';
	if (parse_size(sz, &size) < 0)
		return -EINVAL;
	copy = strdup(colon + 1);
	if (!copy)
		return -ENOMEM;
	for (char *w = strtok_r(copy, ",", &save); w && n < 64; w = strtok_r(NULL, ",", &save))
		names[n++] = w;
	r = n ? umpath_mem_store_new(d->ctx, size, n, names, 0) : -EINVAL;
	free(copy);
	if (!r)
		d->mem_verbs = true;
	return r;
}

/* mem store [--bare] SIZE NAME... */
static int mem_store(struct umd *d, int argc, char **argv, char *err, size_t errlen)
{
	bool bare = argc > 2 && !strcmp(argv[2], "--bare");
	int first = bare ? 4 : 3, r;
	uint64_t size;

	if (argc <= first || argc - first > 64) {
		snprintf(err, errlen, "usage: mem store [--bare] SIZE NAME... (at most 64 names)");
		return -EINVAL;
	}
	if (parse_size(argv[first - 1], &size) < 0) {
		snprintf(err, errlen, "store size '%s': expected bytes (k, M, G suffixes), at least 512",
			 argv[first - 1]);
		return -EINVAL;
	}
	r = umpath_mem_store_new(d->ctx, size, (unsigned)(argc - first),
				 (const char *const *)argv + first, bare);
	if (r == -EEXIST)
		snprintf(err, errlen, "a name is empty or taken by another mem store");
	else if (r < 0)
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

/* mem fault NAME online|offline|hang|delay US|error ERRNO */
static int mem_fault(struct umd *d, int argc, char **argv, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum umpath_mem_fault fault;
		bool arg;
	} faults[] = {
		{ "online", UMPATH_MEM_ONLINE, false },
		{ "offline", UMPATH_MEM_OFFLINE, false },
		{ "hang", UMPATH_MEM_HANG, false },
		{ "delay", UMPATH_MEM_DELAY, true },
		{ "error", UMPATH_MEM_ERROR, true },
	};
	unsigned long arg = 0;
	char *end;
	int r;

	for (size_t i = 0; argc >= 4 && i < sizeof(faults) / sizeof(faults[0]); i++) {
		if (strcmp(argv[3], faults[i].name))
			continue;
		if (argc != (faults[i].arg ? 5 : 4))
			break;
		if (faults[i].arg) {
			errno = 0;
			arg = strtoul(argv[4], &end, 10);
			if (errno || end == argv[4] || *end || arg > 100000000) {
				snprintf(err, errlen, "%s: '%s' is not a number", faults[i].name, argv[4]);
				return -EINVAL;
			}
		}
		r = umpath_mem_set_fault(d->ctx, argv[2], faults[i].fault, (unsigned)arg);
		if (r == -ENOENT)
			snprintf(err, errlen, "no mem path %s", argv[2]);
		return r;
	}
	snprintf(err, errlen, "usage: mem fault NAME online|offline|hang|delay US|error ERRNO");
	return -EINVAL;
}

int umd_control_mem(struct umd *d, int argc, char **argv, char *err, size_t errlen)
{
	if (!d->mem_verbs) {
		snprintf(err, errlen, "mem is a test verb: umpathd serves it only with --mem-store");
		return -EPERM;
	}
	if (argc >= 2 && !strcmp(argv[1], "store"))
		return mem_store(d, argc, argv, err, errlen);
	if (argc >= 2 && !strcmp(argv[1], "fault"))
		return mem_fault(d, argc, argv, err, errlen);
	if (argc == 2 && !strcmp(argv[1], "reset")) {
		umpath_mem_reset(d->ctx);
		return 0;
	}
	snprintf(err, errlen, "usage: mem store|fault|reset ...");
	return -EINVAL;
}
