#!/usr/bin/env bash
# Runs every benchmark of tests/bench/ against a build tree; each prints a table.
# Usage: tests/bench/run.sh [BUILD_DIR]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
export HF_BUILD_DIR=$build HF_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
status=0
for bench in "$build"/tests/*_bench; do
	[ -x "$bench" ] || continue
	echo "=== $(basename "$bench")"
	"$bench" || status=1
	echo
done
for script in "$HF_SOURCE_DIR"/tests/bench/*_bench.sh; do
	[ -x "$script" ] || continue
	echo "=== $(basename "$script")"
	"$script" "$build" || status=1
	echo
done
exit $status
