#!/usr/bin/env bash
# Description: the metrics endpoint refuses what is not a GET or HEAD of
# /metrics and bounds what clients make it hold: garbage bytes (400 or
# closed), a 100 KiB header (4xx or closed, never 200), a client that
# never finishes its request (dropped within the timeout, while scrapes
# go on), more connections than the per-address and total limits (the
# extra ones closed at once or left unaccepted until a slot frees), POST and PUT (405 with Allow), a wrong path
# (404), HEAD (200, no body); afterwards scrapes and NBD I/O still work.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io

PORT=$(free_port)
start_daemon --policy path_checker=none --mem-store 16M:a,b --nbd "unix:$T/nbd.sock" \
	--metrics "tcp:127.0.0.1:$PORT" --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1'

"$PY" - "$PORT" <<'PY' || fail "malformed requests (above)"
import select, socket, sys, time
port = int(sys.argv[1])
bad = []

def conn(src="127.0.0.1"):
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s

def exchange(data, src="127.0.0.1"):
    """Send data, read until the server closes (10 s at most)."""
    s = conn(src)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    end = time.monotonic() + 10
    try:
        while time.monotonic() < end:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out

def status(resp):
    parts = resp.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and resp.startswith(b"HTTP/1.") else None

def scrape_ok(what):
    r = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if status(r) != 200 or b"umpath_map_paths{map=\"mp\"} 2" not in r:
        bad.append("scrape after %s: %r" % (what, r[:200]))

r = exchange(b"\x00\xff\xfe garbage \x01\x02\r\n\r\n")
if status(r) not in (None, 400):
    bad.append("garbage: %r" % r[:100])
scrape_ok("garbage")

r = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (100 << 10) + b"\r\n\r\n")
st = status(r)
if st is not None and not 400 <= st < 500:
    bad.append("100 KiB header: %r" % r[:100])
scrape_ok("a huge header")

for method, want in ((b"POST", 405), (b"PUT", 405), (b"DELETE", 405)):
    r = exchange(method + b" /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    if status(r) != want or b"\r\nAllow: GET, HEAD\r\n" not in r:
        bad.append("%s: %r" % (method.decode(), r[:200]))
for path in (b"/", b"/metricsx", b"/metrics/x", b"/../metrics"):
    r = exchange(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if status(r) != 404:
        bad.append("GET %s: %r" % (path.decode(), r[:200]))
r = exchange(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
if status(r) != 200 or not r.endswith(b"\r\n\r\n"):
    bad.append("HEAD: %r" % r[-200:])

# A client that never finishes: scrapes go on meanwhile; it is dropped
# within the idle timeout (5 s), with some slack for a loaded machine.
slow = conn()
slow.sendall(b"GET /metr")
t0 = time.monotonic()
scrape_ok("a slow client came")
slow.settimeout(20)
try:
    while slow.recv(65536):
        pass
except OSError:
    pass
held = time.monotonic() - t0
if held > 15:
    bad.append("the slow client was held %.1f s" % held)
slow.close()

# More connections than the limits: 4 per address, 16 in all.  Over the
# per-address limit a connection is closed at once; over the total one it
# is not accepted (it waits in the kernel's backlog) until another ends.
time.sleep(0.5)	# the server has let go of the earlier clients
socks = [(src, conn(src)) for src in ("127.0.0.%d" % i for i in range(11, 14)) for _ in range(5)]
socks += [("127.0.0.14", conn("127.0.0.14")) for _ in range(4)]
t0 = time.monotonic()
time.sleep(0.5)
closed = set()
r, _, _ = select.select([s for _, s in socks], [], [], 0.5)
for s in r:
    try:
        if not s.recv(1, socket.MSG_PEEK):
            closed.add(s)
    except OSError:
        closed.add(s)
open_by = {}
for src, s in socks:
    if s not in closed:
        open_by[src] = open_by.get(src, 0) + 1
if open_by != {"127.0.0.%d" % i: 4 for i in range(11, 15)}:
    bad.append("connections open per address, want 4 each: %s" % open_by)
extra = conn("127.0.0.15")
extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
r, _, _ = select.select([extra], [], [], 1.0)
if r and time.monotonic() - t0 < 4.5:	# before the idle timeout freed a slot
    bad.append("a 17th connection was served while 16 were open")
for _, s in socks:
    s.close()
extra.settimeout(10)
got = b""
try:
    while True:
        b = extra.recv(65536)
        if not b:
            break
        got += b
except OSError:
    pass
if status(got) != 200:
    bad.append("the 17th connection, once the others closed: %r" % got[:100])
extra.close()
scrape_ok("too many connections")

for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY

qemu-io -f raw "nbd+unix:///mp?socket=$T/nbd.sock" -c 'write -P 0x33 0 64k' -c 'read -P 0x33 0 64k' \
	>"$T/qemu-io.out" 2>&1 || fail "I/O after the malformed clients: $(tail -3 "$T/qemu-io.out")"
! grep -qiE 'fail|error|mismatch|pattern' "$T/qemu-io.out" || fail "qemu-io: $(head -3 "$T/qemu-io.out")"
check_against_views "http://127.0.0.1:$PORT/metrics"
stop_daemon || fail "umpathd did not exit 0"
finish
