#!/usr/bin/env bash
# Description: umpathd's signals as umpathd(8) documents them: SIGHUP
# re-reads the configuration as `umpath reconfigure` (a map added to the
# file appears, the daemon lives on); SIGUSR1, SIGUSR2, SIGALRM, SIGPWR,
# a real-time signal, SIGPIPE and SIGXFSZ are ignored (the first ones
# logged); SIGQUIT stops it as SIGTERM does (exit 0, its control socket
# gone).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

conf()
{
	{
		echo "multipaths {"
		for m in "$@"; do
			printf '\tmultipath {\n\t\talias %s\n\t\tpaths mem:a\n\t}\n' "$m"
		done
		echo "}"
	} >"$T/umpath.conf"
}

conf one
start_daemon --mem-store 1M:a --config "$T/umpath.conf"
u info one >/dev/null || fail "map one from the file is missing"

conf one two
kill -HUP "$DPID"
if ! wait_for 10 eval 'u info two >/dev/null 2>&1'; then
	fail "SIGHUP: map two added to the file did not appear"
fi
alive || fail "SIGHUP ended umpathd"
grep -q "SIGHUP\|Hangup" "$LOG" || fail "SIGHUP: nothing in the log"

for s in USR1 ALRM PWR RTMIN+3 PIPE XFSZ USR2; do
	kill -"$s" "$DPID"
done
# The signals are taken in order: once a request after them is answered,
# they were seen.
wait_for 5 eval 'grep -q "User defined signal 2: ignored" "$LOG"' ||
	fail "SIGUSR2 not logged as ignored"
u ls >/dev/null 2>&1 || fail "umpathd does not answer after the ignored signals"
alive || fail "an ignored signal ended umpathd"
grep -q "Alarm clock: ignored" "$LOG" || fail "SIGALRM not logged as ignored"

kill -QUIT "$DPID"
st=0
if wait_for 20 exited "$DPID"; then
	wait "$DPID" || st=$?
	DPID=
	[ "$st" = 0 ] || fail "SIGQUIT: exit status $st, want 0"
	[ ! -e "$SOCK" ] || fail "SIGQUIT: control socket left behind"
	grep -q "stopped" "$LOG" || fail "SIGQUIT: no orderly stop in the log"
else
	fail "SIGQUIT: umpathd still runs after 20 s"
fi
finish
