#!/usr/bin/env bash
# Description: the umpathd control socket's life and access: created 0600
# in a new 0700 directory, a live daemon's socket not taken over, a stale
# one replaced, another uid refused (connect() on the 0600 socket, and the
# SO_PEERCRED check when the socket is opened up), SIGTERM exits 0 and
# removes the socket.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Needs no map: everything here works on an empty daemon.
start_daemon

# The socket: 0600, ours, in a directory made 0700.
[ "$(stat -c %a "$T/run")" = 700 ] || fail "socket directory mode $(stat -c %a "$T/run"), want 700"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK"), want 600"
[ "$(stat -c %u "$SOCK")" = "$(id -u)" ] || fail "socket owner $(stat -c %u "$SOCK"), want $(id -u)"
[ -S "$SOCK" ] || fail "$SOCK is not a socket"

# A second daemon on a live socket fails and leaves the first alone.
st=0
timeout 10 "$UMPATHD" --control "$SOCK" 2>"$T/second.log" || st=$?
[ "$st" != 0 ] || fail "a second umpathd on a live socket exited 0"
[ "$st" != 124 ] || fail "a second umpathd on a live socket did not exit"
grep -q "control socket $SOCK: Address already in use" "$T/second.log" ||
	fail "second umpathd: $(cat "$T/second.log")"
expect_out "No devices found" u ls

# Another user.  Only as root (we need to become somebody else).
other_uid=
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	other_uid=$(id -u nobody)
	other_gid=$(id -g nobody)
	if command -v setpriv >/dev/null; then
		as_other() { setpriv --reuid="$other_uid" --regid="$other_gid" --clear-groups "$@"; }
	elif command -v runuser >/dev/null; then
		as_other() { runuser -u nobody -- "$@"; }
	else
		other_uid=
	fi
fi
if [ -n "$other_uid" ]; then
	# The tool where the other user can run it.
	mkdir "$T/pub"
	cp "$UMPATH" "$T/pub/umpath"
	chmod 0711 "$T"
	chmod 0755 "$T/pub" "$T/pub/umpath"

	# As made: the directory (0700) and the socket (0600) keep it out.
	expect_err 1 "umpath: cannot reach umpathd at $SOCK: Permission denied" \
		as_other "$T/pub/umpath" -S "$SOCK" ls
	# Opened up by hand: the daemon's SO_PEERCRED check still refuses.
	chmod 0755 "$T/run"
	chmod 0666 "$SOCK"
	expect_err 1 "umpath: ls: permission denied: uid $other_uid is not allowed" \
		as_other "$T/pub/umpath" -S "$SOCK" ls
	expect_err 1 "umpath: create x: permission denied: uid $other_uid is not allowed" \
		as_other "$T/pub/umpath" -S "$SOCK" create x 0 0 0 0
	grep -q "uid $other_uid refused" "$T/umpathd.log" || fail "no log line for the refused uid"
	chmod 0700 "$T/run"
	chmod 0600 "$SOCK"
	chmod 0700 "$T"
	# Root still gets in.
	expect_out "No devices found" u ls
else
	echo "not root (or no user nobody): skipping the other-uid checks"
fi

# SIGTERM: exit 0, socket removed, the directory kept.
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"
[ ! -e "$SOCK" ] || fail "the socket is still there after SIGTERM"
[ -d "$T/run" ] || fail "the socket directory is gone"

# A daemon killed outright leaves its socket: the next one replaces it.
start_daemon
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
[ -S "$SOCK" ] || fail "no stale socket after SIGKILL (test assumption)"
start_daemon
expect_out "No devices found" u ls
grep -q "removed stale socket $SOCK" "$T/umpathd.log" || fail "no log line for the stale socket"
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"

# Something that is not a socket is never removed.
echo keep >"$SOCK"
st=0
timeout 10 "$UMPATHD" --control "$SOCK" 2>"$T/file.log" || st=$?
[ "$st" != 0 ] && [ "$st" != 124 ] || fail "umpathd on a regular file: exit $st"
grep -q "control socket $SOCK: File exists" "$T/file.log" || fail "on a regular file: $(cat "$T/file.log")"
[ "$(cat "$SOCK")" = keep ] || fail "the regular file was touched"
finish
