#!/usr/bin/env bash
# Description: `umpath show topology` prints multipath -ll's layout, line for
# line, for a two-group map and a one-group map: size, features, hwhandler,
# each group's selector, prio and state, each path's dm and checker state;
# a failed path shows "failed", a disabled group "disabled"; NAME picks one
# map; an unknown map or view is an error; with the path checker on, paths
# read "ready".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MP='1 queue_if_no_path 0 2 1 service-time 0 2 2 mem:a 1 1 mem:b 1 1 round-robin 0 1 1 mem:c 1'
SOLO='0 0 1 1 round-robin 0 1 1 mem:a 1'

# Without the checker: every path "unchecked", nothing changes behind us.
start_daemon --policy path_checker=none --mem-store 64M:a,b,c --map mp="$MP" --map solo="$SOLO"

expect_out "mp size=64M features='1 queue_if_no_path' hwhandler='0' wp=rw
|-+- policy='service-time 0' prio=2 status=enabled
| |- mem:a active unchecked running
| \`- mem:b active unchecked running
\`-+- policy='round-robin 0' prio=1 status=enabled
  \`- mem:c active unchecked running
solo size=64M features='0' hwhandler='0' wp=rw
\`-+- policy='round-robin 0' prio=1 status=enabled
  \`- mem:a active unchecked running" u show topology

expect_out "solo size=64M features='0' hwhandler='0' wp=rw
\`-+- policy='round-robin 0' prio=1 status=enabled
  \`- mem:a active unchecked running" u show topology solo

u message mp fail_path mem:b
u message mp disable_group 2
expect_out "mp size=64M features='1 queue_if_no_path' hwhandler='0' wp=rw
|-+- policy='service-time 0' prio=2 status=enabled
| |- mem:a active unchecked running
| \`- mem:b failed unchecked running
\`-+- policy='round-robin 0' prio=1 status=disabled
  \`- mem:c active unchecked running" u show topology mp

# A reload shows the new table: one group, the size in multipath's units.
u reload mp '0 0 1 1 queue-length 0 2 1 mem:c 1 mem:a 1'
expect_out "mp size=64M features='0' hwhandler='0' wp=rw
\`-+- policy='queue-length 0' prio=1 status=enabled
  |- mem:c active unchecked running
  \`- mem:a active unchecked running" u show topology mp

st=0
u show topology nosuch >"$T/out" 2>"$T/err" || st=$?
[ "$st" = 1 ] || fail "show topology nosuch: exit $st, want 1"
grep -q "no such map" "$T/err" || fail "show topology nosuch: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "show topology nosuch: output on error"
st=0
u show nonsense >/dev/null 2>"$T/err" || st=$?
[ "$st" = 1 ] && grep -q "unknown view" "$T/err" || fail "show nonsense: exit $st: $(cat "$T/err")"
stop_daemon || fail "umpathd did not exit 0"

# With the checker (the default): the paths read "ready" once probed.
start_daemon --policy polling_interval=1 --mem-store 8M:a,b --map small='0 0 2 1 round-robin 0 1 1 mem:a 1 round-robin 0 1 1 mem:b 1'
want="small size=8.0M features='0' hwhandler='0' wp=rw
|-+- policy='round-robin 0' prio=2 status=enabled
| \`- mem:a active ready running
\`-+- policy='round-robin 0' prio=1 status=enabled
  \`- mem:b active ready running"
topo_is() { [ "$(u show topology small 2>&1)" = "$want" ]; }
wait_for 10 topo_is || true
expect_out "$want" u show topology small
stop_daemon || fail "umpathd did not exit 0"
finish
