#!/usr/bin/env bash
# Description: add path refuses a path whose size differs from the map's,
# naming the path and both sizes, a path that cannot be opened, and any
# add while a loaded table waits for resume; a
# refused add leaves the map as it was (its status line byte for byte).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_file_paths

truncate -s 16M "$T/a.img"
truncate -s 8M "$T/small.img"
truncate -s 32M "$T/big.img"
start_daemon --map "mp=0 0 1 1 round-robin 0 1 1 $T/a.img 1"

before=$(u status mp)
expect_err 1 "umpath: add path: $T/small.img has 8388608 bytes, the map 16777216: all paths of a map have its size" \
	u add path "$T/small.img"
expect_err 1 "umpath: add path: $T/big.img has 33554432 bytes, the map 16777216: all paths of a map have its size" \
	u add path "$T/big.img" to mp group 1
expect_err 1 "umpath: add path: error getting device: $T/none.img: No such file or directory" \
	u add path "$T/none.img"
expect_out "$before" u status mp
expect_out "0 32768 multipath 0 0 1 1 round-robin 0 1 1 $T/a.img 1" u table mp
expect_err 1 "umpath: add path: no such map" u add path "$T/a.img" to nomap
expect_err 2 "usage: umpath [-S SOCKET] add path PATH [to MAP] [group N]" u add path
expect_err 1 "umpath: add path: group x: not a group number" u add path "$T/a.img" group x

# A table loaded for the user's resume is not replaced behind their back.
truncate -s 16M "$T/b.img"
u load mp "0 0 1 1 round-robin 0 1 1 $T/a.img 1" >/dev/null
expect_err 1 "umpath: add path: a loaded table waits for resume (resume the map, or reload it)" \
	u add path "$T/b.img"
expect_out "$before" u status mp

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
