#!/usr/bin/env bash
# Description: a LUN of 4 KiB logical blocks (tgtd --blocksize 4096) through
# two portals: the map takes the LUN's block size (umpath info), the NBD
# export tells its clients (NBD_INFO_BLOCK_SIZE minimum 4096, nbdinfo), a
# client that honours it (qemu-io) writes 512 bytes by read-modify-write
# and the LUN holds them; a client that does not gets EINVAL for a 512-byte
# write and no path is failed; a 512-byte map cannot be reloaded onto the
# 4 KiB LUN (the size its clients were told would no longer hold), and
# a 4 KiB map takes a 512-byte path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io nbdinfo nbdcopy python3

TGT_BLOCKSIZE=4096 lun_two_portals 16M

bs=$("$UMPATH" info lun | awk '/^Block size/ {print $3}')
[ "$bs" = 4096 ] || fail "umpath info: block size '$bs', not the LUN's 4096"
nbdinfo --json "$U" >"$T/info.json" || fail "nbdinfo failed"
python3 - "$T/info.json" <<'PY' || fail "NBD_INFO_BLOCK_SIZE is not the LUN's"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
print("block sizes:", e.get("block_size_minimum"), e.get("block_size_preferred"), e.get("block_size_maximum"))
sys.exit(0 if e.get("block_size_minimum") == 4096 and e.get("block_size_preferred") == 4096 else 1)
PY

# qemu's NBD driver aligns to the minimum itself.
qemu-io -f raw -c 'write -P 0x11 0 64k' -c 'write -P 0x22 512 512' -c 'read -P 0x11 0 512' \
  -c 'read -P 0x22 512 512' -c 'read -P 0x11 1024 3072' -c 'flush' "$U" >"$T/qemu-io.out" 2>&1 ||
  { cat "$T/qemu-io.out"; fail "qemu-io through the 4 KiB export failed"; }
grep -q 'Pattern verification failed' "$T/qemu-io.out" && fail "read back wrong data"
nbdcopy "$U" "$T/through.img"
cmp "$T/through.img" "$IMG" || fail "the LUN's file differs from the device"
# bytes FILE OFF LEN: the distinct byte values there, in hex.
bytes() { od -An -v -tx1 -j"$2" -N"$3" "$1" | tr -s ' \n' '\n\n' | sort -u | grep . | tr '\n' ' '; }
[ "$(bytes "$IMG" 512 512)" = "22 " ] || fail "the 512-byte write did not land on the LUN"

# A client that ignores the minimum: EINVAL, and the paths stay in use.
python3 - "$(dirname "$0")/../export" "$T/nbd.sock" <<'PY' || fail "an unaligned write did not get EINVAL"
import sys
sys.path.insert(0, sys.argv[1])
import nbdwire as w
s, size = w.connect(sys.argv[2], "lun")
s.sendall(w.request(w.CMD_WRITE, 512, 512, 1, payload=b"\x33" * 512))
err, cookie = w.reply_header(s)
print("512-byte write at 512: error", err)
s.sendall(w.request(w.CMD_READ, 4096, 4096, 2))
err2, _ = w.reply_header(s)
data = w.recvn(s, 4096) if err2 == 0 else b""
print("4 KiB read at 4096: error", err2)
s.sendall(w.request(w.CMD_DISC, 0, 0, 3))
sys.exit(0 if err == 22 and err2 == 0 and data == b"\x11" * 4096 else 1)
PY
for p in "$A" "$B"; do
  st=$(path_field lun "$p" dm_state)
  [ "$st" = active ] || fail "path $p is $st after a client's unaligned write"
done
[ "$(bytes "$IMG" 512 512)" = "22 " ] || fail "the unaligned write reached the LUN"

# The map's block size holds for its life: a 512-byte map is not
# reloaded onto the LUN; the 4 KiB map takes a 512-byte path.
truncate -s 16M "$T/small-blocks.img"
"$UMPATH" create lun512 "0 0 1 1 round-robin 0 1 1 $T/small-blocks.img 1" || fail "create lun512"
out=$("$UMPATH" reload lun512 "0 0 1 1 round-robin 0 2 1 $T/small-blocks.img 1 $A 1" 2>&1) &&
  fail "a 512-byte map was reloaded onto a 4 KiB LUN"
case $out in
*"logical block size too large"*"$A: 4096-byte blocks, the map has 512"*) ;;
*) fail "reload refused with '$out'" ;;
esac
"$UMPATH" table lun512 | grep -q "$A" && fail "the refused table is live"
"$UMPATH" reload lun "0 0 1 1 round-robin 0 2 1 $A 1 $T/small-blocks.img 1" ||
  fail "a 4 KiB map refused a 512-byte path"
"$UMPATH" reload lun "0 0 1 1 round-robin 0 2 1 $A 1 $B 1" || fail "reload back"
stop_daemon || fail "umpathd did not exit 0"
finish
