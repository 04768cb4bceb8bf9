#!/usr/bin/env python3
"""nbd_pipeline.py SOCKET EXPORT - one client pipelines thousands of
requests before it reads a single reply (the NBD spec allows any number in
flight): 2,000 READs of 32 KiB, then 5,000 mixed small WRITEs, READs and
FLUSHes; every request must get its reply, with the right cookie and data.
Exit 0 if so, 1 otherwise."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdwire as w  # noqa: E402

SOCK, EXPORT = sys.argv[1], sys.argv[2]


def pipeline(s, reqs, reply_len, settle=1.0):
    """Send reqs (list of (cookie, bytes)) from a thread; read no reply for
    settle seconds, then all of them.  Returns {cookie: (err, data)}."""
    blob = b"".join(r for _, r in reqs)
    t = threading.Thread(target=s.sendall, args=(blob,), daemon=True)
    t.start()
    time.sleep(settle)  # the server must cope with nobody reading
    got = {}
    try:
        for _ in reqs:
            err, cookie = w.reply_header(s)
            data = w.recvn(s, reply_len[cookie]) if not err else b""
            got[cookie] = (err, data)
    except Exception as e:  # noqa: BLE001 - report how far it got
        print("FAIL: %d of %d replies, then: %s" % (len(got), len(reqs), e))
        return None
    t.join()
    return got


def main():
    s, size = w.connect(SOCK, EXPORT, timeout=30)
    L, N = 32768, 2000
    reqs, rlen = [], {}
    for i in range(N):
        reqs.append((i, w.request(w.CMD_READ, (i * L) % (size - L), L, i)))
        rlen[i] = L
    got = pipeline(s, reqs, rlen)
    if got is None:
        return 1
    bad = [c for c in range(N) if c not in got or got[c][0]]
    if bad:
        print("FAIL: %d reads missing or in error, first cookie %d" % (len(bad), bad[0]))
        return 1
    print("ok   %d pipelined 32 KiB reads, all answered" % N)

    # Mixed: each 4 KiB block written once with its own pattern, then read
    # back in a second pipelined burst.
    M = 5000
    blocks = min(M // 2, size // 4096)
    reqs, rlen = [], {}
    for i in range(blocks):
        c = 100000 + i
        reqs.append((c, w.request(w.CMD_WRITE, i * 4096, 4096, c,
                                  payload=bytes([i % 251]) * 4096)))
        rlen[c] = 0
        if i % 500 == 499:
            reqs.append((c + 50000, w.request(w.CMD_FLUSH, 0, 0, c + 50000)))
            rlen[c + 50000] = 0
    got = pipeline(s, reqs, rlen)
    if got is None or any(e for e, _ in got.values()):
        print("FAIL: pipelined writes")
        return 1
    reqs, rlen = [], {}
    for i in range(blocks):
        c = 200000 + i
        reqs.append((c, w.request(w.CMD_READ, i * 4096, 4096, c)))
        rlen[c] = 4096
    got = pipeline(s, reqs, rlen)
    if got is None:
        return 1
    for i in range(blocks):
        e, d = got[200000 + i]
        if e or d != bytes([i % 251]) * 4096:
            print("FAIL: block %d: error %d or wrong data" % (i, e))
            return 1
    print("ok   %d pipelined writes with flushes, then %d reads: data right" % (blocks, blocks))
    s.sendall(w.request(w.CMD_DISC, 0, 0, 0))
    s.close()
    return 0


sys.exit(main())
