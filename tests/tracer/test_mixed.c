// SPDX-License-Identifier: MIT
/*
 * Two threads calling every entry point at random (malloc, calloc, realloc
 * with realloc(NULL, n) and realloc(p, 0), posix_memalign, aligned_alloc,
 * memalign, valloc, free; sizes up to 1 MiB, so glibc mmaps some chunks;
 * impossible requests that fail): the daemon's calls per op, failures, live
 * blocks, requested and allocated bytes equal the workload's books, on the
 * allocator named by argv[1].  With glibc the mmapped chunks the tracer saw
 * are exactly mallinfo2().hblkhd, and brk heap plus arena heaps are exactly
 * mallinfo2().arena.
 */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static bool calls_reached(json_t *doc, void *arg)
{
	json_t *truth = arg;

	return th_u64(doc, "counters.malloc") >= th_u64(truth, "calls.malloc") &&
	       th_u64(doc, "counters.free") >= th_u64(truth, "calls.free") &&
	       th_u64(doc, "counters.memalign") >= th_u64(truth, "calls.memalign");
}

int main(int argc, char **argv)
{
	const char *alloc = argc > 1 ? argv[1] : "glibc";
	const char *dargs[] = {"-i", "0.2", NULL};
	const char *args[] = {"--seed", "3", NULL};
	const char *preload = NULL;
	static const char *const ops[] = {"malloc", "calloc",   "realloc",
					  "free",   "memalign", "failed"};
	struct th_workload w;
	struct th_daemon d;
	json_t *truth, *doc, *mi;
	char key[64], dkey[64];

	th_init("tracer_mixed", 150);
	if (strcmp(alloc, "jemalloc") == 0) {
		preload = th_libjemalloc();
		if (!preload)
			HF_SKIP("libjemalloc2 is not installed");
	} else if (strcmp(alloc, "libptm") == 0) {
		preload = th_libptm();
		if (!preload)
			HF_SKIP("libptm.so is not built");
	}
	if (th_start_traced(&w, "mixed", args, preload, &d, dargs) != 0) {
		CHECK_MSG(0, "mixed under heapfragd did not start");
		return hf_test_done();
	}
	json_decref(th_wait_doc(&d, w.pid, NULL, NULL, 5));
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	CHECK(truth != NULL);
	doc = th_wait_doc(&d, w.pid, calls_reached, truth, 30);
	usleep(500 * 1000);
	json_decref(doc);
	doc = th_wait_doc(&d, w.pid, NULL, NULL, 5);
	CHECK(doc != NULL);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		snprintf(key, sizeof(key), "calls.%s", ops[i]);
		snprintf(dkey, sizeof(dkey), "counters.%s", ops[i]);
		CHECK_MSG(th_u64(doc, dkey) == th_u64(truth, key), "%s: daemon %llu, truth %llu",
			  ops[i], (unsigned long long)th_u64(doc, dkey),
			  (unsigned long long)th_u64(truth, key));
	}
	CHECK_MSG(th_u64(truth, "calls.failed") > 0, "the workload made no failing call");
	CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"), th_u64(truth, "live_allocations"));
	CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"), th_u64(truth, "requested_bytes"));
	CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
	if (strcmp(alloc, "jemalloc") == 0) {
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"), th_u64(truth, "usable_bytes"));
	} else {
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"), th_u64(truth, "chunk_bytes"));
		mi = json_object_get(truth, "mallinfo2");
		CHECK_EQ_U64(th_u64(doc, "heap.mapped_bytes.mmap"), th_u64(mi, "hblkhd"));
		CHECK_EQ_U64(th_u64(doc, "heap.mapped_bytes.brk") +
				     th_u64(doc, "heap.mapped_bytes.arena"),
			     th_u64(mi, "arena"));
	}
	printf("%s mixed: live %llu requested %llu allocated %llu mmap %llu failed %llu\n", alloc,
	       (unsigned long long)th_u64(doc, "heap.live_allocations"),
	       (unsigned long long)th_u64(doc, "heap.requested_bytes"),
	       (unsigned long long)th_u64(doc, "heap.allocated_bytes"),
	       (unsigned long long)th_u64(doc, "heap.mapped_bytes.mmap"),
	       (unsigned long long)th_u64(doc, "counters.failed"));
	json_decref(doc);
	json_decref(truth);
	CHECK_EQ_U64(th_workload_finish(&w), 0);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	return hf_test_done();
}
