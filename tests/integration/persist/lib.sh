# lib.sh - for the tests of umpath persist and the tur checker against a
# real iSCSI target: a private tgtd (Debian's tgt, userspace, no kernel
# module) serving one LUN through two portals, 127.0.0.1 and 127.0.0.2 on
# one port: two real paths to one logical unit, sharing its reservation
# state.  Started per test, always killed at exit (it ignores SIGTERM
# while it has targets: SIGKILL).
#
# Sourced with the arguments of the test: UMPATHD UMPATH.
. "$(dirname "${BASH_SOURCE[0]}")/../export/lib.sh"
export UMPATH_CONTROL=$SOCK
IQN=iqn.2026-12.io.umpath.test:lun
TGT_PID=

tgt_cleanup()
{
	[ -n "$TGT_PID" ] && { kill -KILL "$TGT_PID" 2>/dev/null; wait "$TGT_PID" 2>/dev/null; }
	TGT_PID=
	[ -n "${TGT_CTL:-}" ] && rm -f "/var/run/tgtd/socket.$TGT_CTL" "/var/run/tgtd/socket.$TGT_CTL.lock"
	return 0
}
EXTRA_CLEANUP=tgt_cleanup

tadm() { tgtadm -C "$TGT_CTL" --lld iscsi "$@"; }

# tgt_start [SIZE]: tgtd on a free port, LUN 1 backed by $T/lun.img, two
# portals; $PORT, $URI1, $URI2.  Skips where tgtd cannot run.
tgt_start()
{
	need tgtd tgtadm
	[ "$(id -u)" = 0 ] || skip "tgtd needs root"
	truncate -s "${1:-64M}" "$T/lun.img"
	PORT=$(free_port)
	# The control "port" names a unix socket /var/run/tgtd/socket.N;
	# tgtadm takes small numbers only.  One not in use:
	for _ in $(seq 50); do
		TGT_CTL=$((RANDOM % 30000 + 1000))
		[ -e "/var/run/tgtd/socket.$TGT_CTL" ] || break
	done
	tgtd -f --iscsi "portal=127.0.0.1:$PORT" -C "$TGT_CTL" >>"$T/tgtd.log" 2>&1 &
	TGT_PID=$!
	wait_for 5 tadm --op show --mode sys >/dev/null 2>&1 ||
		skip "tgtd did not start: $(tail -3 "$T/tgtd.log")"
	tadm --op new --mode target --tid 1 -T "$IQN" || fail "tgtadm: new target"
	tadm --op new --mode logicalunit --tid 1 --lun 1 -b "$T/lun.img" || fail "tgtadm: new LUN"
	tadm --op bind --mode target --tid 1 -I ALL || fail "tgtadm: bind"
	tadm --op new --mode portal --param "portal=127.0.0.2:$PORT" || fail "tgtadm: second portal"
	URI1="iscsi://127.0.0.1:$PORT/$IQN/1"
	URI2="iscsi://127.0.0.2:$PORT/$IQN/1"
}

# tgt_drop_sessions IP: delete every connection from/to the portal IP
# (tgtd lists the initiator's address per connection; both portals are
# on loopback, so the local address decides: match "IP Address: IP").
tgt_drop_sessions()
{
	local ip=$1 sid= line

	tadm --op show --mode target | while read -r line; do
		case $line in
		"I_T nexus: "*) sid=${line#I_T nexus: } ;;
		"IP Address: $ip") echo "$sid" ;;
		esac
	done | sort -u >"$T/sids"
	while read -r sid; do
		tadm --op delete --mode conn --tid 1 --sid "$sid" --cid 0 || true
	done <"$T/sids"
	[ -s "$T/sids" ]
}

EXPORT="nbd+unix:///lun?socket=$T/nbd.sock"
RECONNECT_MAX=4		# the iscsi transport's longest reconnect back-off, s
# io CMD: one qemu-io command through the export
io() { qemu-io -f raw "$EXPORT" -c "$1" >/dev/null 2>&1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.2f", a - b }'; }

# lun_read OFFSET LEN: bytes of the backing file, hex.
lun_read() { dd if="$T/lun.img" bs=1 skip="$1" count="$2" status=none | od -An -tx1 | tr -d ' \n'; }
