#!/usr/bin/env python3
"""nbd_greedy.py - an NBD client that sends COUNT reads of LENGTH bytes and
never reads a reply: it holds its connection until killed.  Prints "sent"
once every request is out (or the server stopped taking them).
Usage: nbd_greedy.py SOCKET EXPORT COUNT LENGTH"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export"))
import nbdwire as w  # noqa: E402

SOCK, EXPORT = sys.argv[1], sys.argv[2]
COUNT, LENGTH = int(sys.argv[3]), int(sys.argv[4])

s, size = w.connect(SOCK, EXPORT)
s.settimeout(5)
try:
    for i in range(COUNT):
        off = (i * LENGTH) % max(size - LENGTH + 1, 1)
        s.sendall(w.request(w.CMD_READ, off, LENGTH, i))
except OSError:
    pass                                       # the server stopped reading
print("sent", flush=True)
while True:
    time.sleep(3600)
