#!/usr/bin/env bash
# Description: prioritizers (prio, prio_args): weightedpath gives each path
# the priority of the first regular expression matching it and
# group_by_prio orders the groups by it; const (the default) takes the
# path lines' "prio N"; path_latency reads each path and, after
# `umpath reconfigure`, puts a path made 3 ms slower into a later group and
# a path whose reads fail at priority 0, logging why; `show paths` shows
# each priority.  Bad prio and prio_args lines are refused with the line
# and the reason.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ST="service-time 0 1 2"
# prio_of MAP PATH: the priority `show paths MAP --json` gives PATH.
prio_of()
{
	u show paths "$1" --json | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin)["paths"]:
    if p["path"] == sys.argv[1]:
        print(p.get("prio", "none"))' "$2"
}

conf <<'X'
multipaths {
	multipath {
		alias w
		path_grouping_policy group_by_prio
		prio weightedpath
		prio_args "devname ^mem:b$ 50 ^mem:(a|z)$ 10"
		paths mem:a mem:b mem:c
	}
	multipath {
		alias c
		path_grouping_policy group_by_prio
		path mem:a prio 5
		path mem:b
	}
	multipath {
		alias l
		path_grouping_policy group_by_prio
		checker_timeout 2
		prio path_latency
		prio_args "io_num=20 base_num=10"
		paths mem:a mem:b mem:c
	}
}
X
start_daemon --config "$CONF" --mem-store 16M:a,b,c

# weightedpath: b 50, a 10, c matches nothing: 0.
expect_table w "1 queue_if_no_path 0 3 1 $ST mem:b 1 1 $ST mem:a 1 1 $ST mem:c 1 1"
expect_out 50 prio_of w mem:b
expect_out 10 prio_of w mem:a
expect_out 0 prio_of w mem:c
# const: the path lines' prio, 1 when not given.
expect_table c "1 queue_if_no_path 0 2 1 $ST mem:a 1 1 $ST mem:b 1 1"
expect_out 5 prio_of c mem:a
expect_out 1 prio_of c mem:b
# The text view's last column.
u show paths w >"$T/paths.txt"
[ "$(head -1 "$T/paths.txt" | awk '{ print $NF }')" = prio ] ||
	fail "show paths: no prio column: $(head -1 "$T/paths.txt")"
[ "$(awk '$3 == "mem:b" { print $NF }' "$T/paths.txt")" = 50 ] ||
	fail "show paths: mem:b's prio: $(cat "$T/paths.txt")"
# A map made by hand has no prioritizer: "-".
expect_ok u create hand "0 0 1 1 round-robin 0 1 1 mem:a 1"
[ "$(u show paths hand | awk 'NR == 2 { print $NF }')" = - ] ||
	fail "show paths hand: $(u show paths hand)"
[ "$(prio_of hand mem:a)" = none ] || fail "show paths --json hand has a prio"

# path_latency: a read 3 ms slower is log10(3000) = 3.5 decades down;
# reads that fail give 0.  Measured again by reconfigure.
u mem fault mem:a delay 3000 >/dev/null
u mem fault mem:c error 5 >/dev/null
expect_out "l: reloaded" sh -c "'$UMPATH' -S '$SOCK' reconfigure | grep '^l:'"
pa=$(prio_of l mem:a); pb=$(prio_of l mem:b); pc=$(prio_of l mem:c)
[ "$pa" -ge 3 ] && [ "$pa" -le 5 ] || fail "path_latency: mem:a (3 ms) prio $pa, want 3 to 5"
[ "$pb" -gt "$pa" ] || fail "path_latency: mem:b prio $pb not above mem:a's $pa"
[ "$pc" = 0 ] || fail "path_latency: mem:c (reads fail) prio $pc, want 0"
# group_by_prio: b's group first, then a, then c.
expect_table l "1 queue_if_no_path 0 3 1 $ST mem:b 1 1 $ST mem:a 1 1 $ST mem:c 1 1"
grep -q "map l: path mem:c: prio path_latency: read 1 of 20: .*; priority 0" "$LOG" ||
	fail "no log line saying why mem:c got 0: $(grep 'map l' "$LOG")"
# The other maps' tables did not change.
expect_table w "1 queue_if_no_path 0 3 1 $ST mem:b 1 1 $ST mem:a 1 1 $ST mem:c 1 1"
stop_daemon >/dev/null || true

# bad LINE REASON: umpathd refuses the file on stdin at LINE for REASON.
bad()
{
	local want="umpathd: $CONF:$1: $2" got st=0

	conf
	timeout 10 "$UMPATHD" --control "$SOCK" --config "$CONF" --mem-store 1M:a,b \
		>/dev/null 2>"$T/stderr" || st=$?
	got=$(cat "$T/stderr")
	[ "$st" = 1 ] && [ "$got" = "$want" ] || fail "exit $st, stderr '$got', want '$want'"
	rm -f "$SOCK"
}
bad 2 "prio: expected const, weightedpath or path_latency (alua: umpath's transports do not send REPORT TARGET PORT GROUPS)" <<'X'
defaults {
	prio alua
}
X
bad 2 "prio_args: given without prio in this section" <<'X'
defaults {
	prio_args "io_num=20 base_num=10"
}
X
bad 5 "prio_args: weightedpath: expected devname first (hbtl, serial and wwn name the host's SCSI devices; umpath matches the path as written)" <<'X'
multipaths {
	multipath {
		alias a
		prio weightedpath
		prio_args "hbtl 1:.:.:. 2"
		paths mem:a
	}
}
X
bad 3 "prio_args: weightedpath: regular expression 1: Unmatched ( or \\(" <<'X'
defaults {
	prio weightedpath
	prio_args "devname (mem 5"
}
X
bad 3 "prio_args: weightedpath: priority 2: expected 0 to 1000000" <<'X'
defaults {
	prio weightedpath
	prio_args "devname a 5 b x"
}
X
bad 3 "prio_args: path_latency: expected io_num=N (20 to 200) base_num=B (1.1 to 10)" <<'X'
defaults {
	prio path_latency
	prio_args io_num=5
}
X
bad 3 "prio_args: const takes none" <<'X'
defaults {
	prio const
	prio_args x
}
X
finish
