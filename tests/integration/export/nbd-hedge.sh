#!/usr/bin/env bash
# Description: umpathd --policy read_hedge=20 over two nbdkit paths, the
# second behind the pause filter: with that server paused, fio's random
# reads through the NBD export all complete well within io_timeout (the
# stuck ones are hedged to the other path); what the device shows is the
# image; `show paths` (and --json, and the metrics) count the hedges won on
# the healthy path; `show config` has the policy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit fio nbdcopy python3
nbdkit --filter=pause null --version >/dev/null 2>&1 || { echo "SKIP: nbdkit pause filter missing"; exit 77; }

IMG=$T/lun.img
head -c 32M /dev/urandom >"$IMG"
pids=()
EXTRA_CLEANUP='for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done'
nbdkit --exit-with-parent -U "$T/a.sock" file "$IMG" 2>"$T/a.log" & pids+=($!)
# --threads=1: see tests/integration/transport-nbd/test-nbd-hang.c.
nbdkit --exit-with-parent -U "$T/b.sock" --threads=1 --filter=pause file "$IMG" \
  pause-control="$T/b.ctl" 2>"$T/b.log" & pids+=($!)
for s in a b; do wait_for test -S "$T/$s.sock" || fail "nbdkit $s did not start"; done
A="nbd+unix:///?socket=$T/a.sock" B="nbd+unix:///?socket=$T/b.sock"

MPORT=$(free_port)
start_daemon --io-timeout 3 --policy read_hedge=20 --policy path_checker=none \
  --metrics "tcp:127.0.0.1:$MPORT" --nbd "unix:$T/nbd.sock" --map lun="0 0 1 1 round-robin 0 2 1 $A 1 $B 1"
u show config | grep -qE '^[[:space:]]*read_hedge 20$' || fail "show config: $(u show config)"

[ "$(pause_ctl "$T/b.ctl" p)" = P ] || fail "could not pause nbdkit b"
fio --name=hedge --ioengine=nbd --uri="nbd+unix:///lun?socket=$T/nbd.sock" --rw=randread \
    --bs=4k --iodepth=8 --size=32M --time_based --runtime=3 --output-format=json \
    --output="$T/fio.json" || fail "fio: $(cat "$T/fio.json")"
max_ns=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["read"]
print(j["clat_ns"]["max"] if j["total_ios"] else -1)' "$T/fio.json")
echo "reads with nbdkit b paused: slowest ${max_ns} ns"
[ "$max_ns" -gt 0 ] || fail "fio read nothing"
# io_timeout is 3 s: a read that was not hedged would take that long.
[ "$max_ns" -lt 1000000000 ] || fail "a read took $max_ns ns with read_hedge 20"

nbdcopy "nbd+unix:///lun?socket=$T/nbd.sock" "$T/through.img"
cmp "$T/through.img" "$IMG" || fail "the device shows other data than the image"

u show paths lun >"$T/paths"
cat "$T/paths"
won=$(awk -v p="$A" '$3 == p { print $14 }' "$T/paths")
[ "${won:-0}" -gt 0 ] || fail "show paths: no hedge won on path a"
u show paths lun --json | python3 -c '
import json, sys
a, b = sys.argv[1:]
paths = {p["path"]: p for p in json.load(sys.stdin)["paths"]}
pa, pb = paths[a], paths[b]
assert pa["hedges_won"] > 0 and pa["hedges_won"] + pa["hedges_lost"] == pb["hedged_reads"], (pa, pb)
# (A read on a can be slow too on a loaded machine: its hedge to the
# paused b then loses.)
assert pb["hedges_won"] + pb["hedges_lost"] == pa["hedged_reads"], (pa, pb)
' "$A" "$B" || fail "show paths --json: hedge counters"
python3 - "http://127.0.0.1:$MPORT/metrics" "$A" <<'PY' || fail "metrics: no hedge won on path a"
import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
won = [l for l in body.splitlines() if l.startswith("umpath_path_hedges_total{")
       and 'path="%s"' % sys.argv[2] in l and 'outcome="won"' in l]
print("\n".join(l for l in body.splitlines() if "hedge" in l and l[0] != "#"))
sys.exit(0 if won and int(won[0].split()[-1]) > 0 else 1)
PY

[ "$(pause_ctl "$T/b.ctl" r)" = R ] || fail "could not resume nbdkit b"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-hedge: ok"
