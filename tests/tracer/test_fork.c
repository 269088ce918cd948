// SPDX-License-Identifier: MIT
/*
 * A child forked by a traced process is traced from its first instruction
 * (its probes are inherited at fork), and its account starts empty: it
 * counts every call the child makes, its own live blocks only, and its
 * frees of inherited blocks as calls that subtract nothing.  With
 * --no-follow-forks the child is not traced at all.
 */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static bool calls_at_least(json_t *doc, void *arg)
{
	json_t *truth = arg;

	return th_u64(doc, "counters.malloc") >= th_u64(truth, "calls.malloc") &&
	       th_u64(doc, "counters.free") >= th_u64(truth, "calls.free");
}

static void run(bool follow)
{
	const char *args[] = {"--parent-count",
			      "1000",
			      "--parent-size",
			      "256",
			      "--child-count",
			      "5000",
			      "--child-size",
			      "64",
			      "--free-inherited",
			      "100",
			      NULL};
	const char *dargs[8] = {"-i", "0.2", NULL, NULL};
	json_t *child_truth = NULL, *parent_truth = NULL, *doc;
	struct th_workload w;
	struct th_daemon d;
	char path[64];
	pid_t child;
	long status;

	if (!follow)
		dargs[2] = "--no-follow-forks";
	if (th_start_traced(&w, "forker", args, NULL, &d, dargs) != 0) {
		CHECK_MSG(0, "forker under heapfragd did not start");
		return;
	}
	json_decref(th_wait_doc(&d, w.pid, NULL, NULL, 5));
	th_workload_go(&w);
	child_truth = th_workload_truth(&w);
	parent_truth = th_workload_truth(&w);
	CHECK_MSG(child_truth && parent_truth, "forker gave no truths");
	if (!child_truth || !parent_truth)
		goto out;
	child = (pid_t)th_u64(parent_truth, "child_pid");

	doc = th_wait_doc(&d, w.pid, calls_at_least, parent_truth, 20);
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), 1000);
	CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"), 1000);
	CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"), 256000);
	json_decref(doc);

	if (follow) {
		doc = th_wait_doc(&d, child, calls_at_least, child_truth, 20);
		CHECK_MSG(doc != NULL, "the forked child %d is not listed", (int)child);
		printf("child: malloc %llu free %llu live %llu requested %llu\n",
		       (unsigned long long)th_u64(doc, "counters.malloc"),
		       (unsigned long long)th_u64(doc, "counters.free"),
		       (unsigned long long)th_u64(doc, "heap.live_allocations"),
		       (unsigned long long)th_u64(doc, "heap.requested_bytes"));
		/* Every call the child made, from its first one on. */
		CHECK_EQ_U64(th_u64(doc, "counters.malloc"), th_u64(child_truth, "calls.malloc"));
		CHECK_EQ_U64(th_u64(doc, "counters.free"), th_u64(child_truth, "calls.free"));
		/* Its own blocks only: the inherited ones are not its allocations. */
		CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"),
			     th_u64(child_truth, "own.live_allocations"));
		CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"),
			     th_u64(child_truth, "own.requested_bytes"));
		CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
		json_decref(doc);
	} else {
		snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)child);
		json_decref(th_get(&d, path, &status));
		CHECK_MSG(status == 404, "with --no-follow-forks the child is listed (%ld)",
			  status);
	}
out:
	json_decref(child_truth);
	json_decref(parent_truth);
	CHECK_EQ_U64(th_workload_finish(&w), 0);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

int main(void)
{
	th_init("tracer_fork", 120);
	run(true);
	run(false);
	return hf_test_done();
}
