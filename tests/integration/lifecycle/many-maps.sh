#!/usr/bin/env bash
# Description: a configuration over the documented limit of maps (10000,
# umpath.conf(5)) is refused at once with the reason; a startup creating
# thousands of maps stops promptly on SIGTERM instead of finishing first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# conf N: N maps over 32 in-memory paths (a map of one path is made in
# tens of microseconds: all 10000 were made before the signal came).
conf()
{
	python3 - "$1" >"$T/umpath.conf" <<'X'
import sys
print("multipaths {")
for i in range(int(sys.argv[1])):
    print("\tmultipath {\n\t\talias m%d\n\t\tpaths %s\n\t}" % (i, " ".join("mem:p%d" % k for k in range(32))))
print("}")
X
}

STORES=$(seq -s, -f 'p%g' 0 31)
conf 10001
st=0
"$UMPATHD" --control "$SOCK" --mem-store "1M:$STORES" --config "$T/umpath.conf" 2>"$T/err" || st=$?
[ "$st" = 1 ] || fail "10001 maps: exit $st, want 1"
grep -q "too many maps: at most 10000" "$T/err" || fail "10001 maps: reason missing: $(cat "$T/err")"
grep -q "umpath.conf:" "$T/err" || fail "10001 maps: the file is not named: $(cat "$T/err")"
# At once: refused before a single map is made (not after 10000 of them;
# a wall-clock bound would only measure how loaded the machine is).
! grep -q "created" "$T/err" || fail "10001 maps: maps were made before the refusal"

conf 10000
launch_daemon --mem-store "1M:$STORES" --config "$T/umpath.conf"
# Some maps made, many to go.
wait_for 60 eval 'grep -q "map m20: created" "$LOG"' || fail "startup never began"
# Signal to exit, measured by one process (term_wait, lib.sh).
if ! out=$(term_wait "$DPID" 30); then
	fail "umpathd still runs 30 s after SIGTERM during startup"
	kill -KILL "$DPID"
fi
st=0
wait "$DPID" || st=$?
DPID=
read -r took _ <<<"$out"
echo "stopped ${took} ms after SIGTERM; $(grep -c 'created from' "$LOG") maps made"
[ "$st" = 0 ] || fail "SIGTERM during startup: exit $st, want 0"
grep -q "startup interrupted" "$LOG" || fail "SIGTERM during startup: not logged"
grep -q "map m9999: created" "$LOG" && fail "startup ran to the end before stopping"
[ "$took" -lt 5000 ] || fail "SIGTERM during startup took ${took} ms"
finish
