#!/usr/bin/env python3
"""nbd_greedy.py - an NBD client that sends COUNT reads of LENGTH bytes and
never reads a reply: it holds its connection until killed.  Prints "sent"
once every request is out (or the server stopped taking them).
Usage: nbd_greedy.py SOCKET EXPORT COUNT LENGTH"""
import socket
import struct
import sys
import time

SOCK, EXPORT = sys.argv[1], sys.argv[2].encode()
COUNT, LENGTH = int(sys.argv[3]), int(sys.argv[4])
IHAVEOPT, REQ = 0x49484156454F5054, 0x25609513


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


s = socket.socket(socket.AF_UNIX)
s.connect(SOCK)
recvn(s, 18)                                   # magic, IHAVEOPT, flags
s.sendall(struct.pack(">I", 3))                # fixed newstyle, no zeroes
s.sendall(struct.pack(">QII", IHAVEOPT, 1, len(EXPORT)) + EXPORT)
size, _ = struct.unpack(">QH", recvn(s, 10))   # NBD_OPT_EXPORT_NAME's answer
s.settimeout(5)
try:
    for i in range(COUNT):
        off = (i * LENGTH) % max(size - LENGTH + 1, 1)
        s.sendall(struct.pack(">IHHQQI", REQ, 0, 0, i, off, LENGTH))
except (socket.timeout, OSError):
    pass                                       # the server stopped reading
print("sent", flush=True)
while True:
    time.sleep(3600)
