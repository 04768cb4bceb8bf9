#!/usr/bin/env bash
# Description: a path whose session comes back to another LU is not the
# same storage: the target's LUN 1 is replaced by a larger one and the
# sessions dropped; the new logins' READ CAPACITY finds another size, the
# paths stay failed (no I/O reaches the new LU, the map errors without
# queue_if_no_path) until LUN 1 is the original again, then both are
# reinstated by the checker and the device reads the original data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io

OTHER=$T/other.img
truncate -s 32M "$OTHER"
lun_two_portals 16M --policy polling_interval=1
qemu-io -f raw -c 'write -P 0x61 0 1M' "$U" >/dev/null || fail "first write failed"

# swap_lu FILE: LUN 1 of the target is FILE now; every session dropped.
swap_lu()
{
  tgt_adm a --op delete --mode logicalunit --tid 1 --lun 1 ||
    fail "tgtadm could not delete LUN 1"
  tgt_adm a --op new --mode logicalunit --tid 1 --lun 1 -b "$1" || fail "tgtadm new LUN 1"
  tgt_drop_sessions a >/dev/null
}
states() { echo "$(path_field lun "$A" dm_state) $(path_field lun "$B" dm_state)"; }

swap_lu "$OTHER"
wait_for 10 sh -c "[ \"\$(\"$UMPATH\" -S \"$SOCK\" status lun | grep -o ' F ' | wc -l)\" = 2 ]" ||
  fail "paths to another LU not failed: $(states)"
sleep 4	# logins and checker rounds go on: the paths must stay failed
[ "$(states)" = "failed failed" ] || fail "a path to the 32 MiB LU was reinstated: $(states)"
qemu-io -f raw -c 'write -P 0x62 0 4k' "$U" >/dev/null 2>&1 && fail "a write succeeded with no path to the LU"
[ "$(od -An -v -tx1 -N4096 "$OTHER" | tr -s ' \n' '\n\n' | sort -u | grep . | tr '\n' ' ')" = "00 " ] ||
  fail "I/O reached the other LU"

swap_lu "$IMG"
wait_for 15 sh -c "[ \"\$(\"$UMPATH\" -S \"$SOCK\" status lun | grep -o ' A ' | wc -l)\" = 2 ]" ||
  fail "paths not reinstated on the original LU: $(states)"
qemu-io -f raw -c 'read -P 0x61 0 1M' "$U" >"$T/qemu-io.out" 2>&1 ||
  { cat "$T/qemu-io.out"; fail "read after reinstatement failed"; }
grep -q 'Pattern verification failed' "$T/qemu-io.out" && fail "read back wrong data"
stop_daemon || fail "umpathd did not exit 0"
finish
