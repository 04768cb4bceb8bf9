#!/usr/bin/env bash
# Description: an open FUSE file holds its map open: "umpath remove" fails
# (EBUSY) while it is open and the open count shows it; after close the
# remove succeeds and the file leaves the directory.  Maps created later
# appear in it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_daemon
truncate -s 1M "$T/b.img"

exec 3<>"$MNT/mp"
[ "$(u ls)" = "mp	131072	1" ] || fail "ls while open: '$(u ls)'"
if u remove mp 2>"$T/stderr"; then
	fail "remove while open succeeded"
elif ! grep -q "open by a client" "$T/stderr"; then
	fail "remove while open: $(cat "$T/stderr")"
fi
[ -e "$MNT/mp" ] || fail "file gone after a refused remove"
# The open file still works.
echo hello >&3 || fail "write to the open file"
exec 3>&-

# The kernel sends RELEASE after close() returns: the open count drops
# soon after, not at once.
wait_for 5 u remove mp 2>"$T/stderr" || fail "remove after close: $(cat "$T/stderr")"
[ ! -e "$MNT/mp" ] || fail "file still there after remove"
[ -z "$(ls -A "$MNT")" ] || fail "listing after remove: '$(ls -A "$MNT")'"

u create other "0 0 1 1 round-robin 0 1 1 $T/b.img 1" || fail "create"
[ "$(ls "$MNT")" = other ] || fail "listing after create: '$(ls "$MNT")'"
[ "$(stat -c %s "$MNT/other")" = 1048576 ] || fail "size of the new map's file"
head -c 4096 "$MNT/other" | cmp -s - <(head -c 4096 /dev/zero) || fail "read of the new file"
# Same name again, another table: the file follows the registry.
u remove other || fail "remove other"
u create other "0 0 1 1 round-robin 0 1 1 $IMG 1" || fail "create other again"
[ "$(stat -c %s "$MNT/other")" = 67108864 ] || fail "size after re-create: $(stat -c %s "$MNT/other")"

finish
