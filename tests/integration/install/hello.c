/* hello.c - a program built against the installed libumpath with
 * `pkg-config --cflags --libs umpath` (install.sh): both public headers,
 * a map over an in-memory store, its size. */
#include <stdio.h>

#include <umpath/umpath.h>
#include <umpath/umpath-mem.h>

int main(void)
{
	static const char *const names[] = { "a", "b" };
	struct umpath_ctx_opts opts = { 0 };
	struct umpath_ctx *ctx;
	struct umpath_map *map;
	char err[256] = "";
	int r;

	r = umpath_ctx_new(&opts, &ctx);
	if (r < 0)
		return 1;
	r = umpath_mem_store_new(ctx, 1 << 20, 2, names, 0);
	if (!r)
		r = umpath_map_new(ctx, "hello", "0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1",
				   0, err, sizeof(err), &map);
	if (r < 0) {
		fprintf(stderr, "hello: %d %s\n", r, err);
		umpath_ctx_free(ctx);
		return 1;
	}
	printf("%s %llu\n", umpath_map_name(map), (unsigned long long)umpath_map_size(map));
	umpath_map_free(map);
	umpath_ctx_free(ctx);
	return 0;
}
