#!/usr/bin/env bash
# Description: a path whose server answers every I/O with EIO is found by
# the path checker: `show topology` shows it "failed faulty", `show paths`
# "failed faulty" with a failure counted, and `umpath events` reports
# checker_down and path_failed; when the server heals, "active ready" again,
# checker_up and path_reinstated; at umpathd's stop the follower gets a last
# line and exits 0.  Real nbdkit paths over one image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdkit
nbdkit --dump-plugin file >/dev/null 2>&1 || { echo "SKIP: nbdkit file plugin missing"; exit 77; }
nbdkit --filter=error null --dump-plugin >/dev/null 2>&1 || { echo "SKIP: nbdkit error filter missing"; exit 77; }

IMG=$T/lun.img
truncate -s 16M "$IMG"
nbdkit --exit-with-parent -U "$T/a.sock" --filter=error file "$IMG" \
	error=EIO error-rate=100% error-file="$T/a.broken" 2>"$T/a.log" &
BG_PIDS+=($!)
nbdkit --exit-with-parent -U "$T/b.sock" file "$IMG" 2>"$T/b.log" &
BG_PIDS+=($!)
wait_for 10 test -S "$T/a.sock" || { fail "nbdkit a did not start"; finish; }
wait_for 10 test -S "$T/b.sock" || { fail "nbdkit b did not start"; finish; }
A="nbd+unix:///?socket=$T/a.sock"
B="nbd+unix:///?socket=$T/b.sock"

start_daemon --io-timeout 2 --policy polling_interval=0.2 --policy flap_threshold=0 \
	--map lun="0 0 1 1 round-robin 0 2 1 $A 1 $B 1"
u events lun >"$T/events" 2>"$T/events.err" &
EPID=$!
BG_PIDS+=($EPID)
wait_for 10 has_line "$T/umpathd.log" "follows the events of lun" || fail "the follower did not start"

healthy="lun size=16M features='0' hwhandler='0' wp=rw
\`-+- policy='round-robin 0' prio=1 status=enabled
  |- $A active ready running
  \`- $B active ready running"
topo_is() { [ "$(u show topology lun 2>&1)" = "$1" ]; }
wait_for 10 topo_is "$healthy" || true
expect_out "$healthy" u show topology lun

touch "$T/a.broken"
broken="lun size=16M features='0' hwhandler='0' wp=rw
\`-+- policy='round-robin 0' prio=1 status=enabled
  |- $A failed faulty running
  \`- $B active ready running"
wait_for 15 topo_is "$broken" || true
expect_out "$broken" u show topology lun

# show paths: the same states, and the failure counted.
u show paths lun >"$T/paths"
has_line "$T/paths" "^lun +1 +nbd\+unix:///\?socket=$T/a.sock +failed +readsector0 +faulty +[1-9]" ||
	fail "show paths: path A not failed/faulty with a failure: $(cat "$T/paths")"
has_line "$T/paths" "^lun +1 +nbd\+unix:///\?socket=$T/b.sock +active +readsector0 +ready +0 " ||
	fail "show paths: path B not active/ready: $(cat "$T/paths")"
wait_for 10 has_line "$T/events" " lun path_failed path=nbd\+unix:///\?socket=$T/a.sock group=1 valid_paths=1" ||
	fail "no path_failed event"
has_line "$T/events" " lun checker_down path=nbd\+unix:///\?socket=$T/a.sock group=1$" ||
	fail "no checker_down event"

rm -f "$T/a.broken"
wait_for 15 topo_is "$healthy" || true
expect_out "$healthy" u show topology lun
wait_for 10 has_line "$T/events" " lun path_reinstated path=nbd\+unix:///\?socket=$T/a.sock group=1 valid_paths=2" ||
	fail "no path_reinstated event"
has_line "$T/events" " lun checker_up path=nbd\+unix:///\?socket=$T/a.sock group=1$" ||
	fail "no checker_up event"
stop_daemon || fail "umpathd did not exit 0"
st=0
wait_for 10 exited "$EPID" || fail "umpath events still running after umpathd stopped"
wait "$EPID" || st=$?
[ "$st" = 0 ] || fail "umpath events exited $st at umpathd's stop: $(cat "$T/events.err")"
[ "$(tail -1 "$T/events" | cut -d' ' -f2-)" = "umpathd stopping" ] || fail "no last line at stop"
[ "$FAILED" = 0 ] || cat "$T/events"
finish
