// SPDX-License-Identifier: MIT
/*
 * A live-allocation map far too small (--max-live 100) for 10,000 live
 * blocks: the blocks that do not fit are counted as dropped events, the call
 * counts stay exact, the tracked blocks stay consistent, and the daemon keeps
 * serving and stops cleanly.
 */
#include <unistd.h>

#include "check.h"
#include "harness.h"

static bool calls_at_least(json_t *doc, void *arg)
{
	json_t *truth = arg;

	return th_u64(doc, "counters.malloc") >= th_u64(truth, "calls.malloc") &&
	       th_u64(doc, "counters.free") >= th_u64(truth, "calls.free");
}

int main(void)
{
	const char *args[] = {"--count", "10000", "--size", "1000", "--keep-percent", "10", NULL};
	const char *dargs[] = {"-i", "0.2", "--max-live", "100", NULL};
	struct th_workload w;
	struct th_daemon d;
	json_t *truth, *doc;
	uint64_t live;
	long status;

	th_init("tracer_small_map", 120);
	if (th_start_traced(&w, "swiss_cheese", args, NULL, &d, dargs) != 0) {
		CHECK_MSG(0, "swiss_cheese under heapfragd did not start");
		return hf_test_done();
	}
	json_decref(th_wait_doc(&d, w.pid, NULL, NULL, 5));
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	CHECK(truth != NULL);
	doc = th_wait_doc(&d, w.pid, calls_at_least, truth, 20);
	CHECK(doc != NULL);
	live = th_u64(doc, "heap.live_allocations");
	printf("dropped %llu, live %llu, map entries %llu\n",
	       (unsigned long long)th_u64(doc, "tracing.dropped_events"), (unsigned long long)live,
	       (unsigned long long)th_u64(doc, "tracing.live_map_entries"));
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), 10000);
	CHECK_EQ_U64(th_u64(doc, "counters.free"), 9000);
	CHECK_EQ_U64(th_u64(doc, "counters.failed"), 0);
	/* At most 100 blocks fit at once; the 10,000 mallocs overflow it at once. */
	CHECK_MSG(th_u64(doc, "tracing.dropped_events") >= 9900,
		  "dropped_events = %llu, expected at least 9900",
		  (unsigned long long)th_u64(doc, "tracing.dropped_events"));
	CHECK_MSG(live <= 100, "live_allocations = %llu > the map's 100", (unsigned long long)live);
	CHECK_EQ_U64(th_u64(doc, "tracing.live_map_entries"), live);
	/* What is tracked stays consistent: 1000-byte requests, 1008-byte chunks. */
	CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"), live * 1000);
	CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"), live * 1008);
	json_decref(doc);
	json_decref(th_get(&d, "/healthz", &status));
	CHECK_EQ_U64(status, 200);
	json_decref(truth);
	CHECK_EQ_U64(th_workload_finish(&w), 0);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	return hf_test_done();
}
