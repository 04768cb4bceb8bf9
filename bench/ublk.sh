#!/usr/bin/env bash
# ublk.sh - the same fio job over three block devices made of the same two
# scsi_debug paths, inside the Linux 6.12 guest of tests/vm/run-vm.sh:
#   umpath-nbd   umpathd's NBD export and the kernel's nbd-client (-C 2)
#   umpath-ublk  umpathd --ublk, /dev/ublkbN
#   dm-multipath the kernel's own dm-multipath (dmsetup create)
# all with round-robin over both paths.  It prints ratios only: the guest
# is emulated (qemu TCG), 10-50x slower than the host and not evenly so
# (user-space and kernel work, interrupts, timers each pay a different
# toll), so its IOPS are not speed figures, and even the ratios only say
# which stack costs more where, not by how much on real hardware.
#
#   bench/ublk.sh [--quick|--smoke] [BUILD_DIR]       (default build/)
#
# 5 s per job; --quick 3 s; --smoke 1 s, only to see that every stack
# still works (make check runs that).
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${UMPATH_IN_VM:-}" ]; then
	speed=
	case ${1:-} in --quick|--smoke) speed=$1; shift ;; esac
	B=$(cd "${1:-$src/build}" && pwd) || exit 1
	exec bash "$src/tests/vm/run-vm.sh" -m nbd -m dm-multipath -m dm-round-robin -t 600 \
		"$src/bench/ublk.sh" "$B/umpathd" "$B/umpath" $speed
fi

# In the guest, with UMPATHD UMPATH [--quick|--smoke].
. "$src/tests/vm/guest-common.sh"
case ${3:-} in
--quick) RUNTIME=3 ;;
--smoke) RUNTIME=1 ;;
*) RUNTIME=5 ;;
esac
need fio nbd-client dmsetup
modprobe ublk_drv 2>/dev/null

scsi_paths 2 128
SECTORS=$((128 << 11))
TABLE="0 0 1 1 round-robin 0 2 1"

# iops DEV RW: IOPS of the one job every stack runs: 4 KiB, O_DIRECT,
# libaio, 2 jobs x iodepth 16 (CPUs x queue depth), over the whole device.
iops()
{
	fio --name=b --filename="$1" --rw="$2" --bs=4k --direct=1 --ioengine=libaio \
		--iodepth=16 --numjobs=2 --time_based --runtime="$RUNTIME" --ramp_time=1 \
		--group_reporting --output-format=json --output="$T/fio.json" >/dev/null ||
		{ echo "bench/ublk: fio $2 on $1 failed" >&2; return 1; }
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print(int(j["read" if sys.argv[2] == "randread" else "write"]["iops"]))' "$T/fio.json" "$2"
}

declare -A R
# measure NAME DEV: both jobs on DEV.
measure()
{
	local rw

	for rw in randread randwrite; do
		R[$1.$rw]=$(iops "$2" "$rw") || R[$1.$rw]=
	done
	step "$1: done"
}

# umpath-nbd
start_daemon --nbd "unix:$T/nbd.sock" \
	--map b="$TABLE file:/dev/${SD[0]}?direct 1 file:/dev/${SD[1]}?direct 1"
nbd_connect /dev/nbd0 -unix "$T/nbd.sock" -N b -b 4096 -C 2 && measure umpath-nbd /dev/nbd0
nbd-client -d /dev/nbd0 >/dev/null 2>&1
NBD_DEVS=()
kill_daemon 5

# umpath-ublk
[ -e /dev/ublk-control ] || fail "no /dev/ublk-control in the guest"
start_daemon --ublk --map b="$TABLE file:/dev/${SD[0]}?direct 1 file:/dev/${SD[1]}?direct 1"
# umpath ls: NAME SECTORS OPENS DEVICE
ublk_dev() { dev=$(u ls | awk '$1 == "b" { print $4 }') && [ -b "$dev" ]; }
if wait_for 10 ublk_dev; then
	measure umpath-ublk "$dev"
else
	fail "no /dev/ublkbN from umpathd --ublk"
fi
kill_daemon 10

# dm-multipath over the same two disks
dmsetup create --noudevsync bench \
	--table "0 $SECTORS multipath $TABLE $(cat "/sys/block/${SD[0]}/dev") 1 $(cat "/sys/block/${SD[1]}/dev") 1" ||
	fail "dmsetup create failed"
mm=$(dmsetup info -c -o major,minor --noheadings bench | tr -d ' ')
mknod "$T/dm" b "${mm%:*}" "${mm#*:}" && measure dm-multipath "$T/dm"
dmsetup remove bench

ratio()
{
	if [ -n "${R[$1.$3]:-}" ] && [ -n "${R[$2.$3]:-}" ] && [ "${R[$2.$3]}" -gt 0 ]; then
		python3 -c 'import sys; print("%.2fx" % (int(sys.argv[1]) / int(sys.argv[2])))' "${R[$1.$3]}" "${R[$2.$3]}"
	else
		echo "n/a"
	fi
}

echo
echo "Inside an emulated Linux $(uname -r) guest (qemu TCG): ratios only;"
echo "not speed figures (see the head of bench/ublk.sh).  4 KiB O_DIRECT,"
echo "libaio, 2 jobs x iodepth 16, ${RUNTIME} s each, two scsi_debug paths, round-robin."
printf '%-30s %10s %10s\n' "" randread randwrite
printf '%-30s %10s %10s\n' "umpath-nbd / dm-multipath" \
	"$(ratio umpath-nbd dm-multipath randread)" "$(ratio umpath-nbd dm-multipath randwrite)"
printf '%-30s %10s %10s\n' "umpath-ublk / dm-multipath" \
	"$(ratio umpath-ublk dm-multipath randread)" "$(ratio umpath-ublk dm-multipath randwrite)"
printf '%-30s %10s %10s\n' "umpath-ublk / umpath-nbd" \
	"$(ratio umpath-ublk umpath-nbd randread)" "$(ratio umpath-ublk umpath-nbd randwrite)"
for k in umpath-nbd umpath-ublk dm-multipath; do
	for rw in randread randwrite; do
		[ -n "${R[$k.$rw]:-}" ] || fail "$k $rw did not run"
	done
done
finish
