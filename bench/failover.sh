#!/usr/bin/env bash
# failover.sh - what a client sees while paths fail: fio's 4 KiB random
# reads (nbd engine, umpathd's NBD export) over four nbdkit paths to one
# image, IOPS and the slowest read logged every 100 ms, while one path
# (a) fails every I/O with EIO (nbdkit error filter, its error-file),
# (b) dies (SIGKILL), (c) hangs (nbdkit pause filter).  With read_hedge
# off, then 20 ms, then auto (docs/read-hedge.md), all with --io-timeout 1.  Prints the
# read stall (the slowest read) in each phase against issue 12's goals
# (a hang stalls reads <= 50 ms with hedging, against 1,000 ms =
# io_timeout without; <= 1 % extra reads on healthy paths) and draws
# throughput and latency over time, each fault marked, with gnuplot.
# Benches print figures; they assert nothing about timing.
#
#   bench/failover.sh [--quick] [BUILD_DIR]   (default build/)
#
# --quick: shorter phases and no plot unless FAILOVER_PNG names one (a
# smoke run).  Otherwise the plot goes to FAILOVER_PNG, default
# docs/failover.png.  HEDGE (default "20 auto"): the hedged runs'
# read_hedge values, one run each after the run without.
set -euo pipefail
QUICK=0
if [ "${1:-}" = --quick ]; then
  QUICK=1
  shift
fi
B=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
HEDGE=${HEDGE:-20 auto}
if [ $QUICK = 1 ]; then
  PHASE=1.5 PNG=${FAILOVER_PNG:-}
else
  PHASE=3 PNG=${FAILOVER_PNG:-$HERE/../docs/failover.png}
fi
for c in nbdkit fio python3; do
  command -v "$c" >/dev/null || { echo "bench/failover: $c is missing (scripts/deps.sh)" >&2; exit 77; }
done
if ! nbdkit --filter=pause --filter=error null --version >/dev/null 2>&1; then
  echo "bench/failover: nbdkit's pause or error filter is missing" >&2
  exit 77
fi

T=$(mktemp -d)
pids=()
cleanup()
{
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${FAILOVER_KEEP:-}" ] && echo "bench/failover: kept $T" || rm -rf "$T"
}
trap cleanup EXIT
truncate -s 256M "$T/img"

# The faults, in seconds from fio's start: EIO, SIGKILL, hang; the run
# ends PHASE after the hang (longer than io_timeout).
t_eio=$PHASE
t_kill=$(python3 -c "print($PHASE * 2)")
t_hang=$(python3 -c "print($PHASE * 3)")
t_snap=$(python3 -c "print($PHASE - 0.3)")	# the hedge counters while all is well
runtime=$(python3 -c "print(int($PHASE * 4 + 0.999) + 1)")

# pause_ctl SOCKET: a helper started ahead (python takes long to start on
# a loaded machine) that sends the pause filter's control socket each
# command it reads (p or r), one connection each.
pause_ctl()
{
  exec python3 -u -c '
import socket, sys
for line in sys.stdin:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.sendall(line.strip().encode())
    print(s.recv(1).decode(), flush=True)
    s.close()
' "$1"
}

# run NAME READ_HEDGE: one run with its own servers and umpathd; fio's
# logs in $T/NAME_*.log, the hedge counters before the first fault and at
# the end in $T/NAME.before.json and $T/NAME.end.json.
run()
{
  local name=$1 hedge=$2 d=$T/$1 dpid fpid t0 s
  mkdir "$d"
  nbdkit -f --exit-with-parent -U "$d/ok.sock" file "$T/img" 2>"$d/ok.log" & pids+=($!)
  nbdkit -f --exit-with-parent -U "$d/eio.sock" --filter=error file "$T/img" \
    error=EIO error-rate=100% error-file="$d/eio.on" 2>"$d/eio.log" & pids+=($!)
  nbdkit -f --exit-with-parent -U "$d/die.sock" -P "$d/die.pid" file "$T/img" 2>"$d/die.log" & pids+=($!)
  # --threads=1: tests/integration/transport-nbd/test-nbd-hang.c says why.
  nbdkit -f --exit-with-parent -U "$d/hang.sock" --threads=1 --filter=pause file "$T/img" \
    pause-control="$d/hang.ctl" 2>"$d/hang.log" & pids+=($!)
  for s in ok eio die hang; do
    for _ in $(seq 100); do [ -S "$d/$s.sock" ] && break; sleep 0.05; done
  done
  local table="0 0 1 1 round-robin 0 4 1"
  for s in ok eio die hang; do table="$table nbd+unix:///?socket=$d/$s.sock 1"; done
  "$B/umpathd" --control "$d/ctl" --io-timeout 1 --policy path_checker=none \
    --policy read_hedge="$hedge" --nbd "unix:$d/nbd.sock" --map lun="$table" 2>"$d/umpathd.log" &
  dpid=$!
  pids+=($dpid)
  for _ in $(seq 100); do [ -S "$d/nbd.sock" ] && break; sleep 0.05; done

  fio --name="$name" --ioengine=nbd --uri="nbd+unix:///lun?socket=$d/nbd.sock" \
    --rw=randread --bs=4k --iodepth=16 --size=256M --time_based --runtime="$runtime" \
    --write_iops_log="$T/$name" --write_lat_log="$T/$name" --log_avg_msec=100 \
    --log_max_value=1 --log_unix_epoch=1 --output="$d/fio.out" &
  fpid=$!
  coproc PAUSE { pause_ctl "$d/hang.ctl"; }
  # fio takes a while to come up on a loaded machine: the faults are
  # timed from its first read (fio's logs carry wall-clock times).
  while ! "$B/umpath" -S "$d/ctl" show paths lun | awk 'NR > 1 { n += $8 } END { exit !n }'; do
    sleep 0.02
  done
  t0=$EPOCHREALTIME
  at() { local w; w=$(awk -v t="$t0" -v o="$1" -v n="$EPOCHREALTIME" 'BEGIN { w = t + o - n; print (w > 0 ? w : 0) }'); sleep "$w"; }
  now() { awk -v t="$t0" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.3f", n - t }'; }
  at "$t_snap"
  "$B/umpath" -S "$d/ctl" show paths lun --json >"$T/$name.before.json"
  at "$t_eio"
  touch "$d/eio.on"
  f_eio=$(now)
  at "$t_kill"
  kill -KILL "$(cat "$d/die.pid")"
  f_kill=$(now)
  at "$t_hang"
  f_hang=$(now)
  echo p >&"${PAUSE[1]}"
  echo "$t0 $f_eio $f_kill $f_hang" >"$T/$name.faults"
  wait "$fpid" || { echo "bench/failover: fio failed:"; cat "$d/fio.out"; exit 1; }
  "$B/umpath" -S "$d/ctl" show paths lun --json >"$T/$name.end.json"
  echo r >&"${PAUSE[1]}"
  exec {PAUSE[1]}>&-
  wait "$PAUSE_PID" || true
  kill -TERM "$dpid"
  wait "$dpid" || true
}

echo "bench/failover: 4 paths, fio randread 4k iodepth 16; EIO at ${t_eio}s, SIGKILL at" \
  "${t_kill}s, hang at ${t_hang}s; io_timeout 1 s"
runs=(off)
run off off
for h in $HEDGE; do
  runs+=("$h")
  run "$h" "$h"
done

python3 - "$T" "$runtime" "${PNG:-}" "${runs[@]}" <<'PY'
import json, os, shutil, subprocess, sys
T, runtime, png, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]

def log(path, t0):
    # fio's log: Unix time in ms, value, direction, bs, ... (one line per
    # 100 ms); the time made seconds from the run's first read
    rows = []
    for line in open(path):
        f = [x.strip() for x in line.split(",")]
        rows.append((int(f[0]) / 1000.0 - t0, int(f[1])))
    return rows

names = ("healthy", "EIO", "SIGKILL", "hang")
faults, stall, series = {}, {}, {}
for run in runs:
    # When the run's first read was seen (Unix time), then when each
    # fault struck, in seconds from then.
    t = [float(x) for x in open(os.path.join(T, run + ".faults")).read().split()]
    t0, faults[run] = t[0], t[1:]
    edges = [0] + faults[run] + [runtime + 2]
    lat = log(os.path.join(T, run + "_clat.1.log"), t0)	# ns: each 100 ms's slowest read
    series[run] = (log(os.path.join(T, run + "_iops.1.log"), t0), lat)
    for i, name in enumerate(names):
        stall[run, name] = max([v for t, v in lat if edges[i] <= t < edges[i + 1]] or [0]) / 1e6

def hedges(run, which):
    paths = json.load(open(os.path.join(T, "%s.%s.json" % (run, which))))["paths"]
    return (sum(p["hedges_won"] + p["hedges_lost"] for p in paths),
            sum(p["ios"] for p in paths))

title = lambda run: "read_hedge " + run
print("slowest read in each phase:")
print("%-8s" % "phase" + "".join("%18s" % title(r) for r in runs))
for name in names:
    print("%-8s" % name + "".join("%15.1f ms" % stall[r, name] for r in runs))
off = stall["off", "hang"]
print("hang: without hedging %.1f ms (io_timeout 1,000 ms); goal with hedging <= 50 ms" % off)
for run in runs[1:]:
    h, ios = hedges(run, "before")
    h_end, ios_end = hedges(run, "end")
    print("read_hedge %s: hang stall %.1f ms (%.0fx shorter); extra reads on healthy paths %.2f %%"
          " (%d hedges for %d reads before the first fault; goal <= 1 %%); %d hedges for %d"
          " reads in all" % (run, stall[run, "hang"], off / max(stall[run, "hang"], 0.001),
                             100.0 * h / max(ios, 1), h, ios, h_end, ios_end))

if not png:
    sys.exit(0)
if not shutil.which("gnuplot"):
    print("bench/failover: gnuplot is missing (scripts/deps.sh): no plot")
    sys.exit(0)
def dat(name, rows, scale, gap):
    # A window without a completed read has no line in fio's log: 0 reads/s
    # there (gap "0"), or a break in the latency curve (gap "": a blank
    # line; no read finished).
    with open(os.path.join(T, name), "w") as f:
        prev = None
        for t, v in rows:
            if prev is not None and t - prev > 0.15:
                f.write("%.2f %s\n%.2f %s\n" % (prev + 0.1, gap, t - 0.1, gap) if gap else "\n")
            f.write("%.2f %.3f\n" % (t, v / scale))
            prev = t
for run, (iops, lat) in series.items():
    dat(run + "-iops.dat", iops, 1, "0")
    dat(run + "-lat.dat", lat, 1e6, "")
esc = lambda s: s.replace("_", "\\\\_")
marks = "\n".join(
    'set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lt %d\n' % (t, t, i + 1) +
    ('set label "%s" at %g, graph 0.95 offset 0.3,0 font ",9"' % (n, t) if i == 0 else "")
    for i, run in enumerate(runs) for n, t in zip(names[1:], faults[run]))
plot = lambda kind, style: ", ".join(
    '"%s/%s-%s.dat" using 1:2 with %s lw 2 lt %d title "%s"' % (T, run, kind, style, i + 1,
                                                              esc(title(run)))
    for i, run in enumerate(runs))
script = """
set terminal pngcairo size 1000,640 font ",10"
set output "%(png)s"
set multiplot layout 2,1 title "umpath failover: fio 4 KiB random reads over 4 NBD paths, %(it)s 1 s; dashed: EIO, SIGKILL, hang"
set grid
set xrange [0:%(end)g]
%(marks)s
set ylabel "reads/s"
set key bottom right
plot %(iops)s
set xlabel "seconds"
set ylabel "slowest read per 100 ms (ms)"
set logscale y
set key top left
plot %(lat)s
unset multiplot
""" % dict(png=png, end=runtime + 1.5, marks=marks, iops=plot("iops", "lines"),
           lat=plot("lat", "linespoints pt 7 ps 0.4"), it=esc("io_timeout"))
subprocess.run(["gnuplot"], input=script.encode(), check=True)
print("plot:", png)
PY
