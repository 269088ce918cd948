/* SPDX-License-Identifier: MIT */
/*
 * ptm_stats.h - libptm's exact statistics, in process.
 *
 * ptm_stats_get() fills a versioned struct with every arena's books (read
 * under the arena's lock: nothing is counted on the allocation fast path)
 * and the thread caches of all live threads (their per-thread counts,
 * merged on read).  ptm_stats_json() prints the same as one JSON object.
 * Other processes read the books without calling in: ptm_stats_abi.h.
 *
 * Byte counts are chunk sizes (what the heap spends), not requested sizes.
 * A chunk in a thread cache is, to its arena, in use: it counts in
 * inuse_bytes/inuse_chunks exactly as mallinfo2() counts it, and again,
 * separately, in the process-wide tcache class.
 */
#ifndef PTM_STATS_H
#define PTM_STATS_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTM_STATS_VERSION    2
#define PTM_STATS_MAX_ARENAS 64
/* Free chunk sizes by power of two: bucket k counts [32 << k, 64 << k) bytes, the last is open. */
#define PTM_STATS_HIST_BUCKETS 26

struct ptm_class_stats {
	uint64_t chunks;
	uint64_t bytes;
};

struct ptm_arena_stats {
	uint64_t index;            /* 0 is the main arena */
	uint64_t system_bytes;     /* from the system: brk regions or mmapped heaps */
	uint64_t max_system_bytes; /* peak of system_bytes */
	uint64_t heaps;            /* non-main arenas: heaps chained; main: regions */
	uint64_t inuse_chunks;     /* allocated chunks, thread-cached ones included */
	uint64_t inuse_bytes;      /* system_bytes minus all free bytes below (= uordblks) */
	struct ptm_class_stats fast;
	struct ptm_class_stats unsorted;
	struct ptm_class_stats small;
	struct ptm_class_stats large;
	struct ptm_class_stats top;
	uint64_t largest_free; /* largest free chunk, top and fastbins included */
	/* heaps and largest_free, above, are what ABI version 3 records publish. */
	uint64_t free_hist[PTM_STATS_HIST_BUCKETS];
	uint64_t threads_attached;
	uint64_t lock_acquisitions;
	uint64_t lock_contended;
	uint64_t lock_wait_ns;
	uint64_t lock_max_wait_ns;
	/* Version 2: the whole pages of free chunks given back (ptm_stats_abi.h). */
	uint64_t released_bytes;
	uint64_t release_total_bytes;
	uint64_t reuse_total_bytes;
	uint64_t release_calls;
};

struct ptm_stats {
	uint32_t version;         /* PTM_STATS_VERSION */
	uint32_t size;            /* sizeof(struct ptm_stats) */
	uint64_t narenas;         /* arenas in the process */
	uint64_t arenas_reported; /* entries filled in arenas[] (at most PTM_STATS_MAX_ARENAS) */
	/* Sums over all arenas (reported or not). */
	uint64_t system_bytes;
	uint64_t max_system_bytes; /* sum of the arenas' peaks */
	uint64_t inuse_bytes;
	uint64_t inuse_chunks;
	uint64_t free_bytes; /* fast + unsorted + small + large + top */
	uint64_t free_chunks;
	uint64_t largest_free;
	/* The thread caches of all live threads. */
	struct ptm_class_stats tcache;
	uint64_t tcache_threads;
	/* Chunks with a mapping of their own. */
	uint64_t mmapped_chunks;
	uint64_t mmapped_bytes;
	uint64_t max_mmapped_chunks;
	uint64_t max_mmapped_bytes;
	struct ptm_arena_stats arenas[PTM_STATS_MAX_ARENAS];
	/* Version 2: sums of the arenas' release books. */
	uint64_t released_bytes;
	uint64_t release_total_bytes;
	uint64_t reuse_total_bytes;
	uint64_t release_calls;
};

/* Fills *st; 0, or -EINVAL if st is NULL. */
int ptm_stats_get(struct ptm_stats *st);

/* Prints ptm_stats_get()'s result as one JSON object and a newline; 0 or -errno. */
int ptm_stats_json(FILE *fp);

#ifdef __cplusplus
}
#endif

#endif /* PTM_STATS_H */
