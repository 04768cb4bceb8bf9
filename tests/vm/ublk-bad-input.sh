#!/usr/bin/env bash
# Description: what the ublk export refuses, and how: a device number
# already taken refuses the create with the reason and leaves no map; a
# remove while a process holds the device open is refused as busy with
# nothing torn down, and goes once it is closed; a umpathd that may not
# open /dev/ublk-control (not root) names the reason and the module and
# still serves the map over NBD.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
need qemu-io setpriv
[ -e /dev/ublk-control ] || skip "no /dev/ublk-control in the guest (ublk_drv)"

start_daemon --mem-store 64M:a,b,c,d
u create --ublk --ublk-id 5 m1 0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1 ||
	{ fail "create --ublk --ublk-id 5 failed"; finish; }
[ -b /dev/ublkb5 ] || fail "no /dev/ublkb5 after create --ublk-id 5"
[ "$(u ls | awk '$1 == "m1" { print $4 }')" = /dev/ublkb5 ] || fail "umpath ls: $(u ls)"

step "id taken"
u create --ublk --ublk-id 5 m2 0 0 1 1 round-robin 0 2 1 mem:c 1 mem:d 1 >"$T/taken.out" 2>&1 &&
	fail "a second create with --ublk-id 5 succeeded"
grep -q 'ublk id 5 is taken' "$T/taken.out" || fail "id taken, but: $(cat "$T/taken.out")"
u ls | grep -q '^m2' && fail "a refused create left map m2: $(u ls)"

step "remove while open"
exec 3</dev/ublkb5
u remove m1 >"$T/rm.out" 2>&1 && fail "remove of a map whose /dev/ublkb5 is open succeeded"
grep -q 'open by process.*Device or resource busy' "$T/rm.out" ||
	fail "remove refused without saying busy: $(cat "$T/rm.out")"
dd if=/dev/ublkb5 of=/dev/null bs=4k count=16 iflag=direct status=none ||
	fail "/dev/ublkb5 fails after a refused remove"
exec 3<&-
u remove m1 || fail "remove once closed failed"
[ -e /dev/ublkb5 ] && fail "/dev/ublkb5 still there after remove"

step "not permitted"
stop_daemon
# The daemon runs as nobody: it must reach its directory.
chmod 755 "$T" && mkdir -p "$T/user" && chmod 777 "$T/user"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$UMPATHD" --control "$T/user/ctl" --ublk --mem-store 16M:x --nbd "unix:$T/user/nbd.sock" \
	--map "mu=0 0 1 1 round-robin 0 1 1 mem:x 1" 2>"$T/user/log" &
upid=$!
BG_PIDS+=("$upid")
wait_for 10 test -S "$T/user/nbd.sock" || fail "the unprivileged umpathd did not start: $(cat "$T/user/log")"
grep -q 'map mu has no /dev/ublkbN: /dev/ublk-control: Permission denied: .*root.*modprobe ublk_drv' \
	"$T/user/log" || fail "no clear error for a ublk-control not permitted: $(cat "$T/user/log")"
qemu-io -f raw -c 'write -P 0x5a 0 64k' -c 'read -P 0x5a 0 64k' \
	"nbd+unix:///mu?socket=$T/user/nbd.sock" >"$T/io.out" 2>&1 ||
	fail "NBD I/O on the unprivileged daemon's map failed: $(cat "$T/io.out")"
kill "$upid"
finish
