#!/usr/bin/env bash
# Description: the tables umpathd assembles from the configuration file, as
# multipathd's assemble_map does, checked word for word with `umpath
# table`: failover (file order; by prio, ties in file order), multibus,
# group_by_prio (highest prio first; one group when every prio is the
# same), selectors with "<#paths> 1" and a repeat count of 1 per path,
# queue_if_no_path added for no_path_retry queue or N and dropped for
# fail, defaults inherited and overridden per map; policies reach the
# config's maps and the --map maps (defaults).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

conf <<'X'
# Every map over in-memory paths mem:a..mem:d of one store.
defaults {
	failback immediate
	no_path_retry queue
	features "0"
}
multipaths {
	multipath {
		alias fo                 # failover, every prio 1: the file's order
		paths mem:c mem:a mem:b
	}
	multipath {
		alias fo_prio
		path mem:a prio 10
		path mem:b prio 50
		path mem:c prio 10
		path mem:d prio 30
	}
	multipath {
		alias mb
		path_grouping_policy multibus
		path_selector "round-robin 0"
		path mem:a prio 1        # prios do not reorder one group
		path mem:b prio 9
		path mem:c
	}
	multipath {
		alias gbp
		path_grouping_policy group_by_prio
		path_selector "queue-length 0"
		path mem:a prio 10
		path mem:b prio 50
		path mem:c prio 10
		path mem:d prio 50
	}
	multipath {
		alias gbp_const
		path_grouping_policy "group_by_prio"
		paths mem:a
		paths mem:b
	}
	multipath {
		alias npr_fail
		no_path_retry fail
		features "1 queue_if_no_path"
		failback followover
		paths mem:a
	}
	multipath {
		alias npr_n
		no_path_retry 3
		features "2  pg_init_retries	5"
		failback 15
		paths mem:d mem:c
	}
}
X
start_daemon --config "$CONF" --mem-store 16M:a,b,c,d --map "hand=0 0 1 1 round-robin 0 1 1 mem:a 1"

expect_out "fo	32768	0
fo_prio	32768	0
mb	32768	0
gbp	32768	0
gbp_const	32768	0
npr_fail	32768	0
npr_n	32768	0
hand	32768	0" u ls

ST="service-time 0 1 2"
expect_table fo "1 queue_if_no_path 0 3 1 $ST mem:c 1 1 $ST mem:a 1 1 $ST mem:b 1 1"
expect_table fo_prio \
	"1 queue_if_no_path 0 4 1 $ST mem:b 1 1 $ST mem:d 1 1 $ST mem:a 1 1 $ST mem:c 1 1"
expect_table mb "1 queue_if_no_path 0 1 1 round-robin 0 3 1 mem:a 1 mem:b 1 mem:c 1"
expect_table gbp \
	"1 queue_if_no_path 0 2 1 queue-length 0 2 1 mem:b 1 mem:d 1 queue-length 0 2 1 mem:a 1 mem:c 1"
expect_table gbp_const "1 queue_if_no_path 0 1 1 service-time 0 2 2 mem:a 1 1 mem:b 1 1"
expect_table npr_fail "0 0 1 1 $ST mem:a 1 1"
expect_table npr_n "3 queue_if_no_path pg_init_retries 5 0 2 1 $ST mem:d 1 1 $ST mem:c 1 1"
# The --map map is as given.
expect_table hand "0 0 1 1 round-robin 0 1 1 mem:a 1"

if have_show_maps; then
	expect_out immediate map_field fo failback
	expect_out -1 map_field fo no_path_retry
	expect_out followover map_field npr_fail failback
	expect_out 0 map_field npr_fail no_path_retry
	expect_out deferred map_field npr_n failback
	expect_out 15000 map_field npr_n failback_delay_ms
	expect_out 3 map_field npr_n no_path_retry
	# --map maps take the file's defaults.
	expect_out immediate map_field hand failback
else
	echo "show maps --json not available: policies not read back"
fi

st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM"
finish
