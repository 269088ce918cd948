#!/bin/bash
# SPDX-License-Identifier: MIT
#
# capture_corpus.sh BUILD_DIR - captures the census fuzzer's seed corpus,
# tests/fuzz/census/NAME.img, and fuzz_ptm_books's, tests/fuzz/ptm_books/
# NAME (ptm_books_capture), from real processes of the workloads in
# tests/workloads (census_workload, and mixed for binned chunks of every
# size): each a heap image (heap_image.h) written by census_capture while
# the workload holds still after building its heap.  Run it by hand, as
# root (the capture reads another process's memory), when the image format
# or the walker's verdicts change on purpose; then run census_images_replay
# and commit the images with the reason.  The heaps are kept small (tens to
# hundreds of KiB) so that the fuzzer runs fast.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: capture_corpus.sh BUILD_DIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
out=$(cd "$(dirname "$0")" && pwd)/census
workloads=$build/tests/workloads
capture=$build/tests/census_capture
libptm=$build/lib/libptm.so

# Reads the workload's lines until one starts with $1.
wait_for() {
	local line
	while IFS= read -r line <&"${WL[0]}"; do
		case $line in "$1"*) return 0 ;; esac
	done
	echo "capture_corpus.sh: the workload ended before $1" >&2
	return 1
}

# capture NAME PRELOAD PAUSE COMMAND REPLY WORKLOAD ARGS...: runs WORKLOAD
# ARGS (under LD_PRELOAD=PRELOAD unless it is empty), lets it build its heap
# until it prints PAUSE, sends COMMAND and waits for REPLY (unless COMMAND
# is empty), and captures NAME.img, or once $books is set the books
# NAME in it.
capture() {
	local name=$1 preload=$2 pause=$3 command=$4 reply=$5 workload=$6
	shift 6
	coproc WL { exec env ${preload:+LD_PRELOAD=$preload} "$workloads/$workload" "$@"; }
	local pid=$WL_PID in=${WL[1]}
	wait_for READY
	echo go >&"$in"
	wait_for "$pause"
	if [ -n "$command" ]; then
		echo "$command" >&"$in"
		wait_for "$reply"
	fi
	if [ "${books:-}" ]; then
		"$build/tests/ptm_books_capture" "$pid" "$libptm" "$books/$name"
	else
		"$capture" "$pid" "$out/$name.img"
	fi
	exec {in}>&-
	wait "$pid" || true
}

mkdir -p "$out"
# The seed's incident: 1,000 blocks of 150 bytes, all but 10% freed at random.
capture glibc_seed "" END "" "" census_workload --mode 0 --count 1000 --size 150 --seed 1
# Another shuffle, half kept, of fastbin-sized chunks.
capture glibc_seed_half "" END "" "" census_workload --mode 0 --count 1000 --size 100 \
	--keep-percent 50 --seed 7
# Four threads, each in its own arena with a thread cache and a fastbin.
capture glibc_caches "" END "" "" census_workload --mode 1 --threads 4
# The same with one chunk header overwritten: that arena is partial.
capture glibc_scribble "" END scribble SCRIBBLED census_workload --mode 3 --threads 3
# Random calls of every kind from two threads: small and large bins, aligned
# chunks; larger blocks are mmapped (not in the heap) to keep the image small.
capture glibc_mixed "" TRUTH "" "" mixed --threads 2 --ops 300 --seed 5 --fail-every 0 \
	--mmap-threshold 4096
# libptm: its main arena's regions, its books' layout.
capture libptm_seed "$libptm" END "" "" census_workload --mode 0 --count 1000 --size 150 --seed 1
capture libptm_caches "$libptm" END "" "" census_workload --mode 1 --threads 3
# libptm's books: one arena (its records must lie close together), with
# frees of small, fastbin-sized and large blocks.
books=$(cd "$(dirname "$0")" && pwd)/ptm_books
mkdir -p "$books"
capture seed "$libptm" END "" "" census_workload --mode 0 --count 1000 --size 150 --seed 1
capture half "$libptm" END "" "" census_workload --mode 0 --count 1000 --size 100 \
	--keep-percent 50 --seed 7
capture large "$libptm" END "" "" census_workload --mode 0 --count 200 --size 5000 --seed 3
ls -l "$out" "$books"
