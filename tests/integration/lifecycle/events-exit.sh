#!/usr/bin/env bash
# Description: `umpath events` tells a stopping daemon from a dying one:
# exit 0 after umpathd ends the stream because it stops (SIGTERM), exit 3
# with a message when the stream ends without that last word (umpathd
# killed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

follow()
{
	u events >"$T/ev.out" 2>"$T/ev.err" &
	EP=$!
	BG_PIDS+=("$EP")
	wait_for 10 eval 'grep -q "follows the events" "$LOG"' || fail "events never subscribed"
}

MAP="0 0 1 1 round-robin 0 1 1 mem:a 1"

start_daemon --mem-store 1M:a --map m="$MAP"
follow
stop_daemon || fail "umpathd exit status $? after SIGTERM"
st=0
wait "$EP" || st=$?
[ "$st" = 0 ] || fail "events after SIGTERM: exit $st, want 0 ($(cat "$T/ev.err"))"
grep -q "umpathd stopping" "$T/ev.out" || fail "events: no last line on a clean stop"

: >"$LOG"
start_daemon --mem-store 1M:a --map m="$MAP"
follow
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
st=0
wait "$EP" || st=$?
[ "$st" = 3 ] || fail "events after SIGKILL: exit $st, want 3"
grep -q "died" "$T/ev.err" || fail "events after SIGKILL: no word on stderr: $(cat "$T/ev.err")"
finish
