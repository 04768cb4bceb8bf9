# lib.sh - shared by the FUSE export tests: the helpers of ../common.sh,
# with umpathd serving map "mp" (two paths to one 64 MiB image, one of them
# O_DIRECT) as the file $MNT/mp.  Skips (exit 77) where FUSE cannot be
# mounted; never leaves a mount, a loop device or a daemon behind.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
MNT=$T/mnt
IMG=$T/a.img
TABLE="0 0 1 1 round-robin 0 2 1 $IMG 1 file:$IMG?direct 1"
LOOPS=()
FSMNTS=()

# At exit: filesystems and loop devices on the FUSE file first, then the
# daemon (given time to unmount), then what is left of the mount.
suite_cleanup()
{
	local l m

	for m in "${FSMNTS[@]}"; do
		mountpoint -q "$m" && umount -l "$m"
	done
	for l in "${LOOPS[@]}"; do
		losetup -d "$l" 2>/dev/null
	done
	kill_daemon 10
	# Unconditionally: mountpoint(1) cannot stat a dead mount.
	umount -l "$MNT" 2>/dev/null
}

# Before finish reports: stop the daemon (it must exit 0: also catches
# sanitizer reports at exit).
suite_finish()
{
	local st=0

	if [ -n "$DPID" ]; then
		stop_daemon || st=$?
		[ "$st" = 0 ] || fail "umpathd exit status $st after SIGTERM"
	fi
	if grep -Eq "Sanitizer|runtime error" "$LOG" 2>/dev/null; then
		fail "sanitizer report in the umpathd log"
	fi
}

# Start umpathd with the FUSE export on $MNT and map mp over $IMG; wait
# for the file.  A daemon that cannot mount (no /dev/fuse, no permission)
# makes the test skip; any other failure to start fails it.
start_daemon()
{
	[ -e /dev/fuse ] || skip "no /dev/fuse"
	mkdir "$MNT" 2>/dev/null || true	# may be a dead mount: umpathd's to clear
	[ -e "$IMG" ] || truncate -s 64M "$IMG"
	launch_daemon --fuse "$MNT" --map "mp=$TABLE" "$@"
	if ! wait_for 10 test -e "$MNT/mp"; then
		if exited "$DPID" && grep -Eq "fuse: (/dev/fuse|cannot mount)" "$LOG"; then
			cat "$LOG"
			DPID=
			skip "umpathd cannot mount FUSE here"
		fi
		echo "FAIL: umpathd did not come up:"
		cat "$LOG"
		exit 1
	fi
}

# A loop device on $1 (more losetup options after it) in $LOOPDEV,
# recorded for cleanup; skips if not permitted.  (Not run in $(...): the
# record and the skip would be lost.)
loop_attach()
{
	command -v losetup >/dev/null || skip "no losetup"
	LOOPDEV=$(losetup -f --show "${@:2}" "$1" 2>"$T/stderr") ||
		skip "losetup not permitted here: $(cat "$T/stderr")"
	LOOPS+=("$LOOPDEV")
}

loop_detach()
{
	local l keep=()

	losetup -d "$1" || fail "losetup -d $1"
	for l in "${LOOPS[@]}"; do
		[ "$l" = "$1" ] || keep+=("$l")
	done
	LOOPS=("${keep[@]}")
}

# expect_same FILE1 OFF1 FILE2 OFF2 LEN WHAT: the byte ranges are equal.
expect_same()
{
	if ! cmp -s -n "$5" -i "$2:$4" "$1" "$3"; then
		fail "$6: $1@$2 and $3@$4 differ over $5 bytes"
	fi
}

# expect_zero FILE OFF LEN WHAT: the range reads as zeros.
expect_zero()
{
	if ! cmp -s -n "$3" -i "$2:0" "$1" /dev/zero; then
		fail "$4: $1@$2+$3 is not zeros"
	fi
}
