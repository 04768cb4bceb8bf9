#!/usr/bin/env bash
# Description: the path checker fails a path whose probe fails before any
# client I/O does, and reinstates a path that comes back within two polling
# intervals (1 s here), with no message from anyone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
path a; path b
start_daemon --policy polling_interval=1 --policy max_polling_interval=4 --io-timeout 2 \
  --nbd "unix:$T/nbd.sock" --map lun="0 0 1 1 round-robin 0 2 1 $(uri a) 1 $(uri b) 1"

# a breaks: with no client I/O at all, the checker notices within ~2 intervals
touch "$T/a.broken"
t=$(now)
for _ in $(seq 60); do [ "$(state_of a)" = F ] && break; sleep 0.1; done
[ "$(state_of a)" = F ] || fail "checker did not fail the broken path: $(status)"
echo "failed by the checker after $(elapsed "$t") s"
grep -q "checker_down" "$T/daemon.log" || fail "no checker_down event logged"

# a heals: reinstated within two polling intervals (+ a tick of margin)
rm -f "$T/a.broken"
t=$(now)
for _ in $(seq 40); do [ "$(state_of a)" = A ] && break; sleep 0.05; done
took=$(elapsed "$t")
[ "$(state_of a)" = A ] || fail "path not reinstated: $(status)"
echo "reinstated by the checker after $took s"
awk -v t="$took" 'BEGIN { exit !(t <= 2.2) }' || fail "reinstated after $took s, more than two polling intervals"
io 'read 0 64k' || fail "I/O after reinstatement"

# b's server dies and comes back: the checker reconnects it and reinstates it
kill -KILL "$(cat "$T/b.pid")"
for _ in $(seq 60); do [ "$(state_of b)" = F ] && break; sleep 0.1; done
[ "$(state_of b)" = F ] || fail "dead server's path not failed: $(status)"
path b
t=$(now)
for _ in $(seq 150); do [ "$(state_of b)" = A ] && break; sleep 0.1; done
[ "$(state_of b)" = A ] || fail "restarted server's path not reinstated: $(status)"
echo "restarted server's path reinstated after $(elapsed "$t") s (transport reconnect backoff included)"
stop_daemon || fail "umpathd did not exit 0"
echo "reinstate: ok"
