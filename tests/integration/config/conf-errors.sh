#!/usr/bin/env bash
# Description: a configuration file with an error stops umpathd at start:
# exit 1, "umpathd: FILE:LINE: reason" alone on stderr, no control socket.
# Covers unknown keywords and sections, bad values, keywords in the wrong
# section or given twice, duplicate aliases, multipath sections without an
# alias or paths, quoting and brace mistakes, a path that does not open and
# a missing --config file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# bad LINE REASON: umpathd refuses the file on stdin, at LINE, for REASON.
bad()
{
	local line=$1 reason=$2 want got st=0

	conf
	if [ "$line" = 0 ]; then
		want="umpathd: $CONF: $reason"
	else
		want="umpathd: $CONF:$line: $reason"
	fi
	timeout 10 "$UMPATHD" --control "$SOCK" --config "$CONF" --mem-store 1M:a,b \
		>"$T/stdout" 2>"$T/stderr" || st=$?
	got=$(cat "$T/stderr")
	if [ "$st" != 1 ]; then
		fail "line $line '$reason': exit $st, want 1 (stderr: $got)"
	elif [ "$got" != "$want" ]; then
		fail "stderr '$got', want '$want'"
	elif [ -e "$SOCK" ]; then
		fail "line $line '$reason': the control socket was made"
	fi
	rm -f "$SOCK"
}

bad 3 "unknown keyword 'foo'" <<'X'
# a comment
defaults {
	foo 1
}
X
bad 2 "failback: expected manual, immediate, followover or a number of seconds" <<'X'
defaults {
	failback sometimes
}
X
bad 4 "no_path_retry: expected queue, fail or a number of checker intervals" <<'X'
multipaths {
	multipath {
		alias a
		no_path_retry -3
		paths mem:a
	}
}
X
bad 4 "read_hedge: expected off, auto or a number of milliseconds (1 to 3600000)" <<'X'
multipaths {
	multipath {
		alias a
		read_hedge 0
		paths mem:a
	}
}
X
bad 2 "read_hedge: expected off, auto or a number of milliseconds (1 to 3600000)" <<'X'
defaults {
	read_hedge soon
}
X
bad 2 "polling_interval: expected a number of seconds" <<'X'
defaults {
	polling_interval soon
}
X
bad 2 "polling_interval: expected one value" <<'X'
defaults {
	polling_interval 1 2
}
X
bad 2 "path_grouping_policy: expected failover, multibus or group_by_prio" <<'X'
defaults {
	path_grouping_policy group_by_serial
}
X
bad 1 "path_selector: unknown selector 'fastest' (expected round-robin, queue-length, service-time or historical-service-time)" <<'X'
defaults { path_selector "fastest 0" }
X
bad 1 "path_selector: expected a selector, the number of its arguments and the arguments, e.g. \"service-time 0\"" <<'X'
defaults { path_selector "round-robin 2 1" }
X
bad 2 "features: expected a count and that many words, e.g. \"1 queue_if_no_path\"" <<'X'
defaults {
	features "2 queue_if_no_path"
}
X
bad 2 "io_timeout: expected a number of seconds in (0, 3600]" <<'X'
defaults {
	io_timeout 0
}
X
bad 3 "io_timeout: not allowed in a multipath section" <<'X'
multipaths {
	multipath {
		io_timeout 5
	}
}
X
bad 2 "alias: not allowed in a defaults section" <<'X'
defaults {
	alias a
}
X
bad 3 "failback: given twice in this section (first on line 2)" <<'X'
defaults {
	failback manual
	failback immediate
}
X
bad 8 "duplicate alias 'a' (also on line 3)" <<'X'
multipaths {
	multipath {
		alias a
		paths mem:a
	}
	multipath {
		paths mem:b
		alias a
	}
}
X
bad 2 "multipath section without an alias" <<'X'
multipaths {
	multipath {
		paths mem:a
	}
}
X
bad 2 "multipath 'a' has no paths" <<'X'
multipaths {
	multipath {
		alias a
	}
}
X
bad 4 "path 'mem:a' is listed twice" <<'X'
multipaths {
	multipath {
		alias a
		paths mem:a mem:b mem:a
	}
}
X
bad 4 "path: expected PATH [prio N], N from 0 to 1000000" <<'X'
multipaths {
	multipath {
		alias a
		path mem:a priority 3
	}
}
X
bad 1 "unknown section 'blacklist'" <<'X'
blacklist {
	devnode "^sd"
}
X
bad 2 "unknown section 'multipath' in defaults" <<'X'
defaults {
	multipath {
	}
}
X
bad 2 "failback: outside a defaults or multipath section" <<'X'
multipaths {
	failback manual
}
X
bad 4 "section 'defaults' given twice (first on line 1)" <<'X'
defaults {
	failback manual
}
defaults {
}
X
bad 2 "unterminated quoted string" <<'X'
defaults {
	features "1 queue_if_no_path
}
X
bad 2 "'}' without a section to close" <<'X'
defaults { }
}
X
bad 2 "section 'multipath' is not closed" <<'X'
multipaths {
	multipath {
		alias a
		paths mem:a
X
bad 1 "section 'multipaths' is not closed" <<'X'
multipaths {
	multipath {
		alias a
		paths mem:a
	}
X
# The file parses; its map does not: the reason is the engine's.
bad 2 "map a: error getting device: mem:nothere: no in-memory store has this path" <<'X'
multipaths {
	multipath { alias a
		paths mem:a mem:nothere
	}
}
X
bad 5 "map a: error attaching hardware handler: no hardware handler 'nosuch' is registered" <<'X'
defaults {
	hardware_handler "1 nosuch"
}
multipaths {
	multipath {
		alias a
		paths mem:a
	}
}
X

# A missing explicit file is an error (a missing /etc/umpath.conf is not).
st=0
"$UMPATHD" --control "$SOCK" --config "$T/nope.conf" >"$T/stdout" 2>"$T/missing.err" || st=$?
[ "$st" = 1 ] || fail "missing --config file: exit $st, want 1"
expect_out "umpathd: $T/nope.conf: No such file or directory" cat "$T/missing.err"

# And a good file starts, for contrast: the same daemon, the same options.
conf <<'X'
defaults { failback immediate }   # braces on one line
multipaths { multipath { alias a
	paths mem:a mem:b } }
X
start_daemon --config "$CONF" --mem-store 1M:a,b
expect_out "a	2048	0" u ls
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM"
finish
