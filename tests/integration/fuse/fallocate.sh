#!/usr/bin/env bash
# Description: fallocate on the FUSE file: --punch-hole and --zero-range
# read back as zeros (in the file and in the image) and leave their
# neighbours alone; plain allocation within the size succeeds, growing the
# file fails, and so do truncation to another size and creating files.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v fallocate >/dev/null || skip "no fallocate"
MiB=1048576
head -c $((8 * MiB)) /dev/urandom >"$T/r"
start_daemon
dd if="$T/r" of="$MNT/mp" bs=1M oflag=direct conv=notrunc status=none || fail "dd"

fallocate --punch-hole --offset $((1 * MiB)) --length $((1 * MiB)) "$MNT/mp" ||
	fail "fallocate --punch-hole"
fallocate --zero-range --offset $((3 * MiB + 4096)) --length $((512 * 1024)) "$MNT/mp" ||
	fail "fallocate --zero-range"
expect_zero "$MNT/mp" $((1 * MiB)) $((1 * MiB)) "punched hole"
expect_zero "$MNT/mp" $((3 * MiB + 4096)) $((512 * 1024)) "zeroed range"
expect_zero "$IMG" $((1 * MiB)) $((1 * MiB)) "punched hole in the image"
expect_zero "$IMG" $((3 * MiB + 4096)) $((512 * 1024)) "zeroed range in the image"
expect_same "$T/r" 0 "$MNT/mp" 0 $((1 * MiB)) "before the hole"
expect_same "$T/r" $((2 * MiB)) "$MNT/mp" $((2 * MiB)) $((1 * MiB + 4096)) "between"
expect_same "$T/r" $((3 * MiB + 4096 + 512 * 1024)) "$MNT/mp" $((3 * MiB + 4096 + 512 * 1024)) \
	$((5 * MiB - 4096 - 512 * 1024)) "after the zeroed range"

# A punch past the end is a no-op (the file does not grow).
fallocate --punch-hole --offset $((63 * MiB)) --length $((4 * MiB)) "$MNT/mp" ||
	fail "fallocate --punch-hole across the end"
expect_zero "$MNT/mp" $((63 * MiB)) $((1 * MiB)) "hole at the end"

fallocate --length $((64 * MiB)) "$MNT/mp" || fail "fallocate within the size"
fallocate --keep-size --offset $((60 * MiB)) --length $((8 * MiB)) "$MNT/mp" ||
	fail "fallocate --keep-size across the end"
if fallocate --length $((65 * MiB)) "$MNT/mp" 2>"$T/stderr"; then
	fail "fallocate beyond the size succeeded"
elif ! grep -q "File too large" "$T/stderr"; then
	fail "fallocate beyond the size: $(cat "$T/stderr")"
fi
truncate -s 64M "$MNT/mp" || fail "truncate to the same size"
if truncate -s 32M "$MNT/mp" 2>"$T/stderr"; then
	fail "truncate to 32M succeeded"
elif ! grep -q "Operation not permitted" "$T/stderr"; then
	fail "truncate to 32M: $(cat "$T/stderr")"
fi
if touch "$MNT/new" 2>/dev/null; then
	fail "creating a file succeeded"
fi
[ "$(stat -c %s "$MNT/mp")" = 67108864 ] || fail "size changed: $(stat -c %s "$MNT/mp")"

finish
