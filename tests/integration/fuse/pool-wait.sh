#!/usr/bin/env bash
# Description: FUSE reads of a map whose request pool is full (umpathd
# --pool-size 2, the map's one path an nbdkit answering reads after 2 s)
# wait for a request of the map to end without polling: umpathd's threads
# hardly wake meanwhile (the former 10 ms timed wait woke each waiting
# FUSE thread 100 times a second), and every read returns the image's data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit
nbdkit --dump-plugin file >/dev/null 2>&1 || skip "nbdkit file plugin missing"
nbdkit --filter=delay --help >/dev/null 2>&1 || skip "nbdkit delay filter missing"

SLOW=$T/slow.img
head -c 1M /dev/urandom >"$SLOW"
nbdkit --exit-with-parent -U "$T/slow.sock" --filter=delay file "$SLOW" delay-read=2 \
	2>"$T/nbdkit.log" &
wait_for 10 test -S "$T/slow.sock" || fail "nbdkit did not start"
start_daemon --pool-size 2 --policy path_checker=none --io-timeout 30 \
	--map slow="0 0 1 1 round-robin 0 1 1 nbd+unix:///?socket=$T/slow.sock 1"
wait_for 10 test -e "$MNT/slow" || fail "no $MNT/slow"

# umpathd's context switches, every thread.
switches()
{
	local f n=0 v

	for f in /proc/"$DPID"/task/*/status; do
		v=$(awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }' "$f" 2>/dev/null) || v=0
		n=$((n + v))
	done
	echo "$n"
}

pids=()
for i in 0 1 2 3 4 5; do
	dd if="$MNT/slow" of="$T/got$i" bs=4k skip=$i count=1 iflag=direct status=none &
	pids+=($!)
done
sleep 0.5	# two reads at nbdkit, the rest waiting for pool room
before=$(switches)
sleep 1.2
woke=$(( $(switches) - before ))
echo "context switches of umpathd in 1.2 s with a full pool: $woke"
for p in "${pids[@]}"; do
	wait "$p" || fail "a dd of $MNT/slow failed"
done
[ "$woke" -le 200 ] || fail "umpathd woke $woke times while reads waited for pool room"
for i in 0 1 2 3 4 5; do
	cmp -s "$T/got$i" <(dd if="$SLOW" bs=4k skip=$i count=1 status=none) ||
		fail "read $i: not the image's data"
done
finish
