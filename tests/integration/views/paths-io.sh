#!/usr/bin/env bash
# Description: `umpath show paths` has its header and one line per path of
# every map; the counters grow with I/O done through the NBD export by
# qemu-io (I/Os and bytes at least what was read and written, no errors,
# nothing in flight afterwards, latencies shown); I/O goes only to the
# active group's paths; a failed path shows "failed"; `show maps` sums the
# map up.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io python3

start_daemon --policy path_checker=none --mem-store 64M:a,b,c --nbd "unix:$T/nbd.sock" \
	--map mp='0 0 2 1 round-robin 0 2 1 mem:a 1 mem:b 1 round-robin 0 1 1 mem:c 1'
URI="nbd+unix:///mp?socket=$T/nbd.sock"

u show paths >"$T/before"
head -1 "$T/before" | grep -qE '^map +group +path +dm_st +checker +chk_st +failures +ios +bytes +errors +inflight +lat_mean +lat_p99 +hedge_won +hedge_lost +fence +unsettled +prio$' ||
	fail "show paths header: $(head -1 "$T/before")"
[ "$(wc -l <"$T/before")" = 4 ] || fail "show paths: want a header and 3 lines: $(cat "$T/before")"
for p in a b c; do
	has_line "$T/before" "^mp +[12] +mem:$p +active +none +unchecked +0 +0 +0 +0 +0 +- +- +0 +0 +- +0 +-$" ||
		fail "show paths before I/O, mem:$p: $(cat "$T/before")"
done

# 4 MiB written and read back in 64 KiB requests: 128 I/Os, 8 MiB.
cmds=()
for i in $(seq 0 63); do
	cmds+=(-c "write -P 0x5a $((i * 65536)) 64k")
done
for i in $(seq 0 63); do
	cmds+=(-c "read -P 0x5a $((i * 65536)) 64k")
done
qemu-io -f raw "$URI" "${cmds[@]}" >"$T/qemu-io.out" 2>&1 || fail "qemu-io: $(tail -5 "$T/qemu-io.out")"
! grep -qiE 'fail|error|mismatch|pattern' "$T/qemu-io.out" || fail "qemu-io: $(grep -iE 'fail|error|mismatch|pattern' "$T/qemu-io.out" | head -3)"
u show paths mp >"$T/after"
cat "$T/after"
python3 - "$T/after" <<'PY' || fail "show paths after I/O"
import re, sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
by = {r[2]: r for r in rows}
ok = True
def bad(msg):
    global ok
    print("show paths:", msg)
    ok = False
if set(by) != {"mem:a", "mem:b", "mem:c"}:
    bad("paths %s" % sorted(by))
ios = sum(int(by[p][7]) for p in ("mem:a", "mem:b"))
nbytes = sum(int(by[p][8]) for p in ("mem:a", "mem:b"))
if ios < 128:
    bad("%d I/Os on group 1, want >= 128" % ios)
if nbytes < 8 << 20:
    bad("%d bytes on group 1, want >= %d" % (nbytes, 8 << 20))
for p in ("mem:a", "mem:b"):
    r = by[p]
    if int(r[7]) == 0:
        bad("%s: no I/O (round-robin spreads over both)" % p)
    if r[9] != "0" or r[10] != "0":
        bad("%s: errors %s, in flight %s" % (p, r[9], r[10]))
    for lat in r[11:13]:
        if not re.fullmatch(r"[0-9.]+(ns|us|ms|s)", lat):
            bad("%s: latency %r" % (p, lat))
if by["mem:c"][7:9] != ["0", "0"]:
    bad("mem:c (group 2) got I/O: %s" % by["mem:c"])
sys.exit(0 if ok else 1)
PY

# More I/O: the counters only grow.
ios_of() { u show paths mp | awk -v p="$1" '$3 == p { print $8 }'; }
a1=$(ios_of mem:a)
qemu-io -f raw "$URI" -c 'read 0 64k' -c 'read 64k 64k' >/dev/null 2>&1 || fail "second qemu-io"
a2=$(ios_of mem:a)
[ "$a2" -gt "$a1" ] || fail "mem:a I/Os did not grow: $a1 -> $a2"

u message mp fail_path mem:b
u show paths mp >"$T/failed"
has_line "$T/failed" "^mp +1 +mem:b +failed +none +unchecked +1 " || fail "failed path: $(cat "$T/failed")"
expect_out "name size paths group queueing queued opens failback no_path_retry
mp   64M  2/3   1     off      0      0     manual   queue" u show maps
stop_daemon || fail "umpathd did not exit 0"
finish
