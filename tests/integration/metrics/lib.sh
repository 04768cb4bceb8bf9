# lib.sh - shared by the metrics tests (umpathd --metrics): the helpers of
# ../common.sh, Debian's python3 (the one with prometheus_client: a
# python3 earlier on PATH may lack Debian's modules), and a scrape.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
LOG_LINES=60
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
	fail "$PY has no prometheus_client: run scripts/deps.sh as root (python3-prometheus-client)"

# scrape URL [OUT]: GET URL (bounded: 10 s) into OUT ($T/scrape by
# default); fails unless 200 with the exposition format's content type.
scrape()
{
	"$PY" - "$1" "${2:-$T/scrape}" <<'PY'
import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1], timeout=10)
ct = r.headers.get("Content-Type")
if r.status != 200 or ct != "text/plain; version=0.0.4; charset=utf-8":
    sys.exit("GET %s: %s, Content-Type %r" % (sys.argv[1], r.status, ct))
open(sys.argv[2], "wb").write(r.read())
PY
}

# check_against_views URL: scrape and compare every map's and path's
# series with `umpath show maps --json` and `show paths --json` taken
# right after (no I/O meanwhile: equal, not close).
check_against_views()
{
	scrape "$1" "$T/scrape" || { fail "scrape $1"; return; }
	u show paths --json >"$T/paths.json" || fail "show paths --json"
	u show maps --json >"$T/maps.json" || fail "show maps --json"
	"$PY" "$HERE/compare.py" "$T/scrape" "$T/paths.json" "$T/maps.json" ||
		fail "the scrape differs from show paths/maps --json (above)"
}
