/* SPDX-License-Identifier: MIT */
/*
 * doctor.h - advice from one snapshot, in the spirit of Redis's MEMORY DOCTOR.
 *
 * hf_doctor() is a pure function: it reads a snapshot (and the time now, to
 * turn totals since attach into rates) and writes findings, each one plain
 * sentence with the numbers behind it and a concrete remedy.  A healthy
 * process gets none.  A value the snapshot does not know (HF_UNKNOWN, NaN)
 * never triggers a finding, so passive mode gives fewer findings, not wrong
 * ones.
 *
 * The rules (this block is the README's text; the constants below hold its numbers):
 *
 * external_fragmentation  fragmentation.external_ratio >= 0.30 and
 *     external_bytes >= 8 MiB: free memory the allocator holds but cannot
 *     hand out or give back (resident minus allocated).
 * arena_contention  summed over arenas, contended >= 100 waits and the waits
 *     add up to >= 1 % of the wall time since tracing began (summed over
 *     threads: 4 threads each waiting 10 ms in a second is 4 %).
 * mmap_churn  counters.mmap >= 1000, munmap >= half of mmap, and mmap calls
 *     are >= 1 % of allocation calls (malloc + calloc + realloc + memalign):
 *     large blocks crossing the mmap threshold are mapped and unmapped again
 *     and again.
 * internal_fragmentation  fragmentation.internal_ratio >= 0.25 and
 *     internal_bytes >= 8 MiB: headers and rounding cost a quarter of what
 *     the allocator set aside.
 * dropped_events  tracing.dropped_events >= 1: the BPF maps were full, so the
 *     account under-counts.
 *
 * From a complete heap census (both modes; census.h):
 * releasable_free_memory  census.pages.releasable_bytes >= 8 MiB and >= 10 %
 *     of census.pages.resident_bytes: free memory in whole pages that
 *     malloc_trim(0) would give back now.
 * pinned_fragmentation  census.pages.pinned_free_bytes >= 8 MiB and >= 10 %
 *     of census.pages.resident_bytes: free memory on pages that live blocks
 *     also hold, which no trim can return.
 * allocator_caching  census.free.tcache.bytes + census.free.fastbins.bytes
 *     >= 8 MiB: free chunks kept in thread caches and fastbins, out of reach
 *     of other threads and of trimming.
 * leak_like_growth / fragmentation_growth  over the census trend (complete
 *     walks at least 15 s apart, the oldest at least 60 s before the newest):
 *     in-use bytes (resp. free bytes) grew by >= 16 MiB and by >= 25 % of
 *     where they started, more than twice as much as free (resp. in-use)
 *     bytes did.
 *
 * From the top allocation sites (exact mode; sites.h, --site-metrics):
 * pinned_by_site  with a complete census, the site with the most pinned free
 *     bytes has >= 8 MiB of them and >= 25 % of census.pages.pinned_free_bytes:
 *     its live blocks keep those free bytes from being given back.
 * growing_site  a top site whose live bytes grew, since heapfragd first saw
 *     it among the top ones (at least 60 s and at most 300 s before), by
 *     >= 16 MiB and by >= 25 % of where they started, while the frees of its
 *     blocks in that time were <= 10 % of its allocations: leak-like growth
 *     at that site.
 */
#ifndef HF_DOCTOR_H
#define HF_DOCTOR_H

#include <stddef.h>

#include "snapshot.h"

#define HF_DOCTOR_EXT_FRAG_RATIO         0.30
#define HF_DOCTOR_EXT_FRAG_MIN_BYTES     (8ull << 20)
#define HF_DOCTOR_CONTENTION_MIN_WAITS   100
#define HF_DOCTOR_CONTENTION_WAIT_SHARE  0.01
#define HF_DOCTOR_MMAP_CHURN_MIN_MMAPS   1000
#define HF_DOCTOR_MMAP_CHURN_UNMAP_SHARE 0.5
#define HF_DOCTOR_MMAP_CHURN_CALL_SHARE  0.01
#define HF_DOCTOR_INT_FRAG_RATIO         0.25
#define HF_DOCTOR_INT_FRAG_MIN_BYTES     (8ull << 20)
#define HF_DOCTOR_DROPS_MIN              1
#define HF_DOCTOR_RELEASABLE_MIN_BYTES   (8ull << 20)
#define HF_DOCTOR_RELEASABLE_SHARE       0.10
#define HF_DOCTOR_PINNED_MIN_BYTES       (8ull << 20)
#define HF_DOCTOR_PINNED_SHARE           0.10
#define HF_DOCTOR_CACHING_MIN_BYTES      (8ull << 20)
#define HF_DOCTOR_GROWTH_MIN_SECONDS     60.0
#define HF_DOCTOR_GROWTH_MIN_BYTES       (16ull << 20)
#define HF_DOCTOR_GROWTH_SHARE           0.25
#define HF_DOCTOR_GROWTH_DOMINANCE       2.0
#define HF_DOCTOR_SITE_PINNED_MIN_BYTES  (8ull << 20)
#define HF_DOCTOR_SITE_PINNED_SHARE      0.25
#define HF_DOCTOR_SITE_GROWTH_SECONDS    60.0
#define HF_DOCTOR_SITE_GROWTH_MIN_BYTES  (16ull << 20)
#define HF_DOCTOR_SITE_GROWTH_SHARE      0.25
#define HF_DOCTOR_SITE_FREE_SHARE        0.10

enum hf_finding_kind {
	HF_FINDING_EXTERNAL_FRAGMENTATION = 0,
	HF_FINDING_ARENA_CONTENTION,
	HF_FINDING_MMAP_CHURN,
	HF_FINDING_INTERNAL_FRAGMENTATION,
	HF_FINDING_DROPPED_EVENTS,
	HF_FINDING_RELEASABLE_FREE_MEMORY,
	HF_FINDING_PINNED_FRAGMENTATION,
	HF_FINDING_ALLOCATOR_CACHING,
	HF_FINDING_LEAK_LIKE_GROWTH,
	HF_FINDING_FRAGMENTATION_GROWTH,
	HF_FINDING_PINNED_BY_SITE,
	HF_FINDING_GROWING_SITE,
	HF_FINDING_COUNT,
};

#define HF_FINDING_TEXT_LEN 1024

struct hf_finding {
	enum hf_finding_kind kind;
	char text[HF_FINDING_TEXT_LEN]; /* what was seen, the numbers, and the remedy */
};

/* "external_fragmentation", "arena_contention", ...: stable names for JSON. */
const char *hf_finding_name(enum hf_finding_kind kind);

/*
 * Writes at most max findings about *s to out, in the order of enum
 * hf_finding_kind, and returns how many it wrote (at most HF_FINDING_COUNT).
 * now is Unix seconds (rates since s->tracing.since).
 */
size_t hf_doctor(const struct hf_snapshot *s, double now, struct hf_finding *out, size_t max);

#endif /* HF_DOCTOR_H */
