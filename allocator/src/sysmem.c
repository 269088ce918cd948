// SPDX-License-Identifier: MIT
/*
 * sysmem.c - memory from the kernel: brk, mmap, mprotect, madvise, mremap.
 *
 * This is the only file that makes those calls.  Above the thin wrappers sit
 * the three places where an arena meets the system: sysmalloc (top is too
 * small: grow it, or map the request on its own), systrim (top is too big:
 * give the tail back), and the mmapped chunks' unmap and remap.
 *
 * The main arena grows with sbrk.  Someone else may move the break between
 * our calls (another allocator in the same process, or a program calling
 * sbrk itself); then the new space is not adjacent to our top, and we do what
 * glibc does: close the old region with two fenceposts, free what is left of
 * the old top, and start a new region at the new space.  When sbrk fails we
 * map 1 MiB or more instead and from then on treat the arena as
 * non-contiguous.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "usdt.h"

void *ptm_i_sys_sbrk(intptr_t increment)
{
	/* libc's sbrk keeps the one shared view of the break (__curbrk). */
	void *p = sbrk(increment);

	return p == (void *)-1 ? NULL : p;
}

void *ptm_i_sys_mmap(void *addr, size_t len, int prot, int flags)
{
	return mmap(addr, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int ptm_i_sys_munmap(void *addr, size_t len)
{
	return munmap(addr, len);
}

int ptm_i_sys_mprotect(void *addr, size_t len, int prot)
{
	return mprotect(addr, len, prot);
}

int ptm_i_sys_madvise(void *addr, size_t len, int advice)
{
	return madvise(addr, len, advice);
}

/*
 * Gives n page runs of free chunks back to the kernel.  One
 * process_madvise(2) call on the calling thread's own memory (PIDFD_SELF,
 * which Linux 6.13 and later accept with any advice for oneself) costs one
 * system call, one mmap_lock round and, since 6.16, one TLB flush for all
 * of them.  A kernel that refuses gets one madvise per run from then on, and
 * so does a program that turns batches off (release_batch 0: a seccomp
 * filter that kills on unknown system calls would not let process_madvise
 * through).
 * MADV_FREE falls back to MADV_DONTNEED run by run, as before.  free() does
 * not change errno, so neither does this.
 */
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#define PTM_PIDFD_SELF_THREAD (-10000)

static int batch_refused;

void ptm_i_sys_release(const struct iovec *iov, unsigned n, int madv_free)
{
	int saved = errno, advice = madv_free ? MADV_FREE : MADV_DONTNEED;

	if (n > 1 && __atomic_load_n(&mp_.release_batch, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&batch_refused, __ATOMIC_RELAXED)) {
		size_t total = 0;
		long r;

		for (unsigned i = 0; i < n; i++)
			total += iov[i].iov_len;
		r = syscall(SYS_process_madvise, PTM_PIDFD_SELF_THREAD, iov, (size_t)n, advice, 0U);
		if (r == (long)total) {
			errno = saved;
			return;
		}
		/* Refused outright: an older kernel.  A short count: redo every run below. */
		if (r < 0)
			__atomic_store_n(&batch_refused, 1, __ATOMIC_RELAXED);
	}
	for (unsigned i = 0; i < n; i++) {
		if (madv_free && madvise(iov[i].iov_base, iov[i].iov_len, MADV_FREE) == 0)
			continue;
		madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
	}
	errno = saved;
}

/*
 * Faulting in the main arena's growth in advance.  A program that has
 * grown its heap past POPULATE_MIN_HEAP by carving small chunks (small-bin
 * sizes, below 1 KiB) off the top keeps doing so (a batch of messages, a
 * cache filling up), and would take one page fault per page of every
 * extension, each a trap in and out of the kernel on top of the page's own
 * cost.  MADV_POPULATE_WRITE (Linux 5.14) faults the extension in with one
 * system call: on alloc_bench's swiss_cheese (100,000 x malloc(1000) and a
 * memset each) the allocation phase takes about a fifth less time than
 * with glibc's fault per page.  What it costs is at most one extension
 * (the top pad, 128 KiB, and page rounding) made resident before its use:
 * under 2% of such a heap.  A large request is left to fault on use, since
 * a program may never touch all of a big block (with it, alloc_bench's
 * pareto peaked 9% higher), and so are smaller heaps, thread arenas' heaps
 * (grown with mprotect in their reservation) and kernels that refuse.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define POPULATE_MIN_HEAP ((size_t)8 << 20)

static int populate_refused;

static void sys_populate(char *start, size_t len)
{
	int saved = errno;
	uintptr_t lo = ALIGN_UP((uintptr_t)start, mp_.pagesize);
	uintptr_t hi = ALIGN_DOWN((uintptr_t)start + len, mp_.pagesize);

	if (hi <= lo || __atomic_load_n(&populate_refused, __ATOMIC_RELAXED))
		return;
	/* EINVAL: a kernel before 5.14.  Any other failure is left to the faults. */
	if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
		__atomic_store_n(&populate_refused, 1, __ATOMIC_RELAXED);
	errno = saved;
}

void *ptm_i_sys_mremap(void *old, size_t old_len, size_t new_len)
{
	return mremap(old, old_len, new_len, MREMAP_MAYMOVE);
}

/* Copies the mmapped books into the exported block: one word each. */
static void publish_mmapped(void)
{
	struct ptm_abi_block *b = &ptm_stats_block;

	__atomic_store_n(&b->mmapped_chunks,
			 (uint64_t)__atomic_load_n(&mp_.n_mmaps, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&b->mmapped_bytes, __atomic_load_n(&mp_.mmapped_mem, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&b->max_mmapped_chunks,
			 (uint64_t)__atomic_load_n(&mp_.max_n_mmaps, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&b->max_mmapped_bytes,
			 __atomic_load_n(&mp_.max_mmapped_mem, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

static void stat_max(size_t *slot, size_t v)
{
	size_t cur = __atomic_load_n(slot, __ATOMIC_RELAXED);

	while (v > cur && !__atomic_compare_exchange_n(slot, &cur, v, true, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

static void stat_max_int(int *slot, int v)
{
	int cur = __atomic_load_n(slot, __ATOMIC_RELAXED);

	while (v > cur && !__atomic_compare_exchange_n(slot, &cur, v, true, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

/*
 * A mapping of size bytes (a page multiple) for one chunk, booked: the
 * caller places the chunk in it with prev_size = its offset from the start.
 */
char *ptm_i_sys_mmap_chunk(size_t size)
{
	char *mm = ptm_i_sys_mmap(NULL, size, PROT_READ | PROT_WRITE, 0);
	size_t sum;
	int n;

	if (mm == MAP_FAILED)
		return NULL;
	n = __atomic_add_fetch(&mp_.n_mmaps, 1, __ATOMIC_RELAXED);
	stat_max_int(&mp_.max_n_mmaps, n);
	sum = __atomic_add_fetch(&mp_.mmapped_mem, size, __ATOMIC_RELAXED);
	stat_max(&mp_.max_mmapped_mem, sum);
	publish_mmapped();
	return mm;
}

/* A chunk of its own mapping: prev_size holds the offset from the mapping's start. */
static void *sysmalloc_mmap(size_t nb)
{
	size_t size = ALIGN_UP(nb + SIZE_SZ, mp_.pagesize);
	char *mm;

	if (size <= nb)
		return NULL;
	mm = ptm_i_sys_mmap_chunk(size);
	if (mm == NULL)
		return NULL;
	((mchunkptr)mm)->prev_size = 0;
	set_head((mchunkptr)mm, size | IS_MMAPPED);
	return chunk2mem((mchunkptr)mm);
}

/* The main arena's substitute for a failed sbrk: mapped space, at least 1 MiB. */
static char *sysmalloc_mmap_fallback(size_t *s, size_t nb, size_t old_size, mstate av)
{
	size_t size = *s;
	char *mbrk;

	/* The old top cannot be merged with mapped space, so ask for its size too. */
	if (contiguous(av))
		size = ALIGN_UP(size + old_size, mp_.pagesize);
	if (size < MMAP_AS_MORECORE_SIZE)
		size = MMAP_AS_MORECORE_SIZE;
	if (size <= nb)
		return NULL;
	mbrk = ptm_i_sys_mmap(NULL, size, PROT_READ | PROT_WRITE, 0);
	if (mbrk == MAP_FAILED)
		return NULL;
	/* Never again assume that two sbrk results can be bridged. */
	av->flags |= ARENA_NONCONTIGUOUS;
	*s = size;
	return mbrk;
}

/* A non-main arena: grow the heap in place, or chain a new heap. */
static void sysmalloc_heap(size_t nb, mstate av, size_t old_size, mchunkptr old_top)
{
	struct ptm_heap *old_heap = heap_for_ptr(old_top), *heap;
	size_t old_heap_size = old_heap->size;

	if ((long)(MINSIZE + nb - old_size) > 0 &&
	    ptm_i_grow_heap(old_heap, (long)(MINSIZE + nb - old_size)) == 0) {
		av->system_mem += old_heap->size - old_heap_size;
		books_cold_changed(av);
		set_head(old_top, (size_t)(((char *)old_heap + old_heap->size) - (char *)old_top) |
					  PREV_INUSE);
		return;
	}
	heap = ptm_i_new_heap(nb + (MINSIZE + sizeof(*heap)), mp_.top_pad);
	if (heap == NULL)
		return;
	heap->ar_ptr = av;
	heap->prev = old_heap;
	av->system_mem += heap->size;
	av->books.heaps++;
	books_cold_changed(av);
	av->top = chunk_at_offset(heap, sizeof(*heap));
	set_head(av->top, (heap->size - sizeof(*heap)) | PREV_INUSE);

	/*
	 * Close the old heap with a fencepost that may later become top again
	 * (so it takes MINSIZE bytes), and free what is left of the old top.
	 */
	old_size = (old_size - MINSIZE) & ~MALLOC_ALIGN_MASK;
	set_head(chunk_at_offset(old_top, old_size + CHUNK_HDR_SZ), 0 | PREV_INUSE);
	if (old_size >= MINSIZE) {
		set_head(chunk_at_offset(old_top, old_size), CHUNK_HDR_SZ | PREV_INUSE);
		set_foot(chunk_at_offset(old_top, old_size), CHUNK_HDR_SZ);
		set_head(old_top, old_size | PREV_INUSE | NON_MAIN_ARENA);
		ptm_i_int_free(av, old_top, 1);
	} else {
		set_head(old_top, (old_size + CHUNK_HDR_SZ) | PREV_INUSE);
		set_foot(old_top, old_size + CHUNK_HDR_SZ);
	}
}

/* The main arena: extend the break, coping with foreign sbrk calls and failures. */
static void sysmalloc_brk(size_t nb, mstate av, size_t old_size, mchunkptr old_top)
{
	char *old_end = (char *)chunk_at_offset(old_top, old_size);
	size_t size = nb + mp_.top_pad + MINSIZE;
	char *brk = NULL, *snd_brk = NULL, *aligned_brk;
	size_t front_misalign, end_misalign, correction;

	/* Space adjacent to the old top will be merged with it: ask for less. */
	if (contiguous(av))
		size -= old_size;
	size = ALIGN_UP(size, mp_.pagesize);
	if ((intptr_t)size > 0)
		brk = ptm_i_sys_sbrk((intptr_t)size);
	if (brk == NULL) {
		brk = sysmalloc_mmap_fallback(&size, nb, old_size, av);
		if (brk == NULL)
			return;
		/* Mapped space needs no second sbrk to find its end. */
		snd_brk = brk + size;
	}
	if (mp_.sbrk_base == NULL)
		mp_.sbrk_base = brk;
	av->system_mem += size;
	books_cold_changed(av);

	if (brk == old_end && snd_brk == NULL) {
		set_head(old_top, (size + old_size) | PREV_INUSE);
		if (in_smallbin_range(nb) && av->system_mem >= POPULATE_MIN_HEAP)
			sys_populate(brk, size);
		return;
	}
	if (contiguous(av) && old_size && brk < old_end)
		ptm_i_printerr("break adjusted to free malloc space");

	/*
	 * A new region: the first time, after a foreign sbrk, or mapped space.
	 * Align its start, and with sbrk also ask for enough more to end on a
	 * page boundary, plus the old top's size that can no longer be merged.
	 */
	front_misalign = 0;
	correction = 0;
	aligned_brk = brk;
	if (contiguous(av)) {
		/* What a foreign sbrk took in between is counted as ours, like glibc. */
		if (old_size) {
			av->system_mem += (size_t)(brk - old_end);
			books_cold_changed(av);
		}
		front_misalign = (uintptr_t)chunk2mem(brk) & MALLOC_ALIGN_MASK;
		if (front_misalign > 0) {
			correction = MALLOC_ALIGNMENT - front_misalign;
			aligned_brk += correction;
		}
		correction += old_size;
		end_misalign = (uintptr_t)(brk + size + correction);
		correction += ALIGN_UP(end_misalign, mp_.pagesize) - end_misalign;
		snd_brk = ptm_i_sys_sbrk((intptr_t)correction);
		if (snd_brk == NULL) {
			/* Without the correction, at least learn where the break is. */
			correction = 0;
			snd_brk = ptm_i_sys_sbrk(0);
		}
	} else if (snd_brk == NULL) {
		snd_brk = ptm_i_sys_sbrk(0);
	}
	if (snd_brk == NULL)
		return;

	av->top = (mchunkptr)aligned_brk;
	set_head(av->top, (size_t)(snd_brk - aligned_brk + correction) | PREV_INUSE);
	av->system_mem += correction;
	books_cold_changed(av);
	/* Link the new region into the list of regions (see struct ptm_arena). */
	av->top->prev_size = old_size ? (size_t)av->segments : 0;
	av->segments = av->top;
	av->books.heaps = old_size ? av->books.heaps + 1 : 1;
	books_cold_changed(av);

	if (old_size != 0) {
		/*
		 * Two fenceposts end the old region, so no chunk there ever
		 * coalesces with memory that is not ours.
		 */
		old_size = (old_size - 2 * CHUNK_HDR_SZ) & ~MALLOC_ALIGN_MASK;
		set_head(old_top, old_size | PREV_INUSE);
		set_head(chunk_at_offset(old_top, old_size), CHUNK_HDR_SZ | PREV_INUSE);
		set_head(chunk_at_offset(old_top, old_size + CHUNK_HDR_SZ),
			 CHUNK_HDR_SZ | PREV_INUSE);
		if (old_size >= MINSIZE)
			ptm_i_int_free(av, old_top, 1);
	}
}

void *ptm_i_sysmalloc(size_t nb, mstate av)
{
	mchunkptr old_top, p, remainder;
	size_t old_size, size, old_system_mem;
	bool tried_mmap = false;

	if (av == NULL || (nb >= __atomic_load_n(&mp_.mmap_threshold, __ATOMIC_RELAXED) &&
			   __atomic_load_n(&mp_.n_mmaps, __ATOMIC_RELAXED) < mp_.n_mmaps_max)) {
		void *mm = sysmalloc_mmap(nb);

		if (mm != NULL)
			return mm;
		tried_mmap = true;
	}
	if (av == NULL)
		return NULL;

	old_top = av->top;
	old_size = chunksize(old_top);
	old_system_mem = av->system_mem;
	if (av != main_arena) {
		sysmalloc_heap(nb, av, old_size, old_top);
		if (chunksize(av->top) < nb + MINSIZE && !tried_mmap) {
			void *mm = sysmalloc_mmap(nb);

			if (mm != NULL)
				return mm;
		}
	} else {
		sysmalloc_brk(nb, av, old_size, old_top);
	}
	if (av->system_mem > av->max_system_mem) {
		av->max_system_mem = av->system_mem;
		books_cold_changed(av);
	}
	if (av->system_mem != old_system_mem)
		PTM_PROBE3(heap_grow, av, av->system_mem - old_system_mem, av->system_mem);

	p = av->top;
	size = chunksize(p);
	if (size >= nb + MINSIZE) {
		remainder = chunk_at_offset(p, nb);
		av->top = remainder;
		set_head(p, nb | PREV_INUSE | (av != main_arena ? NON_MAIN_ARENA : 0));
		set_head(remainder, (size - nb) | PREV_INUSE);
		return chunk2mem(p);
	}
	errno = ENOMEM;
	return NULL;
}

int ptm_i_systrim(size_t pad, mstate av)
{
	size_t top_size = chunksize(av->top), top_area, extra;
	char *current_brk, *new_brk;
	size_t released;

	top_area = top_size - MINSIZE - 1;
	if (top_size < MINSIZE + 1 || top_area <= pad)
		return 0;
	extra = ALIGN_DOWN(top_area - pad, mp_.pagesize);
	if (extra == 0)
		return 0;
	/* Only give back what ends at the break: a foreign sbrk may sit above top. */
	current_brk = ptm_i_sys_sbrk(0);
	if (current_brk != (char *)av->top + top_size)
		return 0;
	ptm_i_sys_sbrk(-(intptr_t)extra);
	new_brk = ptm_i_sys_sbrk(0);
	if (new_brk == NULL)
		return 0;
	released = (size_t)(current_brk - new_brk);
	if (released == 0)
		return 0;
	av->system_mem -= released;
	books_cold_changed(av);
	PTM_PROBE3(heap_shrink, av, released, av->system_mem);
	set_head(av->top, (top_size - released) | PREV_INUSE);
	return 1;
}

void ptm_i_munmap_chunk(mchunkptr p)
{
	size_t size = chunksize(p);
	uintptr_t mem = (uintptr_t)chunk2mem(p);
	uintptr_t block = (uintptr_t)p - p->prev_size;
	size_t total_size = p->prev_size + size;

	if (unlikely(((block | total_size) & (mp_.pagesize - 1)) != 0 ||
		     !powerof2(mem & (mp_.pagesize - 1))))
		ptm_i_printerr("munmap_chunk(): invalid pointer");
	__atomic_sub_fetch(&mp_.n_mmaps, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&mp_.mmapped_mem, total_size, __ATOMIC_RELAXED);
	publish_mmapped();
	ptm_i_sys_munmap((void *)block, total_size);
}

mchunkptr ptm_i_mremap_chunk(mchunkptr p, size_t new_size)
{
	size_t offset = p->prev_size, size = chunksize(p);
	uintptr_t block = (uintptr_t)p - offset;
	uintptr_t mem = (uintptr_t)chunk2mem(p);
	size_t total_size = offset + size, sum;
	char *cp;

	if (unlikely(((block | total_size) & (mp_.pagesize - 1)) != 0 ||
		     !powerof2(mem & (mp_.pagesize - 1))))
		ptm_i_printerr("mremap_chunk(): invalid pointer");
	new_size = ALIGN_UP(new_size + offset + SIZE_SZ, mp_.pagesize);
	if (total_size == new_size)
		return p;
	cp = ptm_i_sys_mremap((void *)block, total_size, new_size);
	if (cp == MAP_FAILED)
		return NULL;
	p = (mchunkptr)(cp + offset);
	set_head(p, (new_size - offset) | IS_MMAPPED);
	sum = __atomic_add_fetch(&mp_.mmapped_mem, new_size - total_size, __ATOMIC_RELAXED);
	stat_max(&mp_.max_mmapped_mem, sum);
	publish_mmapped();
	return p;
}
