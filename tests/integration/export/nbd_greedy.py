#!/usr/bin/env python3
"""nbd_greedy.py SOCKET EXPORT NCLIENTS SECONDS - NCLIENTS clients each send
128 READs of 32 MiB and never read a reply; after SECONDS they close.
Prints "sent" once every request is out (or the server stopped taking
them, which is the point), then waits."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdwire as w  # noqa: E402

SOCK, EXPORT, N, SECS = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
L = 32 << 20
clients = []
for _ in range(N):
    s, size = w.connect(SOCK, EXPORT)
    s.setblocking(False)
    blob = b"".join(w.request(w.CMD_READ, 0, L, i) for i in range(128))
    try:
        s.send(blob)  # 3.5 KiB: the socket takes it all
    except BlockingIOError:
        pass
    clients.append(s)
print("sent", flush=True)
time.sleep(SECS)
for s in clients:
    s.close()
