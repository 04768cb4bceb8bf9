#!/usr/bin/env bash
# Description: fio crc32c write-verify through the NBD export over two
# iSCSI paths sees zero errors while path A's session is dropped by its
# target and path B's target is stopped past io_timeout and resumed; both
# paths end active; the LUN's file equals the device.
#
# Two tgtd over one backing file (A through tgtd a's 127.0.0.1 portal, B
# through tgtd b's 127.0.0.2 portal): SIGSTOP of one tgtd then hangs one
# path only, as a stopped storage controller would; the two tgtd share the
# file through the page cache.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need fio nbdcopy python3

IMG=$T/lun.img
truncate -s 64M "$IMG"
tgt_start a "$IMG"
tgt_start b "$IMG"
A=$TGT_URL1_a B=$TGT_URL2_b
start_daemon --io-timeout 1 --policy polling_interval=1 --nbd "unix:$T/nbd.sock" \
  --map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"
U=$(nbd_uri lun)

fio --name=failover --ioengine=nbd --uri="$U" --rw=randwrite --bs=4k --iodepth=16 --numjobs=2 \
    --size=16M --offset_increment=32M --time_based --runtime=10 \
    --verify=crc32c --verify_backlog=64 --verify_fatal=1 --verify_state_save=0 \
    --output="$T/fio.out" &
fio_pid=$!
BG_PIDS+=("$fio_pid")
sleep 2
n=$(tgt_drop_sessions a)
[ "$n" -ge 1 ] || fail "no session of path A to drop"
sleep 2.5
kill -STOP "$TGT_PID_b"
sleep 2.5
kill -CONT "$TGT_PID_b"
rc=0
wait "$fio_pid" || rc=$?
cat "$T/fio.out"
[ $rc -eq 0 ] || fail "fio exited $rc"
grep -q 'err= 0' "$T/fio.out" || fail "fio saw errors"
! grep -qi 'verify.*bad\|crc32c.*mismatch' "$T/fio.out" || fail "fio verify failed"
grep -q "path_failed $A" "$LOG" || fail "path A was never failed (the session drop went unseen?)"
grep -q "path_failed $B" "$LOG" || fail "path B was never failed (the hang went unseen?)"
both_active() { local s; s=$("$UMPATH" status lun); grep -q "$A A" <<<"$s" && grep -q "$B A" <<<"$s"; }
wait_for 15 both_active || fail "both paths not active again: $("$UMPATH" status lun)"
nbdcopy "$U" "$T/through.img"
cmp "$T/through.img" "$IMG" || fail "the LUN's file differs from the device"
stop_daemon || fail "umpathd did not exit 0"
finish
