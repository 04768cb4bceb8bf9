#!/usr/bin/python3
# compare.py SCRAPE PATHS_JSON MAPS_JSON: parse a /metrics scrape with
# prometheus_client's parser and check it against `umpath show paths
# --json` and `show maps --json`: every map and path has its series with
# the same values, each family's HELP and TYPE appear once, counters end
# in _total, histograms hold together.  Prints what differs; exit 1 then.
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
paths = json.load(open(sys.argv[2]))["paths"]
maps = json.load(open(sys.argv[3]))["maps"]
bad = []

for kind in ("HELP", "TYPE"):
    seen = {}
    for line in text.splitlines():
        if line.startswith("# %s " % kind):
            name = line.split()[2]
            seen[name] = seen.get(name, 0) + 1
    for name, n in seen.items():
        if n != 1:
            bad.append("# %s %s: %d times" % (kind, name, n))

fams = {}
samples = {}
for f in text_string_to_metric_families(text):
    fams[f.name] = f
    for s in f.samples:
        key = (s.name, frozenset(s.labels.items()))
        if key in samples:
            bad.append("%s%s given twice" % (s.name, s.labels))
        samples[key] = s.value
        if f.type == "counter" and not s.name.endswith("_total"):
            bad.append("counter sample %s does not end in _total" % s.name)


def value(sample, **labels):
    key = (sample, frozenset(labels.items()))
    if key not in samples:
        bad.append("no sample %s%s" % (sample, labels))
        return None
    return samples[key]


def expect(sample, want, **labels):
    got = value(sample, **labels)
    if got is not None and got != want:
        bad.append("%s%s = %r, show --json says %r" % (sample, labels, got, want))


for m in maps:
    n = m["name"]
    expect("umpath_map_size_bytes", m["size"], map=n)
    expect("umpath_map_suspended", int(m["suspended"]), map=n)
    expect("umpath_map_paths", m["total_paths"], map=n)
    expect("umpath_map_valid_paths", m["valid_paths"], map=n)
    expect("umpath_map_current_group", m["current_group"], map=n)
    expect("umpath_map_queue_if_no_path", int(m["queueing"]), map=n)
    expect("umpath_map_queued_ios", m["queued_ios"], map=n)
    expect("umpath_map_inflight_ios", m["inflight_ios"], map=n)
expect("umpath_maps", len(maps))

for p in paths:
    lab = {"map": p["map"], "path": p["path"]}
    expect("umpath_path_active", int(p["dm_state"] == "active"), **lab)
    expect("umpath_path_failures_total", p["failures"], **lab)
    for st in ("ready", "faulty", "pending", "held", "unchecked", "unsupported"):
        expect("umpath_path_checker_state", int(p["checker_state"] == st), state=st, **lab)
    expect("umpath_path_ios_total", p["ios"], **lab)
    expect("umpath_path_read_bytes_total", p["read_bytes"], **lab)
    expect("umpath_path_written_bytes_total", p["write_bytes"], **lab)
    if p["read_bytes"] + p["write_bytes"] != p["bytes"]:
        bad.append("%s: read_bytes + write_bytes != bytes in show paths" % lab)
    expect("umpath_path_errors_total", p["path_errors"], **lab, **{"class": "path"})
    expect("umpath_path_errors_total", p["target_errors"], **lab, **{"class": "target"})
    if p["path_errors"] + p["target_errors"] != p["errors"]:
        bad.append("%s: path_errors + target_errors != errors in show paths" % lab)
    expect("umpath_path_aborts_total", p["aborts"], **lab)
    expect("umpath_path_inflight_ios", p["inflight"], **lab)
    # The histogram: cumulative buckets up to +Inf == _count == the
    # path's I/Os (nothing in flight), and its mean as show paths' mean.
    h = fams.get("umpath_path_io_seconds")
    if h is None or h.type != "histogram":
        bad.append("no histogram umpath_path_io_seconds")
        continue
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for s in h.samples
        if s.name == "umpath_path_io_seconds_bucket"
        and {k: v for k, v in s.labels.items() if k != "le"} == lab
    )
    if not buckets or buckets[-1][0] != math.inf:
        bad.append("%s: no +Inf bucket" % lab)
        continue
    if any(b[1] > c[1] for b, c in zip(buckets, buckets[1:])):
        bad.append("%s: buckets not cumulative: %s" % (lab, buckets))
    count = value("umpath_path_io_seconds_count", **lab)
    total = value("umpath_path_io_seconds_sum", **lab)
    if count != buckets[-1][1] or count != p["ios"]:
        bad.append("%s: _count %s, +Inf %s, ios %s" % (lab, count, buckets[-1][1], p["ios"]))
    if count:
        mean_ns = round(total * 1e9) // int(count)
        if abs(mean_ns - p["mean_latency_ns"]) > 1:
            bad.append("%s: _sum/_count %d ns, mean_latency_ns %d" % (lab, mean_ns, p["mean_latency_ns"]))

for b in bad:
    print("metrics:", b)
sys.exit(1 if bad else 0)
