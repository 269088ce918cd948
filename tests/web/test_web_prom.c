// SPDX-License-Identifier: MIT
/*
 * test_web_prom.c - the Prometheus text writer: HELP and TYPE for every
 * family, escaped label values, cumulative histogram buckets, and unknown
 * values left out rather than written as 0.
 */
#include <stdlib.h>
#include <string.h>

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
	{"heapfrag_live_allocations", "gauge"},
	{"heapfrag_allocator_calls_total", "counter"},
	{"heapfrag_failed_allocations_total", "counter"},
	{"heapfrag_heap_syscalls_total", "counter"},
	{"heapfrag_heap_released_bytes_total", "counter"},
	{"heapfrag_allocation_size_bytes", "histogram"},
	{"heapfrag_process_resident_bytes", "gauge"},
	{"heapfrag_arenas", "gauge"},
	{"heapfrag_arena_lock_contentions_total", "counter"},
	{"heapfrag_arena_lock_wait_seconds_total", "counter"},
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
	s[0].arenas[0] = (struct hf_arena){.address = 0x7f00, .kind = HF_ARENA_MAIN, .heaps = 1,
					   .lock = {.acquisitions = HF_UNKNOWN, .contended = 12,
						    .wait_seconds = 0.5, .max_wait_seconds = 0.25}};
	s[0].arenas[1] = (struct hf_arena){.address = 0x7e00, .kind = HF_ARENA_THREAD, .heaps = 1,
					   .lock = {.acquisitions = HF_UNKNOWN,
						    .contended = HF_UNKNOWN,
						    .wait_seconds = NAN,
						    .max_wait_seconds = NAN}};
	fixture_exact(&s[1], 201, "noarenas");
	s[1].nr_arenas = 0;
	text = scrape(s, 2, &st);
	CHECK(line_starting(text, "heapfrag_arenas{pid=\"200\",comm=\"counted\"} 2\n"));
	CHECK(line_starting(text, "heapfrag_arena_lock_contentions_total{pid=\"200\",comm=\"counted\","
				  "arena=\"0x7f00\"} 12\n"));
	CHECK(line_starting(text, "heapfrag_arena_lock_wait_seconds_total{pid=\"200\","
				  "comm=\"counted\",arena=\"0x7f00\"} 0.5\n"));
	/* An arena whose lock was not counted, and a process with no arena list: no sample. */
	CHECK(line_starting(text, "heapfrag_arena_lock_contentions_total{pid=\"200\",comm=\"counted\","
				  "arena=\"0x7e00\"}") == NULL);
	CHECK(line_starting(text, "heapfrag_arena_lock_wait_seconds_total{pid=\"200\","
				  "comm=\"counted\",arena=\"0x7e00\"}") == NULL);
	CHECK(line_starting(text, "heapfrag_arenas{pid=\"201\"") == NULL);
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
	fixture_exact(&s[2], 3, "c");
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
				   strncmp(p + strlen(family), "_count", 6) == 0),
			  "%.*s under family %s", (int)n, p, family);
	}
	free(text);
}

int main(void)
{
	test_every_family_has_help_and_type_even_with_no_process();
	test_samples_carry_values_and_labels();
	test_label_values_are_escaped();
	test_histogram_buckets_are_cumulative_and_end_at_inf();
	test_unknown_values_are_left_out_not_zero();
	test_arena_samples_only_where_known();
	test_recycled_pid_writes_one_series();
	test_every_sample_follows_its_type_line();
	return hf_test_done();
}
