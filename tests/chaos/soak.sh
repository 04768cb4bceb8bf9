#!/usr/bin/env bash
# Description: chaos soak - fio crc32c write-verify through umpathd's NBD
# export for CHAOS_SECONDS while a seeded random stream of faults hits the
# map: EIO, hang and resume (pause filter), SIGKILL and restart of nbdkit,
# SIGSTOP/SIGCONT, every path down for seconds, fail/reinstate messages,
# switch/disable/enable group, suspend/resume with and without noflush,
# reloads that reorder the groups, reconfigure.  Then: fio saw 0 errors
# and 0 verify failures, the image equals the device, umpathd is alive
# with its RSS and fd count near where they started, and stops on SIGTERM.
#
# Usage: soak.sh UMPATHD UMPATH   (make chaos)
#   CHAOS_SECONDS  how long fio runs under faults (default 120)
#   CHAOS_SEED     the fault stream's seed (default: random, printed)
#   CHAOS_FAULTS   the fault kinds to draw from (default: all of them)
#
# Four nbdkit paths over one image, each behind the error, pause and delay
# filters, with --threads=1 (nbdkit 1.32.5 aborts when a client hangs up
# while several threads have replies queued).  The map has two priority
# groups (p0 p1 | p2 p3) and queue_if_no_path; the path checker polls each
# second and fails back at once.  Faults come one at a time and each is
# undone before the next.
set -uo pipefail
. "$(dirname "$0")/../integration/common.sh"
need nbdkit fio nbdcopy python3
nbdkit --dump-plugin file >/dev/null 2>&1 || skip "nbdkit file plugin missing"
for f in error pause delay; do
	nbdkit --filter="$f" null --dump-plugin >/dev/null 2>&1 || skip "nbdkit $f filter missing"
done

SECONDS_RUN=${CHAOS_SECONDS:-120}
SEED=${CHAOS_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
ALL_KINDS="eio hang kill stop alldown failmsg group suspend suspend-noflush reload reconfigure"
KINDS=(${CHAOS_FAULTS:-$ALL_KINDS})
RANDOM=$SEED
echo "chaos: seed $SEED, $SECONDS_RUN s, faults: ${KINDS[*]}"
echo "chaos: re-run with CHAOS_SEED=$SEED CHAOS_SECONDS=$SECONDS_RUN"

IMG=$T/lun.img
CONF=$T/umpath.conf
truncate -s 64M "$IMG"
NPATHS=4
DELAY_MS=(0 1 0 5)	# p3, in the second group, is also slow
NBDKIT=()		# pid of each path's nbdkit

# nbdkit_start I: path I's nbdkit (again, after a SIGKILL).
nbdkit_start()
{
	local i=$1

	rm -f "$T/p$i.sock" "$T/p$i.ctl" "$T/p$i.pid"
	nbdkit --exit-with-parent --threads=1 -U "$T/p$i.sock" -P "$T/p$i.pid" \
		--filter=error --filter=pause --filter=delay file "$IMG" \
		error=EIO error-rate=100% error-file="$T/p$i.eio" \
		pause-control="$T/p$i.ctl" \
		delay-read="${DELAY_MS[$i]}ms" delay-write="${DELAY_MS[$i]}ms" \
		2>>"$T/nbdkit-p$i.log" &
	NBDKIT[$i]=$!
	BG_PIDS+=($!)
	wait_for 10 test -S "$T/p$i.sock" -a -S "$T/p$i.ctl" -a -s "$T/p$i.pid" ||
		{ echo "FAIL: nbdkit p$i did not start"; cat "$T/nbdkit-p$i.log"; exit 1; }
}

# pause_ctl I p|r: pause or resume path I's nbdkit (the pause filter).
pause_ctl()
{
	timeout 10 python3 - "$T/p$1.ctl" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
s.recv(1)
PY
}

for i in $(seq 0 $((NPATHS - 1))); do
	nbdkit_start "$i"
	P[$i]="nbd+unix:///?socket=$T/p$i.sock"
done

# conf FIRST: the configuration, with FIRST (01 or 23) the preferred pair.
conf()
{
	local hi=50 lo=10

	[ "$1" = 23 ] && { hi=10; lo=50; }
	cat >"$CONF" <<X
defaults {
	polling_interval 1
	failback immediate
	no_path_retry queue
}
multipaths {
	multipath {
		alias lun
		path_grouping_policy group_by_prio
		path_selector "service-time 0"
		features "1 queue_if_no_path"
		path ${P[0]} prio $hi
		path ${P[1]} prio $hi
		path ${P[2]} prio $lo
		path ${P[3]} prio $lo
	}
}
X
}
ST="service-time 0 2 2"
TABLE_01="1 queue_if_no_path 0 2 1 $ST ${P[0]} 1 1 ${P[1]} 1 1 $ST ${P[2]} 1 1 ${P[3]} 1 1"
TABLE_23="1 queue_if_no_path 0 2 1 $ST ${P[2]} 1 1 ${P[3]} 1 1 $ST ${P[0]} 1 1 ${P[1]} 1 1"

conf 01
launch_daemon --io-timeout 2 --config "$CONF" --nbd "unix:$T/nbd.sock"
wait_for 10 test -S "$T/nbd.sock" || { echo "FAIL: umpathd did not start"; cat "$LOG"; exit 1; }
URI="nbd+unix:///lun?socket=$T/nbd.sock"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }
nfds() { ls "/proc/$DPID/fd" | wc -l; }
RSS0=$(rss_kb) FDS0=$(nfds)

# ms A B: a random number of milliseconds in [A, B].
ms() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
active_paths() { u status lun 2>/dev/null | grep -o '\.sock A ' | wc -l; }

declare -A COUNT
for k in "${KINDS[@]}"; do COUNT[$k]=0; done
ERRS=()		# control commands that failed
ctl() { u "$@" >/dev/null 2>>"$T/ctl-errors" || ERRS+=("$*"); }

# One fault, undone before it returns.
fault()
{
	local kind=$1 i=$((RANDOM % NPATHS)) d g

	case $kind in
	eio)	touch "$T/p$i.eio"; sleep_ms "$(ms 200 2000)"; rm -f "$T/p$i.eio" ;;
	hang)	pause_ctl "$i" p; sleep_ms "$(ms 300 4000)"; pause_ctl "$i" r ;;
	kill)	kill -KILL "$(cat "$T/p$i.pid")"; wait "${NBDKIT[$i]}" 2>/dev/null
		sleep_ms "$(ms 100 2000)"; nbdkit_start "$i" ;;
	stop)	kill -STOP "$(cat "$T/p$i.pid")"; sleep_ms "$(ms 300 3000)"
		kill -CONT "$(cat "$T/p$i.pid")" ;;
	alldown)
		for j in $(seq 0 $((NPATHS - 1))); do touch "$T/p$j.eio"; done
		sleep_ms "$(ms 1000 4000)"
		rm -f "$T"/p*.eio ;;
	failmsg)
		ctl message lun fail_path "${P[$i]}"; sleep_ms "$(ms 100 1500)"
		ctl message lun reinstate_path "${P[$i]}" ;;
	group)	g=$((RANDOM % 2 + 1))
		if ((RANDOM % 2)); then
			ctl message lun switch_group "$g"
		else
			ctl message lun disable_group "$g"; sleep_ms "$(ms 100 1500)"
			ctl message lun enable_group "$g"
		fi ;;
	suspend|suspend-noflush)
		# A flushing suspend fails I/O queued for want of a path, as
		# Linux does: only with a path up, so that none is.
		[ "$kind" = suspend ] && wait_for 10 eval '[ "$(active_paths)" -gt 0 ]'
		if [ "$kind" = suspend ]; then ctl suspend lun; else ctl suspend lun --noflush; fi
		sleep_ms "$(ms 50 1000)"; ctl resume lun ;;
	reload)	if ((RANDOM % 2)); then ctl reload lun "$TABLE_23"; else ctl reload lun "$TABLE_01"; fi ;;
	reconfigure)
		if ((RANDOM % 2)); then conf 23; else conf 01; fi
		ctl reconfigure ;;
	esac
	COUNT[$kind]=$((COUNT[$kind] + 1))
}

fio --name=soak --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=8 \
	--numjobs=2 --size=16M --offset_increment=16M --time_based \
	--runtime=$((SECONDS_RUN + 5)) --verify=crc32c --verify_backlog=64 \
	--verify_fatal=1 --verify_state_save=0 --output="$T/fio.out" &
FIO=$!
BG_PIDS+=($FIO)

start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$SECONDS_RUN" ] && kill -0 "$FIO" 2>/dev/null; do
	fault "${KINDS[$((RANDOM % ${#KINDS[@]}))]}"
	sleep_ms "$(ms 0 500)"
done
# Every path healthy again for fio's last seconds.
rm -f "$T"/p*.eio
for i in $(seq 0 $((NPATHS - 1))); do pause_ctl "$i" r >/dev/null 2>&1; done

rc=0
wait "$FIO" || rc=$?
total=0
echo "chaos: seed $SEED, faults by kind:"
for k in "${KINDS[@]}"; do
	printf '  %-16s %d\n' "$k" "${COUNT[$k]}"
	total=$((total + COUNT[$k]))
done
echo "chaos: $total faults in $SECONDS_RUN s"
[ "${#ERRS[@]}" -eq 0 ] || echo "chaos: control commands refused (${#ERRS[@]}): $(sort "$T/ctl-errors" | uniq -c | head -5)"

echo "chaos: fio: $(grep -m1 -E 'write: IOPS' "$T/fio.out" | sed 's/^ *//'); $(grep -m1 -oE 'err= *[0-9]+' "$T/fio.out")"
[ $rc -eq 0 ] || fail "fio exited $rc (seed $SEED)"
grep -q 'err= 0' "$T/fio.out" || fail "fio saw I/O errors (seed $SEED): $(grep -m3 'err=' "$T/fio.out")"
! grep -qiE 'verify: bad|bad magic|crc32c.*(mismatch|wanted)' "$T/fio.out" ||
	fail "fio verify failed (seed $SEED): $(grep -m3 -iE 'verify|crc32c' "$T/fio.out")"
kill -0 "$DPID" 2>/dev/null || fail "umpathd died (seed $SEED)"

if [ "$FAILED" = 0 ]; then
	wait_for 20 eval '[ "$(active_paths)" -eq '"$NPATHS"' ]' ||
		echo "chaos: not every path back after 20 s: $(u status lun)"
	nbdcopy "$URI" "$T/through.img" || fail "nbdcopy from the device failed"
	cmp "$T/through.img" "$IMG" || fail "the image differs from what the device shows (seed $SEED)"
	rm -f "$T/through.img"
	RSS1=$(rss_kb) FDS1=$(nfds)
	echo "chaos: umpathd RSS ${RSS0} kB -> ${RSS1} kB, fds $FDS0 -> $FDS1"
	[ "$RSS1" -le $((RSS0 + 65536)) ] || fail "umpathd RSS grew by more than 64 MiB"
	[ "$FDS1" -le $((FDS0 + 4)) ] || fail "umpathd holds $((FDS1 - FDS0)) more fds: $(ls -l /proc/$DPID/fd)"
	stop_daemon || fail "umpathd did not exit 0 on SIGTERM"
fi
[ "$FAILED" = 0 ] || { echo "--- fio"; cat "$T/fio.out"; LOG_LINES=60; }
finish
