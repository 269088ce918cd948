# SPDX-License-Identifier: MIT
"""A deterministic, allocation-heavy python3 workload on four threads.

Each thread builds dicts, lists, sets and long strings, round-trips them
through json, zlib and pickle, sorts, hashes and regex-splits them, and
returns a sha256 digest of everything it produced.  The main thread prints
the digests in thread order.  Run with PYTHONMALLOC=malloc, every object goes
through malloc, so an allocator that corrupts or loses memory changes a digest
or crashes the interpreter; the same run on glibc gives the expected output.
"""
import hashlib
import json
import pickle
import random
import re
import sys
import threading
import zlib

THREADS = 4
ROUNDS = 2


def work(seed, results):
    rng = random.Random(seed)
    h = hashlib.sha256()
    for rnd in range(ROUNDS):
        table = {}
        for i in range(10000):
            key = "k%d-%x" % (i, rng.getrandbits(24))
            table[key] = [rng.random() for _ in range(rng.randint(0, 8))]
        text = json.dumps(table, sort_keys=True)
        back = json.loads(text)
        assert back == table, "json round trip changed the table"
        h.update(hashlib.sha256(text.encode()).digest())

        words = re.split(r"[^a-z0-9]+", text.lower())
        counts = {}
        for w in words:
            counts[w] = counts.get(w, 0) + 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
        h.update(repr(top).encode())

        blob = bytearray()
        for i in range(3000):
            blob += rng.randbytes(rng.randint(1, 200))
        packed = zlib.compress(bytes(blob), 6)
        assert zlib.decompress(packed) == bytes(blob), "zlib round trip failed"
        h.update(packed)

        big = "".join(chr(97 + (i * 7 + rnd) % 26) * (i % 97) for i in range(4000))
        h.update(hashlib.sha1(big.encode()).digest())

        s1 = set(rng.getrandbits(20) for _ in range(20000))
        s2 = set(rng.getrandbits(20) for _ in range(20000))
        h.update(repr(sorted(s1 & s2)[:100]).encode())

        obj = {"rows": [list(range(i % 50)) for i in range(5000)], "round": rnd}
        assert pickle.loads(pickle.dumps(obj)) == obj, "pickle round trip failed"
        nums = [rng.randint(-10**9, 10**9) for _ in range(30000)]
        nums.sort()
        h.update(repr(nums[::997]).encode())
        del table, back, words, counts, blob, big, s1, s2, obj, nums
    results[seed] = h.hexdigest()


def main():
    results = {}
    threads = [threading.Thread(target=work, args=(s, results)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(results) != THREADS:
        print("a thread died", file=sys.stderr)
        return 1
    for s in range(THREADS):
        print("thread %d %s" % (s, results[s]))
    total = hashlib.sha256("".join(results[s] for s in range(THREADS)).encode())
    print("all %s" % total.hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
