#!/usr/bin/env bash
# Description: real NBD clients against umpathd's NBD export: qemu-io
# patterns, discard, zeroes, flush and FUA; qemu-img compare; nbdcopy round
# trip; nbdinfo --can; fio's nbd engine with crc32c verify over a unix
# socket and TCP; SIGTERM exits 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io qemu-img nbdcopy nbdinfo fio python3

PORT=$(free_port)
start_daemon --mem-store 64M:a,b,c \
  --map mp='0 0 2 1 round-robin 0 2 1 mem:a 1 mem:b 1 service-time 0 1 2 mem:c 1 1' \
  --nbd "unix:$T/nbd.sock" --nbd "tcp:127.0.0.1:$PORT"
U="nbd+unix:///mp?socket=$T/nbd.sock"

out=$(qemu-io -f raw "$U" \
  -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' \
  -c 'write -z 1M 64k' -c 'read -P 0 1M 64k' \
  -c 'write -P 0x55 2M 64k' -c 'discard 2M 64k' \
  -c 'write -f -P 0x11 4M 4k' -c 'read -P 0x11 4M 4k' \
  -c 'flush' -c 'read -P 0xab 512k 4k' 2>&1)
echo "$out"
! grep -qiE 'fail|error|mismatch|pattern' <<<"$out" || fail "qemu-io reported a problem"

for c in flush fua trim zero multi-conn; do
  nbdinfo --can "$c" "$U" || fail "nbdinfo --can $c: no"
done
nbdinfo --list "nbd+unix:///?socket=$T/nbd.sock" | grep -q 'export="mp"' || fail "LIST does not name mp"

head -c 64M /dev/urandom > "$T/src.img"
nbdcopy "$T/src.img" "$U"
nbdcopy "$U" "$T/back.img"
cmp "$T/src.img" "$T/back.img" || fail "nbdcopy round trip differs"
qemu-img compare -f raw -F raw "$T/src.img" "$U" || fail "qemu-img compare differs"
# the same data through TCP
qemu-img compare -f raw -F raw "$T/src.img" "nbd://127.0.0.1:$PORT/mp" || fail "TCP differs"

for uri in "$U" "nbd://127.0.0.1:$PORT/mp"; do
  fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 \
      --numjobs=1 --size=32M --verify=crc32c --verify_fatal=1 --do_verify=1 \
      --output="$T/fio.out" || { cat "$T/fio.out"; fail "fio verify over $uri"; }
  grep -q 'err= 0' "$T/fio.out" || { cat "$T/fio.out"; fail "fio errors over $uri"; }
done

stop_daemon || fail "umpathd did not exit 0 on SIGTERM"
grep -q stopped "$T/daemon.log" || fail "no clean stop in the log"
echo "nbd-clients: ok"
