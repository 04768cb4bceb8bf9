#!/usr/bin/env bash
# Description: no_path_retry 3 with a 1 s polling interval fails queued I/O
# after about 3 s without a path; no_path_retry queue keeps it queued until a
# path returns, and then it completes with the right data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
path a; path b

# --- no_path_retry 3 ---
start_daemon --policy polling_interval=1 --policy no_path_retry=3 --io-timeout 2 \
  --nbd "unix:$T/nbd.sock" \
  --map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $(uri a) 1 $(uri b) 1"
qemu-io -f raw "$EXPORT" -c 'write -P 0x5a 0 64k' >/dev/null || fail "first write"
touch "$T/a.broken" "$T/b.broken"
t=$(now)
rc=0
timeout 30 qemu-io -f raw "$EXPORT" -c 'read -P 0x5a 0 64k' >"$T/read.out" 2>&1 || rc=$?
took=$(elapsed "$t")
cat "$T/read.out"
[ $rc -ne 0 ] && grep -qiE 'error|fail' "$T/read.out" || fail "queued read did not fail (rc $rc)"
echo "queued read failed after $took s"
awk -v t="$took" 'BEGIN { exit !(t >= 2.5 && t <= 6) }' || fail "failed after $took s, not about 3 s"
grep -q "no_path_retry" "$T/daemon.log" || fail "no no_path_retry event"
"$UMPATH" table lun | grep -q "^0 131072 multipath 0 " || fail "queueing still on: $("$UMPATH" table lun)"
# a path back: queueing comes back with it
rm -f "$T/a.broken"
for _ in $(seq 50); do "$UMPATH" table lun | grep -q queue_if_no_path && break; sleep 0.1; done
"$UMPATH" table lun | grep -q queue_if_no_path || fail "queueing not restored: $("$UMPATH" table lun)"
stop_daemon || fail "umpathd did not exit 0"
rm -f "$T/ctl"

# --- no_path_retry queue ---
touch "$T/a.broken"
start_daemon --policy polling_interval=1 --policy no_path_retry=queue --io-timeout 2 \
  --nbd "unix:$T/nbd.sock" \
  --map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $(uri a) 1 $(uri b) 1"
qemu-io -f raw "$EXPORT" -c 'read -P 0x5a 0 64k' >"$T/q.out" 2>&1 &
reader=$!
sleep 5
kill -0 $reader 2>/dev/null || { cat "$T/q.out"; fail "queued read ended while no path was usable"; }
status | grep -q " F 1 .* F 1" || status | grep -q "F" || fail "paths not failed: $(status)"
rm -f "$T/a.broken" "$T/b.broken"
t=$(now)
rc=0
wait $reader || rc=$?
cat "$T/q.out"
[ $rc -eq 0 ] && ! grep -qiE 'error|fail|mismatch' "$T/q.out" || fail "queued read did not complete intact"
echo "queued read completed $(elapsed "$t") s after the paths came back, data intact"
stop_daemon || fail "umpathd did not exit 0"
echo "no-path-retry: ok"
