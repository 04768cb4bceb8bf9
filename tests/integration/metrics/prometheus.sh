#!/usr/bin/env bash
# Description: a real Prometheus server (Debian's prometheus, on loopback,
# scrape_interval 1s, its own temporary storage) scrapes umpathd's
# /metrics: the target is up, and a query through its HTTP API
# (/api/v1/query) returns the map's path count and the I/Os qemu-io did.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need prometheus qemu-io

PORT=$(free_port)
start_daemon --policy path_checker=none --mem-store 16M:a,b --nbd "unix:$T/nbd.sock" \
	--metrics "tcp:127.0.0.1:$PORT" --map mp='0 0 1 1 round-robin 0 2 1 mem:a 1 mem:b 1'
qemu-io -f raw "nbd+unix:///mp?socket=$T/nbd.sock" -c 'write 0 64k' -c 'read 0 64k' \
	>"$T/qemu-io.out" 2>&1 || fail "qemu-io: $(tail -3 "$T/qemu-io.out")"

PPORT=$(free_port)
cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: umpath
    static_configs:
      - targets: ['127.0.0.1:$PORT']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$T/prometheus.log" 2>&1 &
BG_PIDS+=("$!")

# query EXPR: the first result's value, or exit 1 while there is none.
query()
{
	"$PY" - "http://127.0.0.1:$PPORT/api/v1/query" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    r = json.load(urllib.request.urlopen(url, timeout=5))
except Exception:
    sys.exit(1)
res = r.get("data", {}).get("result", [])
if r.get("status") != "success" or not res:
    sys.exit(1)
print(res[0]["value"][1])
PY
}
wait_for 60 query 'up{job="umpath"} == 1' >/dev/null ||
	fail "Prometheus did not scrape umpathd within 60 s: $(tail -5 "$T/prometheus.log")"
got=$(query 'umpath_map_paths{map="mp"}') || fail "no umpath_map_paths{map=\"mp\"} in Prometheus"
[ "$got" = 2 ] || fail "umpath_map_paths{map=\"mp\"}: $got, want 2"
got=$(query 'sum(umpath_path_ios_total{map="mp"})') || fail "no umpath_path_ios_total in Prometheus"
[ "${got:-0}" -ge 2 ] || fail "sum(umpath_path_ios_total{map=\"mp\"}): $got, want >= 2"
got=$(query 'sum(umpath_path_io_seconds_count{map="mp"})') || fail "no histogram in Prometheus"
[ "${got:-0}" -ge 2 ] || fail "sum(umpath_path_io_seconds_count): $got, want >= 2"

stop_daemon || fail "umpathd did not exit 0"
finish
