// SPDX-License-Identifier: MIT
/*
 * doctor_unit: each rule of doctor.h fires on a snapshot that crosses its
 * thresholds, stays silent just below them, and never fires on unknown
 * values; a healthy process gets no finding at all.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "doctor.h"
#include "snapshot_fixture.h"

#define NOW 1800000000.0
#define MiB (1ull << 20)

static struct hf_finding found[HF_FINDING_COUNT];

static size_t run(const struct hf_snapshot *s)
{
	memset(found, 0, sizeof(found));
	return hf_doctor(s, NOW, found, HF_FINDING_COUNT);
}

static bool has(size_t n, enum hf_finding_kind kind)
{
	for (size_t i = 0; i < n; i++)
		if (found[i].kind == kind)
			return true;
	return false;
}

/* A glibc process in exact mode, traced for 100 s, with nothing wrong. */
static void healthy(struct hf_snapshot *s)
{
	snapshot_unknown(s);
	s->allocator.kind = HF_ALLOC_GLIBC;
	s->tracing.since = NOW - 100;
	s->tracing.dropped_events = 0;
	s->tracing.live_map_entries = 20000;
	memset(&s->counters, 0, sizeof(s->counters));
	s->counters.malloc = 1000000;
	s->counters.free = 980000;
	s->counters.mmap = 10;
	s->counters.munmap = 8;
	s->heap.requested_bytes = 90 * MiB;
	s->heap.allocated_bytes = 96 * MiB;
	s->heap.resident_bytes = 100 * MiB;
	s->heap.free_bytes = 4 * MiB;
	s->fragmentation.ratio = 0.10;
	s->fragmentation.internal_ratio = 6.0 / 96;
	s->fragmentation.internal_bytes = 6 * MiB;
	s->fragmentation.external_ratio = 0.04;
	s->fragmentation.external_bytes = 4 * MiB;
	s->histogram_known = true;
	s->histogram.live[6] = 20000; /* 1 KiB blocks */
	s->histogram.requests[6] = 1000000;
	s->nr_arenas = 2;
	s->arenas[0] = (struct hf_arena){.address = 0x7f0000001c60,
					 .kind = HF_ARENA_MAIN,
					 .heaps = 1,
					 .mapped_bytes = 100 * MiB,
					 .threads = 1,
					 .lock = {HF_UNKNOWN, 12, 0.001, 0.0002}};
	s->arenas[1] = (struct hf_arena){.address = 0x7f1000000030,
					 .kind = HF_ARENA_THREAD,
					 .heaps = 1,
					 .mapped_bytes = MiB,
					 .threads = 1,
					 .lock = {HF_UNKNOWN, 0, 0, 0}};
}

static void test_healthy_has_no_finding(void)
{
	static struct hf_snapshot s;

	healthy(&s);
	CHECK_EQ_U64(run(&s), 0);
	/* Nothing known at all: nothing to say either. */
	snapshot_unknown(&s);
	CHECK_EQ_U64(run(&s), 0);
}

static void test_external_fragmentation(void)
{
	static struct hf_snapshot s;
	size_t n;

	/* The seed's incident: 100 MB resident, 10 MB of it live. */
	healthy(&s);
	s.heap.requested_bytes = 10 * MiB;
	s.heap.allocated_bytes = 10 * MiB + MiB / 2;
	s.heap.free_bytes = 90 * MiB - MiB / 2;
	s.fragmentation.internal_ratio = 0.5 / 10.5;
	s.fragmentation.internal_bytes = MiB / 2;
	s.fragmentation.external_bytes = s.heap.free_bytes;
	s.fragmentation.external_ratio = (double)s.heap.free_bytes / (double)(100 * MiB);
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(found[0].kind == HF_FINDING_EXTERNAL_FRAGMENTATION);
	CHECK_STR_EQ(hf_finding_name(found[0].kind), "external_fragmentation");
	/* The sentence carries the numbers and the remedies. */
	CHECK(strstr(found[0].text, "89.5 MiB") != NULL);
	CHECK(strstr(found[0].text, "100.0 MiB") != NULL);
	CHECK(strstr(found[0].text, "(89%)") != NULL || strstr(found[0].text, "(90%)") != NULL);
	CHECK(strstr(found[0].text, "malloc_trim") != NULL);
	CHECK(strstr(found[0].text, "MALLOC_TRIM_THRESHOLD_") != NULL);
	CHECK(strstr(found[0].text, "libptm") != NULL);
	CHECK(strstr(found[0].text, "1024 bytes") != NULL); /* the hot size */

	/* Just under the ratio, or a small heap: no finding. */
	s.fragmentation.external_ratio = HF_DOCTOR_EXT_FRAG_RATIO - 0.001;
	CHECK(!has(run(&s), HF_FINDING_EXTERNAL_FRAGMENTATION));
	s.fragmentation.external_ratio = 0.9;
	s.fragmentation.external_bytes = HF_DOCTOR_EXT_FRAG_MIN_BYTES - 1;
	CHECK(!has(run(&s), HF_FINDING_EXTERNAL_FRAGMENTATION));
	s.fragmentation.external_bytes = HF_DOCTOR_EXT_FRAG_MIN_BYTES;
	CHECK(has(run(&s), HF_FINDING_EXTERNAL_FRAGMENTATION));
	/* Unknown ratio or bytes: no finding. */
	s.fragmentation.external_ratio = NAN;
	CHECK(!has(run(&s), HF_FINDING_EXTERNAL_FRAGMENTATION));
	s.fragmentation.external_ratio = 0.9;
	s.fragmentation.external_bytes = HF_UNKNOWN;
	CHECK(!has(run(&s), HF_FINDING_EXTERNAL_FRAGMENTATION));
}

static void test_arena_contention(void)
{
	static struct hf_snapshot s;
	size_t n;

	/* 5000 waits, 3 s blocked in 100 s: 3 % of the time. */
	healthy(&s);
	s.nr_arenas = 1;
	s.arenas[0].threads = 8;
	s.arenas[0].lock = (struct hf_arena_lock){HF_UNKNOWN, 5000, 3.0, 0.05};
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(found[0].kind == HF_FINDING_ARENA_CONTENTION);
	CHECK(strstr(found[0].text, "5000 contended") != NULL);
	CHECK(strstr(found[0].text, "3.000 s") != NULL);
	CHECK(strstr(found[0].text, "8 threads") != NULL);
	CHECK(strstr(found[0].text, "MALLOC_ARENA_MAX") != NULL);
	CHECK(strstr(found[0].text, "per-thread pools") != NULL);
	CHECK(strstr(found[0].text, "50.0 ms") != NULL);

	/* Many waits but short ones (0.5 % of the time): no finding. */
	s.arenas[0].lock.wait_seconds = 0.5;
	CHECK(!has(run(&s), HF_FINDING_ARENA_CONTENTION));
	/* Long waits but too few of them to be evidence. */
	s.arenas[0].lock =
		(struct hf_arena_lock){HF_UNKNOWN, HF_DOCTOR_CONTENTION_MIN_WAITS - 1, 30.0, 1.0};
	CHECK(!has(run(&s), HF_FINDING_ARENA_CONTENTION));
	/* The sum over arenas counts: two arenas of 60 waits each. */
	s.nr_arenas = 2;
	s.arenas[0].lock = (struct hf_arena_lock){HF_UNKNOWN, 60, 1.0, 0.1};
	s.arenas[1].lock = (struct hf_arena_lock){HF_UNKNOWN, 60, 2.0, 0.2};
	n = run(&s);
	CHECK(has(n, HF_FINDING_ARENA_CONTENTION));
	CHECK(n > 0 && strstr(found[0].text, "thread arena at 0x7f1000000030") != NULL);
	/* Unknown contention (passive mode, non-glibc): no finding. */
	s.arenas[0].lock = (struct hf_arena_lock){HF_UNKNOWN, HF_UNKNOWN, NAN, NAN};
	s.arenas[1].lock = (struct hf_arena_lock){HF_UNKNOWN, HF_UNKNOWN, NAN, NAN};
	CHECK(!has(run(&s), HF_FINDING_ARENA_CONTENTION));
	/* No start time: no rate, no finding. */
	s.arenas[0].lock = (struct hf_arena_lock){HF_UNKNOWN, 5000, 3.0, 0.05};
	s.tracing.since = NAN;
	CHECK(!has(run(&s), HF_FINDING_ARENA_CONTENTION));
}

static void test_mmap_churn(void)
{
	static struct hf_snapshot s;
	size_t n;

	/* 20000 of 1000000 allocations went through mmap and came back. */
	healthy(&s);
	s.counters.mmap = 20000;
	s.counters.munmap = 19990;
	s.histogram.requests[14] = 20000; /* 256 KiB */
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(found[0].kind == HF_FINDING_MMAP_CHURN);
	CHECK(strstr(found[0].text, "20000 mmap") != NULL);
	CHECK(strstr(found[0].text, "M_MMAP_THRESHOLD") != NULL);
	CHECK(strstr(found[0].text, "MALLOC_MMAP_THRESHOLD_") != NULL);
	CHECK(strstr(found[0].text, "256.0 KiB") != NULL);
	CHECK(strstr(found[0].text, "MALLOC_MMAP_THRESHOLD_=262144") != NULL);

	/* Mapped and kept (few munmaps) is not churn. */
	s.counters.munmap = 100;
	CHECK(!has(run(&s), HF_FINDING_MMAP_CHURN));
	/* A few large blocks among many calls is not churn. */
	s.counters.munmap = 5000;
	s.counters.mmap = 5000;
	s.counters.malloc = 10000000;
	CHECK(!has(run(&s), HF_FINDING_MMAP_CHURN));
	/* Passive mode: no call counts, no finding. */
	s.counters.malloc = HF_UNKNOWN;
	s.counters.mmap = 20000;
	s.counters.munmap = 20000;
	CHECK(!has(run(&s), HF_FINDING_MMAP_CHURN));
}

static void test_internal_fragmentation(void)
{
	static struct hf_snapshot s;
	size_t n;

	/* 24-byte requests in 32-byte chunks... at scale: 40 of 100 MiB is overhead. */
	healthy(&s);
	s.heap.requested_bytes = 60 * MiB;
	s.heap.allocated_bytes = 100 * MiB;
	s.fragmentation.internal_ratio = 0.40;
	s.fragmentation.internal_bytes = 40 * MiB;
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(found[0].kind == HF_FINDING_INTERNAL_FRAGMENTATION);
	CHECK(strstr(found[0].text, "40.0 MiB") != NULL);
	CHECK(strstr(found[0].text, "size classes") != NULL);
	CHECK(strstr(found[0].text, "1024 bytes") != NULL);
	s.fragmentation.internal_ratio = HF_DOCTOR_INT_FRAG_RATIO - 0.01;
	CHECK(!has(run(&s), HF_FINDING_INTERNAL_FRAGMENTATION));
	s.fragmentation.internal_ratio = NAN;
	CHECK(!has(run(&s), HF_FINDING_INTERNAL_FRAGMENTATION));
	/* Without a histogram the sentence names no size. */
	s.fragmentation.internal_ratio = 0.40;
	s.histogram_known = false;
	n = run(&s);
	CHECK(has(n, HF_FINDING_INTERNAL_FRAGMENTATION));
	CHECK(n > 0 && strstr(found[0].text, "at most") == NULL);
}

static void test_dropped_events(void)
{
	static struct hf_snapshot s;
	size_t n;

	healthy(&s);
	s.tracing.dropped_events = 1234;
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(found[0].kind == HF_FINDING_DROPPED_EVENTS);
	CHECK(strstr(found[0].text, "1234 events") != NULL);
	CHECK(strstr(found[0].text, "--max-live") != NULL);
	s.tracing.dropped_events = HF_UNKNOWN;
	CHECK_EQ_U64(run(&s), 0);
}

static void test_order_and_limit(void)
{
	static struct hf_snapshot s;
	struct hf_finding two[2];
	size_t n;

	/* Everything wrong at once: all five, in the enum's order. */
	healthy(&s);
	s.fragmentation.external_ratio = 0.5;
	s.fragmentation.external_bytes = 50 * MiB;
	s.arenas[0].lock = (struct hf_arena_lock){HF_UNKNOWN, 5000, 3.0, 0.05};
	s.counters.mmap = 20000;
	s.counters.munmap = 20000;
	s.fragmentation.internal_ratio = 0.4;
	s.fragmentation.internal_bytes = 40 * MiB;
	s.tracing.dropped_events = 1;
	n = run(&s);
	CHECK_EQ_U64(n, HF_FINDING_COUNT);
	for (size_t i = 0; i < n; i++)
		CHECK(found[i].kind == (enum hf_finding_kind)i);
	/* The caller's room is respected. */
	CHECK_EQ_U64(hf_doctor(&s, NOW, two, 2), 2);
	CHECK(two[1].kind == HF_FINDING_ARENA_CONTENTION);
}

int main(void)
{
	test_healthy_has_no_finding();
	test_external_fragmentation();
	test_arena_contention();
	test_mmap_churn();
	test_internal_fragmentation();
	test_dropped_events();
	test_order_and_limit();
	return hf_test_done();
}
