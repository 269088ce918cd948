/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the libptm source files share: the arena, the bins, the
 * global parameters, the thread cache, and the functions each file offers
 * the others.  Every name here is hidden: only ptm.h is public.
 */
#ifndef PTM_INTERNAL_H
#define PTM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/single_threaded.h>

#include "chunk.h"
#include "ptm_stats_abi.h"

/* Bins: 1 is the unsorted bin, 2..63 small bins 16 bytes apart, 64..126 large. */
#define NBINS                 128
#define NSMALLBINS            64
#define SMALLBIN_WIDTH        MALLOC_ALIGNMENT
#define MIN_LARGE_SIZE        ((size_t)NSMALLBINS * SMALLBIN_WIDTH)
#define in_smallbin_range(sz) ((size_t)(sz) < MIN_LARGE_SIZE)
#define smallbin_index(sz)    ((unsigned)((size_t)(sz) >> 4))

static inline unsigned largebin_index(size_t sz)
{
	if ((sz >> 6) <= 48)
		return 48 + (unsigned)(sz >> 6);
	if ((sz >> 9) <= 20)
		return 91 + (unsigned)(sz >> 9);
	if ((sz >> 12) <= 10)
		return 110 + (unsigned)(sz >> 12);
	if ((sz >> 15) <= 4)
		return 119 + (unsigned)(sz >> 15);
	if ((sz >> 18) <= 2)
		return 124 + (unsigned)(sz >> 18);
	return 126;
}

static inline unsigned bin_index(size_t sz)
{
	return in_smallbin_range(sz) ? smallbin_index(sz) : largebin_index(sz);
}

/* The binmap: one bit per bin, set when the bin may be non-empty. */
#define BINMAPSHIFT  5
#define BITSPERMAP   (1U << BINMAPSHIFT)
#define BINMAPSIZE   (NBINS / BITSPERMAP)
#define idx2block(i) ((i) >> BINMAPSHIFT)
#define idx2bit(i)   (1U << ((i) & (BITSPERMAP - 1)))

/* Fastbins: 16-byte steps from 32; M_MXFAST may raise the limit to 160 bytes. */
#define MAX_FAST_SIZE     ((size_t)80 * SIZE_SZ / 4)
#define DEFAULT_MXFAST    ((size_t)64 * SIZE_SZ / 4)
#define fastbin_index(sz) ((unsigned)(((unsigned)(sz) >> 4) - 2))
#define NFASTBINS                                                                                  \
	(fastbin_index((MAX_FAST_SIZE + SIZE_SZ + MALLOC_ALIGN_MASK) & ~MALLOC_ALIGN_MASK) + 1)
#define FASTBIN_CONSOLIDATION_THRESHOLD ((size_t)65536)

/* Thread cache: 64 bins of chunk sizes 32..1040, up to 7 chunks each by default. */
#define TCACHE_MAX_BINS   64
#define TCACHE_FILL_COUNT 7
#define TCACHE_COUNT_MAX  UINT16_MAX
#define tidx2usize(i)     ((size_t)(i)*MALLOC_ALIGNMENT + MINSIZE - SIZE_SZ)
#define MAX_TCACHE_SIZE   tidx2usize(TCACHE_MAX_BINS - 1)
#define csize2tidx(x)     (((x)-MINSIZE + MALLOC_ALIGNMENT - 1) / MALLOC_ALIGNMENT)

/* Non-main heaps: 64 MiB, aligned to their size so a chunk finds its heap. */
#define DEFAULT_MMAP_THRESHOLD_MIN ((size_t)128 * 1024)
#define DEFAULT_MMAP_THRESHOLD_MAX ((size_t)4 * 1024 * 1024 * sizeof(long))
#define HEAP_MIN_SIZE              ((size_t)32 * 1024)
#define HEAP_MAX_SIZE              (2 * DEFAULT_MMAP_THRESHOLD_MAX)
#define MMAP_AS_MORECORE_SIZE      ((size_t)1024 * 1024)
#define NARENAS_FROM_NCORES(n)     ((size_t)(n)*8)

#define ARENA_NONCONTIGUOUS 0x2U

/* Free chunks of at least this size give their whole pages back (bins.c). */
#define DEFAULT_RELEASE_THRESHOLD ((size_t)4 * 1024)
#define DEFAULT_RELEASE_DELAY     ((size_t)1024)

/*
 * A futex lock, glibc's low-level lock: 0 free, 1 held, 2 held with waiters.
 * Taking and releasing an uncontended lock is one atomic instruction each,
 * inline; only waiting and waking go out of line (arena.c).
 */
typedef int ptm_lock_t;
#define PTM_LOCK_INIT 0

void ptm_i_lock_wait(ptm_lock_t *l) PTM_HIDDEN;
void ptm_i_lock_wake(ptm_lock_t *l) PTM_HIDDEN;

static inline void ptm_lock(ptm_lock_t *l)
{
	int c = 0;

	if (likely(__atomic_compare_exchange_n(l, &c, 1, false, __ATOMIC_ACQUIRE,
					       __ATOMIC_RELAXED)))
		return;
	ptm_i_lock_wait(l);
}

/* 0 when taken, like pthread_mutex_trylock. */
static inline int ptm_trylock(ptm_lock_t *l)
{
	int c = 0;

	return __atomic_compare_exchange_n(l, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED) ? 0
												: 1;
}

static inline void ptm_unlock(ptm_lock_t *l)
{
	if (unlikely(__atomic_exchange_n(l, 0, __ATOMIC_RELEASE) == 2))
		ptm_i_lock_wake(l);
}

struct ptm_arena {
	ptm_lock_t mutex;
	unsigned flags;
	int have_fastchunks;
	mchunkptr fastbins[NFASTBINS];
	/* top and last_remainder must sit right before bins: see initial_top. */
	mchunkptr top;
	mchunkptr last_remainder;
	mchunkptr bins[NBINS * 2 - 2];
	unsigned binmap[BINMAPSIZE];
	struct ptm_arena *next;
	struct ptm_arena *next_free;
	size_t attached_threads;
	size_t system_mem;
	size_t max_system_mem;
	/*
	 * The main arena only: the first chunk of its newest region.  Each
	 * region's first chunk keeps the previous region's first chunk in its
	 * prev_size word, which nothing else uses because the first chunk of a
	 * region always has PREV_INUSE set.  The checker walks this list.
	 */
	mchunkptr segments;
	unsigned index;
	/*
	 * The arena's books (ptm_stats_abi.h's fields): free chunks are counted
	 * here as they enter and leave the bins, under the lock, and the rest
	 * is copied in when the lock is released.  Their gen, index and next
	 * are unused: other processes read pub.
	 */
	struct ptm_abi_arena books;
	/*
	 * What other processes read: the books as of the last unlock, copied
	 * under pub's seqlock.  The copy takes a moment, so a reader finds gen
	 * even nearly always, even when the lock is never free (a seqlock held
	 * for the whole critical section left readers of a saturated arena
	 * nothing to read).
	 */
	struct ptm_abi_arena pub;
	/*
	 * The largest binned chunk (unsorted, small and large bins), for the
	 * books' largest_free_bytes.  lf_max is never below any binned chunk's
	 * size; unless lf_stale it is exactly the largest, and at least lf_count
	 * binned chunks have that size.  Taking the last known chunk of that size
	 * out makes it stale; ptm_i_books_largest() finds the true value again,
	 * and only when it matters (see ptm_i_arena_unlock).
	 */
	size_t lf_max;
	size_t lf_count;
	bool lf_stale;
	bool books_cold; /* released-bytes or lock-wait books changed since the last publish */
	/* Free chunks waiting to release their pages, oldest first (bins.c). */
	mchunkptr rel_pending_head;
	mchunkptr rel_pending_tail;
	uint64_t rel_clock;       /* frees into the bins so far */
	uint64_t rel_due;         /* rel_clock at which to look at the oldest again (bins.c) */
	unsigned rel_delay_shift; /* the release delay is the option's << this */
	unsigned rel_calm;        /* releases since one proved premature */
};

typedef struct ptm_arena *mstate;

/*
 * heapfragd's heap census walks libptm's arenas as glibc 2.36's (see
 * ptm_stats_abi.h's version 4): their first 2200 bytes must stay laid out
 * as malloc_state is.
 */
_Static_assert(offsetof(struct ptm_arena, fastbins) == 16, "malloc_state's fastbinsY");
_Static_assert(offsetof(struct ptm_arena, top) == 96, "malloc_state's top");
_Static_assert(offsetof(struct ptm_arena, bins) == 112, "malloc_state's bins");
_Static_assert(offsetof(struct ptm_arena, next) == 2160, "malloc_state's next");
_Static_assert(offsetof(struct ptm_arena, attached_threads) == 2176,
	       "malloc_state's attached_threads");
_Static_assert(offsetof(struct ptm_arena, system_mem) == 2184, "malloc_state's system_mem");
_Static_assert(offsetof(struct ptm_arena, segments) == 2200, "segments follows malloc_state");

/* A bin header is a pseudo-chunk whose fd/bk are the two bin words. */
#define bin_at(m, i)                                                                               \
	((mchunkptr)((char *)&((m)->bins[((i)-1) * 2]) - offsetof(struct ptm_chunk, fd)))
#define next_bin(b)        ((mchunkptr)((char *)(b) + (sizeof(mchunkptr) << 1)))
#define first(b)           ((b)->fd)
#define last(b)            ((b)->bk)
#define unsorted_chunks(m) (bin_at(m, 1))
/* Before the first sysmalloc, top is the unsorted bin header, whose size reads 0. */
#define initial_top(m) (unsorted_chunks(m))
#define mark_bin(m, i) ((m)->binmap[idx2block(i)] |= idx2bit(i))
#define contiguous(m)  (((m)->flags & ARENA_NONCONTIGUOUS) == 0)

struct ptm_heap {
	struct ptm_arena *ar_ptr; /* the arena this heap belongs to */
	struct ptm_heap *prev;    /* the arena's previous heap */
	size_t size;              /* bytes in use (read-write) */
	size_t mprotect_size;     /* bytes ever made read-write */
	size_t pagesize;
	char pad[8]; /* keeps the first chunk's user memory 16-byte aligned */
};

#define heap_for_ptr(p) ((struct ptm_heap *)((uintptr_t)(p) & ~(HEAP_MAX_SIZE - 1)))

/* The tunables and process-wide books, glibc's mp_. */
struct ptm_params {
	size_t trim_threshold;
	size_t top_pad;
	size_t mmap_threshold;
	size_t arena_test;
	size_t arena_max;
	int n_mmaps;
	int n_mmaps_max;
	int max_n_mmaps;
	int no_dyn_threshold;
	size_t mmapped_mem;
	size_t max_mmapped_mem;
	char *sbrk_base;
	size_t tcache_bins;
	size_t tcache_max_bytes;
	size_t tcache_max_csize; /* the largest chunk size the cache holds */
	size_t tcache_count;
	size_t tcache_unsorted_limit;
	size_t max_fast;
	int perturb_byte;
	size_t pagesize;
	size_t release_threshold; /* free chunks this big release their pages; 0 = off */
	size_t release_delay;     /* ... after this many further frees in the arena */
	int release_madv_free;    /* release with MADV_FREE rather than MADV_DONTNEED */
	int release_batch;        /* hand page runs to process_madvise in batches */
	size_t sample_interval;   /* mean bytes between samples; 0 = off */
	size_t release_min;       /* merged free chunks below this have no release work (bins.c) */
};

struct ptm_tcache_entry {
	struct ptm_tcache_entry *next;
	uintptr_t key; /* tcache_key while the chunk is in a thread cache */
};

struct ptm_tcache {
	uint16_t counts[TCACHE_MAX_BINS];
	struct ptm_tcache_entry *entries[TCACHE_MAX_BINS];
	/* The sampled profile (sample.c): bytes until the next sample, and its generator. */
	intptr_t sample_left;
	uint64_t sample_rng;
	/* The registry of live caches, for statistics merged on read. */
	struct ptm_tcache *reg_next;
	struct ptm_tcache *reg_prev;
};

#define PTM_TLS __attribute__((tls_model("initial-exec")))

/* A hidden second name for public function ptm_NAME, for aliases.c. */
#define PTM_HIDDEN_ALIAS(name)                                                                     \
	extern __typeof__(ptm_##name) ptm_i_api_##name                                             \
		__attribute__((alias("ptm_" #name), visibility("hidden")))

extern struct ptm_params ptm_i_mp PTM_HIDDEN;
extern struct ptm_arena ptm_i_main_arena PTM_HIDDEN;
extern uintptr_t ptm_i_tcache_key PTM_HIDDEN;
extern int ptm_i_initialized PTM_HIDDEN;
extern __thread struct ptm_tcache *ptm_i_tcache PTM_HIDDEN PTM_TLS;
extern __thread bool ptm_i_tcache_shutting_down PTM_HIDDEN PTM_TLS;
extern __thread struct ptm_arena *ptm_i_thread_arena PTM_HIDDEN PTM_TLS;
extern ptm_lock_t ptm_i_list_lock PTM_HIDDEN;
extern struct ptm_abi_block ptm_stats_block PTM_API;

#define main_arena (&ptm_i_main_arena)
#define mp_        ptm_i_mp

static inline mstate arena_for_chunk(mchunkptr p)
{
	return chunk_main_arena(p) ? main_arena : heap_for_ptr(p)->ar_ptr;
}

static inline size_t get_max_fast(void)
{
	return __atomic_load_n(&mp_.max_fast, __ATOMIC_RELAXED);
}

static inline void set_max_fast(size_t s)
{
	size_t v = s == 0 ? MIN_CHUNK_SIZE / 2 : (s + SIZE_SZ) & ~MALLOC_ALIGN_MASK;
	__atomic_store_n(&mp_.max_fast, v, __ATOMIC_RELAXED);
}

/* errors.c */
void ptm_i_printerr(const char *msg) PTM_HIDDEN __attribute__((noreturn, cold));

/* options.c */
void ptm_i_options_init(void) PTM_HIDDEN;
int ptm_i_mallopt(int param, int value) PTM_HIDDEN;

/* arena.c */
void ptm_i_init(void) PTM_HIDDEN;
void ptm_i_init_state(mstate av) PTM_HIDDEN;
mstate ptm_i_arena_get(size_t bytes) PTM_HIDDEN;
mstate ptm_i_arena_get_retry(mstate av, size_t bytes) PTM_HIDDEN;
struct ptm_heap *ptm_i_new_heap(size_t size, size_t top_pad) PTM_HIDDEN;
int ptm_i_grow_heap(struct ptm_heap *h, long diff) PTM_HIDDEN;
int ptm_i_heap_trim(struct ptm_heap *heap, size_t pad) PTM_HIDDEN;
void ptm_i_thread_attach(void) PTM_HIDDEN;
size_t ptm_i_narenas(void) PTM_HIDDEN;

void ptm_i_arena_lock_contended(mstate av) PTM_HIDDEN;

/*
 * Arena locks are skipped while the process has a single thread, as glibc
 * does: the flag only ever goes from true to false, and only in the thread
 * that is not inside malloc at that moment, so lock and unlock always pair.
 * The books are published either way: other processes may read.
 */
static inline void ptm_i_books_open(mstate av)
{
	av->books.lock_acquisitions++;
}

/*
 * Copies the books into pub, under pub's seqlock; the caller holds the lock.
 * Every unlock publishes, so this sits on the path of every free and of
 * every malloc that misses the thread cache, and there its instruction and
 * store counts are what cost: a free of a scattered chunk waits on several
 * cache misses, and the next free's loads can only overlap them if the
 * processor's window reaches past this free's tail.  On alloc_bench's
 * swiss_cheese (90,000 such frees) a call to memcpy here made the frees take
 * a quarter longer than leaving the copy out, and 17 word stores a third
 * longer; eight 16-byte moves and one 8-byte move, inline, cost about an
 * eighth, and leaving the copy out altogether saved about 12% of the free
 * loop.  So ptm_i_arena_unlock copies only what most calls change (the
 * hot words: top, bins, fastbins, threads, lock counts, the release calls
 * and the largest free chunk; word by word, see BOOKS_COPY_WORDS) and the
 * rest (system memory, lock wait times, released bytes, heaps) only when
 * it changed: books_cold is set
 * wherever any of those changes (bins.c's release books, arena.c's lock
 * waits and heaps, sysmem.c's growth and trimming).  Copying a word that
 * did not change is always right; every word that changed is copied, so
 * pub is the whole books at every unlock, as before.  Readers check gen, so
 * how the words are moved does not matter to them.
 */
typedef uint64_t ptm_books_pair __attribute__((vector_size(16), aligned(8), may_alias));

#define BOOKS_AT(a, field) ((char *)&(a)->field)

/* Copies pub's words [from, to) from the books, in 16-byte moves and a last 8-byte one. */
#define BOOKS_COPY(av, from, to)                                                                   \
	do {                                                                                       \
		_Pragma("GCC unroll 16") for (size_t i_ = (from); i_ + 16 <= (to); i_ += 16)       \
			*(ptm_books_pair *)((char *)&(av)->pub + i_) =                             \
				*(const ptm_books_pair *)((const char *)&(av)->books + i_);        \
		if (((to) - (from)) % 16 != 0)                                                     \
			*(uint64_t *)((char *)&(av)->pub + (to)-8) =                               \
				*(const uint64_t *)((const char *)&(av)->books + (to)-8);          \
	} while (0)

/*
 * Copies the books' words first..last (field names) one by one.  The hot
 * words were just written one by one in the critical section, and a 16-byte
 * load of two words still in the store buffer cannot be forwarded from
 * them: it waits for both stores to reach the cache (perf put half of
 * realloc's own time there, and a twentieth of free's arena part).
 */
#define BOOKS_COPY_WORDS(av, first, last)                                                          \
	do {                                                                                       \
		_Pragma("GCC unroll 8") for (size_t i_ = offsetof(struct ptm_abi_arena, first);   \
					       i_ <= offsetof(struct ptm_abi_arena, last); i_ += 8)  \
			*(uint64_t *)((char *)&(av)->pub + i_) =                                   \
				*(const uint64_t *)((const char *)&(av)->books + i_);              \
	} while (0)

enum {
	BOOKS_FROM = offsetof(struct ptm_abi_arena, system_bytes),
	BOOKS_END = sizeof(struct ptm_abi_arena),
	/* The hot words: top_bytes up to lock_contended, release_calls and largest_free_bytes. */
	BOOKS_HOT1_FROM = offsetof(struct ptm_abi_arena, top_bytes),
	BOOKS_HOT1_TO = offsetof(struct ptm_abi_arena, lock_wait_ns),
	BOOKS_HOT2_FROM = offsetof(struct ptm_abi_arena, release_calls),
	BOOKS_HOT2_TO = offsetof(struct ptm_abi_arena, heaps),
};
_Static_assert(BOOKS_HOT1_FROM == offsetof(struct ptm_abi_arena, max_system_bytes) + 8 &&
		       BOOKS_HOT2_TO == offsetof(struct ptm_abi_arena, largest_free_bytes) + 8 &&
		       BOOKS_HOT2_FROM == offsetof(struct ptm_abi_arena, reuse_total_bytes) + 8 &&
		       BOOKS_END == offsetof(struct ptm_abi_arena, heaps) + 8,
	       "the hot and cold parts of the books cover them whole");


/* The cold words, when they changed (see above). */
static inline void books_publish_cold(mstate av)
{
	av->pub.system_bytes = av->books.system_bytes = av->system_mem;
	av->pub.max_system_bytes = av->books.max_system_bytes = av->max_system_mem;
	BOOKS_COPY_WORDS(av, lock_wait_ns, reuse_total_bytes);
	av->pub.heaps = av->books.heaps;
	av->books_cold = false;
}

/* Some released-bytes or lock-wait books changed: the next unlock copies them. */
static inline void books_cold_changed(mstate av)
{
	av->books_cold = true;
}

static inline void ptm_i_arena_lock(mstate av)
{
	if (!__libc_single_threaded && unlikely(ptm_trylock(&av->mutex) != 0))
		ptm_i_arena_lock_contended(av);
	ptm_i_books_open(av);
}

/* 0 when taken. */
static inline int ptm_i_arena_trylock(mstate av)
{
	if (!__libc_single_threaded && ptm_trylock(&av->mutex) != 0)
		return 1;
	ptm_i_books_open(av);
	return 0;
}

uint64_t ptm_i_books_largest(mstate av, size_t top) PTM_HIDDEN;

/*
 * The largest free chunk is the top chunk whenever top is at least lf_max
 * (which bounds every binned chunk, stale or not) and larger than any
 * fastbin chunk can be: one compare on the usual path.  Otherwise, an exact
 * lf_max settles it, and only a stale one or a small top goes out of line.
 */
static inline uint64_t books_largest(mstate av, size_t top)
{
	if (likely(top >= av->lf_max && top >= MAX_FAST_SIZE))
		return top;
	if (!av->lf_stale && av->lf_max >= MAX_FAST_SIZE)
		return av->lf_max;
	return ptm_i_books_largest(av, top);
}

/* The whole copy, for a new arena and after fork. */
static inline void ptm_i_books_publish(mstate av)
{
	uint64_t gen = av->pub.gen;

	_Static_assert((BOOKS_END - BOOKS_FROM) % sizeof(uint64_t) == 0,
		       "the books are whole 64-bit words");
	av->books.system_bytes = av->system_mem;
	av->books.max_system_bytes = av->max_system_mem;
	/* The unlock stores these three into pub alone: bring the books' copies up to date. */
	av->books.top_bytes = chunksize(av->top);
	av->books.largest_free_bytes = books_largest(av, chunksize(av->top));
	av->books.threads_attached = av->attached_threads;
	__atomic_store_n(&av->pub.gen, gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	BOOKS_COPY(av, BOOKS_FROM, BOOKS_END);
	__atomic_store_n(&av->pub.gen, gen + 2, __ATOMIC_RELEASE);
	av->books_cold = false;
}

static inline void ptm_i_arena_unlock(mstate av)
{
	size_t top = chunksize(av->top);
	uint64_t largest = books_largest(av, top), threads = av->attached_threads;
	uint64_t gen = av->pub.gen;

	__atomic_store_n(&av->pub.gen, gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	av->pub.top_bytes = top;
	av->pub.largest_free_bytes = largest;
	av->pub.threads_attached = threads;
	BOOKS_COPY_WORDS(av, binned_chunks, fast_bytes);
	BOOKS_COPY_WORDS(av, lock_acquisitions, lock_contended);
	BOOKS_COPY_WORDS(av, release_calls, release_calls);
	if (unlikely(av->books_cold))
		books_publish_cold(av);
	__atomic_store_n(&av->pub.gen, gen + 2, __ATOMIC_RELEASE);
	if (!__libc_single_threaded)
		ptm_unlock(&av->mutex);
}

/* A free chunk enters the unsorted, small or large bins. */
static inline void books_bin_in(mstate av, size_t size)
{
	av->books.binned_chunks++;
	av->books.binned_bytes += size;
	if (unlikely(size >= av->lf_max)) {
		if (size == av->lf_max && !av->lf_stale) {
			av->lf_count++;
		} else {
			/* Nothing binned is larger: size is the exact maximum again. */
			av->lf_max = size;
			av->lf_count = 1;
			av->lf_stale = false;
		}
	}
}

/* A free chunk leaves them. */
static inline void books_bin_out(mstate av, size_t size)
{
	av->books.binned_chunks--;
	av->books.binned_bytes -= size;
	if (unlikely(size == av->lf_max) && !av->lf_stale && --av->lf_count == 0)
		av->lf_stale = true;
}

static inline void books_fast(mstate av, long chunks, long bytes)
{
	av->books.fast_chunks += (uint64_t)chunks;
	av->books.fast_bytes += (uint64_t)bytes;
}

static inline void ptm_i_ensure_init(void)
{
	if (unlikely(!__atomic_load_n(&ptm_i_initialized, __ATOMIC_ACQUIRE)))
		ptm_i_init();
}

/* bins.c */
void *ptm_i_int_malloc(mstate av, size_t bytes) PTM_HIDDEN;
void ptm_i_int_free(mstate av, mchunkptr p, int have_lock) PTM_HIDDEN;
void ptm_i_int_free_arena(mstate av, mchunkptr p, size_t size) PTM_HIDDEN;
void *ptm_i_int_realloc(mstate av, mchunkptr oldp, size_t oldsize, size_t nb) PTM_HIDDEN;
void *ptm_i_int_memalign(mstate av, size_t alignment, size_t bytes) PTM_HIDDEN;
void ptm_i_consolidate(mstate av) PTM_HIDDEN;
void ptm_i_unlink_chunk(mstate av, mchunkptr p) PTM_HIDDEN;
int ptm_i_mtrim(mstate av, size_t pad) PTM_HIDDEN;
void ptm_i_release_absorbed(mstate av, mchunkptr p, size_t size) PTM_HIDDEN;
size_t ptm_i_release_marked(mchunkptr p, size_t size, int *pending) PTM_HIDDEN;
void ptm_i_release_recheck(void) PTM_HIDDEN;
void ptm_i_release_params(void) PTM_HIDDEN;
mchunkptr ptm_i_release_next(mchunkptr p) PTM_HIDDEN;
/* Bytes of a free chunk that page release and malloc_trim keep: its header and release words. */
extern const size_t ptm_i_release_keep PTM_HIDDEN;

/* sysmem.c: the only file that talks to the kernel about memory. */
void *ptm_i_sys_sbrk(intptr_t increment) PTM_HIDDEN;
void *ptm_i_sys_mmap(void *addr, size_t len, int prot, int flags) PTM_HIDDEN;
int ptm_i_sys_munmap(void *addr, size_t len) PTM_HIDDEN;
int ptm_i_sys_mprotect(void *addr, size_t len, int prot) PTM_HIDDEN;
int ptm_i_sys_madvise(void *addr, size_t len, int advice) PTM_HIDDEN;
struct iovec;
void ptm_i_sys_release(const struct iovec *iov, unsigned n, int madv_free) PTM_HIDDEN;
void *ptm_i_sys_mremap(void *old, size_t old_len, size_t new_len) PTM_HIDDEN;
void *ptm_i_sysmalloc(size_t nb, mstate av) PTM_HIDDEN;
int ptm_i_systrim(size_t pad, mstate av) PTM_HIDDEN;
void ptm_i_munmap_chunk(mchunkptr p) PTM_HIDDEN;
char *ptm_i_sys_mmap_chunk(size_t size) PTM_HIDDEN;
mchunkptr ptm_i_mremap_chunk(mchunkptr p, size_t new_size) PTM_HIDDEN;

/* sample.c */
void ptm_i_sample_reset(struct ptm_tcache *tc) PTM_HIDDEN;
void *ptm_i_sample_alloc(struct ptm_tcache *tc, size_t bytes, const void *caller) PTM_HIDDEN;
int ptm_i_sample_is(mchunkptr p) PTM_HIDDEN;
void ptm_i_sample_forget(mchunkptr p) PTM_HIDDEN;

/* tcache.c */
void ptm_i_tcache_init(void) PTM_HIDDEN;
void ptm_i_tcache_thread_shutdown(void) PTM_HIDDEN;
void ptm_i_tcache_sum(uint64_t *chunks, uint64_t *bytes, uint64_t *threads) PTM_HIDDEN;
void ptm_i_tcache_fork_child(void) PTM_HIDDEN;

/* check.c: counts av's in-use chunks and its regions (or heaps); the arena is locked. */
int ptm_i_count_inuse(mstate av, uint64_t *chunks, uint64_t *regions) PTM_HIDDEN;
void ptm_i_tcache_double_free_scan(struct ptm_tcache *tc, struct ptm_tcache_entry *e,
				   size_t idx) PTM_HIDDEN;

static inline void tcache_put(struct ptm_tcache *tc, mchunkptr p, size_t idx)
{
	struct ptm_tcache_entry *e = (struct ptm_tcache_entry *)chunk2mem(p);

	e->key = ptm_i_tcache_key;
	e->next = PROTECT_PTR(&e->next, tc->entries[idx]);
	tc->entries[idx] = e;
	tc->counts[idx]++;
}

static inline void *tcache_get(struct ptm_tcache *tc, size_t idx)
{
	struct ptm_tcache_entry *e = tc->entries[idx];

	if (unlikely(!aligned_ok(e)))
		ptm_i_printerr("malloc(): unaligned tcache chunk detected");
	tc->entries[idx] = REVEAL_PTR(e->next);
	tc->counts[idx]--;
	e->key = 0;
	return e;
}

static inline void alloc_perturb(void *p, size_t n)
{
	if (unlikely(mp_.perturb_byte))
		__builtin_memset(p, mp_.perturb_byte ^ 0xff, n);
}

static inline void free_perturb(void *p, size_t n)
{
	if (unlikely(mp_.perturb_byte))
		__builtin_memset(p, mp_.perturb_byte, n);
}

#endif /* PTM_INTERNAL_H */
