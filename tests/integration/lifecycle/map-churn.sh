#!/usr/bin/env bash
# Description: maps come and go while the checker's probes of their paths
# are in flight (nbdkit's delay filter holds each read 300 ms): a probe that
# answers after its map is gone finds its path dead and frees it (the last
# reference), nothing is used after free (the sanitizer build runs this
# too), and umpathd still stops at once, exit 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit
nbdkit --filter=delay --dump-plugin memory >/dev/null 2>&1 || skip "nbdkit delay filter missing"

for p in a b; do
	nbdkit --exit-with-parent -f -U "$T/$p.sock" --filter=delay memory 1M delay-read=300ms \
		2>>"$T/nbdkit.log" &
	BG_PIDS+=($!)
	wait_for 10 test -S "$T/$p.sock" || { fail "nbdkit $p did not start"; finish; }
done
A="nbd+unix:///?socket=$T/a.sock" B="nbd+unix:///?socket=$T/b.sock"

start_daemon --io-timeout 5 --policy polling_interval=1 --policy max_polling_interval=1
for round in $(seq 1 6); do
	for m in m1 m2 m3; do
		u create "$m" "0 0 1 1 round-robin 0 2 1 $A 1 $B 1" >/dev/null ||
			fail "round $round: create $m"
	done
	sleep 0.2	# probes started, not answered
	for m in m1 m2 m3; do
		u remove "$m" || fail "round $round: remove $m"
	done
done
u create last "0 0 1 1 round-robin 0 2 1 $A 1 $B 1" >/dev/null || fail "create last"
wait_for 10 eval 'u show paths 2>/dev/null | grep -q " ready "' || fail "the checker does not probe a new map"
start=$(now_ms)
stop_daemon || fail "umpathd exit status $? after SIGTERM"
took=$(( $(now_ms) - start ))
[ "$took" -lt 3000 ] || fail "stopping took ${took} ms"
finish
