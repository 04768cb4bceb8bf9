#!/usr/bin/env bash
# Description: the umpath.conf keyword target makes a multipath-v0 map,
# its table each path with its prio and v0_path_args (default "N 0 0 0");
# bad values stop umpathd at the line; reconfigure reloads a changed v0
# table and turns a map from one target into the other.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# A refused file: exit 1, the reason at its line.
refused()
{
	local want=$1 st=0

	timeout 10 "$UMPATHD" --control "$SOCK" --config "$CONF" --mem-store 1M:a,b \
		>"$T/stdout" 2>"$T/stderr" || st=$?
	[ "$st" = 1 ] || fail "exit $st, want 1: $(cat "$T/stderr")"
	[ "$(cat "$T/stderr")" = "umpathd: $CONF:$want" ] ||
		fail "stderr '$(cat "$T/stderr")', want 'umpathd: $CONF:$want'"
	rm -f "$SOCK"
}

conf <<'X'
multipaths {
	multipath {
		alias x
		target multipath-v1
		paths mem:a
	}
}
X
refused "4: target: expected multipath or multipath-v0"
conf <<'X'
multipaths {
	multipath {
		alias x
		target multipath-v0
		v0_path_args L 100 3
		paths mem:a
	}
}
X
refused "5: v0_path_args: expected N|L|M MIN_IOS FAILURE_MAX REACTIVATION_TIMEOUT"
conf <<'X'
multipaths {
	multipath {
		alias x
		target multipath-v0
		path mem:a prio 9000
	}
}
X
refused "2: map x: dm-multipath: Invalid priority"

conf <<'X'
multipaths {
	multipath {
		alias old
		target multipath-v0
		v0_path_args l 100 3 30
		path mem:a prio 10
		path mem:b prio 5
	}
	multipath {
		alias plain
		target multipath-v0
		paths mem:b mem:a
	}
	multipath {
		alias new
		target multipath
		paths mem:a
	}
}
X
start_daemon --config "$CONF" --mem-store 16M:a,b
expect_out "0 32768 multipath-v0 mem:a 10 L 100 3 30 mem:b 5 L 100 3 30" u table old
expect_out "0 32768 multipath-v0 mem:b 1 N 1 1 0 mem:a 1 N 1 1 0" u table plain
expect_out "0 32768 multipath-v0 mem:a O mem:b O" u status old
expect_out "0 32768 multipath 1 queue_if_no_path 0 1 1 service-time 0 1 2 mem:a 1 1" u table new

conf <<'X'
multipaths {
	multipath {
		alias old
		target multipath-v0
		v0_path_args M 7 2 0
		path mem:a prio 10
		path mem:b prio 5
	}
	multipath {
		alias plain
		paths mem:b
	}
	multipath {
		alias new
		target multipath-v0
		paths mem:a
	}
}
X
expect_out "old: reloaded
plain: reloaded
new: reloaded" u reconfigure
expect_out "0 32768 multipath-v0 mem:a 10 M 7 2 0 mem:b 5 M 7 2 0" u table old
expect_out "0 32768 multipath 1 queue_if_no_path 0 1 1 service-time 0 1 2 mem:b 1 1" u table plain
expect_out "0 32768 multipath-v0 mem:a 1 N 1 1 0" u table new
finish
