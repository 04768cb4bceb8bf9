#!/usr/bin/env bash
# Description: greedy clients cannot take the daemon's memory.  Two clients
# each send 128 READs of 32 MiB and never read a reply: the daemon stops
# reading them at its per-connection budget and its RSS stays under
# 512 MiB (before: 3 GB and more).  READs of up to 4 GiB get EINVAL
# before any buffer is allocated: the daemon runs with a 2 GiB address
# space (ASan: a 1 GiB allocation limit), where allocating first gave
# ENOMEM.  A global connection limit refuses the client past it, logged.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3 nbdinfo
D=$(dirname "$0")
U="nbd+unix:///mp?socket=$T/nbd.sock"

# No 4 GiB allocation may succeed in this daemon.
if ldd "$UMPATHD" | grep libasan >/dev/null; then	# not -q: pipefail would see ldd's SIGPIPE
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1:max_allocation_size_mb=1024"
  launch() { start_daemon "$@"; }
else
  launch() { : >"$LOG"; "$UMPATHD" --control "$SOCK" "$@" 2>>"$LOG" &
    DPID=$!; prlimit --pid "$DPID" --as=$((2 << 30)) 2>/dev/null || skip "prlimit cannot limit the daemon"
    wait_for test -S "$SOCK" || fail "umpathd did not start"; wait_for grep -q ready "$LOG" || fail "not ready"; }
fi
launch --mem-store 64M:a,b --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' \
  --nbd "unix:$T/nbd.sock" --nbd-max-connections 4

timeout 60 python3 "$D/nbd_readlen.py" "$T/nbd.sock" mp || fail "oversized READs"

python3 "$D/nbd_greedy.py" "$T/nbd.sock" mp 2 30 > "$T/greedy.out" &
GREEDY=$!
BG_PIDS+=("$GREEDY")
wait_for grep -q sent "$T/greedy.out" || fail "greedy clients did not connect"
sleep 4	# time to read more and grow, had it no budget
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
echo "daemon RSS with two greedy clients: $((rss_kib / 1024)) MiB"
[ "$rss_kib" -lt $((512 * 1024)) ] || fail "RSS $((rss_kib / 1024)) MiB >= 512 MiB"
nbdinfo --size "$U" >/dev/null || fail "a third client cannot get in"

# The limit is 4: two greedy clients, two more held, and one too many.
python3 - "$T/nbd.sock" "$D" <<'PY' || fail "connection limit"
import sys, time, subprocess
sys.path.insert(0, sys.argv[2])
import nbdwire as w
held = [w.connect(sys.argv[1], "mp")[0] for _ in range(2)]
r = subprocess.run(["nbdinfo", "--size", "nbd+unix:///mp?socket=" + sys.argv[1]],
                   capture_output=True, timeout=30)
print("fifth client:", "refused" if r.returncode else "let in")
sys.exit(0 if r.returncode else 1)
PY
grep -q "refused: 4 clients connected" "$LOG" || fail "the refusal is not logged"
kill "$GREEDY"; wait "$GREEDY" 2>/dev/null || true
wait_for nbdinfo --size "$U" || fail "no client gets in after the greedy ones left"
kill -0 "$DAEMON_PID" || fail "umpathd died"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-memory: ok"
