#!/usr/bin/env bash
# Description: `umpath persist` on maps whose paths carry no SCSI commands
# (an NBD path, a file path, a map mixing them): every verb answers "not
# supported by this transport" naming the path, exits non-zero, and
# nothing changes (the map's table, states and I/O are as before).
set -euo pipefail
. "$(dirname "$0")/../checker/lib.sh"
path a
start_daemon --io-timeout 2 --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 1 1 round-robin 0 2 1 $(uri a) 1 $IMG 1" \
  --map nbdonly="0 0 1 1 round-robin 0 1 1 $(uri a) 1"
io 'write -P 0x33 0 64k' || fail "write before"
before=$("$UMPATH" status lun)

check_refused() {	# MAP PATH ARGS...
  local map=$1 want=$2 st=0
  shift 2
  "$UMPATH" persist "$map" "$@" >"$T/out" 2>"$T/err" || st=$?
  [ "$st" != 0 ] || fail "persist $map $*: exit 0: $(cat "$T/out")"
  grep -qF "$want: persistent reservations not supported by this transport" "$T/err" ||
    fail "persist $map $*: no 'not supported' naming $want: $(cat "$T/err")"
  [ ! -s "$T/out" ] || fail "persist $map $*: output on a refusal: $(cat "$T/out")"
}
for args in "--read-keys" "--read-reservation" "--report-capabilities" "--register 0xabc" \
            "--register-ignore abc" "--unregister" "--reserve 5 --param-rk 0xabc" "--release --param-rk 1" \
            "--clear --param-rk 1" "--preempt 0x1 --param-rk 2" "--preempt-abort 0x1 --param-rk 2"; do
  # shellcheck disable=SC2086
  check_refused nbdonly "$(uri a)" $args
  # lun lists the NBD path first: the first path that cannot is named
  # shellcheck disable=SC2086
  check_refused lun "$(uri a)" $args
done

# Bad input is refused before any path is looked at.
! "$UMPATH" persist lun --reserve 4 --param-rk 1 2>"$T/err" || fail "type 4 accepted"
grep -q "not a reservation type" "$T/err" || fail "type 4: $(cat "$T/err")"
! "$UMPATH" persist lun --register 0xZZ 2>"$T/err" || fail "key 0xZZ accepted"
grep -q "not a key" "$T/err" || fail "key 0xZZ: $(cat "$T/err")"
! "$UMPATH" persist lun --read-keys --clear 2>"$T/err" || fail "two verbs accepted"
! "$UMPATH" persist nosuch --read-keys 2>"$T/err" || fail "unknown map accepted"

# Nothing changed.
[ "$("$UMPATH" status lun)" = "$before" ] || fail "status changed: $before -> $("$UMPATH" status lun)"
qemu-io -f raw "$EXPORT" -c 'read -P 0x33 0 64k' >"$T/qio" 2>&1 || fail "read after: $(cat "$T/qio")"
grep -q "persist lun: map lun: .*not supported by this transport" "$T/daemon.log" ||
  fail "refusals not logged"
stop_daemon || fail "umpathd did not exit 0"
echo "persist unsupported: ok"
