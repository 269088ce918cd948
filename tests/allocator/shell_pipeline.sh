#!/bin/bash
# SPDX-License-Identifier: MIT
# A shell pipeline over a 50 MB file (sort on two threads with a bounded
# buffer, uniq -c, a numeric sort, sha256sum) prints byte for byte the same
# on libptm as on glibc.  Every process of the pipeline, the shell included,
# runs on libptm.
. "$(dirname "$0")/lib.sh"

big="$PTM_TMP/words.txt"
# 50 MB of lines drawn from a vocabulary with many repeats, generated once.
"$PTM_PYTHON" - "$big" <<'PY'
import random, sys
rng = random.Random(20261130)
vocab = ["%s-%d" % ("".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 12))), i)
         for i in range(200000)]
with open(sys.argv[1], "w") as f:
    size = 0
    while size < 50 * 1000 * 1000:
        line = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 3))) + "\n"
        f.write(line)
        size += len(line)
PY
check "the 50 MB input exists" test "$(stat -c %s "$big")" -ge 50000000

# The numeric sort is total (count, then line) so the output is unique.
pipeline='LC_ALL=C sort --parallel=2 -S 32M -T "$1" "$2" | uniq -c | LC_ALL=C sort -k1,1n -k2 |
	tee "$1/counts.txt" | sha256sum; wc -l < "$1/counts.txt"; sed -n "1000p;100000p;\$p" "$1/counts.txt"'

mkdir -p "$PTM_TMP/g" "$PTM_TMP/p"
start=$(date +%s%N)
check "the pipeline runs on glibc" on_glibc pipe_glibc bash -c "$pipeline" sh "$PTM_TMP/g" "$big" ||
	show pipe_glibc
echo "glibc: $((($(date +%s%N) - start) / 1000000)) ms"
check "every process of the glibc pipeline bound malloc to glibc" glibc_proof pipe_glibc
check "the glibc pipeline counted more than 100000 distinct lines" \
	test "$(sed -n 2p "$PTM_TMP/pipe_glibc.out")" -gt 100000

if check "libptm.so is built" ptm_built; then
	start=$(date +%s%N)
	check "the pipeline runs on libptm" on_ptm pipe_ptm bash -c "$pipeline" sh "$PTM_TMP/p" "$big" ||
		show pipe_ptm
	echo "libptm: $((($(date +%s%N) - start) / 1000000)) ms"
	check "every process of the pipeline bound malloc to libptm.so" ptm_proof pipe_ptm
	check "the pipeline on libptm printed what it printed on glibc" same_output pipe_glibc pipe_ptm
fi
cat "$PTM_TMP/pipe_glibc.out"
ptm_done
