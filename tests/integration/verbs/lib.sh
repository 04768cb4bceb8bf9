# lib.sh - shared by the tests of multipathd's verbs (add/del/fail/
# reinstate path, show ... format, show status, show daemon): the daemon
# suite's helpers (../daemon/lib.sh), and more.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"

# ut ARGS...: umpath, bounded in time (a request that hangs fails the test).
ut()
{
	timeout 30 "$UMPATH" -S "$SOCK" "$@"
}

# path_ios MAP PATH: the I/Os completed through PATH (show paths' ios
# column; the tests' path strings have no space), -1 if it has none.
path_ios()
{
	ut show paths "$1" | awk -v p="$2" '$3 == p { n = $8 } END { print n == "" ? -1 : n }'
}

# run_fio URI NAME: fio writing and verifying through the NBD export, in
# the background ($FIO), bounded by --runtime.
run_fio()
{
	fio --name="$2" --ioengine=nbd --uri="$1" --rw=randwrite --bs=4k --iodepth=8 \
		--size=16M --time_based --runtime="${FIO_SECS:-8}" --verify=crc32c \
		--verify_backlog=64 --verify_fatal=1 --output="$T/fio.out" &
	FIO=$!
	BG_PIDS+=("$FIO")
}

# fio_ok: fio ended (bounded) without an error.
fio_ok()
{
	local st=0

	if ! wait_for 60 exited "$FIO"; then
		fail "fio did not end within 60 s: $(cat "$T/fio.out")"
		kill -KILL "$FIO" 2>/dev/null || true
	fi
	wait "$FIO" || st=$?
	[ "$st" = 0 ] || fail "fio exited $st: $(cat "$T/fio.out")"
	if grep -qE 'err= *[1-9]|verify:|bad magic|crc32c' "$T/fio.out"; then
		fail "fio: $(cat "$T/fio.out")"
	fi
}

# one_file_daemon MAP_TABLE_WORDS...: umpathd with map mp (its table from
# the arguments, which may name $P1 $P2 $P3: three path strings for one
# 64 MiB file $D) exported over NBD at $URI.
D=$T/disk.img
P1=$D
P2="file:$D?direct"
P3="file:$D"
one_file_daemon()
{
	truncate -s 64M "$D"
	start_daemon --map "mp=$*" --nbd "unix:$T/nbd.sock"
	URI="nbd+unix:///mp?socket=$T/nbd.sock"
}
