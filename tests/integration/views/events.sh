#!/usr/bin/env bash
# Description: `umpath events` follows events live: fail_path and
# reinstate_path messages give path_failed and path_reinstated lines (text:
# a UTC timestamp, the map, the type, path=, group=, valid_paths=; --json:
# one object a line with stable fields, numbers as numbers, seq increasing);
# `events NAME` sees only NAME's events; followers that disconnect (killed
# mid-stream, while events flow) do not disturb the daemon or the other
# followers and free their slot; at most 16 followers at once, the next is
# refused; at umpathd's stop every follower gets a last line and exits 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

start_daemon --policy path_checker=none --policy flap_threshold=0 --mem-store 64M:a,b,c --mem-store 8M:x \
	--map mp='0 0 2 1 round-robin 0 2 1 mem:a 1 mem:b 1 round-robin 0 1 1 mem:c 1' \
	--map other='0 0 1 1 round-robin 0 1 1 mem:x 1'

# The follower itself, not a subshell around it: $! is what gets killed.
follow() { exec "$UMPATH" -S "$SOCK" events "$@"; }
followers() { grep -c "follows the events" "$T/umpathd.log" || true; }
ended() { grep -c "event stream ended" "$T/umpathd.log" || true; }
# wait_count FUNC N: until FUNC prints at least N.
wait_count() { local f=$1 n=$2; at_least() { [ "$($f)" -ge "$n" ]; }; wait_for 10 at_least; }

follow >"$T/all.txt" 2>"$T/all.err" &
ALL=$!
follow mp --json >"$T/mp.json" 2>"$T/mp.err" &
MPJ=$!
follow other >"$T/other.txt" 2>"$T/other.err" &
OTHER=$!
BG_PIDS+=($ALL $MPJ $OTHER)
wait_count followers 3 || fail "the followers did not start: $(cat "$T"/*.err)"

t0=$(date +%s)
u message mp fail_path mem:b
u message mp reinstate_path mem:b
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
wait_for 10 has_line "$T/all.txt" "^$TS mp path_failed path=mem:b group=1 valid_paths=2$" ||
	fail "no path_failed line: $(cat "$T/all.txt")"
wait_for 10 has_line "$T/all.txt" "^$TS mp path_reinstated path=mem:b group=1 valid_paths=3$" ||
	fail "no path_reinstated line: $(cat "$T/all.txt")"
wait_for 10 has_line "$T/mp.json" '"type":"path_reinstated"' || fail "no JSON path_reinstated"
[ "$(grep -c . "$T/all.txt")" = 2 ] || fail "want exactly 2 lines: $(cat "$T/all.txt")"

# The timestamp is the wall clock's.
python3 - "$T/all.txt" "$t0" <<'PY' || fail "text timestamps"
import datetime, sys
for l in open(sys.argv[1]):
    t = datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert abs(t - int(sys.argv[2])) < 30, (l, sys.argv[2])
PY

python3 - "$T/mp.json" "$t0" <<'PY' || fail "JSON events"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
keys = {"seq", "time", "time_ms", "map", "type", "path", "group", "valid_paths", "detail"}
assert len(evs) == 2, evs
for e in evs:
    assert set(e) == keys, e
    assert isinstance(e["seq"], int) and isinstance(e["time_ms"], int) and isinstance(e["group"], int)
    assert abs(e["time_ms"] / 1000 - int(sys.argv[2])) < 30, e
    assert e["time"].endswith("Z"), e
assert evs[1]["seq"] > evs[0]["seq"], evs
got = [(e["map"], e["type"], e["path"], e["group"], e["valid_paths"], e["detail"]) for e in evs]
assert got == [("mp", "path_failed", "mem:b", 1, 2, None),
               ("mp", "path_reinstated", "mem:b", 1, 3, None)], got
PY

# Only the other map's events for its follower.
u message other fail_path mem:x
wait_for 10 has_line "$T/other.txt" "^$TS other path_failed path=mem:x group=1 valid_paths=0$" ||
	fail "no event for 'other': $(cat "$T/other.txt")"
wait_for 10 has_line "$T/all.txt" " other path_failed " || fail "the all-maps follower missed 'other'"
! grep -q " mp " "$T/other.txt" || fail "the follower of 'other' got mp's events"
! grep -q '"other"' "$T/mp.json" || fail "the follower of mp got other's events"
u message other reinstate_path mem:x

# Followers that go away while events flow.
{ kill -KILL "$OTHER"; wait "$OTHER"; } 2>/dev/null || true
n_end=$(ended)
for i in 1 2 3 4 5 6; do
	follow >/dev/null 2>&1 &
	p=$!
	u message mp fail_path mem:a
	u message mp reinstate_path mem:a
	{ kill -KILL "$p"; wait "$p"; } 2>/dev/null || true
done
# A follower that leaves without reading anything.
python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"events\0\0")
s.close()
PY
u ls >/dev/null || fail "umpathd does not answer after followers left"
wait_count ended $((n_end + 1)) || fail "the daemon did not notice the killed follower"
kill -0 "$DPID" || fail "umpathd died"
u message mp fail_path mem:c
wait_for 10 has_line "$T/all.txt" " mp path_failed path=mem:c " ||
	fail "the remaining follower stopped getting events"
u message mp reinstate_path mem:c

# At most 16 followers: the 17th is refused; their slots come back.
wait_for 10 eval '[ "$(($(followers) - $(ended)))" -le 2 ]' || fail "dead followers still counted"
extra=()
for i in $(seq 14); do
	follow >/dev/null 2>&1 &
	extra+=($!)
	BG_PIDS+=($!)
done
wait_for 10 eval '[ "$(($(followers) - $(ended)))" -ge 16 ]' || fail "16 followers did not start"
st=0
u events >"$T/17.out" 2>"$T/17.err" || st=$?
[ "$st" = 1 ] || fail "the 17th follower: exit $st, want 1"
grep -q "too many event followers" "$T/17.err" || fail "the 17th follower: $(cat "$T/17.err")"
for p in "${extra[@]}"; do
	{ kill -KILL "$p"; wait "$p"; } 2>/dev/null || true
done
wait_for 10 eval '[ "$(($(followers) - $(ended)))" -le 2 ]' || fail "the killed followers' slots were not freed"
follow >"$T/late.txt" 2>&1 &
LATE=$!
BG_PIDS+=($LATE)
wait_for 10 eval '[ "$(($(followers) - $(ended)))" -ge 3 ]' || fail "a new follower was not accepted: $(cat "$T/late.txt")"

# The stop: a last line, exit 0.
stop_daemon || fail "umpathd did not exit 0"
for p in $ALL $MPJ $LATE; do
	st=0
	wait_for 10 exited "$p" || fail "follower $p still running after the stop"
	wait "$p" || st=$?
	[ "$st" = 0 ] || fail "follower $p exited $st"
done
[ "$(tail -1 "$T/all.txt" | cut -d' ' -f2-)" = "umpathd stopping" ] || fail "all: no last line"
[ "$(tail -1 "$T/late.txt" | cut -d' ' -f2-)" = "umpathd stopping" ] || fail "late: no last line"
tail -1 "$T/mp.json" | python3 -c '
import json, sys
e = json.loads(sys.stdin.read())
assert e["type"] == "shutdown" and e["map"] is None, e' || fail "mp.json: no JSON last line"
finish
