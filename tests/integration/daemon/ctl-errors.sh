#!/usr/bin/env bash
# Description: umpathd control errors through the umpath tool: refused
# tables with the kernel's reason and nothing created or changed, message
# errors, duplicate create, unknown maps, usage errors, and a daemon that
# is not running.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_file_paths

A=$T/a.img
B=$T/b.img
truncate -s 1M "$A" "$B"
TBL="0 0 2 1 round-robin 0 1 1 $A 1 round-robin 0 1 1 $B 1"

start_daemon --map "mp=$TBL"

# Refused tables: the kernel's ti->error, exit 1, nothing created.
expect_err 1 "umpath: create bad: round-robin ps: invalid repeat count" \
	u create bad 0 0 1 1 round-robin 0 1 1 "$A" x
expect_err 1 "umpath: create bad: unknown path selector type" \
	u create bad "0 0 1 1 no-such-selector 0 1 0 $A"
# The kernel's reason, then what umpath adds: the object and the cause.
expect_err 1 "umpath: create bad: invalid number of feature args: the table is empty" u create bad
# Empty words carry nothing (they used to give "malformed request").
expect_err 1 "umpath: create bad: invalid number of feature args: the table is empty" u create bad ""
expect_err 1 "umpath: create: the map name is empty" u create "" "$TBL"
expect_err 1 "umpath: create bad: error getting device: $T/missing.img: No such file or directory" \
	u create bad "0 0 1 1 round-robin 0 1 0 $T/missing.img"
expect_err 1 "umpath: create bad: Unrecognised multipath feature request" \
	u create bad "1 bogus_feature 0 1 1 round-robin 0 1 0 $A"
expect_out "mp	2048	0" u ls
expect_err 1 "umpath: table bad: no such map" u table bad

# create: a duplicate name, a name that cannot be an export name.
expect_err 1 "umpath: create mp: map mp already exists" u create mp "$TBL"
expect_err 1 "umpath: create a/b: invalid map name" u create a/b "$TBL"
expect_out "mp	2048	0" u ls

# Unknown maps: ENXIO like dmsetup, for every verb that names one.
expect_err 1 "umpath: remove nosuch: no such map" u remove nosuch
expect_err 1 "umpath: remove nosuch: no such map" u remove nosuch --force
for verb in table status info resume suspend; do
	expect_err 1 "umpath: $verb nosuch: no such map" u $verb nosuch
done
expect_err 1 "umpath: message nosuch: no such map" u message nosuch fail_if_no_path
expect_err 1 "umpath: load nosuch: no such map" u load nosuch "$TBL"
expect_err 1 "umpath: reload nosuch: no such map" u reload nosuch "$TBL"

# Refused reload and load: the reason, and the map unchanged and running.
expect_err 1 "umpath: reload mp: invalid number of paths" \
	u reload mp "0 0 1 1 round-robin 0 0 0"
expect_err 1 "umpath: load mp: priority group count mismatch" \
	u load mp "0 0 2 1 round-robin 0 1 0 $A"
expect_out "0 2048 multipath $TBL" u table mp
expect_out "0 2048 multipath 2 1 0 0 2 1 E 0 1 0 $A A 0 E 0 1 0 $B A 0" u status mp
expect_out "ACTIVE" eval "u info mp | sed -n 's/^State: *//p'"
# A refused load leaves no inactive table behind for the next resume.
expect_ok u suspend mp
expect_ok u resume mp
expect_out "0 2048 multipath $TBL" u table mp
# A reload to a table of smaller paths than the map: refused too.
truncate -s 512K "$T/small.img"
expect_err 1 "umpath: reload mp: device too small for target: $T/small.img: 524288 bytes, the map has 1048576" \
	u reload mp "0 0 1 1 round-robin 0 1 0 $T/small.img"
expect_out "0 2048 multipath $TBL" u table mp

# Message errors, as the kernel's: EINVAL, ENOENT, EBUSY while suspended.
expect_err 1 "umpath: message mp: Invalid argument: switch_group 0: no such group (1..2)" u message mp switch_group 0
expect_err 1 "umpath: message mp: Invalid argument: switch_group 3: no such group (1..2)" u message mp switch_group 3
expect_err 1 "umpath: message mp: Invalid argument: unknown message 'nonsense' (queue_if_no_path, fail_if_no_path, disable_group N, enable_group N, switch_group N, fail_path PATH, reinstate_path PATH)" u message mp nonsense
expect_err 1 "umpath: message mp: Invalid argument: fail_path: takes one argument" u message mp fail_path "$A" extra
expect_err 1 "umpath: message mp: Invalid argument: empty message (queue_if_no_path, fail_if_no_path, disable_group N, enable_group N, switch_group N, fail_path PATH, reinstate_path PATH)" u message mp
expect_err 1 "umpath: message mp: Invalid argument: empty message (queue_if_no_path, fail_if_no_path, disable_group N, enable_group N, switch_group N, fail_path PATH, reinstate_path PATH)" u message mp "" ""
# A path that exists but is not in the map: EINVAL; one that does not: ENOENT.
expect_err 1 "umpath: message mp: Invalid argument: fail_path $T/small.img: not a path of this map" \
	u message mp fail_path "$T/small.img"
expect_err 1 "umpath: message mp: error getting device $T/nope.img" \
	u message mp fail_path "$T/nope.img"
expect_ok u suspend mp --noflush
expect_err 1 "umpath: message mp: map is suspended" u message mp fail_path "$A"
expect_err 1 "umpath: message mp: map is suspended" u message mp queue_if_no_path
expect_ok u resume mp
expect_ok u message mp fail_path "$A"
expect_ok u message mp reinstate_path "$A"

# Usage errors caught by the tool: exit 2, nothing sent.
st=0
u table >/dev/null 2>&1 || st=$?
[ "$st" = 2 ] || fail "umpath table without NAME: exit $st, want 2"
st=0
u remove mp --force extra >/dev/null 2>&1 || st=$?
[ "$st" = 2 ] || fail "umpath remove with 3 words: exit $st, want 2"
# ... and by the daemon.
expect_err 1 "umpath: remove mp: usage: remove NAME [--force]" u remove mp --forcefully
expect_err 1 "umpath: suspend mp: usage: suspend NAME [--noflush]" u suspend mp --now
expect_out "mp	2048	0" u ls

# A daemon that is not running: no socket, then a stale socket.
expect_err 1 "umpath: cannot reach umpathd at $T/none: No such file or directory" \
	"$UMPATH" -S "$T/none" ls
expect_err 1 "umpath: cannot reach umpathd at $T/none: No such file or directory" \
	env UMPATH_CONTROL="$T/none" "$UMPATH" table mp
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
expect_err 1 "umpath: cannot reach umpathd at $SOCK: Connection refused" u ls
finish
