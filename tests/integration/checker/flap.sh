#!/usr/bin/env bash
# Description: flap damping: a path that fails flap_threshold times within
# flap_window is held out for flap_recovery even though its checker says it
# is up, then released and reinstated.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
path a; path b
start_daemon --policy polling_interval=0.5 --policy flap_threshold=3 --policy flap_window=30 \
  --policy flap_recovery=8 --io-timeout 2 --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 1 1 round-robin 0 2 1 $(uri a) 1 $(uri b) 1"

wait_state() {  # wait_state PATH STATE SECONDS
  for _ in $(seq $((${3} * 20))); do [ "$(state_of "$1")" = "$2" ] && return 0; sleep 0.05; done
  return 1
}
for i in 1 2; do
  touch "$T/a.broken"
  wait_state a F 20 || fail "flap $i: a not failed: $(status)"
  rm -f "$T/a.broken"
  wait_state a A 20 || fail "flap $i: a not reinstated: $(status)"
done
# The third failure within the window: a is held out.  Its probes pass
# again as soon as the hold is seen.  Times come from the daemon's log
# (its clock) and one date(1) here, not from how fast this script polls.
touch "$T/a.broken"
wait_for 30 grep -q "path_held" "$T/daemon.log" || fail "no path_held event: $(status)"
rm -f "$T/a.broken"
healed=$(date -u +%H:%M:%S.%3N | awk -F'[:.]' '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }')
io 'read 0 64k' || fail "I/O while a is held out"
wait_for 60 grep -q "path_released" "$T/daemon.log" || fail "no path_released event"
wait_state a A 20 || fail "a not reinstated after flap_recovery: $(status)"
held=$(log_ms path_held)
released=$(log_ms path_released)
# Nothing reinstated a while it was held, though its probes passed.
awk -v p="$T/a.sock" '/path_held/ { h = 1 } /path_released/ { exit }
	h && index($0, p) && /reinstated/ { bad = 1 } END { exit bad }' "$T/daemon.log" ||
  fail "a flapping path was reinstated while held out"
took=$(since_ms "$held" "$released")
ok=$(since_ms "$healed" "$released")
echo "held out for $took ms (flap_recovery 8 s), $ok ms of them with passing probes"
[ "$took" -ge 7500 ] || fail "released too early: after $took ms"
[ "$took" -lt 30000 ] || fail "released only after $took ms"
[ "$ok" -ge 1000 ] || fail "probes passed only $ok ms before the release: the hold was not tested"
stop_daemon || fail "umpathd did not exit 0"
echo "flap: ok"
