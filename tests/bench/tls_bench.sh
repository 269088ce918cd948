#!/usr/bin/env bash
# tls_bench.sh - what HTTPS and the bearer token cost heapfragd's clients:
# wrk against GET /metrics (ten traced glibc processes) over plain HTTP on
# loopback, and over HTTPS with the token on 0.0.0.0, each with kept-alive
# connections (a scraper's case) and with a new connection per request (a
# full TLS handshake each time).  The certificate is made here with openssl.
# Prints one table.
#
# Usage: tests/bench/tls_bench.sh [BUILD_DIR]   (as root: heapfragd loads BPF)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
daemon=$build/bin/heapfragd
workload=$build/tests/web_workload
seconds=${HF_BENCH_SECONDS:-5}
conns=${HF_BENCH_CONNECTIONS:-8}
procs=10

for need in "$daemon" "$workload"; do
	[ -x "$need" ] || { echo "tls_bench: $need is not built" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "tls_bench: wrk is not installed (Debian package wrk)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "tls_bench: openssl is not installed" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "tls_bench: run as root (heapfragd loads BPF)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/hf-tls-bench-XXXXXX)
pids=()
daemons=()
cleanup() {
	for d in "${daemons[@]}"; do kill "$d" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

(
	cd "$tmp"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=bench-ca -keyout ca.key -out ca.pem 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
		-keyout server.key -out server.csr 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
		-extfile ext.cnf -out server.pem 2>/dev/null
	openssl rand -hex 24 >token
)
token=$(cat "$tmp/token")

pid_args=()
for _ in $(seq $procs); do
	"$workload" steady >/dev/null &
	pids+=("$!")
	pid_args+=(-p "$!")
done

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start NAME ARGS...: heapfragd, waited for on /healthz; its port in $port.
start() {
	local name=$1 scheme=$2
	shift 2
	port=$(free_port)
	"$daemon" "$@" -l "$listen_host:$port" "${pid_args[@]}" >"$tmp/$name.log" 2>&1 &
	daemons+=("$!")
	for _ in $(seq 150); do
		curl -fs --cacert "$tmp/ca.pem" "$scheme://127.0.0.1:$port/healthz" >/dev/null && return
		sleep 0.1
	done
	echo "tls_bench: heapfragd ($name) did not start" >&2
	tail "$tmp/$name.log" >&2
	exit 1
}

# run URL HEADERS...: requests a second and the median latency from wrk.
run() {
	local url=$1
	shift
	wrk -t 2 -c "$conns" -d "${seconds}s" --latency "$@" "$url" >"$tmp/wrk.out" 2>&1
	local rps p50 non2xx
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.out")
	p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk.out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.out")
	printf '%s %s %s\n' "$rps" "$p50" "${non2xx:-0}"
}

listen_host=127.0.0.1
start plain http
plain=$port
listen_host=0.0.0.0
start tls https --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" --token-file "$tmp/token"
tls=$port
sleep 2

size=$(curl -fs "http://127.0.0.1:$plain/metrics" | wc -c)
printf 'GET /metrics (%d bytes, %d traced processes), %d connections, %d s each\n\n' \
	"$size" "$procs" "$conns" "$seconds"
printf '| %-40s | %12s | %10s | %7s |\n' "client" "requests/s" "median" "non-2xx"
printf '| %-40s | %12s | %10s | %7s |\n' "---" "---" "---" "---"
row() {
	local label=$1
	shift
	read -r rps p50 bad < <(run "$@")
	printf '| %-40s | %12s | %10s | %7s |\n' "$label" "$rps" "$p50" "$bad"
}
row "HTTP, kept alive" "http://127.0.0.1:$plain/metrics"
row "HTTPS + token, kept alive" "https://127.0.0.1:$tls/metrics" -H "Authorization: Bearer $token"
row "HTTP, new connection each" "http://127.0.0.1:$plain/metrics" -H "Connection: close"
row "HTTPS + token, new connection each" "https://127.0.0.1:$tls/metrics" \
	-H "Authorization: Bearer $token" -H "Connection: close"
row "HTTPS, no token (401)" "https://127.0.0.1:$tls/metrics"
