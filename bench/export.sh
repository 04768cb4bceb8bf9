#!/usr/bin/env bash
# export.sh - side-by-side NBD export benchmark: fio jobs (fio's nbd
# engine, 2 jobs x iodepth 32: 4 KiB random reads, 4 KiB random writes,
# 1 MiB sequential writes) against umpathd (two file paths to one image),
# and in the same run against `nbdkit file` and `qemu-nbd` serving that
# image.  Prints IOPS (MiB/s for 1 MiB) per server and umpath's ratios,
# medians of ROUNDS rounds (3; --quick: 1 round of 2 s runs).
#
#   [ROUNDS=N] bench/export.sh [--quick] [BUILD_DIR]      (default build/)
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

"$B/umpathd" --control "$T/ctl" --nbd "unix:$T/umpath.sock" \
  --map bench="0 0 1 1 round-robin 0 2 1 $IMG 1 file:$IMG 1" 2>"$T/umpathd.log" &
pids+=($!)
nbdkit --exit-with-parent -U "$T/nbdkit.sock" file "$IMG" &
pids+=($!)
qemu-nbd -f raw --cache=writeback -e 4 -t -k "$T/qemu.sock" "$IMG" &
pids+=($!)
wait_sock "$T/umpath.sock"; wait_sock "$T/nbdkit.sock"; wait_sock "$T/qemu.sock"

# fio_run URI RW BS: the job's total IOPS (4k) or MiB/s (1m)
fio_run() {
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth=32 --numjobs=2 \
      --time_based --runtime="$RUNTIME" --ramp_time=1 --group_reporting --output-format=json \
      --output="$T/fio.json" >/dev/null
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]; print(int(j["iops"]) if sys.argv[3] == "4k" else int(j["bw_bytes"] / 1048576))' \
    "$T/fio.json" "$([ "$2" = randread ] && echo read || echo write)" "$3"
}

# Rounds: every server runs every job once a round, in an order that
# rotates from round to round (page-cache writeback and the other CPU's
# neighbours come and go; a fixed order would hand one server the quiet
# slot).  The figure is each server's median over the rounds, the ratio
# the median of the rounds' ratios.
declare -A res
jobs="randread:4k randwrite:4k write:1m"
servers=(umpath nbdkit qemu)
declare -A uri=([umpath]="nbd+unix:///bench?socket=$T/umpath.sock"
                [nbdkit]="nbd+unix:///?socket=$T/nbdkit.sock"
                [qemu]="nbd+unix:///?socket=$T/qemu.sock")
for job in $jobs; do
  rw=${job%:*} bs=${job#*:}
  for r in $(seq "$ROUNDS"); do
    for i in 0 1 2; do
      s=${servers[$(( (i + r) % 3 ))]}
      res[$s,$job]+="$(fio_run "${uri[$s]}" $rw $bs) "
    done
  done
done

median() { python3 -c 'import statistics,sys; print(int(statistics.median(map(float, sys.argv[1:]))))' $1; }
# ratio A B: the median over rounds of A[i] / B[i]
ratio() { python3 -c 'import statistics,sys; a,b=sys.argv[1].split(),sys.argv[2].split(); print("%.2f" % statistics.median(float(x)/float(y) for x,y in zip(a,b)))' "$1" "$2"; }

printf '\nfio nbd engine, 2 jobs x iodepth 32, %ss each, %s image in page cache, %s CPUs, median of %s rounds\n' \
  "$RUNTIME" "$SIZE" "$(nproc)" "$ROUNDS"
printf '%-10s %16s %16s %16s\n' server "4k randread IOPS" "4k randwrite IOPS" "1M write MiB/s"
for s in umpath nbdkit qemu; do
  printf '%-10s %16s %16s %16s\n' "$s" "$(median "${res[$s,randread:4k]}")" \
    "$(median "${res[$s,randwrite:4k]}")" "$(median "${res[$s,write:1m]}")"
done
for job in $jobs; do
  printf '  rounds %-12s umpath [%s]  nbdkit [%s]  qemu [%s]\n' "$job" "${res[umpath,$job]% }" \
    "${res[nbdkit,$job]% }" "${res[qemu,$job]% }"
done
printf '\numpath / nbdkit:   4k randread %sx (goal >= 1.10x)   4k randwrite %sx (goal >= 1.10x)   1M write %sx (goal >= 1.00x)\n' \
  "$(ratio "${res[umpath,randread:4k]}" "${res[nbdkit,randread:4k]}")" \
  "$(ratio "${res[umpath,randwrite:4k]}" "${res[nbdkit,randwrite:4k]}")" \
  "$(ratio "${res[umpath,write:1m]}" "${res[nbdkit,write:1m]}")"
printf 'umpath / qemu-nbd: 4k randread %sx   4k randwrite %sx   1M write %sx\n' \
  "$(ratio "${res[umpath,randread:4k]}" "${res[qemu,randread:4k]}")" \
  "$(ratio "${res[umpath,randwrite:4k]}" "${res[qemu,randwrite:4k]}")" \
  "$(ratio "${res[umpath,write:1m]}" "${res[qemu,write:1m]}")"
