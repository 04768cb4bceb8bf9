#!/usr/bin/env bash
# Description: a client that asks for an export with NBD_OPT_EXPORT_NAME
# and hangs up before the reply is sent does not leave the map open: after
# 30 such clients `umpath remove` succeeds.  Before, the reference taken for
# the reply was never dropped when sending it failed, and the map refused
# remove as busy for ever.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3
D=$(dirname "$0")
start_daemon --mem-store 16M:a --map mp='0 0 1 1 round-robin 0 1 1 mem:a 1' \
  --nbd "unix:$T/nbd.sock"
python3 - "$T/nbd.sock" "$D" <<'PY' || fail "client script"
import struct, sys
sys.path.insert(0, sys.argv[2])
import nbdwire as w
for _ in range(30):
    s = w.dial(sys.argv[1])
    w.recvn(s, 18)
    # Flags and the option in one send, then gone before the reply.
    s.sendall(struct.pack(">I", 1) + struct.pack(">QII", w.IHAVEOPT, w.OPT_EXPORT_NAME, 2) + b"mp")
    s.close()
PY
sleep 1	# let every handshake thread finish
"$UMPATH" -S "$SOCK" remove mp || fail "remove refused: a map reference leaked"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-export-name-leak: ok"
