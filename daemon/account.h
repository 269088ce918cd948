/* SPDX-License-Identifier: MIT */
/*
 * account.h - from raw counts to the numbers users read.
 *
 * The tracer gathers what the kernel side counted (struct hf_raw) and what
 * /proc says about the allocator's regions (struct hf_regions); hf_account()
 * derives a snapshot from them.  Every definition here is the one written in
 * README.md; hf_account() is a pure function so that tests pin each one.
 */
#ifndef HF_ACCOUNT_H
#define HF_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"

/* What BPF counted for one process since attach (summed over CPUs). */
struct hf_raw {
	bool calls_known;            /* exact mode: the uprobes are attached */
	struct hf_counters counters; /* call counters are ignored when !calls_known */
	uint64_t live_allocations;
	uint64_t requested_bytes; /* over live allocations */
	uint64_t allocated_bytes; /* chunk sizes of live allocations */
	uint64_t released_bytes;  /* munmap, shrinking brk/mremap, MADV_DONTNEED/FREE of heap */
	uint64_t dropped_events;
	uint64_t live_map_entries;
	uint64_t hist_requests[HF_HIST_BUCKETS];
	uint64_t hist_live[HF_HIST_BUCKETS];
	struct hf_call_latency latency[HF_LAT_OPS]; /* meaningful only when calls_known */
};

/* The allocator's regions as /proc/PID/{maps,smaps} show them now. */
struct hf_regions {
	struct hf_mapped mapped; /* fields HF_UNKNOWN where not known */
	uint64_t resident_bytes; /* Rss of exactly the regions counted in mapped */
	uint64_t process_rss_bytes;
	uint64_t arena_heaps; /* non-main arena heaps seen */
	/* Sum of the heaps' heap_info.size: glibc counts this in mallinfo2().arena. */
	uint64_t arena_size_bytes;
	/* From the allocator's own books where it has them (libptm), else HF_UNKNOWN. */
	uint64_t largest_free_chunk_bytes;
	uint64_t free_chunks;
};

/*
 * mapped.total from its parts: their sum when all three are known, else
 * HF_UNKNOWN (a partial sum would pass for a total).
 */
uint64_t hf_mapped_total(const struct hf_mapped *m);

/*
 * Fills the heap, fragmentation, counters and histogram parts of *snap, and
 * moves its peaks forward (now is Unix seconds).  Fields of *snap that are
 * not derived here (identity, allocator, arenas) are left alone.
 */
void hf_account(const struct hf_raw *raw, const struct hf_regions *regions, double now,
		struct hf_snapshot *snap);

#endif /* HF_ACCOUNT_H */
