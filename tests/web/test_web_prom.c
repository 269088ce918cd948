// SPDX-License-Identifier: MIT
/*
 * test_web_prom.c - the Prometheus text writer: HELP and TYPE for every
 * family, escaped label values, cumulative histogram buckets, and unknown
 * values left out rather than written as 0; libptm's events, its sampled
 * heap and the call-latency histogram only for processes that know them.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixtures.h"
#include "web.h"

static const struct {
	const char *name;
	const char *type;
} expected_families[] = {
	{"heapfrag_heap_requested_bytes", "gauge"},
	{"heapfrag_heap_allocated_bytes", "gauge"},
	{"heapfrag_heap_mapped_bytes", "gauge"},
	{"heapfrag_heap_resident_bytes", "gauge"},
	{"heapfrag_heap_free_bytes", "gauge"},
	{"heapfrag_fragmentation_ratio", "gauge"},
	{"heapfrag_internal_fragmentation_ratio", "gauge"},
	{"heapfrag_external_fragmentation_ratio", "gauge"},
	{"heapfrag_largest_free_chunk_bytes", "gauge"},
	{"heapfrag_free_chunks", "gauge"},
	{"heapfrag_live_allocations", "gauge"},
	{"heapfrag_allocator_calls_total", "counter"},
	{"heapfrag_failed_allocations_total", "counter"},
	{"heapfrag_heap_syscalls_total", "counter"},
	{"heapfrag_heap_released_bytes_total", "counter"},
	{"heapfrag_allocation_size_bytes", "histogram"},
	{"heapfrag_process_resident_bytes", "gauge"},
	{"heapfrag_libptm_heap_grow_bytes_total", "counter"},
	{"heapfrag_libptm_heap_shrink_bytes_total", "counter"},
	{"heapfrag_libptm_page_releases_total", "counter"},
	{"heapfrag_libptm_page_release_bytes_total", "counter"},
	{"heapfrag_libptm_arena_creates_total", "counter"},
	{"heapfrag_libptm_arena_reuses_total", "counter"},
	{"heapfrag_libptm_trims_total", "counter"},
	{"heapfrag_sampled_live_bytes", "gauge"},
	{"heapfrag_sampled_live_samples", "gauge"},
	{"heapfrag_sampled_samples_total", "counter"},
	{"heapfrag_sampled_dropped_total", "counter"},
	{"heapfrag_census_in_use_bytes", "gauge"},
	{"heapfrag_census_free_bytes", "gauge"},
	{"heapfrag_census_largest_free_chunk_bytes", "gauge"},
	{"heapfrag_census_resident_bytes", "gauge"},
	{"heapfrag_census_pinned_bytes", "gauge"},
	{"heapfrag_census_pinned_free_bytes", "gauge"},
	{"heapfrag_census_releasable_bytes", "gauge"},
	{"heapfrag_census_mmapped_bytes", "gauge"},
	{"heapfrag_census_timestamp_seconds", "gauge"},
	{"heapfrag_census_duration_seconds", "gauge"},
	{"heapfrag_census_walks_total", "counter"},
	{"heapfrag_census_partial_walks_total", "counter"},
	{"heapfrag_sampled_live_by_size_bytes", "gauge"},
	{"heapfrag_allocator_call_duration_seconds", "histogram"},
	{"heapfrag_arenas", "gauge"},
	{"heapfrag_arena_lock_contentions_total", "counter"},
	{"heapfrag_arena_lock_wait_seconds_total", "counter"},
	{"heapfrag_site_live_bytes", "gauge"},
	{"heapfrag_site_live_allocations", "gauge"},
	{"heapfrag_site_pinned_free_bytes", "gauge"},
	{"heapfrag_site_allocations_total", "counter"},
	{"heapfrag_site_frees_total", "counter"},
	{"heapfrag_tracked_processes", "gauge"},
	{"heapfrag_dropped_events_total", "counter"},
	{"heapfrag_bpf_map_entries", "gauge"},
	{"heapfrag_scrape_duration_seconds", "gauge"},
	{"heapfrag_build_info", "gauge"},
};
#define NR_FAMILIES (sizeof(expected_families) / sizeof(expected_families[0]))

static char *scrape(const struct hf_snapshot *snaps, size_t n, const struct hf_daemon_stats *st)
{
	struct hf_buf b = {0};

	CHECK(hf_prom_write(&b, snaps, n, st) == 0);
	CHECK(hf_prom_write_scrape_duration(&b, 0.00125) == 0);
	return hf_buf_take(&b, NULL);
}

static int count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The whole line that starts with prefix, or NULL. */
static const char *line_starting(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, n) == 0)
			return p;
	}
	return NULL;
}

static void test_every_family_has_help_and_type_even_with_no_process(void)
{
	struct hf_daemon_stats st = {0};
	char *text = scrape(NULL, 0, &st);
	char want[160];

	for (size_t i = 0; i < NR_FAMILIES; i++) {
		snprintf(want, sizeof(want), "# HELP %s ", expected_families[i].name);
		CHECK_MSG(count(text, want) == 1, "%s", want);
		snprintf(want, sizeof(want), "# TYPE %s %s\n", expected_families[i].name,
			 expected_families[i].type);
		CHECK_MSG(count(text, want) == 1, "%s", want);
	}
	CHECK_EQ_U64(count(text, "# TYPE "), NR_FAMILIES);
	CHECK(line_starting(text, "heapfrag_tracked_processes 0\n") != NULL);
	CHECK(line_starting(text, "heapfrag_build_info{version=\"" HF_VERSION "\"} 1\n") != NULL);
	CHECK(line_starting(text, "heapfrag_scrape_duration_seconds 0.00125\n") != NULL);
	free(text);
}

static void test_samples_carry_values_and_labels(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {.tracked_processes = 1};
	char *text;

	fixture_exact(&s, 42, "redis-server");
	text = scrape(&s, 1, &st);
	CHECK(line_starting(text, "heapfrag_heap_requested_bytes{pid=\"42\",comm=\"redis-server\"} "
				  "2002\n"));
	CHECK(line_starting(text, "heapfrag_heap_allocated_bytes{pid=\"42\",comm=\"redis-server\"} "
				  "2003\n"));
	CHECK(line_starting(text, "heapfrag_heap_mapped_bytes{pid=\"42\",comm=\"redis-server\","
				  "region=\"brk\"} 2004\n"));
	CHECK(line_starting(text, "heapfrag_heap_mapped_bytes{pid=\"42\",comm=\"redis-server\","
				  "region=\"arena\"} 2005\n"));
	CHECK(line_starting(text, "heapfrag_heap_mapped_bytes{pid=\"42\",comm=\"redis-server\","
				  "region=\"mmap\"} 2006\n"));
	CHECK(line_starting(text, "heapfrag_heap_resident_bytes{pid=\"42\",comm=\"redis-server\"} "
				  "2007\n"));
	CHECK(line_starting(text, "heapfrag_heap_free_bytes{pid=\"42\",comm=\"redis-server\"} "
				  "2008\n"));
	CHECK(line_starting(text, "heapfrag_fragmentation_ratio{pid=\"42\",comm=\"redis-server\"} "
				  "0.25\n"));
	CHECK(line_starting(text, "heapfrag_internal_fragmentation_ratio{pid=\"42\",comm=\"redis-"
				  "server\"} 0.125\n"));
	CHECK(line_starting(text, "heapfrag_external_fragmentation_ratio{pid=\"42\",comm=\"redis-"
				  "server\"} 0.5\n"));
	CHECK(line_starting(text, "heapfrag_live_allocations{pid=\"42\",comm=\"redis-server\"} "
				  "2001\n"));
	/* glibc's books are not readable: no sample, not 0. */
	CHECK(line_starting(text, "heapfrag_largest_free_chunk_bytes{pid=\"42\"") == NULL);
	CHECK(line_starting(text, "heapfrag_free_chunks{pid=\"42\"") == NULL);
	CHECK(line_starting(text, "heapfrag_allocator_calls_total{pid=\"42\",comm=\"redis-server\","
				  "op=\"malloc\"} 1001\n"));
	CHECK(line_starting(text, "heapfrag_allocator_calls_total{pid=\"42\",comm=\"redis-server\","
				  "op=\"calloc\"} 1002\n"));
	CHECK(line_starting(text, "heapfrag_allocator_calls_total{pid=\"42\",comm=\"redis-server\","
				  "op=\"realloc\"} 1003\n"));
	CHECK(line_starting(text, "heapfrag_allocator_calls_total{pid=\"42\",comm=\"redis-server\","
				  "op=\"free\"} 1004\n"));
	CHECK(line_starting(text, "heapfrag_allocator_calls_total{pid=\"42\",comm=\"redis-server\","
				  "op=\"memalign\"} 1005\n"));
	CHECK(line_starting(text, "heapfrag_failed_allocations_total{pid=\"42\",comm=\"redis-"
				  "server\"} 1006\n"));
	CHECK(line_starting(text, "heapfrag_heap_syscalls_total{pid=\"42\",comm=\"redis-server\","
				  "syscall=\"brk\"} 1007\n"));
	CHECK(line_starting(text, "heapfrag_heap_syscalls_total{pid=\"42\",comm=\"redis-server\","
				  "syscall=\"madvise\"} 1011\n"));
	CHECK(line_starting(text, "heapfrag_heap_released_bytes_total{pid=\"42\",comm=\"redis-"
				  "server\"} 2009\n"));
	CHECK(line_starting(text, "heapfrag_process_resident_bytes{pid=\"42\",comm=\"redis-"
				  "server\"} 2010\n"));
	CHECK(line_starting(text, "heapfrag_tracked_processes 1\n"));
	free(text);
}

static void test_label_values_are_escaped(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {
		.nr_drop_reasons = 1,
		.dropped = {{.reason = "map\"full\\", .count = 5}},
		.nr_maps = 1,
		.maps = {{.name = "live\nallocs", .entries = 9, .max_entries = 10}}};
	char *text;

	fixture_exact(&s, 7, "a\"b\\c\nd");
	text = scrape(&s, 1, &st);
	CHECK(line_starting(text,
			    "heapfrag_heap_requested_bytes{pid=\"7\",comm=\"a\\\"b\\\\c\\nd\"} "
			    "2002\n"));
	CHECK(line_starting(text, "heapfrag_dropped_events_total{reason=\"map\\\"full\\\\\"} 5\n"));
	CHECK(line_starting(text, "heapfrag_bpf_map_entries{map=\"live\\nallocs\"} 9\n"));
	/* No raw newline may end up inside a label: every line starts a sample or a comment. */
	for (const char *p = text; *p; p = strchr(p, '\n') + 1)
		CHECK(strncmp(p, "heapfrag_", 9) == 0 || strncmp(p, "# ", 2) == 0);
	free(text);
}

static void test_histogram_buckets_are_cumulative_and_end_at_inf(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {0};
	char *text, want[256];
	uint64_t total = 0;

	fixture_exact(&s, 9, "w");
	memset(s.histogram.requests, 0, sizeof(s.histogram.requests));
	s.histogram.requests[0] = 3;                   /* <= 16 */
	s.histogram.requests[2] = 5;                   /* 33..64 */
	s.histogram.requests[6] = 1;                   /* 513..1024 */
	s.histogram.requests[HF_HIST_BUCKETS - 1] = 2; /* > 4 GiB */
	text = scrape(&s, 1, &st);
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"16\"} 3\n"));
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"32\"} 3\n"));
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"64\"} 8\n"));
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"512\"} 8\n"));
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"1024\"} 9\n"));
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"4294967296\"} 9\n"));
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\","
				  "le=\"+Inf\"} 11\n"));
	CHECK(line_starting(text,
			    "heapfrag_allocation_size_bytes_count{pid=\"9\",comm=\"w\"} 11\n"));
	CHECK_EQ_U64(count(text, "heapfrag_allocation_size_bytes_bucket{"), HF_HIST_BUCKETS);
	/* The bucket values never decrease. */
	for (int i = 0; i < HF_HIST_BUCKETS - 1; i++) {
		total += s.histogram.requests[i];
		snprintf(want, sizeof(want),
			 "heapfrag_allocation_size_bytes_bucket{pid=\"9\",comm=\"w\",le=\"%" PRIu64
			 "\"} %" PRIu64 "\n",
			 hf_hist_le(i), total);
		CHECK_MSG(line_starting(text, want) != NULL, "%s", want);
	}
	free(text);
}

static void test_unknown_values_are_left_out_not_zero(void)
{
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {0};
	char *text;

	hf_snapshot_init(&s[0]);
	s[0].pid = 100;
	snprintf(s[0].comm, sizeof(s[0].comm), "unknown");
	fixture_passive(&s[1], 101, "passive");
	text = scrape(s, 2, &st);
	/* Nothing at all for the process that knows nothing. */
	CHECK_EQ_U64(count(text, "pid=\"100\""), 0);
	/* Passive mode: syscalls and /proc figures, but no calls, bytes or histogram. */
	CHECK(line_starting(text, "heapfrag_heap_syscalls_total{pid=\"101\",comm=\"passive\","
				  "syscall=\"brk\"} 7\n"));
	CHECK(line_starting(text, "heapfrag_heap_mapped_bytes{pid=\"101\",comm=\"passive\","
				  "region=\"arena\"} 0\n"));
	CHECK(line_starting(text, "heapfrag_heap_resident_bytes{pid=\"101\",comm=\"passive\"} "
				  "4096\n"));
	CHECK(line_starting(text, "heapfrag_allocator_calls_total{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_failed_allocations_total{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_heap_requested_bytes{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_heap_allocated_bytes{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_live_allocations{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_fragmentation_ratio{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_bucket{pid=\"101\"") == NULL);
	CHECK(line_starting(text, "heapfrag_allocation_size_bytes_count{pid=\"101\"") == NULL);
	free(text);
}

static void test_arena_samples_only_where_known(void)
{
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {0};
	char *text;

	fixture_exact(&s[0], 200, "counted");
	s[0].nr_arenas = 2;
	s[0].arenas[0] = (struct hf_arena){.address = 0x7f00,
					   .kind = HF_ARENA_MAIN,
					   .heaps = 1,
					   .lock = {.acquisitions = HF_UNKNOWN,
						    .contended = 12,
						    .wait_seconds = 0.5,
						    .max_wait_seconds = 0.25}};
	s[0].arenas[1] = (struct hf_arena){.address = 0x7e00,
					   .kind = HF_ARENA_THREAD,
					   .heaps = 1,
					   .lock = {.acquisitions = HF_UNKNOWN,
						    .contended = HF_UNKNOWN,
						    .wait_seconds = NAN,
						    .max_wait_seconds = NAN}};
	fixture_exact(&s[1], 201, "noarenas");
	s[1].nr_arenas = 0;
	text = scrape(s, 2, &st);
	CHECK(line_starting(text, "heapfrag_arenas{pid=\"200\",comm=\"counted\"} 2\n"));
	CHECK(line_starting(text,
			    "heapfrag_arena_lock_contentions_total{pid=\"200\",comm=\"counted\","
			    "arena=\"0x7f00\"} 12\n"));
	CHECK(line_starting(text, "heapfrag_arena_lock_wait_seconds_total{pid=\"200\","
				  "comm=\"counted\",arena=\"0x7f00\"} 0.5\n"));
	/* An arena whose lock was not counted, and a process with no arena list: no sample. */
	CHECK(line_starting(text,
			    "heapfrag_arena_lock_contentions_total{pid=\"200\",comm=\"counted\","
			    "arena=\"0x7e00\"}") == NULL);
	CHECK(line_starting(text, "heapfrag_arena_lock_wait_seconds_total{pid=\"200\","
				  "comm=\"counted\",arena=\"0x7e00\"}") == NULL);
	CHECK(line_starting(text, "heapfrag_arenas{pid=\"201\"") == NULL);
	free(text);
}

/* Two top sites: one with its pinned bytes, one without a census to credit it. */
static void top_sites(struct hf_snapshot *s)
{
	s->sites_known = true;
	s->nr_top_sites = 2;
	s->top_sites[0] = (struct hf_top_site){.id = 77,
					       .name = "make_record",
					       .live_bytes = 2080000,
					       .live_allocations = 10000,
					       .pinned_free_bytes = 40802011,
					       .allocations = 10000,
					       .frees = 0};
	s->top_sites[1] = (struct hf_top_site){.id = 78,
					       .name = "app+0x161e",
					       .live_bytes = 0,
					       .live_allocations = 0,
					       .pinned_free_bytes = HF_UNKNOWN,
					       .allocations = 100000,
					       .frees = 100000};
}

static void test_site_samples_only_for_top_sites_in_exact_mode(void)
{
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {0};
	char *text;

	fixture_exact(&s[0], 300, "sites");
	top_sites(&s[0]);
	fixture_passive(&s[1], 301, "passive");
	text = scrape(s, 2, &st);
	CHECK(line_starting(text, "heapfrag_site_live_bytes{pid=\"300\",comm=\"sites\","
				  "site_id=\"77\",site=\"make_record\"} 2080000\n"));
	CHECK(line_starting(text, "heapfrag_site_pinned_free_bytes{pid=\"300\",comm=\"sites\","
				  "site_id=\"77\",site=\"make_record\"} 40802011\n"));
	CHECK(line_starting(text, "heapfrag_site_frees_total{pid=\"300\",comm=\"sites\","
				  "site_id=\"78\",site=\"app+0x161e\"} 100000\n"));
	CHECK(line_starting(text, "heapfrag_site_allocations_total{pid=\"300\",comm=\"sites\","
				  "site_id=\"78\",site=\"app+0x161e\"} 100000\n"));
	/* Not credited: no sample, never 0; a process without sites: none at all. */
	CHECK(line_starting(text, "heapfrag_site_pinned_free_bytes{pid=\"300\",comm=\"sites\","
				  "site_id=\"78\"") == NULL);
	CHECK_EQ_U64(count(text, "{pid=\"301\",comm=\"passive\",site_id="), 0);
	CHECK_EQ_U64(count(text, "heapfrag_site_live_bytes{"), 2);
	free(text);
}

static void test_recycled_pid_writes_one_series(void)
{
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {0};
	char *text;

	fixture_exact(&s[0], 55, "same");
	s[0].state = HF_STATE_EXITED;
	s[0].heap.requested_bytes = 111;
	fixture_exact(&s[1], 55, "same");
	s[1].heap.requested_bytes = 222;
	text = scrape(s, 2, &st);
	CHECK_EQ_U64(count(text, "heapfrag_heap_requested_bytes{pid=\"55\""), 1);
	CHECK(line_starting(text, "heapfrag_heap_requested_bytes{pid=\"55\",comm=\"same\"} 222\n"));
	CHECK_EQ_U64(count(text, "heapfrag_allocation_size_bytes_count{pid=\"55\""), 1);
	free(text);
}

static void test_every_sample_follows_its_type_line(void)
{
	static struct hf_snapshot s[3];
	struct hf_daemon_stats st = {.nr_drop_reasons = 1, .dropped = {{"live_map_full", 2}}};
	char *text, family[128] = "";

	fixture_exact(&s[0], 1, "a");
	fixture_passive(&s[1], 2, "b");
	fixture_libptm(&s[2], 3, "c");
	text = scrape(s, 3, &st);
	for (char *p = text; *p; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "{ ");

		if (strncmp(p, "# TYPE ", 7) == 0) {
			size_t fn = strcspn(p + 7, " ");

			snprintf(family, sizeof(family), "%.*s", (int)fn, p + 7);
			continue;
		}
		if (p[0] == '#')
			continue;
		/* A sample's name is its family's, or the family's plus a histogram suffix. */
		CHECK_MSG(strncmp(p, family, strlen(family)) == 0 &&
				  (n == strlen(family) ||
				   strncmp(p + strlen(family), "_bucket", 7) == 0 ||
				   strncmp(p + strlen(family), "_sum", 4) == 0 ||
				   strncmp(p + strlen(family), "_count", 6) == 0),
			  "%.*s under family %s", (int)n, p, family);
	}
	free(text);
}

static void test_libptm_events_are_one_counter_family_each(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {0};
	char *text;

	fixture_libptm(&s, 300, "ptm");
	s.fragmentation.largest_free_chunk_bytes = 7001;
	s.fragmentation.free_chunks = 7002;
	text = scrape(&s, 1, &st);
	CHECK(line_starting(text, "heapfrag_largest_free_chunk_bytes{pid=\"300\",comm=\"ptm\"} "
				  "7001\n"));
	CHECK(line_starting(text, "heapfrag_free_chunks{pid=\"300\",comm=\"ptm\"} 7002\n"));
	CHECK(line_starting(text, "heapfrag_libptm_heap_grow_bytes_total{pid=\"300\",comm=\"ptm\"} "
				  "5001\n"));
	CHECK(line_starting(text,
			    "heapfrag_libptm_heap_shrink_bytes_total{pid=\"300\",comm=\"ptm\"} "
			    "5002\n"));
	CHECK(line_starting(text, "heapfrag_libptm_page_releases_total{pid=\"300\",comm=\"ptm\"} "
				  "5003\n"));
	CHECK(line_starting(text, "heapfrag_libptm_page_release_bytes_total{pid=\"300\","
				  "comm=\"ptm\"} 5004\n"));
	CHECK(line_starting(text, "heapfrag_libptm_arena_creates_total{pid=\"300\",comm=\"ptm\"} "
				  "5005\n"));
	CHECK(line_starting(text, "heapfrag_libptm_arena_reuses_total{pid=\"300\",comm=\"ptm\"} "
				  "5006\n"));
	CHECK(line_starting(text, "heapfrag_libptm_trims_total{pid=\"300\",comm=\"ptm\"} 5007\n"));
	free(text);
}

static void test_sampled_heap_gauges_counters_and_size_classes(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {0};
	char *text, want[256];
	uint64_t sum = 0;

	fixture_libptm(&s, 301, "ptm");
	text = scrape(&s, 1, &st);
	CHECK(line_starting(text,
			    "heapfrag_sampled_live_bytes{pid=\"301\",comm=\"ptm\"} 465000\n"));
	CHECK(line_starting(text,
			    "heapfrag_sampled_live_samples{pid=\"301\",comm=\"ptm\"} 6001\n"));
	CHECK(line_starting(text,
			    "heapfrag_sampled_samples_total{pid=\"301\",comm=\"ptm\"} 6002\n"));
	CHECK(line_starting(text,
			    "heapfrag_sampled_dropped_total{pid=\"301\",comm=\"ptm\"} 6003\n"));
	/* One gauge per class, each the class's own bytes (not cumulative), the last "+Inf". */
	CHECK(line_starting(text, "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\","
				  "max_size=\"16\"} 1000\n"));
	CHECK(line_starting(text, "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\","
				  "max_size=\"32\"} 2000\n"));
	CHECK(line_starting(text, "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\","
				  "max_size=\"4294967296\"} 29000\n"));
	CHECK(line_starting(text, "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\","
				  "max_size=\"+Inf\"} 30000\n"));
	CHECK_EQ_U64(count(text, "heapfrag_sampled_live_by_size_bytes{"), HF_HIST_BUCKETS);
	for (int i = 0; i < HF_HIST_BUCKETS; i++) {
		if (i < HF_HIST_BUCKETS - 1)
			snprintf(want, sizeof(want),
				 "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\","
				 "max_size=\"%" PRIu64 "\"} ",
				 hf_hist_le(i));
		else
			snprintf(want, sizeof(want),
				 "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\","
				 "max_size=\"+Inf\"} ");
		CHECK_MSG(line_starting(text, want) != NULL, "%s", want);
		if (line_starting(text, want))
			sum += strtoull(line_starting(text, want) + strlen(want), NULL, 10);
	}
	/* The classes add up to the estimate, as the size classes of one live heap must. */
	CHECK_EQ_U64(sum, 465000);
	/* No le label: this is not a histogram, and histogram_quantile must not take it for one. */
	CHECK(strstr(text, "heapfrag_sampled_live_by_size_bytes{pid=\"301\",comm=\"ptm\",le=") ==
	      NULL);
	free(text);
}

static void test_latency_histogram_is_cumulative_in_seconds_with_sum_and_count(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {0};
	char *text, want[256], le[32];
	static const char *const ops[] = {"malloc", "calloc", "realloc", "memalign"};

	fixture_libptm(&s, 302, "lat");
	text = scrape(&s, 1, &st);
	/* malloc: buckets 0, 1, 2, 3, 0, 1, ... calls; cumulative 0, 1, 3, 6, 6, 7, ..., 36. */
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"2.56e-07\"} 0\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"5.12e-07\"} 1\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"1.024e-06\"} 3\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"2.048e-06\"} 6\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"4.096e-06\"} 6\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"1.073741824\"} 33\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\",le=\"+Inf\"} 36\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_sum{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\"} 0.001000005\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_count{pid=\"302\","
				  "comm=\"lat\",op=\"malloc\"} 36\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				  "comm=\"lat\",op=\"memalign\",le=\"+Inf\"} 144\n"));
	CHECK(line_starting(text, "heapfrag_allocator_call_duration_seconds_sum{pid=\"302\","
				  "comm=\"lat\",op=\"memalign\"} 0.004000005\n"));
	/* Every timed op has its le bounds from hf_lat_le_ns(), the same for each op. */
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		uint64_t cumulative = 0;

		for (int i = 0; i < HF_LAT_BUCKETS; i++) {
			cumulative += s.latency[k].buckets[i];
			if (i < HF_LAT_BUCKETS - 1)
				snprintf(le, sizeof(le), "%.15g", (double)hf_lat_le_ns(i) / 1e9);
			else
				snprintf(le, sizeof(le), "+Inf");
			snprintf(want, sizeof(want),
				 "heapfrag_allocator_call_duration_seconds_bucket{pid=\"302\","
				 "comm=\"lat\",op=\"%s\",le=\"%s\"} %" PRIu64 "\n",
				 ops[k], le, cumulative);
			CHECK_MSG(line_starting(text, want) != NULL, "%s", want);
		}
		snprintf(want, sizeof(want),
			 "heapfrag_allocator_call_duration_seconds_count{pid=\"302\",comm=\"lat\","
			 "op=\"%s\"} %" PRIu64 "\n",
			 ops[k], s.latency[k].count);
		CHECK_MSG(line_starting(text, want) != NULL, "%s", want);
	}
	CHECK_EQ_U64(count(text, "heapfrag_allocator_call_duration_seconds_bucket{"),
		     HF_LAT_OPS * HF_LAT_BUCKETS);
	CHECK_EQ_U64(count(text, "heapfrag_allocator_call_duration_seconds_sum{"), HF_LAT_OPS);
	/* free has no return probe: it is never timed, so never exported. */
	CHECK(strstr(text, "op=\"free\",le=") == NULL);
	CHECK(strstr(text, "heapfrag_allocator_call_duration_seconds_count{pid=\"302\","
			   "comm=\"lat\",op=\"free\"}") == NULL);
	free(text);
}

static void test_libptm_sampled_and_latency_absent_when_unknown(void)
{
	static struct hf_snapshot s[3];
	struct hf_daemon_stats st = {0};
	char *text;

	/* A glibc process: the structs hold zeros, the flags say unknown. */
	fixture_exact(&s[0], 400, "glibc");
	/* A libptm process without MALLOC_SAMPLE_INTERVAL_, traced in passive mode. */
	fixture_libptm(&s[1], 401, "nosample");
	s[1].mode = HF_MODE_PASSIVE;
	s[1].sampled_known = false;
	s[1].latency_known = false;
	/* A libptm process whose size classes are partly unknown. */
	fixture_libptm(&s[2], 402, "partial");
	s[2].sampled.live_bytes_by_size[3] = HF_UNKNOWN;
	text = scrape(s, 3, &st);
	CHECK(strstr(text, "heapfrag_libptm_heap_grow_bytes_total{pid=\"400\"") == NULL);
	CHECK(strstr(text, "heapfrag_libptm_trims_total{pid=\"400\"") == NULL);
	CHECK(strstr(text, "heapfrag_sampled_live_bytes{pid=\"400\"") == NULL);
	CHECK(strstr(text, "heapfrag_sampled_dropped_total{pid=\"400\"") == NULL);
	CHECK(strstr(text, "heapfrag_sampled_live_by_size_bytes{pid=\"400\"") == NULL);
	CHECK(strstr(text, "heapfrag_allocator_call_duration_seconds_bucket{pid=\"400\"") == NULL);
	CHECK(strstr(text, "heapfrag_allocator_call_duration_seconds_count{pid=\"400\"") == NULL);
	/* Events known, no sample and no timing: only the events. */
	CHECK(line_starting(text, "heapfrag_libptm_heap_grow_bytes_total{pid=\"401\","
				  "comm=\"nosample\"} 5001\n"));
	CHECK(strstr(text, "heapfrag_sampled_live_samples{pid=\"401\"") == NULL);
	CHECK(strstr(text, "heapfrag_sampled_samples_total{pid=\"401\"") == NULL);
	CHECK(strstr(text, "heapfrag_sampled_live_by_size_bytes{pid=\"401\"") == NULL);
	CHECK(strstr(text, "heapfrag_allocator_call_duration_seconds_sum{pid=\"401\"") == NULL);
	/* One unknown class is left out, the others stay. */
	CHECK_EQ_U64(count(text, "heapfrag_sampled_live_by_size_bytes{pid=\"402\""),
		     HF_HIST_BUCKETS - 1);
	CHECK(strstr(text, "heapfrag_sampled_live_by_size_bytes{pid=\"402\",comm=\"partial\","
			   "max_size=\"128\"}") == NULL);
	free(text);
}

static void test_recycled_pid_writes_one_libptm_and_latency_series(void)
{
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {0};
	char *text;

	fixture_libptm(&s[0], 56, "same");
	s[0].state = HF_STATE_EXITED;
	s[0].ptm_events.trims = 1;
	fixture_libptm(&s[1], 56, "same");
	s[1].ptm_events.trims = 2;
	text = scrape(s, 2, &st);
	CHECK_EQ_U64(count(text, "heapfrag_libptm_trims_total{pid=\"56\""), 1);
	CHECK(line_starting(text, "heapfrag_libptm_trims_total{pid=\"56\",comm=\"same\"} 2\n"));
	CHECK_EQ_U64(count(text, "heapfrag_sampled_live_by_size_bytes{pid=\"56\""),
		     HF_HIST_BUCKETS);
	CHECK_EQ_U64(count(text, "heapfrag_allocator_call_duration_seconds_count{pid=\"56\""),
		     HF_LAT_OPS);
	free(text);
}

/* promtool's own parser and linter, on every family with known values. */
static void test_promtool_accepts_the_new_families(void)
{
	static const char cgroup[] = "0::/kubepods/burstable/pod6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5a/"
				     "4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
				     "/q\"\\\xff\n";
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {.tracked_processes = 2};
	char path[] = "/tmp/hf-web-prom-XXXXXX", cmd[256];
	char *text;
	int fd;

	if (system("promtool --version > /dev/null 2>&1") != 0) {
		fprintf(stderr,
			"promtool is not installed: the lint of the unit scrape is not run\n");
		CHECK_MSG(getenv("CI") == NULL || strcmp(getenv("CI"), "true") != 0,
			  "CI must have promtool (Debian package prometheus)");
		return;
	}
	fixture_libptm(&s[0], 10, "ptm");
	fixture_exact(&s[1], 11, "glibc");
	top_sites(&s[1]);
	CHECK(hf_cgroup_parse(cgroup, sizeof(cgroup) - 1, &s[1].cgroup) == 0);
	text = scrape(s, 2, &st);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0) {
		free(text);
		return;
	}
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	CHECK_MSG(system(cmd) == 0, "promtool check metrics refused %s", path);
	unlink(path);
	free(text);
}

/*
 * The cgroup labels follow comm on every per-process sample, escaped; a
 * cgroup name cannot close the label set or add a label of its own.
 */
static void test_cgroup_labels_on_every_process_sample(void)
{
	static const char text[] = "0::/kubepods.slice/kubepods-burstable.slice/"
				   "kubepods-burstable-pod6d3a1e2b_8c4f_4a5e_9b7d_0f1e2d3c4b5a.slice/"
				   "cri-containerd-4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
				   ".scope/a\"},pod_uid=\"x\\\xff\n";
	static const char labels[] =
		"{pid=\"12\",comm=\"k\",cgroup=\"/kubepods.slice/kubepods-burstable.slice/"
		"kubepods-burstable-pod6d3a1e2b_8c4f_4a5e_9b7d_0f1e2d3c4b5a.slice/"
		"cri-containerd-4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
		".scope/a\\\"},pod_uid=\\\"x\\\\?\",pod_uid=\"6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5a\","
		"container_id=\"4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c\"";
	static struct hf_snapshot s[2];
	struct hf_daemon_stats st = {0};
	char want[1024], *text_out;
	int samples = 0, labelled = 0;

	fixture_exact(&s[0], 12, "k");
	top_sites(&s[0]);
	CHECK(hf_cgroup_parse(text, sizeof(text) - 1, &s[0].cgroup) == 0);
	fixture_exact(&s[1], 13, "plain");
	text_out = scrape(s, 2, &st);
	snprintf(want, sizeof(want), "heapfrag_heap_requested_bytes%s} 2002\n", labels);
	CHECK_MSG(line_starting(text_out, want), "no line %s", want);
	snprintf(want, sizeof(want), "heapfrag_allocator_calls_total%s,op=\"malloc\"} 1001\n",
		 labels);
	CHECK_MSG(line_starting(text_out, want), "no line %s", want);
	/* Unknown: no cgroup label at all, not an empty one. */
	CHECK(line_starting(text_out, "heapfrag_heap_requested_bytes{pid=\"13\",comm=\"plain\"} "
				      "2002\n"));
	/* Every sample of pid 12 carries them; none of pid 13 does. */
	for (const char *p = text_out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *brace = strchr(p, '{'), *nl = strchr(p, '\n');

		if (*p == '#' || !brace || (nl && brace > nl))
			continue;
		if (strncmp(brace, "{pid=\"12\"", 9) == 0) {
			samples++;
			labelled += strncmp(brace, labels, strlen(labels)) == 0;
		}
		if (strncmp(brace, "{pid=\"13\"", 9) == 0)
			CHECK(strncmp(brace, "{pid=\"13\",comm=\"plain\",cgroup", 29) != 0);
	}
	CHECK(samples > 50);
	CHECK_EQ_U64(labelled, samples);
	free(text_out);
}

int main(void)
{
	test_every_family_has_help_and_type_even_with_no_process();
	test_samples_carry_values_and_labels();
	test_label_values_are_escaped();
	test_histogram_buckets_are_cumulative_and_end_at_inf();
	test_unknown_values_are_left_out_not_zero();
	test_arena_samples_only_where_known();
	test_site_samples_only_for_top_sites_in_exact_mode();
	test_recycled_pid_writes_one_series();
	test_every_sample_follows_its_type_line();
	test_libptm_events_are_one_counter_family_each();
	test_sampled_heap_gauges_counters_and_size_classes();
	test_latency_histogram_is_cumulative_in_seconds_with_sum_and_count();
	test_libptm_sampled_and_latency_absent_when_unknown();
	test_recycled_pid_writes_one_libptm_and_latency_series();
	test_promtool_accepts_the_new_families();
	test_cgroup_labels_on_every_process_sample();
	return hf_test_done();
}
