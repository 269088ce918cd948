#!/usr/bin/env bash
# http_bench.sh - wrk against heapfragd's /metrics and /api/v1/processes with
# 100 traced processes, and whether tracing keeps its pace meanwhile.
#
# 99 idle glibc processes and one busy one (tests/web_workload counted: about
# 2,000 malloc+free a second, keeping its own count of malloc calls in a
# shared file) are attached over the REST API.  Three windows follow: no HTTP
# load, wrk on /metrics, wrk on /api/v1/processes.  After each the busy
# process is stopped (SIGSTOP) until heapfragd's next snapshot, so that its
# own count and heapfragd's can be compared exactly; dropped events are read
# before and after.  Prints one table.
#
# Usage: tests/bench/http_bench.sh [BUILD_DIR]   (as root: heapfragd loads BPF)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
daemon=$build/bin/heapfragd
workload=$build/tests/web_workload
seconds=${HF_BENCH_SECONDS:-10}
conns=${HF_BENCH_CONNECTIONS:-16}
idle_procs=99

for need in "$daemon" "$workload"; do
	[ -x "$need" ] || { echo "http_bench: $need is not built" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "http_bench: wrk is not installed (Debian package wrk)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "http_bench: run as root (heapfragd loads BPF)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/hf-http-bench-XXXXXX)
pids=()
daemon_pid=
cleanup() {
	local t0=$SECONDS
	if [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; then
		# Detaching 2,000 uprobes can take heapfragd a while; do not wait forever.
		for _ in $(seq 300); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		if kill -KILL "$daemon_pid" 2>/dev/null; then
			echo "http_bench: heapfragd did not stop within 30 s of SIGTERM; killed" >&2
		fi
		wait "$daemon_pid" 2>/dev/null || true
		echo "(heapfragd took $((SECONDS - t0)) s to stop)"
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "${busy:-}" ] && kill -CONT "$busy" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port

"$workload" counted "$tmp/own-count" &
busy=$!
pids+=("$busy")
for _ in $(seq $idle_procs); do
	# "plateau" waits for a signal that never comes: a real, idle glibc process.
	"$workload" plateau 1 >/dev/null &
	pids+=("$!")
done

"$daemon" -l "127.0.0.1:$port" --max-procs 256 >"$tmp/heapfragd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
	curl -fs "$base/healthz" >/dev/null && break
	sleep 0.1
done

attach_start=$(date +%s.%N)
for p in "${pids[@]}"; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "{\"pid\":$p}" "$base/api/v1/processes")
	[ "$code" = 201 ] || { echo "http_bench: attaching $p answered $code" >&2; tail "$tmp/heapfragd.log" >&2; exit 1; }
done
attach_end=$(date +%s.%N)
sleep 1.5 # the daemon's own figures are refreshed every interval (1 s)
tracked=$(curl -fs "$base/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tracked_processes"])')

# The busy process's malloc count and the daemon's dropped events, as heapfragd reports them.
mallocs() {
	curl -fs "$base/api/v1/processes/$busy" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["malloc"])'
}
dropped() {
	curl -fs "$base/metrics" | awk '/^heapfrag_dropped_events_total/ {s += $2} END {print s + 0}'
}

own_count() { od -An -t u8 -N8 "$tmp/own-count" | tr -d ' '; }

# Runs a window with the busy process running, then freezes it until a fresh
# snapshot; prints "seconds own_calls counted_calls" for the window.
window() {
	local t0 t1 own0 hf0 own1 hf1
	own0=$(own_count); hf0=$(mallocs)
	kill -CONT "$busy"; t0=$(date +%s.%N)
	"$@"
	kill -STOP "$busy"; t1=$(date +%s.%N)
	sleep 1.5 # the next snapshot (interval 1 s) sees the last call
	own1=$(own_count); hf1=$(mallocs)
	echo "$(python3 -c "print($t1 - $t0)") $((own1 - own0)) $((hf1 - hf0))"
}

wrk_run() {
	wrk -t2 -c"$conns" -d"${seconds}s" --latency "$1" >"$2"
}
to_ms() { # wrk prints 812.00us, 3.21ms or 1.02s
	python3 -c '
import re, sys
m = re.match(r"([0-9.]+)(us|ms|s)$", sys.argv[1])
v, u = float(m.group(1)), m.group(2)
print("%.2f" % (v / 1000 if u == "us" else v if u == "ms" else v * 1000))' "$1"
}

kill -USR1 "$busy"
kill -STOP "$busy"
sleep 1.5
drop0=$(dropped)
idle=$(window sleep "$seconds")
metrics=$(window wrk_run "$base/metrics" "$tmp/wrk-metrics.txt")
list=$(window wrk_run "$base/api/v1/processes" "$tmp/wrk-list.txt")
drop1=$(dropped)
kill -CONT "$busy"

metrics_bytes=$(curl -fs "$base/metrics" | wc -c)
list_bytes=$(curl -fs "$base/api/v1/processes" | wc -c)

# "seconds own counted" -> "own/s counted/s counted/own%"
keepup() {
	python3 -c 'import sys; t, o, c = map(float, sys.argv[1:]); print("%6.0f %6.0f %6.1f%%" % (o / t, c / t, 100 * c / o if o else 0))' $1
}

row() { # name file bytes window
	local rps p50 p99 errs
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$2")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$2")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$2")")
	errs=$(awk '/Non-2xx|Socket errors/ {print}' "$2" | tr -s ' ' | tr '\n' ' ')
	read -r own counted pct <<<"$(keepup "$4")"
	printf '| %-22s | %10.0f | %8s | %8s | %9s | %9s | %11s | %8s | %s\n' "$1" "$rps" "$p50" "$p99" \
		"$3" "$own" "$counted" "$pct" "${errs:-none}"
}

echo "heapfragd HTTP benchmark: $tracked traced processes, wrk -t2 -c$conns -d${seconds}s, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg) at the end"
printf 'attached %d processes over REST in %.2f s\n\n' "${#pids[@]}" "$(python3 -c "print($attach_end - $attach_start)")"
printf '| %-22s | %10s | %8s | %8s | %9s | %9s | %11s | %8s | %s\n' "endpoint" "requests/s" "p50 ms" \
	"p99 ms" "body B" "malloc/s" "counted/s" "counted" "errors"
echo "|------------------------|------------|----------|----------|-----------|-----------|-------------|----------|-------"
read -r own counted pct <<<"$(keepup "$idle")"
printf '| %-22s | %10s | %8s | %8s | %9s | %9s | %11s | %8s | %s\n' "(no HTTP load)" "-" "-" "-" "-" \
	"$own" "$counted" "$pct" "-"
row "GET /metrics" "$tmp/wrk-metrics.txt" "$metrics_bytes" "$metrics"
row "GET /api/v1/processes" "$tmp/wrk-list.txt" "$list_bytes" "$list"
echo
echo "malloc/s: the busy workload's own calls; counted/s: heapfragd's count of them (REST)."
echo "dropped events during the run: $((drop1 - drop0))"
