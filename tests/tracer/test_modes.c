// SPDX-License-Identifier: MIT
/*
 * Passive mode: no uprobes; what it cannot measure (calls, live blocks,
 * requested bytes, histograms) is null, never 0, allocated bytes come from
 * the heap census and agree with mallinfo2(), while the
 * heap syscalls are still counted exactly (as strace counts them in an
 * identical run) and mapped_bytes.brk is still glibc's mallinfo2().arena.
 *
 * -e PATH: a process that starts running PATH after heapfragd is traced
 * without being named, and its phase is counted exactly.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static bool brk_seen(json_t *doc, void *arg)
{
	return th_u64(doc, "counters.brk") != UINT64_MAX && th_u64(doc, "counters.brk") > 0;
}

/* A census of the heap as it is after the phase: complete, and ended after the truth was read. */
static bool census_after(json_t *doc, void *arg)
{
	json_t *c = json_object_get(doc, "census");
	const char *state = json_string_value(json_object_get(c, "state"));

	return state && strcmp(state, "complete") == 0 &&
	       json_number_value(json_object_get(c, "at")) > *(double *)arg;
}

static bool is_null(json_t *doc, const char *path)
{
	char buf[128], *save = NULL, *part;
	json_t *cur = doc;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
		cur = json_object_get(cur, part);
	return cur && json_is_null(cur);
}

static void passive(void)
{
	const char *args[] = {"--count", "100000", "--size", "1000", "--seed", "5", NULL};
	const char *dargs[] = {"-i", "0.2", "-m", "passive", NULL};
	struct th_syscalls st;
	struct th_workload w;
	struct th_strace s;
	struct th_daemon d;
	json_t *truth, *doc;

	if (th_start_traced(&w, "swiss_cheese", args, NULL, &d, dargs) != 0) {
		CHECK_MSG(0, "swiss_cheese under heapfragd did not start");
		return;
	}
	json_decref(th_wait_doc(&d, w.pid, NULL, NULL, 5));
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	json_decref(th_wait_doc(&d, w.pid, brk_seen, NULL, 10));
	usleep(500 * 1000);
	doc = th_wait_doc(&d, w.pid, NULL, NULL, 5);
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "mode")), "passive");
	CHECK(is_null(doc, "counters.malloc"));
	CHECK(is_null(doc, "counters.free"));
	CHECK(is_null(doc, "heap.live_allocations"));
	CHECK(is_null(doc, "heap.requested_bytes"));
	/*
	 * Allocated bytes come from the heap census in passive mode: its in-use
	 * chunks and the mmapped ones, which is mallinfo2's uordblks less what
	 * the thread cache holds (glibc counts cached chunks as in use) plus
	 * hblkhd.
	 */
	{
		json_t *c, *mi = json_object_get(truth, "mallinfo2");
		struct timespec ts;
		double since;

		clock_gettime(CLOCK_REALTIME, &ts);
		since = (double)ts.tv_sec + ts.tv_nsec / 1e9;
		json_decref(doc);
		doc = th_wait_doc(&d, w.pid, census_after, &since, 20);
		c = json_object_get(doc, "census");
		CHECK_MSG(doc != NULL, "no complete census after the phase");
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"),
			     th_u64(c, "in_use.bytes") + th_u64(c, "mmapped.bytes"));
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"),
			     th_u64(mi, "uordblks") - th_u64(c, "free.tcache.bytes") +
				     th_u64(mi, "hblkhd"));
	}
	CHECK_EQ_U64(th_u64(doc, "heap.mapped_bytes.brk"),
		     th_u64(json_object_get(truth, "mallinfo2"), "arena"));
	th_workload_finish(&w);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);

	/* The same phase again, under strace. */
	if (th_workload_start(&w, "swiss_cheese", args, NULL) == 0 &&
	    th_strace_start(&s, w.pid) == 0) {
		th_workload_go(&w);
		json_decref(th_workload_truth(&w));
		if (th_strace_stop(&s, &st) == 0) {
			CHECK_EQ_U64(th_u64(doc, "counters.brk"), st.brk);
			CHECK_EQ_U64(th_u64(doc, "counters.mmap"), st.mmap);
			CHECK_EQ_U64(th_u64(doc, "counters.munmap"), st.munmap);
			CHECK_EQ_U64(th_u64(doc, "counters.madvise"), st.madvise);
		} else {
			CHECK_MSG(0, "strace did not report");
		}
		th_workload_finish(&w);
	} else {
		CHECK_MSG(0, "strace of swiss_cheese failed");
	}
	printf("passive: brk %llu mapped brk %llu\n",
	       (unsigned long long)th_u64(doc, "counters.brk"),
	       (unsigned long long)th_u64(doc, "heap.mapped_bytes.brk"));
	json_decref(doc);
	json_decref(truth);
}

static bool pairs_done(json_t *doc, void *arg)
{
	return th_u64(doc, "counters.malloc") >= 20000 && th_u64(doc, "counters.free") >= 20000;
}

static void by_executable(void)
{
	const char *args[] = {"--count", "20000", NULL};
	const char *dargs[] = {"-i", "0.2", "-e", th_build_path("tests/workloads/seed_loop"), NULL};
	struct th_workload w;
	struct th_daemon d;
	json_t *doc, *truth;

	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd did not start");
		return;
	}
	if (th_workload_start(&w, "seed_loop", args, NULL) != 0) {
		CHECK_MSG(0, "seed_loop did not start");
		th_daemon_stop(&d);
		return;
	}
	doc = th_wait_doc(&d, w.pid, NULL, NULL, 5);
	CHECK_MSG(doc != NULL, "the new process running the -e executable is not traced");
	json_decref(doc);
	th_workload_go(&w);
	truth = th_workload_truth(&w);
	doc = th_wait_doc(&d, w.pid, pairs_done, NULL, 10);
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), th_u64(truth, "calls.malloc"));
	CHECK_EQ_U64(th_u64(doc, "counters.free"), th_u64(truth, "calls.free"));
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "comm")), "seed_loop");
	json_decref(doc);
	json_decref(truth);
	th_workload_finish(&w);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

int main(void)
{
	th_init("tracer_modes", 150);
	passive();
	by_executable();
	return hf_test_done();
}
