#!/usr/bin/env bash
# Description: the umpath tool believes only root or its own user.  A
# control socket planted by another user - in a directory of theirs (as
# /tmp/umpath-UID made before the user's daemon ever ran, the fallback
# without XDG_RUNTIME_DIR), in a directory others may write, or served by
# another uid in a sticky directory - is refused with the reason, and the
# forged answer never reaches the output.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "not root: cannot act as two other users"
command -v setpriv >/dev/null || skip "setpriv not installed"
PY=/usr/bin/python3	# one every user can run
[ -x "$PY" ] || skip "$PY not installed"
victim=$(id -u nobody 2>/dev/null) || skip "no user nobody"
attacker=4242		# any uid that is neither root nor nobody

# The forger: answers every request with a forged "OK", and notes each
# connection and how many bytes it got before answering.
cat >"$T/forge.py" <<'PY'
import os, socket, sys
sock, notes = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(sock)
os.chmod(sock, 0o777)
s.listen(8)
open(notes, "w").close()
while True:
    c, _ = s.accept()
    try:
        got = c.recv(65536)
    except OSError:
        got = b""
    with open(notes, "a") as f:
        f.write("connection %d bytes\n" % len(got))
    try:
        c.sendall(b"OK\nforged answer\n")
    except OSError:
        pass
    c.close()
PY
chmod 0711 "$T"
chmod 0644 "$T/forge.py"

# forge UID DIR: a forger run by UID on DIR/ctl, its notes in $T/notes-N.
nforge=0
forge()
{
	local uid=$1 dir=$2 notes=$T/notes-$nforge
	nforge=$((nforge + 1))
	mkdir -p "$T/n$nforge"
	chown "$uid" "$T/n$nforge"
	notes=$T/n$nforge/notes
	# setpriv execs python: $! is the forger itself, for the cleanup.
	setpriv --reuid="$uid" --regid="$uid" --clear-groups \
		"$PY" "$T/forge.py" "$dir/ctl" "$notes" 2>"$T/forge.log" >/dev/null &
	BG_PIDS+=($!)
	wait_for 10 test -e "$notes" || { fail "the forger did not start: $(cat "$T/forge.log")"; finish; }
	NOTES=$notes
}

# refused MESSAGE-REGEX CMD...: exit 1, stderr matching, no stdout.
refused()
{
	local re=$1 st=0
	shift
	"$@" >"$T/stdout" 2>"$T/stderr" || st=$?
	[ "$st" = 1 ] || fail "$*: exit $st, want 1 (stderr: $(cat "$T/stderr"))"
	[[ $(cat "$T/stderr") =~ ^$re$ ]] || fail "$*: stderr '$(cat "$T/stderr")', want /$re/"
	! grep -q forged "$T/stdout" || fail "$*: printed the forged answer"
	[ ! -s "$T/stdout" ] || fail "$*: stdout: $(cat "$T/stdout")"
}

# 1. A directory that belongs to another user: refused before connecting.
mkdir "$T/theirs"
chown "$attacker" "$T/theirs"
forge "$attacker" "$T/theirs"
refused "umpath: not trusting umpathd at $T/theirs/ctl: its directory $T/theirs belongs to uid $attacker \(only root or uid 0 may own it\)" \
	"$UMPATH" -S "$T/theirs/ctl" ls
[ ! -s "$NOTES" ] || fail "connected to a socket in another user's directory: $(cat "$NOTES")"

# 2. A directory of root's that anybody may write (not sticky): refused.
mkdir "$T/open"
chmod 0777 "$T/open"
forge "$attacker" "$T/open"
refused "umpath: not trusting umpathd at $T/open/ctl: its directory $T/open is writable by others \(mode 0777\)" \
	"$UMPATH" -S "$T/open/ctl" ls
[ ! -s "$NOTES" ] || fail "connected to a socket in a world-writable directory: $(cat "$NOTES")"

# 3. A sticky directory (as /tmp): the directory passes, the server's uid
# (SO_PEERCRED) does not; the request is never sent.
mkdir "$T/sticky"
chmod 1777 "$T/sticky"
forge "$attacker" "$T/sticky"
refused "umpath: not trusting umpathd at $T/sticky/ctl: it is served by uid $attacker \(pid [0-9]+\), not by root or uid 0" \
	"$UMPATH" -S "$T/sticky/ctl" create x 0 0 0 0
grep -q "connection 0 bytes" "$NOTES" || fail "the request reached the forger: $(cat "$NOTES")"
# The scenario runner goes through the same check.
echo "paths 1" >"$T/one.scn"
"$UMPATH" scenario --daemon --socket "$T/sticky/ctl" --nbd "unix:$T/sticky/nbd" "$T/one.scn" \
	>"$T/stdout" 2>"$T/stderr" || true
grep -q "not trusting umpathd at $T/sticky/ctl: it is served by uid $attacker" "$T/stderr" ||
	fail "scenario --daemon: stderr '$(cat "$T/stderr")'"
grep -qx "error EPERM" "$T/stdout" || fail "scenario --daemon: transcript '$(cat "$T/stdout")'"

# 4. The fallback /tmp/umpath-UID (no XDG_RUNTIME_DIR), made by another
# user before the victim's daemon ran.  In a mount namespace of its own,
# with a /tmp of its own, so that no real /tmp/umpath-UID is touched.
mkdir "$T/pub"
cp "$UMPATH" "$T/pub/umpath"
# With its library beside it (its runpath is $ORIGIN): the namespace's
# empty /tmp would hide a build tree under /tmp from LD_LIBRARY_PATH.
lib=$(ldd "$UMPATH" | awk '$1 == "libumpath.so.0" { print $3 }')
[ -f "$lib" ] || fail "ldd $UMPATH names no libumpath.so.0"
cp "$lib" "$T/pub/libumpath.so.0"
chmod 0755 "$T/pub" "$T/pub/umpath" "$T/pub/libumpath.so.0"
# $T is under /tmp, which the namespace hides: it is bound on /var/tmp
# there first ($M), then /tmp becomes an empty tmpfs.
M=/var/tmp
cat >"$T/fallback.sh" <<EOF2
set -eu
mount --bind $T $M
mount -t tmpfs tmpfs /tmp
mkdir /tmp/umpath-$victim
chown $attacker /tmp/umpath-$victim
setpriv --reuid=$attacker --regid=$attacker --clear-groups $PY $M/forge.py /tmp/umpath-$victim/control /tmp/umpath-$victim/notes >/dev/null 2>&1 &
fpid=\$!
i=0; while [ ! -e /tmp/umpath-$victim/notes ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
st=0
setpriv --reuid=$victim --regid=$victim --clear-groups env -u XDG_RUNTIME_DIR -u UMPATH_CONTROL \
	$M/pub/umpath ls >$M/fb.out 2>$M/fb.err || st=\$?
echo \$st >$M/fb.status
cat /tmp/umpath-$victim/notes >$M/fb.notes
kill \$fpid
EOF2
if unshare -m --propagation private true 2>/dev/null; then
	unshare -m --propagation private sh "$T/fallback.sh" || fail "the fallback check did not run"
	[ "$(cat "$T/fb.status")" = 1 ] || fail "fallback: exit $(cat "$T/fb.status"), want 1"
	want="umpath: not trusting umpathd at /tmp/umpath-$victim/control: its directory /tmp/umpath-$victim belongs to uid $attacker (only root or uid $victim may own it)"
	[ "$(cat "$T/fb.err")" = "$want" ] || fail "fallback: stderr '$(cat "$T/fb.err")', want '$want'"
	[ ! -s "$T/fb.out" ] || fail "fallback: printed '$(cat "$T/fb.out")'"
	[ ! -s "$T/fb.notes" ] || fail "fallback: connected to the planted socket: $(cat "$T/fb.notes")"
else
	echo "no mount namespace here: the /tmp/umpath-UID case is covered by case 1 only"
fi

# 5. Our own daemon, in a directory of ours, is still believed.
start_daemon
expect_out "No devices found" u ls
finish
