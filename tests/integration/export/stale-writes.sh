#!/usr/bin/env bash
# Description: no stale writes after a path hangs and comes back.  Two
# nbdkit paths to one image, path A (TCP) behind the pause filter; a
# versioned-block writer (tests/integration/export/versioned_blocks.py)
# writes rounds over the same blocks through the NBD export while A is
# paused past io_timeout.  The writes A holds are retried on B, and the
# later rounds must not be acknowledged for those blocks while A can still
# apply them.  Mode "resume": no fence_command; the overlapping writes wait
# (show paths: unsettled writes on A, fence "none") until A is resumed and
# answers.  Mode "fence": fence_command kills A's nbdkit; the writes go on
# without A ever resuming, and the command got the path and the map.
# Mode "exit": A on a Unix socket, no fence_command, and A's nbdkit is
# killed while paused: the engine sees the server process gone (pidfd) and
# lets the writes go on.
# Either way every block then holds its last acknowledged version, read
# through the export and from the image.
# Usage: stale-writes.sh UMPATHD UMPATH resume|fence|exit
set -euo pipefail
. "$(dirname "$0")/lib.sh"
MODE=${3:?usage: $0 UMPATHD UMPATH resume|fence|exit}
need nbdkit python3
nbdkit --dump-plugin file >/dev/null 2>&1 || skip "nbdkit file plugin missing"
nbdkit --filter=pause null --dump-plugin >/dev/null 2>&1 || skip "nbdkit pause filter missing"
VB="$(dirname "$0")/versioned_blocks.py"
BLOCKS=64


# pause_ctl SOCKET p|r: the pause filter's answer (P or R).
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

IMG=$T/lun.img
truncate -s 1M "$IMG"
if [ "$MODE" = exit ]; then
	listen=(-U "$T/a.sock")
	A="nbd+unix:///?socket=$T/a.sock"
else
	PORT=$(free_port)
	listen=(-i 127.0.0.1 -p "$PORT")
	A="nbd://127.0.0.1:$PORT"
fi
nbdkit --exit-with-parent -f -P "$T/a.pid" "${listen[@]}" --filter=pause \
	file "$IMG" pause-control="$T/a.ctl" 2>"$T/a.log" & BG_PIDS+=($!)
nbdkit --exit-with-parent -f -U "$T/b.sock" file "$IMG" 2>"$T/b.log" & BG_PIDS+=($!)
wait_for test -S "$T/a.ctl" || fail "nbdkit A did not start: $(cat "$T/a.log")"
wait_for test -S "$T/b.sock" || fail "nbdkit B did not start: $(cat "$T/b.log")"
B="nbd+unix:///?socket=$T/b.sock"

policy=(--policy path_checker=none)
if [ "$MODE" = fence ]; then
	cat >"$T/fence.sh" <<-SH
	#!/bin/sh
	# The fence: A's server is killed, so nothing it holds is applied.
	printf '%s|%s\n' "\$1" "\$2" >>"$T/fenced"
	kill -KILL "\$(cat "$T/a.pid")"
	SH
	chmod +x "$T/fence.sh"
	policy+=(--policy "fence_command=$T/fence.sh %p %m" --policy fence_timeout=10)
fi
start_daemon --io-timeout 2 --nbd "unix:$T/nbd.sock" "${policy[@]}" \
	--map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"
export UMPATH_CONTROL=$SOCK

# Version 1 of every block, both paths healthy.
python3 "$VB" write "$T/nbd.sock" lun "$T/state" "$BLOCKS" 1 >/dev/null || fail "first round"

[ "$(pause_ctl "$T/a.ctl" p)" = P ] || fail "nbdkit A did not pause"
python3 "$VB" write "$T/nbd.sock" lun "$T/state" "$BLOCKS" 3 >"$T/writer.out" 2>&1 &
wpid=$!
# A holds some of round 2's writes; at io_timeout (2 s) they are retried
# on B and round 2 completes; rounds 3 and 4 overwrite the same blocks.
sleep 5
"$UMPATH" show paths lun >"$T/paths" || fail "show paths: $(cat "$T/paths")"
cat "$T/paths"
a_row=$(awk -v p="$A" '$3 == p' "$T/paths")
held=no
if ! exited "$wpid"; then
	held=yes
fi
echo "after 5 s: writer held: $held; writer: $(tr '\n' ' ' <"$T/writer.out")"

if [ "$MODE" = resume ]; then
	[ "$(pause_ctl "$T/a.ctl" r)" = R ] || fail "nbdkit A did not resume"
elif [ "$MODE" = exit ]; then
	kill -KILL "$(cat "$T/a.pid")"
fi
wait_for 30 exited "$wpid" || fail "the writer did not finish: $(cat "$T/writer.out")"
wait "$wpid" || fail "the writer failed: $(cat "$T/writer.out")"
# Give a stale write every chance to land before looking.
sleep 1
python3 "$VB" check "$T/nbd.sock" lun "$T/state" "$IMG" >"$T/check.out" 2>&1 || {
	cat "$T/check.out"
	fail "stale blocks after A came back"
}
tail -1 "$T/check.out"

# How it got there.
if [ "$MODE" != fence ]; then
	[ "$held" = yes ] || fail "writes overlapping A's timed-out ones were acknowledged while A was paused"
	awk '{ if ($(NF-1) != "none" || $NF < 1) exit 1 }' <<<"$a_row" ||
		fail "show paths: want fence 'none' and unsettled writes on A: $a_row"
else
	[ "$held" = no ] || fail "the fence did not release the held writes (A never resumed)"
	grep -qxF "$A|lun" "$T/fenced" || fail "fence_command got: $(cat "$T/fenced" 2>/dev/null)"
	[ "$(wc -l <"$T/fenced")" = 1 ] || fail "fence_command ran $(wc -l <"$T/fenced") times"
	grep -q "fence ok" "$LOG" || fail "the fence's result is not in the log"
	"$UMPATH" show paths lun | awk -v p="$A" '$3 == p && $(NF-1) == "ok" && $NF == 0 { f = 1 } END { exit !f }' ||
		fail "show paths: want fence ok, 0 unsettled on A: $("$UMPATH" show paths lun)"
fi
"$UMPATH" show paths lun | awk -v p="$A" '$3 == p && $NF != 0 { exit 1 }' ||
	fail "unsettled writes left on A: $("$UMPATH" show paths lun)"
stop_daemon || fail "umpathd did not exit 0"
echo "stale-writes $MODE: ok"
