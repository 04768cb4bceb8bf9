#!/usr/bin/env bash
# export.sh - side-by-side NBD export benchmark: fio jobs (fio's nbd
# engine, 2 jobs x iodepth 32: 4 KiB random reads, 4 KiB random writes,
# 1 MiB sequential writes) against umpathd (two file paths to one image),
# the same umpathd with its inline writes off (UMPATH_NBD_INLINE=0: every
# buffered write goes to a writer thread, as before docs/writes.md's
# "Inline writes"), and in the same run against `nbdkit file` and
# `qemu-nbd` serving that image.  Prints IOPS (MiB/s for 1 MiB) per
# server, the server's CPU time per I/O (per MiB for 1 MiB: utime + stime
# over the job, from /proc/PID/stat), and umpath's ratios, medians of
# ROUNDS rounds (3; --quick: 1 round of 2 s runs).
#
#   [ROUNDS=N] [JOBS="write:1m ..."] bench/export.sh [--quick] [BUILD_DIR]   (default build/)
set -euo pipefail
RUNTIME=10 SIZE=512M ROUNDS=${ROUNDS:-3}
if [ "${1:-}" = --quick ]; then RUNTIME=2 SIZE=64M ROUNDS=1; shift; fi
B=$(cd "${1:-build}" && pwd)
for c in fio nbdkit qemu-nbd; do command -v $c >/dev/null || { echo "bench/export: $c is not installed" >&2; exit 77; }; done
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; exit 1; }

IMG=$T/disk.img
head -c "$SIZE" /dev/urandom > "$IMG" 2>/dev/null || dd if=/dev/urandom of="$IMG" bs=1M count="${SIZE%M}" status=none
cat "$IMG" > /dev/null    # all three read from the page cache

declare -A pid
"$B/umpathd" --control "$T/ctl" --nbd "unix:$T/umpath.sock" \
  --map bench="0 0 1 1 round-robin 0 2 1 $IMG 1 file:$IMG 1" 2>"$T/umpathd.log" &
pids+=($!); pid[umpath]=$!
UMPATH_NBD_INLINE=0 "$B/umpathd" --control "$T/ctl2" --nbd "unix:$T/writers.sock" \
  --map bench="0 0 1 1 round-robin 0 2 1 $IMG 1 file:$IMG 1" 2>"$T/umpathd-writers.log" &
pids+=($!); pid[writers]=$!
nbdkit -f --exit-with-parent -U "$T/nbdkit.sock" file "$IMG" &
pids+=($!); pid[nbdkit]=$!
qemu-nbd -f raw --cache=writeback -e 4 -t -k "$T/qemu.sock" "$IMG" &
pids+=($!); pid[qemu]=$!
for s in umpath writers nbdkit qemu; do wait_sock "$T/$s.sock"; done

# cpu_ticks PID: the process's utime + stime, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# fio_run URI RW BS SERVER_PID: the job's total IOPS (4k) or MiB/s (1m),
# and the server's CPU microseconds per I/O (per MiB) over the whole job
# (ramp included: I/O counted over the same span).
fio_run() {
  local c0 c1
  c0=$(cpu_ticks "$4")
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth=32 --numjobs=2 \
      --time_based --runtime="$RUNTIME" --ramp_time=1 --group_reporting --output-format=json \
      --output="$T/fio.json" >/dev/null
  c1=$(cpu_ticks "$4")
  python3 - "$T/fio.json" "$([ "$2" = randread ] && echo read || echo write)" "$3" "$((c1 - c0))" "$HZ" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d, bs, ticks, hz = j[sys.argv[2]], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ramp_s = 1.0
span = d["io_bytes"] * (1 + ramp_s * 1000 / j["job_runtime"]) if j["job_runtime"] else 0
units = span / 1048576 if bs == "1m" else span / 4096
rate = int(d["iops"]) if bs == "4k" else int(d["bw_bytes"] / 1048576)
print("%d/%.1f" % (rate, ticks / hz * 1e6 / units if units else 0))
PY
}

# Rounds: every server runs every job once a round, in an order that
# rotates from round to round (page-cache writeback and the other CPU's
# neighbours come and go; a fixed order would hand one server the quiet
# slot).  The figure is each server's median over the rounds, the ratio
# the median of the rounds' ratios.
declare -A res cpu
jobs=${JOBS:-"randread:4k randwrite:4k write:1m"}
servers=(umpath writers nbdkit qemu)
declare -A uri=([umpath]="nbd+unix:///bench?socket=$T/umpath.sock"
                [writers]="nbd+unix:///bench?socket=$T/writers.sock"
                [nbdkit]="nbd+unix:///?socket=$T/nbdkit.sock"
                [qemu]="nbd+unix:///?socket=$T/qemu.sock")
declare -A label=([umpath]=umpath [writers]="umpath, writer threads" [nbdkit]="nbdkit file"
                  [qemu]="qemu-nbd")
for job in $jobs; do
  rw=${job%:*} bs=${job#*:}
  for r in $(seq "$ROUNDS"); do
    for i in 0 1 2 3; do
      s=${servers[$(( (i + r) % 4 ))]}
      out=$(fio_run "${uri[$s]}" $rw $bs "${pid[$s]}")
      res[$s,$job]+="${out%/*} "
      cpu[$s,$job]+="${out#*/} "
    done
  done
done

median() { python3 -c 'import statistics,sys; print(int(statistics.median(map(float, sys.argv[1:]))) if sys.argv[1:] else "-")' $1; }
# ratio A B: the median over rounds of A[i] / B[i]
ratio() { python3 -c 'import statistics,sys; a,b=sys.argv[1].split(),sys.argv[2].split(); print("%.2f" % statistics.median(float(x)/float(y) for x,y in zip(a,b)) if a else "-")' "$1" "$2"; }
has() { [[ " $jobs " == *" $1 "* ]]; }

printf '\nfio nbd engine, 2 jobs x iodepth 32, %ss each, %s image in page cache, %s CPUs, median of %s rounds\n' \
  "$RUNTIME" "$SIZE" "$(nproc)" "$ROUNDS"
printf '%-24s %18s %18s %18s\n' server "4k randread IOPS" "4k randwrite IOPS" "1M write MiB/s"
for s in "${servers[@]}"; do
  printf '%-24s' "${label[$s]}"
  for job in randread:4k randwrite:4k write:1m; do
    has $job && printf ' %18s' "$(median "${res[$s,$job]}")" || printf ' %18s' -
  done
  printf '\n'
done
printf '%-24s %18s %18s %18s\n' "server CPU, us" "per read" "per write" "per MiB"
for s in "${servers[@]}"; do
  printf '%-24s' "${label[$s]}"
  for job in randread:4k randwrite:4k write:1m; do
    has $job && printf ' %18s' "$(python3 -c 'import statistics,sys; print("%.1f" % statistics.median(map(float, sys.argv[1:])))' ${cpu[$s,$job]})" ||
      printf ' %18s' -
  done
  printf '\n'
done
for job in $jobs; do
  printf '  rounds %-12s' "$job"
  for s in "${servers[@]}"; do printf ' %s [%s]' "$s" "${res[$s,$job]% }"; done
  printf '\n'
done
r() { has "$3" && ratio "${res[$1,$3]}" "${res[$2,$3]}" || echo -; }
printf '\numpath / nbdkit:   4k randread %sx (goal >= 1.10x)   4k randwrite %sx (goal >= 1.10x)   1M write %sx (goal >= 1.00x)\n' \
  "$(r umpath nbdkit randread:4k)" "$(r umpath nbdkit randwrite:4k)" "$(r umpath nbdkit write:1m)"
printf 'umpath / qemu-nbd: 4k randread %sx   4k randwrite %sx   1M write %sx\n' \
  "$(r umpath qemu randread:4k)" "$(r umpath qemu randwrite:4k)" "$(r umpath qemu write:1m)"
printf 'umpath / umpath with writer threads only: 4k randwrite %sx   1M write %sx\n' \
  "$(r umpath writers randwrite:4k)" "$(r umpath writers write:1m)"
