#!/usr/bin/env bash
# Description: the README's "Running it" block works as written: its first
# sh block is run line for line by bash -e, with only its absolute
# locations (/run/umpath, /mnt/umpath, /var/tmp) moved into a temporary
# directory and build/ pointed at this build; its NBD URI must be quoted.
# Arguments: README umpathd umpath.  Skips (77) without root, FUSE or qemu-img.
set -euo pipefail
[ "$#" -eq 3 ] || { echo "usage: $0 README UMPATHD UMPATH"; exit 2; }
README=$1 BIN=$(dirname "$2")
[ "$(dirname "$3")" = "$BIN" ] || { echo "umpathd and umpath must share a build dir"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "SKIP: the block is written for root"; exit 77; }
command -v qemu-img >/dev/null || { echo "SKIP: qemu-img missing"; exit 77; }
command -v fusermount3 >/dev/null && [ -c /dev/fuse ] || { echo "SKIP: no FUSE"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/umpath-readme.XXXXXX")
cleanup() {
	pkill -TERM -f "^$BIN/umpathd --nbd unix:$T/" 2>/dev/null || true
	sleep 0.2
	mountpoint -q "$T/mnt" && fusermount3 -u "$T/mnt" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

# The block: from "## Running it" to the first closing fence.
awk '/^## Running it/ {sec=1} sec && /^```sh/ {inb=1; next} inb && /^```/ {exit} inb' \
	"$README" >"$T/block.sh"
[ -s "$T/block.sh" ] || { echo "FAIL: no sh block under '## Running it'"; exit 1; }
FAILED=0
# Every NBD URI with a query must be quoted ('?' globs in zsh).
if grep -nE "(^|[[:space:]])nbd[+a-z]*://[^ '\"]*\?" "$T/block.sh"; then
	echo "FAIL: an unquoted NBD URI (above)"; FAILED=1
fi
grep -q 'mkdir -p' "$T/block.sh" || { echo "FAIL: the block creates no directories"; FAILED=1; }

sed -e "s#/run/umpath#$T/run#g" -e "s#/mnt/umpath#$T/mnt#g" -e "s#/var/tmp#$T/var#g" \
	-e "s#\\bbuild/#$BIN/#g" "$T/block.sh" >"$T/run.sh"
mkdir -p "$T/var"
# The daemon's control socket goes beside the NBD socket.
if ! (cd "$T" && UMPATH_CONTROL="$T/run/control" timeout 60 bash -euo pipefail -x "$T/run.sh") \
	>"$T/out" 2>&1; then
	echo "FAIL: the block failed as written:"; cat "$T/out"; FAILED=1
else
	grep -q 'virtual size: 1 GiB' "$T/out" || { echo "FAIL: qemu-img info did not see 1 GiB"; FAILED=1; }
	grep -q '^0 2097152 multipath ' "$T/out" || { echo "FAIL: no status line"; FAILED=1; }
	grep -q "$T/mnt/lun" "$T/out" || { echo "FAIL: the FUSE file was not listed"; FAILED=1; }
fi
[ "$FAILED" = 0 ] || { sed 's/^/  | /' "$T/out" | tail -40; exit 1; }
echo PASS
