#!/usr/bin/env bash
# Description: a path listed 100 times in a map, failed by one fail_path
# message, shows in `umpath events` as one path_failed line ending at the
# truth (valid_paths=0), and its reinstatement as one line with
# valid_paths=100; no event is silently dropped on the way (the engine
# once stopped at 64 events per lock hold, the last saying valid_paths=36).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

table="0 0 1 1 round-robin 0 100 0$(printf ' mem:a%.0s' $(seq 100))"
start_daemon --policy path_checker=none --policy flap_threshold=0 --mem-store 8M:a \
	--map mp="$table"

follow() { exec "$UMPATH" -S "$SOCK" events "$@"; }
follow mp >"$T/ev.txt" 2>"$T/ev.err" &
BG_PIDS+=($!)
wait_for 10 has_line "$T/umpathd.log" "follows the events" || fail "the follower did not start"

u message mp fail_path mem:a
u message mp reinstate_path mem:a
wait_for 10 has_line "$T/ev.txt" " mp path_reinstated " || fail "no path_reinstated: $(cat "$T/ev.txt")"
has_line "$T/ev.txt" " mp path_failed path=mem:a group=1 valid_paths=0$" ||
	fail "path_failed does not end at valid_paths=0: $(cat "$T/ev.txt")"
has_line "$T/ev.txt" " mp path_reinstated path=mem:a group=1 valid_paths=100$" ||
	fail "path_reinstated does not end at valid_paths=100: $(cat "$T/ev.txt")"
[ "$(grep -c . "$T/ev.txt")" = 2 ] || fail "want one line per message: $(cat "$T/ev.txt")"
! u status mp | grep -q " F " || fail "a path still failed: $(u status mp)"
finish
