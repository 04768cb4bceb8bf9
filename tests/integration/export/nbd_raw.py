#!/usr/bin/env python3
"""nbd_raw.py - a deliberately bad NBD client: speaks the handshake by hand
and sends malformed or out-of-range requests, checking that the server
answers as the protocol says and that only the offending connection ends.
Usage: nbd_raw.py SOCKET EXPORT"""
import socket
import struct
import sys

SOCK, EXPORT = sys.argv[1], sys.argv[2].encode()
NBDMAGIC, IHAVEOPT, REPMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, REPLY = 0x25609513, 0x67446698
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)


def opt_reply(s):
    magic, o, t, ln = struct.unpack(">QIII", recvn(s, 20))
    assert magic == REPMAGIC, hex(magic)
    return o, t, recvn(s, ln)


def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(SOCK)
    magic, ihave, flags = struct.unpack(">QQH", recvn(s, 18))
    assert magic == NBDMAGIC and ihave == IHAVEOPT, "bad greeting"
    s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    return s


def go(s, name=EXPORT):
    opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    size = None
    while True:
        o, t, data = opt_reply(s)
        if t == 3 and struct.unpack(">H", data[:2])[0] == 0:
            size = struct.unpack(">QH", data[2:12])[0]
        elif t == 1:
            return size
        else:
            return ("error", t)


def request(s, typ, off, ln, flags=0, cookie=7, payload=b"", magic=REQ):
    s.sendall(struct.pack(">IHHQQI", magic, flags, typ, cookie, off, ln) + payload)


def reply(s):
    magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
    assert magic == REPLY, hex(magic)
    return err, cookie


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


# options: unknown option -> ERR_UNSUP; unknown export -> ERR_UNKNOWN; LIST
s = connect()
opt(s, 99)
o, t, _ = opt_reply(s)
check(o == 99 and t == 0x80000001, "unknown option answered NBD_REP_ERR_UNSUP")
opt(s, 8)  # STRUCTURED_REPLY: not offered
o, t, _ = opt_reply(s)
check(t == 0x80000001, "structured replies refused with NBD_REP_ERR_UNSUP")
check(go(s, b"no-such-export") == ("error", 0x80000006), "unknown export: NBD_REP_ERR_UNKNOWN")
opt(s, 3)
names = []
while True:
    o, t, data = opt_reply(s)
    if t == 1:
        break
    names.append(data[4:4 + struct.unpack(">I", data[:4])[0]])
check(EXPORT in names, "NBD_OPT_LIST names the export")
opt(s, 2)
o, t, _ = opt_reply(s)
check(t == 1 and closed(s), "NBD_OPT_ABORT acknowledged, then closed")

# a healthy client, kept open across the bad ones
good = connect()
size = go(good)
check(isinstance(size, int) and size > 0, "GO gives the export size %r" % (size,))
request(good, 1, 0, 4096, cookie=1, payload=b"\x5a" * 4096)
check(reply(good) == (0, 1), "write ok")

# out of range: EINVAL replies, connection stays
b = connect()
go(b)
request(b, 0, size - 512, 4096, cookie=2)
check(reply(b) == (22, 2), "read past the end: NBD_EINVAL")
request(b, 1, size, 512, cookie=3, payload=b"\0" * 512)
check(reply(b) == (22, 3), "write past the end: NBD_EINVAL, payload consumed")
request(b, 4, size - 1, 2, cookie=4)
check(reply(b) == (22, 4), "trim past the end: NBD_EINVAL")
request(b, 9, 0, 0, cookie=5)
check(reply(b) == (22, 5), "unknown command: NBD_EINVAL")
request(b, 0, 0, 512, flags=0x40, cookie=6)
check(reply(b) == (22, 6), "unknown flag: NBD_EINVAL")
request(b, 0, 0, 512, cookie=8)
err, c = reply(b)
check(err == 0 and c == 8 and recvn(b, 512) == b"\x5a" * 512, "the same connection still reads")
# bad magic: that connection ends
request(b, 0, 0, 512, magic=0xDEADBEEF)
check(closed(b), "bad request magic closes the connection")

# oversized write: connection ends
c2 = connect()
go(c2)
request(c2, 1, 0, 64 << 20)
check(closed(c2), "a 64 MiB write closes the connection")

# garbage in the handshake
c3 = socket.socket(socket.AF_UNIX)
c3.settimeout(10)
c3.connect(SOCK)
recvn(c3, 18)
c3.sendall(struct.pack(">I", 3) + b"garbage-garbage-garbage!")
check(closed(c3), "garbage option header closes the connection")

# the good client never noticed
request(good, 0, 0, 4096, cookie=9)
err, c = reply(good)
check(err == 0 and c == 9 and recvn(good, 4096) == b"\x5a" * 4096, "the healthy client is unaffected")
request(good, 3, 0, 0, cookie=10)
check(reply(good) == (0, 10), "flush ok")
request(good, 2, 0, 0)
check(closed(good), "NBD_CMD_DISC ends the connection")

print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
