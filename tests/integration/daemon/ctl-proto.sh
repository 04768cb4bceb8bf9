#!/usr/bin/env bash
# Description: the umpathd control socket's wire format, spoken raw: status
# lines "OK" and "ERR <ERRNO> <reason>" with the kernel's errno names,
# malformed, empty and unknown requests, a silent client that neither
# blocks other clients nor the daemon's exit, many clients at once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null; then
	echo "SKIP: no python3 to speak the protocol raw"
	exit 77
fi

# raw WORD...: send a request (words NUL-ended, then an empty word), print
# the whole answer.  RAW_BYTES=hex replaces the request with those bytes.
raw()
{
	python3 - "$SOCK" "$@" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)	# generous: 40 of these start at once below
s.connect(sys.argv[1])
if os.environ.get("RAW_BYTES") is not None:
    req = bytes.fromhex(os.environ["RAW_BYTES"])
else:
    req = b"".join(w.encode() + b"\0" for w in sys.argv[2:]) + b"\0"
s.sendall(req)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
PY
}

need_file_paths
A=$T/a.img
B=$T/b.img
truncate -s 1M "$A" "$B"
TBL="0 0 1 1 round-robin 0 2 1 $A 1 $B 1"
start_daemon --map "mp=$TBL"

# OK and the output; the table words as many or as one.
expect_out "OK
mp	2048	0" raw ls
expect_out "OK
0 2048 multipath $TBL" raw table mp
expect_out "OK" raw create two 0 0 1 1 round-robin 0 1 1 "$B" 1
expect_out "OK" raw remove two
expect_out "OK" raw create two "0 0 1 1 round-robin 0 1 1 $B 1"
expect_out "OK
0 2048 multipath 0 0 1 1 round-robin 0 1 1 $B 1" raw table two
expect_out "OK" raw remove two

# ERR lines: the errno's name as the kernel returns it, then the reason.
expect_out "ERR EEXIST map mp already exists" raw create mp "$TBL"
expect_out "ERR ENXIO no such map" raw remove nosuch
expect_out "ERR ENXIO no such map" raw status nosuch
expect_out "ERR EINVAL round-robin ps: invalid repeat count" \
	raw create bad 0 0 1 1 round-robin 0 1 1 "$A" x
# After the reason (the kernel's words), a line with the detail.
expect_out "ERR ENOENT error getting device
$T/nope: No such file or directory" raw create bad "0 0 1 1 round-robin 0 1 0 $T/nope"
expect_out "ERR EINVAL invalid number of paths" raw reload mp 0 0 1 1 round-robin 0 0 0
expect_out "ERR EINVAL Invalid argument
switch_group 9: no such group (1..1)" raw message mp switch_group 9
expect_out "ERR ENOENT error getting device $T/nope" raw message mp fail_path "$T/nope"
expect_out "OK" raw suspend mp
expect_out "ERR EBUSY map is suspended" raw message mp fail_if_no_path
expect_out "OK" raw resume mp
expect_out "OK" raw message mp fail_if_no_path

# Requests the daemon cannot take.
expect_out "ERR EINVAL unknown command 'frob'" raw frob mp
expect_out "ERR EINVAL empty request" env RAW_BYTES=00 bash -c "$(declare -f raw); SOCK='$SOCK' raw"
# "ls" NUL, the end, then bytes after the end.
expect_out "ERR EINVAL malformed request" \
	env RAW_BYTES=6c7300007878 bash -c "$(declare -f raw); SOCK='$SOCK' raw"
# A word with a newline cannot break the status line.
expect_out "ERR EINVAL unknown command 'a?b'" raw "a
b"

# A silent client: others are served meanwhile, and it is cut off after
# the daemon's receive timeout (5 s) with an error, not kept forever.
# One process holds the silent connection and makes the other requests,
# so that "meanwhile" does not depend on how fast helpers start.
python3 - "$SOCK" >"$T/silent.out" <<'PY' || fail "the silent client's script failed"
import select, socket, sys, time

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(sys.argv[1])
    return s

def ask(*words):
    s = conn()
    s.sendall(b"".join(w.encode() + b"\0" for w in words) + b"\0")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out.decode()
        out += b

silent = conn()
t = time.monotonic()
answers = [ask("ls")] + [ask("message", "mp", "fail_if_no_path") for _ in range(3)]
# Still connected, nothing said to it: the others did not wait for it.
waiting = not select.select([silent], [], [], 0)[0]
out = b""
while True:
    b = silent.recv(4096)
    if not b:
        break
    out += b
print("served while it waited: %s" % ("yes" if waiting else "no"))
for a in answers:
    print("answer: %s" % a.splitlines()[0] if a else "answer: (none)")
print("silent: %s %.0f" % (out.decode().strip(), time.monotonic() - t))
PY
cat "$T/silent.out"
grep -qx "served while it waited: yes" "$T/silent.out" ||
	fail "other clients were served only after the silent one was dropped"
[ "$(grep -c '^answer: OK$' "$T/silent.out")" = 4 ] || fail "answers while a client is silent: $(cat "$T/silent.out")"
secs=$(sed -n 's/^silent: ERR ETIMEDOUT request not received within 5000 ms \([0-9]*\)$/\1/p' "$T/silent.out")
[ -n "$secs" ] && [ "$secs" -ge 4 ] && [ "$secs" -lt 30 ] ||
	fail "silent client: $(grep '^silent:' "$T/silent.out")"

# Many clients at once, all answered.
pids=()
for i in $(seq 1 40); do
	raw status mp >"$T/many.$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a concurrent client failed"
done
for i in $(seq 1 40); do
	[ "$(head -1 "$T/many.$i")" = OK ] || fail "concurrent client $i: $(cat "$T/many.$i")"
done

# SIGTERM with a silent client connected: the daemon does not wait for it.
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
open(sys.argv[2], "w").close()
time.sleep(60)' "$SOCK" "$T/holder.connected" &
holder=$!
wait_for 30 test -e "$T/holder.connected" || fail "the silent client did not connect"
# Timed from the daemon's own "draining" line to its exit (term_wait,
# common.sh): the signal's delivery on a loaded machine is not its doing.
st=0
if ! out=$(term_wait "$DPID" 30); then
	fail "umpathd still runs 30 s after SIGTERM with a silent client"
	kill -KILL "$DPID"
fi
wait "$DPID" || st=$?
DPID=
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"
read -r total exit_wall <<<"$out"
taken=$(log_ms 'draining I/O and stopping')
[ -n "$taken" ] || fail "umpathd did not log the start of its shutdown"
took=$(since_ms "$taken" "$exit_wall")
echo "stopped ${took} ms after taking SIGTERM (${total} ms after it was sent)"
[ "$took" -le 4000 ] || fail "umpathd took ${took} ms to stop with a silent client"
finish
