#!/usr/bin/env bash
# Description: GET /metrics parses with prometheus_client's parser and
# says what `umpath show paths --json` and `show maps --json` say, for
# every map and path: before I/O, after real I/O through the NBD export
# (qemu-io), after a path fails on a path error, after a target error,
# and while I/O waits in a queue_if_no_path map with no path; HELP and
# TYPE once per family; a map name with a double quote and a backslash,
# and a path name with those, a control character, UTF-8 and a byte that
# is not UTF-8 are escaped (the last as U+FFFD, as show --json does).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io

# A quote, a backslash, a control character, UTF-8, a byte that is not
# UTF-8 (doubled backslash: a table word's escape).
ODD=$'q"\\\x01\xc3\xb1\xff'
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/metrics"
start_daemon --policy path_checker=none --mem-store 64M:a,b,c,d --nbd "unix:$T/nbd.sock" \
	--metrics "tcp:127.0.0.1:$PORT" \
	--map mp='0 0 2 1 round-robin 0 2 1 mem:a 1 mem:b 1 round-robin 0 1 1 mem:c 1' \
	--map q='1 queue_if_no_path 0 1 1 round-robin 0 1 1 mem:d 1' \
	--mem-store "1M:$ODD" --map 'we"ird\name'="0 0 1 1 round-robin 0 1 1 mem:${ODD//\\/\\\\} 1"
MP="nbd+unix:///mp?socket=$T/nbd.sock"

check_against_views "$URL"
grep -qF 'umpath_map_paths{map="we\"ird\\name"} 1' "$T/scrape" ||
	fail "the odd map name is not escaped: $(grep 'umpath_map_paths' "$T/scrape")"
want=$(printf '%s' 'umpath_path_active{map="we\"ird\\name",path="mem:q\"\\' $'\x01\xc3\xb1\xef\xbf\xbd' '"} 1')
grep -qF "$want" "$T/scrape" ||
	fail "the odd path name is not escaped: $(grep -a 'umpath_path_active' "$T/scrape" | cat -v)"

# 1 MiB written and read in 64 KiB requests: 32 I/Os on group 1.
cmds=()
for i in $(seq 0 15); do
	cmds+=(-c "write -P 0x5a $((i * 65536)) 64k" -c "read -P 0x5a $((i * 65536)) 64k")
done
qemu-io -f raw "$MP" "${cmds[@]}" >"$T/qemu-io.out" 2>&1 || fail "qemu-io: $(tail -3 "$T/qemu-io.out")"
check_against_views "$URL"
"$PY" - "$T/scrape" <<'PY' || fail "after I/O"
import sys
from prometheus_client.parser import text_string_to_metric_families
v = {(s.name, tuple(sorted(s.labels.items()))): s.value
     for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples}
def get(name, path, **extra):
    return v[(name, tuple(sorted(dict(map="mp", path=path, **extra).items())))]
ios = sum(get("umpath_path_ios_total", p) for p in ("mem:a", "mem:b"))
rd = sum(get("umpath_path_read_bytes_total", p) for p in ("mem:a", "mem:b"))
wr = sum(get("umpath_path_written_bytes_total", p) for p in ("mem:a", "mem:b"))
ok = ios >= 32 and rd >= 1 << 20 and wr >= 1 << 20
ok &= get("umpath_path_io_seconds_count", "mem:a") > 0
ok &= get("umpath_path_io_seconds_bucket", "mem:a", le="68.719476736") == get("umpath_path_io_seconds_count", "mem:a")
if not ok:
    print("after 1 MiB written and read: ios %d read %d written %d" % (ios, rd, wr))
sys.exit(0 if ok else 1)
PY

# A path error: mem:b fails EIO, the map fails it and retries on mem:a.
u mem fault mem:b error 5 || fail "mem fault b"
qemu-io -f raw "$MP" -c 'write -P 0x11 0 64k' -c 'write -P 0x11 64k 64k' -c 'read 0 64k' \
	-c 'read 64k 64k' >"$T/qemu-io.out" 2>&1 || fail "qemu-io with mem:b failing: $(tail -3 "$T/qemu-io.out")"
check_against_views "$URL"
grep -qE '^umpath_path_active\{map="mp",path="mem:b"\} 0$' "$T/scrape" || fail "mem:b not failed in the scrape"
grep -qE '^umpath_path_errors_total\{map="mp",path="mem:b",class="path"\} [1-9]' "$T/scrape" ||
	fail "no path error of mem:b: $(grep 'errors_total.*mem:b' "$T/scrape")"
grep -qE '^umpath_path_failures_total\{map="mp",path="mem:b"\} 1$' "$T/scrape" || fail "mem:b fail count"
grep -qE '^umpath_map_valid_paths\{map="mp"\} 2$' "$T/scrape" || fail "mp valid paths"

# A target error: ENOSPC from mem:a goes back to the client, mem:a stays.
u mem fault mem:a error 28 || fail "mem fault a"
qemu-io -f raw "$MP" -c 'write 0 4k' >"$T/qemu-io.out" 2>&1 || true
u mem fault mem:a online || fail "mem fault a online"
check_against_views "$URL"
grep -qE '^umpath_path_errors_total\{map="mp",path="mem:a",class="target"\} [1-9]' "$T/scrape" ||
	fail "no target error of mem:a: $(grep 'errors_total.*mem:a' "$T/scrape")"
grep -qE '^umpath_path_active\{map="mp",path="mem:a"\} 1$' "$T/scrape" || fail "mem:a failed by a target error"

# Queued I/O: q has no path left; a read waits until mem:d is back.
u message q fail_path mem:d || fail "fail_path mem:d"
qemu-io -f raw "nbd+unix:///q?socket=$T/nbd.sock" -c 'read 0 4k' >"$T/q.out" 2>&1 &
QPID=$!
BG_PIDS+=("$QPID")
queued() { u show maps --json | "$PY" -c 'import json,sys; sys.exit(0 if [m for m in json.load(sys.stdin)["maps"] if m["name"] == "q" and m["queued_ios"] > 0] else 1)'; }
wait_for 20 queued || fail "the read on q was not queued"
check_against_views "$URL"
grep -qE '^umpath_map_queued_ios\{map="q"\} [1-9]' "$T/scrape" || fail "no queued I/O of q in the scrape"
grep -qE '^umpath_map_queue_if_no_path\{map="q"\} 1$' "$T/scrape" || fail "q's queue_if_no_path"
grep -qE '^umpath_map_valid_paths\{map="q"\} 0$' "$T/scrape" || fail "q's valid paths"
u message q reinstate_path mem:d || fail "reinstate_path mem:d"
wait_for 20 exited "$QPID" || fail "the queued read did not end after reinstate_path"
wait "$QPID" || fail "the queued read failed: $(cat "$T/q.out")"

stop_daemon || fail "umpathd did not exit 0"
finish
