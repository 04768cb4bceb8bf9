#!/usr/bin/env bash
# Description: a map whose path string holds a space (written "\ " in its
# table) is shown like any other by show topology|paths|maps and status
# --json, and does not make the views of the other maps fail; the status
# line inside status --json is the one `umpath status` prints.  (The views
# used to take the engine's TABLE line apart at blanks, and refused every
# map when one path had a space.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

start_daemon --policy path_checker=none \
	--mem-store 1M:a,'b c' --mem-store 1M:d \
	--map odd='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b\ c 1' \
	--map plain='0 0 1 1 service-time 0 1 2 mem:d 1 1'
u message odd fail_path 'mem:b c' || fail "fail_path of the path with a space"

u show topology >"$T/topo.txt" || fail "show topology: $(cat "$T/topo.txt")"
grep -q '^  `- mem:b c failed unchecked running$' "$T/topo.txt" ||
	fail "topology: no line for 'mem:b c':"$'\n'"$(cat "$T/topo.txt")"
grep -q "^plain size=1.0M features='0' hwhandler='0' wp=rw$" "$T/topo.txt" ||
	fail "topology: the other map is missing:"$'\n'"$(cat "$T/topo.txt")"
grep -q "policy='round-robin 0' prio=1 status=enabled" "$T/topo.txt" ||
	fail "topology: odd's group:"$'\n'"$(cat "$T/topo.txt")"

u show paths >"$T/paths.txt" || fail "show paths"
[ "$(grep -c '^odd ' "$T/paths.txt")" = 2 ] || fail "show paths: odd has not 2 paths"
grep -qE '^odd +1 +mem:b c +failed ' "$T/paths.txt" || fail "show paths: no 'mem:b c' row"
u show maps >/dev/null || fail "show maps"

u show paths --json >"$T/paths.json" || fail "show paths --json"
u status odd --json >"$T/status.json" || fail "status odd --json"
line=$(u status odd) || fail "status odd"
python3 - "$T" "$line" <<'PY' || fail "status --json of odd"
import json, os, sys
T, line = sys.argv[1], sys.argv[2]
st = json.load(open(os.path.join(T, "status.json")))
paths = [p["path"] for g in st["groups"] for p in g["paths"]]
assert paths == ["mem:a", "mem:b c"], paths
assert st["groups"][0]["paths"][1]["state"] == "failed"
assert st["groups"][0]["paths"][1]["fail_count"] == 1
assert line.endswith(" " + st["status"]), (line, st["status"])
ps = json.load(open(os.path.join(T, "paths.json")))["paths"]
assert [p["path"] for p in ps if p["map"] == "odd"] == ["mem:a", "mem:b c"]
PY
stop_daemon || fail "umpathd did not exit 0"
finish
