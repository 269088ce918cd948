#!/bin/bash
# SPDX-License-Identifier: MIT
# python3 running a threaded, allocation-heavy script on libptm prints the
# same digests as on glibc.  PYTHONMALLOC=malloc sends every object through
# malloc rather than python's own small-object pool.
. "$(dirname "$0")/lib.sh"

script="${HF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/allocator/workload.py"
export PYTHONMALLOC=malloc PYTHONHASHSEED=0

start=$(date +%s%N)
check "python3 runs the workload on glibc" on_glibc py_glibc "$PTM_PYTHON" "$script" || show py_glibc
echo "glibc: $((($(date +%s%N) - start) / 1000000)) ms"
check "every python3 process of the glibc run bound malloc to glibc" glibc_proof py_glibc
check "the glibc run printed four thread digests and a total" \
	grep -qE '^all [0-9a-f]{64}$' "$PTM_TMP/py_glibc.out"

if check "libptm.so is built" ptm_built; then
	start=$(date +%s%N)
	check "python3 runs the workload on libptm" on_ptm py_ptm "$PTM_PYTHON" "$script" ||
		show py_ptm
	echo "libptm: $((($(date +%s%N) - start) / 1000000)) ms"
	check "every python3 process bound malloc to libptm.so" ptm_proof py_ptm
	check "python3 on libptm printed what it printed on glibc" same_output py_glibc py_ptm
fi
cat "$PTM_TMP/py_glibc.out"
ptm_done
