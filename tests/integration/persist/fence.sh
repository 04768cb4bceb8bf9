#!/usr/bin/env bash
# Description: fencing with persistent reservations between two hosts:
# two umpathd (distinct initiator names, as two machines) on one LUN of a
# private tgtd through two portals each.  Host A registers (on both its
# paths) and reserves Write Exclusive - Registrants Only; host B registers
# and preempts A's key.  A's next write reaches A's NBD client as an error
# (RESERVATION CONFLICT is a target error) and fails none of A's paths; B
# writes; the LUN holds B's data; `umpath persist --read-keys` and
# --read-reservation agree on both hosts.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tgt_start
TABLE="0 0 1 1 round-robin 0 2 1 $URI1 1 $URI2 1"
UMPATH_ISCSI_INITIATOR=iqn.2026-12.io.umpath.test:host-a \
  start_daemon --io-timeout 3 --nbd "unix:$T/a.nbd" --map lun="$TABLE"
BLOG=$T/b.log
UMPATH_ISCSI_INITIATOR=iqn.2026-12.io.umpath.test:host-b \
  "$UMPATHD" --control "$T/b.ctl" --io-timeout 3 --nbd "unix:$T/b.nbd" --map lun="$TABLE" 2>>"$BLOG" &
BPID=$!
BG_PIDS+=("$BPID")
a() { "$UMPATH" -S "$SOCK" "$@"; }
b() { "$UMPATH" -S "$T/b.ctl" "$@"; }
wait_for 10 b ls >/dev/null 2>&1 || fail "host B's umpathd did not start: $(cat "$BLOG")"
A_NBD="nbd+unix:///lun?socket=$T/a.nbd"
B_NBD="nbd+unix:///lun?socket=$T/b.nbd"
qio() { qemu-io -f raw "$1" -c "$2" 2>&1; }

a persist lun --report-capabilities >"$T/caps" || fail "A: report-capabilities"
grep -q "Write Exclusive, registrants only: 1" "$T/caps" || fail "capabilities: $(cat "$T/caps")"
a persist lun --register 0xaaaa || fail "A: register"
a persist lun --reserve 5 || fail "A: reserve wr-ex-ro"
a persist lun --read-keys >"$T/a.keys" || fail "A: read-keys"
cat "$T/a.keys"
# One registration per path: each path is its own I_T nexus.
[ "$(grep -c '^ *0xaaaa$' "$T/a.keys")" = 2 ] || fail "A's key not on both paths: $(cat "$T/a.keys")"
a persist lun --read-reservation >"$T/a.res" || fail "A: read-reservation"
grep -q "Key = 0xaaaa" "$T/a.res" && grep -q "type = Write Exclusive, registrants only" "$T/a.res" ||
  fail "A's reservation: $(cat "$T/a.res")"
qio "$A_NBD" 'write -P 0xa1 0 64k' >"$T/out" || fail "A's write under its reservation: $(cat "$T/out")"

b persist lun --register 0xbbbb || fail "B: register"
b persist lun --preempt 0xaaaa || fail "B: preempt A"

# A is fenced: its write fails at its client, and fails none of its paths.
if qio "$A_NBD" 'write -P 0xa2 0 64k' >"$T/out"; then
  fail "A's write after the preemption succeeded: $(cat "$T/out")"
fi
cat "$T/out"
st=$(a status lun)
[ "$(grep -oE "$IQN/1 [AF] " <<<"$st" | grep -c ' A ')" = 2 ] || fail "A's paths failed by a reservation conflict: $st"
! grep -q "path_failed" "$LOG" || fail "A logged a path failure: $(grep path_failed "$LOG")"

qio "$B_NBD" 'write -P 0xb1 0 64k' >"$T/out" || fail "B's write: $(cat "$T/out")"
[ "$(lun_read 0 4)" = b1b1b1b1 ] || fail "the LUN holds $(lun_read 0 4), not B's data"
[ "$(lun_read 65532 4)" = b1b1b1b1 ] || fail "the LUN's end of B's write: $(lun_read 65532 4)"

# Both hosts see the same registrations and reservation.
a persist lun --read-keys >"$T/a.keys" || fail "A: read-keys after"
b persist lun --read-keys >"$T/b.keys" || fail "B: read-keys after"
cat "$T/b.keys"
cmp -s "$T/a.keys" "$T/b.keys" || fail "hosts disagree on keys: A: $(cat "$T/a.keys") B: $(cat "$T/b.keys")"
[ "$(grep -c '^ *0xbbbb$' "$T/b.keys")" = 2 ] && ! grep -q 0xaaaa "$T/b.keys" ||
  fail "keys after the preemption: $(cat "$T/b.keys")"
a persist lun --read-reservation >"$T/a.res"
b persist lun --read-reservation >"$T/b.res"
cmp -s "$T/a.res" "$T/b.res" || fail "hosts disagree on the reservation"
grep -q "Key = 0xbbbb" "$T/b.res" || fail "B does not hold the reservation: $(cat "$T/b.res")"

# A comes back (a new key, whatever it had) and takes the LUN back, all
# options given as mpathpersist's would be.  (tgtd refuses PREEMPT AND
# ABORT: its answer comes back as the command's error, nothing changes.)
a persist lun --register-ignore 0xa2a2 || fail "A: register-ignore"
if a persist lun --preempt-abort 0xbbbb --param-rk 0xa2a2 2>"$T/err"; then
  echo "tgtd took PREEMPT AND ABORT"
else
  grep -q "PERSISTENT RESERVE OUT PREEMPT AND ABORT: " "$T/err" || fail "preempt-abort: $(cat "$T/err")"
fi
a persist lun --preempt 0xbbbb --param-rk 0xa2a2 --prout-type 5 || fail "A: preempt"
b persist lun --read-reservation >"$T/b.res" 2>&1 || true
grep -q "Key = 0xa2a2" "$T/b.res" || fail "A does not hold it back: $(cat "$T/b.res")"
qio "$A_NBD" 'write -P 0xa3 0 64k' >"$T/out" || fail "A's write after taking it back: $(cat "$T/out")"
# A lets go; the LUN is anyone's again.
a persist lun --release || fail "A: release"
a persist lun --unregister || fail "A: unregister"
a persist lun --read-keys | grep -q "NO registered reservation keys" || fail "keys left: $(a persist lun --read-keys)"
kill -TERM "$BPID"; wait_for 20 exited "$BPID" || fail "host B did not stop"
stop_daemon || fail "host A's umpathd did not exit 0"
echo "fence: ok"
