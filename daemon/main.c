/* main.c - umpathd: hosts multipath maps and serves them over NBD and as
 * FUSE files, with a control socket for the umpath tool.  Runs in the
 * foreground and logs to stderr.
 *
 * Signals (umpathd(8)) are taken by one thread in sigwait: SIGTERM, SIGINT
 * and SIGQUIT stop the daemon by the shutdown protocol (export.h) within
 * io_timeout + UMD_STOP_SLACK_MS, also during startup; SIGHUP re-reads the
 * configuration as `umpath reconfigure`; SIGXCPU stops as SIGTERM does;
 * every other signal whose default would kill us (USR1, USR2, ALRM, PWR,
 * real-time ...) is logged and ignored; SIGPIPE and SIGXFSZ are ignored
 * (the failed write tells).
 *
 * Under systemd (Type=notify, notify.h) it says READY=1 once the control
 * socket and every export listen, RELOADING=1 around a reconfigure,
 * STOPPING=1 at a stop signal, and pings the watchdog if asked to. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <umpath/umpath-mem.h>

#include "ctlproto.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

#define MAX_EXPORTS 32
/* After SIGTERM: requests in flight may finish until io_timeout plus the
 * drain slack; the daemon is gone by io_timeout plus the stop slack
 * (umpathd(8)), whatever its clients and paths do. */
#define UMD_DRAIN_SLACK_MS 2000u
#define UMD_STOP_SLACK_MS 5000u
/* Exit status when the bound cut the shutdown short (umpathd(8)). */
#define EXIT_ABANDONED 3

/* What the signal thread tells the main thread. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop_sig;		/* guarded by lock: the signal that stops us, or 0 */
	unsigned reloads;	/* guarded by lock: SIGHUPs not yet acted on */
	struct umd *d;
} sigs_state = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL };

static void *signal_thread(void *arg)
{
	const sigset_t *set = arg;

	for (;;) {
		int sig;

		if (sigwait(set, &sig))
			continue;
		pthread_mutex_lock(&sigs_state.lock);
		switch (sig) {
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
		case SIGXCPU:	/* the soft CPU limit: stop while we still may */
			if (sigs_state.stop_sig)
				um_log("%s: already stopping", strsignal(sig));
			else
				sigs_state.stop_sig = sig;
			sigs_state.d->stopping = 1;	/* a startup in progress gives up */
			break;
		case SIGHUP:
			sigs_state.reloads++;
			break;
		default:
			um_log("%s: ignored", strsignal(sig));
			break;
		}
		pthread_cond_broadcast(&sigs_state.cond);
		pthread_mutex_unlock(&sigs_state.lock);
	}
	return NULL;
}

static void log_lines(const char *prefix, char *text)
{
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		um_log("%s%s", prefix, line);
}

/* SIGHUP: what `umpath reconfigure` does, its report to the log. */
static void reload(struct umd_control *ctl)
{
	char err[1024] = "", *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int r;

	um_log("SIGHUP: re-reading the configuration");
	if (!f) {
		um_log("SIGHUP: reconfigure: %s", strerror(errno));
		return;
	}
	r = umd_control_reconfigure(ctl, f, err, sizeof(err));
	fclose(f);
	if (out)
		log_lines("reconfigure: ", out);
	free(out);
	if (r < 0)
		um_log("SIGHUP: reconfigure failed, nothing changed: %s", *err ? err : strerror(-r));
}

/* Wait for a signal that stops us, acting on reloads meanwhile. */
static int serve_signals(struct umd_control *ctl)
{
	int sig;

	pthread_mutex_lock(&sigs_state.lock);
	for (;;) {
		if (sigs_state.stop_sig)
			break;
		if (sigs_state.reloads) {
			sigs_state.reloads = 0;
			pthread_mutex_unlock(&sigs_state.lock);
			reload(ctl);
			pthread_mutex_lock(&sigs_state.lock);
			continue;
		}
		pthread_cond_wait(&sigs_state.cond, &sigs_state.lock);
	}
	sig = sigs_state.stop_sig;
	pthread_mutex_unlock(&sigs_state.lock);
	return sig;
}

/* The last resort of the bound: whatever still runs at hard_ns is left to
 * the kernel to clean up, nothing is freed under it. */
static void *watchdog_thread(void *arg)
{
	uint64_t hard_ns = *(uint64_t *)arg;
	struct timespec ts = {
		.tv_sec = (time_t)(hard_ns / 1000000000u),
		.tv_nsec = (long)(hard_ns % 1000000000u),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	um_log("shutdown bound reached: exiting with work abandoned");
	_exit(EXIT_ABANDONED);
	return NULL;
}

/* "nbd_conn_budget" -> "nbd-conn-budget", for messages about an option. */
static const char *longopt_of(const char *key)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s", key);
	for (char *p = buf; *p; p++)
		if (*p == '_')
			*p = '-';
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umpathd [--map NAME=[TARGET:]'TABLE']... [--nbd unix:PATH | --nbd tcp:[HOST:]PORT]...\n"
		"               [--fuse DIR] [--control PATH] [--io-timeout SECONDS]\n"
		"               [--config FILE] [--policy KEY=VALUE]...\n"
		"               [--nbd-allow ADDR[/PREFIX]]... [--nbd-max-connections N]\n"
		"               [--nbd-conn-budget SIZE] [--nbd-handshake-timeout SECONDS]\n"
		"               [--tls-psk FILE | --tls-creds DIR] [--tls off|on|require]\n"
		"               [--pool-size N] [--ublk] [--ublk-depth N] [--recover]\n"
		"               [--metrics tcp:HOST:PORT | --metrics unix:PATH]\n"
		"\n"
		"  --map NAME=TABLE     create map NAME from a dm-multipath table (the words\n"
		"                       after \"multipath\" in a dm table line); its paths are\n"
		"                       files, block devices (file:PATH?direct for O_DIRECT)\n"
		"                       or NBD URIs (nbd://HOST:PORT/EXPORT,\n"
		"                       nbd+unix:///EXPORT?socket=PATH)\n"
		"  --map NAME=multipath-v0:TABLE  ... of the 2003 prototype's target instead:\n"
		"                       per path PATH PRIORITY N|L|M MIN_IOS FAILURE_MAX\n"
		"                       REACTIVATION_TIMEOUT (umpath(8))\n"
		"  --nbd unix:PATH      serve every map over NBD on a unix socket\n"
		"  --nbd tcp:HOST:PORT  ... on TCP (tcp: alone is 127.0.0.1:10809); the\n"
		"                       export name is the map name; TCP has no encryption\n"
		"                       and no authentication: any peer that reaches the\n"
		"                       port reads and writes every map\n"
		"  --nbd-allow ADDR[/PREFIX]  let only these TCP peers in (repeatable;\n"
		"                       others are refused and logged)\n"
		"  --nbd-max-connections N  NBD clients at once, negotiating or not\n"
		"                       (default 128); more are refused and logged\n"
		"  --nbd-conn-budget SIZE  request data one NBD connection may hold\n"
		"                       (default 64M): over it the server stops reading\n"
		"                       that client until replies go out\n"
		"  --nbd-handshake-timeout SECONDS  time for a client to choose an export\n"
		"                       (default 10); with 64 clients negotiating, the\n"
		"                       oldest is dropped for a new one\n"
		"  --tls-psk FILE       TLS for NBD clients (STARTTLS) with the pre-shared\n"
		"                       keys of FILE (psktool's USER:HEXKEY lines)\n"
		"  --tls-creds DIR      ... with X.509: DIR/server-cert.pem, server-key.pem,\n"
		"                       and ca-cert.pem to require client certificates\n"
		"  --tls off|on|require  with credentials: require (default) refuses\n"
		"                       clients without TLS, on lets them choose\n"
		"  --fuse DIR           show every map as a file DIR/NAME\n"
		"  --ublk               every map also as a block device /dev/ublkbN (Linux\n"
		"                       ublk, module ublk_drv; `umpath create --ublk` or the\n"
		"                       config's `ublk yes` asks for one map)\n"
		"  --ublk-depth N       requests in flight per ublk queue (default 128); a\n"
		"                       device has one queue per CPU, at most 4\n"
		"  --recover            re-attach to the /dev/ublkbN devices a killed umpathd\n"
		"                       left (its maps given again: same config or --map)\n"
		"  --metrics tcp:HOST:PORT  serve Prometheus metrics (GET /metrics) over\n"
		"                       HTTP on TCP (tcp:PORT is 127.0.0.1:PORT); no\n"
		"                       authentication: bind to an address only trusted\n"
		"                       peers reach\n"
		"  --metrics unix:PATH  ... on a unix socket (default: the config file's\n"
		"                       metrics, else none)\n"
		"  --control PATH       the control socket (default: $UMPATH_CONTROL, or\n"
		"                       /run/umpath/control as root, else\n"
		"                       $XDG_RUNTIME_DIR/umpath/control)\n"
		"  --io-timeout SECONDS deadline of every I/O on a path (default 10, or the\n"
		"                       config file's io_timeout)\n"
		"  --pool-size N        requests each map holds at once (default 4096, at\n"
		"                       most 1048576); clients beyond wait for one to end\n"
		"  --config FILE        the configuration file (umpath.conf(5); default\n"
		"                       " UMD_CONFIG_DEFAULT ", which may be missing): its\n"
		"                       defaults and maps; `umpath reconfigure` re-reads it\n"
		"  --policy KEY=VALUE   a path-management default for every map (as in the\n"
		"                       config file's defaults section): polling_interval,\n"
		"                       max_polling_interval, checker_timeout, failback,\n"
		"                       no_path_retry, flap_threshold, flap_window,\n"
		"                       flap_recovery, path_checker (tur, directio,\n"
		"                       readsector0, none; default: the transport's),\n"
		"                       reservation_key, fence_command\n"
		"                       (%%p path, %%m map; docs/stale-writes.md),\n"
		"                       fence_timeout, read_hedge (off, auto or\n"
		"                       milliseconds; docs/read-hedge.md)\n"
		"  --mem-store SIZE:NAME[,NAME...]  an in-memory store (SIZE bytes, k/M/G\n"
		"                       suffixes) reachable as paths mem:NAME; for tests and\n"
		"                       demos: its data is gone when umpathd exits; also\n"
		"                       serves the test verb `umpath mem` (stores, faults)\n"
		"  --help, --version\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "map", required_argument, NULL, 'm' },
		{ "nbd", required_argument, NULL, 'n' },
		{ "fuse", required_argument, NULL, 'f' },
		{ "control", required_argument, NULL, 'S' },
		{ "io-timeout", required_argument, NULL, 't' },
		{ "pool-size", required_argument, NULL, 'p' },
		{ "mem-store", required_argument, NULL, 'M' },
		{ "policy", required_argument, NULL, 'P' },
		{ "config", required_argument, NULL, 'c' },
		{ "nbd-allow", required_argument, NULL, 'A' },
		{ "nbd-max-connections", required_argument, NULL, 'C' },
		{ "nbd-conn-budget", required_argument, NULL, 'B' },
		{ "nbd-handshake-timeout", required_argument, NULL, 'H' },
		{ "tls", required_argument, NULL, 'L' },
		{ "tls-psk", required_argument, NULL, 'K' },
		{ "tls-creds", required_argument, NULL, 'X' },
		{ "ublk", no_argument, NULL, 'u' },
		{ "ublk-depth", required_argument, NULL, 'D' },
		{ "recover", no_argument, NULL, 'R' },
		{ "metrics", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *maps[256], *nbds[MAX_EXPORTS], *fuses[MAX_EXPORTS], *mems[MAX_EXPORTS];
	const char *policies[64];
	const char *nbdopt_keys[64], *nbdopt_vals[64];
	unsigned nnbdopts = 0;
	struct umd_nbd_opts nbdopts = { 0 };
	unsigned nmaps = 0, nnbd = 0, nfuse = 0, nmem = 0, npolicies = 0;
	struct umd_export *exports[2 * MAX_EXPORTS];
	const struct umd_export_ops *export_ops[2 * MAX_EXPORTS];
	unsigned nexports = 0;
	const char *control = NULL, *config = NULL, *metrics = NULL;
	struct umd_metrics *metrics_srv = NULL;
	struct umd_config *cfg = NULL;
	char ctlbuf[512], cfgerr[1024], cfg_metrics[512] = "";
	struct umd_opts opts = { .io_timeout_ms = 0 };
	struct umd_control *ctl = NULL;
	struct umd d;
	int c, r, ret = 1, sig = 0;
	uint64_t drain_ns, hard_ns;
	bool abandoned = false, ublk_all = false, recover = false;
	unsigned ublk_depth = UMD_UBLK_DEPTH;
	char ublk_spec[64];
	pthread_t sigthread, watchdog;

	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (nmaps == sizeof(maps) / sizeof(maps[0]))
				goto toomany;
			maps[nmaps++] = optarg;
			break;
		case 'n':
			if (nnbd == MAX_EXPORTS)
				goto toomany;
			nbds[nnbd++] = optarg;
			break;
		case 'f':
			if (nfuse == MAX_EXPORTS)
				goto toomany;
			fuses[nfuse++] = optarg;
			break;
		case 'S':
			control = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'E': {
			char why[256];

			if (umd_metrics_check(optarg, why, sizeof(why)) < 0) {
				char shown[128];

				snprintf(shown, sizeof(shown), "%s", optarg);
				um_sanitize(shown);
				fprintf(stderr, "umpathd: --metrics %s: %s\n", shown, why);
				return 2;
			}
			metrics = optarg;
			break;
		}
		case 'M':
			if (nmem == MAX_EXPORTS)
				goto toomany;
			mems[nmem++] = optarg;
			break;
		case 'P':
			if (npolicies == sizeof(policies) / sizeof(policies[0]))
				goto toomany;
			policies[npolicies++] = optarg;
			break;
		case 'A':
		case 'C':
		case 'B':
		case 'H':
		case 'L':
		case 'K':
		case 'X':
			if (nnbdopts == sizeof(nbdopt_keys) / sizeof(nbdopt_keys[0]))
				goto toomany;
			nbdopt_keys[nnbdopts] = c == 'A' ? "nbd_allow" :
						c == 'C' ? "nbd_max_connections" :
						c == 'B' ? "nbd_conn_budget" :
						c == 'H' ? "nbd_handshake_timeout" :
						c == 'L' ? "nbd_tls" :
						c == 'K' ? "nbd_tls_psk" : "nbd_tls_creds";
			nbdopt_vals[nnbdopts++] = optarg;
			break;
		case 't': {
			char *end;
			double s = strtod(optarg, &end);

			if (*end || !(s > 0) || s > 3600) {
				fprintf(stderr, "umpathd: --io-timeout: not a number of seconds in (0, 3600]: %s\n",
					optarg);
				return 2;
			}
			opts.io_timeout_ms = (unsigned)(s * 1000 + 0.5);
			if (!opts.io_timeout_ms)
				opts.io_timeout_ms = 1;
			break;
		}
		case 'p': {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (*end || !*optarg || *optarg == '-' || errno || !n || n > 1048576) {
				fprintf(stderr, "umpathd: --pool-size: not a number in [1, 1048576]: %s\n",
					optarg);
				return 2;
			}
			opts.pool_size = (unsigned)n;
			break;
		}
		case 'u':
			ublk_all = true;
			break;
		case 'R':
			recover = true;
			break;
		case 'D': {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (*end || !*optarg || *optarg == '-' || errno || !n || n > UMD_UBLK_MAX_DEPTH) {
				fprintf(stderr, "umpathd: --ublk-depth: not a number in [1, %u]: %s\n",
					UMD_UBLK_MAX_DEPTH, optarg);
				return 2;
			}
			ublk_depth = (unsigned)n;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("umpathd %s\n", UMPATH_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "umpathd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* Every thread inherits this mask: only the signal thread's sigwait
	 * sees them. */
	static sigset_t sigs;
	sigemptyset(&sigs);
	static const int taken[] = {
		SIGTERM, SIGINT, SIGQUIT, SIGXCPU, SIGHUP,
		/* Their default kills: umpathd(8) says they are ignored. */
		SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT,
	};
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		sigaddset(&sigs, taken[i]);
	for (int rt = SIGRTMIN; rt <= SIGRTMAX; rt++)
		sigaddset(&sigs, rt);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);

	/* Read before the engine starts: the file may set its I/O timeout
	 * (--io-timeout wins). */
	if (umd_config_read(config, &cfg, cfgerr, sizeof(cfgerr)) < 0) {
		fprintf(stderr, "umpathd: %s\n", cfgerr);
		return 1;
	}
	if (!opts.io_timeout_ms)
		opts.io_timeout_ms = umd_config_io_timeout_ms(cfg);
	/* The file's NBD limits, then the command line's on top. */
	if (umd_config_nbd(cfg, &nbdopts) < 0) {
		fprintf(stderr, "umpathd: out of memory\n");
		umd_config_free(cfg);
		return 1;
	}
	for (unsigned i = 0; i < nnbdopts; i++) {
		char err[256];

		if (umd_nbd_opt_set(&nbdopts, nbdopt_keys[i], nbdopt_vals[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "umpathd: --%s: %s\n",
				longopt_of(nbdopt_keys[i] + (strncmp(nbdopt_keys[i], "nbd_tls", 7) ? 0 : 4)),
				err);
			umd_nbd_opts_fini(&nbdopts);
			umd_config_free(cfg);
			return 2;
		}
	}
	r = umd_init(&d, &opts);
	if (r < 0) {
		fprintf(stderr, "umpathd: cannot start the engine: %s\n", strerror(-r));
		umd_nbd_opts_fini(&nbdopts);
		umd_config_free(cfg);
		return 1;
	}
	d.nbd = nbdopts;	/* d owns it now */
	sigs_state.d = &d;
	r = pthread_create(&sigthread, NULL, signal_thread, &sigs);
	if (r) {
		fprintf(stderr, "umpathd: cannot start the signal thread: %s\n", strerror(r));
		goto out;
	}
	pthread_detach(sigthread);
	r = umd_notify_start(&d);
	if (r < 0) {
		fprintf(stderr, "umpathd: cannot start the watchdog pings: %s\n", strerror(-r));
		goto out;
	}
	/* Observers of the registry, before any map exists. */
	r = umd_events_init(&d);
	if (r < 0) {
		fprintf(stderr, "umpathd: cannot start the event hub: %s\n", strerror(-r));
		goto out;
	}
	r = umd_checker_start(&d);
	if (r < 0) {
		fprintf(stderr, "umpathd: cannot start the path checker: %s\n", strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < npolicies; i++) {
		char key[64], err[256];
		const char *eq = strchr(policies[i], '=');

		if (!eq || eq == policies[i] || (size_t)(eq - policies[i]) >= sizeof(key)) {
			fprintf(stderr, "umpathd: --policy %s: expected KEY=VALUE\n", policies[i]);
			goto out;
		}
		memcpy(key, policies[i], (size_t)(eq - policies[i]));
		key[eq - policies[i]] = '\0';
		if (umd_policy_set(&d.defaults, key, eq + 1, err, sizeof(err)) < 0) {
			fprintf(stderr, "umpathd: --policy %s: %s\n", policies[i], err);
			goto out;
		}
	}
	for (unsigned i = 0; i < nmem; i++) {
		r = umd_mem_store_spec(&d, mems[i]);
		if (r < 0) {
			fprintf(stderr, "umpathd: --mem-store %s: %s\n", mems[i], strerror(-r));
			goto out;
		}
	}
	/* Before any map: the ublk export makes a device of each map that
	 * asks for one (all with --ublk) as it is created, and with
	 * --recover takes over the devices a killed umpathd left. */
	snprintf(ublk_spec, sizeof(ublk_spec), "depth=%u%s%s", ublk_depth,
		 ublk_all ? ",all" : "", recover ? ",recover" : "");
	r = umd_ublk_export.start(&d, ublk_spec, &exports[nexports]);
	if (r < 0) {
		fprintf(stderr, "umpathd: ublk export: %s\n", strerror(-r));
		goto out;
	}
	export_ops[nexports++] = &umd_ublk_export;
	/* After the mem stores (the file may name mem: paths) and --policy
	 * (the base of the file's defaults), before --map (made with them). */
	if (umd_config_metrics(cfg))
		snprintf(cfg_metrics, sizeof(cfg_metrics), "%s", umd_config_metrics(cfg));
	r = umd_config_apply(&d, cfg, cfgerr, sizeof(cfgerr));
	cfg = NULL;	/* it took it */
	if (r < 0) {
		fprintf(stderr, "umpathd: %s\n", cfgerr);
		goto out;
	}
	for (unsigned i = 0; i < nmaps && !d.stopping; i++) {
		const char *eq = strchr(maps[i], '=');
		char name[256], err[512] = "";

		if (!eq || eq == maps[i] || (size_t)(eq - maps[i]) >= sizeof(name)) {
			fprintf(stderr, "umpathd: --map %s: expected NAME='TABLE'\n", maps[i]);
			goto out;
		}
		memcpy(name, maps[i], (size_t)(eq - maps[i]));
		name[eq - maps[i]] = '\0';
		/* NAME=TARGET:TABLE names the target type (a table of the
		 * default one starts with a number, so no path is mistaken). */
		const char *table = eq + 1, *target = NULL;
		char tname[32];

		for (unsigned t = 0; umpath_target_name(t); t++) {
			size_t n = strlen(umpath_target_name(t));

			if (!strncmp(table, umpath_target_name(t), n) && table[n] == ':' &&
			    n < sizeof(tname)) {
				memcpy(tname, table, n);
				tname[n] = '\0';
				target = tname;
				table += n + 1;
				break;
			}
		}
		r = umd_map_create_ex(&d, name, target, table, 0, NULL, NULL, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "umpathd: map %s: %s\n", name, *err ? err : strerror(-r));
			goto out;
		}
		/* A table from the command line may hold anything: keep the
		 * log one line per event. */
		char shown[1024];

		snprintf(shown, sizeof(shown), "%s", eq + 1);	/* with its target */
		um_sanitize(shown);
		um_log("map %s: created: %s", name, shown);
	}

	if (d.stopping)
		goto out;
	ctl_socket_path(control, ctlbuf, sizeof(ctlbuf));
	r = umd_control_start(&d, ctlbuf, &ctl);
	if (r < 0) {
		fprintf(stderr, "umpathd: control socket %s: %s\n", ctlbuf, strerror(-r));
		goto out;
	}
	um_log("control socket %s", ctlbuf);

	for (unsigned i = 0; i < nnbd + nfuse; i++) {
		const struct umd_export_ops *ops = i < nnbd ? &umd_nbd_export : &umd_fuse_export;
		const char *spec = i < nnbd ? nbds[i] : fuses[i - nnbd];

		r = ops->start(&d, spec, &exports[nexports]);
		if (r < 0) {
			fprintf(stderr, "umpathd: --%s %s: %s\n", ops->name, spec, strerror(-r));
			goto out;
		}
		export_ops[nexports++] = ops;
		um_log("%s export on %s", ops->name, spec);
	}

	/* The command line's endpoint, else the file's; before READY=1: a
	 * service manager's next unit may scrape at once. */
	if (!metrics && *cfg_metrics)
		metrics = cfg_metrics;
	if (metrics) {
		char why[256] = "";

		r = umd_metrics_start(&d, ctl, metrics, &metrics_srv, why, sizeof(why));
		if (r < 0) {
			char shown[128];

			/* A long argument is cut short, and says so. */
			if (snprintf(shown, sizeof(shown), "%s", metrics) >= (int)sizeof(shown))
				memcpy(shown + sizeof(shown) - 4, "...", 4);
			um_sanitize(shown);
			fprintf(stderr, "umpathd: metrics %s: %s\n", shown, *why ? why : strerror(-r));
			goto out;
		}
		um_log("metrics on %s", metrics);
	}

	um_log("ready");
	umd_notify_ready(&d);
	sig = serve_signals(ctl);
	ret = 0;
out:
	/* A signal during startup stops it and is no error. */
	pthread_mutex_lock(&sigs_state.lock);
	if (!sig && sigs_state.stop_sig) {
		sig = sigs_state.stop_sig;
		ret = 0;
		um_log("%s: startup interrupted", strsignal(sig));
	}
	pthread_mutex_unlock(&sigs_state.lock);

	/* The shutdown protocol (export.h): one deadline for every part. */
	drain_ns = umpath_now_ns() + (uint64_t)(d.io_timeout_ms + UMD_DRAIN_SLACK_MS) * 1000000u;
	hard_ns = umpath_now_ns() + (uint64_t)(d.io_timeout_ms + UMD_STOP_SLACK_MS) * 1000000u;
	if (sig) {
		um_log("%s: draining I/O and stopping (within %u ms)", strsignal(sig),
		       d.io_timeout_ms + UMD_STOP_SLACK_MS);
		if (!pthread_create(&watchdog, NULL, watchdog_thread, &hard_ns))
			pthread_detach(watchdog);
		umd_notify_stopping(strsignal(sig), d.io_timeout_ms + UMD_STOP_SLACK_MS);
	}
	/* 1. Stop accepting; the checker first: it would turn queueing back on. */
	umd_checker_quiesce(&d);
	umd_metrics_stop(metrics_srv);	/* read-only: nothing to drain */
	umd_control_quiesce(ctl);
	for (unsigned i = 0; i < nexports; i++)
		if (export_ops[i]->quiesce)
			export_ops[i]->quiesce(exports[i]);
	/* I/O queued for want of a path would keep the exports from draining
	 * for ever: at shutdown it fails instead (the kernel's presuspend). */
	umd_fail_if_no_path_all(&d);
	/* 2.-4. Drain, fail the rest, free on the last reference. */
	while (nexports--)
		if (export_ops[nexports]->stop(exports[nexports], drain_ns, hard_ns) < 0)
			abandoned = true;
	if (umd_control_stop(ctl, drain_ns) < 0)
		abandoned = true;
	if (umd_flush_all(&d, hard_ns) < 0)
		abandoned = true;
	if (umd_checker_stop(&d, hard_ns) < 0)
		abandoned = true;
	if (abandoned) {
		/* Something may still use the engine: do not free it. */
		um_log("stopped with work abandoned at the shutdown bound");
		_exit(EXIT_ABANDONED);
	}
	umd_notify_stop();
	umd_events_fini(&d);
	umd_fini(&d);
	umd_config_fini(&d);
	umd_config_free(cfg);	/* if we stopped before applying it */
	umd_nbd_opts_fini(&d.nbd);
	if (!ret)
		um_log("stopped");
	return ret;
toomany:
	fprintf(stderr, "umpathd: too many --map, --nbd or --fuse options\n");
	return 2;
}
