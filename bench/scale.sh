#!/usr/bin/env bash
# scale.sh - many maps in one umpathd: N maps of 4 paths each, created one
# by one through the control socket.  Prints the creation time, umpathd's
# RSS, file descriptors and threads, and how long `umpath ls` takes,
# against issue 12's goals (1,000 maps <= 64 MiB; 10,000 <= 512 MiB,
# created in <= 30 s, ls <= 1 s).
#
#   bench/scale.sh [--mem] [N] [BUILD_DIR]      (default 1000, build/)
#
# File paths (the default) are 4 N sparse 1 MiB files.  --mem takes mem
# paths instead, which hold no descriptor, for counts the descriptor limit
# keeps file paths from: one 4 KiB in-memory store a map (its four paths
# named mem:mI.K), made with the `mem store` test verb before the timer
# starts.  The RSS the stores add (their bookkeeping; their data is
# anonymous memory that the checkers' reads leave unbacked) is measured
# apart and not counted as the maps'.
set -euo pipefail
MEM=
if [ "${1:-}" = --mem ]; then MEM=1; shift; fi
N=${1:-1000}
B=$(cd "${2:-build}" && pwd)
STORE=4096
# Three descriptors a file path (file, the directio checker's O_DIRECT
# one, ring): raised as root, else as far as the hard limit allows.
per=12
[ -n "$MEM" ] && per=0
want=$((per * N + 1024))
if [ "$(ulimit -n)" -lt "$want" ] && ! ulimit -n "$want" 2>/dev/null; then
  ulimit -n "$(ulimit -Hn)"
  echo "bench/scale: $N maps need $want descriptors, the limit is $(ulimit -n)" >&2
fi
# Two mappings a file path (its ring's): the kernel refuses more than
# vm.max_map_count in all, and an open past it fails with ENOMEM.
maps=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)
if [ -z "$MEM" ] && [ "$maps" -lt $((8 * N + 1024)) ]; then
  echo "bench/scale: $N maps need $((8 * N + 1024)) mappings, vm.max_map_count is $maps" >&2
fi
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
if [ -z "$MEM" ]; then
  mkdir "$T/f"
  for ((i = 0; i < 4 * N; i++)); do : >"$T/f/$i"; done
  (cd "$T/f" && truncate -s 1M -- *)
fi

# --mem-store: a daemon serves the mem verb only with one.
"$B/umpathd" --control "$T/ctl" ${POOL:+--pool-size $POOL} \
  ${MEM:+--mem-store 512:scale-seed} 2>"$T/log" &
pid=$!
for _ in $(seq 100); do [ -S "$T/ctl" ] && break; sleep 0.1; done
u() { "$B/umpath" -S "$T/ctl" "$@"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
# One control connection a request, as the umpath tool makes, without a
# process a map.  PROGRESS=K prints the time every K maps, so that a run
# too slow to finish still yields figures.
run() {
  /usr/bin/python3 - "$T/ctl" "${MEM:-$T/f}" "$N" "$1" "${PROGRESS:-0}" "$STORE" <<'PY'
import socket, sys, time
ctl, d, n, what, every, store = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
mem = d == "1"
st = "service-time 0 4 2"
def request(words):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl)
    s.sendall(b"".join(w.encode() + b"\0" for w in words) + b"\0")
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    s.close()
    if not reply.startswith(b"OK"):
        sys.exit(f"bench/scale: {' '.join(words[:2])}: {reply.decode(errors='replace').strip()}")
t0 = time.monotonic()
for i in range(n):
    if what == "stores":
        request(["mem", "store", store] + [f"m{i}.{k}" for k in range(4)])
        continue
    if mem:
        paths = " ".join(f"mem:m{i}.{k} 1 1" for k in range(4))
    else:
        paths = " ".join(f"{d}/{4 * i + k} 1 1" for k in range(4))
    request(["create", f"m{i}", f"1 queue_if_no_path 0 1 1 {st} {paths}"])
    if every and (i + 1) % every == 0:
        print(f"bench/scale: {i + 1} maps in {time.monotonic() - t0:.2f} s", file=sys.stderr, flush=True)
PY
}
base=$(rss)
stores_kb=0
if [ -n "$MEM" ]; then
  run stores
  sleep 1
  stores_kb=$(($(rss) - base))
fi
start=$(date +%s.%N)
run maps
end=$(date +%s.%N)
sleep 1
rss_kb=$(rss)
fds=$(ls "/proc/$pid/fd" | wc -l)
threads=$(ls "/proc/$pid/task" | wc -l)
ls_start=$(date +%s.%N)
[ "$(u ls | wc -l)" -ge "$N" ] || { echo "bench/scale: umpath ls lists fewer than $N maps" >&2; exit 1; }
ls_end=$(date +%s.%N)
# At rest: what the checkers' probes of 4 N paths cost the daemon.
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
c0=$(cpu); sleep 5; c1=$(cpu)
rest=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz / 5 * 100 }')
awk -v n="$N" -v s="$start" -v e="$end" -v r="$rss_kb" -v b="$base" -v f="$fds" -v t="$threads" \
    -v ls="$ls_start" -v le="$ls_end" -v rest="$rest" -v mem="$MEM" -v sk="$stores_kb" -v ss="$STORE" 'BEGIN {
  goal = n <= 1000 ? 64 : 512
  if (mem) {
    printf "maps %d x 4 mem paths (one %d KiB store a map)\n", n, ss / 1024
  } else {
    printf "maps %d x 4 file paths\n", n
  }
  printf "  create all   %8.2f s   (%.2f ms a map; goal for 10,000: <= 30 s)\n", e - s, (e - s) * 1000 / n
  printf "  RSS          %8.1f MiB (%.1f KiB a map over the idle daemon'"'"'s %.1f MiB; goal <= %d MiB: %.2fx of it)\n", r / 1024, (r - b - sk) / n, b / 1024, goal, r / 1024 / goal
  if (mem)
    printf "  of it stores %8.1f MiB (%.1f KiB a map, made before the maps; their data, %.1f MiB if all of it were written, is unwritten: reads of it map the zero page)\n", sk / 1024, sk / n, n * ss / 1048576
  printf "  fds          %8d\n", f
  printf "  threads      %8d\n", t
  printf "  umpath ls    %8.3f s   (goal <= 1 s)\n", le - ls
  printf "  CPU at rest  %8.1f %% of a CPU (over 5 s after ls: the checkers)\n", rest
}'
