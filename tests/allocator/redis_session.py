# SPDX-License-Identifier: MIT
"""Prints a deterministic redis-cli session: strings of many sizes, growing
and shrinking values, lists, hashes, sets and sorted sets, then deletions.

Every reply is deterministic (no iteration over hash tables), so the same
session against redis-server on glibc and on libptm must print the same
replies.  Keys start with "t:" so redis-benchmark's keys never collide.
"""
import random
import sys


def value(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(min(n, 64))) * (
        n // 64 + 1)


def main():
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    out = []
    emit = out.append
    emit("FLUSHALL")
    sizes = {}
    for i in range(1500):
        r = rng.random()
        n = rng.randint(1, 100) if r < 0.6 else rng.randint(100, 5000) if r < 0.97 else \
            rng.randint(100000, 400000)
        sizes[i] = n
        emit("SET t:s:%d %s" % (i, value(rng, n)[:n]))
    for i in range(0, 1500, 3):
        emit("APPEND t:s:%d %s" % (i, value(rng, rng.randint(1, 3000))))
        emit("SETRANGE t:s:%d %d %s" % (i, rng.randint(0, 20000), "xyz"))
    for i in range(1500):
        emit("STRLEN t:s:%d" % i)
        emit("GET t:s:%d" % i)
    for i in range(200):
        emit("INCRBY t:c:%d %d" % (i % 20, rng.randint(-1000, 1000)))
    for i in range(3000):
        emit("RPUSH t:l:%d %s" % (i % 10, value(rng, rng.randint(1, 300))))
    for i in range(10):
        emit("LTRIM t:l:%d 5 -5" % i)
        emit("LPOP t:l:%d" % i)
        emit("LRANGE t:l:%d 0 -1" % i)
    for i in range(2000):
        emit("HSET t:h:%d f%d %s" % (i % 7, i, value(rng, rng.randint(1, 700))))
    for i in range(0, 2000, 3):
        emit("HGET t:h:%d f%d" % (i % 7, i))
    for i in range(7):
        emit("HLEN t:h:%d" % i)
    for i in range(4000):
        emit("SADD t:set:%d m%d" % (i % 5, rng.randint(0, 3000)))
    for i in range(5):
        emit("SCARD t:set:%d" % i)
        emit("SISMEMBER t:set:%d m%d" % (i, rng.randint(0, 3000)))
    for i in range(3000):
        emit("ZADD t:z %d z%d" % (rng.randint(0, 100000), i))
    emit("ZRANGE t:z 0 -1 WITHSCORES")
    emit("ZRANGEBYSCORE t:z 1000 5000")
    for i in range(0, 1500, 2):
        emit("DEL t:s:%d" % i)
    emit("ZREMRANGEBYRANK t:z 0 1500")
    emit("ZCARD t:z")
    emit("DBSIZE")
    print("\n".join(out))


if __name__ == "__main__":
    main()
