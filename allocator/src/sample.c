// SPDX-License-Identifier: MIT
/*
 * sample.c - the sampled heap profile (MALLOC_SAMPLE_INTERVAL_).
 *
 * Allocations are sampled as points of a Poisson process over allocated
 * bytes, of mean interval T bytes, as tcmalloc does: each thread cache
 * counts down the bytes until its next sample, drawn from an exponential
 * distribution of mean T; the allocation that takes the countdown below
 * zero is sampled.  An allocation of s bytes is thus sampled with
 * probability 1 - exp(-s/T), and its weight, s / (1 - exp(-s/T)), makes
 * the estimate unbiased: the expected sum of the weights of the live
 * samples is the live heap.  For s much smaller than T the weight is about
 * T ("each sample stands for interval bytes"); for s much larger, about s.
 * The USDT probe libptm:sample_alloc(ptr, size, weight, caller) reports a sample,
 * libptm:sample_free(ptr) its free; a tracer that sums the weights of the
 * samples not yet freed has the estimate.  512 KiB is the recommended
 * interval: a few samples per megabyte allocated.
 *
 * The fast path pays one subtraction and no branch of its own: the
 * countdown's sign is folded into its one unlikely branch.  With sampling
 * off the countdown starts at INTPTR_MAX and never reaches zero in
 * practice (if it does, the slow path puts it back).
 *
 * A sampled block gets a mapping of its own, with its chunk 16 bytes into
 * it and, in the mapping's first word, a keyed hash of the chunk's address.
 * free() already takes its slow path for mapped chunks, so the fast path
 * needs no test for samples; ordinary mapped chunks never start 16 bytes
 * into their mapping (memalign leads are at least MINSIZE), so the slow
 * path tells samples apart with one compare, then the hash.  At 512 KiB,
 * the page per sample costs under 1% of the memory allocated, and the
 * mmap/munmap pair a few microseconds per 512 KiB.  calloc is sampled like
 * malloc; realloc, memalign and their kin are not, and a sampled block
 * that realloc keeps becomes an ordinary block (sample_free fires).
 */
#include <sys/mman.h>

#include "internal.h"
#include "usdt.h"

#define SAMPLE_LEAD ((size_t)2 * SIZE_SZ)
#define SAMPLE_SALT ((uintptr_t)0x5a3c96e1f0b4d287ULL)

static uint64_t rng_next(struct ptm_tcache *tc)
{
	uint64_t x = tc->sample_rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	tc->sample_rng = x;
	return x;
}

/* ln(u) for u in (0, 1], without libm: exponent, then atanh's series on the mantissa. */
static double ln_unit(double u)
{
	union {
		double d;
		uint64_t b;
	} v = {.d = u};
	int e = (int)((v.b >> 52) & 0x7ff) - 1023;
	double m, z, z2;

	v.b = (v.b & ((1ULL << 52) - 1)) | (1023ULL << 52);
	m = v.d;
	if (m > 1.4142135623730951) {
		m /= 2;
		e++;
	}
	z = (m - 1) / (m + 1);
	z2 = z * z;
	return e * 0.6931471805599453 +
	       2 * z * (1 + z2 * (1.0 / 3 + z2 * (1.0 / 5 + z2 * (1.0 / 7 + z2 * (1.0 / 9)))));
}

/* 1 - exp(-x) for x >= 0: halve x until small, a Taylor series, then square back. */
static double one_minus_exp_neg(double x)
{
	double t, e;
	int k = 0;

	if (x > 40)
		return 1;
	while (x > 0.25) {
		x /= 2;
		k++;
	}
	t = -x;
	e = t * (1 + t / 2 * (1 + t / 3 * (1 + t / 4 * (1 + t / 5 * (1 + t / 6)))));
	while (k-- > 0)
		e = e * (e + 2);
	return -e;
}

/* The bytes until the next sample: exponential with mean interval. */
static intptr_t draw_countdown(struct ptm_tcache *tc, size_t interval)
{
	double u = ((double)(rng_next(tc) >> 11) + 1) / 9007199254740992.0;
	double d = -ln_unit(u) * (double)interval;

	return d >= (double)INTPTR_MAX ? INTPTR_MAX : (intptr_t)d + 1;
}

void ptm_i_sample_reset(struct ptm_tcache *tc)
{
	size_t interval = __atomic_load_n(&mp_.sample_interval, __ATOMIC_RELAXED);

	if (tc->sample_rng == 0)
		tc->sample_rng = ((uintptr_t)tc ^ ptm_i_tcache_key) | 1;
	tc->sample_left = interval == 0 ? INTPTR_MAX : draw_countdown(tc, interval);
}

static inline uintptr_t sample_tag(mchunkptr p)
{
	return (ptm_i_tcache_key ^ SAMPLE_SALT) ^ (uintptr_t)p;
}

void *ptm_i_sample_alloc(struct ptm_tcache *tc, size_t bytes, const void *caller)
{
	size_t interval = __atomic_load_n(&mp_.sample_interval, __ATOMIC_RELAXED);
	size_t nb, weight, size;
	mchunkptr p;
	void *mem;
	char *mm;

	ptm_i_sample_reset(tc);
	if (interval == 0 || !checked_request2size(bytes, &nb))
		return NULL;
	size = ALIGN_UP(SAMPLE_LEAD + nb + SIZE_SZ, mp_.pagesize);
	mm = ptm_i_sys_mmap_chunk(size);
	if (mm == NULL)
		return NULL;
	p = (mchunkptr)(mm + SAMPLE_LEAD);
	p->prev_size = SAMPLE_LEAD;
	set_head(p, (size - SAMPLE_LEAD) | IS_MMAPPED);
	*(uintptr_t *)mm = sample_tag(p);
	mem = chunk2mem(p);
	weight = (size_t)((double)bytes / one_minus_exp_neg((double)bytes / (double)interval));
	if (weight < bytes)
		weight = bytes;
	PTM_PROBE4(sample_alloc, mem, bytes, weight, caller);
	return mem;
}

int ptm_i_sample_is(mchunkptr p)
{
	return p->prev_size == SAMPLE_LEAD &&
	       *(const uintptr_t *)((const char *)p - SAMPLE_LEAD) == sample_tag(p);
}

void ptm_i_sample_forget(mchunkptr p)
{
	PTM_PROBE1(sample_free, chunk2mem(p));
	*(uintptr_t *)((char *)p - SAMPLE_LEAD) = 0;
}
