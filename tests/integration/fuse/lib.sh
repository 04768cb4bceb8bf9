# lib.sh - shared by the FUSE export tests: umpathd in a temporary
# directory serving map "mp" (two paths to one 64 MiB image, one of them
# O_DIRECT) as the file $MNT/mp, and checks that record failures and go on.
# Skips (exit 77) where FUSE cannot be mounted; never leaves a mount, a
# loop device or a daemon behind.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

UMPATHD=${1:?usage: $0 UMPATHD UMPATH}
UMPATH=${2:?usage: $0 UMPATHD UMPATH}
T=$(mktemp -d "${TMPDIR:-/tmp}/umpath-fuse-test.XXXXXX")
SOCK=$T/ctl
MNT=$T/mnt
IMG=$T/a.img
TABLE="0 0 1 1 round-robin 0 2 1 $IMG 1 file:$IMG?direct 1"
DPID=
LOOPS=()
FSMNTS=()
FAILED=0

cleanup()
{
	local l m

	set +e
	for m in "${FSMNTS[@]}"; do
		mountpoint -q "$m" && umount -l "$m"
	done
	for l in "${LOOPS[@]}"; do
		losetup -d "$l" 2>/dev/null
	done
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null
		wait_for 10 exited "$DPID" || kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	# Unconditionally: mountpoint(1) cannot stat a dead mount.
	umount -l "$MNT" 2>/dev/null
	if [ "$FAILED" != 0 ] && [ -s "$T/umpathd.log" ]; then
		echo "--- umpathd log"
		cat "$T/umpathd.log"
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail()
{
	echo "FAIL: $*"
	FAILED=1
}

skip()
{
	echo "SKIP: $*"
	exit 77
}

# Stop the daemon (it must exit 0: also catches sanitizer reports at exit)
# and report.
finish()
{
	local st=0

	if [ -n "$DPID" ]; then
		stop_daemon || st=$?
		[ "$st" = 0 ] || fail "umpathd exit status $st after SIGTERM"
	fi
	if grep -Eq "Sanitizer|runtime error" "$T/umpathd.log" 2>/dev/null; then
		fail "sanitizer report in the umpathd log"
	fi
	if [ "$FAILED" != 0 ]; then
		exit 1
	fi
	echo "PASS"
	exit 0
}

# Poll for a condition, at most $1 seconds.
wait_for()
{
	local secs=$1
	shift
	local tries=$((secs * 20))

	while [ "$tries" -gt 0 ]; do
		if "$@"; then
			return 0
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	return 1
}

# Whether our child $1 has exited (gone, or a zombie not yet reaped).
exited()
{
	local st

	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	st=${st##*) }
	[ "${st%% *}" = Z ]
}

u()
{
	"$UMPATH" -S "$SOCK" "$@"
}

# Start umpathd with the FUSE export on $MNT and map mp over $IMG; wait
# for the file.  A daemon that cannot mount (no /dev/fuse, no permission)
# makes the test skip; any other failure to start fails it.
start_daemon()
{
	[ -e /dev/fuse ] || skip "no /dev/fuse"
	mkdir "$MNT" 2>/dev/null || true	# may be a dead mount: umpathd's to clear
	[ -e "$IMG" ] || truncate -s 64M "$IMG"
	"$UMPATHD" --control "$SOCK" --fuse "$MNT" --map "mp=$TABLE" "$@" 2>>"$T/umpathd.log" &
	DPID=$!
	if ! wait_for 10 test -e "$MNT/mp"; then
		if exited "$DPID" && grep -Eq "fuse: (/dev/fuse|cannot mount)" "$T/umpathd.log"; then
			cat "$T/umpathd.log"
			DPID=
			skip "umpathd cannot mount FUSE here"
		fi
		echo "FAIL: umpathd did not come up:"
		cat "$T/umpathd.log"
		exit 1
	fi
}

# SIGTERM the daemon, wait (bounded) and return its exit status.
stop_daemon()
{
	local st=0

	kill -TERM "$DPID"
	if ! wait_for 20 exited "$DPID"; then
		fail "umpathd did not exit within 20 s of SIGTERM"
		kill -KILL "$DPID" 2>/dev/null || true
	fi
	wait "$DPID" || st=$?
	DPID=
	return "$st"
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
