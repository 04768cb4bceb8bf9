#!/usr/bin/env bash
# Description: a follower that does not read falls behind without slowing
# anything down: thousands of events are published while two followers
# (--json and text) read nothing; then each finds, in order, a notice of
# how many events it lost (oldest first) and the newest events; every event
# is accounted for: received + lost = published, and in JSON each notice's
# count is exactly the gap in the sequence numbers it stands for.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

start_daemon --policy path_checker=none --policy flap_threshold=0 --mem-store 64M:a,b,c \
	--map mp='0 0 1 1 round-robin 0 3 1 mem:a 1 mem:b 1 mem:c 1'

python3 - "$SOCK" "$T/umpathd.log" <<'PY' || fail "lost events"
import json, socket, sys, time

sock, log = sys.argv[1], sys.argv[2]
PAIRS = 3000

def request(*words):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"".join(w.encode() + b"\0" for w in words) + b"\0")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    assert out.startswith(b"OK\n"), (words, out)

def follow(*words):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"".join(w.encode() + b"\0" for w in ("events",) + words) + b"\0")
    return s

followers_before = open(log).read().count("follows the events")
fj = follow("--json")
ft = follow()
deadline = time.time() + 10
while open(log).read().count("follows the events") < followers_before + 2:
    assert time.time() < deadline, "the followers did not start"
    time.sleep(0.05)

t0 = time.time()
for i in range(PAIRS):
    request("message", "mp", "fail_path", "mem:b")
    request("message", "mp", "reinstate_path", "mem:b")
request("message", "mp", "fail_path", "mem:c")     # the last one: a marker
published = 2 * PAIRS + 1
print("published %d events in %.1f s" % (published, time.time() - t0))

def read_until(s, marker):
    buf = b""
    s.settimeout(30)
    while marker not in buf:
        b = s.recv(65536)
        assert b, "stream ended before the marker"
        buf += b
    # the marker's line must be complete
    while not buf.endswith(b"\n"):
        buf += s.recv(65536)
    return buf.decode().splitlines()

ok = True
lines = read_until(fj, b'"path":"mem:c"')
assert lines[0] == "OK", lines[0]
evs = [json.loads(l) for l in lines[1:]]
got = sum(1 for e in evs if e["type"] != "events_lost")
lost = sum(e["lost"] for e in evs if e["type"] == "events_lost")
notices = [e for e in evs if e["type"] == "events_lost"]
print("json: %d received, %d lost in %d notice(s)" % (got, lost, len(notices)))
print("before the notice:", next(i for i, e in enumerate(evs) if e["type"] == "events_lost"))
if not notices or got + lost != published:
    print("json: received %d + lost %d != published %d" % (got, lost, published))
    ok = False
if got > 1024 + 2048:
    print("json: received %d: more than the queue and the socket can hold?" % got)
prev = None
pending_lost = 0
for e in evs:
    if e["type"] == "events_lost":
        assert e["detail"] == "%d events lost" % e["lost"], e
        pending_lost += e["lost"]
        continue
    if prev is not None and e["seq"] != prev + 1 + pending_lost:
        print("json: seq %d after %d with %d lost between" % (e["seq"], prev, pending_lost))
        ok = False
    prev, pending_lost = e["seq"], 0
if evs[-1]["path"] != "mem:c" or evs[-1]["type"] != "path_failed":
    print("json: the newest event is not last: %s" % evs[-1])
    ok = False

lines = read_until(ft, b"path_failed path=mem:c")
assert lines[0] == "OK", lines[0]
tl = [l.split(" ", 1)[1] for l in lines[1:]]
tlost = sum(int(l.split()[0]) for l in tl if l.endswith(" events lost"))
tgot = sum(1 for l in tl if l.startswith("mp "))
print("text: %d received, %d lost" % (tgot, tlost))
if not tlost or tgot + tlost != published:
    print("text: received %d + lost %d != published %d" % (tgot, tlost, published))
    ok = False

# The daemon is fine, and serves the next request at once.
t = time.time()
request("ls")
assert time.time() - t < 2
fj.close()
ft.close()
sys.exit(0 if ok else 1)
PY
u ls >/dev/null || fail "umpathd does not answer"
stop_daemon || fail "umpathd did not exit 0"
finish
