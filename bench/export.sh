#!/usr/bin/env bash
# export.sh - side-by-side NBD export benchmark: one fio job (fio's nbd
# engine; 4 KiB random reads, 2 jobs x iodepth 32; then 4 KiB random
# writes, same shape) against umpathd (two file paths to one image), and in
# the same run against `nbdkit file` and `qemu-nbd` serving that image.
# Prints IOPS per server and umpath's ratio to each.
#
#   bench/export.sh [--quick] [BUILD_DIR]      (default build/)
set -euo pipefail
RUNTIME=10 SIZE=512M
if [ "${1:-}" = --quick ]; then RUNTIME=2 SIZE=64M; shift; fi
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

# fio_iops URI RW: total IOPS of the job
fio_iops() {
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k --iodepth=32 --numjobs=2 \
      --time_based --runtime="$RUNTIME" --ramp_time=1 --group_reporting --output-format=json \
      --output="$T/fio.json" >/dev/null
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); k=sys.argv[2]; print(int(j["jobs"][0][k]["iops"]))' \
    "$T/fio.json" "$([ "$2" = randread ] && echo read || echo write)"
}

declare -A iops
for rw in randread randwrite; do
  iops[umpath,$rw]=$(fio_iops "nbd+unix:///bench?socket=$T/umpath.sock" $rw)
  iops[nbdkit,$rw]=$(fio_iops "nbd+unix:///?socket=$T/nbdkit.sock" $rw)
  iops[qemu,$rw]=$(fio_iops "nbd+unix:///?socket=$T/qemu.sock" $rw)
done

printf '\n4 KiB random I/O, fio nbd engine, 2 jobs x iodepth 32, %ss each, %s image in page cache, %s CPUs\n' \
  "$RUNTIME" "$SIZE" "$(nproc)"
printf '%-10s %14s %14s\n' server randread randwrite
for s in umpath nbdkit qemu; do
  printf '%-10s %14s %14s\n' "$s" "${iops[$s,randread]}" "${iops[$s,randwrite]}"
done
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
printf '\numpath / nbdkit:   randread %sx   randwrite %sx   (goal >= 1.10x on randread)\n' \
  "$(ratio "${iops[umpath,randread]}" "${iops[nbdkit,randread]}")" \
  "$(ratio "${iops[umpath,randwrite]}" "${iops[nbdkit,randwrite]}")"
printf 'umpath / qemu-nbd: randread %sx   randwrite %sx   (goal >= 1.00x on randread)\n' \
  "$(ratio "${iops[umpath,randread]}" "${iops[qemu,randread]}")" \
  "$(ratio "${iops[umpath,randwrite]}" "${iops[qemu,randwrite]}")"
