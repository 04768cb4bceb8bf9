#!/usr/bin/env bash
# Description: a map served as /dev/ublkbN (umpathd --ublk) over two
# scsi_debug paths: the device has the map's size and a write-back cache
# with FUA; fio crc32c write-verify on the raw device, then on an ext4
# made and mounted on it, each while one path goes offline (I/O goes on on
# the other) and comes back (reinstated) and the table is reloaded; no
# error, e2fsck clean; a remove
# while mounted is refused as busy and tears nothing down; after umount it
# stops and deletes the device.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
need fio mkfs.ext4 e2fsck
[ -e /dev/ublk-control ] || skip "no /dev/ublk-control in the guest (ublk_drv)"

scsi_paths 2 64
A=file:/dev/${SD[0]}?direct B=file:/dev/${SD[1]}?direct
TABLE="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"
start_daemon --ublk --policy polling_interval=1 --map lun="$TABLE"
ublk_device lun
b=${dev#/dev/}
[ "$(cat "/sys/block/$b/size")" = $((64 << 11)) ] ||
	fail "$dev has $(cat "/sys/block/$b/size") sectors, not the map's $((64 << 11))"
[ "$(cat "/sys/block/$b/queue/write_cache")" = "write back" ] ||
	fail "$dev has no volatile cache: $(cat "/sys/block/$b/queue/write_cache")"
[ "$(cat "/sys/block/$b/queue/fua")" = 1 ] || fail "$dev does not take FUA"
u show topology lun | grep -q "^lun $b " || fail "show topology does not name $b: $(u show topology lun)"
u show topology --json | grep -q "\"ublk\": *\"$dev\"" ||
	fail "show topology --json does not name $dev: $(u show topology --json)"

# flap NAME SECS: fio verify (its other arguments after SECS) in the
# background while path 0 goes offline and back; 0 errors.
flap()
{
	local name=$1 st=0

	shift
	fio --name="$name" --rw=randwrite --bs=4k --direct=1 --ioengine=libaio --iodepth=8 \
		--time_based --runtime=25 --verify=crc32c --verify_backlog=64 --verify_fatal=1 \
		--verify_state_save=0 --output="$T/$name.out" "$@" &
	local fio_pid=$!
	BG_PIDS+=("$fio_pid")
	sleep 2
	step "$name"
	path_flap lun "${SD[0]}"
	# A reload under I/O is invisible to what sits on the device.
	exited "$fio_pid" && fail "fio $name ended before the reload"
	u reload lun "$TABLE" || fail "reload under I/O failed"
	wait "$fio_pid" || st=$?
	step "$name: fio done"
	[ "$st" = 0 ] || { cat "$T/$name.out"; fail "fio $name exited $st"; }
	grep -q 'err= 0' "$T/$name.out" && ! grep -q 'err= *[1-9]' "$T/$name.out" ||
		fail "fio $name saw errors"
}

flap raw --filename="$dev" --size=16M

step mkfs.ext4; mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev failed"
mount_dev "$dev" "$T/mnt" || { fail "mount $dev failed"; finish; }
flap fs --directory="$T/mnt" --numjobs=2 --size=8M

step "remove while mounted"
u remove lun >"$T/rm.out" 2>&1 && fail "remove of a map whose $dev is mounted succeeded"
grep -q "Device or resource busy" "$T/rm.out" || fail "remove refused without saying busy: $(cat "$T/rm.out")"
[ -b "$dev" ] && u ls | grep -q "$dev" || fail "a refused remove tore down $dev: $(u ls)"
echo still-here >"$T/mnt/after" && sync || fail "the file system fails after a refused remove"

step umount, e2fsck; umount "$T/mnt" && MOUNTS=() || fail "umount failed"
e2fsck -fn "$dev" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck -fn $dev found errors"; }
step remove; u remove lun || fail "remove of the unmounted map failed"
[ -e "$dev" ] && fail "$dev still there after remove"
[ -e "/sys/block/$b" ] && fail "/sys/block/$b still there after remove"
finish
