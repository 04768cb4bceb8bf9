#!/usr/bin/env bash
# Description: two scsi_debug paths of 4 KiB logical blocks (sector_size=4096,
# a 4Kn LUN): the map takes their block size and /dev/ublkbN is a 4Kn
# device (logical_block_size 4096); a 512-byte O_DIRECT write to it is
# refused by the kernel before it reaches umpathd; ext4 on it, fio crc32c
# verify on the file system while a path goes offline and back: 0 errors,
# e2fsck clean; umpathd exits 0 with no sanitizer report.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
need fio mkfs.ext4 e2fsck python3
[ -e /dev/ublk-control ] || skip "no /dev/ublk-control in the guest (ublk_drv)"

scsi_paths 2 64 sector_size=4096
[ "$(cat "/sys/block/${SD[0]}/queue/logical_block_size")" = 4096 ] ||
	skip "scsi_debug here has no 4 KiB sectors"
A=file:/dev/${SD[0]}?direct B=file:/dev/${SD[1]}?direct
start_daemon --ublk --policy polling_interval=1 \
	--map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"
ublk_device lun
b=${dev#/dev/}
[ "$(u info lun | awk '/^Block size/ {print $3}')" = 4096 ] || fail "umpath info: $(u info lun)"
[ "$(cat "/sys/block/$b/queue/logical_block_size")" = 4096 ] ||
	fail "$dev: logical_block_size $(cat "/sys/block/$b/queue/logical_block_size"), not 4096"

step "a 512-byte O_DIRECT write"
python3 - "$dev" <<'PY' || fail "a 512-byte O_DIRECT write to the 4Kn $dev was not refused"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
try:
    os.pwrite(fd, memoryview(buf)[:512], 512)
except OSError as e:
    print("refused:", e)
    sys.exit(0)
sys.exit(1)
PY

step mkfs.ext4; mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev failed"
mount_dev "$dev" "$T/mnt" || { fail "mount $dev failed"; finish; }
fio --name=fs --directory="$T/mnt" --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
	--iodepth=8 --numjobs=2 --size=8M --time_based --runtime=25 --verify=crc32c \
	--verify_backlog=64 --verify_fatal=1 --verify_state_save=0 --output="$T/fs.out" &
fio_pid=$!
BG_PIDS+=("$fio_pid")
sleep 2
path_flap lun "${SD[0]}"
exited "$fio_pid" && fail "fio ended before the path came back: the flap was not under I/O"
st=0; wait "$fio_pid" || st=$?
[ "$st" = 0 ] || { cat "$T/fs.out"; fail "fio exited $st"; }
grep -q 'err= 0' "$T/fs.out" && ! grep -q 'err= *[1-9]' "$T/fs.out" || fail "fio saw errors"
step umount, e2fsck; umount "$T/mnt" && MOUNTS=() || fail "umount failed"
e2fsck -fn "$dev" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn $dev found errors"; }
end_daemon
finish
