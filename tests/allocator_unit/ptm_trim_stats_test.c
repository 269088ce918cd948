// SPDX-License-Identifier: MIT
/*
 * ptm_trim_stats_test: malloc_trim gives back the whole pages inside free
 * chunks (measured with mincore), and mallinfo2, malloc_info and
 * malloc_stats report exactly what the checker's walk of the heap finds.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptm_test.h"

#define NMSG 20000

static size_t resident_pages(char *lo, char *hi)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	char *start = (char *)((uintptr_t)lo & ~(ps - 1));
	size_t len = (size_t)(hi - start), n = (len + ps - 1) / ps, res = 0;
	unsigned char *vec = malloc(n);

	if (vec == NULL || mincore(start, len, vec) != 0) {
		free(vec);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		res += vec[i] & 1;
	free(vec);
	return res;
}

/* The seed's incident: many 1000-byte messages, 90% freed at random. */
static void malloc_trim_returns_pages_inside_free_chunks(void)
{
	static void *msg[NMSG];
	char *lo = (char *)UINTPTR_MAX, *hi = NULL;
	size_t before, after_free, after_trim;
	unsigned seed = 12345;
	int kept_ok = 1;

	/* This is malloc_trim's job alone: the automatic release is off. */
	CHECK(ptm_mallopt(PTM_M_RELEASE_THRESHOLD, 0) == 1);
	for (int i = 0; i < NMSG; i++) {
		msg[i] = ptm_malloc(1000);
		fill(msg[i], 1000, (unsigned)i);
		if ((char *)msg[i] < lo)
			lo = msg[i];
		if ((char *)msg[i] + 1000 > hi)
			hi = (char *)msg[i] + 1000;
	}
	before = resident_pages(lo, hi);
	for (int i = 0; i < NMSG; i++) {
		if (rand_r(&seed) % 10 != 0) {
			ptm_free(msg[i]);
			msg[i] = NULL;
		}
	}
	after_free = resident_pages(lo, hi);
	checked_census("holes punched");
	CHECK(ptm_malloc_trim(0) == 1);
	after_trim = resident_pages(lo, hi);
	checked_census("after malloc_trim");
	CHECK_MSG(before >= NMSG * 1000 / 4096, "before %zu", before);
	/* Freeing alone keeps the pages; trimming gives most of them back. */
	CHECK_MSG(after_free >= before * 9 / 10, "after free %zu of %zu", after_free, before);
	CHECK_MSG(after_trim <= before * 6 / 10, "after trim %zu of %zu", after_trim, before);
	for (int i = 0; i < NMSG; i++) {
		if (msg[i] != NULL) {
			kept_ok &= verify(msg[i], 1000, (unsigned)i);
			ptm_free(msg[i]);
		}
	}
	CHECK(kept_ok);
	/* The freed pages come back, zeroed by the kernel, on reuse. */
	for (int i = 0; i < NMSG; i++) {
		msg[i] = ptm_malloc(1000);
		fill(msg[i], 1000, (unsigned)i);
	}
	for (int i = 0; i < NMSG; i++) {
		kept_ok &= verify(msg[i], 1000, (unsigned)i);
		ptm_free(msg[i]);
	}
	CHECK(kept_ok);
	checked_census("after reuse of trimmed pages");
	CHECK(ptm_mallopt(PTM_M_RELEASE_THRESHOLD, 8192) == 1);
}

static void mallinfo2_matches_the_walk(void)
{
	void *keep[300];
	struct mallinfo2 m;
	struct ptm_heap_census c;

	for (int i = 0; i < 300; i++)
		keep[i] = ptm_malloc((size_t)(i * 97) % 5000 + (i % 7 == 0 ? 300000 : 0));
	for (int i = 0; i < 300; i += 3)
		ptm_free(keep[i]);
	for (int i = 0; i < 20; i++)
		ptm_free(ptm_malloc(64));
	m = ptm_mallinfo2();
	c = checked_census("for mallinfo2");
	CHECK_EQ_U64(m.arena, c.system_bytes);
	CHECK_EQ_U64(m.ordblks, c.free_chunks);
	CHECK_EQ_U64(m.smblks, c.fast_chunks);
	CHECK_EQ_U64(m.fsmblks, c.fast_bytes);
	CHECK_EQ_U64(m.fordblks, c.free_bytes + c.fast_bytes);
	CHECK_EQ_U64(m.uordblks, c.system_bytes - m.fordblks);
	CHECK_EQ_U64(m.hblks, c.mmapped_chunks);
	CHECK_EQ_U64(m.hblkhd, c.mmapped_bytes);
	CHECK_EQ_U64(m.keepcost, c.top_bytes);
	CHECK(c.inuse_bytes + c.tcache_bytes + c.free_bytes + c.fast_bytes <= c.system_bytes);
	for (int i = 1; i < 300; i++)
		if (i % 3)
			ptm_free(keep[i]);
}

static char *capture(void (*fn)(void), int fd_to_capture)
{
	char path[] = "/tmp/ptm_statsXXXXXX";
	int fd = mkstemp(path), saved = dup(fd_to_capture);
	static char buf[65536];
	ssize_t n;

	unlink(path);
	fflush(NULL);
	dup2(fd, fd_to_capture);
	fn();
	fflush(NULL);
	dup2(saved, fd_to_capture);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void print_info(void)
{
	CHECK(ptm_malloc_info(0, stdout) == 0);
}

static void malloc_info_and_malloc_stats_use_glibcs_format(void)
{
	struct mallinfo2 m = ptm_mallinfo2();
	struct ptm_heap_census c = checked_census("for malloc_info");
	const char *xml = capture(print_info, STDOUT_FILENO), *tot, *st;
	size_t fast_n, fast_sz, rest_n, rest_sz, mmap_sz, sys_cur;
	int mmap_n;
	unsigned sys_b;

	CHECK(ptm_malloc_info(1, stdout) == EINVAL);
	CHECK(strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", 43) == 0);
	tot = strstr(xml, "</heap>\n<total type=\"fast\"");
	CHECK(tot != NULL);
	if (tot != NULL) {
		int n = sscanf(tot,
			       "</heap>\n<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n"
			       "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
			       "<total type=\"mmap\" count=\"%d\" size=\"%zu\"/>\n"
			       "<system type=\"current\" size=\"%zu\"/>",
			       &fast_n, &fast_sz, &rest_n, &rest_sz, &mmap_n, &mmap_sz, &sys_cur);
		CHECK(n == 7);
		CHECK_EQ_U64(fast_n, m.smblks);
		CHECK_EQ_U64(fast_sz, m.fsmblks);
		CHECK_EQ_U64(rest_n, m.ordblks);
		CHECK_EQ_U64(rest_sz, m.fordblks - m.fsmblks);
		CHECK_EQ_U64((size_t)mmap_n, m.hblks);
		CHECK_EQ_U64(mmap_sz, m.hblkhd);
		CHECK_EQ_U64(sys_cur, c.system_bytes);
	}
	CHECK(strstr(xml, "</malloc>\n") != NULL);

	st = capture(ptm_malloc_stats, STDERR_FILENO);
	CHECK(strncmp(st, "Arena 0:\nsystem bytes     = ", 28) == 0);
	CHECK(sscanf(st, "Arena 0:\nsystem bytes     = %u", &sys_b) == 1);
	CHECK_EQ_U64(sys_b, (unsigned)ptm_mallinfo2().arena);
	CHECK(strstr(st, "Total (incl. mmap):\nsystem bytes     = ") != NULL);
	CHECK(strstr(st, "max mmap regions = ") != NULL);
	CHECK(strstr(st, "max mmap bytes   = ") != NULL);
}

int main(void)
{
	malloc_trim_returns_pages_inside_free_chunks();
	mallinfo2_matches_the_walk();
	malloc_info_and_malloc_stats_use_glibcs_format();
	return hf_test_done();
}
