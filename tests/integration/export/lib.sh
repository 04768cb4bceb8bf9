# lib.sh - shared by the export tests: the helpers of ../common.sh, with
# the daemon's log in $T/daemon.log, a start that waits for "ready" in it,
# and a fail that ends the test at once.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
LOG=$T/daemon.log
declare -n DAEMON_PID=DPID	# the name these tests use

# At exit: the daemon gets 5 s to stop on SIGTERM, then what the test
# asked for in $EXTRA_CLEANUP.
suite_cleanup()
{
	kill_daemon 5
	[ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP"
}

# fail MESSAGE: the end of the test, with the tail of the daemon's log.
fail()
{
	echo "FAIL: $*" >&2
	[ -f "$LOG" ] && tail -20 "$LOG" >&2
	exit 1
}

# start_daemon ARGS...: umpathd logging to a fresh $LOG; wait for its
# control socket and its "ready".
start_daemon()
{
	: >"$LOG"
	launch_daemon "$@"
	wait_for test -S "$SOCK" || fail "umpathd did not start"
	grep -q ready "$LOG" || wait_for grep -q ready "$LOG" || fail "umpathd not ready"
}

# pause_ctl SOCKET p|r: nbdkit's pause filter (pause-control=SOCKET) told
# to pause or resume; prints its answer (P or R).
pause_ctl()
{
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
print(s.recv(1).decode())
PY
}

# pausable_loop IMAGE: a block device that hangs on demand, in $A: a loop
# device over a FUSE file (nbdfuse) that nbdkit serves from IMAGE through
# its pause filter (pause_ctl "$T/p.ctl" p|r).  Cleaned up at exit: nbdkit
# resumed, the loop device detached, the FUSE file unmounted.  Skips where
# FUSE, loop devices or the tools are missing.  (Not run in $(...).)
pausable_loop()
{
	need nbdkit nbdfuse fusermount3 losetup
	[ -w /dev/fuse ] || skip "/dev/fuse not usable"
	nbdkit --filter=pause null --version >/dev/null 2>&1 || skip "nbdkit pause filter missing"
	mkdir "$T/mnt"
	EXTRA_CLEANUP="${EXTRA_CLEANUP:-}"'
[ -S "$T/p.ctl" ] && pause_ctl "$T/p.ctl" r >/dev/null 2>&1
[ -n "${A:-}" ] && losetup -d "$A" 2>/dev/null
fusermount3 -u "$T/mnt" 2>/dev/null || true'
	nbdfuse "$T/mnt/disk" [ nbdkit --exit-with-parent --filter=pause file "$1" \
		pause-control="$T/p.ctl" ] &
	BG_PIDS+=($!); disown $!
	wait_for test -e "$T/mnt/disk" || fail "nbdfuse did not start"
	A=$(losetup -f --show "$T/mnt/disk" 2>"$T/losetup.err") ||
		{ A=; skip "losetup not permitted here: $(cat "$T/losetup.err")"; }
}
