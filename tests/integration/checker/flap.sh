#!/usr/bin/env bash
# Description: flap damping: a path that fails flap_threshold times within
# flap_window is held out for flap_recovery even though its checker says it
# is up, then released and reinstated.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
path a; path b
start_daemon --policy polling_interval=0.5 --policy flap_threshold=3 --policy flap_window=30 \
  --policy flap_recovery=4 --io-timeout 2 --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 1 1 round-robin 0 2 1 $(uri a) 1 $(uri b) 1"

wait_state() {  # wait_state PATH STATE SECONDS
  for _ in $(seq $((${3} * 20))); do [ "$(state_of "$1")" = "$2" ] && return 0; sleep 0.05; done
  return 1
}
for i in 1 2; do
  touch "$T/a.broken"
  wait_state a F 5 || fail "flap $i: a not failed: $(status)"
  rm -f "$T/a.broken"
  wait_state a A 5 || fail "flap $i: a not reinstated: $(status)"
done
# the third failure within the window: a is held out
touch "$T/a.broken"
wait_state a F 5 || fail "third failure not seen: $(status)"
t=$(now)
rm -f "$T/a.broken"
wait_for grep -q "path_held" "$T/daemon.log" || fail "no path_held event"
sleep 2.5     # five polling intervals with a healthy probe
[ "$(state_of a)" = F ] || fail "a flapping path was reinstated after $(elapsed "$t") s: $(status)"
io 'read 0 64k' || fail "I/O while a is held out"
wait_state a A 6 || fail "a not reinstated after flap_recovery: $(status)"
took=$(elapsed "$t")
echo "held out for $took s (flap_recovery 4 s)"
awk -v t="$took" 'BEGIN { exit !(t >= 3.5) }' || fail "released too early"
grep -q "path_released" "$T/daemon.log" || fail "no path_released event"
stop_daemon || fail "umpathd did not exit 0"
echo "flap: ok"
