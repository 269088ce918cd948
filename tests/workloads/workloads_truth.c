// SPDX-License-Identifier: MIT
/*
 * The workloads speak their protocol and tell a truth that agrees with
 * itself and with the allocator's own books: counts match the options,
 * glibc's chunk sizes and usable sizes follow from the requests, mallinfo2
 * sees nothing the books do not, and LD_PRELOAD really swaps the allocator.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "workload_spawn.h"

#define JEMALLOC "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"

struct run {
	struct workload_proc w;
	int ready_pid;
};

static char build_dir[1024];

static bool start(struct run *r, const char *preload, char *const argv[])
{
	char line[256];

	if (workload_spawn(&r->w, build_dir, preload, argv) != 0)
		return false;
	if (!fgets(line, sizeof(line), r->w.out) ||
	    sscanf(line, "READY pid=%d", &r->ready_pid) != 1)
		return false;
	return r->ready_pid == r->w.pid;
}

static void go(struct run *r)
{
	CHECK(write(r->w.in, "\n", 1) == 1);
}

static char *truth(struct run *r)
{
	return workload_truth(&r->w);
}

static int finish(struct run *r)
{
	return workload_finish(&r->w);
}

/* The value after "a":...,"b": following the dotted path; NULL if absent. */
static const char *field(const char *json, const char *path)
{
	char key[128];
	const char *p = json;

	while (p && *path) {
		size_t len = strcspn(path, ".");

		snprintf(key, sizeof(key), "\"%.*s\":", (int)len, path);
		p = strstr(p, key);
		if (p)
			p += strlen(key);
		path += len + (path[len] == '.');
	}
	return p;
}

static uint64_t u64(const char *json, const char *path)
{
	const char *v = field(json, path);

	return v && *v >= '0' && *v <= '9' ? strtoull(v, NULL, 10) : UINT64_MAX;
}

static bool is_null(const char *json, const char *path)
{
	const char *v = field(json, path);

	return v && strncmp(v, "null", 4) == 0;
}

static bool str_is(const char *json, const char *path, const char *want)
{
	const char *v = field(json, path);

	return v && v[0] == '"' && strncmp(v + 1, want, strlen(want)) == 0 &&
	       v[1 + strlen(want)] == '"';
}

static void test_seed_loop_counts_pairs(void)
{
	char *argv[] = {"seed_loop", "--count", "200000", NULL};
	struct run r;
	char *t;

	CHECK(start(&r, NULL, argv));
	go(&r);
	t = truth(&r);
	CHECK(t != NULL);
	if (t) {
		CHECK(str_is(t, "workload", "seed_loop"));
		CHECK(str_is(t, "allocator.name", "glibc"));
		CHECK_EQ_U64(u64(t, "pid"), r.w.pid);
		CHECK_EQ_U64(u64(t, "calls.malloc"), 200000);
		CHECK_EQ_U64(u64(t, "calls.free"), 200000);
		CHECK_EQ_U64(u64(t, "calls.failed"), 0);
		CHECK_EQ_U64(u64(t, "live_allocations"), 0);
		CHECK_EQ_U64(u64(t, "requested_bytes"), 0);
		CHECK_EQ_U64(u64(t, "chunk_bytes"), 0);
		CHECK(u64(t, "phase_ns") > 0 && u64(t, "phase_ns") != UINT64_MAX);
		/* The loop reuses one chunk: the heap stays at its first size. */
		CHECK_MSG(u64(t, "mallinfo2.arena") <= 200 * 1024, "arena %" PRIu64,
			  u64(t, "mallinfo2.arena"));
	}
	free(t);
	CHECK(finish(&r) == 0);
}

static void test_swiss_cheese_keeps_a_tenth(void)
{
	char *argv[] = {"swiss_cheese", "--count", "20000", "--seed", "7", NULL};
	struct run r;
	char *t;

	CHECK(start(&r, NULL, argv));
	go(&r);
	t = truth(&r);
	CHECK(t != NULL);
	if (t) {
		uint64_t chunks = u64(t, "chunk_bytes"), used = u64(t, "mallinfo2.uordblks");

		CHECK_EQ_U64(u64(t, "calls.malloc"), 20000);
		CHECK_EQ_U64(u64(t, "calls.free"), 18000);
		CHECK_EQ_U64(u64(t, "live_allocations"), 2000);
		CHECK_EQ_U64(u64(t, "requested_bytes"), 2000 * 1000);
		/* glibc: a 1000-byte request takes a 1008-byte chunk with 1000 usable. */
		CHECK_EQ_U64(chunks, 2000 * 1008);
		CHECK_EQ_U64(u64(t, "usable_bytes"), 2000 * 1000);
		/* glibc's books hold the blocks and next to nothing else. */
		CHECK_MSG(used >= chunks && used - chunks < 16384, "uordblks %" PRIu64, used);
		/* 20,000 messages went through brk and most of it is free now. */
		CHECK(u64(t, "mallinfo2.arena") >= 20000 * 1008);
		CHECK(u64(t, "mallinfo2.fordblks") >= 17000 * 1008);
	}
	free(t);
	CHECK(finish(&r) == 0);
}

static char *mixed_truth(const char *seed)
{
	char *argv[] = {"mixed",      "--threads",    "2",   "--ops", "5000", "--seed",
			(char *)seed, "--fail-every", "500", NULL};
	struct run r;
	char *t;

	CHECK(start(&r, NULL, argv));
	go(&r);
	t = truth(&r);
	CHECK(finish(&r) == 0);
	return t;
}

static void test_mixed_is_deterministic_and_consistent(void)
{
	char *a = mixed_truth("3"), *b = mixed_truth("3");

	CHECK(a && b);
	if (!a || !b)
		goto out;
	CHECK_EQ_U64(u64(a, "threads"), 2);
	/* 10 impossible requests per thread, each one failing. */
	CHECK_EQ_U64(u64(a, "calls.failed"), 20);
	CHECK_EQ_U64(u64(a, "calls.memalign"),
		     u64(a, "by_function.posix_memalign") + u64(a, "by_function.aligned_alloc") +
			     u64(a, "by_function.memalign") + u64(a, "by_function.valloc"));
	CHECK(u64(a, "by_function.posix_memalign") > 0 && u64(a, "by_function.aligned_alloc") > 0 &&
	      u64(a, "by_function.memalign") > 0 && u64(a, "by_function.valloc") > 0);
	CHECK_EQ_U64(u64(a, "calls.malloc") + u64(a, "calls.calloc") + u64(a, "calls.realloc") +
			     u64(a, "calls.free") + u64(a, "calls.memalign"),
		     10000);
	CHECK(u64(a, "live_allocations") > 0);
	CHECK(u64(a, "chunk_bytes") >= u64(a, "usable_bytes"));
	CHECK(u64(a, "usable_bytes") >= u64(a, "requested_bytes"));
	CHECK(u64(a, "mallinfo2.uordblks") + u64(a, "mallinfo2.hblkhd") >= u64(a, "chunk_bytes"));
	/* The same seed makes the same calls. */
	CHECK_EQ_U64(u64(a, "calls.malloc"), u64(b, "calls.malloc"));
	CHECK_EQ_U64(u64(a, "calls.realloc"), u64(b, "calls.realloc"));
	CHECK_EQ_U64(u64(a, "calls.free"), u64(b, "calls.free"));
	CHECK_EQ_U64(u64(a, "requested_bytes"), u64(b, "requested_bytes"));
	CHECK_EQ_U64(u64(a, "live_allocations"), u64(b, "live_allocations"));
out:
	free(a);
	free(b);
}

static void test_forker_child_reports_its_own_calls(void)
{
	char *argv[] = {"forker", NULL};
	struct run r;
	char *child, *parent;

	CHECK(start(&r, NULL, argv));
	go(&r);
	child = truth(&r);
	parent = truth(&r);
	CHECK(child && parent);
	if (child && parent) {
		CHECK(str_is(child, "role", "child"));
		CHECK(str_is(parent, "role", "parent"));
		CHECK_EQ_U64(u64(child, "ppid"), r.w.pid);
		CHECK_EQ_U64(u64(parent, "child_pid"), u64(child, "pid"));
		CHECK_EQ_U64(u64(parent, "calls.malloc"), 1000);
		CHECK_EQ_U64(u64(parent, "calls.free"), 0);
		CHECK_EQ_U64(u64(parent, "live_allocations"), 1000);
		CHECK_EQ_U64(u64(parent, "requested_bytes"), 1000 * 256);
		CHECK_EQ_U64(u64(child, "calls.malloc"), 5000);
		CHECK_EQ_U64(u64(child, "calls.free"), 2500 + 100);
		CHECK_EQ_U64(u64(child, "own.live_allocations"), 2500);
		CHECK_EQ_U64(u64(child, "own.requested_bytes"), 2500 * 64);
		CHECK_EQ_U64(u64(child, "inherited.live_allocations"), 900);
		CHECK_EQ_U64(u64(child, "inherited.freed"), 100);
		CHECK_EQ_U64(u64(child, "live_allocations"), 3400);
		CHECK_EQ_U64(u64(child, "requested_bytes"), 2500 * 64 + 900 * 256);
	}
	free(child);
	free(parent);
	CHECK(finish(&r) == 0);
}

static void test_ld_preload_swaps_the_allocator(void)
{
	char *argv[] = {"swiss_cheese", "--count", "20000", NULL};
	struct run r;
	char *t;

	if (access(JEMALLOC, R_OK) != 0)
		HF_SKIP("%s is missing (Debian package libjemalloc2)", JEMALLOC);
	CHECK(start(&r, JEMALLOC, argv));
	go(&r);
	t = truth(&r);
	CHECK(t != NULL);
	if (t) {
		CHECK(str_is(t, "allocator.name", "jemalloc"));
		CHECK(is_null(t, "chunk_bytes"));
		CHECK(is_null(t, "mallinfo2"));
		CHECK_EQ_U64(u64(t, "live_allocations"), 2000);
		/* jemalloc's size class for 1000 bytes is 1024. */
		CHECK_EQ_U64(u64(t, "usable_bytes"), 2000 * 1024);
	}
	free(t);
	CHECK(finish(&r) == 0);
}

static void test_incident_demo_cycles(void)
{
	char *argv[] = {"incident_demo", "--count", "1000",     "--hold", "0",
			"--pause",       "0",       "--cycles", "2",      NULL};
	const char *want[] = {"phase=allocated live_allocations=1000 ",
			      "phase=fragmented live_allocations=100 ",
			      "phase=released live_allocations=0 "};
	char line[256];
	struct run r;
	int n = 0;

	CHECK(start(&r, NULL, argv));
	while (fgets(line, sizeof(line), r.w.out)) {
		CHECK_MSG(strstr(line, want[n % 3]) != NULL, "line %d: %s", n, line);
		n++;
	}
	CHECK(n == 6);
	CHECK(finish(&r) == 0);
}

static void test_bad_options_exit_2(void)
{
	char path[1200];
	int status = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/tests/workloads/seed_loop", build_dir);
	pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "w", stderr);
		execl(path, "seed_loop", "--count", "12x", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

int main(void)
{
	const char *b = getenv("HF_BUILD_DIR");

	if (!b)
		HF_SKIP("HF_BUILD_DIR is not set; run through ctest");
	snprintf(build_dir, sizeof(build_dir), "%s", b);
	signal(SIGPIPE, SIG_IGN);
	test_seed_loop_counts_pairs();
	test_swiss_cheese_keeps_a_tenth();
	test_mixed_is_deterministic_and_consistent();
	test_forker_child_reports_its_own_calls();
	test_incident_demo_cycles();
	test_bad_options_exit_2();
	test_ld_preload_swaps_the_allocator();
	return hf_test_done();
}
