#!/usr/bin/env bash
# Description: the config file's `metrics unix:PATH` serves /metrics on a
# unix socket (curl --unix-socket, or python without curl): 200 with the
# exposition format, 404 for another path; --metrics on the command line
# wins over the file; the socket file is gone after umpathd stops.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cat >"$T/umpath.conf" <<CONF
defaults {
	metrics unix:$T/metrics.sock
}
multipaths {
	multipath {
		alias mp
		path mem:a
	}
}
CONF

# get PATH URLPATH: the HTTP status and the body, over the unix socket.
get()
{
	if command -v curl >/dev/null 2>&1; then
		curl -sS --max-time 10 --unix-socket "$1" -o "$T/body" -w '%{http_code} %{content_type}\n' \
			"http://localhost$2"
	else
		"$PY" - "$1" "$2" "$T/body" <<'PY'
import http.client, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(sys.argv[1])
c = C("localhost", timeout=10)
c.request("GET", sys.argv[2])
r = c.getresponse()
open(sys.argv[3], "wb").write(r.read())
print(r.status, r.getheader("Content-Type"))
PY
	fi
}

start_daemon --config "$T/umpath.conf" --mem-store 16M:a
[ -S "$T/metrics.sock" ] || fail "no socket $T/metrics.sock"
got=$(get "$T/metrics.sock" /metrics) || fail "GET /metrics on the unix socket"
[ "$got" = "200 text/plain; version=0.0.4; charset=utf-8" ] || fail "GET /metrics: $got"
grep -q '^umpath_map_paths{map="mp"} 1$' "$T/body" || fail "no mp in the scrape: $(head -5 "$T/body")"
"$PY" -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; list(p(open(sys.argv[1]).read()))' \
	"$T/body" || fail "prometheus_client refuses the scrape"
got=$(get "$T/metrics.sock" /) || fail "GET / on the unix socket"
[ "${got%% *}" = 404 ] || fail "GET /: $got"
stop_daemon || fail "umpathd did not exit 0"
[ ! -e "$T/metrics.sock" ] || fail "the socket file is left after umpathd stopped"

# The command line's endpoint replaces the file's.
start_daemon --config "$T/umpath.conf" --mem-store 16M:a --metrics "unix:$T/other.sock"
[ -S "$T/other.sock" ] || fail "--metrics unix:$T/other.sock: no socket"
[ ! -e "$T/metrics.sock" ] || fail "the file's metrics socket exists though --metrics was given"
got=$(get "$T/other.sock" /metrics) || fail "GET /metrics on --metrics' socket"
[ "${got%% *}" = 200 ] || fail "GET /metrics on --metrics' socket: $got"
stop_daemon || fail "umpathd did not exit 0"
finish
