#!/usr/bin/env bash
# run-vm.sh - run one tests/vm/ script as root inside a real Linux 6.12
# guest (linux-vm/run: Debian's kernel under qemu, this machine's file
# system read-only, the source tree read-write), for what this machine's
# kernel lacks: nbd, ublk, scsi_debug, device-mapper.
#
#   run-vm.sh [-m MODULE]... [-t SECS] SCRIPT [ARG]...
#
# The runner is $UMPATH_LINUX_VM, else shared/linux-vm/run found beside the
# source tree or one of its parents (../shared/linux-vm/run from the main
# checkout).  Exit: the script's own (0 pass, 1 fail, 77 skip); 77 when
# the VM cannot boot here (no runner, no kernel, qemu not starting), a
# module the guest kernel does not have; 1 when the guest does not finish
# in SECS (a hung test is a failure) or a module it has does not load.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
mods=()
tmo=300
while getopts m:t: o; do
	case $o in
	m) mods+=("$OPTARG") ;;
	t) tmo=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '6p' "$0" >&2; exit 2; }

skip() { echo "SKIP: $*"; exit 77; }

run=${UMPATH_LINUX_VM:-}
if [ -z "$run" ]; then
	d=$src
	while [ "$d" != / ]; do
		d=$(dirname "$d")
		[ -x "$d/shared/linux-vm/run" ] && { run=$d/shared/linux-vm/run; break; }
	done
	[ -n "$run" ] || skip "no shared/linux-vm/run above $src (set UMPATH_LINUX_VM)"
fi
case $run in /*) ;; *) run=$src/$run ;; esac
[ -x "$run" ] || skip "the VM runner $run is not there (UMPATH_LINUX_VM)"

out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
margs=()
for m in "${mods[@]}"; do
	margs+=(-m "$m")
done
# The first line the guest prints tells a test that ran from a VM that
# never got as far.
marker='umpath-vm: guest up, kernel'
cd "$src" || exit 1
# An emulated kernel now and then dies while booting (a panic in the
# first seconds under TCG): up to three boots before the VM counts as
# unable to boot here.
for try in 1 2 3; do
	start=$(date +%s)
	rc=0
	"$run" "${margs[@]}" -t "$tmo" -- env UMPATH_IN_VM=1 \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
		bash -c 'echo "$0 $(uname -r)"; exec bash "$@"' "$marker" "$@" >"$out" 2>"$err" || rc=$?
	took=$(($(date +%s) - start))
	if [ "$rc" != 124 ] || [ "$took" -ge "$tmo" ] || grep -q "^$marker" "$out"; then
		break
	fi
	echo "run-vm: boot $try ended after ${took} s without running the test:" >&2
	grep -m1 -i 'panic\|error' "$err" >&2
done
cat "$out"
cat "$err" >&2

if grep -q "^$marker" "$out"; then
	if [ "$rc" = 124 ]; then
		echo "FAIL: the guest did not finish within ${tmo} s: the test hung"
		exit 1
	fi
	exit "$rc"
fi
case $rc in
97)
	m=$(sed -n 's/^run: modprobe \(.*\) failed$/\1/p' "$err" | head -1)
	cache=${UMPATH_VM_CACHE:-/var/tmp/umpath-linux-vm}
	mn=$(printf '%s' "$m" | tr - _)
	if cat "$cache"/k/lib/modules/*/modules.dep "$cache"/k/lib/modules/*/modules.builtin \
		2>/dev/null | sed 's/:.*//; s,.*/,,; s/\.ko.*//' | tr - _ | grep -qx "$mn"; then
		echo "FAIL: module $m is in the guest kernel but did not load"
		exit 1
	fi
	skip "module ${m:-?} is not in the guest kernel"
	;;
124)
	if [ "$took" -ge "$tmo" ]; then
		echo "FAIL: the guest did not reach the test within ${tmo} s"
		exit 1
	fi
	skip "the VM could not boot (qemu ended after ${took} s without running the test, 3 times)"
	;;
*)
	skip "the VM could not boot or fetch its kernel ($run exited $rc)"
	;;
esac
