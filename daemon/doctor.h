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

enum hf_finding_kind {
	HF_FINDING_EXTERNAL_FRAGMENTATION = 0,
	HF_FINDING_ARENA_CONTENTION,
	HF_FINDING_MMAP_CHURN,
	HF_FINDING_INTERNAL_FRAGMENTATION,
	HF_FINDING_DROPPED_EVENTS,
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
