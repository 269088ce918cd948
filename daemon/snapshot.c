// SPDX-License-Identifier: MIT
#include "snapshot.h"

#include <string.h>

const char *hf_mode_name(enum hf_mode mode)
{
	switch (mode) {
	case HF_MODE_EXACT:
		return "exact";
	case HF_MODE_PASSIVE:
		return "passive";
	}
	return "unknown";
}

const char *hf_state_name(enum hf_state state)
{
	switch (state) {
	case HF_STATE_RUNNING:
		return "running";
	case HF_STATE_EXITED:
		return "exited";
	}
	return "unknown";
}

const char *hf_allocator_name(enum hf_allocator alloc)
{
	switch (alloc) {
	case HF_ALLOC_GLIBC:
		return "glibc";
	case HF_ALLOC_LIBPTM:
		return "libptm";
	case HF_ALLOC_JEMALLOC:
		return "jemalloc";
	case HF_ALLOC_TCMALLOC:
		return "tcmalloc";
	case HF_ALLOC_MIMALLOC:
		return "mimalloc";
	case HF_ALLOC_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *hf_lat_op_name(enum hf_lat_op op)
{
	switch (op) {
	case HF_LAT_MALLOC:
		return "malloc";
	case HF_LAT_CALLOC:
		return "calloc";
	case HF_LAT_REALLOC:
		return "realloc";
	case HF_LAT_MEMALIGN:
		return "memalign";
	case HF_LAT_OPS:
		break;
	}
	return "unknown";
}

static void unknown_peak(struct hf_peak_value *p)
{
	p->value = HF_UNKNOWN;
	p->at = NAN;
}

void hf_snapshot_init(struct hf_snapshot *s)
{
	uint64_t *counters = (uint64_t *)&s->counters;

	memset(s, 0, sizeof(*s));
	s->start_time = NAN;
	s->tracing.since = NAN;
	s->tracing.dropped_events = HF_UNKNOWN;
	s->tracing.live_map_entries = HF_UNKNOWN;
	/* struct hf_counters is nothing but uint64_t fields. */
	for (size_t i = 0; i < sizeof(s->counters) / sizeof(uint64_t); i++)
		counters[i] = HF_UNKNOWN;

	s->heap.live_allocations = HF_UNKNOWN;
	s->heap.requested_bytes = HF_UNKNOWN;
	s->heap.allocated_bytes = HF_UNKNOWN;
	s->heap.mapped_bytes.brk = HF_UNKNOWN;
	s->heap.mapped_bytes.arena = HF_UNKNOWN;
	s->heap.mapped_bytes.mmap = HF_UNKNOWN;
	s->heap.mapped_bytes.total = HF_UNKNOWN;
	s->heap.resident_bytes = HF_UNKNOWN;
	s->heap.free_bytes = HF_UNKNOWN;
	s->heap.released_bytes = HF_UNKNOWN;
	s->heap.process_rss_bytes = HF_UNKNOWN;
	unknown_peak(&s->heap.peak.requested_bytes);
	unknown_peak(&s->heap.peak.allocated_bytes);
	unknown_peak(&s->heap.peak.resident_bytes);
	unknown_peak(&s->heap.peak.live_allocations);

	s->fragmentation.ratio = NAN;
	s->fragmentation.internal_ratio = NAN;
	s->fragmentation.external_ratio = NAN;
	s->fragmentation.internal_bytes = HF_UNKNOWN;
	s->fragmentation.external_bytes = HF_UNKNOWN;
	s->fragmentation.largest_free_chunk_bytes = HF_UNKNOWN;
	s->fragmentation.free_chunks = HF_UNKNOWN;

	s->histogram_known = false;
	s->ptm_events_known = false;
	s->sampled_known = false;
	s->latency_known = false;
	hf_census_init(&s->census);
	s->nr_arenas = 0;
	s->arenas_truncated = false;
}
