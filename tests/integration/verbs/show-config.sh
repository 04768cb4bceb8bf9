#!/usr/bin/env bash
# Description: show config prints the configuration umpathd runs with in
# umpath.conf's language: fed back to a new umpathd as its --config, it is
# accepted and gives the same maps (tables byte for byte), the same
# policies, and shows the same config again; what the file cannot say is in
# comments.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_file_paths

truncate -s 16M "$T/a.img" "$T/b.img" "$T/c.img"
A=$T/a.img
B="file:$T/a.img?direct"
C=$T/c.img
start_daemon --policy polling_interval=0.5 --policy failback=immediate \
	--policy 'fence_command=logger -t fence %p' --policy read_hedge=auto \
	--map "mp=1 queue_if_no_path 0 2 1 round-robin 0 2 1 $A 1 $B 1 round-robin 0 1 1 $C 1" \
	--map "odd=0 0 2 1 round-robin 0 1 1 $T/b.img 1 service-time 0 1 2 $C 1 1"
u show config >"$T/umpath.conf" || fail "show config: $(cat "$T/umpath.conf")"
grep -q '^	polling_interval 0.500$' "$T/umpath.conf" || fail "no polling_interval: $(cat "$T/umpath.conf")"
grep -q '^	fence_command "logger -t fence %p"$' "$T/umpath.conf" || fail "no fence_command"
grep -q '^	read_hedge auto$' "$T/umpath.conf" || fail "no read_hedge: $(cat "$T/umpath.conf")"
grep -q '^		# group 2 has selector "service-time 0": here the first group.s$' "$T/umpath.conf" ||
	fail "the odd map's selector is not explained: $(cat "$T/umpath.conf")"
mp_table=$(u table mp)
stop_daemon || fail "umpathd exited $? on SIGTERM"

# Read back: accepted, the same maps and policies, the same config.
start_daemon --config "$T/umpath.conf"
expect_out "$mp_table" u table mp
expect_out "0 32768 multipath 0 0 2 1 round-robin 0 1 1 $T/b.img 1 round-robin 0 1 1 $C 1" u table odd
# The same again, but for the comments on what the first could not say.
expect_out "$(grep -v '^[[:space:]]*#' "$T/umpath.conf")" u show config
expect_out "name failback  queueing
mp   immediate on      
odd  immediate off     " u show maps format "%n %F %Q"

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
