#!/usr/bin/env bash
# scale.sh - many maps in one umpathd: N maps of 4 file paths each (4 N
# sparse 1 MiB files), created one by one through the control socket.
# Prints the creation time, umpathd's RSS, file descriptors and threads,
# and how long `umpath ls` takes, against issue 12's goals (1,000 maps
# <= 64 MiB; 10,000 <= 512 MiB, created in <= 30 s, ls <= 1 s).
#
#   bench/scale.sh [N] [BUILD_DIR]      (default 1000, build/)
set -euo pipefail
N=${1:-1000}
B=$(cd "${2:-build}" && pwd)
# Three descriptors a file path (file, the directio checker's O_DIRECT
# one, ring): raised as root, else as far as the hard limit allows.
want=$((12 * N + 1024))
if [ "$(ulimit -n)" -lt "$want" ] && ! ulimit -n "$want" 2>/dev/null; then
  ulimit -n "$(ulimit -Hn)"
  echo "bench/scale: $N maps need $want descriptors, the limit is $(ulimit -n)" >&2
fi
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/f"
for ((i = 0; i < 4 * N; i++)); do : >"$T/f/$i"; done
(cd "$T/f" && truncate -s 1M -- *)

"$B/umpathd" --control "$T/ctl" ${POOL:+--pool-size $POOL} 2>"$T/log" &
pid=$!
for _ in $(seq 100); do [ -S "$T/ctl" ] && break; sleep 0.1; done
u() { "$B/umpath" -S "$T/ctl" "$@"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
base=$(rss)
start=$(date +%s.%N)
# One control connection a create, as the umpath tool makes, without a
# process a map.
/usr/bin/python3 - "$T/ctl" "$T/f" "$N" <<'PY'
import socket, sys
ctl, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
st = "service-time 0 4 2"
for i in range(n):
    paths = " ".join(f"{d}/{4 * i + k} 1 1" for k in range(4))
    words = ["create", f"m{i}", f"1 queue_if_no_path 0 1 1 {st} {paths}"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl)
    s.sendall(b"".join(w.encode() + b"\0" for w in words) + b"\0")
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    s.close()
    if not reply.startswith(b"OK"):
        sys.exit(f"bench/scale: create m{i}: {reply.decode(errors='replace').strip()}")
PY
end=$(date +%s.%N)
sleep 1
rss_kb=$(rss)
fds=$(ls "/proc/$pid/fd" | wc -l)
threads=$(ls "/proc/$pid/task" | wc -l)
ls_start=$(date +%s.%N)
[ "$(u ls | wc -l)" -ge "$N" ] || { echo "bench/scale: umpath ls lists fewer than $N maps" >&2; exit 1; }
ls_end=$(date +%s.%N)
awk -v n="$N" -v s="$start" -v e="$end" -v r="$rss_kb" -v b="$base" -v f="$fds" -v t="$threads" \
    -v ls="$ls_start" -v le="$ls_end" 'BEGIN {
  goal = n <= 1000 ? 64 : 512
  printf "maps %d x 4 file paths\n", n
  printf "  create all   %8.2f s   (%.2f ms a map; goal for 10,000: <= 30 s)\n", e - s, (e - s) * 1000 / n
  printf "  RSS          %8.1f MiB (%.1f KiB a map over the idle daemon'"'"'s %.1f MiB; goal <= %d MiB: %.2fx of it)\n", r / 1024, (r - b) / n, b / 1024, goal, r / 1024 / goal
  printf "  fds          %8d\n", f
  printf "  threads      %8d\n", t
  printf "  umpath ls    %8.3f s   (goal <= 1 s)\n", le - ls
}'
