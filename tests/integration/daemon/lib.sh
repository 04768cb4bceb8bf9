# lib.sh - shared by the umpathd control socket tests: the helpers of
# ../common.sh (a daemon in a temporary directory, the umpath tool pointed
# at it, checks that record failures and go on), with the control socket
# in a directory of its own, and more checks.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SOCK=$T/run/ctl

# expect_ok CMD...: exit 0, nothing on stderr.
expect_ok()
{
	local st=0
	"$@" >"$T/stdout" 2>"$T/stderr" || st=$?
	if [ "$st" != 0 ]; then
		fail "$*: exit $st: $(cat "$T/stderr")"
	elif [ -s "$T/stderr" ]; then
		fail "$*: stderr: $(cat "$T/stderr")"
	fi
}

# expect_err STATUS MESSAGE CMD...: this exit status, this stderr, no stdout.
expect_err()
{
	local want_st=$1 want=$2 got st=0
	shift 2
	"$@" >"$T/stdout" 2>"$T/stderr" || st=$?
	got=$(cat "$T/stderr")
	if [ "$st" != "$want_st" ]; then
		fail "$*: exit $st, want $want_st (stderr: $got)"
	elif [ "$got" != "$want" ]; then
		fail "$*: stderr '$got', want '$want'"
	elif [ -s "$T/stdout" ]; then
		fail "$*: stdout on error: $(cat "$T/stdout")"
	fi
}

# Whether file paths work (the file transport): skip the test if not.
# Starts and stops a daemon of its own.
need_file_paths()
{
	local st=0

	truncate -s 1M "$T/probe.img"
	start_daemon
	u create probe "0 0 1 1 round-robin 0 1 1 $T/probe.img 1" >/dev/null 2>"$T/stderr" || st=$?
	stop_daemon || true
	rm -f "$T/probe.img"
	if [ "$st" != 0 ] && grep -q "error getting device" "$T/stderr"; then
		echo "SKIP: this build cannot open file paths: $(cat "$T/stderr")"
		exit 77
	fi
	if [ "$st" != 0 ]; then
		fail "creating a map over a file: $(cat "$T/stderr")"
		exit 1
	fi
}
