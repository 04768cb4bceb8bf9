#!/usr/bin/env bash
# Description: the NBD reference implementation's nbd-tester-client checks
# (read, write, flush, integrity), as nbd_tester.py writes them again:
# Debian's nbd-server package does not ship nbd-tester-client.  Each mode
# pipelines hundreds of requests and matches replies by cookie; integrity
# checks that every read returns the last acknowledged write.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3
start_daemon --mem-store 16M:a,b --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' \
  --nbd "unix:$T/nbd.sock"
for mode in read write flush integrity; do
  timeout 120 python3 "$(dirname "$0")/nbd_tester.py" "$T/nbd.sock" mp "$mode" ||
    fail "nbd-tester $mode"
done
kill -0 "$DAEMON_PID" || fail "umpathd died"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-tester: ok"
