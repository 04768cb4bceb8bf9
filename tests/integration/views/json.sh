#!/usr/bin/env bash
# Description: --json on show topology, show paths, show maps and status:
# each is valid JSON (python3's parser, and jq when installed) with the
# documented field names, numbers as numbers and booleans as booleans, and
# the values the text views show; names holding quotes, backslashes,
# control characters and bytes that are not UTF-8 come out escaped and
# parse back to what they were (invalid bytes as U+FFFD); with no maps the
# lists are empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

start_daemon --policy path_checker=none --policy no_path_retry=5 --policy failback=60
for v in topology paths maps; do
	expect_out "{
  \"$([ $v = paths ] && echo paths || echo maps)\": []
}" u show $v --json
done
stop_daemon || fail "umpathd did not exit 0"

# A store whose path names need escaping: a quote, a backslash, a control
# character, UTF-8, a byte that is not UTF-8.  (In a table a backslash
# escapes the next character, as in dm tables: it is doubled there.)
ODD=$'q"\\\x01\xc3\xb1\xff'
start_daemon --policy path_checker=none --policy no_path_retry=5 --policy failback=60 \
	--mem-store 64M:a,b,c --mem-store "1M:$ODD" \
	--map mp='1 queue_if_no_path 0 2 1 service-time 0 2 2 mem:a 1 1 mem:b 1 1 round-robin 0 1 1 mem:c 1' \
	--map 'we"ird\name'="0 0 1 1 round-robin 0 1 1 mem:${ODD//\\/\\\\} 1"
u message mp fail_path mem:b
u message mp switch_group 2

for v in topology paths maps; do
	u show $v --json >"$T/$v.json" || fail "show $v --json"
done
u status mp --json >"$T/status.json" || fail "status mp --json"
u status mp >"$T/status.txt" || fail "status mp"
u status 'we"ird\name' --json >"$T/status-odd.json" || fail "status --json of the odd map"
for f in topology paths maps status status-odd; do
	python3 -m json.tool "$T/$f.json" >/dev/null || fail "$f: python3 -m json.tool refuses it"
	if command -v jq >/dev/null; then
		jq -e . "$T/$f.json" >/dev/null || fail "$f: jq refuses it"
	fi
done

python3 - "$T" "$ODD" <<'PY' || fail "JSON values"
import json, os, sys
T = sys.argv[1]
odd = os.fsencode(sys.argv[2]).decode("utf-8", "replace")
ok = True
def check(cond, msg):
    global ok
    if not cond:
        print("JSON:", msg)
        ok = False
def load(n):
    return json.load(open(os.path.join(T, n + ".json")))
def fields(obj, want, where):
    check(set(obj) == set(want), "%s: fields %s, want %s" % (where, sorted(obj), sorted(want)))
    for k, t in want.items():
        if k in obj:
            check(isinstance(obj[k], t) and not (t is int and isinstance(obj[k], bool)),
                  "%s.%s: %r is not %s" % (where, k, obj[k], t.__name__))

odd_map = 'we"ird\\name'
# show maps
maps = {m["name"]: m for m in load("maps")["maps"]}
check(set(maps) == {"mp", odd_map}, "maps: names %s" % sorted(maps))
M = dict(name=str, size=int, sectors=int, valid_paths=int, total_paths=int, nr_groups=int,
         current_group=int, queueing=bool, queued_ios=int, inflight_ios=int, opens=int,
         suspended=bool, failback=str, failback_delay_ms=int, no_path_retry=int)
for n, m in maps.items():
    fields(m, M, "maps[%s]" % n)
mp = maps["mp"]
check((mp["size"], mp["sectors"], mp["valid_paths"], mp["total_paths"], mp["nr_groups"],
       mp["current_group"], mp["queueing"], mp["queued_ios"], mp["opens"], mp["suspended"],
       mp["failback"], mp["no_path_retry"]) ==
      (64 << 20, 131072, 2, 3, 2, 2, True, 0, 0, False, "deferred", 5), "maps[mp]: %s" % mp)
check(mp["failback_delay_ms"] == 60000, "maps[mp]: failback_delay_ms %s" % mp["failback_delay_ms"])
check(maps[odd_map]["size"] == 1 << 20 and maps[odd_map]["queueing"] is False,
      "maps[odd]: %s" % maps[odd_map])

# show paths
P = dict(map=str, group=int, index=int, path=str, dm_state=str, checker=str, checker_state=str,
         checker_result=str,
         failures=int, ios=int, bytes=int, read_bytes=int, write_bytes=int, errors=int,
         path_errors=int, target_errors=int, aborts=int, inflight=int, mean_latency_ns=int,
         p99_latency_ns=int, fence=str, fence_detail=str, unsettled_writes=int,
         held_writes=int, hedges_won=int, hedges_lost=int, hedged_reads=int)
paths = load("paths")["paths"]
for p in paths:
    fields(p, P, "paths[%s]" % p.get("path"))
got = [(p["map"], p["group"], p["index"], p["path"], p["dm_state"], p["checker_state"], p["failures"])
       for p in paths]
want = [("mp", 1, 0, "mem:a", "active", "unchecked", 0),
        ("mp", 1, 1, "mem:b", "failed", "unchecked", 1),
        ("mp", 2, 0, "mem:c", "active", "unchecked", 0),
        (odd_map, 1, 0, "mem:" + odd, "active", "unchecked", 0)]
check(sorted(got) == sorted(want), "paths: %s" % got)

# show topology
maps = {m["name"]: m for m in load("topology")["maps"]}
T_ = dict(name=str, size=int, sectors=int, features=str, hwhandler=str, write_prot=str,
          suspended=bool, current_group=int, valid_paths=int, total_paths=int, path_groups=list)
G = dict(group=int, selector=str, prio=int, dm_state=str, paths=list)
TP = dict(path=str, dm_state=str, checker_state=str, online_state=str, failures=int)
for n, m in maps.items():
    fields(m, T_, "topology[%s]" % n)
    for g in m["path_groups"]:
        fields(g, G, "topology[%s].group" % n)
        for p in g["paths"]:
            fields(p, TP, "topology[%s].path" % n)
mp = maps["mp"]
check((mp["features"], mp["hwhandler"], mp["write_prot"], mp["current_group"], mp["valid_paths"],
       mp["total_paths"]) == ("1 queue_if_no_path", "0", "rw", 2, 2, 3), "topology[mp]: %s" % mp)
groups = [(g["group"], g["selector"], g["prio"], g["dm_state"],
           [(p["path"], p["dm_state"], p["checker_state"], p["online_state"], p["failures"])
            for p in g["paths"]]) for g in mp["path_groups"]]
check(groups == [(1, "service-time 0", 2, "enabled",
                  [("mem:a", "active", "unchecked", "running", 0),
                   ("mem:b", "failed", "unchecked", "running", 1)]),
                 (2, "round-robin 0", 1, "enabled", [("mem:c", "active", "unchecked", "running", 0)])],
      "topology[mp] groups: %s" % groups)
check(maps[odd_map]["path_groups"][0]["paths"][0]["path"] == "mem:" + odd,
      "topology: the odd path came back as %r" % maps[odd_map]["path_groups"][0]["paths"][0]["path"])

# status: the line, and the line taken apart
st = load("status")
line = open(os.path.join(T, "status.txt")).read().strip()
check(line == "%d %d %s %s" % (st["start"], st["length"], st["target"], st["status"]),
      "status: %r vs the text %r" % (st, line))
check((st["name"], st["start"], st["length"], st["target"], st["nr_groups"], st["next_group"],
       st["queue_io"], st["pg_init_count"], st["hwhandler"]) ==
      ("mp", 0, 131072, "multipath", 2, 2, 1, 0, []), "status: %s" % st)
sg = [(g["group"], g["state"], [(p["path"], p["state"], p["fail_count"], p["selector_status"])
                                for p in g["paths"]]) for g in st["groups"]]
check(sg == [(1, "enabled", [("mem:a", "active", 0, [0, 1]), ("mem:b", "failed", 1, [0, 1])]),
             (2, "enabled", [("mem:c", "active", 0, [])])], "status groups: %s" % sg)
so = load("status-odd")
check(so["name"] == odd_map and so["groups"][0]["paths"][0]["path"] == "mem:" + odd,
      "status of the odd map: %s" % so)
sys.exit(0 if ok else 1)
PY

# The raw bytes: no control character and no invalid UTF-8 leaves the
# daemon unescaped.
python3 - "$T" <<'PY' || fail "raw JSON bytes"
import sys
for n in ("topology", "paths", "maps", "status", "status-odd"):
    b = open("%s/%s.json" % (sys.argv[1], n), "rb").read()
    b.decode("utf-8")
    assert not any(c < 0x20 and c != 0x0a for c in b), n
    if n in ("topology", "paths", "status-odd"):
        assert b'q\\"\\\\\\u0001\xc3\xb1\\ufffd' in b, n
PY
stop_daemon || fail "umpathd did not exit 0"
finish
