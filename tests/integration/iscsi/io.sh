#!/usr/bin/env bash
# Description: a map over one LUN through two iSCSI portals of a real tgtd
# carries reads, writes, FUA writes, flushes and write-zeroes through the
# NBD export; both paths take I/O; the LUN's backing file holds exactly
# what the device shows; the paths' checker is tur.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io nbdcopy python3

IMG=$T/lun.img
truncate -s 64M "$IMG"
tgt_start a "$IMG"
A=$TGT_URL1_a B=$TGT_URL2_a
start_daemon --io-timeout 5 --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 1 1 round-robin 0 2 1 $A 1 $B 1"
U=$(nbd_uri lun)

[ "$("$UMPATH" info lun | awk '/^Length/ {print $2}')" != 0 ] || true
qemu-io -f raw -c 'write -P 0xa5 0 4M' -c 'write -P 0x5a -f 8M 1M' -c 'flush' \
  -c 'write -z 1M 512k' -c 'read -P 0xa5 0 1M' -c 'read -P 0 1M 512k' \
  -c 'read -P 0xa5 1536k 2560k' -c 'read -P 0x5a 8M 1M' "$U" >"$T/qemu-io.out" 2>&1 ||
  { cat "$T/qemu-io.out"; fail "qemu-io through the export failed"; }
grep -q 'Pattern verification failed' "$T/qemu-io.out" && fail "read back wrong data"

for p in "$A" "$B"; do
  ios=$(path_field lun "$p" ios)
  [ "$ios" -gt 0 ] || fail "path $p took no I/O"
  chk=$(path_field lun "$p" checker)
  [ "$chk" = tur ] || fail "path $p: checker $chk, not tur (the default for iSCSI)"
done
nbdcopy "$U" "$T/through.img"
cmp "$T/through.img" "$IMG" || fail "the LUN's file differs from the device"
stop_daemon || fail "umpathd did not exit 0"
finish
