#!/usr/bin/env bash
# Description: reservation_key in umpath.conf: umpathd registers the key
# on each iSCSI path (as the map is created, before any client can reach
# it; a failed path before the checker reinstates it), so that under a registrants-only
# reservation no path takes I/O unregistered.  The registrations are
# cleared behind umpathd's back while path 1 is down; after it is
# reinstated, READ KEYS shows the key again on it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tgt_start
cat >"$T/umpath.conf" <<CONF
defaults {
	polling_interval 1
	max_polling_interval 1
}
multipaths {
	multipath {
		alias lun
		path_grouping_policy multibus
		reservation_key 0x5eed
		path $URI1
		path $URI2
	}
}
CONF
start_daemon --config "$T/umpath.conf" --io-timeout 2 --nbd "unix:$T/nbd.sock"
keys() { "$UMPATH" persist lun --read-keys; }
nkeys() { keys | grep -c '^ *0x5eed$' || true; }
# Registered as the map was created, before it was listed: at "ready".
[ "$(nkeys)" = 2 ] || fail "reservation_key not registered on both paths at start: $(keys)"
"$UMPATH" persist lun --reserve wr-ex-ro || fail "reserve with the configured key"

# Path 1 goes down (portal and session gone); meanwhile every
# registration is cleared (as another host's CLEAR would).
sid=$(tadm --op show --mode target | awk '/I_T nexus:/ { print $3 }' | sort -n | head -1)
tadm --op delete --mode portal --param "portal=127.0.0.1:$PORT"
tadm --op delete --mode conn --tid 1 --sid "$sid" --cid 0
row() { "$UMPATH" show paths lun | awk -v p="$1" '$3 == p'; }
wait_for 10 eval '[ "$(row "$URI1" | awk "{print \$4}")" = failed ]' || fail "path 1 not failed"
"$UMPATH" persist lun --clear || fail "clear"
[ "$(nkeys)" = 0 ] || fail "keys after clear: $(keys)"

# Path 1 comes back: registered again before it is reinstated.
tadm --op new --mode portal --param "portal=127.0.0.1:$PORT"
wait_for 20 eval '[ "$(row "$URI1" | awk "{print \$4}")" = active ]' || fail "path 1 not reinstated"
[ "$(nkeys)" -ge 1 ] || fail "reinstated path 1 is not registered: $(keys)"
grep -q "registering reservation_key 0x5eed" "$LOG" || fail "no registration logged"
awk '/registering reservation_key/ { r = NR } /path_reinstated/ && r { ok = 1 } END { exit !ok }' "$LOG" ||
  fail "reinstated before it was registered"
keys
stop_daemon || fail "umpathd did not exit 0"
echo "reservation-key: ok"
