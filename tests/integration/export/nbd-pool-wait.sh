#!/usr/bin/env bash
# Description: when a map's request pool is full (umpathd --pool-size 2,
# its one path an nbdkit that answers reads after 2 s), an NBD client's
# further requests wait for a request of the map to end without the
# server polling: umpathd's threads hardly wake while they wait (they woke
# thousands of times a second with the usleep(200) retry loop), and every
# read then completes with the right data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3 nbdkit
nbdkit --dump-plugin file >/dev/null 2>&1 || { echo "SKIP: nbdkit file plugin missing"; exit 77; }
nbdkit --filter=delay --help >/dev/null 2>&1 || { echo "SKIP: nbdkit delay filter missing"; exit 77; }
IMG=$T/disk.img
head -c 1M /dev/urandom >"$IMG"
nbdkit --exit-with-parent -U "$T/slow.sock" --filter=delay file "$IMG" delay-read=2 \
	2>"$T/nbdkit.log" &
EXTRA_CLEANUP="kill $! 2>/dev/null || true"
wait_for test -S "$T/slow.sock" || fail "nbdkit did not start"
start_daemon --pool-size 2 --policy path_checker=none --io-timeout 30 \
	--map mp="0 0 1 1 round-robin 0 1 1 nbd+unix:///?socket=$T/slow.sock 1" \
	--nbd "unix:$T/nbd.sock"
timeout 60 python3 "$(dirname "$0")/nbd_poolwait.py" "$T/nbd.sock" mp "$IMG" "$DAEMON_PID" ||
	fail "requests waiting for pool room"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-pool-wait: ok"
