/* umpath.c - the umpath command line tool. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umpath [-S SOCKET] COMMAND [ARGS...]\n"
		"\n"
		"Commands served by umpathd, like dmsetup's (-S SOCKET or $UMPATH_CONTROL\n"
		"picks its control socket; else /run/umpath/control as root,\n"
		"$XDG_RUNTIME_DIR/umpath/control otherwise):\n"
		"  ls                        one line per map: NAME, size in sectors, open count\n"
		"  create NAME TABLE...      create a map from a dm-multipath table (the words\n"
		"                            after \"multipath\" in a dm table line); paths:\n"
		"                            files, devices, nbd://..., nbd+unix:///...?socket=...,\n"
		"                            iscsi://[USER[%%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN,\n"
		"                            mem:NAME\n"
		"  create NAME --target multipath-v0 TABLE...\n"
		"                            a map of the 2003 prototype's target: per path\n"
		"                            PATH PRIORITY N|L|M MIN_IOS FAILURE_MAX\n"
		"                            REACTIVATION_TIMEOUT (umpath(8))\n"
		"  remove NAME [--force]     remove a map; --force even while a client has it open\n"
		"  reload NAME [--target T] TABLE...\n"
		"                            replace a live map's table without failing queued\n"
		"                            I/O (load, noflush suspend, resume); a suspended\n"
		"                            map stays suspended\n"
		"  load NAME TABLE...        load an inactive table, live at the next resume\n"
		"  table NAME                the table, as dmsetup table prints it\n"
		"  status NAME [--json]      the status, as dmsetup status prints it\n"
		"  message NAME ARGS...      a target message: fail_path PATH, reinstate_path\n"
		"                            PATH, switch_group N, disable_group N,\n"
		"                            enable_group N, queue_if_no_path, fail_if_no_path\n"
		"  suspend NAME [--noflush]  hold new I/O and wait for the I/O in flight\n"
		"  resume NAME               swap in a loaded table, release held I/O\n"
		"  info NAME                 state, open count, event number, size\n"
		"  show topology [NAME]      the maps' groups and paths, as multipath -ll shows\n"
		"                            them: selector, group and path states\n"
		"  show paths [NAME]         one line per path: states, failures, I/Os, bytes,\n"
		"                            errors, in-flight I/O, mean and p99 latency\n"
		"  show maps [NAME]          one line per map: size, valid/total paths, group,\n"
		"                            queueing, queued I/O, opens, failback, no_path_retry\n"
		"  show paths|maps [raw] format FORMAT\n"
		"                            one line per path (map) in multipathd's format\n"
		"                            wildcards (%%d %%t %%T ..., %%n %%S %%N ...: umpath(8)),\n"
		"                            a header first unless raw\n"
		"  show status               paths by checker state, paths, maps, busy\n"
		"  show daemon               pid N idle|running|shutdown\n"
		"  show config               the configuration in use, as umpath.conf(5) reads it\n"
		"  add path PATH [to MAP] [group N]\n"
		"                            add a path to a map's table (to group N, or to a\n"
		"                            new last group) without failing queued I/O\n"
		"  del path PATH [from MAP]  take a path out of its map's table (a group left\n"
		"                            empty goes; never the map's last path)\n"
		"  fail path PATH            fail a path in every map that has it; the checker\n"
		"                            leaves it failed until reinstate path\n"
		"  reinstate path PATH       reinstate it\n"
		"  resize map MAP            the map takes its paths' size again, after the\n"
		"                            files grew (refused if they disagree)\n"
		"  events [NAME]             follow path failures, reinstatements, group\n"
		"                            switches, checker events... live, one line each\n"
		"                            (of every map, or of NAME), until interrupted\n"
		"  persist MAP OPTION [ARG]  SCSI-3 persistent reservations on the map's LUN, as\n"
		"                            mpathpersist: --read-keys, --read-reservation,\n"
		"                            --report-capabilities, --register KEY,\n"
		"                            --register-ignore KEY, --unregister, --reserve TYPE,\n"
		"                            --release, --clear, --preempt KEY, --preempt-abort KEY\n"
		"                            [--param-rk KEY] [--prout-type TYPE]; registrations on\n"
		"                            every path, the rest on one active path (iSCSI paths\n"
		"                            only: others answer \"not supported by this transport\")\n"
		"  reconfigure               re-read umpathd's configuration file (umpath.conf(5))\n"
		"                            and apply it without failing queued I/O: new maps\n"
		"                            created, changed tables reloaded, policies updated,\n"
		"                            maps gone from the file removed unless open; one\n"
		"                            line per map says what was done\n"
		"  mem store [--bare] SIZE NAME...   (tests; only a umpathd run with --mem-store)\n"
		"                            a new in-memory store, paths mem:NAME (--bare: also NAME)\n"
		"  mem fault NAME online|offline|hang|delay US|error ERRNO\n"
		"                            what I/O on mem path NAME meets from now on\n"
		"  mem reset                 forget every in-memory store\n"
		"  --json after show, status or events: JSON output (events: one object a line)\n"
		"\n"
		"Commands run in this process:\n"
		"  scenario FILE.scn   run a dm-multipath conformance scenario against the\n"
		"                      engine (paths p0..pN-1 are in-memory paths) and print\n"
		"                      its transcript, comparable with the kernel's\n"
		"  scenario --daemon [--socket PATH --nbd unix:PATH|tcp:HOST:PORT] FILE.scn\n"
		"                      the same through a umpathd: its control socket for the\n"
		"                      dmsetup verbs, `mem` for paths, its NBD export for I/O;\n"
		"                      one started for the run (umpathd beside umpath, or\n"
		"                      $UMPATH_UMPATHD), or a running one with --mem-store\n"
		"  demo [--quick]      a live multipath map over in-memory paths: I/O runs\n"
		"                      while paths fail and come back; prints each step\n"
		"  --help              this text\n"
		"  --version           the version\n");
}

int main(int argc, char **argv)
{
	const char *socket_path = NULL;

	/* -S SOCKET or -SSOCKET, before the command. */
	while (argc > 1 && !strncmp(argv[1], "-S", 2)) {
		if (argv[1][2]) {
			socket_path = argv[1] + 2;
			argc--;
			argv++;
		} else if (argc > 2) {
			socket_path = argv[2];
			argc -= 2;
			argv += 2;
		} else {
			fprintf(stderr, "umpath: -S needs a socket path\n");
			usage(stderr);
			return 2;
		}
	}
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
		return cli_scenario(socket_path, argc - 2, argv + 2);
	if (!strcmp(argv[1], "demo"))
		return cli_demo(argc - 2, argv + 2);
	if (cli_ctl_is_verb(argv[1]))
		return cli_ctl(socket_path, argc - 1, argv + 1);
	fprintf(stderr, "umpath: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
