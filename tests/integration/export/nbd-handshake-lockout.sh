#!/usr/bin/env bash
# Description: 70 connections that never finish the handshake do not lock
# a real client out: with 64 negotiating, the oldest is dropped for each
# new client (logged), so nbdinfo and qemu-img still get in; a client
# silent past --nbd-handshake-timeout is dropped (logged).  Before: 64
# slots, 30 s each, and every new client closed without a word.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3 nbdinfo qemu-img
D=$(dirname "$0")
start_daemon --mem-store 16M:a --map mp='0 0 1 1 round-robin 0 1 1 mem:a 1' \
  --nbd "unix:$T/nbd.sock" --nbd-handshake-timeout 30
U="nbd+unix:///mp?socket=$T/nbd.sock"

python3 "$D/nbd_halfopen.py" "$T/nbd.sock" 70 60 > "$T/held.out" &
BG_PIDS+=($!)
wait_for grep -q held "$T/held.out" || fail "could not open 70 connections"
sleep 0.5
timeout 20 nbdinfo --size "$U" || fail "nbdinfo locked out by 70 half-open connections"
timeout 20 qemu-img info -f raw "$U" >/dev/null || fail "qemu-img locked out"
grep -q "dropped after .* of handshake: too many clients negotiating at once" "$LOG" ||
  fail "the eviction is not logged"
kill -KILL "${BG_PIDS[-1]}"
stop_daemon || fail "umpathd did not exit 0"

# A silent client is dropped at the handshake deadline.
start_daemon --mem-store 16M:a --map mp='0 0 1 1 round-robin 0 1 1 mem:a 1' \
  --nbd "unix:$T/nbd.sock" --nbd-handshake-timeout 1
python3 - "$T/nbd.sock" "$D" <<'PY' || fail "a silent client was not dropped within 5 s"
import sys, time
sys.path.insert(0, sys.argv[2])
import nbdwire as w
s = w.dial(sys.argv[1], timeout=5)
w.recvn(s, 18)  # the greeting; then say nothing
t = time.monotonic()
try:
    closed = s.recv(1) == b""
except OSError:
    closed = True
print("dropped after %.1f s" % (time.monotonic() - t))
sys.exit(0 if closed else 1)
PY
wait_for grep -q "dropped: no handshake within 1000 ms" "$LOG" || fail "the timeout is not logged"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-handshake-lockout: ok"
