#!/usr/bin/env bash
# Description: `umpath reconfigure` under real clients of the NBD export,
# over three nbdkit paths to one image: a write queued with every path
# failed survives a reconfigure that changes path_grouping_policy (noflush
# reload) and completes; fio write-verify runs with zero errors while
# reconfigure cycles the map through failover, multibus and group_by_prio;
# a map whose section is removed while a client has it open is kept, and
# removed by the next reconfigure once the client has gone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

for c in nbdkit qemu-io fio stdbuf; do
	if ! command -v "$c" >/dev/null; then
		echo "SKIP: $c not installed"
		exit 77
	fi
done
if ! nbdkit --dump-plugin file >/dev/null 2>&1; then
	echo "SKIP: nbdkit file plugin missing"
	exit 77
fi

IMG=$T/lun.img
truncate -s 64M "$IMG"
NBDKIT_PIDS=()
QIO=
stop_peers()
{
	[ -z "$QIO" ] || kill "$QIO" 2>/dev/null || true
	for p in "${NBDKIT_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	cleanup
}
trap stop_peers EXIT
for s in a b c; do
	nbdkit --exit-with-parent -U "$T/$s.sock" file "$IMG" 2>>"$T/nbdkit.log" &
	NBDKIT_PIDS+=($!)
done
for s in a b c; do
	wait_for 10 test -S "$T/$s.sock" || { echo "nbdkit $s did not start"; exit 1; }
done
A="nbd+unix:///?socket=$T/a.sock"
B="nbd+unix:///?socket=$T/b.sock"
C="nbd+unix:///?socket=$T/c.sock"

# conf_lun POLICY: the file with map lun grouped by POLICY.  The checker
# is off: paths failed by hand stay failed until a table replaces them.
conf_lun()
{
	conf <<X
defaults {
	path_checker none
}
multipaths {
	multipath {
		alias lun
		path_grouping_policy $1
		path $A prio 10
		path $B prio 50
		path $C prio 50
	}
}
X
}
ST="service-time 0 1 2"
T_FAILOVER="1 queue_if_no_path 0 3 1 $ST $B 1 1 $ST $C 1 1 $ST $A 1 1"
T_MULTIBUS="1 queue_if_no_path 0 1 1 service-time 0 3 2 $A 1 1 $B 1 1 $C 1 1"
T_BY_PRIO="1 queue_if_no_path 0 2 1 service-time 0 2 2 $B 1 1 $C 1 1 $ST $A 1 1"

conf_lun failover
start_daemon --config "$CONF" --nbd "unix:$T/nbd.sock"
URI="nbd+unix:///lun?socket=$T/nbd.sock"
expect_table lun "$T_FAILOVER"

# One client that stays connected: qemu-io reading commands from a fifo.
mkfifo "$T/cmds"
stdbuf -oL qemu-io -f raw "$URI" <"$T/cmds" >"$T/qio.out" 2>&1 &
QIO=$!
exec 3>"$T/cmds"
qio_done()	# commands qemu-io has completed
{
	grep -oE '(wrote|read) [0-9]+/[0-9]+ bytes at offset' "$T/qio.out" | wc -l
}
qio_wait()	# qio_wait N: until N commands have completed (bounded)
{
	wait_for 20 eval '[ "$(qio_done)" -ge '"$1"' ]'
}
echo "write -P 0xab 0 1M" >&3
qio_wait 1 || fail "first write did not complete: $(cat "$T/qio.out")"

# Every path failed: a write queues (queue_if_no_path, from no_path_retry
# queue) ...
for p in "$A" "$B" "$C"; do
	expect_ok u message lun fail_path "$p"
done
echo "write -P 0xcd 2M 64k" >&3
sleep 0.5
[ "$(qio_done)" = 1 ] || fail "a write completed with every path failed: $(cat "$T/qio.out")"
# ... and reconfigure's reload keeps it queued: it completes on the new
# table, it does not fail.
conf_lun multibus
expect_out "lun: reloaded" u reconfigure
qio_wait 2 || fail "the queued write did not complete after reconfigure"
expect_table lun "$T_MULTIBUS"
echo "read -P 0xcd 2M 64k" >&3
qio_wait 3 || fail "read after reconfigure did not complete: $(cat "$T/qio.out")"
echo "read -P 0xab 0 1M" >&3
qio_wait 4 || fail "read after reconfigure did not complete: $(cat "$T/qio.out")"

# fio writes and verifies while reconfigure cycles the grouping.
fio --name=reconfigure --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=16 \
	--offset=4M --size=32M --time_based --runtime=6 \
	--verify=crc32c --verify_backlog=128 --verify_fatal=1 --verify_state_save=0 \
	--output="$T/fio.out" &
FIO=$!
n=0
policies=(failover group_by_prio multibus)
tables=("$T_FAILOVER" "$T_BY_PRIO" "$T_MULTIBUS")
deadline=$((SECONDS + 60))
while ! exited "$FIO" || [ "$n" -lt 6 ]; do
	i=$((n % 3))
	conf_lun "${policies[$i]}"
	expect_out "lun: reloaded" u reconfigure
	expect_table lun "${tables[$i]}"
	n=$((n + 1))
	[ "$SECONDS" -lt "$deadline" ] || break
	sleep 0.2
done
st=0
wait "$FIO" || st=$?
[ "$st" = 0 ] || fail "fio exited $st across $n reconfigures: $(cat "$T/fio.out")"
grep -q 'err= 0' "$T/fio.out" || fail "fio saw errors: $(cat "$T/fio.out")"
if grep -qiE 'verify.*bad|crc32c.*mismatch' "$T/fio.out"; then
	fail "fio verify failed: $(cat "$T/fio.out")"
fi
grep -qE 'write: IOPS=[1-9]' "$T/fio.out" || fail "fio did no I/O: $(cat "$T/fio.out")"
echo "fio verified across $n reconfigures: $(grep -oE 'write: IOPS=[^,]*' "$T/fio.out")"
# The qemu-io data is still there.
echo "read -P 0xab 0 1M" >&3
qio_wait 5 || fail "read after fio did not complete: $(cat "$T/qio.out")"

# The section goes while qemu-io has the map open: kept, and said so.
conf <<'X'
defaults {
	path_checker none
}
X
expect_out "lun: kept: not in the file any more, but open by a client" u reconfigure
expect_out "lun	131072	1" u ls
echo quit >&3
exec 3>&-
st=0
wait "$QIO" || st=$?
QIO=
[ "$st" = 0 ] || fail "qemu-io exited $st"
if grep -qiE 'fail|error|mismatch|pattern' "$T/qio.out"; then
	fail "qemu-io: $(cat "$T/qio.out")"
fi
wait_for 10 eval '[ "$(u ls 2>/dev/null)" = "lun	131072	0" ]' ||
	fail "ls after the client left: $(u ls 2>&1)"
# The client gone, the next reconfigure removes it.
expect_out "lun: removed" u reconfigure
expect_out "No devices found" u ls

st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"
finish
