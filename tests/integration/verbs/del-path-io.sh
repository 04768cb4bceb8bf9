#!/usr/bin/env bash
# Description: del path PATH while a client writes and verifies through
# the map: no I/O error, the path leaves the table and takes no more I/O;
# the last path of a group takes its group with it; the map's last path is
# refused with the reason, the map unchanged.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need fio python3
need_file_paths

one_file_daemon "0 0 2 1 round-robin 0 2 1 $P1 1 $P2 1 round-robin 0 1 1 $P3 1"

run_fio "$URI" del
wait_for 20 eval '[ "$(path_ios mp "$P2")" -gt 0 ]' || fail "no I/O through $P2"
expect_out "mp: path deleted" ut del path "$P2"
expect_out "0 131072 multipath 0 0 2 1 round-robin 0 1 1 $P1 1 round-robin 0 1 1 $P3 1" u table mp
wait_for 20 eval '[ "$(path_ios mp "$P1")" -gt 0 ]' || fail "no I/O through $P1"
fio_ok
[ "$(path_ios mp "$P2")" = -1 ] || fail "$P2 is still shown: $(u show paths mp)"

# The only path of group 1: the group goes, group 2 becomes group 1.
expect_out "mp: path deleted with group 1, which it left empty" ut del path "$P1" from mp
expect_out "0 131072 multipath 0 0 1 1 round-robin 0 1 1 $P3 1" u table mp

before=$(u status mp)
expect_err 1 "umpath: del path: $P3 is the map's last path: a map keeps one (remove the map instead)" \
	ut del path "$P3"
expect_out "$before" u status mp
expect_err 1 "umpath: del path: no map has path $P2" ut del path "$P2"

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
