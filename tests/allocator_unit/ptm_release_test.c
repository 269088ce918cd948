// SPDX-License-Identifier: MIT
/*
 * ptm_release_test: free chunks above the release threshold give their
 * whole pages back to the kernel by themselves (measured with mincore),
 * incrementally and exactly once, take them back transparently on reuse,
 * and the books count every byte.
 *
 * The seed's swiss-cheese incident (100,000 x malloc(1000), 90% freed at
 * random) is measured against the floor a non-moving allocator cannot go
 * below: the pages that still hold a byte of a surviving message.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptm_stats.h"
#include "ptm_test.h"

#define NMSG 100000

static size_t pagesize;

/*
 * Resident pages of [lo, hi).  Pages no longer mapped (the break lowered
 * by a trim) count as not resident: one mincore per page when the whole
 * range cannot be asked at once.
 */
static size_t resident_pages(const char *lo, const char *hi)
{
	char *start = (char *)((uintptr_t)lo & ~(pagesize - 1));
	size_t len = (size_t)(hi - start), n = (len + pagesize - 1) / pagesize, res = 0;
	unsigned char *vec = malloc(n);

	CHECK(vec != NULL);
	if (vec == NULL)
		return 0;
	if (mincore(start, len, vec) == 0) {
		for (size_t i = 0; i < n; i++)
			res += vec[i] & 1;
	} else {
		CHECK(errno == ENOMEM);
		for (size_t i = 0; i < n; i++)
			if (mincore(start + i * pagesize, pagesize, vec) == 0)
				res += vec[0] & 1;
	}
	free(vec);
	return res;
}

static int page_resident(const void *p)
{
	unsigned char v = 0;

	/* The page is inside the heap: it must still be mapped. */
	CHECK(mincore((void *)((uintptr_t)p & ~(pagesize - 1)), 1, &v) == 0);
	return v & 1;
}

static struct ptm_stats stats(void)
{
	static struct ptm_stats st;

	CHECK(ptm_stats_get(&st) == 0);
	return st;
}

/* Marks each page holding a byte of [p, p + n) in map (one byte per page from base). */
static void touch_map(unsigned char *map, uintptr_t base, const char *p, size_t n)
{
	for (uintptr_t a = (uintptr_t)p & ~(pagesize - 1); a < (uintptr_t)p + n; a += pagesize)
		map[(a - base) / pagesize] = 1;
}

static void swiss_cheese_resident_heap_drops_to_the_live_pages(void)
{
	static void *msg[NMSG];
	static size_t order[NMSG];
	char *lo = (char *)UINTPTR_MAX, *hi = NULL;
	size_t peak, after, trimmed, floor_pages = 0, npages;
	unsigned char *map;
	unsigned seed = 2024;
	int kept_ok = 1;
	struct ptm_stats st;

	for (size_t i = 0; i < NMSG; i++) {
		msg[i] = ptm_malloc(1000);
		fill(msg[i], 1000, (unsigned)i);
		if ((char *)msg[i] < lo)
			lo = msg[i];
		if ((char *)msg[i] + 1000 > hi)
			hi = (char *)msg[i] + 1000;
		order[i] = i;
	}
	peak = resident_pages(lo, hi);
	for (size_t i = NMSG - 1; i > 0; i--) {
		size_t j = (size_t)rand_r(&seed) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < NMSG * 9 / 10; i++) {
		ptm_free(msg[order[i]]);
		msg[order[i]] = NULL;
	}
	after = resident_pages(lo, hi);

	/* The floor: pages holding a byte of a survivor's chunk, header included. */
	npages = ((uintptr_t)hi - ((uintptr_t)lo & ~(pagesize - 1))) / pagesize + 1;
	map = calloc(npages, 1);
	CHECK(map != NULL);
	if (map == NULL)
		return;
	for (size_t i = 0; i < NMSG; i++)
		if (msg[i] != NULL)
			touch_map(map, (uintptr_t)lo & ~(pagesize - 1), (char *)msg[i] - 16, 1016);
	for (size_t i = 0; i < npages; i++)
		floor_pages += map[i];
	free(map);

	st = stats();
	printf("# swiss cheese: peak %zu pages, after the frees %zu (%.1f%%), floor %zu (%.1f%%); "
	       "released %llu B in %llu calls, %llu B now\n",
	       peak, after, 100.0 * (double)after / (double)peak, floor_pages,
	       100.0 * (double)floor_pages / (double)peak,
	       (unsigned long long)st.release_total_bytes, (unsigned long long)st.release_calls,
	       (unsigned long long)st.released_bytes);
	CHECK_MSG(peak >= NMSG * 1000 / 4096, "peak %zu", peak);
	/*
	 * At most the floor plus 5% of the peak: only the holes freed within
	 * the last delay may still be pending (44.5% against a 41.2% floor when
	 * written; with holes re-queued at each merge and an 8 KiB threshold it
	 * was about 50%).
	 */
	CHECK_MSG(after <= floor_pages + peak * 5 / 100, "after %zu, floor %zu, peak %zu", after,
		  floor_pages, peak);
	CHECK_MSG(after >= floor_pages, "after %zu below the floor %zu", after, floor_pages);
	CHECK(st.released_bytes > 0);
	CHECK_EQ_U64(st.released_bytes, st.release_total_bytes - st.reuse_total_bytes);
	checked_census("after the swiss-cheese frees");

	/* malloc_trim releases the pending rest too: the floor, or within a few pages of it. */
	ptm_malloc_trim(0);
	trimmed = resident_pages(lo, hi);
	printf("# after malloc_trim(0): %zu pages (%.1f%% of the peak)\n", trimmed,
	       100.0 * (double)trimmed / (double)peak);
	CHECK_MSG(trimmed <= floor_pages + peak / 100, "trimmed %zu, floor %zu", trimmed,
		  floor_pages);

	/* The survivors are intact; reusing the holes brings the pages back. */
	for (size_t i = 0; i < NMSG; i++)
		if (msg[i] != NULL)
			kept_ok &= verify(msg[i], 1000, (unsigned)i);
	CHECK(kept_ok);
	for (size_t i = 0; i < NMSG; i++) {
		if (msg[i] == NULL) {
			msg[i] = ptm_malloc(1000);
			fill(msg[i], 1000, (unsigned)i + 7);
		}
	}
	st = stats();
	CHECK_MSG(st.reuse_total_bytes > 0, "reused %llu",
		  (unsigned long long)st.reuse_total_bytes);
	CHECK_EQ_U64(st.released_bytes, st.release_total_bytes - st.reuse_total_bytes);
	checked_census("after reusing the holes");
	for (size_t i = 0; i < NMSG; i++) {
		kept_ok &=
			verify(msg[i], 1000, (unsigned)i) || verify(msg[i], 1000, (unsigned)i + 7);
		ptm_free(msg[i]);
	}
	CHECK(kept_ok);
	checked_census("after freeing everything");
}

/*
 * With no delay, a freed block's pages go at once; freeing its neighbour
 * then releases only the neighbour's pages and the pages at the seam, never
 * the first block's again.
 */
static void release_is_incremental_and_never_repeated(void)
{
	enum { BIG = 64 * 1024, SMALL = 16 * 1024 };
	char *guard1, *a, *b, *guard2;
	struct ptm_stats s0, s1, s2;

	/* Earlier tests' pending chunks are released now, not during this one. */
	ptm_malloc_trim(0);
	CHECK(ptm_mallopt(PTM_M_RELEASE_DELAY, 0) == 1);
	guard1 = ptm_malloc(100);
	a = ptm_malloc(BIG);
	b = ptm_malloc(SMALL);
	guard2 = ptm_malloc(100);
	memset(a, 1, BIG);
	memset(b, 2, SMALL);
	s0 = stats();
	ptm_free(a);
	s1 = stats();
	CHECK_EQ_U64(s1.release_calls - s0.release_calls, 1);
	CHECK_MSG(s1.release_total_bytes - s0.release_total_bytes >= BIG - 2 * pagesize,
		  "released %llu",
		  (unsigned long long)(s1.release_total_bytes - s0.release_total_bytes));
	CHECK(!page_resident(a + BIG / 2));
	ptm_free(b);
	s2 = stats();
	/* Only b's pages and the seam: at most SMALL plus two pages. */
	CHECK_MSG(s2.release_total_bytes - s1.release_total_bytes <= SMALL + 2 * pagesize,
		  "second release %llu",
		  (unsigned long long)(s2.release_total_bytes - s1.release_total_bytes));
	CHECK(s2.release_total_bytes - s1.release_total_bytes >= SMALL - 2 * pagesize);
	CHECK(!page_resident(b + SMALL / 2));
	CHECK_EQ_U64(s2.released_bytes, s2.release_total_bytes - s2.reuse_total_bytes);
	checked_census("after two adjacent releases");

	/* Reuse: calloc over released pages is zero; malloc writes stick. */
	{
		char *c = ptm_calloc(1, BIG);
		int zero = 1;

		CHECK(c != NULL);
		for (size_t i = 0; c != NULL && i < BIG; i++)
			zero &= c[i] == 0;
		CHECK(zero);
		memset(c, 3, BIG);
		CHECK(c[BIG - 1] == 3);
		CHECK(stats().reuse_total_bytes > s2.reuse_total_bytes);
		checked_census("after calloc over released pages");
		ptm_free(c);
	}
	ptm_free(guard1);
	ptm_free(guard2);
	checked_census("after the incremental release");
	CHECK(ptm_mallopt(PTM_M_RELEASE_DELAY, 1024) == 1);
}

/* Pending chunks wait for the delay: reused before it, they cost no madvise. */
static void quick_reuse_costs_no_release(void)
{
	struct ptm_stats s0, s1;
	char *guard;

	ptm_malloc_trim(0);
	guard = ptm_malloc(100);
	s0 = stats();
	for (int i = 0; i < 200; i++) {
		char *p = ptm_malloc(50000), *q = ptm_malloc(100);

		memset(p, i, 50000);
		ptm_free(p);
		ptm_free(q);
	}
	s1 = stats();
	CHECK_MSG(s1.release_calls == s0.release_calls, "%llu madvise calls",
		  (unsigned long long)(s1.release_calls - s0.release_calls));
	ptm_free(guard);
	checked_census("after quick reuse");
}

/* Threshold 0 turns it off; MADV_FREE is counted the same way. */
static void threshold_zero_is_off_and_madv_free_counts(void)
{
	struct ptm_stats s0, s1;
	char *g1, *p, *g2;

	ptm_malloc_trim(0);
	CHECK(ptm_mallopt(PTM_M_RELEASE_DELAY, 0) == 1);
	CHECK(ptm_mallopt(PTM_M_RELEASE_THRESHOLD, 0) == 1);
	g1 = ptm_malloc(100);
	p = ptm_malloc(40000);
	g2 = ptm_malloc(100);
	memset(p, 5, 40000);
	s0 = stats();
	ptm_free(p);
	s1 = stats();
	CHECK_EQ_U64(s1.release_calls, s0.release_calls);
	CHECK(page_resident(p + 20000));
	ptm_free(g1);
	ptm_free(g2);

	CHECK(ptm_mallopt(PTM_M_RELEASE_THRESHOLD, 8192) == 1);
	CHECK(ptm_mallopt(PTM_M_RELEASE_MADV_FREE, 1) == 1);
	g1 = ptm_malloc(100);
	p = ptm_malloc(40000);
	g2 = ptm_malloc(100);
	memset(p, 6, 40000);
	s0 = stats();
	ptm_free(p);
	s1 = stats();
	CHECK_EQ_U64(s1.release_calls - s0.release_calls, 1);
	CHECK(s1.released_bytes > s0.released_bytes);
	p = ptm_malloc(40000);
	memset(p, 7, 40000);
	CHECK(p[39999] == 7);
	checked_census("after MADV_FREE reuse");
	ptm_free(p);
	ptm_free(g1);
	ptm_free(g2);
	CHECK(ptm_mallopt(PTM_M_RELEASE_MADV_FREE, 0) == 1);
	CHECK(ptm_mallopt(PTM_M_RELEASE_DELAY, 1024) == 1);
	checked_census("after MADV_FREE");
}

/* From now on, system call nr fails with err in this process (seccomp); err 0 kills it. */
static int refuse_syscall(long nr, int err)
{
	unsigned action = err ? SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)
			      : SECCOMP_RET_KILL_PROCESS;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0 : -errno;
}

/*
 * In a child: with nr refused, 64 holes (each between live guards) are
 * freed, then the frees of a small block tick the arena's free
 * clock past the release delay: one round releases all 64 together (they
 * became pending within a quarter delay of each other).  Every hole's
 * pages must be gone, the books must count a run per hole, and free must
 * leave errno alone.  Returns the number of failed checks (the exit status).
 */
static int holes_released_with_syscall_refused(long nr, int err, int batch)
{
	enum { HOLES = 64, HOLE = 40000, DELAY = 256 };
	char *hole[HOLES], *ticker;
	struct ptm_stats s0, s1;
	int bad = 0;

	if (ptm_mallopt(PTM_M_RELEASE_BATCH, batch) != 1)
		return 99;
	if (refuse_syscall(nr, err) != 0)
		return 100;
	if (ptm_mallopt(PTM_M_RELEASE_DELAY, DELAY) != 1)
		return 101;
	ptm_malloc_trim(0);
	for (int i = 0; i < HOLES; i++) {
		hole[i] = ptm_malloc(HOLE);
		memset(hole[i], i + 1, HOLE);
		/* A guard too big for the thread cache: it comes right after the hole. */
		if (ptm_malloc(HOLE) == NULL)
			return 102;
	}
	/* Too big for the thread cache and the fastbins: each free is a tick. */
	ticker = ptm_malloc(2000);
	if (ticker == NULL || ptm_malloc(100) == NULL || ptm_stats_get(&s0) != 0)
		return 103;
	for (int i = 0; i < HOLES; i++) {
		errno = 1234;
		ptm_free(hole[i]);
		bad += errno != 1234;
	}
	/* The arena may have stretched its delay (earlier tests reused early): up to 64 times. */
	for (int i = 1; i <= 64 * 2 * DELAY; i++) {
		errno = 1234;
		ptm_free(ticker);
		bad += errno != 1234;
		ticker = ptm_malloc(2000);
		if (i % DELAY == 0) {
			if (ptm_stats_get(&s1) != 0)
				return 104;
			if (s1.release_calls - s0.release_calls >= HOLES)
				break;
		}
	}
	/* Holes that happened to be neighbours merged into one run. */
	CHECK_MSG(s1.release_calls - s0.release_calls >= HOLES / 2 &&
			  s1.release_calls - s0.release_calls <= HOLES,
		  "%llu runs released", (unsigned long long)(s1.release_calls - s0.release_calls));
	CHECK(s1.released_bytes - s0.released_bytes >= HOLES * (uint64_t)(HOLE - 3 * pagesize));
	for (int i = 0; i < HOLES; i++)
		CHECK_MSG(!page_resident(hole[i] + HOLE / 2), "hole %d still resident", i);
	CHECK_EQ_U64(bad, 0);
	checked_census("after the holes' release");
	return hf_checks_failed;
}

static int run_in_child(long nr, int err, int batch)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(holes_released_with_syscall_refused(nr, err, batch));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	/* Killed by the filter: -SIGSYS. */
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/*
 * Runs go to the kernel in batches (process_madvise on oneself) where it
 * accepts them: with madvise refused, the pages still go.  A kernel that
 * refuses process_madvise gets one madvise per run instead, the same pages.
 * With batches off (MALLOC_RELEASE_BATCH_=0), a program whose seccomp
 * filter kills on process_madvise never makes that call.
 */
static void releases_reach_the_kernel_batched_or_one_by_one(void)
{
	int with_batches = run_in_child(SYS_madvise, EPERM, 1);
	int without = run_in_child(SYS_process_madvise, ENOSYS, 1);
	int batches_off = run_in_child(SYS_process_madvise, 0, 0);

	CHECK_MSG(with_batches == 0, "madvise refused: %d failed checks", with_batches);
	CHECK_MSG(without == 0, "process_madvise refused: %d failed checks", without);
	CHECK_MSG(batches_off == 0, "batches off, process_madvise fatal: %d", batches_off);
	CHECK(ptm_mallopt(PTM_M_RELEASE_BATCH, 2) == 0);
}

int main(void)
{
	pagesize = (size_t)sysconf(_SC_PAGESIZE);
	swiss_cheese_resident_heap_drops_to_the_live_pages();
	release_is_incremental_and_never_repeated();
	quick_reuse_costs_no_release();
	threshold_zero_is_off_and_madv_free_counts();
	releases_reach_the_kernel_batched_or_one_by_one();
	return hf_test_done();
}
