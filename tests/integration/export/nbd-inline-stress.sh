#!/usr/bin/env bash
# Description: inline writes and thread replacement under load, checked by
# fio's own verification.  Path A is a loop device over a FUSE file
# (nbdfuse, nbdkit with the pause filter), path B the image in a second
# priority group; two fio jobs (two NBD connections) write 32 MiB each in
# random order, 512 bytes to 16 KiB at 512-byte offsets (a
# write into a block never read must read it first), then read it all back
# and check every block, while nbdkit is paused for 0.4 s every 0.7 s.
# Writes that block while paused are the worker threads': they must be
# replaced (the log says so), fio must see no error and no mismatch, A
# must not fail (each pause is shorter than io_timeout), and umpathd must
# end with no more threads than its bound.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need fio python3

IMG=$T/lun.img
truncate -s 64M "$IMG"
EXTRA_CLEANUP='[ -n "${PAUSER:-}" ] && kill "$PAUSER" 2>/dev/null'
pausable_loop "$IMG"

start_daemon --io-timeout 5 --policy path_checker=none --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 2 1 round-robin 0 1 1 $A 1 round-robin 0 1 1 $IMG 1"

( for _ in $(seq 30); do
    sleep 0.7
    pause_ctl "$T/p.ctl" p >/dev/null; sleep 0.4; pause_ctl "$T/p.ctl" r >/dev/null
  done ) &
PAUSER=$!
timeout 120 fio --name=stress --ioengine=nbd --uri="nbd+unix:///lun?socket=$T/nbd.sock" \
  --rw=randwrite --bsrange=512-16k --blockalign=512 --size=32M --offset_increment=32M \
  --numjobs=2 --iodepth=8 --verify=crc32c --verify_fatal=1 --do_verify=1 \
  --output="$T/fio.out" || fail "fio: $(tail -20 "$T/fio.out")"
kill "$PAUSER" 2>/dev/null || true
wait "$PAUSER" 2>/dev/null || true
PAUSER=
pause_ctl "$T/p.ctl" r >/dev/null
grep -E '^ +(READ|WRITE):' "$T/fio.out"
# The verify pass read back all that was written: 64 MiB each way.
grep -qE '^ +READ:.*io=64\.0MiB' "$T/fio.out" || fail "fio verified less than it wrote: $(grep -E '^ +(READ|WRITE):' "$T/fio.out")"

replaced=$(grep -c 'worker thread blocked in a write' "$LOG" || true)
echo "threads replaced: $replaced"
[ "$replaced" -ge 1 ] || fail "no worker thread was replaced: no write blocked inline"
! grep -q path_failed "$LOG" || fail "path A failed: $(grep path_failed "$LOG")"
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$DPID/status")
echo "umpathd threads: $threads"
# 2 workers + 32 spares + the watcher, writers (16), loops, signal, main...
[ "$threads" -le 64 ] || fail "umpathd has $threads threads"
u show paths lun >/dev/null || fail "umpath show paths"
echo PASS
