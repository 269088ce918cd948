// SPDX-License-Identifier: MIT
/*
 * ptm_sample_test: with a sample interval set, libptm samples allocations
 * with probability 1 - exp(-size/interval), so that summing the weight
 * size / (1 - exp(-size/interval)) over the live samples estimates the live
 * heap.  Checked on a known heap of small and large blocks, each class on
 * its own, within 15% (about four standard deviations at these counts);
 * with sampling off nothing is sampled.
 *
 * A sampled block is recognisable from outside, as a tracer would see it:
 * a mapped chunk (IS_MMAPPED in the size word) lying 16 bytes into its
 * mapping (prev_size, the word before the size word, is 16).
 */
#include <math.h>
#include <stdlib.h>

#include "ptm_stats.h"
#include "ptm_test.h"

#define INTERVAL (16 * 1024)

static int sampled(const void *p)
{
	return (size_word(p) & PTM_IS_MMAPPED) && ((const size_t *)p)[-2] == 16;
}

static double weight(size_t size)
{
	return (double)size / -expm1(-(double)size / INTERVAL);
}

struct class_result {
	size_t samples;
	double estimate;
	double live;
};

/* Allocates n blocks of size (calloc every fourth), leaves them live in out[]. */
static struct class_result allocate_class(void **out, size_t n, size_t size)
{
	struct class_result r = {0, 0, 0};
	int ok = 1;

	for (size_t i = 0; i < n; i++) {
		out[i] = i % 4 == 3 ? ptm_calloc(1, size) : ptm_malloc(size);
		if (out[i] == NULL) {
			ok = 0;
			continue;
		}
		fill(out[i], size, (unsigned)i);
		r.live += (double)size;
		if (sampled(out[i])) {
			r.samples++;
			r.estimate += weight(size);
		}
	}
	CHECK(ok);
	return r;
}

static void free_class(void **blocks, size_t n, size_t size)
{
	int ok = 1;

	for (size_t i = 0; i < n; i++) {
		ok &= verify(blocks[i], size, (unsigned)i);
		ptm_free(blocks[i]);
	}
	CHECK(ok);
}

static void estimate_of_the_live_heap_is_within_15_percent(void)
{
	enum { NSMALL = 200000, NLARGE = 3200 };
	static void *small[NSMALL], *large[NLARGE];
	struct class_result s, l;
	struct ptm_stats st;

	CHECK(ptm_mallopt(PTM_M_SAMPLE_INTERVAL, INTERVAL) == 1);
	s = allocate_class(small, NSMALL, 64);
	l = allocate_class(large, NLARGE, 4000);
	printf("# small: %zu samples, estimate %.0f of %.0f live bytes (%+.1f%%)\n", s.samples,
	       s.estimate, s.live, 100 * (s.estimate / s.live - 1));
	printf("# large: %zu samples, estimate %.0f of %.0f live bytes (%+.1f%%)\n", l.samples,
	       l.estimate, l.live, 100 * (l.estimate / l.live - 1));
	CHECK_MSG(fabs(s.estimate / s.live - 1) <= 0.15, "small blocks: estimate %.0f, live %.0f",
		  s.estimate, s.live);
	CHECK_MSG(fabs(l.estimate / l.live - 1) <= 0.15, "large blocks: estimate %.0f, live %.0f",
		  l.estimate, l.live);
	/* Proportional to size: a 4000-byte block is far likelier to be sampled. */
	CHECK((double)l.samples / NLARGE > 20 * (double)s.samples / NSMALL);
	CHECK(ptm_stats_get(&st) == 0);
	CHECK(st.mmapped_chunks >= s.samples + l.samples);
	checked_census("with samples live");
	free_class(small, NSMALL, 64);
	free_class(large, NLARGE, 4000);
	CHECK(ptm_stats_get(&st) == 0);
	CHECK_MSG(st.mmapped_chunks == 0, "%llu mapped chunks left",
		  (unsigned long long)st.mmapped_chunks);
	checked_census("after freeing the samples");
}

static void a_sample_survives_realloc_as_an_ordinary_block(void)
{
	char *p = NULL;

	CHECK(ptm_mallopt(PTM_M_SAMPLE_INTERVAL, 1) == 1);
	/* At a 1-byte interval every allocation is a sample. */
	p = ptm_malloc(3000);
	CHECK(p != NULL && sampled(p));
	fill(p, 3000, 9);
	CHECK(ptm_mallopt(PTM_M_SAMPLE_INTERVAL, 0) == 1);
	p = ptm_realloc(p, 20000);
	CHECK(p != NULL && !sampled(p));
	CHECK(verify(p, 3000, 9));
	ptm_free(p);
	checked_census("after realloc of a sample");
}

static void nothing_is_sampled_when_off(void)
{
	enum { N = 20000 };
	static void *b[N];
	size_t n = 0;

	CHECK(ptm_mallopt(PTM_M_SAMPLE_INTERVAL, 0) == 1);
	for (size_t i = 0; i < N; i++) {
		b[i] = ptm_malloc(i % 5000 + 1);
		n += b[i] != NULL && sampled(b[i]);
	}
	CHECK_EQ_U64(n, 0);
	for (size_t i = 0; i < N; i++)
		ptm_free(b[i]);
}

int main(void)
{
	estimate_of_the_live_heap_is_within_15_percent();
	a_sample_survives_realloc_as_an_ordinary_block();
	nothing_is_sampled_when_off();
	return hf_test_done();
}
