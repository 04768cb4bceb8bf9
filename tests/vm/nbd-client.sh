#!/usr/bin/env bash
# Description: the kernel's NBD client on umpathd's export, over a unix
# socket or TCP (the third argument), with two connections (-C 2, which
# CAN_MULTI_CONN allows) and 4 KiB blocks: mkfs.ext4 and mount /dev/nbd0,
# fio crc32c write-verify on the mounted file system while one of the two
# scsi_debug paths goes offline (the path fails, I/O goes on on the other)
# and comes back (the checker reinstates it): no error, e2fsck clean.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
mode=${3:?usage: $0 UMPATHD UMPATH unix|tcp}
need nbd-client fio mkfs.ext4 e2fsck

scsi_paths 2 64
A=file:/dev/${SD[0]}?direct B=file:/dev/${SD[1]}?direct
case $mode in
unix)
	listen=unix:$T/nbd.sock
	connect=(-unix "$T/nbd.sock")
	;;
tcp)
	port=$(free_port)
	listen=tcp:127.0.0.1:$port
	connect=(127.0.0.1 "$port")
	;;
*) skip "unknown mode $mode" ;;
esac
start_daemon --nbd "$listen" --policy polling_interval=1 \
	--map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"

nbd_connect /dev/nbd0 "${connect[@]}" -N lun -b 4096 -C 2 || finish
[ "$(cat /sys/block/nbd0/queue/logical_block_size)" = 4096 ] ||
	fail "nbd0's logical block size is $(cat /sys/block/nbd0/queue/logical_block_size), not 4096"
[ "$(cat /sys/block/nbd0/size)" = $((64 << 11)) ] ||
	fail "nbd0 has $(cat /sys/block/nbd0/size) sectors, not the map's $((64 << 11))"
opens=$(u ls | awk '$1 == "lun" { print $3 }')
[ "$opens" = 2 ] || fail "umpath ls shows the map open $opens times, not by 2 connections"

step mkfs.ext4; mkfs.ext4 -q -F /dev/nbd0 || fail "mkfs.ext4 /dev/nbd0 failed"
mount_dev /dev/nbd0 "$T/mnt" || { fail "mount /dev/nbd0 failed"; finish; }

fio --name=fs --directory="$T/mnt" --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
	--numjobs=2 --size=8M --time_based --runtime=12 \
	--verify=crc32c --verify_backlog=64 --verify_fatal=1 --verify_state_save=0 \
	--output="$T/fio.out" &
fio_pid=$!
BG_PIDS+=("$fio_pid")
sleep 3
path_flap lun "${SD[0]}"
st=0
wait "$fio_pid" || st=$?
step fio done; cat "$T/fio.out"
[ "$st" = 0 ] || fail "fio exited $st"
grep -q 'err= 0' "$T/fio.out" && ! grep -q 'err= *[1-9]' "$T/fio.out" || fail "fio saw errors"
! grep -qi 'verify.*bad\|crc32c.*mismatch\|bad magic' "$T/fio.out" || fail "fio verify failed"

step umount, e2fsck; umount "$T/mnt" && MOUNTS=() || fail "umount failed"
e2fsck -fn /dev/nbd0 >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn /dev/nbd0 found errors"; }
step disconnect; nbd-client -d /dev/nbd0 >/dev/null 2>&1 || fail "nbd-client -d /dev/nbd0 failed"
NBD_DEVS=()
# The kernel's NBD_CMD_DISC ends both connections: the map is closed.
map_closed() { [ "$(u ls | awk '$1 == "lun" { print $3 }')" = 0 ]; }
wait_for 10 map_closed ||
	fail "map still open after nbd-client -d: $(u ls)"
end_daemon
finish
