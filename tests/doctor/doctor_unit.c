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

/* The seed's incident as a complete census sees it: 100 MiB resident, 55 MiB releasable. */
static void census_incident(struct hf_snapshot *s)
{
	struct hf_census_totals *t = &s->census.total;

	healthy(s);
	s->census.state = HF_CENSUS_COMPLETE;
	s->census.complete = true;
	s->census.walked = true;
	memset(t, 0, sizeof(*t));
	t->system_bytes = 100 * MiB;
	t->in_use.bytes = 10 * MiB;
	t->free.bytes = 90 * MiB;
	t->resident_bytes = 100 * MiB;
	t->releasable_bytes = 55 * MiB;
	t->releasable_top_bytes = 0;
	t->pinned_bytes = 45 * MiB;
	t->pinned_free_bytes = 35 * MiB;
	t->pinned_in_use_bytes = 10 * MiB;
}

static void test_releasable_and_pinned(void)
{
	static struct hf_snapshot s;
	size_t n;

	census_incident(&s);
	n = run(&s);
	CHECK_EQ_U64(n, 2);
	CHECK(n == 2 && found[0].kind == HF_FINDING_RELEASABLE_FREE_MEMORY);
	CHECK(n == 2 && found[1].kind == HF_FINDING_PINNED_FRAGMENTATION);
	CHECK(strstr(found[0].text, "55.0 MiB of the 100.0 MiB") != NULL);
	CHECK(strstr(found[0].text, "malloc_trim(0)") != NULL);
	CHECK(strstr(found[0].text, "MALLOC_TRIM_THRESHOLD_ returns only the 0 bytes") != NULL);
	CHECK(strstr(found[1].text, "35.0 MiB of free space shares its pages with 10.0 MiB") != NULL);
	CHECK(strstr(found[1].text, "trimming cannot help") != NULL);

	/* Most of it at the top: the threshold is the remedy named first. */
	s.census.total.releasable_top_bytes = 40 * MiB;
	n = run(&s);
	CHECK(n >= 1 && strstr(found[0].text, "40.0 MiB of it is at the top") != NULL);
	/* libptm gives such pages back by itself. */
	s.allocator.kind = HF_ALLOC_LIBPTM;
	n = run(&s);
	CHECK(n >= 1 && strstr(found[0].text, "MALLOC_RELEASE_THRESHOLD_") != NULL);
	s.allocator.kind = HF_ALLOC_GLIBC;

	/* Below either threshold, in bytes or in share of resident: no finding. */
	s.census.total.releasable_bytes = HF_DOCTOR_RELEASABLE_MIN_BYTES - 1;
	s.census.total.pinned_free_bytes = HF_DOCTOR_PINNED_MIN_BYTES - 1;
	CHECK_EQ_U64(run(&s), 0);
	s.census.total.resident_bytes = 1000 * MiB;
	s.census.total.releasable_bytes = 99 * MiB;
	s.census.total.pinned_free_bytes = 99 * MiB;
	CHECK_EQ_U64(run(&s), 0);
	s.census.total.releasable_bytes = 100 * MiB;
	s.census.total.pinned_free_bytes = 100 * MiB;
	CHECK_EQ_U64(run(&s), 2);

	/* A partial or unavailable census says nothing, whatever numbers it left. */
	s.census.state = HF_CENSUS_PARTIAL;
	s.census.complete = false;
	CHECK_EQ_U64(run(&s), 0);
	s.census.state = HF_CENSUS_UNAVAILABLE;
	CHECK_EQ_U64(run(&s), 0);
}

static void test_allocator_caching(void)
{
	static struct hf_snapshot s;
	size_t n;

	census_incident(&s);
	s.census.total.releasable_bytes = 0;
	s.census.total.pinned_free_bytes = 0;
	s.census.total.tcache = (struct hf_census_count){6 * MiB, 60000};
	s.census.total.fastbins = (struct hf_census_count){3 * MiB, 40000};
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(n == 1 && found[0].kind == HF_FINDING_ALLOCATOR_CACHING);
	CHECK(strstr(found[0].text, "9.0 MiB of free chunks: 6.0 MiB in thread caches (60000 "
				    "chunks) and 3.0 MiB in fastbins (40000 chunks)") != NULL);
	CHECK(strstr(found[0].text, "glibc.malloc.tcache_count") != NULL);
	s.census.total.fastbins.bytes = HF_DOCTOR_CACHING_MIN_BYTES - 6 * MiB - 1;
	CHECK_EQ_U64(run(&s), 0);
}

static void trend(struct hf_snapshot *s, double span, uint64_t use0, uint64_t use1,
		  uint64_t free0, uint64_t free1)
{
	s->census.nr_trend = 3;
	s->census.trend[0] = (struct hf_census_point){NOW - span, use0, free0};
	s->census.trend[1] = (struct hf_census_point){NOW - span / 2, (use0 + use1) / 2,
						      (free0 + free1) / 2};
	s->census.trend[2] = (struct hf_census_point){NOW, use1, free1};
}

static void test_growth(void)
{
	static struct hf_snapshot s;
	size_t n;

	census_incident(&s);
	s.census.total.releasable_bytes = 0;
	s.census.total.pinned_free_bytes = 0;
	/* In-use bytes double in ten minutes, free bytes stay: leak-like. */
	trend(&s, 600, 64 * MiB, 128 * MiB, 8 * MiB, 9 * MiB);
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(n == 1 && found[0].kind == HF_FINDING_LEAK_LIKE_GROWTH);
	CHECK(strstr(found[0].text, "from 64.0 MiB to 128.0 MiB in 10.0 minutes") != NULL);
	/* Free bytes grow and in-use bytes stay: fragmentation. */
	trend(&s, 600, 64 * MiB, 66 * MiB, 8 * MiB, 80 * MiB);
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(n == 1 && found[0].kind == HF_FINDING_FRAGMENTATION_GROWTH);
	CHECK(strstr(found[0].text, "from 8.0 MiB to 80.0 MiB in 10.0 minutes") != NULL);
	/* Both grow alike: neither dominates, nothing is said. */
	trend(&s, 600, 64 * MiB, 128 * MiB, 64 * MiB, 128 * MiB);
	CHECK_EQ_U64(run(&s), 0);
	/* Too short a span, or too little growth: nothing. */
	trend(&s, HF_DOCTOR_GROWTH_MIN_SECONDS - 1, 64 * MiB, 128 * MiB, 8 * MiB, 8 * MiB);
	CHECK_EQ_U64(run(&s), 0);
	trend(&s, 600, 64 * MiB, 64 * MiB + HF_DOCTOR_GROWTH_MIN_BYTES - 1, 8 * MiB, 8 * MiB);
	CHECK_EQ_U64(run(&s), 0);
	/* 20 MiB on 1 GiB is under the share. */
	trend(&s, 600, 1024 * MiB, 1044 * MiB, 8 * MiB, 8 * MiB);
	CHECK_EQ_U64(run(&s), 0);
	/* One point is no trend. */
	s.census.nr_trend = 1;
	CHECK_EQ_U64(run(&s), 0);
}

/* One top site: 2 MiB of records pinning 30 MiB, seen first two minutes ago at 1 MiB. */
static void top_site(struct hf_snapshot *s)
{
	struct hf_top_site *t = &s->top_sites[0];

	s->sites_known = true;
	s->nr_top_sites = 1;
	memset(t, 0, sizeof(*t));
	t->id = 77;
	snprintf(t->name, sizeof(t->name), "make_record");
	snprintf(t->where, sizeof(t->where), "librec.so, records.c:12");
	t->live_bytes = 2 * MiB;
	t->live_allocations = 10000;
	t->pinned_free_bytes = 30 * MiB;
	t->allocations = 10000;
	t->frees = 0;
	t->base_at = NOW - 120;
	t->base_live_bytes = 1 * MiB;
	t->base_allocations = 5000;
	t->base_frees = 0;
}

static void test_sites(void)
{
	static struct hf_snapshot s;
	struct hf_top_site *t = &s.top_sites[0];
	size_t n;

	census_incident(&s);
	s.census.total.releasable_bytes = 0;
	s.census.total.pinned_free_bytes = 35 * MiB;
	s.census.total.resident_bytes = 1000 * MiB; /* under the pinned share: that rule is quiet */
	top_site(&s);
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(n == 1 && found[0].kind == HF_FINDING_PINNED_BY_SITE);
	CHECK(n == 1 && strstr(found[0].text, "make_record (librec.so, records.c:12): 2.0 MiB of "
					      "long-lived blocks pin 30.0 MiB of free pages") !=
				 NULL);
	/* At the thresholds: >= 8 MiB and >= 25% of the census's pinned free bytes. */
	t->pinned_free_bytes = 35 * MiB / 4;
	CHECK_EQ_U64(run(&s), 1);
	t->pinned_free_bytes = 35 * MiB / 4 - 1;
	CHECK_EQ_U64(run(&s), 0);
	s.census.total.pinned_free_bytes = 16 * MiB;
	t->pinned_free_bytes = HF_DOCTOR_SITE_PINNED_MIN_BYTES - 1;
	CHECK_EQ_U64(run(&s), 0);
	t->pinned_free_bytes = HF_UNKNOWN;
	CHECK_EQ_U64(run(&s), 0);
	t->pinned_free_bytes = 30 * MiB;
	s.census.state = HF_CENSUS_PARTIAL;
	CHECK_EQ_U64(run(&s), 0);
	s.census.state = HF_CENSUS_COMPLETE;
	s.sites_known = false;
	CHECK_EQ_U64(run(&s), 0);

	/* A site piling up blocks it never frees. */
	top_site(&s);
	t->pinned_free_bytes = 0;
	t->live_bytes = 40 * MiB;
	t->base_live_bytes = 20 * MiB;
	t->frees = 500;
	n = run(&s);
	CHECK_EQ_U64(n, 1);
	CHECK(n == 1 && found[0].kind == HF_FINDING_GROWING_SITE);
	CHECK(n == 1 && strstr(found[0].text, "make_record (librec.so, records.c:12): live bytes "
					      "went from 20.0 MiB to 40.0 MiB in 2.0 minutes, "
					      "with 500 frees for 5000 allocations") != NULL);
	/* Frees over 10% of the allocations in the window: churn, not a pile. */
	t->frees = 501;
	CHECK_EQ_U64(run(&s), 0);
	t->frees = 500;
	/* Too short a window, too little growth in bytes or in share: nothing. */
	t->base_at = NOW - HF_DOCTOR_SITE_GROWTH_SECONDS + 1;
	CHECK_EQ_U64(run(&s), 0);
	t->base_at = NOW - 120;
	t->live_bytes = t->base_live_bytes + HF_DOCTOR_SITE_GROWTH_MIN_BYTES - 1;
	CHECK_EQ_U64(run(&s), 0);
	t->base_live_bytes = 100 * MiB;
	t->live_bytes = 120 * MiB;
	CHECK_EQ_U64(run(&s), 0);
}

static void test_order_and_limit(void)
{
	static struct hf_snapshot s;
	struct hf_finding two[2];
	size_t n;

	/* Everything wrong at once: every finding, in the enum's order. */
	healthy(&s);
	s.fragmentation.external_ratio = 0.5;
	s.fragmentation.external_bytes = 50 * MiB;
	s.arenas[0].lock = (struct hf_arena_lock){HF_UNKNOWN, 5000, 3.0, 0.05};
	s.counters.mmap = 20000;
	s.counters.munmap = 20000;
	s.fragmentation.internal_ratio = 0.4;
	s.fragmentation.internal_bytes = 40 * MiB;
	s.tracing.dropped_events = 1;
	s.census.state = HF_CENSUS_COMPLETE;
	s.census.complete = true;
	memset(&s.census.total, 0, sizeof(s.census.total));
	s.census.total.resident_bytes = 100 * MiB;
	s.census.total.releasable_bytes = 40 * MiB;
	s.census.total.pinned_free_bytes = 30 * MiB;
	s.census.total.tcache.bytes = 10 * MiB;
	/* A top site that pins and grows. */
	top_site(&s);
	s.top_sites[0].live_bytes = 40 * MiB;
	s.top_sites[0].base_live_bytes = 20 * MiB;
	/* Leak-like and fragmentation growth exclude each other: the trend shows the first. */
	trend(&s, 600, 64 * MiB, 128 * MiB, 8 * MiB, 9 * MiB);
	n = run(&s);
	CHECK_EQ_U64(n, HF_FINDING_COUNT - 1);
	for (size_t i = 0; i < n; i++)
		CHECK(found[i].kind == (enum hf_finding_kind)(i < HF_FINDING_FRAGMENTATION_GROWTH
								      ? i
								      : i + 1));
	trend(&s, 600, 64 * MiB, 65 * MiB, 8 * MiB, 80 * MiB);
	n = run(&s);
	CHECK_EQ_U64(n, HF_FINDING_COUNT - 1);
	CHECK(n > 2 && found[n - 3].kind == HF_FINDING_FRAGMENTATION_GROWTH);
	CHECK(n > 2 && found[n - 1].kind == HF_FINDING_GROWING_SITE);
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
	test_releasable_and_pinned();
	test_allocator_caching();
	test_growth();
	test_sites();
	test_order_and_limit();
	return hf_test_done();
}
