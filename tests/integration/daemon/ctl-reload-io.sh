#!/usr/bin/env bash
# Description: reload keeps a map working under a real NBD client: I/O
# queued with every path failed survives a reload (noflush suspend) and
# completes on the new table; reloads while fio writes and verifies lose
# nothing; remove refuses a map a client holds open (EBUSY) unless forced.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

for c in qemu-io fio stdbuf; do
	if ! command -v "$c" >/dev/null; then
		echo "SKIP: $c not installed"
		exit 77
	fi
done
need_file_paths

D=$T/disk.img
truncate -s 64M "$D"
P1=$D
P2="file:$D?direct"
# Two strings for one file: two paths to the same storage.
T1="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $P1 1 $P2 1"
T2="1 queue_if_no_path 0 2 1 round-robin 0 1 1 $P2 1 service-time 0 1 2 $P1 1 1"
start_daemon --map "mp=$T1" --nbd "unix:$T/nbd.sock"
URI="nbd+unix:///mp?socket=$T/nbd.sock"

# One client that stays connected: qemu-io reading commands from a fifo.
mkfifo "$T/cmds"
stdbuf -oL qemu-io -f raw "$URI" <"$T/cmds" >"$T/qio.out" 2>&1 &
QIO=$!
exec 3>"$T/cmds"
# Commands qemu-io has completed (its prompts may share a line).
qio_done()
{
	grep -oE '(wrote|read) [0-9]+/[0-9]+ bytes at offset' "$T/qio.out" | wc -l
}
qio_wait()	# qio_wait N: until N commands have completed (bounded)
{
	wait_for 20 eval '[ "$(qio_done)" -ge '"$1"' ]'
}

wait_for 10 eval '[ "$(u ls 2>/dev/null)" = "mp	131072	1" ]' ||
	fail "ls with a client connected: $(u ls 2>&1)"
expect_out "1" eval "u info mp | sed -n 's/^Open count: *//p'"
expect_err 1 "umpath: remove mp: map is open by a client (--force removes it anyway)" u remove mp

echo "write -P 0xab 0 1M" >&3
qio_wait 1 || fail "first write did not complete: $(cat "$T/qio.out")"

# Every path failed, queue_if_no_path: a write queues ...
expect_ok u message mp fail_path "$P1"
expect_ok u message mp fail_path "$P2"
echo "write -P 0xcd 2M 64k" >&3
sleep 0.5
[ "$(qio_done)" = 1 ] || fail "a write completed with every path failed: $(cat "$T/qio.out")"
# ... and the reload's noflush suspend keeps it queued: it completes on
# the new table's paths, it does not fail.
expect_ok u reload mp "$T2"
qio_wait 2 || fail "the queued write did not complete after the reload"
expect_out "0 131072 multipath $T2" u table mp
# One command at a time: qemu-io reading a pipe leaves a second line in
# its buffer until more input comes.
echo "read -P 0xcd 2M 64k" >&3
qio_wait 3 || fail "read after the reload did not complete: $(cat "$T/qio.out")"
echo "read -P 0xab 0 1M" >&3
qio_wait 4 || fail "read after the reload did not complete: $(cat "$T/qio.out")"
echo quit >&3
exec 3>&-
wait "$QIO" || fail "qemu-io exited $?"
if grep -qiE 'fail|error|mismatch|pattern' "$T/qio.out"; then
	fail "qemu-io: $(cat "$T/qio.out")"
fi
wait_for 10 eval '[ "$(u ls 2>/dev/null)" = "mp	131072	0" ]' ||
	fail "ls after the client left: $(u ls 2>&1)"

# Reloads back and forth while fio writes and verifies.
fio --name=reload --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=16 \
	--size=32M --loops=2 --verify=crc32c --verify_fatal=1 --do_verify=1 \
	--output="$T/fio.out" &
FIO=$!
n=0
deadline=$((SECONDS + 60))
while ! exited "$FIO" || [ "$n" -lt 6 ]; do
	if [ $((n % 2)) = 0 ]; then
		expect_ok u reload mp "$T1"
	else
		expect_ok u reload mp "$T2"
	fi
	n=$((n + 1))
	[ "$SECONDS" -lt "$deadline" ] || break
	sleep 0.05
done
st=0
wait "$FIO" || st=$?
[ "$st" = 0 ] || fail "fio exited $st across $n reloads: $(cat "$T/fio.out")"
echo "fio verified across $n reloads"
expect_out "ACTIVE" eval "u info mp | sed -n 's/^State: *//p'"

# A forced remove takes the map away even from a connected client.
mkfifo "$T/cmds2"
qemu-io -f raw "$URI" <"$T/cmds2" >"$T/qio2.out" 2>&1 &
QIO=$!
exec 3>"$T/cmds2"
wait_for 10 eval '[ "$(u ls 2>/dev/null)" = "mp	131072	1" ]' || fail "second client not counted"
expect_ok u remove mp --force
expect_out "No devices found" u ls
echo quit >&3
exec 3>&-
wait "$QIO" || true

st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "umpathd exited $st on SIGTERM, want 0"
finish
