// SPDX-License-Identifier: MIT
/*
 * The daemon's account of a process attached by PID equals the process's own
 * books: the seed's loop (1,000,000 malloc(100)/free pairs) and the
 * swiss-cheese incident (100,000 x 1000 bytes, 90 % freed at random), on the
 * allocator named by argv[1] (glibc, jemalloc or libptm).
 *
 *   calls per op, live allocations and requested bytes: exactly the truth;
 *   allocated bytes: the sum of chunk sizes (glibc, libptm) or of usable
 *     sizes, which are the size classes (jemalloc);
 *   mapped_bytes.brk: glibc's own mallinfo2().arena;
 *   heap syscalls: what strace counts in the same phase of the same run
 *     (th_workload_start_straced: strace starts the workload with
 *     --seccomp-bpf, heapfragd attaches to it by PID), for every allocator;
 *     jemalloc's extents land where the kernel puts them, and it maps again
 *     when one is misaligned, so only the same run has the same mmap count;
 *   the seed loop moves brk at most a handful of times.
 */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

struct calls_goal {
	uint64_t malloc, free;
};

static bool calls_reached(json_t *doc, void *arg)
{
	const struct calls_goal *g = arg;

	return th_u64(doc, "counters.malloc") >= g->malloc &&
	       th_u64(doc, "counters.free") >= g->free;
}

/* The heap syscalls heapfragd counted in the phase are strace's, each exactly. */
static void check_syscalls(const char *what, json_t *doc, const struct th_syscalls *st)
{
	printf("%s: strace of the same run: brk %llu mmap %llu munmap %llu mremap %llu madvise "
	       "%llu\n",
	       what, (unsigned long long)st->brk, (unsigned long long)st->mmap,
	       (unsigned long long)st->munmap, (unsigned long long)st->mremap,
	       (unsigned long long)st->madvise);
	CHECK_MSG(th_u64(doc, "counters.brk") == st->brk, "%s: brk %llu, strace %llu", what,
		  (unsigned long long)th_u64(doc, "counters.brk"), (unsigned long long)st->brk);
	CHECK_MSG(th_u64(doc, "counters.mmap") == st->mmap, "%s: mmap %llu, strace %llu", what,
		  (unsigned long long)th_u64(doc, "counters.mmap"), (unsigned long long)st->mmap);
	CHECK_MSG(th_u64(doc, "counters.munmap") == st->munmap, "%s: munmap %llu, strace %llu",
		  what, (unsigned long long)th_u64(doc, "counters.munmap"),
		  (unsigned long long)st->munmap);
	CHECK_MSG(th_u64(doc, "counters.mremap") == st->mremap, "%s: mremap %llu, strace %llu",
		  what, (unsigned long long)th_u64(doc, "counters.mremap"),
		  (unsigned long long)st->mremap);
	CHECK_MSG(th_u64(doc, "counters.madvise") == st->madvise, "%s: madvise %llu, strace %llu",
		  what, (unsigned long long)th_u64(doc, "counters.madvise"),
		  (unsigned long long)st->madvise);
}

/*
 * Runs workload under strace, attached by PID, and returns the daemon's
 * document once its calls reached the truth's (*truth_out gets the truth,
 * *syscalls what strace counted in the phase; *straced says whether it did;
 * *libptm_out, unless NULL, the /libptm document of the same moment).
 */
static json_t *traced_phase(const char *workload, const char *const *args, const char *preload,
			    json_t **truth_out, struct th_syscalls *syscalls, bool *straced,
			    json_t **libptm_out)
{
	struct th_workload w;
	struct th_strace s;
	struct th_daemon d;
	struct calls_goal goal;
	char pid_arg[16];
	const char *dargs[] = {"-i", "0.2", "-p", pid_arg, NULL};
	json_t *doc = NULL, *truth;

	*truth_out = NULL;
	*straced = false;
	if (th_workload_start_straced(&w, workload, args, preload, &s) != 0)
		return NULL;
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w.pid);
	if (th_daemon_start(&d, dargs) != 0) {
		th_workload_kill(&w);
		return NULL;
	}
	/* Attached: the process is listed before its phase starts. */
	doc = th_wait_doc(&d, w.pid, NULL, NULL, 5);
	CHECK_MSG(doc != NULL, "%s is not listed after attach", workload);
	json_decref(doc);

	th_workload_go(&w);
	truth = th_workload_truth(&w);
	CHECK_MSG(truth != NULL, "%s gave no truth", workload);
	if (truth) {
		goal.malloc = th_u64(truth, "calls.malloc");
		goal.free = th_u64(truth, "calls.free");
		doc = th_wait_doc(&d, w.pid, calls_reached, &goal, 60);
		/* One more interval, so every number is of the same instant after the phase. */
		usleep(500 * 1000);
		json_decref(doc);
		doc = th_wait_doc(&d, w.pid, NULL, NULL, 5);
		if (libptm_out) {
			char path[64];
			long status;

			snprintf(path, sizeof(path), "/api/v1/processes/%d/libptm", (int)w.pid);
			*libptm_out = th_get(&d, path, &status);
		}
	}
	if (!doc)
		th_daemon_dump_log(&d);
	/* strace ends with the workload; its log is whole only then. */
	CHECK_EQ_U64(th_workload_finish(&w), 0);
	*straced = th_strace_phase(&s, w.pid, syscalls) == 0;
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
	*truth_out = truth;
	return doc;
}

static void seed_loop(const char *alloc, const char *preload)
{
	const char *args[] = {"--count", "1000000", "--size", "100", NULL};
	struct th_syscalls st;
	json_t *doc, *truth;
	bool straced;

	doc = traced_phase("seed_loop", args, preload, &truth, &st, &straced, NULL);
	CHECK_MSG(doc && truth, "%s: seed_loop was not measured", alloc);
	if (!doc || !truth)
		goto out;
	printf("%s seed_loop: malloc %llu free %llu brk %llu live %llu\n", alloc,
	       (unsigned long long)th_u64(doc, "counters.malloc"),
	       (unsigned long long)th_u64(doc, "counters.free"),
	       (unsigned long long)th_u64(doc, "counters.brk"),
	       (unsigned long long)th_u64(doc, "heap.live_allocations"));
	CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(doc, "allocator"), "name")),
		     alloc);
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), 1000000);
	CHECK_EQ_U64(th_u64(doc, "counters.free"), 1000000);
	CHECK_EQ_U64(th_u64(doc, "counters.calloc"), 0);
	CHECK_EQ_U64(th_u64(doc, "counters.realloc"), 0);
	CHECK_EQ_U64(th_u64(doc, "counters.failed"), 0);
	CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"), th_u64(truth, "live_allocations"));
	CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"), th_u64(truth, "requested_bytes"));
	CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
	CHECK_MSG(th_u64(doc, "counters.brk") <= 4, "%s: the seed loop moved brk %llu times", alloc,
		  (unsigned long long)th_u64(doc, "counters.brk"));
	if (straced)
		check_syscalls("seed_loop", doc, &st);
	else
		CHECK_MSG(0, "strace of seed_loop failed");
out:
	json_decref(doc);
	json_decref(truth);
}

static void swiss_cheese(const char *alloc, const char *preload)
{
	const char *args[] = {"--count", "100000", "--size", "1000", "--keep-percent",
			      "10",      "--seed", "7",      NULL};
	struct th_syscalls st;
	json_t *doc, *truth, *mi, *ptm = NULL;
	bool straced;

	doc = traced_phase("swiss_cheese", args, preload, &truth, &st, &straced, &ptm);
	CHECK_MSG(doc && truth, "%s: swiss_cheese was not measured", alloc);
	if (!doc || !truth)
		goto out;
	printf("%s swiss_cheese: live %llu requested %llu allocated %llu brk %llu "
	       "(truth chunk %llu usable %llu)\n",
	       alloc, (unsigned long long)th_u64(doc, "heap.live_allocations"),
	       (unsigned long long)th_u64(doc, "heap.requested_bytes"),
	       (unsigned long long)th_u64(doc, "heap.allocated_bytes"),
	       (unsigned long long)th_u64(doc, "heap.mapped_bytes.brk"),
	       (unsigned long long)th_u64(truth, "chunk_bytes"),
	       (unsigned long long)th_u64(truth, "usable_bytes"));
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), th_u64(truth, "calls.malloc"));
	CHECK_EQ_U64(th_u64(doc, "counters.free"), th_u64(truth, "calls.free"));
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), 100000);
	CHECK_EQ_U64(th_u64(doc, "counters.free"), 90000);
	CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"), th_u64(truth, "live_allocations"));
	CHECK_EQ_U64(th_u64(doc, "heap.live_allocations"), 10000);
	CHECK_EQ_U64(th_u64(doc, "heap.requested_bytes"), th_u64(truth, "requested_bytes"));
	CHECK_EQ_U64(th_u64(doc, "tracing.live_map_entries"), 10000);
	CHECK_EQ_U64(th_u64(doc, "tracing.dropped_events"), 0);
	/* The live-size histogram: every survivor asked for 1000 bytes, (512, 1024]. */
	CHECK_EQ_U64(th_u64(json_array_get(
				    json_object_get(json_object_get(doc, "histogram"), "live"), 6),
			    "count"),
		     10000);
	if (strcmp(alloc, "jemalloc") == 0) {
		/* No chunk headers: the size class is the usable size. */
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"), th_u64(truth, "usable_bytes"));
	} else {
		CHECK_EQ_U64(th_u64(doc, "heap.allocated_bytes"), th_u64(truth, "chunk_bytes"));
		mi = json_object_get(truth, "mallinfo2");
		CHECK_MSG(mi && json_is_object(mi), "%s: no mallinfo2 in the truth", alloc);
		if (mi && json_is_object(mi))
			CHECK_EQ_U64(th_u64(doc, "heap.mapped_bytes.brk"), th_u64(mi, "arena"));
	}
	if (straced)
		check_syscalls("swiss_cheese", doc, &st);
	else
		CHECK_MSG(0, "strace of swiss_cheese failed");
	if (strcmp(alloc, "libptm") == 0) {
		/*
		 * libptm gives the holes' pages back in batches through
		 * process_madvise: every byte it says it released (its USDT
		 * page_release and heap_shrink events since attach) is in
		 * released_bytes, and nothing else is.
		 */
		uint64_t rel = th_u64(json_object_get(ptm, "events"), "page_release_bytes");
		uint64_t shrink = th_u64(json_object_get(ptm, "events"), "heap_shrink_bytes");

		printf("libptm swiss_cheese: released %llu, libptm's events %llu + %llu\n",
		       (unsigned long long)th_u64(doc, "heap.released_bytes"),
		       (unsigned long long)rel, (unsigned long long)shrink);
		CHECK(rel != UINT64_MAX && rel > 0 && shrink != UINT64_MAX);
		CHECK_EQ_U64(th_u64(doc, "heap.released_bytes"), rel + shrink);
	}
out:
	json_decref(ptm);
	json_decref(doc);
	json_decref(truth);
}

int main(int argc, char **argv)
{
	const char *alloc = argc > 1 ? argv[1] : "glibc";
	const char *preload = NULL;

	th_init("tracer_account", 280);
	if (strcmp(alloc, "jemalloc") == 0) {
		preload = th_libjemalloc();
		if (!preload)
			HF_SKIP("libjemalloc2 is not installed");
		/* Inherited by the workloads: purging at once makes two runs alike. */
		setenv("MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0", 1);
	} else if (strcmp(alloc, "libptm") == 0) {
		preload = th_libptm();
		if (!preload)
			HF_SKIP("libptm.so is not built");
	}
	seed_loop(alloc, preload);
	swiss_cheese(alloc, preload);
	return hf_test_done();
}
