#!/usr/bin/env bash
# Description: a target error goes back to the client and fails no path:
# the LUN made read-only answers writes with CHECK CONDITION / DATA PROTECT;
# the NBD client's write fails (EPERM), both iSCSI paths stay active, and
# reads keep working.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io python3

lun_two_portals 16M

qemu-io -f raw -c 'write -P 0x3c 0 1M' "$U" >/dev/null || fail "write before read-only failed"
tgt_adm a --op update --mode logicalunit --tid 1 --lun 1 --params readonly=1 ||
  fail "tgtadm could not make the LUN read-only"

for i in 1 2 3 4; do	# each path gets some: round-robin
  if qemu-io -f raw -c "write -P 0x77 $((i * 64))k 64k" "$U" >"$T/w.out" 2>&1; then
    cat "$T/w.out"
    fail "write $i to a read-only LUN succeeded"
  fi
  grep -q "Operation not permitted" "$T/w.out" ||
    { cat "$T/w.out"; fail "write $i failed, but not with EPERM (DATA PROTECT -> EROFS -> NBD_EPERM)"; }
done
status=$("$UMPATH" status lun)
echo "$status"
grep -q "$A A" <<<"$status" || fail "path A is not active after target errors"
grep -q "$B A" <<<"$status" || fail "path B is not active after target errors"
qemu-io -f raw -c 'read -P 0x3c 0 1M' "$U" >"$T/r.out" 2>&1 || { cat "$T/r.out"; fail "read failed"; }
grep -q 'Pattern verification failed' "$T/r.out" && fail "read back wrong data"
stop_daemon || fail "umpathd did not exit 0"
finish
