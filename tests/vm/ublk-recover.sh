#!/usr/bin/env bash
# Description: umpathd killed with SIGKILL while fio write-verifies on an
# ext4 mounted on its /dev/ublkbN: the device stays (ublk user recovery),
# the file system's I/O waits; `umpathd --recover` with the same map takes
# the device over again; the I/O in flight at the kill is reissued: fio
# ends with no error, e2fsck is clean, the device keeps its number.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
need fio mkfs.ext4 e2fsck
[ -e /dev/ublk-control ] || skip "no /dev/ublk-control in the guest (ublk_drv)"

scsi_paths 2 64
A=file:/dev/${SD[0]}?direct B=file:/dev/${SD[1]}?direct
MAP="lun=1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"
start_daemon --ublk --map "$MAP"
ublk_device lun

step mkfs.ext4; mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev failed"
mount_dev "$dev" "$T/mnt" || { fail "mount $dev failed"; finish; }
fio --name=fs --directory="$T/mnt" --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
	--iodepth=8 --numjobs=2 --size=8M --time_based --runtime=12 \
	--verify=crc32c --verify_backlog=64 --verify_fatal=1 --verify_state_save=0 \
	--output="$T/fio.out" &
fio_pid=$!
BG_PIDS+=("$fio_pid")
sleep 3
step "SIGKILL umpathd"
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=
sleep 1
[ -b "$dev" ] || fail "$dev went away with its daemon"
exited "$fio_pid" && fail "fio ended while no daemon served $dev: $(cat "$T/fio.out")"

step "umpathd --recover"
rm -f "$SOCK"
start_daemon --ublk --recover --map "$MAP"
grep -q "ublk: map lun: $dev recovered" "$LOG" || fail "no recovery of $dev in the log"
[ "$(u ls | awk '$1 == "lun" { print $4 }')" = "$dev" ] ||
	fail "the recovered map shows $(u ls), not $dev"
st=0
wait "$fio_pid" || st=$?
step fio done; cat "$T/fio.out"
[ "$st" = 0 ] || fail "fio exited $st"
grep -q 'err= 0' "$T/fio.out" && ! grep -q 'err= *[1-9]' "$T/fio.out" || fail "fio saw errors"
dmesg | grep -i 'ext4.*error\|I/O error.*ublkb' && fail "the kernel saw I/O errors on $dev"

step umount, e2fsck; umount "$T/mnt" && MOUNTS=() || fail "umount failed"
e2fsck -fn "$dev" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn $dev found errors"; }
finish
