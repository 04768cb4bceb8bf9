#!/usr/bin/env bash
# Description: SIGTERM ends umpathd within its documented bound, io_timeout
# + 5 s (umpathd(8)), whatever the clients and paths do: one NBD client
# sends large reads and never reads the replies, another waits for a read
# on a path that hangs (nbdkit's pause filter) with queue_if_no_path, and
# a third only holds its connection.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit python3
nbdkit --dump-plugin memory >/dev/null 2>&1 || skip "nbdkit memory plugin missing"
nbdkit --filter=pause --dump-plugin memory >/dev/null 2>&1 || skip "nbdkit pause filter missing"

IO_TIMEOUT=2
BOUND=$((IO_TIMEOUT + 5))
HERE=$(cd "$(dirname "$0")" && pwd)

nbdkit --exit-with-parent -f -U "$T/path.sock" --filter=pause memory 64M \
	pause-control="$T/pause.sock" 2>>"$T/nbdkit.log" &
BG_PIDS+=($!)
wait_for 10 test -S "$T/path.sock" || { fail "nbdkit did not start"; finish; }
wait_for 10 test -S "$T/pause.sock" || { fail "nbdkit's pause socket missing"; finish; }

start_daemon --io-timeout "$IO_TIMEOUT" --nbd "unix:$T/nbd.sock" \
	--map m="1 queue_if_no_path 0 1 1 round-robin 0 1 1 nbd+unix:///?socket=$T/path.sock 1"

# A client that never reads: 64 reads of 16 MiB, answers pile up unread.
python3 "$HERE/nbd_greedy.py" "$T/nbd.sock" m 64 16777216 >"$T/greedy.out" 2>&1 &
BG_PIDS+=($!)
wait_for 20 grep -q sent "$T/greedy.out" || fail "the greedy client could not send"

# The path hangs; a read waits on it, then queues (queue_if_no_path).
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"p"); s.recv(1)' \
	"$T/pause.sock"
python3 "$HERE/nbd_greedy.py" "$T/nbd.sock" m 1 4096 >"$T/hung.out" 2>&1 &
BG_PIDS+=($!)
wait_for 10 grep -q sent "$T/hung.out" || fail "the hung client could not send"
# A client that only holds its connection.
python3 "$HERE/nbd_greedy.py" "$T/nbd.sock" m 0 4096 >"$T/idle.out" 2>&1 &
BG_PIDS+=($!)
wait_for 10 grep -q sent "$T/idle.out" || fail "the idle client could not connect"
# The read reaches the hung path: the path's one request in flight, or,
# io_timeout later (on a loaded machine the polls can miss those 2 s),
# failed off it and queued in the map (queue_if_no_path).
reached()
{
	"$UMPATH" -S "$SOCK" show paths m --json | grep -q '"inflight": *[1-9]' ||
		"$UMPATH" -S "$SOCK" show maps m --json | grep -q '"queued_ios": *[1-9]'
}
wait_for 20 reached || fail "the read never reached the hung path"

# The bound runs from when umpathd takes the signal (its "draining" line,
# its own clock) to its exit.  Signal to exit is printed as well: on a
# loaded machine the signal thread may be scheduled late, which the
# daemon cannot bound; a generous limit only catches one that ignores it.
if ! out=$(term_wait "$DPID" $((BOUND + 30))); then
	fail "umpathd still runs $((BOUND + 30)) s after SIGTERM"
	kill -KILL "$DPID"
fi
st=0
wait "$DPID" || st=$?
DPID=
read -r total exit_wall <<<"$out"
taken=$(log_ms 'draining I/O and stopping')
[ -n "$taken" ] || fail "umpathd did not log the start of its shutdown"
took=$(since_ms "$taken" "$exit_wall")
echo "umpathd exited $st, ${took} ms after taking SIGTERM, ${total} ms after it was sent (bound ${BOUND} s)"
[ "$took" -le $((BOUND * 1000 + 500)) ] ||
	fail "SIGTERM took ${took} ms, over io_timeout + 5 s"
case $st in
0|3) ;;
*) fail "exit status $st after SIGTERM (0: drained, 3: work abandoned at the bound)" ;;
esac
[ ! -e "$SOCK" ] || [ "$st" = 3 ] || fail "control socket left behind"
finish
