/* SPDX-License-Identifier: MIT */
/*
 * chunk.h - the chunk layout, bit for bit the one glibc 2.36 uses on x86_64.
 *
 * heapfragd reads the size word at ptr-8 of a returned pointer for glibc and
 * libptm alike, so nothing here may drift from glibc: an 8-byte size word
 * whose low three bits are PREV_INUSE, IS_MMAPPED and NON_MAIN_ARENA, the
 * previous chunk's size in the word before it while that chunk is free, and
 * for mmapped chunks the distance back to the start of the mapping in that
 * same word.
 */
#ifndef PTM_CHUNK_H
#define PTM_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define PTM_HIDDEN  __attribute__((visibility("hidden")))
#define PTM_API     __attribute__((visibility("default")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct ptm_chunk {
	size_t prev_size;     /* size of the previous chunk if it is free */
	size_t size;          /* this chunk's size with the three flag bits */
	struct ptm_chunk *fd; /* free chunks only: the bin's doubly linked list */
	struct ptm_chunk *bk;
	struct ptm_chunk *fd_nextsize; /* large bins only: the skip list of sizes */
	struct ptm_chunk *bk_nextsize;
};

typedef struct ptm_chunk *mchunkptr;

#define SIZE_SZ           ((size_t)sizeof(size_t))
#define CHUNK_HDR_SZ      (2 * SIZE_SZ)
#define MALLOC_ALIGNMENT  ((size_t)16)
#define MALLOC_ALIGN_MASK (MALLOC_ALIGNMENT - 1)
#define MIN_CHUNK_SIZE    ((size_t)offsetof(struct ptm_chunk, fd_nextsize))
#define MINSIZE           ((MIN_CHUNK_SIZE + MALLOC_ALIGN_MASK) & ~MALLOC_ALIGN_MASK)
#define MAX_REQUEST       ((size_t)PTRDIFF_MAX)

#define PREV_INUSE     ((size_t)0x1)
#define IS_MMAPPED     ((size_t)0x2)
#define NON_MAIN_ARENA ((size_t)0x4)
#define SIZE_BITS      (PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA)

#define chunk2mem(p)        ((void *)((char *)(p) + CHUNK_HDR_SZ))
#define mem2chunk(mem)      ((mchunkptr)((char *)(mem)-CHUNK_HDR_SZ))
#define aligned_ok(m)       (((uintptr_t)(m)&MALLOC_ALIGN_MASK) == 0)
#define misaligned_chunk(p) (((uintptr_t)chunk2mem(p)) & MALLOC_ALIGN_MASK)

#define chunksize_nomask(p)   ((p)->size)
#define chunksize(p)          ((p)->size & ~SIZE_BITS)
#define prev_inuse(p)         ((p)->size & PREV_INUSE)
#define chunk_is_mmapped(p)   ((p)->size & IS_MMAPPED)
#define chunk_main_arena(p)   (((p)->size & NON_MAIN_ARENA) == 0)
#define set_non_main_arena(p) ((p)->size |= NON_MAIN_ARENA)

#define chunk_at_offset(p, s) ((mchunkptr)((char *)(p) + (s)))
#define next_chunk(p)         chunk_at_offset(p, chunksize(p))
#define prev_chunk(p)         ((mchunkptr)((char *)(p) - (p)->prev_size))

#define inuse(p)                        (chunk_at_offset(p, chunksize(p))->size & PREV_INUSE)
#define inuse_bit_at_offset(p, s)       (chunk_at_offset(p, s)->size & PREV_INUSE)
#define set_inuse_bit_at_offset(p, s)   (chunk_at_offset(p, s)->size |= PREV_INUSE)
#define clear_inuse_bit_at_offset(p, s) (chunk_at_offset(p, s)->size &= ~PREV_INUSE)

/* set_head replaces the flags; set_head_size keeps them. */
#define set_head(p, s)      ((p)->size = (s))
#define set_head_size(p, s) ((p)->size = ((p)->size & SIZE_BITS) | (s))
#define set_foot(p, s)      (chunk_at_offset(p, s)->prev_size = (s))

/* The usable bytes of an in-use heap chunk: it borrows the next prev_size. */
#define memsize(p) (chunksize(p) - SIZE_SZ)

static inline size_t request2size(size_t req)
{
	if (req + SIZE_SZ + MALLOC_ALIGN_MASK < MINSIZE)
		return MINSIZE;
	return (req + SIZE_SZ + MALLOC_ALIGN_MASK) & ~MALLOC_ALIGN_MASK;
}

/* Fails for requests that would not fit in a ptrdiff_t, as glibc does. */
static inline int checked_request2size(size_t req, size_t *sz)
{
	if (unlikely(req > MAX_REQUEST))
		return 0;
	*sz = request2size(req);
	return 1;
}

/*
 * Safe-linking: a singly linked next pointer is stored xored with the
 * address it is stored at shifted right by a page, so a heap overflow that
 * rewrites it cannot aim it anywhere without knowing where the heap lives.
 */
#define PROTECT_PTR(pos, ptr) ((__typeof__(ptr))((((uintptr_t)(pos)) >> 12) ^ ((uintptr_t)(ptr))))
#define REVEAL_PTR(ptr)       PROTECT_PTR(&(ptr), ptr)

#define ALIGN_UP(x, a)   (((x) + ((a)-1)) & ~((size_t)(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((size_t)(a)-1))
#define powerof2(x)      ((((x)-1) & (x)) == 0)

#endif /* PTM_CHUNK_H */
