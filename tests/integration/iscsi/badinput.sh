#!/usr/bin/env bash
# Description: iSCSI paths that cannot serve are refused when the table is
# loaded, with a reason naming the path - unreachable portal, wrong target
# IQN, wrong LUN, bad CHAP secret, a LUN of another size than the other
# path's, a portal that never answers the login (bounded) - and nothing of
# the refused map is left.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

IMG=$T/lun.img
truncate -s 16M "$IMG"
truncate -s 8M "$T/small.img"
tgt_start a "$IMG"
tgt_adm a --op new --mode logicalunit --tid 1 --lun 2 -b "$T/small.img" || fail "LUN 2"
# A second target that wants CHAP.
tgt_adm a --op new --mode target --tid 2 -T iqn.2026-12.io.umpath:chap || fail "target 2"
tgt_adm a --op new --mode logicalunit --tid 2 --lun 1 -b "$IMG" || fail "target 2 LUN"
tgt_adm a --op bind --mode target --tid 2 -I ALL || fail "target 2 bind"
tgt_adm a --op new --mode account --user alice --password secret12345 || fail "account"
tgt_adm a --op bind --mode account --tid 2 --user alice || fail "account bind"
P=$TGT_PORT_a
GOOD=$TGT_URL1_a
# Under ASan: a leak inside libiscsi, not ours (lsan.supp says which).
export LSAN_OPTIONS=suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp
start_daemon --io-timeout 5

# refused NAME URL PATTERN: creating a map over GOOD and URL fails, the
# error names URL and matches PATTERN, and no map is left.
refused()
{
	local name=$1 url=$2 pat=$3 out st=0

	out=$("$UMPATH" create "$name" "0 0 1 1 round-robin 0 2 1 $GOOD 1 $url 1" 2>&1) || st=$?
	echo "$name: $out"
	[ "$st" != 0 ] || fail "$name: a map over $url was created"
	grep -qF "error getting device: $url: " <<<"$out" || grep -qF "$url" <<<"$out" ||
		fail "$name: the error does not name the path $url"
	grep -qiE "$pat" <<<"$out" || fail "$name: the reason does not match /$pat/"
	"$UMPATH" ls | grep -q "^$name" && fail "$name: the refused map exists"
	return 0
}

refused url "iscsi://127.0.0.1:$P/$TGT_IQN_a" "not an iSCSI URL"
closed=$(free_port)
refused portal "iscsi://127.0.0.1:$closed/$TGT_IQN_a/1" "cannot connect to 127.0.0.1:$closed: Connection refused"
refused iqn "iscsi://127.0.0.1:$P/iqn.2026-12.io.umpath:nosuch/1" "login|target"
refused lun "iscsi://127.0.0.1:$P/$TGT_IQN_a/7" "lun|not supported|illegal"
refused chap "iscsi://alice%wrong12345@127.0.0.1:$P/iqn.2026-12.io.umpath:chap/1" "login|auth"
refused nochap "iscsi://127.0.0.1:$P/iqn.2026-12.io.umpath:chap/1" "login|auth"
out=$("$UMPATH" create size "0 0 1 1 round-robin 0 2 1 $GOOD 1 iscsi://127.0.0.1:$P/$TGT_IQN_a/2 1" 2>&1) &&
  fail "a map over LUNs of 16 and 8 MiB was created"
echo "size: $out"
grep -q "differ in size" <<<"$out" || fail "size: no 'differ in size' in: $out"
grep -qF "/2" <<<"$out" || fail "size: the error does not name the smaller LUN's path"
"$UMPATH" ls | grep -q "^size" && fail "size: the refused map exists"

# CHAP right: accepted (so the refusals above were about the secret).
"$UMPATH" create chapok "0 0 1 1 round-robin 0 1 1 iscsi://alice%secret12345@127.0.0.1:$P/iqn.2026-12.io.umpath:chap/1 1" ||
  fail "the right CHAP secret was refused"
"$UMPATH" remove chapok || fail "remove chapok"

# A portal that accepts TCP and never answers the login: bounded.
mute=$(free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); c=[]
while True: c.append(s.accept()[0])' "$mute" &
BG_PIDS+=($!)
wait_for 5 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' "$mute" ||
  fail "the mute listener did not start"
start=$(date +%s)
refused mute "iscsi://127.0.0.1:$mute/$TGT_IQN_a/1" "within|timed out"
secs=$(( $(date +%s) - start ))
[ "$secs" -le 15 ] || fail "a mute portal held the table load for $secs s"
"$UMPATH" ls
stop_daemon || fail "umpathd did not exit 0"
finish
