#!/usr/bin/env bash
# Description: a filesystem on a loop device over the FUSE file: mkfs.ext4,
# mount, write files, sync, unmount, detach; e2fsck finds the file system
# clean and a second mount reads the files back intact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

for t in mkfs.ext4 e2fsck mount umount sha256sum; do
	command -v "$t" >/dev/null || skip "no $t"
done
start_daemon
FS=$T/fs
mkdir -p "$FS"

loop_attach "$MNT/mp"
L=$LOOPDEV
mkfs.ext4 -q -F "$L" || fail "mkfs.ext4 on $L"
mount "$L" "$FS" 2>"$T/stderr" || skip "mount not permitted here: $(cat "$T/stderr")"
FSMNTS+=("$FS")
head -c 3145728 /dev/urandom >"$FS/a"
head -c 1000000 /dev/urandom >"$FS/b"
mkdir "$FS/d"
for i in $(seq 1 50); do
	echo "file $i" >"$FS/d/$i"
done
(cd "$FS" && sha256sum a b d/*) >"$T/sums"
sync
umount "$FS" || fail "umount"
loop_detach "$L"

# The file system as the map holds it, read through the FUSE file.
e2fsck -fn "$MNT/mp" >"$T/fsck" 2>&1 || fail "e2fsck -fn: $(cat "$T/fsck")"

loop_attach "$MNT/mp"
L=$LOOPDEV
mount -o ro "$L" "$FS" || fail "second mount"
(cd "$FS" && sha256sum --quiet -c "$T/sums") || fail "checksums after remount"
umount "$FS" || fail "second umount"
loop_detach "$L"

# And the image itself is that file system.
e2fsck -fn "$IMG" >"$T/fsck" 2>&1 || fail "e2fsck -fn on the image: $(cat "$T/fsck")"

finish
