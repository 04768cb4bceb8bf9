#!/usr/bin/env python3
"""nbd_halfopen.py SOCKET N SECONDS - hold N connections that read the
greeting and then never answer, for SECONDS; print "held" once they are."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdwire as w  # noqa: E402

conns = []
for _ in range(int(sys.argv[2])):
    s = w.dial(sys.argv[1])
    conns.append(s)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
