#!/usr/bin/env bash
# Description: a bad --metrics argument or config `metrics` line is
# refused with the object and the reason, and umpathd does not start (no
# control socket, exit status 2 for the command line, 1 for the file or a
# port in use); `umpathd --help` names --metrics.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Taken whole: grep -q's early exit would SIGPIPE umpathd (a failure under
# pipefail).
help=$("$UMPATHD" --help) || fail "umpathd --help: exit $?"
[[ $help == *"--metrics tcp:HOST:PORT"* ]] || fail "--help does not name --metrics"

# refused WANT_STATUS WANT_MESSAGE ARGS...: umpathd exits with that status
# within 10 s, says that on stderr, and never answers on its socket.
refused()
{
	local want=$1 msg=$2 st=0

	shift 2
	timeout 10 "$UMPATHD" --control "$SOCK" --config /dev/null "$@" >"$T/out" 2>"$T/err" || st=$?
	[ "$st" = "$want" ] || fail "umpathd $*: exit $st, want $want: $(cat "$T/err")"
	grep -qF -- "$msg" "$T/err" || fail "umpathd $*: no '$msg' in: $(cat "$T/err")"
	[ ! -e "$SOCK" ] || fail "umpathd $*: left a control socket"
	rm -f "$SOCK"
}

refused 2 "umpathd: --metrics tcp:127.0.0.1:99999: invalid port" --metrics tcp:127.0.0.1:99999
refused 2 "umpathd: --metrics tcp:127.0.0.1:: missing port" --metrics tcp:127.0.0.1:
refused 2 "umpathd: --metrics tcp:localhost:http: invalid port" --metrics tcp:localhost:http
refused 2 "umpathd: --metrics http://x:1: expected tcp:HOST:PORT or unix:PATH" --metrics http://x:1
refused 2 "umpathd: --metrics unix:: missing socket path" --metrics unix:
refused 2 "socket path too long" --metrics "unix:$T/$(printf 'x%.0s' $(seq 200))"
refused 2 "invalid port: the port must be a number in 1..65535, not '1?2'" --metrics $'tcp:1\n2'

# A port some other socket holds: refused when it binds, after the engine
# started; nothing is left behind.
exec {holder}< <("$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(60)')
BG_PIDS+=("$!")
read -r -t 10 busy <&"$holder" || fail "no port from the holder"
refused 1 "umpathd: metrics tcp:127.0.0.1:$busy: Address already in use" --metrics "tcp:127.0.0.1:$busy"
refused 1 "umpathd: metrics tcp:192.0.2.1:9100: Cannot assign requested address" --metrics tcp:192.0.2.1:9100

# The config file's line, with its line number.
printf 'defaults {\n\tmetrics tcp:127.0.0.1:0\n}\n' >"$T/bad.conf"
refused 1 "$T/bad.conf:2: metrics tcp:127.0.0.1:0: invalid port" --config "$T/bad.conf"
printf 'defaults {\n\tmetrics tcp:1 tcp:2\n}\n' >"$T/two.conf"
refused 1 "$T/two.conf:2: metrics: expected one value" --config "$T/two.conf"
finish
