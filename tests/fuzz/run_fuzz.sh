#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run_fuzz.sh FUZZER CORPUS SECONDS [ARTIFACTS] - runs the libFuzzer target
# FUZZER (build/tests/fuzz_NAME) for SECONDS from the seed corpus CORPUS
# (tests/fuzz/NAME), which it only reads: the inputs it finds go to a
# scratch directory, removed at the end.  A crash, a failed check, an input
# that takes more than 10 s, more than 2 GiB of memory or a leak fails the
# run, and the input behind it stays in ARTIFACTS (default: the current
# directory).  ctest's fuzz_NAME_bounded runs it for 60 s (census) or 30 s
# (the others), `make fuzz` for FUZZ_SECONDS.
set -eu

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	echo "usage: run_fuzz.sh FUZZER CORPUS SECONDS [ARTIFACTS]" >&2
	exit 2
fi
fuzzer=$1
corpus=$2
seconds=$3
artifacts=${4:-.}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$fuzzer").XXXXXX")
trap 'rm -rf "$scratch"' EXIT

status=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$scratch" "$corpus" || status=$?
if [ "$status" -ne 0 ]; then
	echo "run_fuzz.sh: $fuzzer failed (exit $status); the input is in $artifacts" \
		"(crash-*, timeout-*, oom-*, leak-*): fix the parser, then add it to $corpus" >&2
fi
exit "$status"
