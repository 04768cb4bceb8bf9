# lib.sh - shared by the export tests: a temporary directory, umpathd
# started in it and stopped at exit, bounded waits.
UMPATHD=${1:?usage: TEST UMPATHD UMPATH}
UMPATH=${2:?usage: TEST UMPATHD UMPATH}
T=$(mktemp -d)
DAEMON_PID=
cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  [ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP"
  rm -rf "$T"
}
trap cleanup EXIT

need() { for c in "$@"; do command -v "$c" >/dev/null || { echo "SKIP: $c not installed"; exit 77; }; done; }
fail() { echo "FAIL: $*" >&2; [ -f "$T/daemon.log" ] && tail -20 "$T/daemon.log" >&2; exit 1; }

# wait_for CMD...: retry for up to 10 s
wait_for() { for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

# start_daemon ARGS...: umpathd with a control socket in $T, logging to $T/daemon.log
start_daemon() {
  "$UMPATHD" --control "$T/ctl" "$@" 2>"$T/daemon.log" &
  DAEMON_PID=$!
  wait_for test -S "$T/ctl" || fail "umpathd did not start"
  grep -q ready "$T/daemon.log" || wait_for grep -q ready "$T/daemon.log" || fail "umpathd not ready"
}

stop_daemon() {
  kill -TERM "$DAEMON_PID"
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  return $rc
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
