#!/usr/bin/env bash
# Description: show status counts the paths by checker state in
# multipathd's words, with the paths, maps and busy lines; show daemon
# says "pid N idle"; fail path fails a path in its map and keeps the
# checker from reinstating it until reinstate path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_file_paths

truncate -s 16M "$T/a.img"
A=$T/a.img
B="file:$T/a.img?direct"
start_daemon --policy polling_interval=0.5 --policy max_polling_interval=0.5 \
	--map "mp=0 0 1 1 round-robin 0 2 1 $A 1 $B 1"

expect_out "pid $DPID idle" u show daemon
wait_for 10 eval '[ "$(u show status | sed -n 2p)" = "up                  2" ]' ||
	fail "show status: $(u show status)"
expect_out "path checker states:
up                  2

paths: 2
maps: 1
busy: False" u show status

expect_out "mp: path failed" u fail path "$B"
# Three checker intervals: the checker leaves an operator's failure alone.
sleep 1.5
expect_out "$A active
$B failed" u show paths raw format "%d %t"
expect_out "mp: path reinstated" u reinstate path "$B"
expect_out "$A active
$B active" u show paths raw format "%d %t"
# And checks it again: a checker-failed path would be reinstated.
u message mp fail_path "$B" >/dev/null
wait_for 10 eval '[ "$(u show paths raw format "%t" | sort -u)" = active ]' ||
	fail "the checker did not reinstate $B after a message fail_path"
expect_err 1 "umpath: fail path: no map has path $T/none" u fail path "$T/none"

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
