// SPDX-License-Identifier: MIT
/*
 * hf_regions_read() from outside, on the workloads of tests/workloads while
 * they hold their blocks: the regions found in another process add up to
 * what glibc's own books (mallinfo2, printed in the TRUTH line) say, and the
 * seed's incident comes out as the fragmentation it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "account.h"
#include "check.h"
#include "workload_spawn.h"
#include "heap_regions.h"

#define JEMALLOC "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

struct run {
	struct workload_proc w;
	char *truth;
};

static char build_dir[1024];

/* Starts a workload, lets it run its phase and keeps its TRUTH line. */
static bool start(struct run *r, const char *preload, char *const argv[])
{
	r->truth = NULL;
	if (workload_spawn(&r->w, build_dir, preload, argv) != 0)
		return false;
	if (write(r->w.in, "\n", 1) != 1)
		return false;
	r->truth = workload_truth(&r->w);
	return r->truth != NULL;
}

static int finish(struct run *r)
{
	free(r->truth);
	return workload_finish(&r->w);
}

/* The number after "a":...,"b": along a dotted path of the TRUTH line. */
static uint64_t u64(const char *json, const char *path)
{
	const char *p = json;
	char key[128];

	while (p && *path) {
		size_t len = strcspn(path, ".");

		snprintf(key, sizeof(key), "\"%.*s\":", (int)len, path);
		p = strstr(p, key);
		if (p)
			p += strlen(key);
		path += len + (path[len] == '.');
	}
	return p && *p >= '0' && *p <= '9' ? strtoull(p, NULL, 10) : UINT64_MAX;
}

static void test_swiss_cheese_from_outside(void)
{
	char *argv[] = {"swiss_cheese", "--count", "100000", "--seed", "11", NULL};
	struct hf_raw raw = {.calls_known = true};
	struct hf_regions reg;
	struct hf_snapshot s;
	struct run r;

	CHECK(start(&r, NULL, argv));
	if (!r.truth)
		return;
	CHECK(hf_regions_read(r.w.pid, HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &reg) == 0);
	CHECK_EQ_U64(reg.mapped.brk, u64(r.truth, "mallinfo2.arena"));
	CHECK_EQ_U64(reg.mapped.arena, 0);
	CHECK_EQ_U64(reg.arena_heaps, 0);
	CHECK_EQ_U64(reg.mapped.mmap, u64(r.truth, "mallinfo2.hblkhd"));
	/* 100,000 written messages: about 100 MB of brk heap, nearly all resident. */
	CHECK_MSG(reg.resident_bytes >= 95000000 && reg.resident_bytes <= reg.mapped.total,
		  "resident %" PRIu64 " of %" PRIu64, reg.resident_bytes, reg.mapped.total);

	/* With the workload's own counts as the BPF side: the seed's incident. */
	raw.live_allocations = u64(r.truth, "live_allocations");
	raw.requested_bytes = u64(r.truth, "requested_bytes");
	raw.allocated_bytes = u64(r.truth, "chunk_bytes");
	hf_snapshot_init(&s);
	hf_account(&raw, &reg, 1.0, &s);
	CHECK_EQ_U64(s.heap.requested_bytes, 10000000);
	CHECK_MSG(s.fragmentation.ratio > 0.88 && s.fragmentation.ratio < 0.91, "ratio %f",
		  s.fragmentation.ratio);
	CHECK_MSG(s.fragmentation.external_ratio > 0.88, "external %f",
		  s.fragmentation.external_ratio);
	CHECK(s.fragmentation.internal_ratio > 0.007 && s.fragmentation.internal_ratio < 0.009);
	CHECK(finish(&r) == 0);
	CHECK(hf_regions_read(r.w.pid, HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &reg) == -ESRCH);
}

/*
 * Every entry point from four threads: arena heaps per thread, mmapped chunks
 * merged into shared mappings, memalign'ed chunks resized by realloc.  The
 * address layout differs from run to run, so several seeds are tried.
 */
static void test_mixed_threads_arenas_and_mmaps_from_outside(void)
{
	for (int seed = 5; seed < 10; seed++) {
		char seed_arg[16];
		char *argv[] = {"mixed", "--threads", "4",      "--ops",
				"20000", "--seed",    seed_arg, NULL};
		struct hf_regions reg;
		struct run r;

		snprintf(seed_arg, sizeof(seed_arg), "%d", seed);
		CHECK(start(&r, NULL, argv));
		if (!r.truth)
			return;
		CHECK(hf_regions_read(r.w.pid, HF_ALLOC_GLIBC, HF_MODE_PASSIVE, NULL, 0, &reg) ==
		      0);
		/* Each worker thread got its own arena: at least four heaps. */
		CHECK_MSG(reg.arena_heaps >= 4, "seed %d: arena heaps %" PRIu64, seed,
			  reg.arena_heaps);
		CHECK_EQ_U64(reg.mapped.brk + reg.arena_size_bytes,
			     u64(r.truth, "mallinfo2.arena"));
		CHECK(reg.mapped.arena >= reg.arena_size_bytes);
		CHECK_MSG(u64(r.truth, "mallinfo2.hblkhd") > (10 << 20), "hblkhd %" PRIu64,
			  u64(r.truth, "mallinfo2.hblkhd"));
		CHECK_EQ_U64(reg.mapped.mmap, u64(r.truth, "mallinfo2.hblkhd"));
		CHECK(reg.resident_bytes <= reg.mapped.total);
		CHECK(reg.process_rss_bytes >= reg.resident_bytes);
		CHECK(finish(&r) == 0);
	}
}

static void test_jemalloc_regions_are_unknown_in_passive_mode(void)
{
	char *argv[] = {"swiss_cheese", "--count", "20000", NULL};
	struct hf_regions reg;
	struct run r;

	if (access(JEMALLOC, R_OK) != 0)
		HF_SKIP("%s is missing (Debian package libjemalloc2)", JEMALLOC);
	CHECK(start(&r, JEMALLOC, argv));
	if (!r.truth)
		return;
	CHECK(hf_regions_read(r.w.pid, HF_ALLOC_JEMALLOC, HF_MODE_PASSIVE, NULL, 0, &reg) == 0);
	CHECK(hf_known(reg.mapped.brk));
	CHECK_EQ_U64(reg.mapped.arena, HF_UNKNOWN);
	CHECK_EQ_U64(reg.mapped.mmap, HF_UNKNOWN);
	CHECK_EQ_U64(reg.mapped.total, HF_UNKNOWN);
	CHECK_EQ_U64(reg.resident_bytes, HF_UNKNOWN);
	CHECK(reg.process_rss_bytes > 20000 * 1000);
	CHECK(finish(&r) == 0);
}

int main(void)
{
	const char *b = getenv("HF_BUILD_DIR");

	if (!b)
		HF_SKIP("HF_BUILD_DIR is not set; run through ctest");
	snprintf(build_dir, sizeof(build_dir), "%s", b);
	signal(SIGPIPE, SIG_IGN);
	test_swiss_cheese_from_outside();
	test_mixed_threads_arenas_and_mmaps_from_outside();
	test_jemalloc_regions_are_unknown_in_passive_mode();
	return hf_test_done();
}
