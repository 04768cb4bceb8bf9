#!/usr/bin/env bash
# Description: writes and reads of any size at any offset through the FUSE
# file of a map with an O_DIRECT path (which takes only aligned I/O): random
# unaligned pwrite/pread agree with a reference copy and with the image, and
# concurrent async 512-byte writes to neighbouring sectors (a loop device
# with direct I/O) all survive the export's read-modify-write.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "no python3"
start_daemon

# Random writes of odd sizes at odd offsets, from an unaligned buffer too.
python3 - "$MNT/mp" "$IMG" <<'PY' || fail "unaligned writes"
import os, random, sys
mp, img = sys.argv[1], sys.argv[2]
size = 64 << 20
fd = os.open(mp, os.O_RDWR)
ref = bytearray(os.pread(fd, size, 0))
assert len(ref) == size, len(ref)
rnd = random.Random(7)
for i in range(400):
    n = rnd.choice([1, 6, 511, 512, 513, 4095, 4097, 100000, (1 << 20) + 3, 3 << 20])
    off = rnd.randrange(0, size - n + 1)
    if i % 3 == 0:
        off = off // 4096 * 4096
    data = rnd.randbytes(n)
    w = os.pwrite(fd, data, off)
    if w != n:
        sys.exit(f"pwrite {n} at {off}: {w}")
    ref[off:off + n] = data
    o = max(0, off - rnd.randrange(0, 5000))
    m = rnd.randrange(1, 20000)
    if os.pread(fd, m, o) != bytes(ref[o:o + m]):
        sys.exit(f"pread {m} at {o} after pwrite {n} at {off}")
# Writes ending at the end of the file, and a read across it.
os.pwrite(fd, b"end", size - 3)
ref[size - 3:] = b"end"
if os.pread(fd, 100, size - 10) != bytes(ref[size - 10:]):
    sys.exit("read across the end")
os.fsync(fd)
whole = b"".join(os.pread(fd, 1 << 20, o) for o in range(0, size, 1 << 20))
os.close(fd)
if whole != bytes(ref):
    sys.exit("file differs from the reference")
with open(img, "rb") as f:
    if f.read() != bytes(ref):
        sys.exit("image differs from the reference")
PY

# Eight writers, each its own 512-byte sectors, interleaved, O_DIRECT on a
# loop device with direct I/O: the loop driver sends them to the file as
# concurrent async writes, each a read-modify-write of a shared 4 KiB block.
loop_attach "$MNT/mp" --direct-io=on
L=$LOOPDEV
[ "$(cat "/sys/block/${L#/dev/}/loop/dio" 2>/dev/null)" = 1 ] ||
	echo "note: $L runs without direct I/O: its writes are not concurrent"
dd if=/dev/zero of="$L" bs=1M count=1 oflag=direct status=none || fail "zeroing $L"
pids=()
for t in 0 1 2 3 4 5 6 7; do
	python3 - "$L" "$t" <<'PY' &
import mmap, os, sys
dev, t = sys.argv[1], int(sys.argv[2])
fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 512)
for rep in range(4):
    for s in range(t, 1024, 8):
        buf[:] = bytes([t * 16 + rep + 1]) * 512
        os.pwrite(fd, buf, s * 512)
os.close(fd)
PY
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "writer $p"
done
python3 - "$L" <<'PY' || fail "sectors lost by concurrent read-modify-writes"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 1024 * 512)
os.preadv(fd, [buf], 0)
bad = [s for s in range(1024) if buf[s * 512:(s + 1) * 512] != bytes([(s % 8) * 16 + 4]) * 512]
if bad:
    sys.exit(f"{len(bad)} sectors wrong, first {bad[:8]}")
PY
loop_detach "$L"

finish
