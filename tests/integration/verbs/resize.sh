#!/usr/bin/env bash
# Description: resize map MAP after the paths' files grew: refused with the
# reason while the paths disagree (the map unchanged), then the map takes
# the new size, a client connecting again sees it (nbdinfo --size) and I/O
# past the old end works; the same size again is said so.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need nbdinfo qemu-io
need_file_paths

# mp: two paths to one file; two: two files, to disagree.
A=$T/a.img
B=$T/b.img
C=$T/c.img
truncate -s 16M "$A" "$B" "$C"
start_daemon --map "mp=0 0 1 1 round-robin 0 2 1 $A 1 file:$A?direct 1" \
	--map "two=0 0 1 1 round-robin 0 2 1 $B 1 $C 1" --nbd "unix:$T/nbd.sock"
URI="nbd+unix:///mp?socket=$T/nbd.sock"

expect_out 16777216 timeout 20 nbdinfo --size "$URI"
expect_out "mp: map is still the same size (32768 sectors)" u resize map mp

truncate -s 32M "$B"
before=$(u status two)
expect_err 1 "umpath: resize map: cannot resize: paths differ in size: $B: 33554432 bytes, $C: 16777216 bytes" \
	u resize map two
expect_out "$before" u status two
expect_out 16777216 timeout 20 nbdinfo --size "nbd+unix:///two?socket=$T/nbd.sock"

truncate -s 32M "$A"
expect_out "mp: resized from 32768 to 65536 sectors" u resize map mp
expect_out "mp	65536	0
two	32768	0" u ls
expect_out 33554432 timeout 20 nbdinfo --size "$URI"
timeout 20 qemu-io -f raw -c "write -P 0x7e 31M 64k" -c "read -P 0x7e 31M 64k" "$URI" \
	>"$T/qio.out" 2>&1 || fail "I/O past the old end: $(cat "$T/qio.out")"
grep -q "read 65536/65536" "$T/qio.out" || fail "qemu-io: $(cat "$T/qio.out")"
cmp <(dd if="$A" bs=1M skip=31 count=1 status=none | head -c 65536) \
	<(head -c 65536 /dev/zero | tr '\0' '\176') || fail "the write did not reach $A"

expect_err 1 "umpath: resize map: no such map" u resize map nomap
expect_err 2 "usage: umpath [-S SOCKET] resize map MAP" u resize mp

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
