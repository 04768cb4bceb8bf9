#!/usr/bin/env bash
# demo.sh - the main job, live: two NBD paths (two nbdkit servers over one
# image file, like two controllers of one LUN), umpathd making them one
# multipath device exported over NBD, and fio writing and verifying through
# it while the paths fail and come back:
#   1. path A starts returning EIO          -> A is failed, I/O goes on via B
#   2. path B's server is killed            -> no path left, I/O is queued
#   3. A is healed                          -> the path checker reinstates it,
#                                              the queued I/O completes
#   4. B's server comes back                -> reconnected and reinstated by
#                                              the checker: both paths carry I/O
# At the end fio must report zero errors and a clean verify, and the image
# must hold exactly what the device shows.
#
#   scripts/demo.sh [BUILD_DIR]        (default build/)
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
UMPATHD=$B/umpathd UMPATH=$B/umpath
for c in nbdkit fio nbdcopy; do
  command -v $c >/dev/null || { echo "demo: $c is not installed (run: make deps as root)" >&2; exit 1; }
done
T=$(mktemp -d)
pids=()
daemon_pid=
cleanup() {
  # umpathd first: it flushes through whatever paths are still there
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
t0=$(date +%s.%N)
say() { printf '\n[%5ss] \033[1m%s\033[0m\n' "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')" "$*"; }
run() { printf '  $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; exit 1; }
export UMPATH_CONTROL=$T/control

IMG=$T/lun.img
truncate -s 256M "$IMG"
A="nbd+unix:///?socket=$T/a.sock"
Bp="nbd+unix:///?socket=$T/b.sock"
start_a() {
  nbdkit --exit-with-parent -U "$T/a.sock" --filter=error file "$IMG" \
    error=EIO error-rate=100% error-file="$T/a.broken" 2>>"$T/nbdkit-a.log" &
  pids+=($!); wait_sock "$T/a.sock"
}
start_b() {
  rm -f "$T/b.sock"    # a killed server leaves its socket file behind
  nbdkit --exit-with-parent -U "$T/b.sock" -P "$T/b.pid" file "$IMG" 2>>"$T/nbdkit-b.log" &
  pids+=($!); wait_sock "$T/b.sock"
}

say "Two NBD paths to one 256 MiB LUN: nbdkit A (with an error filter) and nbdkit B"
start_a; start_b
TABLE="1 queue_if_no_path 0 1 1 service-time 0 2 2 $A 1 1 $Bp 1 1"
say "umpathd: map 'lun' = $TABLE"
"$UMPATHD" --io-timeout 2 --policy polling_interval=1 --nbd "unix:$T/nbd.sock" \
  --map lun="$TABLE" 2>"$T/umpathd.log" &
daemon_pid=$!
wait_sock "$T/nbd.sock"; wait_sock "$T/control"
run "$UMPATH" table lun
run "$UMPATH" status lun

say "fio writes 4 KiB blocks through the multipath device and verifies them as it goes"
fio --name=demo --ioengine=nbd --uri="nbd+unix:///lun?socket=$T/nbd.sock" --rw=randwrite --bs=4k \
    --iodepth=8 --size=64M --time_based --runtime=14 --verify=crc32c --verify_backlog=256 \
    --verify_fatal=1 --output="$T/fio.out" &
fio_pid=$!
sleep 2
run "$UMPATH" status lun

say "Path A starts failing every I/O with EIO"
touch "$T/a.broken"
sleep 2
run "$UMPATH" status lun

say "Path B's server is killed: no path is left, queue_if_no_path holds the I/O"
kill -KILL "$(cat "$T/b.pid")"
wait "$(cat "$T/b.pid")" 2>/dev/null || true
sleep 2
run "$UMPATH" status lun

say "Path A is healed: the path checker (polling every 1 s) reinstates it and the queued I/O completes"
rm -f "$T/a.broken"
for _ in $(seq 50); do "$UMPATH" status lun | grep -q "a.sock A" && break; sleep 0.1; done
run "$UMPATH" status lun
sleep 1

say "Path B's server is back: the transport reconnects and the checker reinstates it"
start_b
for _ in $(seq 100); do "$UMPATH" status lun | grep -q "b.sock A" && break; sleep 0.1; done
run "$UMPATH" status lun
run "$UMPATH" show topology lun

say "Waiting for fio to finish"
rc=0
wait "$fio_pid" || rc=$?
grep -E 'err=|write: IOPS' "$T/fio.out" | sed 's/^/    /'
run "$UMPATH" status lun

say "Checking the LUN holds exactly what the device shows"
nbdcopy "nbd+unix:///lun?socket=$T/nbd.sock" "$T/through-umpath.img"
if [ $rc -eq 0 ] && grep -q 'err= 0' "$T/fio.out" && cmp "$T/through-umpath.img" "$IMG"; then
  say "OK: fio saw no error, every block verified, nothing was lost"
  exit 0
fi
say "FAILED (fio exit $rc)"
cat "$T/fio.out"
tail -20 "$T/umpathd.log"
exit 1
