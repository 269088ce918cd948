/* SPDX-License-Identifier: MIT */
/*
 * ptm_stats_abi.h - libptm's books as another process reads them.
 *
 * A libptm process exports the symbol ptm_stats_block (a struct
 * ptm_abi_block).  heapfragd finds its address from the symbol table of
 * libptm.so (or of the executable, when libptm.a is linked in) plus the
 * load address, and reads it with process_vm_readv(2): no probe, no
 * cooperation from the target, and nothing on the allocator's fast path.
 *
 * The block leads to a singly linked list of per-arena records (struct
 * ptm_abi_arena), the main arena's first; arenas are never freed, so the
 * list only grows and every address in it stays valid.  All fields are
 * 64-bit, naturally aligned, little-endian, with no padding; addresses are
 * in the target's address space.
 *
 * Consistency: each arena record is a seqlock.  Each time the allocator
 * releases an arena's lock it copies the arena's books into the record,
 * making gen odd for the copy and even again after it (a moment, so a reader
 * finds the record readable even while threads queue for the lock).  A
 * reader copies the record, then reads gen again: the copy is consistent if
 * its gen was even and equals the second read; otherwise it retries.  A
 * record's numbers are then exactly what mallinfo2() would compute for that
 * arena as of its last unlock:
 *   arena    = system_bytes          ordblks  = binned_chunks + 1 (top)
 *   smblks   = fast_chunks           fsmblks  = fast_bytes
 *   fordblks = top_bytes + binned_bytes + fast_bytes
 *   uordblks = system_bytes - fordblks   keepcost = the main arena's top_bytes
 * The process-wide mmapped fields are single words, each exact on its own.
 *
 * Versioning: magic never changes; version grows when fields are added at
 * the end of either struct (size and arena_record_size say how much the
 * target has); readers ignore what they do not know.
 *   version 1: the fields up to lock_max_wait_ns (arena record of 120 bytes).
 *   version 2: adds released_bytes, release_total_bytes, reuse_total_bytes
 *              and release_calls to the arena record (152 bytes).
 *   version 3: adds largest_free_bytes and heaps to the arena record (168
 *              bytes).  A version 2 reader copies the first 152 bytes of
 *              each record and checks gen as before, so it reads version 3
 *              targets safely; a version 3 reader takes from an older target
 *              only what its version has.
 *   version 4: adds the heap census's fields to the block (after
 *              max_mmapped_bytes; the block grows from 80 to 144 bytes): where
 *              each arena lies relative to its record, its size, where its
 *              region list is, and where the thread caches' key and size limit
 *              are.  libptm's arena begins, for its first 2200 bytes, exactly
 *              as glibc 2.36's malloc_state, and its chunks and thread caches
 *              are glibc's, so a reader that walks glibc's heap walks libptm's
 *              with these.  Older readers copy the first 80 bytes only.
 */
#ifndef PTM_STATS_ABI_H
#define PTM_STATS_ABI_H

#include <stdint.h>

#define PTM_ABI_MAGIC   0x53544154534d5450ULL /* "PTMSTATS" in memory order */
#define PTM_ABI_VERSION 4

struct ptm_abi_arena {
	uint64_t gen;              /* seqlock generation: odd while being changed */
	uint64_t index;            /* 0 for the main arena */
	uint64_t next;             /* address of the next record, 0 after the last */
	uint64_t system_bytes;     /* memory from the system: brk regions or heaps */
	uint64_t max_system_bytes; /* its peak */
	uint64_t top_bytes;        /* the top chunk */
	uint64_t binned_chunks;    /* free chunks in the unsorted, small and large bins */
	uint64_t binned_bytes;
	uint64_t fast_chunks; /* free chunks in fastbins */
	uint64_t fast_bytes;
	uint64_t threads_attached;
	uint64_t lock_acquisitions; /* times the arena lock was taken */
	uint64_t lock_contended;    /* ... of which it had to wait */
	uint64_t lock_wait_ns;      /* total time waited */
	uint64_t lock_max_wait_ns;  /* longest single wait */
	/*
	 * Version 2: pages inside free chunks given back to the kernel (the
	 * release threshold, and malloc_trim).  released_bytes is what is
	 * released now; the two totals only grow, and released_bytes always
	 * equals release_total_bytes - reuse_total_bytes.  release_calls
	 * counts page runs: each was one madvise call up to libptm's ABI
	 * version 2; since version 3 up to 64 runs go in one process_madvise.
	 */
	uint64_t released_bytes;      /* whole pages of free chunks now released */
	uint64_t release_total_bytes; /* bytes ever released */
	uint64_t reuse_total_bytes;   /* released bytes handed out again or absorbed by top */
	uint64_t release_calls;       /* page runs released, one madvise range each */
	/*
	 * Version 3.  largest_free_bytes: the largest single chunk among those
	 * mallinfo2() counts as free (top, the unsorted, small and large bins,
	 * fastbins; thread-cached chunks are in use), exact like the rest of the
	 * record.  heaps: a non-main arena's heaps (64 MiB reservations, each
	 * with its heap_info); for the main arena, the separate regions it grew
	 * into: 1 while the break has only ever grown contiguously, one more for
	 * each time it had to start a new region (a foreign sbrk moved the break,
	 * or sbrk failed and it mapped memory instead), 0 before its first
	 * allocation.
	 */
	uint64_t largest_free_bytes;
	uint64_t heaps;
};

struct ptm_abi_block {
	uint64_t magic;             /* PTM_ABI_MAGIC */
	uint64_t version;           /* PTM_ABI_VERSION */
	uint64_t size;              /* sizeof(struct ptm_abi_block) in the target */
	uint64_t arena_record_size; /* sizeof(struct ptm_abi_arena) in the target */
	uint64_t first_arena;       /* address of the main arena's record */
	uint64_t narenas;           /* records in the list */
	uint64_t mmapped_chunks;    /* chunks with a mapping of their own (hblks) */
	uint64_t mmapped_bytes;     /* their bytes (hblkhd) */
	uint64_t max_mmapped_chunks;
	uint64_t max_mmapped_bytes;
	/* Version 4. */
	uint64_t arena_record_offset; /* a record's address minus its arena's */
	uint64_t arena_size;          /* sizeof the arena: a first heap's chunks follow it */
	uint64_t arena_segments_offset; /* the main arena's region list: its newest region's
					   first chunk, each first chunk's prev_size the
					   previous region's */
	uint64_t heap_info_size;        /* the header of every non-main heap */
	uint64_t tcache_key_addr;       /* a cached chunk's second word equals this word */
	uint64_t tcache_max_csize_addr; /* the largest chunk size the caches hold */
	uint64_t release_keep;          /* malloc_trim keeps this many bytes of a free chunk */
	uint64_t page_size;
};

/* The block as versions 1 to 3 have it; a reader copies this much first. */
#define PTM_ABI_BLOCK_V1_SIZE 80

#endif /* PTM_STATS_ABI_H */
