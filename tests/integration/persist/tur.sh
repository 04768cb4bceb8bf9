#!/usr/bin/env bash
# Description: the tur checker on iSCSI paths (a private tgtd, one LUN,
# two portals): both paths show checker tur; when path 1's session is
# dropped (tgtadm --op delete --mode conn) and its portal cannot be
# reached again, TEST UNIT READY fails and the checker fails the path with
# no client I/O at all; when the portal is back, the path is reinstated
# within two polling intervals of its session coming back.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tgt_start
start_daemon --policy polling_interval=1 --policy max_polling_interval=1 --io-timeout 2 \
  --nbd "unix:$T/nbd.sock" --map lun="0 0 1 1 round-robin 0 2 1 $URI1 1 $URI2 1"
row() { "$UMPATH" show paths lun | awk -v p="$1" '$3 == p'; }
col() { row "$1" | awk -v c="$2" '{ print $c }'; }
wait_for 10 eval '[ "$(col "$URI1" 6)" = ready ] && [ "$(col "$URI2" 6)" = ready ]' ||
  fail "paths not ready: $("$UMPATH" show paths lun)"
[ "$(col "$URI1" 5)" = tur ] && [ "$(col "$URI2" 5)" = tur ] ||
  fail "iSCSI paths' default checker is not tur: $("$UMPATH" show paths lun)"

# Path 1's session was the first to log in (the table's order): the
# lowest I_T nexus.  Its portal goes, then its session.
sid=$(tadm --op show --mode target | awk '/I_T nexus:/ { print $3 }' | sort -n | head -1)
[ -n "$sid" ] || fail "no session in tgtd"
tadm --op delete --mode portal --param "portal=127.0.0.1:$PORT" || fail "tgtadm: delete portal"
tadm --op delete --mode conn --tid 1 --sid "$sid" --cid 0 || fail "tgtadm: delete conn $sid"
t=$(now)
wait_for 10 eval '[ "$(col "$URI1" 4)" = failed ]' || fail "checker did not fail path 1: $(row "$URI1")"
echo "path 1 failed by the checker after $(elapsed "$t") s"
[ "$(col "$URI1" 8)" = 0 ] && [ "$(col "$URI2" 8)" = 0 ] ||
  fail "client I/O counted: $("$UMPATH" show paths lun)"
[ "$(col "$URI2" 4)" = active ] || fail "path 2 failed too: $(row "$URI2")"
grep -q "checker_down $URI1" "$LOG" || fail "no checker_down event"

# The portal is back: the transport logs in again, the checker's next TUR
# reinstates the path.
tadm --op new --mode portal --param "portal=127.0.0.1:$PORT" || fail "tgtadm: new portal"
t=$(now)
wait_for 20 eval '[ "$(col "$URI1" 4)" = active ]' || fail "path 1 not reinstated: $(row "$URI1")"
took=$(elapsed "$t")
echo "path 1 reinstated $took s after its portal came back"
# Two polling intervals after the session is back; the transport's
# reconnect back-off comes first (at most its cap, docs/umpath.8).
awk -v t="$took" -v r="$RECONNECT_MAX" 'BEGIN { exit !(t <= 2.2 + r) }' ||
  fail "reinstated $took s after the portal came back"
io 'write -P 0x5c 0 64k' || fail "write after reinstatement"
[ "$(lun_read 0 4)" = 5c5c5c5c ] || fail "the LUN does not hold the write"
stop_daemon || fail "umpathd did not exit 0"
echo "tur: ok"
