#!/usr/bin/env python3
"""nbd_tester.py SOCKET EXPORT MODE - the checks of the NBD reference
implementation's nbd-tester-client, written again (Debian's nbd-server
package does not ship that tool):
  read       read the whole export in 1 KiB..128 KiB requests, 512 in
             flight, every reply matched to its request;
  write      write the whole export with a pattern in random-sized
             pipelined requests, read it back, compare;
  flush      writes, FUA writes and FLUSHes interleaved and pipelined;
             every one answered without error, data as written;
  integrity  thousands of random reads and writes (FUA on some), up to 256
             in flight, replies taken in whatever order they come; no two
             requests in flight overlap a write, and every read returns
             what the last acknowledged write left there.
Exit 0 when the mode passes."""
import os
import random
import select
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdwire as w  # noqa: E402

SOCK, EXPORT, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(int(os.environ.get("SEED", "12345")))


class Conn:
    """Requests sent without blocking on replies; replies matched by cookie."""

    def __init__(self):
        self.s, self.size = w.connect(SOCK, EXPORT, timeout=60)
        self.inflight = {}   # cookie -> (type, off, len, payload)
        self.cookie = 0
        self.out = bytearray()
        self.s.setblocking(False)
        self.inbuf = bytearray()

    def send(self, typ, off, ln, flags=0, payload=b""):
        self.cookie += 1
        self.inflight[self.cookie] = (typ, off, ln, payload)
        self.out += w.request(typ, off, ln, self.cookie, flags, payload)
        return self.cookie

    def pump(self, want_replies):
        """Send what is queued and collect replies until want_replies came
        or the queue and the replies in flight are done."""
        done = []
        while len(done) < want_replies:
            r, wr, _ = select.select([self.s], [self.s] if self.out else [], [], 60)
            if not r and not wr:
                raise TimeoutError("no progress in 60 s with %d in flight" % len(self.inflight))
            if wr:
                n = self.s.send(self.out)
                del self.out[:n]
            if r:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise EOFError("server closed with %d in flight" % len(self.inflight))
                self.inbuf += chunk
                while len(self.inbuf) >= 16:
                    magic, err, cookie = w.struct.unpack(">IIQ", bytes(self.inbuf[:16]))
                    assert magic == w.REPLY, "bad reply magic 0x%x" % magic
                    typ, off, ln, _ = self.inflight[cookie]
                    need = 16 + (ln if typ == w.CMD_READ and not err else 0)
                    if len(self.inbuf) < need:
                        break
                    data = bytes(self.inbuf[16:need])
                    del self.inbuf[:need]
                    del self.inflight[cookie]
                    done.append((cookie, err, typ, off, ln, data))
        return done


def check(cond, what):
    if not cond:
        print("FAIL " + what)
        sys.exit(1)


def pattern(off, ln, tag):
    # each 512-byte sector carries its offset and a tag: misplaced data shows
    return b"".join((b"%016x%08x" % (o, tag)).ljust(512, b".") for o in range(off, off + ln, 512))


def mode_read(c):
    off, sent = 0, 0
    while off < c.size:
        ln = min(rng.choice([1024, 4096, 65536, 131072]), c.size - off)
        c.send(w.CMD_READ, off, ln)
        off += ln
        sent += 1
        if len(c.inflight) >= 512:
            for _, err, *_ in c.pump(len(c.inflight) - 256):
                check(not err, "read error %d" % err)
    for _, err, *_ in c.pump(len(c.inflight)):
        check(not err, "read error %d" % err)
    print("ok   read: %d requests over %d bytes" % (sent, c.size))


def mode_write(c):
    off, image = 0, bytearray(c.size)
    while off < c.size:
        ln = min(rng.choice([512, 4096, 65536, 131072]), c.size - off)
        p = pattern(off, ln, 1)
        image[off:off + ln] = p
        c.send(w.CMD_WRITE, off, ln, payload=p)
        off += ln
        if len(c.inflight) >= 256:
            for _, err, *_ in c.pump(len(c.inflight) - 128):
                check(not err, "write error %d" % err)
    for _, err, *_ in c.pump(len(c.inflight)):
        check(not err, "write error %d" % err)
    for off in range(0, c.size, 131072):
        c.send(w.CMD_READ, off, min(131072, c.size - off))
    for _, err, _, off, ln, data in c.pump(len(c.inflight)):
        check(not err and data == image[off:off + ln], "read back at %d" % off)
    print("ok   write: whole export written and read back")


def mode_flush(c):
    image = {}
    for i in range(2000):
        k = rng.randrange(4)
        if k == 0:
            c.send(w.CMD_FLUSH, 0, 0)
        else:
            off = rng.randrange(c.size // 4096) * 4096
            if any(t == w.CMD_WRITE and o == off for t, o, _, _ in c.inflight.values()):
                # two writes of one block in flight may land in any order
                for _, err, *_ in c.pump(len(c.inflight)):
                    check(not err, "error %d" % err)
            p = pattern(off, 4096, i)
            c.send(w.CMD_WRITE, off, 4096, w.FLAG_FUA if k == 1 else 0, p)
            image[off] = p
        if len(c.inflight) >= 128:
            for _, err, typ, *_ in c.pump(len(c.inflight)):
                check(not err, "error %d on %s" % (err, "FLUSH" if typ == w.CMD_FLUSH else "WRITE"))
    for _, err, *_ in c.pump(len(c.inflight)):
        check(not err, "error %d" % err)
    for off in image:
        c.send(w.CMD_READ, off, 4096)
    for _, err, _, off, ln, data in c.pump(len(c.inflight)):
        check(not err and data == image[off], "data after flush at %d" % off)
    print("ok   flush: 2000 writes, FUA writes and flushes pipelined; data as written")


def mode_integrity(c):
    B = 4096
    nblocks = c.size // B
    image = bytearray(c.size)
    # start from a known image
    for off in range(0, c.size, 131072):
        p = pattern(off, 131072, 0)
        image[off:off + 131072] = p
        c.send(w.CMD_WRITE, off, 131072, payload=p)
    for _, err, *_ in c.pump(len(c.inflight)):
        check(not err, "initial write error %d" % err)
    busy = {}  # block -> "r" count or "w"
    pending = {}  # cookie -> (typ, first, n, payload)
    reads = writes = 0
    for i in range(20000):
        while True:
            first = rng.randrange(nblocks)
            n = min(rng.choice([1, 1, 2, 8, 32]), nblocks - first)
            is_write = rng.random() < 0.5
            blocks = range(first, first + n)
            if is_write and any(b in busy for b in blocks):
                pass
            elif not is_write and any(busy.get(b) == "w" for b in blocks):
                pass
            else:
                break
            # the range is in use: wait for a reply and try again
            for cookie, err, typ, off, ln, data in c.pump(1):
                retire(c, cookie, err, typ, off, ln, data, image, busy, pending)
        if is_write:
            p = pattern(first * B, n * B, i + 1)
            ck = c.send(w.CMD_WRITE, first * B, n * B, w.FLAG_FUA if i % 7 == 0 else 0, p)
            for b in blocks:
                busy[b] = "w"
            pending[ck] = p
            writes += 1
        else:
            ck = c.send(w.CMD_READ, first * B, n * B)
            for b in blocks:
                busy[b] = busy.get(b, 0) + 1
            pending[ck] = None
            reads += 1
        if len(c.inflight) >= 256:
            for cookie, err, typ, off, ln, data in c.pump(len(c.inflight) - 128):
                retire(c, cookie, err, typ, off, ln, data, image, busy, pending)
    for cookie, err, typ, off, ln, data in c.pump(len(c.inflight)):
        retire(c, cookie, err, typ, off, ln, data, image, busy, pending)
    print("ok   integrity: %d reads and %d writes, random and overlapping in time; "
          "every read saw the last write" % (reads, writes))


def retire(c, cookie, err, typ, off, ln, data, image, busy, pending):
    check(not err, "error %d at %d+%d" % (err, off, ln))
    p = pending.pop(cookie)
    for b in range(off // 4096, (off + ln) // 4096):
        if typ == w.CMD_WRITE:
            del busy[b]
        else:
            busy[b] -= 1
            if not busy[b]:
                del busy[b]
    if typ == w.CMD_WRITE:
        image[off:off + ln] = p
    else:
        check(data == image[off:off + ln], "read at %d+%d: not the last written data" % (off, ln))


c = Conn()
{"read": mode_read, "write": mode_write, "flush": mode_flush, "integrity": mode_integrity}[MODE](c)
c.s.setblocking(True)
c.s.sendall(w.request(w.CMD_DISC, 0, 0, 0))
sys.exit(0)
