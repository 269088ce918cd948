// SPDX-License-Identifier: MIT
/*
 * Pins every definition of account.c with numbers worked out by hand,
 * including how unknown inputs and zero denominators propagate.
 */
#include <math.h>

#include "account.h"
#include "check.h"

#define CHECK_NEAR(a, b) CHECK_MSG(fabs((a) - (b)) < 1e-12, "%s = %.15g, want %.15g", #a, (a), (b))

static struct hf_raw exact_raw(void)
{
	struct hf_raw r = {
		.calls_known = true,
		.counters = {.malloc = 10,
			     .calloc = 2,
			     .realloc = 3,
			     .free = 5,
			     .memalign = 1,
			     .failed = 1,
			     .brk = 4,
			     .mmap = 6,
			     .munmap = 2,
			     .mremap = 1,
			     .madvise = 3},
		.live_allocations = 7,
		.requested_bytes = 7000,
		.allocated_bytes = 7168,
		.released_bytes = 8192,
		.dropped_events = 5,
		.live_map_entries = 7,
	};
	r.hist_requests[0] = 1;
	r.hist_requests[5] = 2;
	r.hist_requests[HF_HIST_BUCKETS - 1] = 9;
	r.hist_live[3] = 4;
	return r;
}

static struct hf_regions small_regions(void)
{
	return (struct hf_regions){
		.mapped = {.brk = 135168, .arena = 0, .mmap = 0, .total = 135168},
		.resident_bytes = 20480,
		.process_rss_bytes = 4 << 20,
		.arena_heaps = 0,
		.arena_size_bytes = 0,
		.largest_free_chunk_bytes = HF_UNKNOWN,
		.free_chunks = HF_UNKNOWN,
	};
}

static void test_exact_mode_derives_every_number(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 100.0, &s);

	CHECK_EQ_U64(s.counters.malloc, 10);
	CHECK_EQ_U64(s.counters.calloc, 2);
	CHECK_EQ_U64(s.counters.realloc, 3);
	CHECK_EQ_U64(s.counters.free, 5);
	CHECK_EQ_U64(s.counters.memalign, 1);
	CHECK_EQ_U64(s.counters.failed, 1);
	CHECK_EQ_U64(s.counters.brk, 4);
	CHECK_EQ_U64(s.counters.mmap, 6);
	CHECK_EQ_U64(s.counters.munmap, 2);
	CHECK_EQ_U64(s.counters.mremap, 1);
	CHECK_EQ_U64(s.counters.madvise, 3);
	CHECK_EQ_U64(s.tracing.dropped_events, 5);
	CHECK_EQ_U64(s.tracing.live_map_entries, 7);

	CHECK_EQ_U64(s.heap.live_allocations, 7);
	CHECK_EQ_U64(s.heap.requested_bytes, 7000);
	CHECK_EQ_U64(s.heap.allocated_bytes, 7168);
	CHECK_EQ_U64(s.heap.mapped_bytes.brk, 135168);
	CHECK_EQ_U64(s.heap.mapped_bytes.arena, 0);
	CHECK_EQ_U64(s.heap.mapped_bytes.mmap, 0);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, 135168);
	CHECK_EQ_U64(s.heap.resident_bytes, 20480);
	/* free = resident - allocated = 20480 - 7168 */
	CHECK_EQ_U64(s.heap.free_bytes, 13312);
	CHECK_EQ_U64(s.heap.released_bytes, 8192);
	CHECK_EQ_U64(s.heap.process_rss_bytes, 4 << 20);

	/* 1 - 7000/20480 = 13480/20480 */
	CHECK_NEAR(s.fragmentation.ratio, 0.658203125);
	/* (7168 - 7000) / 7168 = 168/7168 */
	CHECK_NEAR(s.fragmentation.internal_ratio, 0.0234375);
	CHECK_EQ_U64(s.fragmentation.internal_bytes, 168);
	/* 13312 / 20480 */
	CHECK_NEAR(s.fragmentation.external_ratio, 0.65);
	CHECK_EQ_U64(s.fragmentation.external_bytes, 13312);
	CHECK_EQ_U64(s.fragmentation.largest_free_chunk_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.fragmentation.free_chunks, HF_UNKNOWN);

	CHECK(s.histogram_known);
	CHECK_EQ_U64(s.histogram.requests[0], 1);
	CHECK_EQ_U64(s.histogram.requests[5], 2);
	CHECK_EQ_U64(s.histogram.requests[HF_HIST_BUCKETS - 1], 9);
	CHECK_EQ_U64(s.histogram.requests[1], 0);
	CHECK_EQ_U64(s.histogram.live[3], 4);

	CHECK_EQ_U64(s.heap.peak.requested_bytes.value, 7000);
	CHECK_NEAR(s.heap.peak.requested_bytes.at, 100.0);
	CHECK_EQ_U64(s.heap.peak.resident_bytes.value, 20480);
	CHECK_EQ_U64(s.heap.peak.live_allocations.value, 7);
}

static void test_regions_books_pass_through(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	reg.largest_free_chunk_bytes = 4096;
	reg.free_chunks = 3;
	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);
	CHECK_EQ_U64(s.fragmentation.largest_free_chunk_bytes, 4096);
	CHECK_EQ_U64(s.fragmentation.free_chunks, 3);
}

static void test_requested_above_resident_clamps_ratio_and_free_to_zero(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	/* 100 MiB asked for and barely touched: 1 MiB resident. */
	raw.requested_bytes = 100 << 20;
	raw.allocated_bytes = (100 << 20) + 4096;
	reg.mapped = (struct hf_mapped){.brk = 0, .arena = 0, .mmap = (100 << 20) + 4096};
	reg.resident_bytes = 1 << 20;
	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, (100 << 20) + 4096);
	CHECK_EQ_U64(s.heap.free_bytes, 0);
	CHECK(s.fragmentation.ratio == 0.0);
	CHECK(s.fragmentation.external_ratio == 0.0);
	CHECK_EQ_U64(s.fragmentation.external_bytes, 0);
	CHECK_EQ_U64(s.fragmentation.internal_bytes, 4096);
	CHECK_NEAR(s.fragmentation.internal_ratio, 4096.0 / ((100 << 20) + 4096));
}

static void test_passive_mode_leaves_call_numbers_unknown(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	raw.calls_known = false;
	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);

	CHECK_EQ_U64(s.counters.malloc, HF_UNKNOWN);
	CHECK_EQ_U64(s.counters.calloc, HF_UNKNOWN);
	CHECK_EQ_U64(s.counters.realloc, HF_UNKNOWN);
	CHECK_EQ_U64(s.counters.free, HF_UNKNOWN);
	CHECK_EQ_U64(s.counters.memalign, HF_UNKNOWN);
	CHECK_EQ_U64(s.counters.failed, HF_UNKNOWN);
	/* Syscalls are counted by tracepoints, which passive mode keeps. */
	CHECK_EQ_U64(s.counters.brk, 4);
	CHECK_EQ_U64(s.counters.mmap, 6);
	CHECK_EQ_U64(s.counters.munmap, 2);
	CHECK_EQ_U64(s.counters.mremap, 1);
	CHECK_EQ_U64(s.counters.madvise, 3);
	CHECK_EQ_U64(s.heap.released_bytes, 8192);
	CHECK_EQ_U64(s.tracing.dropped_events, 5);
	CHECK_EQ_U64(s.tracing.live_map_entries, HF_UNKNOWN);

	CHECK_EQ_U64(s.heap.live_allocations, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.requested_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.allocated_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.free_bytes, HF_UNKNOWN);
	/* Regions are still read from /proc. */
	CHECK_EQ_U64(s.heap.mapped_bytes.total, 135168);
	CHECK_EQ_U64(s.heap.resident_bytes, 20480);

	CHECK(isnan(s.fragmentation.ratio));
	CHECK(isnan(s.fragmentation.internal_ratio));
	CHECK(isnan(s.fragmentation.external_ratio));
	CHECK_EQ_U64(s.fragmentation.internal_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.fragmentation.external_bytes, HF_UNKNOWN);

	CHECK(!s.histogram_known);
	CHECK_EQ_U64(s.histogram.requests[0], 0);
	CHECK_EQ_U64(s.histogram.requests[HF_HIST_BUCKETS - 1], 0);
	CHECK_EQ_U64(s.histogram.live[3], 0);

	CHECK_EQ_U64(s.heap.peak.requested_bytes.value, HF_UNKNOWN);
	CHECK(isnan(s.heap.peak.requested_bytes.at));
	CHECK_EQ_U64(s.heap.peak.resident_bytes.value, 20480);
}

static void test_zero_denominators_give_unknown_ratios_and_known_bytes(void)
{
	struct hf_raw raw = {.calls_known = true};
	struct hf_regions reg = {
		.mapped = {0, 0, 0, 0},
		.resident_bytes = 0,
		.process_rss_bytes = 1 << 20,
		.largest_free_chunk_bytes = HF_UNKNOWN,
		.free_chunks = HF_UNKNOWN,
	};
	struct hf_snapshot s;

	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, 0);
	CHECK_EQ_U64(s.heap.resident_bytes, 0);
	CHECK_EQ_U64(s.heap.free_bytes, 0);
	CHECK(isnan(s.fragmentation.ratio));
	CHECK(isnan(s.fragmentation.internal_ratio));
	CHECK(isnan(s.fragmentation.external_ratio));
	CHECK_EQ_U64(s.fragmentation.internal_bytes, 0);
	CHECK_EQ_U64(s.fragmentation.external_bytes, 0);

	/* Something allocated but nothing resident yet: internal is known. */
	raw.requested_bytes = 100;
	raw.allocated_bytes = 112;
	hf_account(&raw, &reg, 2.0, &s);
	CHECK(isnan(s.fragmentation.ratio));
	CHECK(isnan(s.fragmentation.external_ratio));
	CHECK_NEAR(s.fragmentation.internal_ratio, 12.0 / 112.0);
	CHECK_EQ_U64(s.heap.free_bytes, 0);
}

static void test_total_is_unknown_unless_every_part_is_known(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	/* brk known, arena and mmap not (jemalloc in passive mode). */
	reg.mapped = (struct hf_mapped){.brk = 8192, .arena = HF_UNKNOWN, .mmap = HF_UNKNOWN};
	reg.resident_bytes = 8192;
	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);
	CHECK_EQ_U64(s.heap.mapped_bytes.brk, 8192);
	CHECK_EQ_U64(s.heap.mapped_bytes.arena, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.resident_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.free_bytes, HF_UNKNOWN);
	CHECK(isnan(s.fragmentation.ratio));
	CHECK(isnan(s.fragmentation.external_ratio));
	/* Internal fragmentation needs no region: it stays known. */
	CHECK_NEAR(s.fragmentation.internal_ratio, 0.0234375);

	/* Only mmap unknown. */
	reg.mapped = (struct hf_mapped){.brk = 8192, .arena = 0, .mmap = HF_UNKNOWN};
	hf_account(&raw, &reg, 2.0, &s);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, HF_UNKNOWN);

	/* All unknown. */
	reg.mapped = (struct hf_mapped){HF_UNKNOWN, HF_UNKNOWN, HF_UNKNOWN, HF_UNKNOWN};
	hf_account(&raw, &reg, 3.0, &s);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, HF_UNKNOWN);

	/* The total is derived here, not trusted from the caller. */
	reg.mapped = (struct hf_mapped){.brk = 1, .arena = 2, .mmap = 4, .total = 99};
	hf_account(&raw, &reg, 4.0, &s);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, 7);
	CHECK_EQ_U64(hf_mapped_total(&reg.mapped), 7);
}

static void test_allocated_below_requested_never_wraps(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	/* Two map reads a moment apart can disagree; bytes must not wrap around. */
	raw.requested_bytes = 7200;
	raw.allocated_bytes = 7168;
	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);
	CHECK_EQ_U64(s.fragmentation.internal_bytes, 0);
	CHECK(s.fragmentation.internal_ratio == 0.0);
}

static void test_peaks_move_forward_and_keep_the_time_first_reached(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	hf_snapshot_init(&s);
	raw.requested_bytes = 1000;
	hf_account(&raw, &reg, 10.0, &s);
	CHECK_EQ_U64(s.heap.peak.requested_bytes.value, 1000);
	CHECK_NEAR(s.heap.peak.requested_bytes.at, 10.0);

	raw.requested_bytes = 3000;
	raw.live_allocations = 30;
	hf_account(&raw, &reg, 20.0, &s);
	CHECK_EQ_U64(s.heap.peak.requested_bytes.value, 3000);
	CHECK_NEAR(s.heap.peak.requested_bytes.at, 20.0);
	CHECK_EQ_U64(s.heap.peak.live_allocations.value, 30);

	/* Equal again later: the time stays the first one. */
	hf_account(&raw, &reg, 30.0, &s);
	CHECK_NEAR(s.heap.peak.requested_bytes.at, 20.0);

	raw.requested_bytes = 500;
	raw.live_allocations = 2;
	reg.resident_bytes = 40960;
	hf_account(&raw, &reg, 40.0, &s);
	CHECK_EQ_U64(s.heap.requested_bytes, 500);
	CHECK_EQ_U64(s.heap.peak.requested_bytes.value, 3000);
	CHECK_NEAR(s.heap.peak.requested_bytes.at, 20.0);
	CHECK_EQ_U64(s.heap.peak.live_allocations.value, 30);
	CHECK_EQ_U64(s.heap.peak.resident_bytes.value, 40960);
	CHECK_NEAR(s.heap.peak.resident_bytes.at, 40.0);

	/* An unknown value never moves a peak. */
	raw.calls_known = false;
	hf_account(&raw, &reg, 50.0, &s);
	CHECK_EQ_U64(s.heap.peak.requested_bytes.value, 3000);
	CHECK_NEAR(s.heap.peak.requested_bytes.at, 20.0);
}

static void test_identity_and_arenas_are_left_alone(void)
{
	struct hf_raw raw = exact_raw();
	struct hf_regions reg = small_regions();
	struct hf_snapshot s;

	hf_snapshot_init(&s);
	s.pid = 42;
	s.start_time = 1234.5;
	strcpy(s.comm, "redis-server");
	s.mode = HF_MODE_PASSIVE;
	s.allocator.kind = HF_ALLOC_JEMALLOC;
	s.nr_arenas = 1;
	s.arenas[0].address = 0x1000;
	s.tracing.since = 99.0;
	hf_account(&raw, &reg, 100.0, &s);
	CHECK(s.pid == 42);
	CHECK(s.start_time == 1234.5);
	CHECK_STR_EQ(s.comm, "redis-server");
	CHECK(s.mode == HF_MODE_PASSIVE);
	CHECK(s.allocator.kind == HF_ALLOC_JEMALLOC);
	CHECK(s.nr_arenas == 1 && s.arenas[0].address == 0x1000);
	CHECK(s.tracing.since == 99.0);
}

static void test_snapshot_init_makes_everything_unknown(void)
{
	struct hf_snapshot s;

	memset(&s, 0x5a, sizeof(s));
	hf_snapshot_init(&s);
	CHECK_EQ_U64(s.counters.malloc, HF_UNKNOWN);
	CHECK_EQ_U64(s.counters.madvise, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.live_allocations, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.mapped_bytes.total, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.resident_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.process_rss_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.heap.peak.allocated_bytes.value, HF_UNKNOWN);
	CHECK(isnan(s.heap.peak.allocated_bytes.at));
	CHECK(isnan(s.fragmentation.ratio));
	CHECK(isnan(s.fragmentation.internal_ratio));
	CHECK(isnan(s.fragmentation.external_ratio));
	CHECK_EQ_U64(s.fragmentation.largest_free_chunk_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(s.tracing.dropped_events, HF_UNKNOWN);
	CHECK(isnan(s.start_time));
	CHECK(!s.histogram_known);
	CHECK(s.nr_arenas == 0);
	CHECK(!s.arenas_truncated);
	CHECK_EQ_U64(s.histogram.requests[7], 0);
	CHECK(s.pid == 0 && s.comm[0] == '\0' && s.exe[0] == '\0');
}

static void test_names(void)
{
	CHECK_STR_EQ(hf_mode_name(HF_MODE_EXACT), "exact");
	CHECK_STR_EQ(hf_mode_name(HF_MODE_PASSIVE), "passive");
	CHECK_STR_EQ(hf_state_name(HF_STATE_RUNNING), "running");
	CHECK_STR_EQ(hf_state_name(HF_STATE_EXITED), "exited");
	CHECK_STR_EQ(hf_allocator_name(HF_ALLOC_GLIBC), "glibc");
	CHECK_STR_EQ(hf_allocator_name(HF_ALLOC_LIBPTM), "libptm");
	CHECK_STR_EQ(hf_allocator_name(HF_ALLOC_JEMALLOC), "jemalloc");
	CHECK_STR_EQ(hf_allocator_name(HF_ALLOC_TCMALLOC), "tcmalloc");
	CHECK_STR_EQ(hf_allocator_name(HF_ALLOC_MIMALLOC), "mimalloc");
	CHECK_STR_EQ(hf_allocator_name(HF_ALLOC_UNKNOWN), "unknown");
	CHECK_STR_EQ(hf_allocator_name((enum hf_allocator)77), "unknown");
}

int main(void)
{
	test_exact_mode_derives_every_number();
	test_regions_books_pass_through();
	test_requested_above_resident_clamps_ratio_and_free_to_zero();
	test_passive_mode_leaves_call_numbers_unknown();
	test_zero_denominators_give_unknown_ratios_and_known_bytes();
	test_total_is_unknown_unless_every_part_is_known();
	test_allocated_below_requested_never_wraps();
	test_peaks_move_forward_and_keep_the_time_first_reached();
	test_identity_and_arenas_are_left_alone();
	test_snapshot_init_makes_everything_unknown();
	test_names();
	return hf_test_done();
}
