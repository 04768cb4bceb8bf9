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
# Mode "fence-fail": fence_command exits 3; mode "fence-timeout": it hangs
# past fence_timeout (1 s) and is killed.  Either way show paths and the
# log tell so, the overlapping writes keep waiting (queue_if_no_path)
# while reads of the same blocks are answered, until A is resumed.
# Mode "noqueue": no queue_if_no_path and a failing fence_command: the
# overlapping writes get EIO at once instead, reads are answered.
# Every mode: every block then holds its last acknowledged version, read
# through the export and from the image.
# Usage: stale-writes.sh UMPATHD UMPATH resume|fence|exit|fence-fail|fence-timeout|noqueue
set -euo pipefail
. "$(dirname "$0")/lib.sh"
MODE=${3:?usage: $0 UMPATHD UMPATH resume|fence|exit|fence-fail|fence-timeout|noqueue}
need nbdkit python3
nbdkit --dump-plugin file >/dev/null 2>&1 || skip "nbdkit file plugin missing"
nbdkit --filter=pause null --dump-plugin >/dev/null 2>&1 || skip "nbdkit pause filter missing"
VB="$(dirname "$0")/versioned_blocks.py"
BLOCKS=64


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
queue="1 queue_if_no_path"
case $MODE in
fence)
	fence_body='kill -KILL "$(cat "'"$T"'/a.pid")"	# nothing A holds is applied'
	;;
fence-fail|noqueue)
	fence_body='echo "fence: cannot reach the power switch" >&2; exit 3'
	;;
fence-timeout)
	fence_body='exec sleep 60	# a fence that hangs'
	;;
resume|exit)
	fence_body=
	;;
*)
	fail "unknown mode $MODE"
	;;
esac
[ "$MODE" = noqueue ] && queue=0
if [ -n "$fence_body" ]; then
	cat >"$T/fence.sh" <<-SH
	#!/bin/sh
	printf '%s|%s\n' "\$1" "\$2" >>"$T/fenced"
	$fence_body
	SH
	chmod +x "$T/fence.sh"
	timeout=10
	[ "$MODE" = fence-timeout ] && timeout=1
	policy+=(--policy "fence_command=$T/fence.sh %p %m" --policy fence_timeout=$timeout)
fi
start_daemon --io-timeout 2 --nbd "unix:$T/nbd.sock" "${policy[@]}" \
	--map lun="$queue 0 1 1 round-robin 0 2 1 $A 1 $B 1"
export UMPATH_CONTROL=$SOCK

# a_fence STATE: show paths has A's last fence in STATE with unsettled
# writes left on A (the columns before the last, prio).
a_fence()
{
	"$UMPATH" show paths lun >"$T/paths" 2>&1 &&
		awk -v p="$A" -v w="$1" '$3 == p && $(NF-2) == w && $(NF-1) >= 1 { f = 1 } END { exit !f }' "$T/paths"
}
# a_settled: no unsettled write left on A.
a_settled()
{
	"$UMPATH" show paths lun | awk -v p="$A" '$3 == p && $(NF-1) == 0 { f = 1 } END { exit !f }'
}

# Version 1 of every block, both paths healthy.
python3 "$VB" write "$T/nbd.sock" lun "$T/state" "$BLOCKS" 1 >/dev/null || fail "first round"

[ "$(pause_ctl "$T/a.ctl" p)" = P ] || fail "nbdkit A did not pause"
python3 "$VB" write "$T/nbd.sock" lun "$T/state" "$BLOCKS" 3 >"$T/writer.out" 2>&1 &
wpid=$!
# A holds some of round 2's writes; at io_timeout (2 s) they are retried
# on B and round 2 completes; rounds 3 and 4 overwrite the same blocks.
# The bounds below are generous: they only end a test that hangs.
case $MODE in
resume|exit)
	wait_for 60 a_fence none || fail "show paths: want fence 'none' and unsettled writes on A: $(cat "$T/paths")"
	exited "$wpid" && fail "writes overlapping A's timed-out ones were acknowledged while A was paused"
	;;
fence)
	wait_for 60 exited "$wpid" || fail "the fence did not release the held writes (A never resumed)"
	;;
fence-fail|fence-timeout)
	want=failed detail="fence failed: exit status 3"
	[ "$MODE" = fence-timeout ] && want=timeout detail="fence timeout: killed after"
	wait_for 60 a_fence $want || fail "show paths: want fence '$want' and unsettled writes on A: $(cat "$T/paths")"
	grep -q "$detail" "$LOG" || fail "the fence's result is not in the log (want '$detail')"
	# Reads of the very blocks whose writes wait are answered.
	timeout 60 python3 "$VB" read "$T/nbd.sock" lun "$BLOCKS" >"$T/read.out" 2>&1 ||
		fail "reads while writes wait for A: $(cat "$T/read.out")"
	exited "$wpid" && fail "overlapping writes were acknowledged although the fence $want"
	;;
noqueue)
	# Queueing off: a write that would wait on a failed fence gets EIO.
	wait_for 60 exited "$wpid" || fail "without queue_if_no_path, writes waited for A: $(cat "$T/writer.out")"
	grep -q "fence failed: exit status 3" "$LOG" || fail "the fence's result is not in the log"
	a_fence failed || fail "show paths: want fence 'failed' and unsettled writes on A: $(cat "$T/paths")"
	timeout 60 python3 "$VB" read "$T/nbd.sock" lun "$BLOCKS" >"$T/read.out" 2>&1 ||
		fail "reads while A is paused: $(cat "$T/read.out")"
	;;
esac
cat "$T/paths" 2>/dev/null || true
echo "writer so far: $(tr '\n' ' ' <"$T/writer.out")"

case $MODE in
resume|fence-fail|fence-timeout|noqueue)
	[ "$(pause_ctl "$T/a.ctl" r)" = R ] || fail "nbdkit A did not resume"
	;;
exit)
	kill -KILL "$(cat "$T/a.pid")"
	;;
esac
wait_for 60 exited "$wpid" || fail "the writer did not finish: $(cat "$T/writer.out")"
wait "$wpid" || fail "the writer failed: $(cat "$T/writer.out")"
errors_ok=()
if [ "$MODE" = noqueue ]; then
	grep -q "error 5$" "$T/writer.out" || fail "no write got EIO: $(cat "$T/writer.out")"
	errors_ok=(--write-errors-ok)
fi
# A's late answers settle its writes; then a stale one cannot land.
wait_for 60 a_settled || fail "unsettled writes left on A: $("$UMPATH" show paths lun)"
python3 "$VB" check "$T/nbd.sock" lun "$T/state" "$IMG" "${errors_ok[@]}" >"$T/check.out" 2>&1 || {
	cat "$T/check.out"
	fail "stale blocks after A came back"
}
tail -1 "$T/check.out"

if [ -n "$fence_body" ]; then
	grep -qxF "$A|lun" "$T/fenced" || fail "fence_command got: $(cat "$T/fenced" 2>/dev/null)"
fi
if [ "$MODE" = fence ]; then
	[ "$(wc -l <"$T/fenced")" = 1 ] || fail "fence_command ran $(wc -l <"$T/fenced") times"
	grep -q "fence ok" "$LOG" || fail "the fence's result is not in the log"
	"$UMPATH" show paths lun | awk -v p="$A" '$3 == p && $(NF-2) == "ok" && $(NF-1) == 0 { f = 1 } END { exit !f }' ||
		fail "show paths: want fence ok, 0 unsettled on A: $("$UMPATH" show paths lun)"
fi
stop_daemon || fail "umpathd did not exit 0"
echo "stale-writes $MODE: ok"
