#!/usr/bin/env bash
# Description: what the kernel sends a ublk device beyond reads and writes
# reaches the paths: writes spread over two scsi_debug paths (round-robin)
# leave both dirty, and an fsync of /dev/ublkbN (a FLUSH) flushes each of
# them (their disks' flush counters); blkdiscard is a discard on the paths
# and the blocks read back as zeroes (the store's unmapped blocks);
# fallocate -z is a WRITE_ZEROES: the range reads back zeroes; a
# suspended map holds the device's reads until it is resumed.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
need blkdiscard fallocate cmp python3
[ -e /dev/ublk-control ] || skip "no /dev/ublk-control in the guest (ublk_drv)"

scsi_paths 2 16
A=file:/dev/${SD[0]}?direct B=file:/dev/${SD[1]}?direct
start_daemon --ublk --map lun="0 0 1 1 round-robin 0 2 1 $A 1 $B 1"
ublk_device lun
b=${dev#/dev/}
[ "$(cat "/sys/block/$b/queue/discard_max_bytes")" -gt 0 ] || fail "$dev takes no discard"
[ "$(cat "/sys/block/$b/queue/write_zeroes_max_bytes")" -gt 0 ] || fail "$dev takes no write-zeroes"

fsync_dev() { python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)' "$1"; }

step "writes on both paths, then a flush"
w0=$(sd_stat "${SD[0]}" 5) w1=$(sd_stat "${SD[1]}" 5)
dd if=/dev/urandom of="$dev" bs=4k count=64 oflag=direct status=none || fail "dd to $dev failed"
[ "$(sd_stat "${SD[0]}" 5)" -gt "$w0" ] && [ "$(sd_stat "${SD[1]}" 5)" -gt "$w1" ] ||
	fail "the writes did not go to both paths"
f0=$(sd_stat "${SD[0]}" 16) f1=$(sd_stat "${SD[1]}" 16)
fsync_dev "$dev" || fail "fsync $dev failed"
[ "$(sd_stat "${SD[0]}" 16)" -gt "$f0" ] ||
	fail "an fsync of $dev did not flush dirty path ${SD[0]} ($f0 flushes before and after)"
[ "$(sd_stat "${SD[1]}" 16)" -gt "$f1" ] ||
	fail "an fsync of $dev did not flush dirty path ${SD[1]} ($f1 flushes before and after)"

step blkdiscard
head -c 1M /dev/urandom >"$T/data"
dd if="$T/data" of="$dev" bs=1M count=1 oflag=direct status=none || fail "dd to $dev failed"
d0=$(($(sd_stat "${SD[0]}" 12) + $(sd_stat "${SD[1]}" 12)))
blkdiscard -o 0 -l 1M "$dev" || fail "blkdiscard $dev failed"
[ "$(($(sd_stat "${SD[0]}" 12) + $(sd_stat "${SD[1]}" 12)))" -gt "$d0" ] ||
	fail "blkdiscard on $dev discarded nothing on the paths"
cmp -n 1M "$dev" /dev/zero || fail "discarded blocks of $dev do not read back as zeroes"

step "fallocate -z"
dd if="$T/data" of="$dev" bs=1M count=1 seek=1 oflag=direct status=none || fail "dd to $dev failed"
cmp -n 1M -i 1M:0 "$dev" "$T/data" || fail "$dev does not read back what was written"
fallocate -z -o 1M -l 1M "$dev" || fail "fallocate -z on $dev failed"
cmp -n 1M -i 1M:0 "$dev" /dev/zero || fail "zeroed range of $dev does not read back as zeroes"

step "suspend holds the device's I/O"
u suspend lun || fail "suspend failed"
dd if="$dev" of=/dev/null bs=4k count=1 skip=300 iflag=direct status=none &
ddpid=$!
BG_PIDS+=("$ddpid")
sleep 1
exited "$ddpid" && fail "a read of $dev ended while its map was suspended"
u resume lun || fail "resume failed"
wait_for 10 exited "$ddpid" || fail "the held read did not end after resume"
wait "$ddpid" || fail "the held read failed after resume"
finish
