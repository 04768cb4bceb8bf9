#!/usr/bin/env bash
# Description: a write hung past io_timeout on an iSCSI path gets ABORT
# TASK (counted in show paths --json), then - the abort unanswered - its
# session is dropped and the write completes on the other path; a newer
# write to the same blocks waits until the hung target is back and the
# session reinstated, so the LUN ends up with the newer data, not the
# aborted write that the resumed target finally executes.
#
# Two tgtd over one backing file: SIGSTOP hangs one path and leaves the
# other one working (one tgtd serving both portals would hang both).  The
# writes are 4 KiB: they travel as immediate data, so the stopped tgtd
# holds the whole hung write in its socket and executes it when resumed
# (a write that needs an R2T could never complete there).  Without the
# unsettled hold this test finds the LUN holding write A.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io python3

IMG=$T/lun.img
truncate -s 16M "$IMG"
tgt_start a "$IMG"
tgt_start b "$IMG"
A=$TGT_URL1_a B=$TGT_URL1_b
# Group 1 (path A) takes the I/O while it works; group 2 (B) after.
# queue_if_no_path: a write held behind an unsettled one waits (without
# it, and without a fence_command, it would fail at once with EIO).
start_daemon --io-timeout 2 --nbd "unix:$T/nbd.sock" \
  --map lun="1 queue_if_no_path 0 2 1 round-robin 0 1 1 $A 1 round-robin 0 1 1 $B 1"
U=$(nbd_uri lun)

qemu-io -f raw -c 'write -P 0x11 0 4k' "$U" >/dev/null || fail "first write failed"
kill -STOP "$TGT_PID_a"
start=$(date +%s%N)
qemu-io -f raw -c 'write -P 0xaa 0 4k' "$U" >"$T/a.out" 2>&1 ||
  { cat "$T/a.out"; fail "write A failed (it should have failed over to B)"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "write A took $ms ms (io_timeout 2 s: abort, then drop)"
[ "$ms" -ge 3500 ] || fail "write A completed in $ms ms: no abort round before the drop?"
aborts=$(path_field lun "$A" aborts)
[ "$aborts" -ge 1 ] || fail "no ABORT TASK counted on path A ($aborts)"
"$UMPATH" status lun | grep -q "$A F" || fail "path A not failed"
unsettled=$(path_field lun "$A" unsettled_writes)
[ "$unsettled" -ge 1 ] || fail "the dropped write is not unsettled ($unsettled)"

# Write B overlaps A's blocks: held while A's fate is unknown.
qemu-io -f raw -c 'write -P 0xbb 0 4k' "$U" >"$T/b.out" 2>&1 &
bpid=$!
BG_PIDS+=("$bpid")
sleep 1
kill -0 "$bpid" 2>/dev/null || fail "write B was not held while path A's write is unsettled"
kill -CONT "$TGT_PID_a"		# tgtd a may now execute the aborted write
wait_for 20 exited "$bpid" || fail "write B still held 20 s after path A's target resumed"
wait "$bpid" || { cat "$T/b.out"; fail "write B failed"; }
sleep 0.5
python3 - "$IMG" <<'P' || fail "the LUN does not hold write B (a stale write landed?)"
import sys
d = open(sys.argv[1], 'rb').read(4096)
sys.exit(0 if d == b'\xbb' * 4096 else 1)
P
stop_daemon || fail "umpathd did not exit 0"
finish
