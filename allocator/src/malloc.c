// SPDX-License-Identifier: MIT
/*
 * malloc.c - libptm's public entry points, and the design of the whole.
 *
 * Why
 * ---
 * heapfrag diagnoses heap fragmentation in processes that use glibc malloc.
 * libptm is the same design (glibc 2.36's ptmalloc2 on x86_64: the same
 * chunk layout, bins, arenas, thresholds and checks) written so that every
 * internal is known to us: its numbers are ground truth for heapfragd, and it
 * is a complete drop-in malloc that a service can run on in production
 * (LD_PRELOAD=libptm.so, or link libptm.a).
 *
 * Chunks
 * ------
 * Memory is handed out in chunks: an 8-byte size word before the user's
 * pointer, whose low bits say PREV_INUSE, IS_MMAPPED and NON_MAIN_ARENA, and
 * (only while the previous chunk is free) that chunk's size in the 8 bytes
 * before.  A request of n bytes takes a chunk of max(32, (n + 8 + 15) & ~15)
 * bytes: 16-byte aligned, 8 bytes of overhead, 32 bytes minimum.  Free
 * neighbours always coalesce, so no two free chunks ever touch.
 *
 * Behaviour by size (64-bit numbers; chunk sizes, user requests in brackets)
 * -----------------------------------------------------------------------
 *   32 .. 1040 B  [0 .. 1032]   per-thread cache first: 64 exact-size lists
 *                               of up to 7 chunks, no lock, no atomics.
 *   32 .. 128 B   [0 .. 120]    fastbins: exact-size LIFO lists, not
 *                               coalesced until a large request, a big free
 *                               or malloc_trim consolidates them.  M_MXFAST
 *                               moves the limit, at most to 160 B [152].
 *   32 .. 1008 B  [0 .. 1000]   62 small bins, one exact size each, FIFO.
 *   >= 1024 B     [>= 1001]     63 large bins (64 B apart up to 3 KiB, then
 *                               512 B, 4 KiB, 32 KiB, 256 KiB, the last one
 *                               open-ended), each sorted by size with a skip
 *                               list over its distinct sizes, served best-fit.
 *   >= 128 KiB    [>= 131049]   when no bin and not the top chunk can serve
 *                               it: a mapping of its own (mmap), unless 65536
 *                               mappings exist.  Freeing one raises the
 *                               threshold to its size (up to 32 MiB) and the
 *                               trim threshold to twice that, as glibc does.
 * Freed chunks that miss the cache and the fastbins go to the unsorted bin;
 * malloc sorts it into the bins as it searches, taking an exact fit when it
 * meets one.  Small requests keep carving the last remainder so that
 * consecutive allocations sit together.  A binmap finds the next non-empty
 * bin; the top chunk, at the end of the arena, serves what the bins cannot.
 *
 * The seed material quotes fastbins of 16..80 bytes and small bins below 512
 * bytes: that is the 32-bit picture (4-byte size words, 8-byte alignment).
 * On x86_64 every number doubles, as above.
 *
 * Arenas
 * ------
 * The main arena grows with brk and falls back to mmap when brk fails; it
 * copes with others moving the break (see sysmem.c).  Other threads get
 * arenas on 64 MiB-aligned heaps (arena.c), up to 8 per core; exited
 * threads' arenas are reused first; a thread's cache returns to the arenas
 * when it exits.  Each arena has one mutex; the thread cache needs none.
 * Once the main arena's heap passes 8 MiB, an extension of the break for a
 * small request (below 1 KiB) is faulted in at once with
 * MADV_POPULATE_WRITE rather than page by page (sysmem.c): a heap carved
 * into many small blocks uses all of it soon, and one system call costs
 * less than a trap per page; at most the top pad (128 KiB) is resident
 * before its use.
 *
 * Vital statistics
 * ----------------
 *   alignment 16 B; minimum chunk 32 B; overhead 8 B per chunk (16 B for
 *   mmapped chunks plus page rounding); largest request PTRDIFF_MAX; the
 *   thread cache costs 672 B per thread; a non-main heap reserves 64 MiB of
 *   address space and commits only what it uses.
 *
 * Returning the holes' pages (bins.c) -- beyond glibc
 * ---------------------------------------------------
 * glibc gives memory back only from the top chunk, and from inside free
 * chunks only when malloc_trim is called.  libptm also does it by itself: a
 * free chunk of at least the release threshold (4 KiB: any chunk that can
 * hold a whole page past its kept head, so that a hole of five freed
 * 1000-byte messages already frees a page) becomes pending, and
 * once it has stayed free for the release delay (1024 further frees into
 * its arena; doubled per arena, up to 64 times, while released pages keep
 * being reused within one delay, and halved again when they are not) its
 * whole pages go back with MADV_DONTNEED (or MADV_FREE), keeping its first
 * 88 bytes (header, links, release words) resident.  Releases go in
 * batches: the free that finds the oldest pending chunk due releases it and
 * every chunk due within a quarter delay after it (at most 128), and hands
 * their page runs to the kernel in one process_madvise(2) call per 64 runs
 * on its own memory (one system call, mmap_lock round and TLB flush per
 * batch; one madvise per run where the kernel refuses, or with
 * MALLOC_RELEASE_BATCH_=0).  The holes lie between live blocks, so batching
 * cannot make the runs fewer, only the system calls: on the seed's incident
 * about 250 instead of about 9,000.  A chunk
 * that is reused, split or merged before its time costs nothing (it leaves
 * the pending list in O(1)), which spares programs that free and soon reuse
 * big blocks (a growing realloc) a madvise and page faults per cycle.
 * Released chunks carry a mark: splitting one keeps the remainder's pages
 * released, and merging one with a freed neighbour makes a pending chunk
 * that remembers how many of its bytes are released already, so the books
 * count each page once (its madvise covers the whole chunk; on pages already
 * gone the kernel only walks the page table), or a released chunk at once,
 * with no system call, when the neighbour added no whole page.  Reused
 * pages fault back in, zero.  The books count released, re-used and
 * currently released bytes and the page runs released (release_calls:
 * ptm_stats_abi.h, version 2).  On the seed's incident (100,000 x
 * malloc(1000), 90% freed at random) the resident heap right after the
 * frees is about 45% of its peak (with an 8 KiB threshold, the default
 * before: 50%; after malloc_trim(0): 42%), against a floor of about 41%
 * for any allocator that does not move live blocks: with 10% of 1008-byte
 * chunks alive at random, that share of pages still holds one.  What is
 * left above the floor is the chunks still pending (freed within the last
 * delay).  A hole that grows keeps the age of its oldest pending part (it
 * has been free at least that long) and that part's place on the list:
 * late in a mass free every hole grows, and one that went back to the
 * list's end with each merge would never come due.
 *
 * Headroom for growing blocks (bins.c) -- beyond glibc
 * -----------------------------------------------------
 * A realloc that has to move a block of 4 KiB or more gives it an eighth
 * more than asked for, and a realloc that leaves such a chunk at most an
 * eighth too big keeps it whole: a buffer growing by small steps among
 * others is copied once per eighth of its size rather than at each
 * collision (realloc_growth: 0.36-0.41 of glibc's time).  The cost is at most an
 * eighth of such a block, counted as allocated but not requested.

 * Sampled heap profile (sample.c)
 * -------------------------------
 * With MALLOC_SAMPLE_INTERVAL_ set (512 KiB recommended; default off),
 * allocations are sampled with probability 1 - exp(-size/interval), like
 * tcmalloc's sampler: a per-thread countdown of bytes, exponentially
 * distributed, costing the fast path one subtraction folded into its one
 * unlikely branch.  A sample fires USDT libptm:sample_alloc(ptr, size,
 * weight, caller) and, when freed, libptm:sample_free(ptr).  Each sample stands for
 * weight = size / (1 - exp(-size/interval)) bytes (about interval bytes for
 * small blocks): the estimated live heap is the sum of the weights of the
 * live samples.  A sample lives in a mapping of its own, 16 bytes in, so
 * that free's existing slow path for mapped chunks is the only place that
 * looks for samples: with sampling off, free pays nothing.
 *
 * USDT probes (ptm_usdt.h)
 * ------------------------
 * Provider libptm: heap_grow, heap_shrink, arena_create, arena_reuse,
 * lock_contended_begin/end, trim, page_release, sample_alloc, sample_free;
 * all on slow paths, each a nop until a tracer attaches; no semaphores.
 *
 * Tunables (mallopt / environment; see options.c)
 * -----------------------------------------------
 *   M_MXFAST          MALLOC_MXFAST_          128 B   (0 .. 160)
 *   M_TRIM_THRESHOLD  MALLOC_TRIM_THRESHOLD_  128 KiB (dynamic: 2 x mmap threshold)
 *   M_TOP_PAD         MALLOC_TOP_PAD_         128 KiB
 *   M_MMAP_THRESHOLD  MALLOC_MMAP_THRESHOLD_  128 KiB (dynamic up to 32 MiB)
 *   M_MMAP_MAX        MALLOC_MMAP_MAX_        65536
 *   M_ARENA_TEST      MALLOC_ARENA_TEST_      8
 *   M_ARENA_MAX       MALLOC_ARENA_MAX_       0 = 8 x cores
 *   M_PERTURB         MALLOC_PERTURB_         0
 *   -                 MALLOC_TCACHE_COUNT_    7       (0 .. 65535)
 *   -                 MALLOC_TCACHE_MAX_      1032 B  (0 .. 1032)
 *   -                 MALLOC_TCACHE_UNSORTED_LIMIT_ 0 (no limit)
 *   PTM_M_RELEASE_THRESHOLD MALLOC_RELEASE_THRESHOLD_ 4 KiB (0 = no release)
 *   PTM_M_RELEASE_DELAY     MALLOC_RELEASE_DELAY_     1024 frees (0 = at once)
 *   PTM_M_RELEASE_MADV_FREE MALLOC_RELEASE_MADV_FREE_ 0 (MADV_DONTNEED)
 *   PTM_M_RELEASE_BATCH     MALLOC_RELEASE_BATCH_     1 (process_madvise batches)
 *   PTM_M_SAMPLE_INTERVAL   MALLOC_SAMPLE_INTERVAL_   0 = off (512 KiB advised)
 * Setting the trim threshold, top pad, mmap threshold or mmap max turns the
 * dynamic thresholds off, as in glibc.
 *
 * Statistics
 * ----------
 * Nothing is counted on the fast paths (the sampler's countdown is not a
 * statistic: it only decides when to leave them).  Each arena keeps books of its free
 * chunks (counted as they enter and leave the bins, under the lock it already
 * holds) and of its lock (acquisitions, contended waits and their time), and
 * publishes them at each unlock (inline, the hot words only, see
 * ptm_i_arena_unlock: a free waits on cache misses, and a longer tail keeps
 * the next free's loads from overlapping them), with a seqlock that moves
 * with the lock, in a block other
 * processes can read (ptm_stats_abi.h), version 3 with each arena's largest
 * free chunk (top, or the binned maximum tracked as chunks enter and leave
 * the bins, recomputed from the binmap only when its last chunk leaves and
 * top is smaller) and its heaps.  ptm_stats_get() adds the per-class
 * detail, walking the bins under each lock, and the thread caches' own counts
 * (ptm_stats.h).  mallinfo, mallinfo2, malloc_stats and malloc_info keep
 * glibc's meaning.
 *
 * Hardening
 * ---------
 * The cache and fastbin lists are safe-linked, and glibc's integrity checks
 * abort with glibc's own messages (errors.c).
 *
 * The fast paths below are a few loads, one unlikely branch, and the list
 * operation; everything else is out of line in *_slow.  free has one more
 * way out, taken by the same tests: a full cache bin goes straight to the
 * chunk's arena.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ptm.h"
#include "internal.h"
#include "usdt.h"

PTM_API const char ptm_version[] = "libptm " HF_VERSION " (ptmalloc2, glibc 2.36 chunk layout)";

static inline size_t tcache_index(size_t bytes)
{
	return csize2tidx(request2size(bytes));
}

static void maybe_init_tcache(void)
{
	if (unlikely(ptm_i_tcache == NULL) && !ptm_i_tcache_shutting_down)
		ptm_i_tcache_init();
}

/*
 * Every way malloc_slow does not take itself: no cache or arena yet, a
 * request too big, a sample due, an arena that cannot serve.  counted says
 * whether the sampler's countdown has been charged with bytes already (by
 * ptm_malloc's fast path or by malloc_slow); caller is malloc's caller, for
 * a sample.
 */
static __attribute__((noinline)) void *malloc_generic(size_t bytes, bool counted,
						      const void *caller)
{
	struct ptm_tcache *tc;
	mstate av;
	void *victim;

	ptm_i_ensure_init();
	if (unlikely(bytes > MAX_REQUEST)) {
		errno = ENOMEM;
		return NULL;
	}
	maybe_init_tcache();
	tc = ptm_i_tcache;
	if (tc != NULL) {
		/* The fast path counted bytes down only if it got as far as the countdown. */
		if (!counted && !(bytes <= mp_.tcache_max_bytes &&
				  tc->entries[tcache_index(bytes)] != NULL))
			tc->sample_left -= (intptr_t)bytes;
		if (unlikely(tc->sample_left < 0)) {
			victim = ptm_i_sample_alloc(tc, bytes, caller);
			if (victim != NULL)
				return victim;
		}
	}
	if (tc != NULL && bytes <= mp_.tcache_max_bytes) {
		size_t idx = tcache_index(bytes);

		if (tc->entries[idx] != NULL)
			return tcache_get(tc, idx);
	}
	av = ptm_i_arena_get(bytes);
	victim = ptm_i_int_malloc(av, bytes);
	if (victim == NULL && av != NULL) {
		av = ptm_i_arena_get_retry(av, bytes);
		victim = ptm_i_int_malloc(av, bytes);
	}
	if (av != NULL)
		ptm_i_arena_unlock(av);
	return victim;
}

/*
 * ptm_malloc reaches this by a tail call (a jump: it has no frame of its own
 * to unwind), so this function's return address is malloc's caller, which a
 * sample reports (sample.c) without costing the fast path an instruction.
 * The usual way here is a size whose cache bin is empty, or past the cache,
 * in a thread that has its cache and arena: the countdown is charged (the
 * fast path stopped before it), and the arena serves, with nothing looked
 * up twice.  Everything else goes to malloc_generic.
 */
static __attribute__((noinline)) void *malloc_slow(size_t bytes)
{
	struct ptm_tcache *tc = ptm_i_tcache;
	mstate av = ptm_i_thread_arena;
	void *victim;

	if (unlikely(tc == NULL || av == NULL || bytes > MAX_REQUEST ||
		     (bytes <= mp_.tcache_max_bytes && tc->entries[tcache_index(bytes)] != NULL)))
		return malloc_generic(bytes, false, __builtin_return_address(0));
	if (unlikely((tc->sample_left -= (intptr_t)bytes) < 0))
		return malloc_generic(bytes, true, __builtin_return_address(0));
	ptm_i_arena_lock(av);
	victim = ptm_i_int_malloc(av, bytes);
	if (unlikely(victim == NULL)) {
		av = ptm_i_arena_get_retry(av, bytes);
		victim = ptm_i_int_malloc(av, bytes);
		if (av == NULL)
			return victim;
	}
	ptm_i_arena_unlock(av);
	return victim;
}

PTM_API void *ptm_malloc(size_t bytes)
{
	struct ptm_tcache *tc = ptm_i_tcache;
	size_t idx = tcache_index(bytes);

	/* The sampler's countdown rides on the one unlikely branch (sample.c). */
	if (unlikely(tc == NULL || bytes > mp_.tcache_max_bytes || tc->entries[idx] == NULL ||
		     (tc->sample_left -= (intptr_t)bytes) < 0))
		return malloc_slow(bytes);
	return tcache_get(tc, idx);
}

/* A mapped chunk (or a sample) goes back to the kernel; errno is kept. */
static __attribute__((noinline)) void free_mapped(mchunkptr p)
{
	int saved_errno = errno;
	size_t size = chunksize(p), raw = chunksize_nomask(p);

	if (unlikely(ptm_i_sample_is(p))) {
		ptm_i_sample_forget(p);
		ptm_i_munmap_chunk(p);
		errno = saved_errno;
		return;
	}
	/* A freed mapping bigger than the threshold raises the threshold. */
	if (!mp_.no_dyn_threshold && raw > __atomic_load_n(&mp_.mmap_threshold, __ATOMIC_RELAXED) &&
	    raw <= DEFAULT_MMAP_THRESHOLD_MAX) {
		__atomic_store_n(&mp_.mmap_threshold, size, __ATOMIC_RELAXED);
		__atomic_store_n(&mp_.trim_threshold, 2 * size, __ATOMIC_RELAXED);
	}
	ptm_i_munmap_chunk(p);
	errno = saved_errno;
}

/* The rare ways: no cache (yet, or any more), a probable double free. */
static __attribute__((noinline)) void free_generic(mchunkptr p)
{
	int saved_errno = errno;

	ptm_i_ensure_init();
	maybe_init_tcache();
	ptm_i_int_free(arena_for_chunk(p), p, 0);
	errno = saved_errno;
}

/*
 * Everything ptm_free's first branch sends here, with the size word it
 * read: no cache (yet, or any more), a mapped chunk, a chunk too big for the
 * cache, a misaligned pointer or size, or a probable double free.  A chunk
 * whose cache bin is full never comes here: ptm_free's other tests passing
 * imply glibc's two checks on that path (the pointer cannot wrap, as its
 * size word could be read and the size is at most the cache's; a size in
 * the cache's range is at least MINSIZE and, with the pointer, aligned), so
 * it goes straight to its arena (ptm_i_int_free_arena).  free keeps errno:
 * the arena path keeps it itself around the few system calls it can make
 * (page release, trimming, waiting for the lock), so only the rare ways
 * here save it.
 */
static __attribute__((noinline)) void free_slow(void *mem, size_t head)
{
	struct ptm_tcache *tc = ptm_i_tcache;
	mchunkptr p = mem2chunk(mem);
	size_t size = head & ~SIZE_BITS;

	if (head & IS_MMAPPED) {
		free_mapped(p);
		return;
	}
	/* Checked before the arena is looked up through the chunk's address. */
	if (unlikely((uintptr_t)p > (uintptr_t)-size || misaligned_chunk(p)))
		ptm_i_printerr("free(): invalid pointer");
	if (unlikely(size < MINSIZE || !aligned_ok(size)))
		ptm_i_printerr("free(): invalid size");
	/* Too big for the cache: straight to the arena as well. */
	if (likely(tc != NULL && size > mp_.tcache_max_csize)) {
		ptm_i_int_free_arena(arena_for_chunk(p), p, size);
		return;
	}
	free_generic(p);
}

PTM_API void ptm_free(void *mem)
{
	struct ptm_tcache *tc = ptm_i_tcache;
	struct ptm_tcache_entry *e = mem;
	mchunkptr p;
	size_t head, csize, idx;

	if (mem == NULL)
		return;
	p = mem2chunk(mem);
	head = p->size;
	csize = head & ~SIZE_BITS;
	idx = csize2tidx(csize);
	if (unlikely(tc == NULL || (head & IS_MMAPPED) ||
		     csize - MINSIZE > mp_.tcache_max_csize - MINSIZE ||
		     (((uintptr_t)mem | csize) & MALLOC_ALIGN_MASK) ||
		     e->key == ptm_i_tcache_key)) {
		free_slow(mem, head);
		return;
	}
	/*
	 * The same tests as one branch would make, with a second way out: a
	 * full cache bin goes straight to the chunk's arena, since every test
	 * above implies glibc's checks on that path (see free_slow).
	 */
	if (unlikely(tc->counts[idx] >= mp_.tcache_count)) {
		ptm_i_int_free_arena(arena_for_chunk(p), p, csize);
		return;
	}
	tcache_put(tc, p, idx);
}

PTM_API void *ptm_calloc(size_t n, size_t elem_size)
{
	size_t bytes, csz, oldtopsize = 0;
	mchunkptr oldtop = NULL, p;
	mstate av;
	void *mem;

	if (unlikely(__builtin_mul_overflow(n, elem_size, &bytes))) {
		errno = ENOMEM;
		return NULL;
	}
	ptm_i_ensure_init();
	maybe_init_tcache();
	if (ptm_i_tcache != NULL && unlikely((ptm_i_tcache->sample_left -= (intptr_t)bytes) < 0)) {
		/* A sample is a fresh mapping: zero already. */
		mem = ptm_i_sample_alloc(ptm_i_tcache, bytes, __builtin_return_address(0));
		if (mem != NULL)
			return mem;
	}
	av = ptm_i_arena_get(bytes);
	if (av != NULL) {
		oldtop = av->top;
		oldtopsize = chunksize(oldtop);
	}
	mem = ptm_i_int_malloc(av, bytes);
	if (mem == NULL && av != NULL) {
		av = ptm_i_arena_get_retry(av, bytes);
		mem = ptm_i_int_malloc(av, bytes);
	}
	if (av != NULL)
		ptm_i_arena_unlock(av);
	if (mem == NULL)
		return NULL;
	p = mem2chunk(mem);
	if (chunk_is_mmapped(p)) {
		/* Fresh mappings are zero already. */
		if (unlikely(mp_.perturb_byte))
			return memset(mem, 0, bytes);
		return mem;
	}
	csz = chunksize(p);
	/* Carved from top past its old end: that part is fresh from the kernel. */
	if (mp_.perturb_byte == 0 && p == oldtop && csz > oldtopsize)
		csz = oldtopsize;
	return memset(mem, 0, csz - SIZE_SZ);
}

PTM_API void *ptm_realloc(void *oldmem, size_t bytes)
{
	mchunkptr oldp, newp;
	size_t oldsize, nb;
	mstate ar_ptr;
	void *newmem;

	if (bytes == 0 && oldmem != NULL) {
		ptm_free(oldmem);
		return NULL;
	}
	if (oldmem == NULL)
		return ptm_malloc(bytes);
	oldp = mem2chunk(oldmem);
	oldsize = chunksize(oldp);
	if (unlikely((uintptr_t)oldp > (uintptr_t)-oldsize || misaligned_chunk(oldp)))
		ptm_i_printerr("realloc(): invalid pointer");
	if (!checked_request2size(bytes, &nb)) {
		errno = ENOMEM;
		return NULL;
	}
	ptm_i_ensure_init();
	maybe_init_tcache();

	if (chunk_is_mmapped(oldp)) {
		/* A sample moves to an ordinary block (which may be sampled anew). */
		if (unlikely(ptm_i_sample_is(oldp))) {
			ptm_i_sample_forget(oldp);
			newmem = ptm_malloc(bytes);
			if (newmem == NULL)
				return NULL;
			memcpy(newmem, oldmem,
			       oldsize - CHUNK_HDR_SZ < bytes ? oldsize - CHUNK_HDR_SZ : bytes);
			ptm_i_munmap_chunk(oldp);
			return newmem;
		}
		newp = ptm_i_mremap_chunk(oldp, nb);
		if (newp != NULL)
			return chunk2mem(newp);
		/* Shrinking a mapping that cannot be remapped: keep it. */
		if (oldsize - SIZE_SZ >= nb)
			return oldmem;
		newmem = ptm_malloc(bytes);
		if (newmem == NULL)
			return NULL;
		memcpy(newmem, oldmem, oldsize - CHUNK_HDR_SZ);
		ptm_i_munmap_chunk(oldp);
		return newmem;
	}

	ar_ptr = arena_for_chunk(oldp);
	ptm_i_arena_lock(ar_ptr);
	newmem = ptm_i_int_realloc(ar_ptr, oldp, oldsize, nb);
	ptm_i_arena_unlock(ar_ptr);
	if (newmem == NULL) {
		/* The chunk's arena is full: any other arena will do. */
		newmem = ptm_malloc(bytes);
		if (newmem != NULL) {
			memcpy(newmem, oldmem, oldsize - SIZE_SZ);
			ptm_i_int_free(ar_ptr, oldp, 0);
		}
	}
	return newmem;
}

PTM_API void *ptm_reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(nmemb, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return ptm_realloc(ptr, bytes);
}

static void *mid_memalign(size_t alignment, size_t bytes)
{
	mstate av;
	void *p;

	if (alignment <= MALLOC_ALIGNMENT)
		return ptm_malloc(bytes);
	if (alignment < MINSIZE)
		alignment = MINSIZE;
	if (alignment > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!powerof2(alignment)) {
		size_t a = MALLOC_ALIGNMENT * 2;

		while (a < alignment)
			a <<= 1;
		alignment = a;
	}
	if (bytes > SIZE_MAX - alignment - MINSIZE) {
		errno = ENOMEM;
		return NULL;
	}
	ptm_i_ensure_init();
	maybe_init_tcache();
	av = ptm_i_arena_get(bytes + alignment + MINSIZE);
	p = ptm_i_int_memalign(av, alignment, bytes);
	if (p == NULL && av != NULL) {
		av = ptm_i_arena_get_retry(av, bytes);
		p = ptm_i_int_memalign(av, alignment, bytes);
	}
	if (av != NULL)
		ptm_i_arena_unlock(av);
	return p;
}

PTM_API void *ptm_memalign(size_t alignment, size_t bytes)
{
	return mid_memalign(alignment, bytes);
}

/* glibc 2.36 makes aligned_alloc an alias of memalign; so do we. */
PTM_API void *ptm_aligned_alloc(size_t alignment, size_t bytes)
{
	return mid_memalign(alignment, bytes);
}

PTM_API int ptm_posix_memalign(void **memptr, size_t alignment, size_t size)
{
	void *mem;

	if (alignment % sizeof(void *) != 0 || !powerof2(alignment / sizeof(void *)) ||
	    alignment == 0)
		return EINVAL;
	mem = mid_memalign(alignment, size);
	if (mem == NULL)
		return ENOMEM;
	*memptr = mem;
	return 0;
}

PTM_API void *ptm_valloc(size_t bytes)
{
	ptm_i_ensure_init();
	return mid_memalign(mp_.pagesize, bytes);
}

PTM_API void *ptm_pvalloc(size_t bytes)
{
	size_t rounded;

	ptm_i_ensure_init();
	if (__builtin_add_overflow(bytes, mp_.pagesize - 1, &rounded)) {
		errno = ENOMEM;
		return NULL;
	}
	return mid_memalign(mp_.pagesize, ALIGN_DOWN(rounded, mp_.pagesize));
}

PTM_API size_t ptm_malloc_usable_size(void *mem)
{
	mchunkptr p;

	if (mem == NULL)
		return 0;
	p = mem2chunk(mem);
	if (chunk_is_mmapped(p))
		return chunksize(p) - CHUNK_HDR_SZ;
	if (inuse(p))
		return memsize(p);
	return 0;
}

PTM_API int ptm_mallopt(int param, int value)
{
	return ptm_i_mallopt(param, value);
}

PTM_API int ptm_malloc_trim(size_t pad)
{
	int result = 0;
	mstate av = main_arena;

	ptm_i_ensure_init();
	do {
		int r;

		ptm_i_arena_lock(av);
		r = ptm_i_mtrim(av, pad);
		ptm_i_arena_unlock(av);
		PTM_PROBE3(trim, av, pad, r);
		result |= r;
		av = __atomic_load_n(&av->next, __ATOMIC_ACQUIRE);
	} while (av != main_arena);
	return result;
}

PTM_HIDDEN_ALIAS(malloc);
PTM_HIDDEN_ALIAS(free);
PTM_HIDDEN_ALIAS(calloc);
PTM_HIDDEN_ALIAS(realloc);
PTM_HIDDEN_ALIAS(reallocarray);
PTM_HIDDEN_ALIAS(memalign);
PTM_HIDDEN_ALIAS(posix_memalign);
PTM_HIDDEN_ALIAS(aligned_alloc);
PTM_HIDDEN_ALIAS(valloc);
PTM_HIDDEN_ALIAS(pvalloc);
PTM_HIDDEN_ALIAS(malloc_usable_size);
PTM_HIDDEN_ALIAS(mallopt);
PTM_HIDDEN_ALIAS(malloc_trim);
