#!/usr/bin/env python3
"""versioned_blocks.py - a versioned-block writer and checker for NBD
exports: every block carries its index and a sequence number, so a read
tells which write it got.  Stale writes show as blocks older than the
last write acknowledged for them.

  versioned_blocks.py write SOCK EXPORT STATE BLOCKS ROUNDS [DEPTH]
      ROUNDS rounds over BLOCKS blocks of 4 KiB, DEPTH writes in flight
      (default 8), each round waiting for all its replies; sequence
      numbers go on from STATE (JSON: {"acked": [...], "errors": n}),
      which is rewritten after every round ("round N" lines on stdout).
  versioned_blocks.py check SOCK EXPORT STATE [IMAGE]
      read every block through the export (and from IMAGE, a file of the
      same storage, if given); exit 1 if any is not its last acknowledged
      version.  With --write-errors-ok, writes that failed are allowed
      (their blocks must still hold the last acknowledged version).
  versioned_blocks.py read SOCK EXPORT BLOCKS
      read every block through the export, whatever its version: exit 1
      if a read fails (reads must not wait for unsettled writes).
"""
import json
import os
import socket
import struct
import sys

BS = 4096
NBDMAGIC, IHAVEOPT, REPMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, REPLY = 0x25609513, 0x67446698
CMD_READ, CMD_WRITE = 0, 1


def recvn(s, n):
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return bytes(b)


def connect(path, export):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(120)
    s.connect(path)
    magic, ihave, _ = struct.unpack(">QQH", recvn(s, 18))
    assert magic == NBDMAGIC and ihave == IHAVEOPT, "bad greeting"
    s.sendall(struct.pack(">I", 3))
    name = export.encode()
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, len(data)) + data)  # NBD_OPT_GO
    while True:
        magic, _, t, ln = struct.unpack(">QIII", recvn(s, 20))
        assert magic == REPMAGIC
        recvn(s, ln)
        if t == 1:
            return s
        if t & 0x80000000:
            raise SystemExit("export %r refused (%#x)" % (export, t))


def block(b, seq):
    head = struct.pack(">QQ", b, seq)
    return head + bytes([seq & 0xff]) * (BS - len(head))


def parse(data):
    b, seq = struct.unpack(">QQ", data[:16])
    return b, seq


def load(state):
    try:
        with open(state) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save(state, st):
    tmp = state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f)
    os.rename(tmp, state)


def write(sock, export, state, nblocks, rounds, depth=8):
    st = load(state) or {"acked": [0] * nblocks, "errors": 0, "seq": 0}
    s = connect(sock, export)
    for _ in range(rounds):
        st["seq"] += 1
        seq = st["seq"]
        todo = list(range(nblocks))
        inflight = {}
        while todo or inflight:
            while todo and len(inflight) < depth:
                b = todo.pop(0)
                cookie = b + 1
                s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_WRITE, cookie, b * BS, BS) +
                          block(b, seq))
                inflight[cookie] = b
            magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
            assert magic == REPLY and cookie in inflight, "bad reply"
            b = inflight.pop(cookie)
            if err:
                st["errors"] += 1
                print("write of block %d seq %d: error %d" % (b, seq, err), flush=True)
            else:
                st["acked"][b] = seq
        save(state, st)
        print("round %d" % seq, flush=True)
    s.close()


def read(sock, export, nblocks):
    s = connect(sock, export)
    for b in range(nblocks):
        s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_READ, 1, b * BS, BS))
        magic, err, _ = struct.unpack(">IIQ", recvn(s, 16))
        assert magic == REPLY
        if err:
            print("read of block %d: error %d" % (b, err))
            return 1
        gb, _ = parse(recvn(s, BS))
        if gb != b and gb != 0:
            print("read of block %d: holds block %d" % (b, gb))
            return 1
    s.close()
    print("%d block(s) read" % nblocks)
    return 0


def check(sock, export, state, image=None, errors_ok=False):
    st = load(state)
    stale = 0
    s = connect(sock, export)
    img = open(image, "rb") if image else None
    for b, want in enumerate(st["acked"]):
        s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_READ, 1, b * BS, BS))
        magic, err, _ = struct.unpack(">IIQ", recvn(s, 16))
        assert magic == REPLY
        if err:
            print("read of block %d: error %d" % (b, err))
            stale += 1
            continue
        seen = [("export", recvn(s, BS))]
        if img:
            img.seek(b * BS)
            seen.append(("image", img.read(BS)))
        for where, data in seen:
            gb, seq = parse(data)
            if gb != b or seq != want or data != block(b, seq):
                print("stale block %d (%s): holds seq %d, last acknowledged %d" %
                      (b, where, seq, want))
                stale += 1
    s.close()
    print("%d stale block(s) of %d, %d write error(s)" % (stale, len(st["acked"]), st["errors"]))
    return 1 if stale or (st["errors"] and not errors_ok) else 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) >= 6 and a[0] == "write":
        write(a[1], a[2], a[3], int(a[4]), int(a[5]), int(a[6]) if len(a) > 6 else 8)
    elif len(a) >= 4 and a[0] == "check":
        ok = "--write-errors-ok" in a
        a = [x for x in a if x != "--write-errors-ok"]
        sys.exit(check(a[1], a[2], a[3], a[4] if len(a) > 4 else None, ok))
    elif len(a) == 4 and a[0] == "read":
        sys.exit(read(a[1], a[2], int(a[3])))
    else:
        sys.exit(__doc__)
