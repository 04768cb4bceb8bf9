#!/usr/bin/env bash
# Description: dd through the FUSE file of a map over two paths to one
# image: writes with and without O_DIRECT read back equal, land in the image
# at their offsets, and the file behaves like a fixed-size device at its end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MiB=1048576
head -c $((8 * MiB)) /dev/urandom >"$T/r1"
head -c $((8 * MiB)) /dev/urandom >"$T/r2"
start_daemon

st=$(stat -c '%s %a %F' "$MNT/mp")
[ "$st" = "67108864 600 regular file" ] || fail "stat: '$st'"
[ "$(ls "$MNT")" = mp ] || fail "listing: '$(ls "$MNT")'"

# O_DIRECT, and no conv=notrunc: O_TRUNC is ignored as on a block device.
dd if="$T/r1" of="$MNT/mp" bs=1M oflag=direct status=none || fail "dd oflag=direct"
# Without O_DIRECT (the file is direct_io anyway), at 16 MiB; the map is
# flushed at close.
dd if="$T/r2" of="$MNT/mp" bs=1M seek=16 conv=notrunc status=none || fail "dd buffered"
# Odd request sizes within one write (dd bs=3M: split by the kernel).
dd if="$T/r2" of="$MNT/mp" bs=3M seek=$((32 * MiB)) oflag=seek_bytes conv=notrunc,fsync status=none ||
	fail "dd bs=3M"

dd if="$MNT/mp" of="$T/back1" bs=1M count=8 iflag=direct status=none || fail "read back 1"
dd if="$MNT/mp" of="$T/back2" bs=1M skip=16 count=8 iflag=direct status=none || fail "read back 2"
expect_same "$T/r1" 0 "$T/back1" 0 $((8 * MiB)) "O_DIRECT write, read back"
expect_same "$T/r2" 0 "$T/back2" 0 $((8 * MiB)) "buffered write, read back"
expect_same "$T/r2" 0 "$MNT/mp" $((32 * MiB)) $((8 * MiB)) "bs=3M write, buffered read"

# The image has the data where the map put it.
expect_same "$T/r1" 0 "$IMG" 0 $((8 * MiB)) "image after O_DIRECT write"
expect_same "$T/r2" 0 "$IMG" $((32 * MiB)) $((8 * MiB)) "image after bs=3M write"
expect_same "$T/r2" 0 "$IMG" $((16 * MiB)) $((8 * MiB)) "image after buffered write"

# No path failed on the way.
for p in "$IMG" "file:$IMG?direct"; do
	grep -q "$p A 0" <<<"$(u status mp)" || fail "path $p not active: $(u status mp)"
done

# At the end: reads return nothing, writes fail with ENOSPC; a write across
# the end is short.
n=$(dd if="$MNT/mp" bs=1M skip=64 count=1 iflag=direct status=none | wc -c)
[ "$n" = 0 ] || fail "read at the end returned $n bytes"
n=$(dd if="$MNT/mp" bs=1M skip=$((64 * MiB - 4096)) iflag=skip_bytes,direct status=none | wc -c)
[ "$n" = 4096 ] || fail "read across the end returned $n bytes, want 4096"
if dd if="$T/r1" of="$MNT/mp" bs=1M seek=64 count=1 conv=notrunc status=none 2>"$T/stderr"; then
	fail "write at the end succeeded"
elif ! grep -q "No space left on device" "$T/stderr"; then
	fail "write at the end: $(cat "$T/stderr")"
fi
if dd if="$T/r1" of="$MNT/mp" bs=1M seek=$((64 * MiB - 4096)) oflag=seek_bytes,direct count=1 \
      conv=notrunc 2>"$T/stderr"; then
	fail "write across the end succeeded"
fi
expect_same "$T/r1" 0 "$IMG" $((64 * MiB - 4096)) 4096 "short write at the end"
[ "$(stat -c %s "$MNT/mp")" = 67108864 ] || fail "size changed: $(stat -c %s "$MNT/mp")"
[ "$(stat -c %s "$IMG")" = 67108864 ] || fail "image size changed: $(stat -c %s "$IMG")"

finish
