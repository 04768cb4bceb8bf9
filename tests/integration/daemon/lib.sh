# lib.sh - shared by the umpathd control socket tests: a daemon in a
# temporary directory, the umpath tool pointed at it, and checks that
# record failures and go on, so that one run shows every broken thing.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

UMPATHD=${1:?usage: $0 UMPATHD UMPATH}
UMPATH=${2:?usage: $0 UMPATHD UMPATH}
T=$(mktemp -d "${TMPDIR:-/tmp}/umpath-daemon-test.XXXXXX")
SOCK=$T/run/ctl
DPID=
FAILED=0

cleanup()
{
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	if [ "$FAILED" != 0 ] && [ -s "$T/umpathd.log" ]; then
		echo "--- umpathd log"
		cat "$T/umpathd.log"
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	FAILED=1
}

finish()
{
	if [ "$FAILED" != 0 ]; then
		exit 1
	fi
	echo "PASS"
	exit 0
}

# Poll for a condition, at most $1 seconds.
wait_for()
{
	local secs=$1
	shift
	local tries=$((secs * 20))

	while [ "$tries" -gt 0 ]; do
		if "$@"; then
			return 0
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	return 1
}

# Whether our child $1 has exited (gone, or a zombie not yet reaped:
# kill -0 still succeeds on those).
exited()
{
	local st

	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	st=${st##*) }
	[ "${st%% *}" = Z ]
}

# Start umpathd on $SOCK with the given options; wait until it answers.
start_daemon()
{
	"$UMPATHD" --control "$SOCK" "$@" 2>>"$T/umpathd.log" &
	DPID=$!
	if ! wait_for 10 "$UMPATH" -S "$SOCK" ls >/dev/null 2>&1; then
		echo "umpathd did not come up:"
		cat "$T/umpathd.log"
		exit 1
	fi
}

# SIGTERM the daemon, wait (bounded) and return its exit status.
stop_daemon()
{
	local st=0

	kill -TERM "$DPID"
	if ! wait_for 20 exited "$DPID"; then
		fail "umpathd did not exit within 20 s of SIGTERM"
		kill -KILL "$DPID" 2>/dev/null || true
	fi
	wait "$DPID" || st=$?
	DPID=
	return "$st"
}

u()
{
	"$UMPATH" -S "$SOCK" "$@"
}

# expect_out EXPECTED CMD...: exit 0 and exactly this stdout.
expect_out()
{
	local want=$1 got st=0
	shift
	got=$("$@" 2>"$T/stderr") || st=$?
	if [ "$st" != 0 ]; then
		fail "$*: exit $st: $(cat "$T/stderr")"
	elif [ "$got" != "$want" ]; then
		fail "$*: got '$got', want '$want'"
	fi
}

# expect_ok CMD...: exit 0, nothing on stderr.
expect_ok()
{
	local st=0
	"$@" >"$T/stdout" 2>"$T/stderr" || st=$?
	if [ "$st" != 0 ]; then
		fail "$*: exit $st: $(cat "$T/stderr")"
	elif [ -s "$T/stderr" ]; then
		fail "$*: stderr: $(cat "$T/stderr")"
	fi
}

# expect_err STATUS MESSAGE CMD...: this exit status, this stderr, no stdout.
expect_err()
{
	local want_st=$1 want=$2 got st=0
	shift 2
	"$@" >"$T/stdout" 2>"$T/stderr" || st=$?
	got=$(cat "$T/stderr")
	if [ "$st" != "$want_st" ]; then
		fail "$*: exit $st, want $want_st (stderr: $got)"
	elif [ "$got" != "$want" ]; then
		fail "$*: stderr '$got', want '$want'"
	elif [ -s "$T/stdout" ]; then
		fail "$*: stdout on error: $(cat "$T/stdout")"
	fi
}

# Whether file paths work (the file transport): skip the test if not.
# Starts and stops a daemon of its own.
need_file_paths()
{
	local st=0

	truncate -s 1M "$T/probe.img"
	start_daemon
	u create probe "0 0 1 1 round-robin 0 1 1 $T/probe.img 1" >/dev/null 2>"$T/stderr" || st=$?
	stop_daemon || true
	rm -f "$T/probe.img"
	if [ "$st" != 0 ] && grep -q "error getting device" "$T/stderr"; then
		echo "SKIP: this build cannot open file paths: $(cat "$T/stderr")"
		exit 77
	fi
	if [ "$st" != 0 ]; then
		fail "creating a map over a file: $(cat "$T/stderr")"
		exit 1
	fi
}
