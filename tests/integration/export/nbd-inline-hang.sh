#!/usr/bin/env bash
# Description: a worker thread blocked in an inline write is replaced, so
# that a hung path holds a thread and not the connection (docs/writes.md).
# Path A is a loop device over a FUSE file (nbdfuse, nbdkit with the pause
# filter), a block device umpath writes to inline; path B is the image
# itself, in a second priority group.  With nbdkit paused, a 512-byte
# write to a block A has never read blocks in the NBD worker thread (the
# page cache must read the rest of the block first).  On the same
# connection a read of a cached block, and a whole-block write, must then
# be answered at once (by the thread that replaced the blocked one), the
# log must say a thread was replaced, and after nbdkit resumes the blocked
# write ends (past io_timeout: retried on B) with its data on the image.
# Twice: the second time (A reinstated, past the path's 1 s back-off) the
# replaced thread of the first is the spare that takes over.  With
# UMPATH_NBD_INLINE=0 the same I/O goes to the writer threads, and the
# whole-block write waits behind the blocked one until io_timeout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3
MODE=${3:-inline}

IMG=$T/lun.img
head -c 16M /dev/urandom >"$IMG"
pausable_loop "$IMG"

[ "$MODE" = writers ] && export UMPATH_NBD_INLINE=0

start_daemon --io-timeout 2 --policy path_checker=none --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 2 1 round-robin 0 1 1 $A 1 round-robin 0 1 1 $IMG 1"

# round: the hung write's offset; the second round, a second after the
# first (the path's back-off), gets a spare thread back to work.
for round in 1 2; do
if [ $round = 2 ]; then
  sleep 1.2
  u message lun reinstate_path "$A" >/dev/null || fail "reinstate $A"
  u message lun switch_group 1 >/dev/null || fail "switch_group 1"	# no failback by default
fi
timeout 60 python3 - "$(dirname "$0")" "$T/nbd.sock" "$T/p.ctl" "$IMG" "$MODE" "$round" <<'PY' || fail "round $round: I/O through the export (above)"
import os, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed: timeout"))	# resume nbdkit first
sys.path.insert(0, sys.argv[1])
import nbdwire as w

sock, ctl, img, mode, rnd = sys.argv[2:]
hung_off = (int(rnd) * 2 + 2 << 20) + 512	# 4 MiB + 512, then 6 MiB + 512
whole_off = (int(rnd) + 11) << 20	# 12 MiB, then 13 MiB

def pause(c):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(ctl)
    s.sendall(c.encode()); assert s.recv(1).decode() == c.upper()

s, size = w.connect(sock, "lun", timeout=30)
# Block 0 into A's page cache, and a first write (inline here) to warm up.
s.sendall(w.request(w.CMD_READ, 0, 4096, 1))
err, _ = w.reply_header(s); assert err == 0, err
block0 = w.recvn(s, 4096)
s.sendall(w.request(w.CMD_WRITE, 8 << 20, 4096, 2, payload=b"\x11" * 4096))
assert w.reply_header(s) == (0, 2)

pause("p")
try:
    t0 = time.monotonic()
    hung = b"\xa5" * 512
    s.sendall(w.request(w.CMD_WRITE, hung_off, 512, 10, payload=hung))
    time.sleep(0.05)
    s.sendall(w.request(w.CMD_READ, 0, 4096, 11))
    s.sendall(w.request(w.CMD_WRITE, whole_off, 4096, 12, payload=b"\x5a" * 4096))
    got = {}
    while len(got) < 2:
        err, cookie = w.reply_header(s)
        assert cookie in (11, 12), "the blocked write (cookie %d) answered while paused" % cookie
        if cookie == 11:
            assert w.recvn(s, 4096) == block0, "read of block 0: other data"
        got[cookie] = (err, time.monotonic() - t0)
    print("while paused:", {k: "err %d after %.3f s" % v for k, v in got.items()})
    for k, (err, t) in got.items():
        assert err == 0, (k, err)
    # The read goes on at once either way.  The whole-block write does
    # inline: after the replacement the path's writes go to its writer
    # thread, which is free.  With the writers, it waits behind the blocked
    # write, which holds the path's writer, until its deadline, and is then
    # retried on B.
    for k in (11, 12) if mode == "inline" else (11,):
        assert got[k][1] < 1.0, "request %d waited %.3f s behind the blocked write" % (k, got[k][1])
    time.sleep(max(0, 2.5 - (time.monotonic() - t0)))	# past io_timeout
finally:
    pause("r")
err, cookie = w.reply_header(s)
print("blocked write: err %d after %.3f s" % (err, time.monotonic() - t0))
assert (err, cookie) == (0, 10), (err, cookie)
s.sendall(w.request(w.CMD_READ, hung_off, 512, 13))
assert w.reply_header(s) == (0, 13)
assert w.recvn(s, 512) == hung, "the blocked write's data is not read back"
s.sendall(w.request(w.CMD_DISC, 0, 0, 14))
s.close()
with open(img, "rb") as f:
    f.seek(hung_off)
    assert f.read(512) == hung, "the blocked write's data is not on the image"
PY
done
# The whole-block writes is in A's page cache (A failed before writing it
# back): on the image once written back (not sync: a hung device
# elsewhere on the machine would hold it).
blockdev --flushbufs "$A" || fail "blockdev --flushbufs $A"
for m in 12 13; do
  cmp -s -n 4096 -i $((m << 20)):0 "$IMG" <(head -c 4096 /dev/zero | tr '\0' '\132') ||
    fail "the whole-block write at $m MiB is not on the image after the flush"
done

if [ "$MODE" = inline ]; then
  grep -q "nbd: a worker thread blocked in a write for over 10 ms: replaced (2 so far)" "$LOG" ||
    fail "not two threads replaced: $(grep -c 'worker thread blocked' "$LOG")"
else
  ! grep -q "worker thread blocked" "$LOG" || fail "a thread was replaced with UMPATH_NBD_INLINE=0"
fi
echo "PASS"
