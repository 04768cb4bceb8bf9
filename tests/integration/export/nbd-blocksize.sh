#!/usr/bin/env bash
# Description: a map's logical block size comes from its paths and reaches
# its NBD clients.  Two paths to one store with 4 KiB blocks: a loop device
# of 4 KiB sectors (losetup -b 4096, file:...?direct) and nbdkit over the
# same image with blocksize-policy's minimum of 4096.  umpath info says
# 4096, nbdinfo sees NBD_INFO_BLOCK_SIZE minimum 4096, qemu-io's 512-byte
# writes are read-modify-written by the client and land on the image.
# Maps of plain files and a default nbdkit stay at 512.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit nbdinfo qemu-io python3
command -v losetup >/dev/null || skip "no losetup"
LOOPDEV=
EXTRA_CLEANUP='[ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV"; kill $NBDKIT_PIDS 2>/dev/null'
NBDKIT_PIDS=

IMG=$T/disk.img
truncate -s 16M "$IMG"
LOOPDEV=$(losetup -f --show -b 4096 --direct-io=on "$IMG" 2>"$T/losetup.err") ||
  { LOOPDEV=; skip "losetup not permitted here: $(cat "$T/losetup.err")"; }
[ "$(blockdev --getss "$LOOPDEV")" = 4096 ] || skip "$LOOPDEV has no 4 KiB sectors here"

nbdkit -f -U "$T/bs.sock" --filter=blocksize-policy file "$IMG" \
  blocksize-minimum=4096 blocksize-preferred=4096 blocksize-maximum=1M 2>"$T/nbdkit.log" &
NBDKIT_PIDS="$NBDKIT_PIDS $!"
nbdkit -f -U "$T/plain.sock" memory 16M 2>>"$T/nbdkit.log" &
NBDKIT_PIDS="$NBDKIT_PIDS $!"
wait_for test -S "$T/bs.sock" && wait_for test -S "$T/plain.sock" || fail "nbdkit did not start"

NBDP="nbd+unix:///?socket=$T/bs.sock"
truncate -s 16M "$T/plain.img"
start_daemon --io-timeout 5 --nbd "unix:$T/nbd.sock" \
  --map loop="0 0 1 1 round-robin 0 1 1 file:$LOOPDEV?direct 1" \
  --map nbd="0 0 1 1 round-robin 0 1 1 $NBDP 1" \
  --map plain="0 0 1 1 round-robin 0 2 1 $T/plain.img 1 nbd+unix:///?socket=$T/plain.sock 1"

info_bs() { u info "$1" | awk '/^Block size/ {print $3}'; }
nbd_min() { nbdinfo --json "nbd+unix:///$1?socket=$T/nbd.sock" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["block_size_minimum"])'; }
for m in loop nbd; do
  [ "$(info_bs $m)" = 4096 ] || fail "map $m: block size $(info_bs $m), not its path's 4096"
  [ "$(nbd_min $m)" = 4096 ] || fail "map $m: NBD minimum block size $(nbd_min $m), not 4096"
done
[ "$(info_bs plain)" = 512 ] || fail "map plain: block size $(info_bs plain), not 512"
[ "$(nbd_min plain)" = 512 ] || fail "map plain: NBD minimum $(nbd_min plain), not 512"

# Through the loop device (O_DIRECT on 4 KiB sectors): 512-byte writes
# land, read-modify-written by qemu's NBD driver.
qemu-io -f raw -c 'write -P 0x44 0 64k' -c 'write -P 0x55 4608 512' -c 'flush' \
  "nbd+unix:///loop?socket=$T/nbd.sock" >"$T/qemu-io.out" 2>&1 ||
  { cat "$T/qemu-io.out"; fail "qemu-io through the loop map failed"; }
qemu-io -f raw -c 'read -P 0x44 0 4608' -c 'read -P 0x55 4608 512' -c 'read -P 0x44 5120 3072' \
  "nbd+unix:///nbd?socket=$T/nbd.sock" >>"$T/qemu-io.out" 2>&1 ||
  { cat "$T/qemu-io.out"; fail "qemu-io through the nbd map failed"; }
grep -q 'Pattern verification failed' "$T/qemu-io.out" && { cat "$T/qemu-io.out"; fail "read back wrong data"; }
stop_daemon || fail "umpathd did not exit 0"
finish
