#!/usr/bin/env bash
# Description: `umpath remove NAME --force` on a map an NBD client holds
# does what `dmsetup remove --force` does: the map's table becomes one that
# fails every I/O, so the client (qemu-io, connection kept open) gets EIO
# for reads and writes from then on instead of reaching the storage; the
# name is free at once, and a new map of that name on the same store serves
# a new client while the old one still gets EIO; the old map goes when its
# last client lets go.  (It used to be unlisted only, its clients still
# reading and writing: two writers once a new map took the name.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io

start_daemon --mem-store 64M:a,b \
  --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' \
  --nbd "unix:$T/nbd.sock"
U="nbd+unix:///mp?socket=$T/nbd.sock"

# The old client: qemu-io reading its commands from a pipe we keep open.
mkfifo "$T/cmd"
qemu-io -f raw "$U" <"$T/cmd" >"$T/old.out" 2>&1 &
QPID=$!
EXTRA_CLEANUP="kill $QPID 2>/dev/null || true"
exec 3>"$T/cmd"
# count PATTERN: lines of the old client's output matching PATTERN.
count() { grep -cE -- "$1" "$T/old.out" || true; }
# say CMD PATTERN N: send a command, wait for the Nth line matching PATTERN.
say()
{
	echo "$1" >&3
	at_n() { [ "$(count "$1")" -ge "$2" ]; }
	wait_for 10 at_n "$2" "$3" || fail "qemu-io: no answer to '$1': $(cat "$T/old.out")"
}

say 'write -P 0xab 0 64k' 'wrote 65536/65536' 1
say 'read -P 0xab 0 64k' 'read 65536/65536' 1
[ "$(u ls | cut -f3)" = 1 ] || fail "the client does not hold the map: $(u ls)"

u remove mp || true	# refused: the map is open
u ls | grep -q '^mp' || fail "remove without --force removed an open map"
u remove mp --force || fail "remove --force"
! u ls | grep -q '^mp' || fail "the name is still listed"

# From now on, every I/O of the old client fails, none reaches the store.
say 'read 0 64k' 'read failed' 1
say 'write -P 0xcd 0 64k' 'write failed' 1
say 'read 1M 4k' 'read failed' 2
grep -q 'Input/output error' "$T/old.out" || fail "not EIO: $(cat "$T/old.out")"

# A new map of the same name over the same store: its data is the old
# writes only (0xab, never 0xcd), and a new client works while the old
# one keeps getting EIO.
u create mp '0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1' || fail "create after remove --force"
out=$(qemu-io -f raw "$U" -c 'read -P 0xab 0 64k' -c 'write -P 0x11 64k 4k' 2>&1)
! grep -qiE 'fail|error|mismatch|pattern' <<<"$out" || fail "new client: $out"
say 'read 0 4k' 'read failed' 3

# The old client lets go: the old map is freed (the daemon logs it).
exec 3>&-
wait_for 10 exited "$QPID" || fail "qemu-io did not exit"
wait_for 10 grep -q "map mp: freed after remove --force" "$LOG" ||
	fail "the removed map was not freed when its last client left"
u table mp | grep -q 'mem:a' || fail "the new map changed: $(u table mp)"
finish
