// SPDX-License-Identifier: MIT
/*
 * -a: every process on the machine.  A workload running before heapfragd
 * starts is found in /proc; one started afterwards is traced from its exec,
 * with no PID or path named.  Both phases (which begin after both are
 * listed) are counted exactly: calls per op, live allocations and requested
 * bytes equal each workload's own books.  heapfragd never lists itself.
 *
 * Cost: -a in exact mode puts uprobes on the allocator of every process on
 * the machine while it runs; the test keeps that to a few seconds, and ctest
 * never runs it beside another test (RUN_SERIAL).
 */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static bool calls_reached(json_t *doc, void *arg)
{
	json_t *truth = arg;

	return th_u64(doc, "counters.malloc") >= th_u64(truth, "calls.malloc") &&
	       th_u64(doc, "counters.free") >= th_u64(truth, "calls.free");
}

static void check_exact(const char *who, json_t *doc, json_t *truth)
{
	CHECK_MSG(doc != NULL, "%s: no document", who);
	if (!doc)
		return;
	printf("%s: pid %llu malloc %llu free %llu live %llu requested %llu (truth %llu %llu %llu "
	       "%llu)\n",
	       who, (unsigned long long)th_u64(doc, "pid"),
	       (unsigned long long)th_u64(doc, "counters.malloc"),
	       (unsigned long long)th_u64(doc, "counters.free"),
	       (unsigned long long)th_u64(doc, "heap.live_allocations"),
	       (unsigned long long)th_u64(doc, "heap.requested_bytes"),
	       (unsigned long long)th_u64(truth, "calls.malloc"),
	       (unsigned long long)th_u64(truth, "calls.free"),
	       (unsigned long long)th_u64(truth, "live_allocations"),
	       (unsigned long long)th_u64(truth, "requested_bytes"));
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "mode")), "exact");
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "comm")), "swiss_cheese");
	CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(doc, "allocator"), "name")),
		     "glibc");
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), th_u64(truth, "calls.malloc"));
	CHECK_EQ_U64(th_u64(doc, "counters.calloc"), th_u64(truth, "calls.calloc"));
	CHECK_EQ_U64(th_u64(doc, "counters.realloc"), th_u64(truth, "calls.realloc"));
	CHECK_EQ_U64(th_u64(doc, "counters.free"), th_u64(truth, "calls.free"));
	CHECK_EQ_U64(th_u64(doc, "counters.failed"), 0);
	CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"), th_u64(truth, "live_allocations"));
	CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"), th_u64(truth, "requested_bytes"));
	CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
}

/* Is pid among the listed processes? */
static bool listed(const struct th_daemon *d, pid_t pid)
{
	json_t *body, *procs;
	bool found = false;
	long status;

	body = th_get(d, "/api/v1/processes", &status);
	CHECK_MSG(status == 200 && body, "GET /api/v1/processes answered %ld", status);
	procs = json_object_get(body, "processes");
	for (size_t i = 0; i < json_array_size(procs); i++)
		found |= th_u64(json_array_get(procs, i), "pid") == (uint64_t)pid;
	json_decref(body);
	return found;
}

int main(void)
{
	const char *before_args[] = {"--count", "20000",  "--size", "700", "--keep-percent",
				     "10",      "--seed", "3",      NULL};
	const char *after_args[] = {"--count", "30000",  "--size", "300", "--keep-percent",
				    "20",      "--seed", "4",      NULL};
	const char *dargs[] = {"-a", "-i", "0.2", NULL};
	struct th_workload before, after;
	json_t *tb = NULL, *ta = NULL, *doc;
	struct th_daemon d;
	char path[64];
	long status;

	th_init("tracer_trace_all", 120);
	if (th_workload_start(&before, "swiss_cheese", before_args, NULL) != 0)
		HF_SKIP("swiss_cheese did not start");
	if (th_daemon_start(&d, dargs) != 0) {
		th_workload_kill(&before);
		CHECK_MSG(0, "heapfragd -a did not start");
		return hf_test_done();
	}
	/* Found in /proc at start. */
	doc = th_wait_doc(&d, before.pid, NULL, NULL, 10);
	CHECK_MSG(doc != NULL, "the process running before heapfragd -a is not listed");
	json_decref(doc);
	/* Found at its exec. */
	if (th_workload_start(&after, "swiss_cheese", after_args, NULL) != 0) {
		CHECK_MSG(0, "the second swiss_cheese did not start");
		goto out_before;
	}
	doc = th_wait_doc(&d, after.pid, NULL, NULL, 10);
	CHECK_MSG(doc != NULL, "the process started after heapfragd -a is not listed");
	json_decref(doc);

	th_workload_go(&before);
	th_workload_go(&after);
	tb = th_workload_truth(&before);
	ta = th_workload_truth(&after);
	CHECK_MSG(tb && ta, "a workload gave no truth");
	if (tb && ta) {
		json_decref(th_wait_doc(&d, before.pid, calls_reached, tb, 20));
		json_decref(th_wait_doc(&d, after.pid, calls_reached, ta, 20));
		/* One more interval: every number of the same instant after the phase. */
		usleep(500 * 1000);
		doc = th_wait_doc(&d, after.pid, NULL, NULL, 5);
		check_exact("started after", doc, ta);
		json_decref(doc);
		doc = th_wait_doc(&d, before.pid, NULL, NULL, 5);
		check_exact("running before", doc, tb);
		json_decref(doc);
	}

	/* Not itself: neither listed nor answered for. */
	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)d.pid);
	doc = th_get(&d, path, &status);
	CHECK_MSG(status == 404, "GET %s (heapfragd itself) answered %ld", path, status);
	json_decref(doc);
	CHECK_MSG(!listed(&d, d.pid), "heapfragd lists itself");
	CHECK_MSG(listed(&d, after.pid), "the list lacks process %d", (int)after.pid);

	th_workload_finish(&after);
out_before:
	th_workload_finish(&before);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	json_decref(tb);
	json_decref(ta);
	return hf_test_done();
}
