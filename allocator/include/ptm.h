/* SPDX-License-Identifier: MIT */
/*
 * ptm.h - libptm, heapfrag's ptmalloc2-style allocator.
 *
 * Every function behaves like the glibc 2.36 function of the same name
 * without the ptm_ prefix; libptm.so and libptm.a also export those names
 * (malloc, free, ...) so that the library works as a drop-in malloc.
 * ptm_check_heap() is libptm's own: it walks the whole heap and checks it.
 */
#ifndef PTM_H
#define PTM_H

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* heapfragd recognises a libptm process by this symbol. */
extern const char ptm_version[];

void *ptm_malloc(size_t size);
void ptm_free(void *ptr);
void *ptm_calloc(size_t nmemb, size_t size);
void *ptm_realloc(void *ptr, size_t size);
void *ptm_reallocarray(void *ptr, size_t nmemb, size_t size);
void *ptm_memalign(size_t alignment, size_t size);
int ptm_posix_memalign(void **memptr, size_t alignment, size_t size);
void *ptm_aligned_alloc(size_t alignment, size_t size);
void *ptm_valloc(size_t size);
void *ptm_pvalloc(size_t size);
size_t ptm_malloc_usable_size(void *ptr);
int ptm_mallopt(int param, int value);

/*
 * libptm's own mallopt parameters (glibc ignores unknown ones, so a program
 * may set them whichever malloc it runs on):
 *   PTM_M_RELEASE_THRESHOLD  free chunks of at least this many bytes give
 *                            their whole pages back to the kernel; 0 = off
 *                            (env MALLOC_RELEASE_THRESHOLD_, default 4 KiB).
 *   PTM_M_RELEASE_MADV_FREE  1: release with MADV_FREE, 0: MADV_DONTNEED
 *                            (env MALLOC_RELEASE_MADV_FREE_, default 0).
 *   PTM_M_RELEASE_DELAY      ... once the chunk has stayed free for this many
 *                            further frees into its arena; 0 = at once
 *                            (env MALLOC_RELEASE_DELAY_, default 1024).
 *                            Chunks due within a quarter of the delay of the
 *                            oldest go with it, in one batch.
 *   PTM_M_RELEASE_BATCH      1: a batch's page runs go to the kernel in one
 *                            process_madvise(2) call, 0: one madvise(2) each
 *                            (env MALLOC_RELEASE_BATCH_, default 1; set 0
 *                            under a seccomp filter that forbids it).
 *   PTM_M_SAMPLE_INTERVAL    the sampled heap profile's mean bytes between
 *                            samples; 0 = off (env MALLOC_SAMPLE_INTERVAL_,
 *                            default off, 512 KiB recommended).  The calling
 *                            thread starts at once, others at their next
 *                            sample (never, if they began with it off) or
 *                            when they start.
 */
#define PTM_M_RELEASE_THRESHOLD (-101)
#define PTM_M_RELEASE_MADV_FREE (-102)
#define PTM_M_RELEASE_DELAY     (-103)
#define PTM_M_SAMPLE_INTERVAL   (-104)
#define PTM_M_RELEASE_BATCH     (-105)
struct mallinfo ptm_mallinfo(void);
struct mallinfo2 ptm_mallinfo2(void);
void ptm_malloc_stats(void);
int ptm_malloc_info(int options, FILE *fp);
int ptm_malloc_trim(size_t pad);

/* What ptm_check_heap() counted on its walk, summed over all arenas. */
struct ptm_heap_census {
	size_t arenas;       /* arenas walked */
	size_t system_bytes; /* sum of the arenas' system_mem */
	size_t chunks;       /* every chunk met on the walk, top included */
	size_t inuse_chunks; /* chunks allocated, incl. fastbin and tcache chunks */
	size_t inuse_bytes;  /* their sizes */
	size_t free_chunks;  /* chunks in regular bins, plus the tops */
	size_t free_bytes;   /* their sizes */
	size_t fast_chunks;  /* chunks in fastbins */
	size_t fast_bytes;
	size_t tcache_chunks; /* chunks in the calling thread's cache */
	size_t tcache_bytes;
	size_t top_bytes;      /* the main arena's top */
	size_t mmapped_chunks; /* chunks with their own mapping */
	size_t mmapped_bytes;
	size_t largest_free; /* the largest free chunk, top included */
};

/*
 * Walks every chunk of every arena, every bin and the calling thread's
 * cache, and checks every invariant (sizes, flags, boundary tags, links,
 * bin membership and order, the binmap, that free chunks never touch).
 * Returns 0, or -EUCLEAN after printing the first violation to stderr.
 * census may be NULL.  Takes every arena lock in turn.
 */
int ptm_check_heap(struct ptm_heap_census *census);

#ifdef __cplusplus
}
#endif

#endif /* PTM_H */
