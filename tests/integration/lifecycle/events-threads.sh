#!/usr/bin/env bash
# Description: `umpath events` followers are served by the daemon's event
# loop, not a thread each: sixteen followers (the most allowed) add no
# thread to umpathd, every one gets each event, and each ends with exit 0
# and the last line when umpathd stops.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

threads() { ls "/proc/$DPID/task" | wc -l; }

start_daemon --mem-store 1M:a --map m="0 0 1 1 round-robin 0 1 1 mem:a 1"
before=$(threads)
pids=()
for i in $(seq 1 16); do
	u events m >"$T/ev.$i" 2>&1 &
	pids+=($!)
	BG_PIDS+=($!)
done
wait_for 10 eval '[ "$(grep -c "follows the events" "$LOG")" -ge 16 ]' ||
	fail "not every follower subscribed"
sleep 0.2	# request threads of the subscriptions end
after=$(threads)
echo "umpathd threads: $before idle, $after with 16 followers"
[ "$after" -le "$before" ] || fail "16 followers added $((after - before)) threads"

all_saw()
{
	local i

	for i in $(seq 1 16); do
		grep -q path_failed "$T/ev.$i" || return 1
	done
}
u message m fail_path mem:a
wait_for 10 all_saw ||
	fail "a follower missed the event"
stop_daemon || fail "umpathd exit status $? after SIGTERM"
for i in $(seq 1 16); do
	st=0
	wait "${pids[$((i - 1))]}" || st=$?
	[ "$st" = 0 ] || fail "follower $i: exit $st"
	grep -q "umpathd stopping" "$T/ev.$i" || fail "follower $i: no last line"
done
finish
