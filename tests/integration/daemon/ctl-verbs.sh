#!/usr/bin/env bash
# Description: every umpathd control verb through the umpath tool, happy
# paths: output formats equal to the engine's (dmsetup table/status lines),
# ls, info, messages, suspend/resume, load, reload, remove, SIGTERM exit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_file_paths

A=$T/a.img
B=$T/b.img
C=$T/c.img
truncate -s 1M "$A" "$B" "$C"
FB="file:$B?direct"
TBL="0 0 1 1 round-robin 0 2 1 $A 1 $FB 1"

start_daemon --map "mp=$TBL"

# ls: NAME, sectors, open count; table and status as dmsetup prints them.
expect_out "mp	2048	0" u ls
expect_out "0 2048 multipath $TBL" u table mp
# A fresh map has not picked a group yet (queue_io 1, group E), like the
# kernel's basic-round-robin recording before the first I/O.
expect_out "0 2048 multipath 2 1 0 0 1 1 E 0 2 0 $A A 0 $FB A 0" u status mp
expect_out "Name:              mp
State:             ACTIVE
Open count:        0
Event number:      0
Size:              2048 sectors
Block size:        512 bytes
Number of targets: 1" u info mp

# create: the table as one word or as many.
expect_ok u create one "0 0 1 1 round-robin 0 1 1 $C 1"
expect_ok u create many 0 0 2 1 round-robin 0 1 1 "$A" 1 round-robin 0 1 1 "$C" 1
expect_out "mp	2048	0
one	2048	0
many	2048	0" u ls
expect_out "0 2048 multipath 0 0 1 1 round-robin 0 1 1 $C 1" u table one
expect_out "0 2048 multipath 0 0 2 1 round-robin 0 1 1 $A 1 round-robin 0 1 1 $C 1" u table many
expect_ok u message many fail_path "$A"
expect_out "0 2048 multipath 2 1 0 0 2 1 E 0 1 0 $A F 1 E 0 1 0 $C A 0" u status many
expect_ok u message many reinstate_path "$A"

# messages, as the conformance recordings show their effect.
expect_ok u message mp fail_path "$A"
expect_out "0 2048 multipath 2 1 0 0 1 1 E 0 2 0 $A F 1 $FB A 0" u status mp
expect_ok u message mp reinstate_path "$A"
expect_out "0 2048 multipath 2 1 0 0 1 1 E 0 2 0 $A A 1 $FB A 0" u status mp
expect_ok u message mp queue_if_no_path
expect_out "0 2048 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $FB 1" u table mp
expect_ok u message mp fail_if_no_path
expect_out "0 2048 multipath $TBL" u table mp
expect_ok u message many switch_group 2
expect_out "0 2048 multipath 2 1 0 0 2 2 E 0 1 0 $A A 1 E 0 1 0 $C A 0" u status many
expect_ok u message many disable_group 1
expect_out "0 2048 multipath 2 1 0 0 2 2 D 0 1 0 $A A 1 E 0 1 0 $C A 0" u status many
expect_ok u message many enable_group 1
events=$(u info mp | sed -n 's/^Event number: *//p')
[ "$events" -ge 2 ] || fail "event number $events after a fail and a reinstate"

# suspend and resume, flushing and not.
expect_ok u suspend mp
expect_out "SUSPENDED" eval "u info mp | sed -n 's/^State: *//p'"
expect_ok u suspend mp	# again: nothing to do, like dmsetup
expect_ok u resume mp
expect_out "ACTIVE" eval "u info mp | sed -n 's/^State: *//p'"
expect_ok u suspend mp --noflush
expect_out "SUSPENDED" eval "u info mp | sed -n 's/^State: *//p'"
expect_ok u resume mp
expect_out "ACTIVE" eval "u info mp | sed -n 's/^State: *//p'"

# load: inactive until the next resume.
NEW="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $FB 1 $A 1"
expect_ok u load mp "$NEW"
expect_out "0 2048 multipath $TBL" u table mp
expect_ok u suspend mp
expect_out "0 2048 multipath $TBL" u table mp
expect_ok u resume mp
expect_out "0 2048 multipath $NEW" u table mp
expect_out "ACTIVE" eval "u info mp | sed -n 's/^State: *//p'"

# reload: live at once, the map left running and answering messages.
before=$(u info mp | sed -n 's/^Event number: *//p')
expect_ok u reload mp 0 0 1 1 round-robin 0 2 1 "$A" 1 "$C" 1
expect_out "0 2048 multipath 0 0 1 1 round-robin 0 2 1 $A 1 $C 1" u table mp
expect_out "0 2048 multipath 2 1 0 0 1 1 E 0 2 0 $A A 0 $C A 0" u status mp
expect_out "ACTIVE" eval "u info mp | sed -n 's/^State: *//p'"
after=$(u info mp | sed -n 's/^Event number: *//p')
[ "$after" -gt "$before" ] || fail "reload: event number $before -> $after, want a table swap event"
expect_ok u message mp fail_path "$C"
expect_out "0 2048 multipath 2 1 0 0 1 1 E 0 2 0 $A A 0 $C F 1" u status mp
expect_ok u message mp reinstate_path "$C"
expect_ok u reload mp "$TBL"
expect_out "0 2048 multipath $TBL" u table mp
# A suspended map stays suspended across a reload; the table waits for resume.
expect_ok u suspend mp
expect_ok u reload mp "$NEW"
expect_out "SUSPENDED" eval "u info mp | sed -n 's/^State: *//p'"
expect_out "0 2048 multipath $TBL" u table mp
expect_ok u resume mp
expect_out "0 2048 multipath $NEW" u table mp

# remove, with and without --force; then an empty list as dmsetup says it.
expect_ok u remove one
expect_ok u remove many --force
expect_out "mp	2048	0" u ls
expect_ok u remove mp
expect_out "No devices found" u ls

# -S or $UMPATH_CONTROL.
expect_out "No devices found" env UMPATH_CONTROL="$SOCK" "$UMPATH" ls
expect_out "No devices found" "$UMPATH" -S"$SOCK" ls

st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"
[ ! -e "$SOCK" ] || fail "the control socket is still there after exit"
finish
