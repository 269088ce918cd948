/* SPDX-License-Identifier: MIT */
/*
 * snapshot_fixture.h - a snapshot in which nothing is known yet, for tests
 * that fill in only what they measured: every integer HF_UNKNOWN, every
 * ratio NaN, so a field a test forgets can never pass for a zero.
 */
#ifndef HF_TEST_SNAPSHOT_FIXTURE_H
#define HF_TEST_SNAPSHOT_FIXTURE_H

#include <math.h>
#include <string.h>

#include "snapshot.h"

static inline void snapshot_unknown(struct hf_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->start_time = NAN;
	s->tracing.since = NAN;
	s->tracing.dropped_events = HF_UNKNOWN;
	s->tracing.live_map_entries = HF_UNKNOWN;
	memset(&s->counters, 0xff, sizeof(s->counters)); /* every field HF_UNKNOWN */
	s->heap.live_allocations = HF_UNKNOWN;
	s->heap.requested_bytes = HF_UNKNOWN;
	s->heap.allocated_bytes = HF_UNKNOWN;
	memset(&s->heap.mapped_bytes, 0xff, sizeof(s->heap.mapped_bytes));
	s->heap.resident_bytes = HF_UNKNOWN;
	s->heap.free_bytes = HF_UNKNOWN;
	s->heap.released_bytes = HF_UNKNOWN;
	s->heap.process_rss_bytes = HF_UNKNOWN;
	s->fragmentation.ratio = NAN;
	s->fragmentation.internal_ratio = NAN;
	s->fragmentation.external_ratio = NAN;
	s->fragmentation.internal_bytes = HF_UNKNOWN;
	s->fragmentation.external_bytes = HF_UNKNOWN;
	s->fragmentation.largest_free_chunk_bytes = HF_UNKNOWN;
	s->fragmentation.free_chunks = HF_UNKNOWN;
	s->histogram_known = false;
}

#endif /* HF_TEST_SNAPSHOT_FIXTURE_H */
