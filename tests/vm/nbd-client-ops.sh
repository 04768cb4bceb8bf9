#!/usr/bin/env bash
# Description: what the kernel's NBD client sends besides reads and writes
# reaches umpath's paths.  The nbd driver takes the export's flags (FLUSH,
# FUA, TRIM, WRITE_ZEROES, CAN_MULTI_CONN: debugfs and queue limits); with
# two connections, a FLUSH sent on the second (fsync on CPU 1) flushes both
# scsi_debug paths that writes on the first (CPU 0) made dirty, which is
# what CAN_MULTI_CONN promises; blkdiscard reaches the store as a discard
# (the disks count it, the range reads zero); blkdiscard -z and
# fallocate -z arrive as write-zeroes (the ranges read zero and no data
# crossed umpath's paths); the bytes around them are untouched.
set -uo pipefail
. "$(dirname "$0")/guest-common.sh"
need nbd-client blkdiscard fallocate taskset cmp

scsi_paths 2 64
A=file:/dev/${SD[0]}?direct B=file:/dev/${SD[1]}?direct
start_daemon --nbd "unix:$T/nbd.sock" \
	--map lun="1 queue_if_no_path 0 1 1 round-robin 0 2 1 $A 1 $B 1"
nbd_connect /dev/nbd0 -unix "$T/nbd.sock" -N lun -b 4096 -C 2 || finish

# sum KEY: a counter of umpath show paths (ios, bytes) over both paths.
sum()
{
	u show paths lun --json |
		python3 -c 'import json, sys; print(sum(p[sys.argv[1]] for p in json.load(sys.stdin)["paths"]))' "$1"
}
# sd_sum FIELD: a /sys/block/sdX/stat counter over both disks.
sd_sum() { echo $(($(sd_stat "${SD[0]}" "$1") + $(sd_stat "${SD[1]}" "$1"))); }
# store_is OFFSET_K LEN_K FILE: the shared store (read past every cache,
# through the first disk) holds FILE's bytes there.
store_is()
{
	cmp <(dd if="/dev/${SD[0]}" bs=4k skip=$(($1 / 4)) count=$(($2 / 4)) iflag=direct status=none) "$3"
}

step "flags"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
flags=$(sed -n 's/^Hex: //p' /sys/kernel/debug/nbd/nbd0/flags)
[ -n "$flags" ] || fail "no flags in /sys/kernel/debug/nbd/nbd0/flags"
for f in SEND_FLUSH:4 SEND_FUA:8 SEND_TRIM:32 SEND_WRITE_ZEROES:64 CAN_MULTI_CONN:256; do
	((${flags:-0} & ${f#*:})) || fail "the nbd driver has flags $flags: no NBD_FLAG_${f%:*}"
done
q=/sys/block/nbd0/queue
[ "$(cat $q/write_cache)" = "write back" ] || fail "nbd0 write_cache: $(cat $q/write_cache)"
[ "$(cat $q/fua)" = 1 ] || fail "nbd0 takes no FUA"
[ "$(cat $q/discard_max_bytes)" -gt 0 ] || fail "nbd0 takes no discard"
[ "$(cat $q/write_zeroes_max_bytes)" -gt 0 ] || fail "nbd0 takes no write-zeroes"
# Which connection carries a request: hardware queue N is socket N, and
# the CPU picks the queue.
[ "$(cat /sys/block/nbd0/mq/0/cpu_list)" = 0 ] && [ "$(cat /sys/block/nbd0/mq/1/cpu_list)" = 1 ] ||
	fail "nbd0's queues are not one per CPU: $(cat /sys/block/nbd0/mq/*/cpu_list)"

step "writes on CPU 0, fsync on CPU 1"
head -c 1M /dev/urandom >"$T/data"
w0=("$(sd_stat "${SD[0]}" 5)" "$(sd_stat "${SD[1]}" 5)")
taskset -c 0 dd if="$T/data" of=/dev/nbd0 bs=64k oflag=direct status=none || fail "writing nbd0 failed"
[ "$(sd_stat "${SD[0]}" 5)" -gt "${w0[0]}" ] && [ "$(sd_stat "${SD[1]}" 5)" -gt "${w0[1]}" ] ||
	fail "round-robin did not write both paths"
f0=("$(sd_stat "${SD[0]}" 16)" "$(sd_stat "${SD[1]}" 16)" "$(sd_stat nbd0 16)")
taskset -c 1 sync /dev/nbd0 || fail "fsync of nbd0 failed"
[ "$(sd_stat nbd0 16)" -gt "${f0[2]}" ] || fail "fsync sent nbd0 no flush"
for i in 0 1; do
	[ "$(sd_stat "${SD[$i]}" 16)" -gt "${f0[$i]}" ] ||
		fail "the flush did not reach path ${SD[$i]}, dirty from the other connection"
done
store_is 0 1024 "$T/data" || fail "the store does not hold what was written"

step "discard"
b0=$(sum bytes) i0=$(sum ios) d0=$(sd_sum 12)
blkdiscard -f -o 0 -l 256KiB /dev/nbd0 || fail "blkdiscard on nbd0 failed"
[ "$(sd_sum 12)" -gt "$d0" ] || fail "no discard reached the scsi_debug disks"
store_is 0 256 <(head -c 256k /dev/zero) || fail "the discarded range does not read zero"

step "write-zeroes"
blkdiscard -f -z -o 256KiB -l 256KiB /dev/nbd0 || fail "blkdiscard -z on nbd0 failed"
fallocate -z -o 512KiB -l 256KiB /dev/nbd0 || fail "fallocate -z on nbd0 failed"
store_is 256 512 <(head -c 512k /dev/zero) || fail "the zeroed ranges do not read zero"
store_is 768 256 <(tail -c 256k "$T/data") || fail "the bytes after the zeroed ranges changed"
[ "$(sum bytes)" = "$b0" ] ||
	fail "$(($(sum bytes) - b0)) data bytes crossed the paths: zeroes written, not write-zeroes"
[ "$(sum ios)" -ge $((i0 + 3)) ] || fail "umpath's paths saw $(($(sum ios) - i0)) I/Os for 3 commands"
u show paths lun
end_daemon
finish
