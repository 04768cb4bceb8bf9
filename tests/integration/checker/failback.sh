#!/usr/bin/env bash
# Description: with failback immediate, I/O returns to the better (first)
# group as soon as one of its paths is back; with failback manual it stays
# on the second group until the operator switches.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
path a; path b
current_group() { status | awk '{ print $9 }'; }   # after "0 SECTORS multipath 2 q c 0 NR"
ios_of() { qemu-io -f raw "$EXPORT" -c 'read 0 4k' >/dev/null 2>&1 || true; }

for mode in immediate manual; do
  start_daemon --policy polling_interval=1 --policy failback=$mode --io-timeout 2 \
    --nbd "unix:$T/nbd.sock" \
    --map lun="0 0 2 1 round-robin 0 1 1 $(uri a) 1 round-robin 0 1 1 $(uri b) 1"
  io 'read 0 64k' || fail "first read"
  [ "$(current_group)" = 1 ] || fail "not on group 1 at start: $(status)"
  touch "$T/a.broken"
  io 'read 0 64k' || fail "read while a is broken"
  [ "$(current_group)" = 2 ] || fail "I/O did not move to group 2: $(status)"
  rm -f "$T/a.broken"
  for _ in $(seq 50); do [ "$(state_of a)" = A ] && break; sleep 0.1; done
  [ "$(state_of a)" = A ] || fail "a not reinstated: $(status)"
  sleep 1.2    # a tick of the checker after the reinstatement
  io 'read 0 64k' || fail "read after a is back"
  if [ $mode = immediate ]; then
    [ "$(current_group)" = 1 ] || fail "failback immediate: still on group $(current_group): $(status)"
    grep -q "failback" "$T/daemon.log" || fail "no failback event"
    status | grep -qF " A 0 1 0 $(uri a) A " || fail "group 1 not active: $(status)"
  else
    [ "$(current_group)" = 2 ] || fail "failback manual: moved to group $(current_group): $(status)"
    "$UMPATH" message lun switch_group 1
    io 'read 0 64k'
    [ "$(current_group)" = 1 ] || fail "switch_group 1 did not take: $(status)"
  fi
  echo "failback $mode: ok"
  stop_daemon || fail "umpathd did not exit 0"
  rm -f "$T/ctl"
done
echo "failback: ok"
