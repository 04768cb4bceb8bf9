#!/usr/bin/env bash
# Description: `umpath reconfigure` applies an edited configuration file and
# says what it did, one line per map: a changed path_grouping_policy
# reloads the map, a changed policy only updates it, a new multipath
# section creates a map, a removed one removes it, a map made by hand is
# left alone (until the file names it); a bad edit is refused with
# FILE:LINE: reason and changes nothing, nor does a table that would not
# load.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ST="service-time 0 1 2"
conf <<'X'
defaults {
	polling_interval 5
}
multipaths {
	multipath {
		alias one
		paths mem:a mem:b
	}
	multipath {
		alias two
		path_grouping_policy multibus
		paths mem:b mem:c
	}
}
X
start_daemon --config "$CONF" --mem-store 16M:a,b,c --mem-store 8K:small
expect_ok u create hand "0 0 1 1 round-robin 0 1 1 mem:c 1"
T_ONE="1 queue_if_no_path 0 2 1 $ST mem:a 1 1 $ST mem:b 1 1"
T_TWO="1 queue_if_no_path 0 1 1 service-time 0 2 2 mem:b 1 1 mem:c 1 1"
T_HAND="0 0 1 1 round-robin 0 1 1 mem:c 1"
expect_table one "$T_ONE"
expect_table two "$T_TWO"

# Nothing edited: nothing done.
expect_out "one: unchanged
two: unchanged" u reconfigure
ev=$(u info one | sed -n 's/^Event number: *//p')

# path_grouping_policy of one: reloaded; a failback for two: its policy.
sed -i 's/alias one/alias one\n\t\tpath_grouping_policy multibus/; s/alias two/alias two\n\t\tfailback immediate/' "$CONF"
expect_out "one: reloaded
two: policy updated" u reconfigure
T_ONE="1 queue_if_no_path 0 1 1 service-time 0 2 2 mem:a 1 1 mem:b 1 1"
expect_table one "$T_ONE"
expect_table two "$T_TWO"
expect_table hand "$T_HAND"
[ "$(u info one | sed -n 's/^Event number: *//p')" -gt "$ev" ] ||
	fail "no table swap event on one"
if have_show_maps; then
	expect_out immediate map_field two failback
	expect_out manual map_field one failback
	expect_out manual map_field hand failback
fi

# A bad edit: refused with the file's line, and nothing changes, not even
# the sections before it.
cp "$CONF" "$T/good.conf"
sed -i 's/alias two/alias two\n\t\tno_path_retry maybe/' "$CONF"
sed -i 's/alias one/alias one\n\t\tfailback followover/' "$CONF"
line=$(grep -n 'no_path_retry maybe' "$CONF" | cut -d: -f1)
expect_err 1 "umpath: reconfigure: $CONF:$line: no_path_retry: expected queue, fail or a number of checker intervals" \
	u reconfigure
expect_table one "$T_ONE"
if have_show_maps; then
	expect_out manual map_field one failback
fi

# A file that parses but whose new table would not load: refused too,
# and the new map that came with it is not made.
conf <<'X'
defaults {
	polling_interval 5
}
multipaths {
	multipath {
		alias one
		path_grouping_policy multibus
		paths mem:a mem:b
	}
	multipath {
		alias two
		failback immediate
		path_grouping_policy multibus
		paths mem:b mem:nosuch
	}
	multipath {
		alias three
		paths mem:c
	}
}
X
expect_err 1 "umpath: reconfigure: $CONF:10: map two: error getting device: mem:nosuch: no in-memory store has this path" u reconfigure
expect_table two "$T_TWO"
expect_out "one	32768	0
two	32768	0
hand	32768	0" u ls

# A path too small for two: the reload says which, and how small.
sed -i 's/mem:nosuch/mem:small/' "$CONF"
expect_err 1 "umpath: reconfigure: $CONF:10: map two: device too small for target: mem:small: 8192 bytes, the map has 16777216" u reconfigure
expect_table two "$T_TWO"
expect_out "one	32768	0
two	32768	0
hand	32768	0" u ls
sed -i 's/mem:small/mem:nosuch/' "$CONF"

# Without the bad path: three is created.
sed -i 's/mem:nosuch/mem:c/' "$CONF"
expect_out "one: unchanged
two: unchanged
three: created" u reconfigure
expect_table three "1 queue_if_no_path 0 1 1 $ST mem:c 1 1"

# two's section removed: two is removed; hand stays.  A new default
# reaches every map of the file, not hand.
conf <<'X'
defaults {
	polling_interval 2
}
multipaths {
	multipath {
		alias one
		path_grouping_policy multibus
		paths mem:a mem:b
	}
	multipath {
		alias three
		paths mem:c
	}
}
X
expect_out "one: policy updated
three: policy updated
two: removed
defaults: policy updated" u reconfigure
expect_out "one	32768	0
hand	32768	0
three	32768	0" u ls
expect_table hand "$T_HAND"

# The file names hand: the map is taken over, its table and policy the
# file's (it was made with the defaults of before); and once its section
# goes, it goes.
cp "$CONF" "$T/without-hand.conf"
sed -i '$d' "$CONF"
cat >>"$CONF" <<'X'
	multipath {
		alias hand
		paths mem:a
	}
}
X
expect_out "one: unchanged
three: unchanged
hand: reloaded, policy updated" u reconfigure
expect_table hand "1 queue_if_no_path 0 1 1 $ST mem:a 1 1"
cp "$T/without-hand.conf" "$CONF"
expect_out "one: unchanged
three: unchanged
hand: removed" u reconfigure
expect_out "one	32768	0
three	32768	0" u ls

# io_timeout is the context's: read at start only, and said so.
sed -i 's/polling_interval 2/polling_interval 2\n\tio_timeout 3/' "$CONF"
expect_out "one: unchanged
three: unchanged
io_timeout: changed in the file: takes effect when umpathd restarts" u reconfigure

# The file gone: an error, nothing changes.
mv "$CONF" "$T/moved.conf"
expect_err 1 "umpath: reconfigure: $CONF: No such file or directory" u reconfigure
expect_out "one	32768	0
three	32768	0" u ls

st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM"
finish
