#!/usr/bin/env python3
"""nbd_poolwait.py SOCKET EXPORT IMAGE PID - send N reads of 4 KiB at once
while the map's request pool (umpathd --pool-size) holds fewer and its only
path answers slowly; count the context switches of every thread of umpathd
(PID) while the rest wait for room in the pool; then every read must come
back with the image's bytes.  Prints the count; exit 1 if more than LIMIT
(a server that polls for room wakes thousands of times a second) or a read
is wrong."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdwire as w  # noqa: E402

SOCK, EXPORT, IMAGE, PID = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
N, LEN, WINDOW, LIMIT = 6, 4096, 1.2, 200


def switches(pid):
    total = 0
    for tid in os.listdir("/proc/%s/task" % pid):
        try:
            with open("/proc/%s/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


s, _ = w.connect(SOCK, EXPORT, timeout=60)
s.sendall(b"".join(w.request(w.CMD_READ, i * LEN, LEN, i + 1) for i in range(N)))
time.sleep(0.3)  # the pool is full, the rest parked
before = switches(PID)
time.sleep(WINDOW)
woke = switches(PID) - before
print("context switches of umpathd in %.1f s with a full pool: %d" % (WINDOW, woke))

want = open(IMAGE, "rb").read(N * LEN)
ok = woke <= LIMIT
for _ in range(N):
    err, cookie = w.reply_header(s)
    data = w.recvn(s, LEN) if not err else b""
    if err or data != want[(cookie - 1) * LEN:cookie * LEN]:
        print("read %d: error %d or wrong data" % (cookie, err))
        ok = False
s.close()
sys.exit(0 if ok else 1)
