#!/usr/bin/env bash
# engine-ir.sh - instructions the engine spends per I/O, counted by
# valgrind's callgrind (deterministic: the count does not move with the
# machine's load, unlike bench/engine's wall-clock figures).
#
# For round-robin, queue-length and service-time over one group of 4 mem
# paths, `bench/engine --case SEL 4 0 OPS` submits OPS 0-byte reads one at a
# time; callgrind counts what runs inside umpath_map_submit() (pool,
# selector, dispatch, the mem path's inline completion, end_io, release,
# done()), divided by the number of submits.  The goal of 10 M ops/s per
# core leaves 100 ns an op.  Instructions are not all of it: a clock read
# or an atomic read-modify-write costs far more than its count (592
# instructions took ~64 ns, 583 took ~87 ns, 736 ~160 ns; docs/engine.md), so
# build/bench/engine's wall-clock figures are the goal's measure.
#
#   bench/engine-ir.sh [--quick] [BUILD_DIR]     (default build/)
set -euo pipefail
OPS=100000
if [ "${1:-}" = --quick ]; then OPS=2000; shift; fi
B=$(cd "${1:-build}" && pwd)
command -v valgrind >/dev/null || { echo "bench/engine-ir: valgrind is not installed" >&2; exit 77; }
command -v callgrind_annotate >/dev/null || { echo "bench/engine-ir: callgrind_annotate is not installed" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

printf 'engine instructions per I/O (callgrind, umpath_map_submit inclusive, 0-byte reads, 4 mem paths)\n'
printf '%-16s %10s %12s\n' selector ops "instr/op"
for sel in round-robin queue-length service-time; do
  out=$(valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" --toggle-collect=umpath_map_submit \
        "$B/bench/engine" --case "$sel" 4 0 "$OPS" 2>"$T/vg.log") ||
    { echo "bench/engine-ir: $sel failed:" >&2; cat "$T/vg.log" >&2; exit 1; }
  ops=${out%% ops}	# warm-up included: every submit was counted
  ir=$(callgrind_annotate "$T/cg.out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
  [ -n "$ir" ] && [ "$ops" -gt 0 ] || { echo "bench/engine-ir: no count for $sel" >&2; exit 1; }
  printf '%-16s %10s %12s\n' "$sel" "$ops" "$((ir / ops))"
done
