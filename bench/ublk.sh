#!/usr/bin/env bash
# ublk.sh - the block devices side by side, inside a Linux 6.12 guest
# (linux-vm/run): one fio job (4 KiB random reads, then random writes,
# libaio iodepth 16, O_DIRECT) on the same two scsi_debug paths to one
# store through
#   umpath-ublk   umpathd --ublk: /dev/ublkbN
#   umpath-nbd    umpathd --nbd + the kernel's nbd-client (-C 2 -b 4096)
#   dm-multipath  the kernel's own target: dmsetup create with the same table
# Prints ratios only: the guest is emulated (no KVM here), so absolute
# numbers say nothing of a real host; ratios say how the paths compare
# under the same handicap.
#
#   bench/ublk.sh [--quick] [BUILD_DIR]      (default build/)
set -uo pipefail
RUNTIME=8
if [ "${1:-}" = --quick ]; then RUNTIME=3; shift; fi
B=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${UMPATH_IN_VM:-}" ]; then
	run=${UMPATH_LINUX_VM:-}
	d=$src
	while [ -z "$run" ] && [ "$d" != / ]; do
		d=$(dirname "$d")
		[ -x "$d/shared/linux-vm/run" ] && run=$d/shared/linux-vm/run
	done
	[ -n "$run" ] || { echo "bench/ublk: no shared/linux-vm/run (set UMPATH_LINUX_VM)" >&2; exit 77; }
	cd "$src" || exit 1
	exec "$run" -m ublk_drv -m nbd -m dm_multipath -m scsi_debug -t 600 -- \
		env UMPATH_IN_VM=1 bash bench/ublk.sh $([ "$RUNTIME" = 3 ] && echo --quick) "$B"
fi

for c in fio nbd-client dmsetup python3; do
	command -v $c >/dev/null || { echo "bench/ublk: $c is not installed" >&2; exit 77; }
done
T=$(mktemp -d)
DPID=
cleanup()
{
	nbd-client -d /dev/nbd0 >/dev/null 2>&1
	dmsetup remove bench >/dev/null 2>&1
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip link set lo up 2>/dev/null

modprobe scsi_debug add_host=2 num_tgts=1 max_luns=1 dev_size_mb=128 delay=0 || exit 77
for _ in $(seq 100); do [ "$(ls /sys/block | grep -c '^sd')" -ge 2 ] && break; sleep 0.1; done
SD=($(ls /sys/block | grep '^sd' | sort | head -2))
A=/dev/${SD[0]} B2=/dev/${SD[1]}
SECTORS=$(cat "/sys/block/${SD[0]}/size")
TABLE="0 0 1 1 round-robin 0 2 1"

# fio_iops DEV RW: the job's IOPS on DEV
fio_iops()
{
	fio --name=b --filename="$1" --rw="$2" --bs=4k --direct=1 --ioengine=libaio --iodepth=16 \
		--numjobs=1 --size=64M --time_based --runtime="$RUNTIME" --ramp_time=1 \
		--output-format=json --output="$T/fio.json" >/dev/null || { echo 0; return; }
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); k=sys.argv[2]; print(int(j["jobs"][0][k]["iops"]))' \
		"$T/fio.json" "$([ "$2" = randread ] && echo read || echo write)"
}

declare -A iops
measure() { iops[$1-randread]=$(fio_iops "$2" randread); iops[$1-randwrite]=$(fio_iops "$2" randwrite); }

"$B/umpathd" --control "$T/ctl" --ublk --nbd "unix:$T/nbd.sock" \
	--map bench="$TABLE file:$A?direct 1 file:$B2?direct 1" 2>"$T/umpathd.log" &
DPID=$!
for _ in $(seq 100); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
dev=$("$B/umpath" -S "$T/ctl" ls | awk '$1 == "bench" { print $4 }')
[ -b "$dev" ] || { echo "bench/ublk: no ublk device: $(cat "$T/umpathd.log")" >&2; exit 1; }
measure ublk "$dev"
nbd-client -unix "$T/nbd.sock" -N bench -b 4096 -C 2 /dev/nbd0 >/dev/null 2>&1 ||
	{ echo "bench/ublk: nbd-client failed" >&2; exit 1; }
measure nbd /dev/nbd0
nbd-client -d /dev/nbd0 >/dev/null 2>&1
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=

dev_of() { cat "/sys/block/$1/dev"; }
dmsetup create bench --table "0 $SECTORS multipath $TABLE $(dev_of "${SD[0]}") 1 $(dev_of "${SD[1]}") 1" ||
	{ echo "bench/ublk: dmsetup create failed" >&2; exit 1; }
measure dm /dev/mapper/bench
dmsetup remove bench

ratio() { python3 -c 'import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); print("%.2f" % (a / b) if b else "n/a")' "$1" "$2"; }
echo "bench/ublk: 4 KiB random I/O, iodepth 16, ${RUNTIME} s each, in an emulated guest: ratios only"
for rw in randread randwrite; do
	echo "$rw: ublk/dm-multipath $(ratio "${iops[ublk-$rw]}" "${iops[dm-$rw]}")" \
		"nbd+nbd-client/dm-multipath $(ratio "${iops[nbd-$rw]}" "${iops[dm-$rw]}")" \
		"ublk/nbd+nbd-client $(ratio "${iops[ublk-$rw]}" "${iops[nbd-$rw]}")"
done
