#!/usr/bin/env bash
# make demo: heapfragd tracing the seed's incident (100,000 x 1000-byte
# messages, 90% freed at random), served on 127.0.0.1:9310, with a one-screen
# summary every few seconds.  Ctrl-C stops everything.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
listen=${HF_DEMO_LISTEN:-127.0.0.1:9310}
url="http://$listen"

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: heapfragd loads eBPF programs; run it as root." >&2
	exit 1
fi

log=$(mktemp /tmp/heapfrag-demo.XXXXXX.log)
# The heap changes every few seconds: a census every second (10% of a CPU at
# most), held still for its copy while the heap is busy, keeps up with it.
"$build/bin/heapfragd" -l "$listen" --census-budget 10 --census-stop-busy -- \
	"$build/tests/workloads/incident_demo" --hold 6 --pause 3 >"$log" 2>&1 &
daemon=$!

ptm_demo=
stop() {
	trap - INT TERM EXIT
	[ -n "$ptm_demo" ] && kill -TERM "$ptm_demo" 2>/dev/null || true
	kill -TERM "$daemon" 2>/dev/null || true
	pkill -TERM -P "$daemon" 2>/dev/null || true
	wait "$daemon" 2>/dev/null || true
	echo
	echo "demo stopped; heapfragd's log: $log"
}
trap stop INT TERM EXIT

for _ in $(seq 1 50); do
	curl -fs "$url/healthz" >/dev/null 2>&1 && break
	if ! kill -0 "$daemon" 2>/dev/null; then
		echo "heapfragd did not start:" >&2
		cat "$log" >&2
		exit 1
	fi
	sleep 0.2
done

echo "heapfrag dashboard: $url/   (open it in a browser; it updates live)"
echo

# The same incident on libptm, attached over the REST API, for comparison.
LD_PRELOAD="$build/lib/libptm.so" "$build/tests/workloads/incident_demo" --hold 6 --pause 3 \
	>>"$log" 2>&1 &
ptm_demo=$!
sleep 0.5
curl -fs -X POST -d "{\"pid\":$ptm_demo,\"mode\":\"exact\"}" "$url/api/v1/processes" >/dev/null ||
	echo "could not attach to the libptm copy (pid $ptm_demo); see $log" >&2

cat <<EOT
heapfragd is tracing the seed's incident twice: incident_demo allocates
100,000 messages of 1000 bytes, frees 90% of them at random, holds the
survivors for a few seconds, frees the rest and starts again — once on glibc
(started by heapfragd) and once on libptm (pid $ptm_demo, attached by POST).

Open:
  $url/                              the dashboard: every process, live
  $url/processes/PID                 one process: its heap map and charts
  $url/api/v1/processes              every traced process
  $url/api/v1/processes/PID          one process's whole account
  $url/api/v1/processes/PID/doctor   findings and remedies
  $url/api/v1/processes/PID/sites    allocation sites, ?sort=pinned
  $url/api/v1/processes/PID/heapmap  the heap census's map of the heap
  $url/api/v1/processes/PID/history  the last hour, for charts
  $url/metrics                       Prometheus exposition

What to look at: while the survivors are held, requested_bytes falls to
~10 MB but glibc's resident_bytes stays near 100 MB: the freed messages are
holes between the survivors, so the heap cannot shrink (external
fragmentation near 0.9).  libptm gives the holes' whole pages back to the
kernel, so its resident heap falls by about half.  The second line of each
process is its heap census: free bytes that malloc_trim(0) would give back
(releasable), free bytes that share pages with live blocks (pinned), and the
allocation site whose surviving blocks pin the most of them.

Ctrl-C stops the demo.
EOT

while kill -0 "$daemon" 2>/dev/null; do
	sleep 3
	curl -fs "$url/api/v1/processes" 2>/dev/null | HF_URL="$url" python3 -c '
import json, os, sys, time, urllib.request
doc = json.load(sys.stdin)
procs = doc if isinstance(doc, list) else doc.get("processes", [])
def mb(v):
    return "   null" if v is None else "%7.1f" % (v / 1e6)
def ratio(v):
    return " null" if v is None else "%5.2f" % v
def alloc_name(a):
    return a.get("name") if isinstance(a, dict) else a
print(time.strftime("%H:%M:%S"), "pid   comm            allocator  requested MB  resident MB  free MB  frag  external")
for p in procs:
    h = p.get("heap", {})
    f = p.get("fragmentation", {})
    print("        %-5s %-15s %-10s %12s %12s %8s %5s %9s" % (
        p.get("pid"), p.get("comm"), alloc_name(p.get("allocator")),
        mb(h.get("requested_bytes")), mb(h.get("resident_bytes")), mb(h.get("free_bytes")),
        ratio(f.get("ratio")), ratio(f.get("external_ratio"))))
    try:
        base = os.environ["HF_URL"] + "/api/v1/processes/%d" % p["pid"]
        c = json.load(urllib.request.urlopen(base, timeout=2)).get("census") or {}
        s = json.load(urllib.request.urlopen(base + "/sites?sort=pinned&limit=1", timeout=2))
    except Exception:
        continue
    pages = c.get("pages") or {}
    top = (s.get("sites") or [{}])[0]
    frames = top.get("frames") or [{}]
    name = top.get("label") or frames[0].get("function") or frames[0].get("address") or "-"
    print("              census %-10s releasable MB %s  pinned free MB %s  top pinning site: %s (%s MB)" % (
        c.get("state", "-"), mb(pages.get("releasable_bytes")), mb(pages.get("pinned_free_bytes")),
        name, mb(top.get("pinned_free_bytes")).strip()))
' || true
done
