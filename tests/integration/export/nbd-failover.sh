#!/usr/bin/env bash
# Description: through umpathd's NBD export, fio write-verify keeps running
# with zero errors while one path's nbdkit starts returning EIO and another
# path's nbdkit is killed; the control socket shows both paths failed; the
# image holds exactly what the device shows.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit fio nbdcopy
nbdkit --dump-plugin file >/dev/null 2>&1 || { echo "SKIP: nbdkit file plugin missing"; exit 77; }

IMG=$T/lun.img
truncate -s 128M "$IMG"
pids=()
EXTRA_CLEANUP='for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done'
nbdkit --exit-with-parent -U "$T/a.sock" --filter=error file "$IMG" \
  error=EIO error-rate=100% error-file="$T/a.broken" 2>"$T/a.log" & pids+=($!)
nbdkit --exit-with-parent -U "$T/b.sock" -P "$T/b.pid" file "$IMG" 2>"$T/b.log" & pids+=($!)
nbdkit --exit-with-parent -U "$T/c.sock" file "$IMG" 2>"$T/c.log" & pids+=($!)
for s in a b c; do wait_for test -S "$T/$s.sock" || fail "nbdkit $s did not start"; done
A="nbd+unix:///?socket=$T/a.sock" B="nbd+unix:///?socket=$T/b.sock" C="nbd+unix:///?socket=$T/c.sock"

start_daemon --io-timeout 2 --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 1 1 round-robin 0 3 1 $A 1 $B 1 $C 1"
export UMPATH_CONTROL=$T/ctl

fio --name=failover --ioengine=nbd --uri="nbd+unix:///lun?socket=$T/nbd.sock" --rw=randwrite \
    --bs=4k --iodepth=16 --numjobs=4 --size=16M --offset_increment=32M --time_based --runtime=8 \
    --verify=crc32c --verify_backlog=128 --verify_fatal=1 --verify_state_save=0 \
    --output="$T/fio.out" &
fio_pid=$!
sleep 2
touch "$T/a.broken"          # path A: every I/O fails with EIO
sleep 2
kill -KILL "$(cat "$T/b.pid")"   # path B: the server dies
rc=0
wait "$fio_pid" || rc=$?
cat "$T/fio.out"
[ $rc -eq 0 ] || fail "fio exited $rc"
[ "$(grep -c 'err= 0' "$T/fio.out")" -ge 1 ] || fail "fio saw errors"
! grep -qi 'verify.*bad\|crc32c.*mismatch' "$T/fio.out" || fail "fio verify failed"

status=$("$UMPATH" status lun)
echo "$status"
grep -q "a.sock F" <<<"$status" || fail "path A not shown failed"
grep -q "b.sock F" <<<"$status" || fail "path B not shown failed"
grep -q "c.sock A" <<<"$status" || fail "path C not active"

nbdcopy "nbd+unix:///lun?socket=$T/nbd.sock" "$T/through.img"
cmp "$T/through.img" "$IMG" || fail "the image differs from what the device shows"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-failover: ok"
