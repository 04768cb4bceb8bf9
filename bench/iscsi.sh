#!/usr/bin/env bash
# iscsi.sh - iSCSI benchmark: 4 KiB random reads, then random writes (fio's
# nbd engine, 2 jobs x iodepth 32) through umpathd's NBD export over two
# iSCSI paths (the two portals of one private tgtd target), and in the same
# run through `qemu-nbd -f raw iscsi://...` (QEMU's libiscsi driver) over
# one portal of the same target.  Three rounds (the servers' order
# alternating); prints each round's IOPS and ratio, and the median ratio.
#
# Then, for the same 4 KiB random reads (a fixed 32,768 I/Os), what each
# server and tgtd spend per I/O: CPU time (from /proc) and, with strace
# installed, system calls.
#
#   bench/iscsi.sh [--quick] [BUILD_DIR]      (default build/; --quick: one round of 2 s runs)
set -euo pipefail
RUNTIME=10 SIZE=256M ROUNDS=3
if [ "${1:-}" = --quick ]; then RUNTIME=2 SIZE=64M ROUNDS=1; shift; fi
B=$(cd "${1:-build}" && pwd)
for c in fio qemu-nbd tgtd tgtadm python3; do
  command -v $c >/dev/null || { echo "bench/iscsi: $c is not installed" >&2; exit 77; }
done

# What tests/integration/iscsi/tgt.sh needs of common.sh.
T=$(mktemp -d)
BG_PIDS=()
suite_cleanup() { :; }
skip() { echo "bench/iscsi: $*" >&2; exit 77; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
exited() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0; st=${st##*) }; [ "${st%% *}" = Z ]; }
wait_for() {
  local secs=10 tries
  if [[ $1 =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
  tries=$((secs * 20))
  while [ "$tries" -gt 0 ]; do "$@" && return 0; sleep 0.05; tries=$((tries - 1)); done
  return 1
}
. "$(dirname "$0")/../tests/integration/iscsi/tgt.sh"
cleanup() {
  set +e
  suite_cleanup
  for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

IMG=$T/lun.img
head -c "$SIZE" /dev/urandom > "$IMG"
tgt_start a "$IMG"
qemu-img info "$TGT_URL1_a" >"$T/qemu-img.log" 2>&1 ||
  skip "qemu cannot open $TGT_URL1_a (its iscsi driver is in Debian's qemu-block-extra): $(tail -1 "$T/qemu-img.log")"

"$B/umpathd" --control "$T/ctl" --nbd "unix:$T/umpath.sock" \
  --map bench="0 0 1 1 round-robin 0 2 1 $TGT_URL1_a 1 $TGT_URL2_a 1" 2>"$T/umpathd.log" &
UMPATHD_PID=$!
BG_PIDS+=($!)
qemu-nbd -f raw -t -e 4 -k "$T/qemu.sock" "$TGT_URL1_a" 2>"$T/qemu.log" &
QEMU_PID=$!
BG_PIDS+=($!)
wait_for 20 test -S "$T/umpath.sock" || { cat "$T/umpathd.log"; exit 1; }
wait_for 20 test -S "$T/qemu.sock" || { cat "$T/qemu.log"; exit 1; }

# fio_iops URI RW: total IOPS of the job
fio_iops() {
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k --iodepth=32 --numjobs=2 \
      --time_based --runtime="$RUNTIME" --ramp_time=1 --group_reporting --output-format=json \
      --output="$T/fio.json" >/dev/null || { echo "bench/iscsi: fio $2 on $1 failed:" >&2; cat "$T/fio.json" >&2; exit 1; }
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); k=sys.argv[2]; print(int(j["jobs"][0][k]["iops"]))' \
    "$T/fio.json" "$([ "$2" = randread ] && echo read || echo write)"
}

# Rounds alternate which server goes first, so that a drift of the shared
# machine's load (2 CPUs run fio, the server and tgtd) favours neither; the
# ratio given is the median of the rounds' ratios.
declare -A iops
ratios_read=() ratios_write=()
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
for round in $(seq "$ROUNDS"); do
  for rw in randread randwrite; do
    if [ $((round % 2)) = 1 ]; then order="umpath qemu"; else order="qemu umpath"; fi
    for s in $order; do
      if [ "$s" = umpath ]; then
        iops[umpath,$rw,$round]=$(fio_iops "nbd+unix:///bench?socket=$T/umpath.sock" $rw)
      else
        iops[qemu,$rw,$round]=$(fio_iops "nbd+unix:///?socket=$T/qemu.sock" $rw)
      fi
    done
  done
  ratios_read+=("$(ratio "${iops[umpath,randread,$round]}" "${iops[qemu,randread,$round]}")")
  ratios_write+=("$(ratio "${iops[umpath,randwrite,$round]}" "${iops[qemu,randwrite,$round]}")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : sprintf("%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

printf '\n4 KiB random I/O, fio nbd engine, 2 jobs x iodepth 32, %ss each, %s round(s), %s LUN (tgtd, file backing), %s CPUs\n' \
  "$RUNTIME" "$ROUNDS" "$SIZE" "$(nproc)"
printf '%-7s %-28s %12s %12s\n' round server randread randwrite
for round in $(seq "$ROUNDS"); do
  printf '%-7s %-28s %12s %12s\n' "$round" "umpath (2 iSCSI paths)" "${iops[umpath,randread,$round]}" "${iops[umpath,randwrite,$round]}"
  printf '%-7s %-28s %12s %12s\n' "" "qemu-nbd (1 iSCSI session)" "${iops[qemu,randread,$round]}" "${iops[qemu,randwrite,$round]}"
  printf '%-7s %-28s %11sx %11sx\n' "" "ratio" "${ratios_read[round - 1]}" "${ratios_write[round - 1]}"
done
printf '\numpath / qemu-nbd, median of %s round(s): randread %sx   randwrite %sx   (goal >= 1.2x)\n' \
  "$ROUNDS" "$(median "${ratios_read[@]}")" "$(median "${ratios_write[@]}")"

# cpu_ticks PID: user + system clock ticks of the process, all its threads.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# per_io NAME PID URI: over 32,768 random 4 KiB reads, CPU µs per I/O of
# PID and of tgtd; then over as many again under strace -c (when
# installed), PID's system calls per I/O.
per_io() {
  local n=32768 hz c0 t0 c1 t1 sp calls=n/a
  hz=$(getconf CLK_TCK)
  reads() {
    fio --name=b --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=32 --numjobs=2 \
        --number_ios=$((n / 2)) --size="$SIZE" --group_reporting >/dev/null 2>&1
  }
  c0=$(cpu_ticks "$2") t0=$(cpu_ticks "$TGT_PID_a")
  reads "$3"
  c1=$(cpu_ticks "$2") t1=$(cpu_ticks "$TGT_PID_a")
  if command -v strace >/dev/null; then
    strace -c -f -p "$2" -o "$T/strace.$2" 2>/dev/null &
    sp=$!
    sleep 0.5
    reads "$3"
    kill -INT "$sp"; wait "$sp" 2>/dev/null || true
    calls=$(awk '$NF == "total" { print $(NF-2) }' "$T/strace.$2")
    calls=$(python3 -c "print('%.1f' % ($calls / $n))")
  fi
  printf '%-28s %14s %18s %16s\n' "$1" \
    "$(python3 -c "print('%.1f' % (($c1 - $c0) * 1e6 / $hz / $n))")" \
    "$(python3 -c "print('%.1f' % (($t1 - $t0) * 1e6 / $hz / $n))")" "$calls"
}
printf '\nper 4 KiB random read (32,768 reads; system calls from a second run under strace -c)\n'
printf '%-28s %14s %18s %16s\n' server "CPU us/IO" "tgtd CPU us/IO" "syscalls/IO"
per_io "umpath (2 iSCSI paths)" "$UMPATHD_PID" "nbd+unix:///bench?socket=$T/umpath.sock"
per_io "qemu-nbd (1 iSCSI session)" "$QEMU_PID" "nbd+unix:///?socket=$T/qemu.sock"
