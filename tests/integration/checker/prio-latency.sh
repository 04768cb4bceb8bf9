#!/usr/bin/env bash
# Description: prio path_latency on real NBD paths: two nbdkit servers on
# one image, the one listed first 4 ms slower on reads (nbdkit's delay
# filter).  umpathd reads each path 20 times at start; group_by_prio puts
# the fast path's group first, `show paths` shows it the higher priority,
# and client I/O goes to it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nbdkit --dump-plugin file >/dev/null 2>&1 || skip "nbdkit file plugin missing"
nbdkit --filter=delay null --dump-plugin >/dev/null 2>&1 || skip "nbdkit delay filter missing"

rm -f "$T/slow.sock"
nbdkit --exit-with-parent -U "$T/slow.sock" --filter=delay file "$IMG" rdelay=4ms \
  2>>"$T/slow.log" &
BG_PIDS+=($!); disown $!
wait_for test -S "$T/slow.sock" || fail "nbdkit slow did not start"
path fast

cat >"$T/umpath.conf" <<X
multipaths {
	multipath {
		alias lun
		path_grouping_policy group_by_prio
		prio path_latency
		prio_args "io_num=20 base_num=10"
		path $(uri slow)
		path $(uri fast)
	}
}
X
start_daemon --config "$T/umpath.conf" --nbd "unix:$T/nbd.sock"

# Two groups, the fast path's first.
tbl=$("$UMPATH" table lun)
first=$(echo "$tbl" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^nbd/) { print $i; exit } }')
[ "$first" = "$(uri fast)" ] || fail "first group's path is $first, want the fast one: $tbl"
echo "$tbl" | grep -q " 0 2 1 " || fail "not two groups: $tbl"

prio() {
  "$UMPATH" show paths lun --json | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin)["paths"]:
    if p["path"] == sys.argv[1]:
        print(p["prio"])' "$(uri "$1")"
}
pf=$(prio fast); ps=$(prio slow)
# 4 ms is 3.6 decades of 1 us: priority 8 - 3.6, 4; the fast one's above.
[ "$ps" -ge 3 ] && [ "$ps" -le 5 ] || fail "slow path prio $ps, want 3 to 5"
[ "$pf" -gt "$ps" ] || fail "fast path prio $pf not above the slow one's $ps"

# Client I/O goes to the first group.
io "write -P 0x5a 0 64k" || fail "write through the export"
io "read -P 0x5a 0 64k" || fail "read back"
n_fast=$("$UMPATH" show paths lun --json | /usr/bin/python3 -c '
import json, sys
print(sum(p["ios"] for p in json.load(sys.stdin)["paths"] if p["group"] == 1))')
[ "$n_fast" -ge 2 ] || fail "the first group took $n_fast I/Os"
finish
