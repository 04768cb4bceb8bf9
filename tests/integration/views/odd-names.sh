#!/usr/bin/env bash
# Description: paths with a space or a backslash round-trip through the
# CLI: `table` and `status` print them escaped as the table parser reads
# them (one line each), so what `table` prints reloads as the same table;
# a path with an escaped newline or tab is refused at create (it made
# table/status print several lines) with the path and the reason; the
# event stream prints such a path escaped the same way.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_daemon --policy path_checker=none --mem-store 1M:'b c','x\y'
u create odd '0 0 1 1 round-robin 0 2 1 mem:b\ c 1 mem:x\\y 1' || fail "create"

want='0 2048 multipath 0 0 1 1 round-robin 0 2 1 mem:b\ c 1 mem:x\\y 1'
[ "$(u table odd)" = "$want" ] || fail "table: $(u table odd)"
[ "$(u status odd | wc -l)" = 1 ] || fail "status is not one line"
u status odd | grep -qF ' mem:b\ c A 0 mem:x\\y A 0' || fail "status: $(u status odd)"

# The event stream prints the path escaped the same way, on one word.
"$UMPATH" -S "$SOCK" events odd >"$T/ev.txt" 2>"$T/ev.err" &
BG_PIDS+=($!)
wait_for 10 has_line "$T/umpathd.log" "follows the events" || fail "the follower did not start"
u message odd fail_path 'mem:b c' || fail "fail_path of the odd path"
wait_for 10 has_line "$T/ev.txt" " odd path_failed " || fail "no path_failed: $(cat "$T/ev.txt")"
grep -qF ' odd path_failed path=mem:b\ c group=1 valid_paths=1' "$T/ev.txt" ||
	fail "event line: $(cat "$T/ev.txt")"
u message odd reinstate_path 'mem:b c' || fail "reinstate_path of the odd path"

# What table printed loads back as itself.
tbl=$(u table odd | cut -d' ' -f4-)
u reload odd "$tbl" || fail "reload of the printed table"
[ "$(u table odd)" = "$want" ] || fail "after reload: $(u table odd)"

# An escaped newline or tab: refused, nothing created.
st=0
u create nl $'0 0 1 1 round-robin 0 1 0 mem:a\\\nb' 2>"$T/err" || st=$?
[ "$st" = 1 ] || fail "newline path: exit $st"
[ "$(cat "$T/err")" = 'umpath: create nl: error getting device: mem:a\x0ab: a path may not contain tabs or line breaks' ] ||
	fail "newline path: $(cat "$T/err")"
st=0
u create tab $'0 0 1 1 round-robin 0 1 0 mem:a\\\tb' 2>/dev/null || st=$?
[ "$st" = 1 ] || fail "tab path: exit $st"
[ "$(u ls | cut -f1)" = odd ] || fail "ls: $(u ls)"
finish
