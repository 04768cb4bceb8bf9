/* umpath.c - the umpath command line tool. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umpath COMMAND [ARGS...]\n"
		"\n"
		"Commands:\n"
		"  scenario FILE.scn   run a dm-multipath conformance scenario against the\n"
		"                      engine (paths p0..pN-1 are in-memory paths) and print\n"
		"                      its transcript, comparable with the kernel's\n"
		"  demo [--quick]      a live multipath map over in-memory paths: I/O runs\n"
		"                      while paths fail and come back; prints each step\n"
		"  --help              this text\n"
		"  --version           the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("umpath %s\n", UMPATH_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "scenario"))
		return cli_scenario(argc - 2, argv + 2);
	if (!strcmp(argv[1], "demo"))
		return cli_demo(argc - 2, argv + 2);
	fprintf(stderr, "umpath: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
