# lib.sh - shared by the operator's-view tests (show, --json, events): a
# temporary directory per test, umpathd started in it and stopped at exit,
# bounded waits, and checks that record a failure and go on, so that one
# run shows every broken thing.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

UMPATHD=${1:?usage: TEST UMPATHD UMPATH}
UMPATH=${2:?usage: TEST UMPATHD UMPATH}
T=$(mktemp -d "${TMPDIR:-/tmp}/umpath-views-test.XXXXXX")
SOCK=$T/ctl
DPID=
FAILED=0
BG_PIDS=()

cleanup()
{
	local p

	for p in "${BG_PIDS[@]}"; do
		{ kill -KILL "$p"; wait "$p"; } 2>/dev/null || true
	done
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		{ kill -KILL "$DPID"; wait "$DPID"; } 2>/dev/null || true
	fi
	if [ "$FAILED" != 0 ] && [ -s "$T/umpathd.log" ]; then
		echo "--- umpathd log (last 40 lines)"
		tail -40 "$T/umpathd.log"
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

need()
{
	local c

	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "SKIP: $c not installed"
			exit 77
		fi
	done
}

# Poll for a condition, at most $1 seconds.
wait_for()
{
	local tries=$(($1 * 20))

	shift
	while [ "$tries" -gt 0 ]; do
		if "$@"; then
			return 0
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	return 1
}

# Whether our child $1 has exited (gone, or a zombie not yet reaped).
exited()
{
	local st

	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	st=${st##*) }
	[ "${st%% *}" = Z ]
}

u()
{
	"$UMPATH" -S "$SOCK" "$@"
}

# Start umpathd on $SOCK with the given options; wait until it answers.
start_daemon()
{
	"$UMPATHD" --control "$SOCK" "$@" 2>>"$T/umpathd.log" &
	DPID=$!
	if ! wait_for 10 u ls >/dev/null 2>&1; then
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

# expect_out EXPECTED CMD...: exit 0 and exactly this stdout.
expect_out()
{
	local want=$1 got st=0

	shift
	got=$("$@" 2>"$T/stderr") || st=$?
	if [ "$st" != 0 ]; then
		fail "$*: exit $st: $(cat "$T/stderr")"
	elif [ "$got" != "$want" ]; then
		fail "$*: got:"$'\n'"$got"$'\n'"want:"$'\n'"$want"
	fi
}

# Whether file $1 has a line matching the extended regex $2.
has_line()
{
	grep -qE -- "$2" "$1" 2>/dev/null
}
