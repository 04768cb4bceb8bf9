#!/usr/bin/env bash
# Description: add path PATH to MAP while a client writes and verifies
# through the map's NBD export: no I/O error, the table gains the path
# (group N: into that group; without: a new last group, as multipathd's
# failover grouping), the new path carries I/O, and queued I/O survives.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need fio python3 qemu-io
need_file_paths

one_file_daemon "1 queue_if_no_path 0 1 1 round-robin 0 1 1 $P1 1"

run_fio "$URI" add
wait_for 20 eval '[ "$(path_ios mp "$P1")" -gt 0 ]' || fail "no I/O through $P1"
expect_out "mp: path added to group 1" ut add path "$P2" to mp group 1
before=$(path_ios mp "$P2")
expect_out "0 131072 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 $P1 1 $P2 1" u table mp
fio_ok
# Round-robin in its group: the new path carries its share of new I/O
# (fio may have ended by the time the add went in, on a loaded machine).
timeout 30 qemu-io -f raw -c "read 0 1M" -c "read 1M 1M" -c "read 2M 1M" -c "read 3M 1M" \
	"$URI" >"$T/qio0.out" 2>&1 || fail "qemu-io: $(cat "$T/qio0.out")"
[ "$(path_ios mp "$P2")" -gt "$before" ] || fail "the added path took no I/O: $(u show paths mp)"

# Without a group: a group of its own, last.
expect_out "mp: path added to group 2 (a new group)" ut add path "$P3"
expect_out "0 131072 multipath 1 queue_if_no_path 0 2 1 round-robin 0 2 1 $P1 1 $P2 1 round-robin 0 1 1 $P3 1" u table mp
expect_err 1 "umpath: add path: $P3 is a path of the map already" ut add path "$P3"
D2=$T/disk2.img
truncate -s 64M "$D2"
expect_err 1 "umpath: add path: group 9: no such group (the map has 2)" \
	ut add path "$D2" to mp group 9

# I/O queued with every path failed survives the reload of an add.
u message mp fail_path "$P1" >/dev/null
u message mp fail_path "$P2" >/dev/null
u message mp fail_path "$P3" >/dev/null
timeout 30 qemu-io -f raw -c "write -P 0x5a 0 64k" "$URI" >"$T/qio.out" 2>&1 &
QIO=$!
BG_PIDS+=("$QIO")
sleep 0.5
exited "$QIO" && fail "a write completed with every path failed: $(cat "$T/qio.out")"
cp --sparse=always "$D" "$D2"
expect_out "mp: path added to group 1" ut add path "$D2" to mp group 1
if ! wait_for 20 exited "$QIO"; then
	fail "the queued write did not complete after add path"
	kill -KILL "$QIO" 2>/dev/null || true
fi
wait "$QIO" || fail "qemu-io: $(cat "$T/qio.out")"
grep -q "wrote 65536/65536" "$T/qio.out" || fail "qemu-io: $(cat "$T/qio.out")"

stop_daemon || fail "umpathd exited $? on SIGTERM"
finish
