/* SPDX-License-Identifier: MIT */
/*
 * misuse.c - libptm aborts on heap misuse with glibc 2.36's own messages.
 *
 * Each case corrupts the heap the way a real bug does (double free, a stray
 * write over a chunk header, a pointer into the middle of a block) in a
 * freshly executed child, so the heap starts from a known state.  The driver
 * checks that the child died of SIGABRT and that its output (the child
 * writes nothing else) has the exact stderr line glibc prints, as a line of
 * its own.  Every case runs on glibc first, which proves the
 * corruption reaches the intended check; then the same case runs on libptm.
 *
 * The recipes follow glibc 2.36's malloc.c on x86_64: chunk headers are the
 * two size_t words before the pointer (prev_size, size|flags); requests
 * above 1032 bytes bypass the per-thread cache; requests of at most 120
 * bytes use fastbins once their cache bin holds 7 chunks.
 */
#include "check.h"
#include "preload.h"

#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/*
 * The words around a block, reached through a pointer the compiler cannot
 * trace back to malloc: it would otherwise reject the out-of-bounds access
 * that is the whole point here.
 */
static size_t *words(void *p)
{
	uintptr_t u = (uintptr_t)p;

	__asm__("" : "+r"(u));
	return (size_t *)u;
}

/* The size word (with its flag bits) and the prev_size word of p's chunk. */
#define SIZE_WORD(p)  (words(p)[-1])
#define PREV_SIZE(p)  (words(p)[-2])
#define CHUNK_SIZE(p) (SIZE_WORD(p) & ~(size_t)7)
/* The size word of the chunk after p's, which sits just past p's usable bytes. */
#define NEXT_SIZE_WORD(p) (words((char *)(p) + CHUNK_SIZE(p))[-1])

#define FAST_REQ    0x28  /* 48-byte chunks: a fastbin size */
#define LARGE_REQ   0x500 /* 1296-byte chunks: beyond the thread cache */
#define TCACHE_FILL 7

/* A fake chunk whose fd and bk point nowhere useful, for forged links. */
static _Alignas(16) size_t fake_chunk[8];

/* Keeps the compiler from reasoning about the pointers it hands to free. */
static void *volatile sink;

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "malloc(%zu) failed\n", n);
		exit(4);
	}
	sink = p;
	return p;
}

/* Allocates n chunks of one size and frees the first 7 to fill its cache bin. */
static void fill_tcache(void **blocks, int n, size_t req)
{
	int i;

	for (i = 0; i < n; i++)
		blocks[i] = xmalloc(req);
	for (i = 0; i < TCACHE_FILL; i++)
		free(blocks[i]);
}

static void drain_tcache(size_t req)
{
	int i;

	for (i = 0; i < TCACHE_FILL; i++)
		xmalloc(req);
}

static void tcache_double_free(void)
{
	void *p = xmalloc(0x38);

	free(p);
	free(p);
}

static void fastbin_double_free(void)
{
	void *a[9];

	fill_tcache(a, 9, FAST_REQ);
	free(a[7]);
	free(a[7]);
}

static void free_interior_pointer(void)
{
	char *p = calloc(1, 256);

	/* The "header" in front of p + 64 is zeroed user data. */
	free(p + 64);
}

static void free_misaligned_pointer(void)
{
	char *p = calloc(1, 64);

	free(p + 8);
}

static void free_invalid_size(void)
{
	char *p = calloc(1, 256);

	SIZE_WORD(p + 64) = 0x11; /* 16 bytes: smaller than any chunk */
	free(p + 64);
}

static void free_top_twice(void)
{
	void *p = xmalloc(0x5000);

	/* p is carved from the top chunk, so freeing it makes it the top. */
	free(p);
	free(p);
}

static void free_size_beyond_arena(void)
{
	void *p = xmalloc(LARGE_REQ);

	xmalloc(0x20);
	SIZE_WORD(p) = ((size_t)64 << 20) | 1;
	free(p);
}

static void free_large_twice(void)
{
	void *a = xmalloc(LARGE_REQ);

	xmalloc(LARGE_REQ);
	free(a);
	free(a);
}

static void free_fast_next_size_zero(void)
{
	void *a[9];

	fill_tcache(a, 9, FAST_REQ);
	NEXT_SIZE_WORD(a[7]) = 0;
	free(a[7]);
}

static void free_normal_next_size_zero(void)
{
	void *a = xmalloc(LARGE_REQ);

	xmalloc(0x20);
	NEXT_SIZE_WORD(a) = 1; /* size 0, previous chunk in use */
	free(a);
}

static void top_size_overwritten(void)
{
	void *p = xmalloc(0x5000);

	NEXT_SIZE_WORD(p) = ~(size_t)0xf | 1;
	xmalloc(0x6000);
}

static void unlink_size_mismatch(void)
{
	void *a = xmalloc(LARGE_REQ), *b = xmalloc(LARGE_REQ), *c = xmalloc(LARGE_REQ);

	xmalloc(0x20);
	free(b);
	PREV_SIZE(c) += 0x10;
	free(a); /* merges forward with b and unlinks it */
}

static void consolidate_backward_size_mismatch(void)
{
	void *a = xmalloc(LARGE_REQ), *b = xmalloc(LARGE_REQ);

	xmalloc(0x20);
	memset(a, 0xaa, LARGE_REQ);
	free(a);
	PREV_SIZE(b) -= 0x10;
	free(b); /* merges backward with what its prev_size claims is a */
}

static void unlink_forged_fd(void)
{
	void *a = xmalloc(LARGE_REQ), *b = xmalloc(LARGE_REQ);

	xmalloc(LARGE_REQ);
	xmalloc(0x20);
	free(b);
	words(b)[0] = (size_t)fake_chunk;
	free(a);
}

static void free_with_forged_unsorted_head(void)
{
	void *a = xmalloc(LARGE_REQ), *b;

	xmalloc(0x20);
	b = xmalloc(LARGE_REQ);
	xmalloc(0x20);
	free(a);
	words(a)[1] = (size_t)fake_chunk;
	free(b);
}

static void free_mmapped_flag_on_heap_chunk(void)
{
	void *p = xmalloc(FAST_REQ);

	SIZE_WORD(p) |= 2;
	free(p);
}

static void realloc_misaligned_pointer(void)
{
	char *p = calloc(1, 64);

	sink = realloc(p + 8, 100);
}

static void realloc_old_size_tiny(void)
{
	void *p = xmalloc(FAST_REQ);

	SIZE_WORD(p) = 0x10;
	sink = realloc(p, 0x100);
}

static void realloc_next_size_zero(void)
{
	void *p = xmalloc(FAST_REQ);

	xmalloc(FAST_REQ);
	NEXT_SIZE_WORD(p) = 0;
	sink = realloc(p, 0x100);
}

static void tcache_next_misaligned(void)
{
	void *p = xmalloc(0x3a8), *q = xmalloc(0x3a8);

	free(p);
	free(q);
	words(q)[0] ^= 8; /* q's protected next pointer now reveals p + 8 */
	xmalloc(0x3a8);
	xmalloc(0x3a8);
}

static void fastbin_chunk_size_overwritten(void)
{
	void *a[9];

	fill_tcache(a, 9, FAST_REQ);
	free(a[7]);
	SIZE_WORD(a[7]) = 0x41;
	drain_tcache(FAST_REQ);
	xmalloc(FAST_REQ);
}

static void fastbin_next_misaligned(void)
{
	void *a[10];

	fill_tcache(a, 10, FAST_REQ);
	free(a[7]);
	free(a[8]);
	words(a[8])[0] ^= 8;
	drain_tcache(FAST_REQ);
	xmalloc(FAST_REQ);
}

static void consolidate_fastbin_size_overwritten(void)
{
	void *a[9];

	fill_tcache(a, 9, FAST_REQ);
	free(a[7]);
	SIZE_WORD(a[7]) = 0x41;
	xmalloc(0x600); /* a large request consolidates the fastbins first */
}

static void smallbin_forged_bk(void)
{
	void *t[9];

	fill_tcache(t, 9, 0x168);
	free(t[7]);
	xmalloc(0x600); /* sorts t[7] from the unsorted bin into its small bin */
	words(t[7])[1] = (size_t)fake_chunk;
	drain_tcache(0x168);
	xmalloc(0x168);
}

static void tcache_next_misaligned_on_double_free(void)
{
	void *p = xmalloc(0x3a8), *q = xmalloc(0x3a8);

	free(p);
	free(q);
	words(q)[0] ^= 8;
	free(p); /* the double-free scan of the bin meets the misaligned entry */
}

static void tcache_cycle_on_free(void)
{
	void *p = xmalloc(0x3a8), *q = xmalloc(0x3a8), *r = xmalloc(0x3a8);

	free(q);
	free(p);
	/* q's next now leads back to p (glibc's safe-linking: pos >> 12 ^ ptr). */
	words(q)[0] = ((uintptr_t)q >> 12) ^ (uintptr_t)p;
	/* r carries the cache's key, so freeing it scans the endless bin. */
	words(r)[1] = words(p)[1];
	free(r);
}

static void fastbin_head_misaligned(void)
{
	void *a[10];

	fill_tcache(a, 10, FAST_REQ);
	free(a[7]);
	free(a[8]);
	words(a[8])[0] ^= 8;
	/* calloc bypasses the (full) cache, so it pops the fastbin itself. */
	sink = calloc(1, FAST_REQ);
	sink = calloc(1, FAST_REQ);
}

static void consolidate_fastbin_misaligned(void)
{
	void *a[10];

	fill_tcache(a, 10, FAST_REQ);
	free(a[7]);
	free(a[8]);
	words(a[8])[0] ^= 8;
	xmalloc(0x600);
}

/* Frees x (a 1296-byte chunk) and sorts it into its large bin. */
static void to_large_bin(void *x)
{
	free(x);
	xmalloc(0x700); /* too big for x: the unsorted scan files x in its bin */
}

static void largebin_forged_bk_nextsize(void)
{
	void *x = xmalloc(0x508), *y;

	xmalloc(0x20);
	y = xmalloc(0x518);
	xmalloc(0x20);
	to_large_bin(x);
	words(x)[3] = (size_t)fake_chunk; /* bk_nextsize */
	to_large_bin(y);                  /* y is bigger: it goes in front of x */
}

static void largebin_forged_bk(void)
{
	void *x = xmalloc(0x508), *y;

	xmalloc(0x20);
	y = xmalloc(0x518);
	xmalloc(0x20);
	to_large_bin(x);
	words(x)[1] = (size_t)fake_chunk; /* bk */
	to_large_bin(y);
}

static void unlink_large_forged_fd_nextsize(void)
{
	void *a = xmalloc(0x508), *x = xmalloc(0x508);

	xmalloc(0x20);
	to_large_bin(x);
	words(x)[2] = (size_t)fake_chunk; /* fd_nextsize */
	free(a);                          /* merges forward with x and unlinks it */
}

/* Frees one large chunk into the unsorted bin; returns it and sets *next to its neighbour. */
static void *unsorted_one(void **next)
{
	void *a = xmalloc(LARGE_REQ);

	*next = xmalloc(0x20);
	free(a);
	return a;
}

static void unsorted_size_tiny(void)
{
	void *g, *a = unsorted_one(&g);

	SIZE_WORD(a) = 0x11;
	xmalloc(0x600);
}

static void unsorted_next_size_zero(void)
{
	void *g;

	unsorted_one(&g);
	SIZE_WORD(g) = 0;
	xmalloc(0x600);
}

static void unsorted_next_prev_size_wrong(void)
{
	void *g;

	unsorted_one(&g);
	PREV_SIZE(g) += 0x10;
	xmalloc(0x600);
}

static void unsorted_forged_fd(void)
{
	void *g, *a = unsorted_one(&g);

	words(a)[0] = (size_t)a - 16; /* fd points back at the chunk itself */
	xmalloc(0x600);
}

static void unsorted_next_prev_inuse_set(void)
{
	void *g;

	unsorted_one(&g);
	SIZE_WORD(g) |= 1;
	xmalloc(0x600);
}

struct misuse_case {
	const char *name;
	void (*run)(void);
	const char *message;
};

static const struct misuse_case cases[] = {
	{"tcache_double_free", tcache_double_free, "free(): double free detected in tcache 2"},
	{"fastbin_double_free", fastbin_double_free, "double free or corruption (fasttop)"},
	{"free_interior_pointer", free_interior_pointer, "free(): invalid pointer"},
	{"free_misaligned_pointer", free_misaligned_pointer, "free(): invalid pointer"},
	{"free_invalid_size", free_invalid_size, "free(): invalid size"},
	{"free_top_twice", free_top_twice, "double free or corruption (top)"},
	{"free_size_beyond_arena", free_size_beyond_arena, "double free or corruption (out)"},
	{"free_large_twice", free_large_twice, "double free or corruption (!prev)"},
	{"free_fast_next_size_zero", free_fast_next_size_zero, "free(): invalid next size (fast)"},
	{"free_normal_next_size_zero", free_normal_next_size_zero,
	 "free(): invalid next size (normal)"},
	{"top_size_overwritten", top_size_overwritten, "malloc(): corrupted top size"},
	{"unlink_size_mismatch", unlink_size_mismatch, "corrupted size vs. prev_size"},
	{"consolidate_backward_size_mismatch", consolidate_backward_size_mismatch,
	 "corrupted size vs. prev_size while consolidating"},
	{"unlink_forged_fd", unlink_forged_fd, "corrupted double-linked list"},
	{"free_with_forged_unsorted_head", free_with_forged_unsorted_head,
	 "free(): corrupted unsorted chunks"},
	{"free_mmapped_flag_on_heap_chunk", free_mmapped_flag_on_heap_chunk,
	 "munmap_chunk(): invalid pointer"},
	{"realloc_misaligned_pointer", realloc_misaligned_pointer, "realloc(): invalid pointer"},
	{"realloc_old_size_tiny", realloc_old_size_tiny, "realloc(): invalid old size"},
	{"realloc_next_size_zero", realloc_next_size_zero, "realloc(): invalid next size"},
	{"tcache_next_misaligned", tcache_next_misaligned,
	 "malloc(): unaligned tcache chunk detected"},
	{"tcache_next_misaligned_on_double_free", tcache_next_misaligned_on_double_free,
	 "free(): unaligned chunk detected in tcache 2"},
	{"tcache_cycle_on_free", tcache_cycle_on_free,
	 "free(): too many chunks detected in tcache"},
	{"fastbin_head_misaligned", fastbin_head_misaligned,
	 "malloc(): unaligned fastbin chunk detected 2"},
	{"consolidate_fastbin_misaligned", consolidate_fastbin_misaligned,
	 "malloc_consolidate(): unaligned fastbin chunk detected"},
	{"largebin_forged_bk_nextsize", largebin_forged_bk_nextsize,
	 "malloc(): largebin double linked list corrupted (nextsize)"},
	{"largebin_forged_bk", largebin_forged_bk,
	 "malloc(): largebin double linked list corrupted (bk)"},
	{"unlink_large_forged_fd_nextsize", unlink_large_forged_fd_nextsize,
	 "corrupted double-linked list (not small)"},
	{"fastbin_chunk_size_overwritten", fastbin_chunk_size_overwritten,
	 "malloc(): memory corruption (fast)"},
	{"fastbin_next_misaligned", fastbin_next_misaligned,
	 "malloc(): unaligned fastbin chunk detected 3"},
	{"consolidate_fastbin_size_overwritten", consolidate_fastbin_size_overwritten,
	 "malloc_consolidate(): invalid chunk size"},
	{"smallbin_forged_bk", smallbin_forged_bk,
	 "malloc(): smallbin double linked list corrupted"},
	{"unsorted_size_tiny", unsorted_size_tiny, "malloc(): invalid size (unsorted)"},
	{"unsorted_next_size_zero", unsorted_next_size_zero,
	 "malloc(): invalid next size (unsorted)"},
	{"unsorted_next_prev_size_wrong", unsorted_next_prev_size_wrong,
	 "malloc(): mismatching next->prev_size (unsorted)"},
	{"unsorted_forged_fd", unsorted_forged_fd,
	 "malloc(): unsorted double linked list corrupted"},
	{"unsorted_next_prev_inuse_set", unsorted_next_prev_inuse_set,
	 "malloc(): invalid next->prev_inuse (unsorted)"},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static int run_case(const char *name)
{
	size_t i;

	hf_preload_verify();
	for (i = 0; i < N_CASES; i++) {
		if (strcmp(cases[i].name, name) == 0) {
			cases[i].run();
			fprintf(stderr, "%s: the misuse went unnoticed\n", name);
			return 0;
		}
	}
	fprintf(stderr, "unknown case %s\n", name);
	return 2;
}

/* True when out has a line that is exactly msg. */
static int has_line(const char *out, const char *msg)
{
	size_t n = strlen(msg);
	const char *at = out;

	while ((at = strstr(at, msg)) != NULL) {
		if ((at == out || at[-1] == '\n') && (at[n] == '\n' || at[n] == '\0'))
			return 1;
		at += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char desc[64];
	size_t i;
	int m;

	if (argc == 3 && strcmp(argv[1], "--case") == 0)
		return run_case(argv[2]);

	for (m = HF_PRELOAD_GLIBC; m <= HF_PRELOAD_PTM; m++) {
		for (i = 0; i < N_CASES; i++) {
			char *args[] = {argv[0], "--case", (char *)cases[i].name, NULL};
			struct hf_preload_child child;
			int aborted, said;
			int err = hf_preload_spawn(m, args, 20, &child);

			CHECK_MSG(err == 0, "%s %s could not run: %s", hf_preload_mode_name(m),
				  cases[i].name, strerror(-err));
			if (err)
				continue;
			aborted = !child.timed_out && WIFSIGNALED(child.status) &&
				  WTERMSIG(child.status) == SIGABRT;
			said = has_line(child.out, cases[i].message);
			CHECK_MSG(aborted && said,
				  "%s %s: %s, wanted SIGABRT with \"%s\"; output:\n%s",
				  hf_preload_mode_name(m), cases[i].name,
				  hf_preload_describe(&child, desc, sizeof(desc)), cases[i].message,
				  child.out);
			if (aborted && said)
				printf("ok %s %s: \"%s\"\n", hf_preload_mode_name(m), cases[i].name,
				       cases[i].message);
			free(child.out);
		}
	}
	return hf_test_done();
}
