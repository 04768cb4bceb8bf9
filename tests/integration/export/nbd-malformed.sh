#!/usr/bin/env bash
# Description: malformed, oversized and out-of-range NBD requests get the
# protocol's error or close that one connection; the daemon and its other
# clients carry on.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3 nbdinfo
start_daemon --mem-store 16M:a,b --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' \
  --nbd "unix:$T/nbd.sock"
python3 "$(dirname "$0")/nbd_raw.py" "$T/nbd.sock" mp || fail "protocol checks"
kill -0 "$DAEMON_PID" || fail "umpathd died"
nbdinfo --can flush "nbd+unix:///mp?socket=$T/nbd.sock" || fail "a new client cannot connect"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-malformed: ok"
