#!/usr/bin/env bash
# Description: the installed umpathd.service passes systemd-analyze verify
# (with the DESTDIR as its root, where ExecStart's umpathd is).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need systemd-analyze
meson_install

unit=$D$unitdir/umpathd.service
[ -f "$unit" ] || { fail "$unitdir/umpathd.service not installed"; finish; }
# The units it names (network-online.target, multi-user.target ...) from
# this machine's systemd, under the DESTDIR as root.
mkdir -p "$D/lib/systemd"
cp -a /lib/systemd/system "$D/lib/systemd/" 2>/dev/null || cp -a /usr/lib/systemd/system "$D/lib/systemd/"
# verify exits 0 on keys it does not know or values it cannot parse (it
# ignores them, as systemd would): anything it says is a failure.  Its
# Documentation= man pages are looked up among the installed ones.
st=0
MANPATH=$D$mandir systemd-analyze verify --root="$D" "$unit" >"$T/verify.out" 2>&1 || st=$?
if [ "$st" != 0 ] || [ -s "$T/verify.out" ]; then
	fail "systemd-analyze verify: exit $st: $(cat "$T/verify.out")"
fi
# What the unit promises (umpathd(8), SYSTEMD).
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -qx "ExecReload=$bindir/umpath reconfigure" "$unit" ||
	fail "ExecReload is not $bindir/umpath reconfigure: $(grep ExecReload "$unit")"
finish
