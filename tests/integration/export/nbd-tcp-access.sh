#!/usr/bin/env bash
# Description: who may use the NBD export over TCP.  A port out of range
# (tcp:999999) is refused with the reason, not wrapped to 16959;
# --nbd-allow (or the config file's nbd_allow) lets listed peers in and
# refuses (and logs) the rest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3 nbdinfo
MAP=(--mem-store 16M:a --map mp='0 0 1 1 round-robin 0 1 1 mem:a 1')

: >"$LOG"
if timeout 10 "$UMPATHD" --control "$SOCK" "${MAP[@]}" --nbd tcp:999999 2>>"$LOG"; then
  fail "tcp:999999 accepted"
fi
grep -q "the port must be a number in 1..65535, not '999999'" "$LOG" || fail "no reason for tcp:999999"
if timeout 10 "$UMPATHD" --control "$SOCK" "${MAP[@]}" --nbd tcp --nbd-allow 10.0.0.0/33 2>>"$LOG"; then
  fail "a bad --nbd-allow accepted"
fi

PORT=$(free_port)
start_daemon "${MAP[@]}" --nbd "tcp:127.0.0.1:$PORT" --nbd-allow 10.0.0.0/8 --nbd-allow ::1
if timeout 10 nbdinfo --size "nbd://127.0.0.1:$PORT/mp" 2>/dev/null; then
  fail "a peer outside --nbd-allow got in"
fi
grep -q "127.0.0.1:[0-9]*: refused: not in the allowed peers" "$LOG" || fail "the refusal is not logged"
stop_daemon || fail "umpathd did not exit 0"

# The same list from the config file; a bad value names file and line.
printf 'defaults {\n\tnbd_allow 10.0.0.0/8 ::1\n\tnbd_max_connections 8\n}\n' >"$T/umpath.conf"
PORT=$(free_port)
start_daemon "${MAP[@]}" --config "$T/umpath.conf" --nbd "tcp:127.0.0.1:$PORT"
if timeout 10 nbdinfo --size "nbd://127.0.0.1:$PORT/mp" 2>/dev/null; then
  fail "a peer outside the file's nbd_allow got in"
fi
stop_daemon || fail "umpathd did not exit 0"
printf 'defaults {\n\tnbd_conn_budget lots\n}\n' >"$T/bad.conf"
if "$UMPATHD" --control "$SOCK" --config "$T/bad.conf" 2>"$T/bad.err"; then
  fail "nbd_conn_budget lots accepted"
fi
grep -q "bad.conf:2: nbd_conn_budget: expected a size" "$T/bad.err" || fail "no reason: $(cat "$T/bad.err")"

PORT=$(free_port)
start_daemon "${MAP[@]}" --nbd "tcp:127.0.0.1:$PORT" --nbd-allow 10.0.0.0/8 --nbd-allow 127.0.0.0/8
timeout 10 nbdinfo --size "nbd://127.0.0.1:$PORT/mp" || fail "an allowed peer was refused"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-tcp-access: ok"
