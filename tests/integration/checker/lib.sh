# lib.sh - for the checker tests: nbdkit paths over one image, umpathd with
# policies, qemu-io through its NBD export, bounded waits.
. "$(dirname "$0")/../export/lib.sh"
need nbdkit qemu-io
nbdkit --dump-plugin file >/dev/null 2>&1 || skip "nbdkit file plugin missing"
export UMPATH_CONTROL=$SOCK
IMG=$T/lun.img
truncate -s 64M "$IMG"

# path NAME: an nbdkit on the image that fails every I/O while $T/NAME.broken exists
path() {
  rm -f "$T/$1.sock"
  nbdkit --exit-with-parent -U "$T/$1.sock" -P "$T/$1.pid" --filter=error file "$IMG" \
    error=EIO error-rate=100% error-file="$T/$1.broken" 2>>"$T/$1.log" &
  BG_PIDS+=($!); disown $!
  wait_for test -S "$T/$1.sock" || fail "nbdkit $1 did not start"
}
uri() { echo "nbd+unix:///?socket=$T/$1.sock"; }
EXPORT="nbd+unix:///lun?socket=$T/nbd.sock"

# io CMD: one qemu-io command through the export
io() { qemu-io -f raw "$EXPORT" -c "$1" >/dev/null 2>&1; }
status() { "$UMPATH" status lun; }
# state_of NAME: A or F for the path in the status line
state_of() { status | tr ' ' '\n' | grep -A1 -F "$T/$1.sock" | tail -1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.2f", a - b }'; }
