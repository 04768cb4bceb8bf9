# common.sh - what every suite's lib.sh shares: the binaries from the
# test's arguments, a temporary directory removed at exit, umpathd started
# in it with its control socket and log there, bounded waits, skips, and
# checks that record a failure and go on, so that one run shows every
# broken thing.
#
# Sourced by a suite's lib.sh, with the arguments of the test: UMPATHD
# UMPATH.  After sourcing it, a lib.sh may
#   - move the control socket ($SOCK) or the daemon's log ($LOG);
#   - redefine suite_cleanup, run first at exit (it may end the daemon
#     itself, with kill_daemon, when it has things to undo after that),
#     and suite_finish, run first by finish;
#   - redefine start_daemon (with launch_daemon), fail, or anything else
#     whose meaning differs in that suite.
#
# Exit codes: 0 pass, 1 fail, 77 skip.

UMPATHD=${1:?usage: $0 UMPATHD UMPATH}
UMPATH=${2:?usage: $0 UMPATHD UMPATH}
T=$(mktemp -d "${TMPDIR:-/tmp}/umpath-$(basename "$(dirname "$0")")-test.XXXXXX")
SOCK=$T/ctl
LOG=$T/umpathd.log
LOG_LINES=		# how much of $LOG a failed test shows: empty for all of it
DPID=
FAILED=0
BG_PIDS=()		# background processes: SIGKILLed at exit

suite_cleanup() { :; }
suite_finish() { :; }

# kill_daemon [SECS]: end the daemon if it still runs: SIGTERM and up to
# SECS for it to exit before SIGKILL; SIGKILL at once without SECS.
kill_daemon()
{
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		if [ "${1:-0}" -gt 0 ]; then
			kill -TERM "$DPID" 2>/dev/null
			wait_for "$1" exited "$DPID" || kill -KILL "$DPID" 2>/dev/null
		else
			kill -KILL "$DPID" 2>/dev/null
		fi
		{ wait "$DPID"; } 2>/dev/null	# without bash's "Killed" line
	fi
	DPID=
	return 0
}

cleanup()
{
	local p

	set +e
	suite_cleanup
	kill_daemon
	for p in "${BG_PIDS[@]}"; do
		{ kill -KILL "$p"; wait "$p"; } 2>/dev/null
	done
	if [ "$FAILED" != 0 ] && [ -s "$LOG" ]; then
		if [ -n "$LOG_LINES" ]; then
			echo "--- umpathd log (last $LOG_LINES lines)"
			tail -n "$LOG_LINES" "$LOG"
		else
			echo "--- umpathd log"
			cat "$LOG"
		fi
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	FAILED=1
}

skip()
{
	echo "SKIP: $*"
	exit 77
}

# need CMD...: skip the test unless every command is installed.
need()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not installed"
	done
}

# finish: report and exit, 1 if anything failed.
finish()
{
	suite_finish
	if [ "$FAILED" != 0 ]; then
		exit 1
	fi
	echo "PASS"
	exit 0
}

# wait_for [SECS] CMD...: poll until CMD succeeds, at most SECS seconds
# (10 when the first word is not a number).
wait_for()
{
	local secs=10 tries

	if [[ $1 =~ ^[0-9]+$ ]]; then
		secs=$1
		shift
	fi
	tries=$((secs * 20))
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

u()
{
	"$UMPATH" -S "$SOCK" "$@"
}

# launch_daemon ARGS...: umpathd in the background on $SOCK, stderr
# appended to $LOG, its pid in $DPID.
launch_daemon()
{
	"$UMPATHD" --control "$SOCK" "$@" 2>>"$LOG" &
	DPID=$!
}

# start_daemon ARGS...: launch_daemon, and wait until it answers.
start_daemon()
{
	launch_daemon "$@"
	if ! wait_for 10 u ls >/dev/null 2>&1; then
		echo "umpathd did not come up:"
		cat "$LOG"
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

# term_wait PID SECS: SIGTERM to PID, then wait (at most SECS) for it to
# exit, watching a pidfd: prints "MS WALL", the milliseconds from the
# signal to the exit and the wall clock (UTC) at the exit as milliseconds
# of the day; exit 1 if PID still runs.  One process measures both ends,
# so that no helper's start-up time (seconds, on a loaded machine) is
# counted.
term_wait()
{
	python3 - "$1" "$2" <<'PY'
import os, select, signal, sys, time
pid, secs = int(sys.argv[1]), float(sys.argv[2])
fd = os.pidfd_open(pid)
t0 = time.monotonic()
os.kill(pid, signal.SIGTERM)
p = select.poll()
p.register(fd, select.POLLIN)
if not p.poll(secs * 1000):
    sys.exit(1)
t1 = time.monotonic()
wall = time.time() % 86400
print(int((t1 - t0) * 1000), int(wall * 1000))
PY
}

# log_ms PATTERN: milliseconds of the day (UTC) of the last line of $LOG
# that matches PATTERN (the latest daemon's), from umpathd's own time stamp.
log_ms()
{
	awk -v p="$1" '$0 ~ p { split($2, t, /[:.]/); ms = ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }
		END { if (ms != "") print ms }' "$LOG"
}

# since_ms FROM TO: TO - FROM, milliseconds of the day, across midnight.
since_ms()
{
	echo $(( ($2 - $1 + 86400000) % 86400000 ))
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

# A TCP port free on 127.0.0.1 (now).
free_port()
{
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
