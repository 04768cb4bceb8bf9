# guest-common.sh - what the tests/vm/ scripts share.  They run as root
# inside the Linux 6.12 guest (run-vm.sh), with the helpers of
# ../integration/common.sh (a temporary directory, umpathd, bounded waits,
# skips) and these: scsi_debug disks as paths, taking a path offline and
# back as a dying disk does, and the kernel's NBD client.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../integration/common.sh"
[ -n "${UMPATH_IN_VM:-}" ] ||
	skip "a guest test: run it with tests/vm/run-vm.sh (meson test --suite vm)"

# The guest's loopback starts down (TCP tests need it), and no udev made
# /dev/fd (bash's <(...) needs it).
ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

SD=()		# the scsi_debug disks, sda sdb ...: paths to one store
NBD_DEVS=()	# /dev/nbdN connected, disconnected at exit
MOUNTS=()	# unmounted at exit

vm_cleanup()
{
	local m d

	for m in "${MOUNTS[@]}"; do
		umount "$m" 2>/dev/null
	done
	for d in "${NBD_DEVS[@]}"; do
		nbd-client -d "$d" >/dev/null 2>&1
	done
	kill_daemon 5
}
suite_cleanup() { vm_cleanup; }

# step TEXT: where the test is, with the time (the guest is slow, and
# its output only shows once it is over).
step()
{
	echo "$(date +%T) $*"
}

is_scsi_debug()
{
	local model

	read -r model <"$1/device/model" 2>/dev/null && [ "$model" = scsi_debug ]
}

scsi_debug_count()
{
	local b n=0

	for b in /sys/block/sd*; do
		is_scsi_debug "$b" && n=$((n + 1))
	done
	[ "$n" = "$1" ]
}

# scsi_paths N SIZE_MB [PARAM=V...]: N scsi_debug disks in $SD, each a path (its own
# SCSI host) to one shared store of SIZE_MB.  The store honours UNMAP and
# WRITE SAME and reads zeroes where unmapped; its write-back cache makes
# the disks take flushes, which /sys/block/sdX/stat counts.  More scsi_debug
# parameters after SIZE_MB (sector_size=4096).
scsi_paths()
{
	local b

	modprobe sd_mod || skip "no sd_mod in the guest kernel"
	modprobe scsi_debug add_host="$1" num_tgts=1 max_luns=1 dev_size_mb="$2" \
		delay=0 lbpu=1 lbpws=1 lbprz=1 "${@:3}" || skip "no scsi_debug in the guest kernel"
	wait_for 30 scsi_debug_count "$1" || { echo "FAIL: $1 scsi_debug disks did not appear"; exit 1; }
	SD=()
	for b in /sys/block/sd*; do
		is_scsi_debug "$b" && SD+=("${b##*/}")
	done
}

# path_state sdX offline|running: the disk fails every I/O from now on, as
# a dead path does, or works again.
path_state()
{
	echo "$2" >"/sys/block/$1/device/state"
}

# path_flap MAP sdX: the disk goes offline until MAP shows its path
# (file:/dev/sdX?direct) failed, stays so 2 s, and comes back until MAP
# shows the path active again.
path_flap()
{
	step "$2 offline"
	path_state "$2" offline
	wait_for 20 sh -c "\"$UMPATH\" -S \"$SOCK\" status $1 | grep -q '$2?direct F'" ||
		fail "path $2 offline but not shown failed: $(u status "$1")"
	sleep 2
	step "$2 running"
	path_state "$2" running
	wait_for 20 sh -c "\"$UMPATH\" -S \"$SOCK\" status $1 | grep -q '$2?direct A'" ||
		fail "path $2 running again but not reinstated: $(u status "$1")"
}

# ublk_device MAP: $dev, MAP's /dev/ublkbN from umpath ls; the test ends
# if it has none.
ublk_device()
{
	dev=$(u ls | awk -v m="$1" '$1 == m { print $4 }')
	[ -n "$dev" ] && [ -b "$dev" ] || { fail "umpath ls shows no ublk device for $1: $(u ls)"; finish; }
}

# sd_stat DEV FIELD: a counter of /sys/block/DEV/stat: 1 reads, 5 writes,
# 12 discards, 16 flushes (Documentation/block/stat.rst).
sd_stat()
{
	local s

	s=$(cat "/sys/block/$1/stat")
	set -- $2 $s
	shift "$1"
	echo "$1"
}

nbd_size_set()
{
	[ "$(cat "/sys/block/$1/size" 2>/dev/null)" != 0 ]
}

# nbd_connect /dev/nbdN NBD-CLIENT-ARGS...: the kernel's NBD client on
# /dev/nbdN, waited for until the device has its size.
nbd_connect()
{
	local dev=$1

	shift
	nbd-client "$@" "$dev" >"$T/nbd-client.out" 2>&1 ||
		{ cat "$T/nbd-client.out"; fail "nbd-client $* $dev failed"; return 1; }
	NBD_DEVS+=("$dev")
	wait_for 10 nbd_size_set "${dev#/dev/}" || { fail "$dev has no size after nbd-client"; return 1; }
}

# end_daemon: disconnect the NBD devices, then SIGTERM umpathd, which
# must exit 0 with no sanitizer report in its log (the guest runs the
# build it was given: build-san's under make check-sanitize).
end_daemon()
{
	local d st=0

	for d in "${NBD_DEVS[@]}"; do
		nbd-client -d "$d" >/dev/null 2>&1 || fail "nbd-client -d $d failed"
	done
	NBD_DEVS=()
	stop_daemon || st=$?
	[ "$st" = 0 ] || fail "umpathd exited $st after SIGTERM"
	! grep -q 'Sanitizer\|runtime error' "$LOG" || fail "umpathd's log has a sanitizer report"
}

# mount_dev DEV DIR: mount, unmounted at exit.
mount_dev()
{
	mkdir -p "$2" && mount "$1" "$2" && MOUNTS+=("$2")
}
