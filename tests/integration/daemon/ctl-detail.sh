#!/usr/bin/env bash
# Description: a path that will not open is refused with the kernel's
# reason and then the path and the cause, on the CLI and in umpathd's log:
# a missing file, a directory, a name too long, an unknown file: option, an
# NBD server that refuses (no socket) and one that never answers (a socket
# that accepts and stays silent: "timed out after 10 s"); a pasted
# `dmsetup table` line gets a hint; a directory given as --config says
# "Is a directory" (it said "Input/output error").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

mkdir "$T/conf.d"
st=0
timeout 10 "$UMPATHD" --control "$T/c2" --config "$T/conf.d" 2>"$T/err" || st=$?
[ "$st" = 1 ] || fail "--config DIR: exit $st"
[ "$(cat "$T/err")" = "umpathd: $T/conf.d: Is a directory" ] || fail "--config DIR: $(cat "$T/err")"

start_daemon
tbl() { echo "0 0 1 1 round-robin 0 1 0 $1"; }
long=/$(printf 'a%.0s' $(seq 300))

expect_err 1 "umpath: create x: error getting device: $T/nope: No such file or directory" \
	u create x "$(tbl "$T/nope")"
expect_err 1 "umpath: create x: error getting device: $T: Is a directory" u create x "$(tbl "$T")"
expect_err 1 "umpath: create x: error getting device: ${long:0:124}...: File name too long" \
	u create x "$(tbl "$long")"
expect_err 1 "umpath: create x: error getting device: file:$T/a?sync: unknown file: option 'sync' (direct, ro)" \
	u create x "$(tbl "file:$T/a?sync")"
expect_err 1 "umpath: create x: invalid number of hardware handler args: this looks like a line of 'dmsetup table': give only the words after \"multipath\"" \
	u create x "0 2048 multipath $(tbl "$T/a")"

# NBD: nobody listening, then a listener that never speaks.
st=0
u create x "$(tbl "nbd+unix:///?socket=$T/none.sock")" 2>"$T/err" || st=$?
[ "$st" = 1 ] || fail "NBD refused: exit $st"
grep -q "^umpath: create x: error getting device: nbd+unix:///?socket=$T/none.sock: .*No such file or directory" "$T/err" ||
	fail "NBD refused: $(cat "$T/err")"
python3 - "$T/silent.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
time.sleep(30)
PY
SILENT=$!
wait_for 10 test -S "$T/silent.sock" || fail "the silent listener did not start"
st=0
u create x "$(tbl "nbd+unix:///?socket=$T/silent.sock")" 2>"$T/err" || st=$?
kill "$SILENT" 2>/dev/null || true
[ "$st" = 1 ] || fail "NBD silent: exit $st"
grep -q "^umpath: create x: error getting device: nbd+unix:///?socket=$T/silent.sock: .*timed out after 10 s$" "$T/err" ||
	fail "NBD silent: $(cat "$T/err")"
grep -q "map x: create refused: error getting device: nbd+unix:///?socket=$T/silent.sock: .*timed out after 10 s" "$T/umpathd.log" ||
	fail "the log has no detail: $(tail -3 "$T/umpathd.log")"
! u ls | grep -q '^x' || fail "a refused map was created"
finish
