#!/usr/bin/env bash
# Description: where the kernel has no ublk (no /dev/ublk-control, as on
# this build machine), `umpathd --ublk` says so naming the module to load
# (modprobe ublk_drv) and goes on serving its maps over NBD; `umpath create
# --ublk` creates the map and warns the same, and the map is read and
# written over NBD.  (Run where /dev/ublk-control exists, it is skipped:
# tests/vm/ covers ublk itself.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io
[ -e /dev/ublk-control ] && skip "this kernel has ublk: tests/vm/ublk-*.sh test it"

start_daemon --ublk --mem-store 64M:a,b \
  --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' \
  --nbd "unix:$T/nbd.sock"
grep -q 'map mp has no /dev/ublkbN: /dev/ublk-control: .*modprobe ublk_drv.*served over NBD only' \
	"$LOG" || fail "no clear ublk error in the log: $(cat "$LOG")"
[ "$(u ls | cut -f1,2)" = "$(printf 'mp\t131072')" ] || fail "umpath ls: $(u ls)"
u ls | grep -q ublkb && fail "umpath ls shows a ublk device that cannot exist: $(u ls)"

qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M' \
	"nbd+unix:///mp?socket=$T/nbd.sock" >"$T/io.out" 2>&1 ||
	fail "NBD I/O on the map failed: $(cat "$T/io.out")"

# One map asking for ublk at create: created, with a warning.
u mem store 64M c d
out=$(u create --ublk --ublk-id 7 m2 0 0 1 1 round-robin 0 2 1 mem:c 1 mem:d 1 2>&1) ||
	fail "create --ublk failed where only NBD can serve it: $out"
grep -q '^warning: map m2 has no /dev/ublkbN: .*modprobe ublk_drv' <<<"$out" ||
	fail "create --ublk did not warn: $out"
qemu-io -f raw -c 'write -P 0x33 0 64k' -c 'read -P 0x33 0 64k' \
	"nbd+unix:///m2?socket=$T/nbd.sock" >"$T/io2.out" 2>&1 ||
	fail "NBD I/O on m2 failed: $(cat "$T/io2.out")"
# A bad id is refused before anything is made.
u create --ublk-id -1 m3 0 0 1 1 round-robin 0 1 1 mem:c 1 >"$T/bad.out" 2>&1 &&
	fail "create --ublk-id -1 accepted"
grep -q 'not a device number' "$T/bad.out" || fail "bad --ublk-id: $(cat "$T/bad.out")"
finish
