/* SPDX-License-Identifier: MIT */
/*
 * fixtures.h - snapshots for the web unit tests, filled field by field.
 */
#ifndef HF_TEST_WEB_FIXTURES_H
#define HF_TEST_WEB_FIXTURES_H

#include <stdio.h>
#include <string.h>

#include "snapshot.h"

/* An exact-mode glibc process with every field known and distinct. */
static inline void fixture_exact(struct hf_snapshot *s, pid_t pid, const char *comm)
{
	hf_snapshot_init(s);
	s->pid = pid;
	s->start_time = 1700000000.5;
	snprintf(s->comm, sizeof(s->comm), "%s", comm);
	snprintf(s->exe, sizeof(s->exe), "/usr/bin/%s", comm);
	s->state = HF_STATE_RUNNING;
	s->mode = HF_MODE_EXACT;
	s->allocator.kind = HF_ALLOC_GLIBC;
	snprintf(s->allocator.path, sizeof(s->allocator.path),
		 "/usr/lib/x86_64-linux-gnu/libc.so.6");
	snprintf(s->allocator.build_id, sizeof(s->allocator.build_id), "abcdef0123");
	s->tracing.since = 1700000001.25;
	s->tracing.dropped_events = 3;
	s->tracing.live_map_entries = 4;
	s->counters = (struct hf_counters){
		.malloc = 1001,
		.calloc = 1002,
		.realloc = 1003,
		.free = 1004,
		.memalign = 1005,
		.failed = 1006,
		.brk = 1007,
		.mmap = 1008,
		.munmap = 1009,
		.mremap = 1010,
		.madvise = 1011,
	};
	s->heap.live_allocations = 2001;
	s->heap.requested_bytes = 2002;
	s->heap.allocated_bytes = 2003;
	s->heap.mapped_bytes = (struct hf_mapped){
		.brk = 2004, .arena = 2005, .mmap = 2006, .total = 2004 + 2005 + 2006};
	s->heap.resident_bytes = 2007;
	s->heap.free_bytes = 2008;
	s->heap.released_bytes = 2009;
	s->heap.process_rss_bytes = 2010;
	s->heap.peak.requested_bytes = (struct hf_peak_value){.value = 3001, .at = 1700000002.0};
	s->heap.peak.allocated_bytes = (struct hf_peak_value){.value = 3002, .at = 1700000003.0};
	s->heap.peak.resident_bytes = (struct hf_peak_value){.value = 3003, .at = 1700000004.0};
	s->heap.peak.live_allocations = (struct hf_peak_value){.value = 3004, .at = 1700000005.0};
	s->fragmentation = (struct hf_fragmentation){
		.ratio = 0.25,
		.internal_ratio = 0.125,
		.external_ratio = 0.5,
		.internal_bytes = 4001,
		.external_bytes = 4002,
		.largest_free_chunk_bytes = HF_UNKNOWN,
		.free_chunks = HF_UNKNOWN,
	};
	s->histogram_known = true;
	for (int i = 0; i < HF_HIST_BUCKETS; i++) {
		s->histogram.requests[i] = (uint64_t)(i % 3);
		s->histogram.live[i] = (uint64_t)(i % 2);
	}
}

/* A passive-mode process: syscalls and /proc figures, no calls or histograms. */
static inline void fixture_passive(struct hf_snapshot *s, pid_t pid, const char *comm)
{
	hf_snapshot_init(s);
	s->pid = pid;
	s->start_time = 1700000100.0;
	snprintf(s->comm, sizeof(s->comm), "%s", comm);
	s->mode = HF_MODE_PASSIVE;
	s->tracing.since = 1700000101.0;
	s->counters.brk = 7;
	s->counters.mmap = 8;
	s->counters.munmap = 9;
	s->counters.mremap = 10;
	s->counters.madvise = 11;
	s->heap.mapped_bytes =
		(struct hf_mapped){.brk = 135168, .arena = 0, .mmap = 0, .total = 135168};
	s->heap.resident_bytes = 4096;
	s->heap.released_bytes = 0;
	s->heap.process_rss_bytes = 1 << 20;
}

/*
 * An exact-mode libptm process run with MALLOC_SAMPLE_INTERVAL_: its USDT
 * events, its sampled heap and its call latencies all known and distinct.
 * Sampled bytes by size: 1000 * (i + 1) in class i, so their sum is
 * 1000 * 30 * 31 / 2 = 465000 = live_bytes.  Latency of op k: bucket i holds
 * (k + 1) * (i % 4) calls, count their sum, sum_ns 1000000 * (k + 1) + 5.
 */
static inline void fixture_libptm(struct hf_snapshot *s, pid_t pid, const char *comm)
{
	fixture_exact(s, pid, comm);
	s->allocator.kind = HF_ALLOC_LIBPTM;
	s->ptm_events_known = true;
	s->ptm_events = (struct hf_ptm_events){
		.heap_grow_bytes = 5001,
		.heap_shrink_bytes = 5002,
		.page_releases = 5003,
		.page_release_bytes = 5004,
		.arena_creates = 5005,
		.arena_reuses = 5006,
		.trims = 5007,
	};
	s->sampled_known = true;
	s->sampled.live_bytes = 465000;
	s->sampled.live_samples = 6001;
	s->sampled.samples = 6002;
	s->sampled.dropped = 6003;
	for (int i = 0; i < HF_HIST_BUCKETS; i++)
		s->sampled.live_bytes_by_size[i] = 1000 * (uint64_t)(i + 1);
	s->latency_known = true;
	for (int k = 0; k < HF_LAT_OPS; k++) {
		struct hf_call_latency *l = &s->latency[k];

		l->count = 0;
		for (int i = 0; i < HF_LAT_BUCKETS; i++) {
			l->buckets[i] = (uint64_t)(k + 1) * (uint64_t)(i % 4);
			l->count += l->buckets[i];
		}
		l->sum_ns = 1000000 * (uint64_t)(k + 1) + 5;
	}
}

#endif /* HF_TEST_WEB_FIXTURES_H */
