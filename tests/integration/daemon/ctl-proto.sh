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
s.settimeout(20)
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
python3 - "$SOCK" "$T/silent.connected" >"$T/silent.out" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
t = time.monotonic()
open(sys.argv[2], "w").close()
s.settimeout(30)
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
print("%s %.0f" % (out.decode().strip(), time.monotonic() - t))
PY
silent=$!
wait_for 10 test -e "$T/silent.connected" || fail "the silent client did not connect"
# Served while it waits: they end before it is cut off.
expect_out "mp	2048	0" timeout 20 "$UMPATH" -S "$SOCK" ls
for i in 1 2 3; do
	expect_out "OK" timeout 20 bash -c "$(declare -f raw); SOCK='$SOCK' raw message mp fail_if_no_path"
done
exited "$silent" && fail "other clients were served only after the silent one was dropped"
wait "$silent" || fail "the silent client's script failed"
case $(cat "$T/silent.out") in
"ERR ETIMEDOUT request not received within 5000 ms "[4-9]) ;;
*) fail "silent client: $(cat "$T/silent.out")" ;;
esac

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
time.sleep(30)' "$SOCK" &
holder=$!
sleep 0.2
start=$SECONDS
st=0
stop_daemon || st=$?
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"
[ $((SECONDS - start)) -le 4 ] || fail "umpathd took $((SECONDS - start)) s to stop with a silent client"
finish
