/* SPDX-License-Identifier: MIT */
/*
 * heap_walk.h - the census of a ptmalloc-style heap (glibc's, and libptm's,
 * which keeps glibc's chunk layout bit for bit), read from outside.
 *
 * The walker reads target memory only through struct hf_mem, so the same
 * code walks a live process (hf_mem_process: process_vm_readv and
 * /proc/PID/pagemap) and a saved image (hf_mem_image: the fuzzer's input).
 * Everything it reads is untrusted: every pointer and size is checked
 * against the target's writable mappings, every list walk is bounded by the
 * number of chunks and refuses to revisit one, and memory use is bounded by
 * the size of the heaps (one 32-byte record per chunk, one byte and two
 * shorts per page, one window of HF_WALK_WINDOW bytes).
 *
 * Per arena, one walk:
 *   1. copy the arena's malloc_state;
 *   2. for each of its heaps (the main arena's brk heap from its first
 *      chunk; a thread arena's heap_info chain from its top chunk's heap),
 *      read the pagemap, then copy the heap's resident pages window by
 *      window (never a page that is not present: reading one would map the
 *      zero page into the target) while following the chunk chain from the
 *      first chunk to the top chunk, which must end exactly at the heap's
 *      end;
 *   3. copy the malloc_state again: if it changed, the arena is walked again
 *      (at most `retries` more times), else
 *   4. check and classify: every free chunk (its successor's PREV_INUSE is
 *      clear) has a footer equal to its size, no two are adjacent, and each
 *      is on exactly one bin list whose fd/bk links agree and whose sizes fit
 *      the bin; fastbin lists (safe-linking decoded) hold chunks of their
 *      size that look in use; a chunk that looks in use and carries
 *      tcache_key in its second word is in a thread's cache;
 *   5. classify the resident pages and fill the heap map.
 * An arena that fails a check in every walk is partial, with the first
 * failure as its reason, and is left out of the totals.
 */
#ifndef HF_HEAP_WALK_H
#define HF_HEAP_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"

/* Bytes of the target copied at a time. */
#define HF_WALK_WINDOW (8u << 20)
/* Arenas of one process at most (glibc allows 8 per core). */
#define HF_WALK_MAX_ARENAS 4096
/* Heaps of one thread arena at most (64 GiB of 64 MiB heaps). */
#define HF_WALK_MAX_HEAPS 1024

/* A writable mapping of the target: [start, end). */
struct hf_vma {
	uint64_t start;
	uint64_t end;
};

/* Page states, as hf_mem's pages() reports them. */
#define HF_PAGE_RESIDENT 0x1 /* present, and not the shared zero page */
#define HF_PAGE_DATA     0x2 /* holds data to copy: present or swapped out */

struct hf_mem {
	void *ctx;
	/* Copies len bytes at addr, all or nothing: 0, -EFAULT, -ESRCH, -EPERM... */
	int (*read)(struct hf_mem *m, uint64_t addr, void *buf, size_t len);
	/*
	 * Copies the pages of [addr, addr + len) (page-aligned) whose state has
	 * HF_PAGE_DATA into buf at their offsets; the rest of buf is zero.
	 */
	int (*read_pages)(struct hf_mem *m, uint64_t addr, size_t len, const uint8_t *state,
			  void *buf);
	/* The states of npages pages from addr (page-aligned). */
	int (*pages)(struct hf_mem *m, uint64_t addr, size_t npages, uint8_t *state);
	uint64_t bytes_read; /* kept by the reader: target bytes copied */
};

/*
 * Where the allocator keeps what the walker reads.  The first 2200 bytes of
 * glibc 2.36's malloc_state and of libptm's struct ptm_arena are the same.
 */
struct hf_ptmalloc_layout {
	const char *name;      /* "glibc 2.36 (x86-64)" */
	uint32_t mstate_read;  /* bytes of the arena the walker copies and compares */
	uint32_t arena_size;   /* sizeof the arena: a first heap's chunks start after it */
	uint32_t off_mutex;
	uint32_t off_flags;
	uint32_t off_fastbins;
	uint32_t nfastbins;
	uint32_t off_top;
	uint32_t off_bins;
	uint32_t off_next;
	uint32_t off_attached;   /* attached_threads: changes without the heap changing */
	uint32_t off_system_mem;
	uint32_t heap_info_size; /* heap_info { ar_ptr, prev, size, mprotect_size, ... } */
	uint64_t heap_max;       /* HEAP_MAX_SIZE, the alignment of thread heaps */
	/*
	 * malloc_trim(0) releases the whole pages of each free chunk (after
	 * consolidation) from trim_keep bytes past its start to its end:
	 * glibc keeps sizeof(struct malloc_chunk) = 48, libptm 88 (its release
	 * words).
	 */
	uint32_t trim_keep;
};

/* glibc 2.36 on x86-64, checked against libc6-dbg's DWARF. */
extern const struct hf_ptmalloc_layout hf_layout_glibc_2_36;

/* What the walker needs to know about one process beyond its memory. */
struct hf_walk_params {
	const struct hf_ptmalloc_layout *layout;
	uint64_t page_size;
	/* The arenas, main first, as the room found them. */
	const uint64_t *arenas;
	size_t nr_arenas;
	/*
	 * The main arena's heap: glibc: from sbrk_base (mp_.sbrk_base, or the
	 * [heap] mapping's start), one contiguous region.  libptm: the chain
	 * of region starts in main_segments_off (its `segments` word), each
	 * region's first chunk keeping the previous one's in prev_size.
	 */
	uint64_t sbrk_base;
	uint32_t main_segments_off; /* 0: glibc's single region */
	bool tcache_key_known;
	uint64_t tcache_key;
	/*
	 * Without the key, a room may recognise it: key_probe(key_ctx, v) says
	 * whether v (the second word of a chunk that looks in use) is the key.
	 * The walk stores a key it recognised in tcache_key.
	 */
	bool (*key_probe)(void *ctx, uint64_t v);
	void *key_ctx;
	uint64_t tcache_max_csize; /* chunks larger than this are never cached */
	unsigned int retries;
	const struct hf_vma *vmas; /* sorted, not overlapping */
	size_t nr_vmas;
	bool want_heapmap;
	/* Pinning attribution (census.h), or NULL: the walk fills its credits. */
	struct hf_census_sites *sites;
	/*
	 * Called with no target memory being read between an attempt's copy and
	 * its checks, so that a frozen target can be let go (--census-stop);
	 * may be NULL.  begin returns 0 when it froze the target.
	 */
	int (*copy_begin)(void *ctx);
	void (*copy_end)(void *ctx);
	void *copy_ctx;
};

/*
 * Walks every arena.  Fills *out's state, reason, retries, bytes, arenas,
 * totals (complete arenas only) and, when detail is not NULL, a new
 * hf_census_detail with each arena and the heap map.  Returns 0 whatever the
 * heap looked like (its verdict is in out->state); a negative errno only
 * when the walk could not be done at all (-ESRCH: the process is gone;
 * -ENOMEM), with out->reason saying why.  Does not set out->at, the
 * duration or mmapped.
 */
int hf_heap_walk(struct hf_mem *mem, struct hf_walk_params *p, struct hf_census *out,
		 struct hf_census_detail **detail);

/* ---- readers ---- */

/* A live process: opens /proc/PID/pagemap.  -ESRCH when it is gone. */
int hf_mem_process_open(pid_t pid, struct hf_mem *mem);
void hf_mem_process_close(struct hf_mem *mem);

/*
 * A saved image: segments of target memory with their page states.  Every
 * page of an image segment is resident unless states says otherwise.
 */
struct hf_image_segment {
	uint64_t addr;
	uint64_t len;
	const uint8_t *bytes;
	const uint8_t *states; /* one per page, or NULL: every page resident */
};

struct hf_mem_image {
	const struct hf_image_segment *segs;
	size_t nr_segs;
	uint64_t page_size;
};

void hf_mem_image_init(struct hf_mem *mem, struct hf_mem_image *img);

/* The target's writable mappings from /proc/PID/maps, sorted; the caller frees *out. */
int hf_vmas_read(pid_t pid, struct hf_vma **out, size_t *n, uint64_t *heap_start);

#endif /* HF_HEAP_WALK_H */
