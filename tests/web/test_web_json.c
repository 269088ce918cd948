// SPDX-License-Identifier: MIT
/*
 * test_web_json.c - the per-process JSON document: every key the
 * tracing-core issue fixes, values where known, null where not; the
 * /latency and /libptm documents likewise.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"
#include "history.h"
#include "web.h"

/* Every key path of GET /api/v1/processes/{pid}, as issue 3 lists them. */
static const char *const doc_keys[] = {
	"pid",
	"start_time",
	"comm",
	"exe",
	"cgroup",
	"pod_uid",
	"container_id",
	"state",
	"mode",
	"allocator.name",
	"allocator.path",
	"allocator.build_id",
	"tracing.since",
	"tracing.dropped_events",
	"tracing.live_map_entries",
	"counters.malloc",
	"counters.calloc",
	"counters.realloc",
	"counters.free",
	"counters.memalign",
	"counters.failed",
	"counters.brk",
	"counters.mmap",
	"counters.munmap",
	"counters.mremap",
	"counters.madvise",
	"heap.live_allocations",
	"heap.requested_bytes",
	"heap.allocated_bytes",
	"heap.mapped_bytes.brk",
	"heap.mapped_bytes.arena",
	"heap.mapped_bytes.mmap",
	"heap.mapped_bytes.total",
	"heap.resident_bytes",
	"heap.free_bytes",
	"heap.released_bytes",
	"heap.process_rss_bytes",
	"heap.peak.requested_bytes.value",
	"heap.peak.requested_bytes.at",
	"heap.peak.allocated_bytes.value",
	"heap.peak.resident_bytes.value",
	"heap.peak.live_allocations.value",
	"fragmentation.ratio",
	"fragmentation.internal_ratio",
	"fragmentation.external_ratio",
	"fragmentation.internal_bytes",
	"fragmentation.external_bytes",
	"fragmentation.largest_free_chunk_bytes",
	"fragmentation.free_chunks",
	"histogram.requests",
	"histogram.live",
	"arenas",
};
#define NR_KEYS (sizeof(doc_keys) / sizeof(doc_keys[0]))

/* Follows a dotted path; NULL when a key is missing. */
static json_t *at(json_t *doc, const char *path)
{
	char buf[128], *save = NULL;
	json_t *j = doc;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = json_object_get(j, k);
	return j;
}

static json_int_t int_at(json_t *doc, const char *path)
{
	json_t *j = at(doc, path);

	CHECK_MSG(json_is_integer(j), "%s is not an integer", path);
	return json_integer_value(j);
}

static void test_known_snapshot_has_every_key_with_its_value(void)
{
	static struct hf_snapshot s;
	json_t *doc, *req;

	fixture_exact(&s, 4242, "worker");
	doc = hf_json_process(&s, NULL);
	CHECK(doc != NULL);
	for (size_t i = 0; i < NR_KEYS; i++)
		CHECK_MSG(at(doc, doc_keys[i]) != NULL, "missing %s", doc_keys[i]);
	CHECK_EQ_U64(int_at(doc, "pid"), 4242);
	CHECK_STR_EQ(json_string_value(at(doc, "comm")), "worker");
	CHECK_STR_EQ(json_string_value(at(doc, "exe")), "/usr/bin/worker");
	CHECK_STR_EQ(json_string_value(at(doc, "state")), "running");
	CHECK_STR_EQ(json_string_value(at(doc, "mode")), "exact");
	CHECK_STR_EQ(json_string_value(at(doc, "allocator.name")), "glibc");
	CHECK_STR_EQ(json_string_value(at(doc, "allocator.build_id")), "abcdef0123");
	CHECK(json_real_value(at(doc, "start_time")) == 1700000000.5);
	CHECK(json_real_value(at(doc, "tracing.since")) == 1700000001.25);
	CHECK_EQ_U64(int_at(doc, "tracing.dropped_events"), 3);
	CHECK_EQ_U64(int_at(doc, "counters.malloc"), 1001);
	CHECK_EQ_U64(int_at(doc, "counters.memalign"), 1005);
	CHECK_EQ_U64(int_at(doc, "counters.madvise"), 1011);
	CHECK_EQ_U64(int_at(doc, "heap.requested_bytes"), 2002);
	CHECK_EQ_U64(int_at(doc, "heap.mapped_bytes.total"), 2004 + 2005 + 2006);
	CHECK_EQ_U64(int_at(doc, "heap.process_rss_bytes"), 2010);
	CHECK_EQ_U64(int_at(doc, "heap.peak.live_allocations.value"), 3004);
	CHECK(json_real_value(at(doc, "heap.peak.live_allocations.at")) == 1700000005.0);
	CHECK(json_real_value(at(doc, "fragmentation.ratio")) == 0.25);
	CHECK(json_real_value(at(doc, "fragmentation.internal_ratio")) == 0.125);
	CHECK_EQ_U64(int_at(doc, "fragmentation.external_bytes"), 4002);
	/* Not known for glibc: null, not 0. */
	CHECK(json_is_null(at(doc, "fragmentation.largest_free_chunk_bytes")));
	CHECK(json_is_null(at(doc, "fragmentation.free_chunks")));

	/* Per-bucket counts, le 16, 32, ... and null for the last. */
	req = at(doc, "histogram.requests");
	CHECK(json_is_array(req) && json_array_size(req) == HF_HIST_BUCKETS);
	for (size_t i = 0; i < json_array_size(req); i++) {
		json_t *b = json_array_get(req, i);

		CHECK_EQ_U64(json_integer_value(json_object_get(b, "count")), i % 3);
		if (i < HF_HIST_BUCKETS - 1)
			CHECK_EQ_U64(json_integer_value(json_object_get(b, "le")), 16ull << i);
		else
			CHECK(json_is_null(json_object_get(b, "le")));
	}
	CHECK_EQ_U64(json_integer_value(json_object_get(
			     json_array_get(at(doc, "histogram.live"), 1), "count")),
		     1);
	CHECK(json_is_array(at(doc, "arenas")) && json_array_size(at(doc, "arenas")) == 0);
	json_decref(doc);
}

static void test_unknown_values_are_null(void)
{
	static struct hf_snapshot s;
	json_t *doc;

	hf_snapshot_init(&s);
	s.pid = 17;
	doc = hf_json_process(&s, NULL);
	CHECK(doc != NULL);
	for (size_t i = 0; i < NR_KEYS; i++) {
		const char *k = doc_keys[i];
		json_t *j = at(doc, k);

		CHECK_MSG(j != NULL, "missing %s", k);
		/* Identity is always known; arenas are an (empty) list. */
		if (!strcmp(k, "pid") || !strcmp(k, "comm") || !strcmp(k, "state") ||
		    !strcmp(k, "mode") || !strcmp(k, "allocator.name") || !strcmp(k, "arenas"))
			continue;
		CHECK_MSG(json_is_null(j), "%s is not null", k);
	}
	CHECK_STR_EQ(json_string_value(at(doc, "allocator.name")), "unknown");
	json_decref(doc);
}

static void test_nan_and_infinite_ratios_are_null(void)
{
	static struct hf_snapshot s;
	json_t *doc;
	char *text;

	fixture_exact(&s, 5, "x");
	s.fragmentation.ratio = NAN;
	s.fragmentation.internal_ratio = INFINITY;
	doc = hf_json_process(&s, NULL);
	CHECK(json_is_null(at(doc, "fragmentation.ratio")));
	CHECK(json_is_null(at(doc, "fragmentation.internal_ratio")));
	CHECK(json_real_value(at(doc, "fragmentation.external_ratio")) == 0.5);
	/* And the text is valid JSON: jansson refuses to write NaN, so it must not be there. */
	text = json_dumps(doc, JSON_COMPACT);
	CHECK(text && strstr(text, "\"ratio\":null"));
	free(text);
	json_decref(doc);
}

static void test_passive_mode_has_null_histograms_and_calls(void)
{
	static struct hf_snapshot s;
	json_t *doc, *h;

	fixture_passive(&s, 6, "p");
	doc = hf_json_process(&s, NULL);
	CHECK(json_is_null(at(doc, "histogram.requests")));
	CHECK(json_is_null(at(doc, "histogram.live")));
	CHECK(json_is_null(at(doc, "counters.malloc")));
	CHECK_EQ_U64(int_at(doc, "counters.brk"), 7);
	CHECK_STR_EQ(json_string_value(at(doc, "mode")), "passive");
	h = hf_json_histograms(&s);
	CHECK(json_is_null(json_object_get(h, "requests")));
	json_decref(h);
	json_decref(doc);
}

static void test_arenas_are_listed_with_hex_addresses(void)
{
	static struct hf_snapshot s;
	json_t *arr, *a;

	fixture_exact(&s, 8, "t");
	s.nr_arenas = 2;
	s.arenas[0] = (struct hf_arena){.address = 0x7f0012345670,
					.kind = HF_ARENA_MAIN,
					.heaps = 1,
					.mapped_bytes = 135168,
					.threads = 3,
					.lock = {.acquisitions = HF_UNKNOWN,
						 .contended = 12,
						 .wait_seconds = 0.5,
						 .max_wait_seconds = NAN}};
	s.arenas[1] = (struct hf_arena){.address = 0x7e0000000020,
					.kind = HF_ARENA_THREAD,
					.heaps = 2,
					.mapped_bytes = HF_UNKNOWN,
					.threads = 1,
					.lock = {.acquisitions = 5,
						 .contended = 0,
						 .wait_seconds = 0,
						 .max_wait_seconds = 0}};
	arr = hf_json_arenas(&s);
	CHECK(json_array_size(arr) == 2);
	a = json_array_get(arr, 0);
	CHECK_STR_EQ(json_string_value(json_object_get(a, "arena")), "0x7f0012345670");
	CHECK_STR_EQ(json_string_value(json_object_get(a, "kind")), "main");
	CHECK_EQ_U64(json_integer_value(json_object_get(a, "threads")), 3);
	CHECK(json_is_null(at(a, "lock.acquisitions")));
	CHECK_EQ_U64(json_integer_value(at(a, "lock.contended")), 12);
	CHECK(json_real_value(at(a, "lock.wait_seconds")) == 0.5);
	CHECK(json_is_null(at(a, "lock.max_wait_seconds")));
	a = json_array_get(arr, 1);
	CHECK_STR_EQ(json_string_value(json_object_get(a, "kind")), "thread");
	CHECK(json_is_null(json_object_get(a, "mapped_bytes")));
	json_decref(arr);
}

static void test_summary_has_identity_and_headline_numbers(void)
{
	static struct hf_snapshot s;
	json_t *doc;

	fixture_exact(&s, 99, "svc");
	doc = hf_json_process_summary(&s);
	CHECK_EQ_U64(int_at(doc, "pid"), 99);
	CHECK_STR_EQ(json_string_value(at(doc, "allocator")), "glibc");
	CHECK_STR_EQ(json_string_value(at(doc, "state")), "running");
	CHECK(json_is_real(at(doc, "start_time")));
	CHECK_EQ_U64(int_at(doc, "heap.requested_bytes"), 2002);
	CHECK_EQ_U64(int_at(doc, "heap.mapped_bytes.total"), 2004 + 2005 + 2006);
	CHECK_EQ_U64(int_at(doc, "heap.free_bytes"), 2008);
	CHECK(json_real_value(at(doc, "fragmentation.ratio")) == 0.25);
	json_decref(doc);
}

static void test_non_utf8_names_still_make_valid_json(void)
{
	static struct hf_snapshot s;
	json_t *doc;

	fixture_exact(&s, 3, "x");
	snprintf(s.comm, sizeof(s.comm), "bad\xff\xfe");
	doc = hf_json_process(&s, NULL);
	CHECK(doc != NULL);
	CHECK_STR_EQ(json_string_value(at(doc, "comm")), "bad??");
	json_decref(doc);
}

static void test_latency_document_has_per_bucket_counts_in_seconds(void)
{
	static struct hf_snapshot s;
	static const char *const ops[] = {"malloc", "calloc", "realloc", "memalign"};
	json_t *doc, *calls;
	char *text;

	fixture_libptm(&s, 812, "lat");
	doc = hf_json_latency(&s);
	CHECK(doc != NULL);
	CHECK_EQ_U64(int_at(doc, "pid"), 812);
	CHECK(json_real_value(at(doc, "start_time")) == 1700000000.5);
	CHECK_STR_EQ(json_string_value(at(doc, "mode")), "exact");
	calls = at(doc, "calls");
	CHECK(json_is_object(calls) && json_object_size(calls) == 5);
	CHECK(json_is_null(json_object_get(calls, "free")));
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		json_t *op = json_object_get(calls, ops[k]);
		json_t *buckets = json_object_get(op, "buckets");
		uint64_t total = 0;

		CHECK_MSG(json_is_object(op), "calls.%s is not an object", ops[k]);
		CHECK_EQ_U64(json_integer_value(json_object_get(op, "count")), 36 * (k + 1));
		CHECK(json_real_value(json_object_get(op, "sum_seconds")) ==
		      (double)(1000000 * (k + 1) + 5) / 1e9);
		CHECK(json_is_array(buckets) && json_array_size(buckets) == HF_LAT_BUCKETS);
		for (size_t i = 0; i < json_array_size(buckets); i++) {
			json_t *b = json_array_get(buckets, i);
			json_t *le = json_object_get(b, "le");

			/* Per bucket, like the size histograms: bucket i holds (k + 1) * (i % 4).
			 */
			CHECK_EQ_U64(json_integer_value(json_object_get(b, "count")),
				     (k + 1) * (i % 4));
			total += (uint64_t)json_integer_value(json_object_get(b, "count"));
			if (i < HF_LAT_BUCKETS - 1)
				CHECK_MSG(json_is_real(le) &&
						  json_real_value(le) == (256.0 * (1u << i)) / 1e9,
					  "%s bucket %zu: le %g", ops[k], i, json_real_value(le));
			else
				CHECK(json_is_null(le));
		}
		CHECK_EQ_U64(total, json_integer_value(json_object_get(op, "count")));
	}
	CHECK(json_real_value(json_object_get(json_array_get(at(doc, "calls.malloc.buckets"), 0),
					      "le")) == 2.56e-07);
	CHECK(json_real_value(json_object_get(
		      json_array_get(at(doc, "calls.malloc.buckets"), HF_LAT_BUCKETS - 2), "le")) ==
	      1.073741824);
	text = json_dumps(doc, JSON_COMPACT);
	CHECK(text && strstr(text, "\"free\":null"));
	free(text);
	json_decref(doc);
}

static void test_latency_ops_are_null_when_calls_are_not_timed(void)
{
	static struct hf_snapshot s;
	static const char *const ops[] = {"malloc", "calloc", "realloc", "memalign", "free"};
	json_t *doc;

	/* Passive mode times nothing, even with zeros in the structs. */
	fixture_passive(&s, 813, "p");
	doc = hf_json_latency(&s);
	CHECK(doc != NULL);
	CHECK_EQ_U64(int_at(doc, "pid"), 813);
	CHECK_STR_EQ(json_string_value(at(doc, "mode")), "passive");
	CHECK(json_object_size(at(doc, "calls")) == 5);
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		json_t *op = json_object_get(at(doc, "calls"), ops[k]);

		CHECK_MSG(op && json_is_null(op), "calls.%s is not null", ops[k]);
	}
	json_decref(doc);

	/* Exact mode before the daemon times calls: also null, not zeros. */
	fixture_exact(&s, 814, "e");
	doc = hf_json_latency(&s);
	CHECK_STR_EQ(json_string_value(at(doc, "mode")), "exact");
	CHECK(json_is_null(at(doc, "calls.malloc")));
	CHECK(json_is_null(at(doc, "calls.memalign")));
	json_decref(doc);

	/* An unknown start time is null too. */
	hf_snapshot_init(&s);
	s.pid = 815;
	doc = hf_json_latency(&s);
	CHECK(json_is_null(at(doc, "start_time")));
	json_decref(doc);
}

static void test_libptm_document_matches_the_snapshot(void)
{
	static struct hf_snapshot s;
	json_t *doc, *by_size;

	fixture_libptm(&s, 816, "ptm");
	doc = hf_json_libptm(&s);
	CHECK_EQ_U64(int_at(doc, "events.heap_grow_bytes"), 5001);
	CHECK_EQ_U64(int_at(doc, "events.trims"), 5007);
	CHECK_EQ_U64(int_at(doc, "sampled_heap.live_bytes"), 465000);
	CHECK_EQ_U64(int_at(doc, "sampled_heap.dropped"), 6003);
	by_size = at(doc, "sampled_heap.live_bytes_by_size");
	CHECK(json_array_size(by_size) == HF_HIST_BUCKETS);
	CHECK_EQ_U64(json_integer_value(json_object_get(json_array_get(by_size, 2), "bytes")),
		     3000);
	json_decref(doc);
}

static void test_history_point_names_fields_and_nulls_the_unknown(void)
{
	static struct hf_snapshot s;
	struct hf_history_point p;
	json_t *j;

	fixture_passive(&s, 7, "hist");
	s.heap.resident_bytes = 4096;
	s.fragmentation.external_ratio = NAN;
	hf_history_point_of(&s, 1700000000.5, &p);
	j = hf_json_history_point(&p);
	CHECK(j != NULL);
	CHECK(json_number_value(json_object_get(j, "at")) == 1700000000.5);
	CHECK(json_integer_value(json_object_get(j, "heap.resident_bytes")) == 4096);
	CHECK(json_is_null(json_object_get(j, "heap.requested_bytes")));
	CHECK(json_is_null(json_object_get(j, "fragmentation.external_ratio")));
	CHECK(json_is_null(json_object_get(j, "census.pages.pinned_free_bytes")));
	CHECK_EQ_U64(json_object_size(j), 1 + HF_HISTORY_FIELDS + HF_HISTORY_RATIOS);
	json_decref(j);
}

/* cgroup, pod_uid and container_id: null where unknown, the names as parsed where known. */
static void test_cgroup_and_kubernetes_names(void)
{
	static const char text[] = "0::/kubepods/burstable/pod6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5a/"
				   "4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
				   "/x\"\xff\n";
	static struct hf_snapshot s;
	json_t *doc, *sum;

	fixture_exact(&s, 5, "k");
	doc = hf_json_process(&s, NULL);
	CHECK(json_is_null(at(doc, "cgroup")) && json_is_null(at(doc, "pod_uid")) &&
	      json_is_null(at(doc, "container_id")));
	json_decref(doc);
	CHECK(hf_cgroup_parse(text, sizeof(text) - 1, &s.cgroup) == 0);
	doc = hf_json_process(&s, NULL);
	sum = hf_json_process_summary(&s);
	CHECK_STR_EQ(json_string_value(at(doc, "cgroup")),
		     "/kubepods/burstable/pod6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5a/"
		     "4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c/x\"?");
	CHECK_STR_EQ(json_string_value(at(doc, "pod_uid")), "6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5a");
	CHECK_STR_EQ(json_string_value(at(doc, "container_id")),
		     "4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c");
	CHECK(json_equal(at(doc, "cgroup"), at(sum, "cgroup")));
	CHECK(json_equal(at(doc, "pod_uid"), at(sum, "pod_uid")));
	CHECK(json_equal(at(doc, "container_id"), at(sum, "container_id")));
	json_decref(doc);
	json_decref(sum);
}

int main(void)
{
	test_history_point_names_fields_and_nulls_the_unknown();
	test_known_snapshot_has_every_key_with_its_value();
	test_unknown_values_are_null();
	test_nan_and_infinite_ratios_are_null();
	test_passive_mode_has_null_histograms_and_calls();
	test_arenas_are_listed_with_hex_addresses();
	test_summary_has_identity_and_headline_numbers();
	test_non_utf8_names_still_make_valid_json();
	test_latency_document_has_per_bucket_counts_in_seconds();
	test_latency_ops_are_null_when_calls_are_not_timed();
	test_libptm_document_matches_the_snapshot();
	test_cgroup_and_kubernetes_names();
	return hf_test_done();
}
