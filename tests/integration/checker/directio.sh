#!/usr/bin/env bash
# Description: path_checker directio on file paths: `show paths` names it,
# and a file whose storage fails (a FUSE file served by nbdkit through its
# error filter) is failed by the checker's O_DIRECT read of block 0 with no
# client I/O, and reinstated within two polling intervals once it heals.
# readsector0 is what an NBD path gets; tur on a file is refused, naming
# the path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdfuse fusermount3
[ -w /dev/fuse ] || skip "/dev/fuse not usable"
MNT=$T/mnt
mkdir "$MNT"
EXTRA_CLEANUP='fusermount3 -u "$MNT" 2>/dev/null || true'
nbdfuse "$MNT/disk" [ nbdkit --exit-with-parent --filter=error file "$IMG" \
  error=EIO error-rate=100% error-file="$T/fuse.broken" ] &
BG_PIDS+=($!); disown $!
wait_for test -e "$MNT/disk" || fail "nbdfuse did not start"
FUSE=$MNT/disk
path b

# tur cannot run on a file: the map is refused, the path named.
if "$UMPATHD" --control "$T/ctl2" --policy path_checker=tur \
     --map bad="0 0 1 1 round-robin 0 1 1 $IMG 1" 2>"$T/refused"; then
  fail "a tur checker on a file path was accepted"
fi
grep -qF "$IMG: path_checker tur: the file transport carries no SCSI commands" "$T/refused" ||
  fail "refusal does not name the path and the reason: $(cat "$T/refused")"

# directio cannot run on an NBD path: refused too.
if "$UMPATHD" --control "$T/ctl3" --policy path_checker=directio \
     --map bad="0 0 1 1 round-robin 0 1 1 $(uri b) 1" 2>"$T/refused"; then
  fail "a directio checker on an NBD path was accepted"
fi
grep -qF "$(uri b): path_checker directio: the nbd transport has no O_DIRECT read" "$T/refused" ||
  fail "directio refusal: $(cat "$T/refused")"

# The default checker per transport: directio on files, readsector0 on NBD.
start_daemon --policy polling_interval=1 --policy max_polling_interval=4 --io-timeout 2 \
  --nbd "unix:$T/nbd.sock" \
  --map lun="0 0 1 1 round-robin 0 3 1 $IMG 1 $FUSE 1 $(uri b) 1"
row() { "$UMPATH" show paths lun | awk -v p="$1" '$3 == p'; }
wait_for 10 eval '[ "$(row "$FUSE" | awk "{print \$6}")" = ready ]' ||
  fail "FUSE path not ready: $("$UMPATH" show paths lun)"
[ "$(row "$IMG" | awk '{print $5}')" = directio ] || fail "file path checker: $(row "$IMG")"
[ "$(row "$FUSE" | awk '{print $5}')" = directio ] || fail "FUSE path checker: $(row "$FUSE")"
[ "$(row "$(uri b)" | awk '{print $5}')" = readsector0 ] || fail "NBD path checker: $(row "$(uri b)")"
"$UMPATH" show paths lun --json | python3 -c '
import json, sys
ps = {p["path"]: p for p in json.load(sys.stdin)["paths"]}
assert ps[sys.argv[1]]["checker"] == "directio", ps
assert ps[sys.argv[1]]["checker_result"] == "ok", ps
assert ps[sys.argv[2]]["checker"] == "readsector0", ps
' "$FUSE" "$(uri b)" || fail "show paths --json: checker fields"

# The FUSE file's storage fails: the checker fails it, no client I/O.
touch "$T/fuse.broken"
state() { row "$FUSE" | awk '{print $4}'; }
wait_for 5 eval '[ "$(state)" = failed ]' || fail "checker did not fail the broken file path: $(row "$FUSE")"
# (the failure's event makes it "unchecked" until the next probe says why)
wait_for 5 eval 'row "$FUSE" | grep -q " faulty "' || fail "not faulty: $(row "$FUSE")"
"$UMPATH" show paths lun --json | python3 -c '
import json, sys
ps = {p["path"]: p for p in json.load(sys.stdin)["paths"]}
r = ps[sys.argv[1]]["checker_result"]
assert r not in ("ok", "-"), r
' "$FUSE" || fail "checker_result of the failed path"

# It heals: reinstated within two polling intervals (and a margin).
rm -f "$T/fuse.broken"
t=$(now)
wait_for 5 eval '[ "$(state)" = active ]' || fail "not reinstated: $(row "$FUSE")"
took=$(elapsed "$t")
echo "reinstated after $took s"
awk -v t="$took" 'BEGIN { exit !(t <= 2.5) }' || fail "reinstated after $took s, more than two polling intervals"
io 'read 0 64k' || fail "I/O after reinstatement"
stop_daemon || fail "umpathd did not exit 0"
echo "directio: ok"
