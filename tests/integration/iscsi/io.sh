#!/usr/bin/env bash
# Description: a map over one LUN through two iSCSI portals of a real tgtd
# carries reads, writes, FUA writes, flushes and write-zeroes through the
# NBD export; both paths take I/O; the LUN's backing file holds exactly
# what the device shows; the paths' checker is tur.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io nbdcopy python3

lun_two_portals 64M

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
