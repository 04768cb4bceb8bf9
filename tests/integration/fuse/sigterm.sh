#!/usr/bin/env bash
# Description: SIGTERM stops umpathd with exit 0 and unmounts the FUSE
# directory, also while a client holds the file open (the client then
# gets errors, not a hang); a dead daemon's mount (SIGKILL) is cleared by
# the next umpathd on that directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_daemon
dd if=/dev/urandom of="$MNT/mp" bs=1M count=1 conv=notrunc status=none || fail "dd"
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exit status $st after SIGTERM"
if mountpoint -q "$MNT"; then
	fail "$MNT still mounted after SIGTERM"
fi
grep -q "stopped" "$T/umpathd.log" || fail "no 'stopped' in the log"

# Again, with the file held open by a client.
start_daemon
exec 3<"$MNT/mp"
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exit status $st after SIGTERM with the file open"
if mountpoint -q "$MNT"; then
	fail "$MNT still mounted after SIGTERM with the file open"
fi
if timeout 10 dd bs=4096 count=1 status=none <&3 >/dev/null 2>&1; then
	fail "read from a file of a stopped daemon succeeded"
fi
exec 3<&-

# SIGKILL leaves a dead mount (ENOTCONN); the next daemon clears it.
start_daemon
kill -KILL "$DPID"
{ wait "$DPID"; } 2>/dev/null || true	# without bash's "Killed" line
DPID=
if stat "$MNT" >/dev/null 2>"$T/stderr" ||
   ! grep -q "not connected" "$T/stderr"; then
	fail "no dead mount after SIGKILL: $(cat "$T/stderr")"
fi
start_daemon
grep -q "was a dead FUSE mount" "$T/umpathd.log" || fail "stale mount not reported in the log"
cmp -s -n 4096 "$MNT/mp" "$IMG" || fail "file after the restart"
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exit status $st after SIGTERM (restarted)"
if mountpoint -q "$MNT"; then
	fail "$MNT still mounted at the end"
fi

finish
