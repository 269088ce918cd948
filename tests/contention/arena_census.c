// SPDX-License-Identifier: MIT
/*
 * arena_census: main_arena is found at the same address from libc6-dbg's
 * symbol and by the heuristic, and the arena list read from outside matches
 * what the process's own malloc_info() says: one arena per thread, each with
 * its heap, its bytes and one attached thread.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "arena_map.h"
#include "check.h"
#include "log.h"
#include "workload_ctl.h"

#define THREADS 3

/* system "current" of each <heap nr="N"> in malloc_info's XML, in order. */
static int read_malloc_info(struct workload *w, uint64_t *sizes, int max)
{
	char line[512];
	int n = -1, last = -1;

	while (fgets(line, sizeof(line), w->out) && strncmp(line, "end", 3) != 0) {
		unsigned long long size;
		int nr;

		if (sscanf(line, " <heap nr=\"%d\">", &nr) == 1)
			n = nr;
		else if (strstr(line, "</heap>"))
			last = n, n = -1;
		else if (n >= 0 && n < max &&
			 sscanf(line, " <system type=\"current\" size=\"%llu\"/>", &size) == 1)
			sizes[n] = size;
	}
	return last + 1;
}

int main(void)
{
	char path[512], line[256], nthreads[8];
	char *argv[] = {path, "arenas", nthreads, "0", NULL};
	uint64_t by_symbol = 0, by_scan = 0, by_env = 0, sizes[16] = {0};
	enum hf_main_arena_source src_symbol, src_scan, src_env;
	struct hf_arena arenas[HF_MAX_ARENAS];
	struct hf_libc_map libc;
	struct workload w = {0};
	bool truncated;
	size_t n = 0;
	int heaps, err;

	hf_log_level = HF_LOG_DEBUG;
	snprintf(nthreads, sizeof(nthreads), "%d", THREADS);
	workload_path("arena_workload", path, sizeof(path));
	if (access("/usr/lib/debug/.build-id", F_OK) != 0)
		HF_SKIP("libc6-dbg is not installed: the symbol path cannot be compared");
	CHECK(workload_start(&w, argv, NULL) == 0);
	CHECK(workload_expect(&w, "ready", line, sizeof(line)) == 0);
	CHECK(workload_send(&w, "go") == 0);
	CHECK(workload_expect(&w, "done", line, sizeof(line)) == 0);
	heaps = read_malloc_info(&w, sizes, 16);

	err = hf_libc_map_read(w.pid, &libc);
	CHECK_MSG(err == 0, "hf_libc_map_read: %s", strerror(-err));
	CHECK(strstr(libc.target_path, "libc.so.6") != NULL);
	err = hf_main_arena_find(w.pid, &libc, 0, &by_symbol, &src_symbol);
	CHECK_MSG(err == 0, "main_arena from symbols: %s", strerror(-err));
	CHECK(src_symbol == HF_MAIN_ARENA_DEBUG_SYMBOLS);
	err = hf_main_arena_find(w.pid, &libc, HF_ARENA_FORCE_HEURISTIC, &by_scan, &src_scan);
	CHECK_MSG(err == 0, "main_arena by heuristic: %s", strerror(-err));
	CHECK(src_scan == HF_MAIN_ARENA_HEURISTIC);
	setenv("HF_FORCE_ARENA_HEURISTIC", "1", 1);
	err = hf_main_arena_find(w.pid, &libc, 0, &by_env, &src_env);
	unsetenv("HF_FORCE_ARENA_HEURISTIC");
	CHECK_MSG(err == 0 && src_env == HF_MAIN_ARENA_HEURISTIC,
		  "HF_FORCE_ARENA_HEURISTIC=1 selects the heuristic");
	printf("main_arena: 0x%" PRIx64 " from libc6-dbg, 0x%" PRIx64 " by heuristic\n", by_symbol,
	       by_scan);
	CHECK_EQ_U64(by_scan, by_symbol);
	CHECK_EQ_U64(by_env, by_symbol);

	err = hf_arena_map_read(w.pid, by_symbol, arenas, HF_MAX_ARENAS, &n, &truncated);
	CHECK_MSG(err == 0, "hf_arena_map_read: %s", strerror(-err));
	CHECK(!truncated);
	/* Each of the threads got an arena of its own (the default limit is 8 per core). */
	CHECK_EQ_U64(n, 1 + THREADS);
	CHECK_EQ_U64(heaps, n);
	for (size_t i = 0; i < n && i < 16; i++) {
		const struct hf_arena *a = &arenas[i];

		printf("arena %zu: 0x%" PRIx64 " %s heaps %" PRIu64 " mapped %" PRIu64
		       " threads %" PRIu64 " (malloc_info: %" PRIu64 ")\n",
		       i, a->address, a->kind == HF_ARENA_MAIN ? "main" : "thread", a->heaps,
		       a->mapped_bytes, a->threads, sizes[i]);
		CHECK(a->kind == (i == 0 ? HF_ARENA_MAIN : HF_ARENA_THREAD));
		CHECK(a->heaps >= 1);
		/* Nothing was freed, so no heap shrank: committed bytes are glibc's system_mem. */
		CHECK_EQ_U64(a->mapped_bytes, sizes[i]);
		CHECK_EQ_U64(a->threads, 1);
		CHECK(a->lock.acquisitions == HF_UNKNOWN && a->lock.contended == HF_UNKNOWN);
	}
	/* 4 MiB kept per thread arena. */
	for (size_t i = 1; i < n; i++)
		CHECK(arenas[i].mapped_bytes >= (4u << 20));

	CHECK_EQ_U64(workload_finish(&w), 0);
	return hf_test_done();
}
