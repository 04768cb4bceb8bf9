#!/usr/bin/env bash
# Description: show paths format and show maps format print multipathd's
# wildcards: a header of their names, columns as wide as their widest
# cell, plain text kept; raw drops the header; an unknown wildcard is
# refused with the list of the known ones; names and paths a client chose
# are printed escaped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_file_paths

truncate -s 16M "$T/a.img" "$T/b c.img"
A=$T/a.img
B="$T/b\\ c.img"	# as a table word: the space escaped
start_daemon --policy failback=immediate --policy no_path_retry=queue \
	--map "mp=0 0 2 1 round-robin 0 1 1 $A 1 round-robin 0 1 1 $B 1"
u message mp fail_path "$T/b c.img" >/dev/null

# Columns: each as wide as its widest cell or header, left aligned.
w=${#B}
pad() { printf "%-*s" "$1" "$2"; }
want="$(pad "$w" dev) dm_st  pri failures multipath size
$(pad "$w" "$A") active 2   0        mp        16M 
$B failed 1   1        mp        16M "
expect_out "$want" u show paths format "%d %t %p %0 %m %S"
expect_out "$A|active
$B|failed" u show paths raw format "%d|%t"

expect_out "name uuid sysfs failback  queueing paths dm-st  write_prot size features hwhandler path_faults
mp   mp   undef immediate on       1     active rw         16M  0        0         1          " \
	u show maps format "%n %w %d %F %Q %N %t %r %S %f %h %0"
expect_out "map mp: 16M" u show maps raw format "map %n: %S"

# No wildcard: the text, as header and on each row.
expect_out "plain
plain
plain" u show paths format "plain"

# Unknown wildcards: refused, the known ones listed.
expect_err 1 "umpath: show paths: unknown path wildcard '%X'; supported: %w (uuid) %d (dev) %D (dev_t) %t (dm_st) %o (dev_st) %T (chk_st) %c (checker) %p (pri) %S (size) %m (multipath) %0 (failures)" \
	u show paths format "%d %X"
expect_err 1 "umpath: show maps: unknown map wildcard '%z'; supported: %n (name) %w (uuid) %d (sysfs) %F (failback) %Q (queueing) %N (paths) %r (write_prot) %t (dm-st) %S (size) %f (features) %h (hwhandler) %0 (path_faults)" \
	u show maps format "%z"
expect_err 1 "umpath: show maps: the format ends in a lone '%'; supported map wildcards: %n (name) %w (uuid) %d (sysfs) %F (failback) %Q (queueing) %N (paths) %r (write_prot) %t (dm-st) %S (size) %f (features) %h (hwhandler) %0 (path_faults)" \
	u show maps format "%n %"

# The format's own text cannot break a line (map names are checked at
# create; a path with a space is one escaped word, above).
expect_out "mp?" u show maps raw format $'%n\n'

expect_err 1 "umpath: show paths: usage: show paths [raw] format FORMAT" u show paths format
expect_err 1 "umpath: show maps: usage: show maps [raw] format FORMAT" u show maps raw "%n"

# No maps: no header either, as multipathd.
u remove mp >/dev/null
expect_out "" u show paths format "%d"
expect_out "" u show maps format "%n"

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
