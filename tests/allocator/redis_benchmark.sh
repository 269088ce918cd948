#!/bin/bash
# SPDX-License-Identifier: MIT
# redis-server on libptm survives redis-benchmark and answers a deterministic
# session exactly as it does on glibc.
#
# Debian's redis-server links jemalloc but calls the unprefixed malloc family,
# so under LD_PRELOAD those resolve to the preloaded library first (INFO still
# reports the jemalloc it was built with).  The libptm run preloads
# libptm.so; the glibc run preloads libc.so.6 itself, which puts glibc's
# malloc ahead of jemalloc's.  Both runs are proven by the dynamic linker's
# binding log, and the libptm run also by libptm.so in /proc/PID/maps.  The
# clients run without a preload: only the server is under test.
. "$(dirname "$0")/lib.sh"

src="${HF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/allocator"
server_pid=""

for tool in redis-server redis-cli redis-benchmark; do
	if ! command -v "$tool" >/dev/null; then
		echo "$tool is missing: install redis-server and redis-tools" >&2
		exit 1
	fi
done

"$PTM_PYTHON" "$src/redis_session.py" 7 >"$PTM_TMP/session.txt"
# The session's read-only commands, replayed after the benchmark.
grep -E '^(GET|STRLEN|LRANGE|HGET|HLEN|SCARD|ZRANGE|ZCARD) ' "$PTM_TMP/session.txt" >"$PTM_TMP/after.txt"

glibc_lib=$(ldd "$(command -v redis-server)" | awk '$1 == "libc.so.6" { print $3 }')

# The library a run preloads so that it wins over redis-server's jemalloc.
allocator_of() {
	if [ "$1" = ptm ]; then
		echo "$PTM_LIB"
	else
		echo "$glibc_lib"
	fi
}

stop_server() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid"
		wait "$server_pid" 2>/dev/null
	fi
	server_pid=""
}
PTM_CLEANUP=stop_server

# start_server MODE NAME : starts redis-server on a free port; sets port and
# server_pid.
start_server() {
	local mode=$1 name=$2 args
	# A port found free can be taken before the server binds it: retry.
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		args=(redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no
			--protected-mode yes --dir "$PTM_TMP" --logfile "$PTM_TMP/$name.log")
		rm -f "$PTM_TMP/ld.$name".*
		env LD_PRELOAD="$(allocator_of "$mode")" LD_DEBUG=bindings \
			LD_DEBUG_OUTPUT="$PTM_TMP/ld.$name" "${args[@]}" &
		server_pid=$!
		for _ in $(seq 100); do
			if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
				return 0
			fi
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		stop_server
	done
	echo "redis-server ($mode) did not start; log:" >&2
	tail -20 "$PTM_TMP/$name.log" >&2
	return 1
}

# run_server MODE : the whole scenario against one server.
run_server() {
	local mode=$1 name="redis_$1"
	check "redis-server starts on $mode" start_server "$mode" "$name" || return
	echo "redis-server on $mode: pid $server_pid, port $port," \
		"$(redis-cli -p "$port" info memory | tr -d '\r' | grep '^mem_allocator:')"
	if [ "$mode" = ptm ]; then
		check "redis-server maps libptm.so" grep -q "$PTM_LIB" "/proc/$server_pid/maps"
	fi
	check "the session runs on $mode" \
		eval 'redis-cli -p "$port" <"$PTM_TMP/session.txt" >"$PTM_TMP/${name}_session.out"'
	check "redis-benchmark completes on $mode" \
		eval 'redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -q -c 20 -d 256 -r 50000 \
			-t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset \
			2>&1 | tr "\r" "\n" | grep "requests per second" >"$PTM_TMP/${name}_bench.out"'
	sed "s/^/  $mode: /" "$PTM_TMP/${name}_bench.out"
	# Fourteen tests, and LRANGE_100 adds the LPUSH that fills its list.
	check "redis-benchmark ran all 15 tests on $mode" \
		test "$(grep -c . "$PTM_TMP/${name}_bench.out")" -eq 15
	check "the keys survive the benchmark on $mode" \
		eval 'redis-cli -p "$port" <"$PTM_TMP/after.txt" >"$PTM_TMP/${name}_after.out"'
	check "redis-server is still running on $mode" kill -0 "$server_pid"
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
	wait "$server_pid"
	check "redis-server exits cleanly on $mode (status $?)" test "$?" -eq 0
	server_pid=""
	check "redis-server bound malloc to $(allocator_of "$mode")" \
		bound_to "$name" "$(allocator_of "$mode")"
}

run_server glibc
check "the session's last reply is the number of keys left" \
	test "$(tail -1 "$PTM_TMP/redis_glibc_session.out")" -gt 700
if check "libptm.so is built" ptm_built; then
	run_server ptm
	check "redis on libptm replied to the session as on glibc" \
		same_output redis_glibc_session redis_ptm_session
	check "redis on libptm kept the same keys through the benchmark" \
		same_output redis_glibc_after redis_ptm_after
	cut -d: -f1 "$PTM_TMP/redis_glibc_bench.out" >"$PTM_TMP/names_glibc.out"
	cut -d: -f1 "$PTM_TMP/redis_ptm_bench.out" >"$PTM_TMP/names_ptm.out"
	check "redis-benchmark ran the same tests on both" same_output names_glibc names_ptm
fi
ptm_done
