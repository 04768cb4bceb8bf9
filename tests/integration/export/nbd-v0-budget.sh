#!/usr/bin/env bash
# Description: a multipath-v0 map through the NBD export over nbdkit paths:
# EIO for fewer errors than the path's failure budget is retried on the
# same path (no failover, no client error); a path that keeps failing is
# failed after exactly its budget, the read served by the other path, and
# the target's own test read reinstates it once nbdkit is healed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit qemu-io
nbdkit --dump-plugin file >/dev/null 2>&1 || { echo "SKIP: nbdkit file plugin missing"; exit 77; }

IMG=$T/lun.img
truncate -s 1M "$IMG"
pids=()
EXTRA_CLEANUP='for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done'
# A: every read takes 100 ms, then fails with EIO while a.broken exists
# (-v: nbdkit logs each error it injects).
nbdkit --exit-with-parent -f -v -U "$T/a.sock" --filter=delay --filter=error file "$IMG" \
  delay-read=100ms error=EIO error-rate=100% error-file="$T/a.broken" 2>"$T/a.log" & pids+=($!)
nbdkit --exit-with-parent -U "$T/b.sock" file "$IMG" 2>"$T/b.log" & pids+=($!)
for s in a b; do wait_for test -S "$T/$s.sock" || fail "nbdkit $s did not start"; done
A="nbd+unix:///?socket=$T/a.sock" B="nbd+unix:///?socket=$T/b.sock"

# A first (priority 1), budget 10, reactivation after 2 s; B budget 1.
start_daemon --nbd "unix:$T/nbd.sock" --map lun="multipath-v0:$A 1 N 1 10 2 $B 0 N 1 0 0"
[ "$(u table lun)" = "0 2048 multipath-v0 $A 1 N 1 10 2 $B 0 N 1 1 0" ] ||
  fail "table: $(u table lun)"
[ "$(u ls)" = "$(printf 'lun\t2048\t0\tmultipath-v0')" ] || fail "ls: $(u ls)"

injected() { grep -c 'injecting EIO' "$T/a.log" || true; }
injected_is() { [ "$(injected)" -eq "$1" ]; }
status_is() { [ "$(u status lun)" = "$1" ]; }
read_lun() { qemu-io -f raw -c 'read -P 0 0 4k' "nbd+unix:///lun?socket=$T/nbd.sock"; }

# 1. A few errors, fewer than the budget: retried on A, the client sees none.
touch "$T/a.broken"
read_lun >"$T/read1.out" 2>&1 & rd=$!
wait_for grep -q 'injecting EIO' "$T/a.log" || fail "no error was injected"
rm "$T/a.broken"
wait "$rd" || { cat "$T/read1.out"; fail "the client saw an error within the budget"; }
n1=$(injected)
[ "$n1" -ge 1 ] && [ "$n1" -lt 10 ] || fail "$n1 errors: not fewer than the budget"
[ "$(u status lun)" = "0 2048 multipath-v0 $A O $B O" ] ||
  fail "a path failed within its budget: $(u status lun)"

# 2. A keeps failing: failed at exactly its budget (the errors of step 1
# spent part of it), the read goes to B.
touch "$T/a.broken"
read_lun >"$T/read2.out" 2>&1 || { cat "$T/read2.out"; fail "the client saw an error"; }
[ "$(injected)" -eq 10 ] || fail "A was failed after $(injected) errors, not 10"
st=$(u status lun)
[[ $st =~ ^"0 2048 multipath-v0 $A I("[0-9]+"/2)[1] $B O"$ ]] || fail "status: $st"
read_lun >/dev/null 2>&1 || fail "a read on B failed"
[ "$(injected)" -eq 10 ] || fail "a failed path got I/O"

# 3. After 2 s a test read: still broken, so A stays failed.
wait_for 5 injected_is 11 || fail "no test read after the reactivation timeout"
st=$(u status lun)
[[ $st =~ "I("[0-9]+"/2)[1]" ]] || fail "a failed test read reinstated A: $st"
# Healed: the next test read brings it back.
rm "$T/a.broken"
wait_for 5 status_is "0 2048 multipath-v0 $A O[1] $B O" ||
  fail "A did not come back: $(u status lun)"
read_lun >/dev/null 2>&1 || fail "a read failed after the reinstatement"
grep -q "reinstated" "$LOG" || fail "no reinstatement in the daemon's log"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-v0-budget: ok"
