#!/usr/bin/env bash
# Description: one client pipelines thousands of requests (2,000 READs of
# 32 KiB, then 5,000 writes, flushes and reads) before reading any reply;
# every request gets its reply.  Before the fix the connection stopped
# after its 128 request slots and never read again, and held the map open
# after the client left.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3
start_daemon --mem-store 64M:a,b --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' \
  --nbd "unix:$T/nbd.sock"
timeout 120 python3 "$(dirname "$0")/nbd_pipeline.py" "$T/nbd.sock" mp || fail "pipelined requests"
kill -0 "$DAEMON_PID" || fail "umpathd died"
# The client has gone: its connection closed and let go of the map.
wait_for "$UMPATH" -S "$SOCK" remove mp || fail "the map is still held open after the client left"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-pipeline: ok"
