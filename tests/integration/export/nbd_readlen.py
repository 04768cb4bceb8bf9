#!/usr/bin/env python3
"""nbd_readlen.py SOCKET EXPORT - READs whose length is over the 32 MiB
limit (up to 4 GiB - 1) or past the end of the export get NBD_EINVAL, and
the connection goes on serving."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdwire as w  # noqa: E402

s, size = w.connect(sys.argv[1], sys.argv[2])
fails = 0
for off, ln in ((0, 0xFFFFFFFF), (0, 0xF0000000), (0, (32 << 20) + 512), (size - 512, 4096)):
    s.sendall(w.request(w.CMD_READ, off, ln, 1))
    err, _ = w.reply_header(s)
    ok = err == 22
    print(("ok   " if ok else "FAIL ") + "READ off %d len %d: error %d (want 22, EINVAL)" % (off, ln, err))
    fails += not ok
s.sendall(w.request(w.CMD_READ, 0, 4096, 2))
err, _ = w.reply_header(s)
data = w.recvn(s, 4096) if not err else b""
print(("ok   " if not err and len(data) == 4096 else "FAIL ") + "a good READ after them")
fails += bool(err)
sys.exit(1 if fails else 0)
