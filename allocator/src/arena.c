// SPDX-License-Identifier: MIT
/*
 * arena.c - arenas, their heaps, which thread uses which, and fork.
 *
 * The main arena is static and grows with brk.  Every other arena lives at
 * the start of its first heap: a 64 MiB-aligned reservation of address space
 * made read-write page by page with mprotect as it grows and handed back with
 * MADV_DONTNEED as it shrinks.  Because heaps are aligned to their maximum
 * size, any chunk finds its heap (and so its arena) by masking its address.
 *
 * A thread keeps the arena it last used.  A thread without one takes an
 * arena left by an exited thread, else creates a new one while there are
 * fewer than arena_max (default 8 per core), else walks the list trying each
 * lock and waits on one only if all are taken.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "usdt.h"

struct ptm_arena ptm_i_main_arena = {
	.mutex = PTM_LOCK_INIT,
	.next = &ptm_i_main_arena,
	.attached_threads = 1,
};
int ptm_i_initialized;
__thread struct ptm_arena *ptm_i_thread_arena PTM_TLS;
ptm_lock_t ptm_i_list_lock = PTM_LOCK_INIT;

/* Protects free_list and every arena's attached_threads. */
static ptm_lock_t free_list_lock = PTM_LOCK_INIT;
static struct ptm_arena *free_list;
static size_t narenas = 1;
static size_t narenas_limit;
static struct ptm_arena *next_to_use;
static ptm_lock_t next_lock = PTM_LOCK_INIT; /* protects next_to_use */
/* A 64 MiB-aligned spot left over from the last heap reservation, worth trying first. */
static char *aligned_heap_area;
static int init_state; /* 0 none, 1 in progress, 2 done */
static pthread_key_t thread_key;
static bool thread_key_ok;
static __thread bool thread_registered PTM_TLS;

/* The contended half of ptm_lock: mark the lock contended and sleep on it. */
/* free keeps errno, and may wait here: the futex call must not change it. */
void ptm_i_lock_wait(ptm_lock_t *l)
{
	int saved_errno;

	/* A short spin first: arena critical sections are short. */
	for (int i = 0; i < 100; i++) {
		int c = 0;

		if (__atomic_load_n(l, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(l, &c, 1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		__builtin_ia32_pause();
	}
	saved_errno = errno;
	while (__atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE) != 0)
		syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
	errno = saved_errno;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The arena lock was taken: wait for it, and book the wait once we hold it. */
void ptm_i_arena_lock_contended(mstate av)
{
	uint64_t t0 = now_ns(), waited;

	PTM_PROBE1(lock_contended_begin, av);
	ptm_lock(&av->mutex);
	waited = now_ns() - t0;
	PTM_PROBE2(lock_contended_end, av, waited);
	av->books.lock_contended++;
	av->books.lock_wait_ns += waited;
	if (waited > av->books.lock_max_wait_ns)
		av->books.lock_max_wait_ns = waited;
	books_cold_changed(av);
}

void ptm_i_lock_wake(ptm_lock_t *l)
{
	int saved_errno = errno;

	syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	errno = saved_errno;
}

size_t ptm_i_narenas(void)
{
	return __atomic_load_n(&narenas, __ATOMIC_RELAXED);
}

void ptm_i_init_state(mstate av)
{
	int i;

	for (i = 1; i < NBINS; i++) {
		mchunkptr bin = bin_at(av, i);

		bin->fd = bin->bk = bin;
	}
	if (av != main_arena)
		av->flags |= ARENA_NONCONTIGUOUS;
	av->have_fastchunks = 0;
	av->top = initial_top(av);
}

/* The per-thread destructor: flush the cache, let go of the arena. */
static void thread_exit(void *arg)
{
	mstate a;

	ptm_i_tcache_thread_shutdown();
	a = ptm_i_thread_arena;
	ptm_i_thread_arena = NULL;
	thread_registered = false;
	if (a == NULL)
		return;
	ptm_lock(&free_list_lock);
	if (a->attached_threads > 0 && --a->attached_threads == 0) {
		a->next_free = free_list;
		free_list = a;
	}
	ptm_unlock(&free_list_lock);
}

/*
 * A thread that uses libptm gets a key value so that thread_exit runs for
 * it.  A thread that allocates again from a later destructor registers again,
 * and the destructor loop comes back for it.
 */
void ptm_i_thread_attach(void)
{
	if (thread_registered || !thread_key_ok)
		return;
	thread_registered = true;
	pthread_setspecific(thread_key, (void *)1);
}

static void fork_prepare(void)
{
	mstate a;

	if (!ptm_i_initialized)
		return;
	ptm_lock(&ptm_i_list_lock);
	a = main_arena;
	do {
		ptm_lock(&a->mutex);
		a = a->next;
	} while (a != main_arena);
}

static void fork_parent(void)
{
	mstate a;

	if (!ptm_i_initialized)
		return;
	a = main_arena;
	do {
		ptm_unlock(&a->mutex);
		a = a->next;
	} while (a != main_arena);
	ptm_unlock(&ptm_i_list_lock);
}

/*
 * In the child only the forking thread survives: every lock is fresh, every
 * arena but this thread's is free for the taking.
 */
static void fork_child(void)
{
	mstate a;

	if (!ptm_i_initialized)
		return;
	free_list_lock = PTM_LOCK_INIT;
	next_lock = PTM_LOCK_INIT;
	if (ptm_i_thread_arena != NULL)
		ptm_i_thread_arena->attached_threads = 1;
	free_list = NULL;
	a = main_arena;
	do {
		a->mutex = PTM_LOCK_INIT;
		if (a != ptm_i_thread_arena) {
			a->attached_threads = 0;
			a->next_free = free_list;
			free_list = a;
		}
		a = a->next;
	} while (a != main_arena);
	ptm_i_list_lock = PTM_LOCK_INIT;
	ptm_i_tcache_fork_child();
}

static uintptr_t random_key(void)
{
	uintptr_t key = 0;
	long r;

	/* getrandom(2) never allocates; fall back to address and time entropy. */
	r = syscall(SYS_getrandom, &key, sizeof(key), 1 /* GRND_NONBLOCK */);
	if (r != (long)sizeof(key) || key == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		key = ((uintptr_t)&ts * 0x9e3779b97f4a7c15ULL) ^ ((uintptr_t)ts.tv_nsec << 17) ^
		      (uintptr_t)ts.tv_sec ^ (uintptr_t)getpid();
		if (key == 0)
			key = 0x5a5a5a5a5a5a5a5aULL;
	}
	return key;
}

/*
 * Runs on the first call into libptm, possibly before any constructor.
 * Everything here avoids allocating, so calls made while it runs (from
 * pthread_atfork, say) find the main arena ready.
 */
void ptm_i_init(void)
{
	int expected = 0;

	if (!__atomic_compare_exchange_n(&init_state, &expected, 1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		/* Another thread is initialising: wait for it (we are not it). */
		while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2)
			sched_yield();
		return;
	}
	mp_.pagesize = (size_t)sysconf(_SC_PAGESIZE);
	ptm_i_tcache_key = random_key();
	ptm_i_options_init();
	ptm_i_release_params();
	ptm_i_init_state(main_arena);
	ptm_i_thread_arena = main_arena;
	ptm_i_books_publish(main_arena);
	ptm_stats_block.arena_record_offset = offsetof(struct ptm_arena, pub);
	ptm_stats_block.arena_size = sizeof(struct ptm_arena);
	ptm_stats_block.arena_segments_offset = offsetof(struct ptm_arena, segments);
	ptm_stats_block.heap_info_size = sizeof(struct ptm_heap);
	ptm_stats_block.tcache_key_addr = (uint64_t)(uintptr_t)&ptm_i_tcache_key;
	ptm_stats_block.tcache_max_csize_addr = (uint64_t)(uintptr_t)&mp_.tcache_max_csize;
	ptm_stats_block.release_keep = ptm_i_release_keep;
	ptm_stats_block.page_size = mp_.pagesize;
	ptm_stats_block.first_arena = (uint64_t)(uintptr_t)&main_arena->pub;
	__atomic_store_n(&ptm_i_initialized, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);

	/* These two may allocate; the allocator is usable by now. */
	thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

struct ptm_heap *ptm_i_new_heap(size_t size, size_t top_pad)
{
	size_t pagesize = mp_.pagesize;
	char *p1, *p2;
	size_t ul;
	struct ptm_heap *h;

	if (size + top_pad < HEAP_MIN_SIZE)
		size = HEAP_MIN_SIZE;
	else if (size + top_pad <= HEAP_MAX_SIZE)
		size += top_pad;
	else if (size > HEAP_MAX_SIZE)
		return NULL;
	else
		size = HEAP_MAX_SIZE;
	size = ALIGN_UP(size, pagesize);

	/*
	 * Reserve twice the maximum to find an aligned window, and keep the
	 * aligned upper half, if we got one, as the first try next time.
	 */
	p2 = MAP_FAILED;
	if (aligned_heap_area) {
		p2 = ptm_i_sys_mmap(aligned_heap_area, HEAP_MAX_SIZE, PROT_NONE, MAP_NORESERVE);
		aligned_heap_area = NULL;
		if (p2 != MAP_FAILED && ((uintptr_t)p2 & (HEAP_MAX_SIZE - 1))) {
			ptm_i_sys_munmap(p2, HEAP_MAX_SIZE);
			p2 = MAP_FAILED;
		}
	}
	if (p2 == MAP_FAILED) {
		p1 = ptm_i_sys_mmap(NULL, HEAP_MAX_SIZE << 1, PROT_NONE, MAP_NORESERVE);
		if (p1 != MAP_FAILED) {
			p2 = (char *)(((uintptr_t)p1 + (HEAP_MAX_SIZE - 1)) & ~(HEAP_MAX_SIZE - 1));
			ul = (size_t)(p2 - p1);
			if (ul)
				ptm_i_sys_munmap(p1, ul);
			else
				aligned_heap_area = p2 + HEAP_MAX_SIZE;
			ptm_i_sys_munmap(p2 + HEAP_MAX_SIZE, HEAP_MAX_SIZE - ul);
		} else {
			p2 = ptm_i_sys_mmap(NULL, HEAP_MAX_SIZE, PROT_NONE, MAP_NORESERVE);
			if (p2 == MAP_FAILED)
				return NULL;
			if ((uintptr_t)p2 & (HEAP_MAX_SIZE - 1)) {
				ptm_i_sys_munmap(p2, HEAP_MAX_SIZE);
				return NULL;
			}
		}
	}
	if (ptm_i_sys_mprotect(p2, size, PROT_READ | PROT_WRITE) != 0) {
		ptm_i_sys_munmap(p2, HEAP_MAX_SIZE);
		return NULL;
	}
	h = (struct ptm_heap *)p2;
	h->size = size;
	h->mprotect_size = size;
	h->pagesize = pagesize;
	return h;
}

int ptm_i_grow_heap(struct ptm_heap *h, long diff)
{
	size_t new_size;

	diff = (long)ALIGN_UP((size_t)diff, mp_.pagesize);
	new_size = h->size + (size_t)diff;
	if (new_size > HEAP_MAX_SIZE)
		return -ENOMEM;
	if (new_size > h->mprotect_size) {
		if (ptm_i_sys_mprotect((char *)h + h->mprotect_size, new_size - h->mprotect_size,
				       PROT_READ | PROT_WRITE) != 0)
			return -ENOMEM;
		h->mprotect_size = new_size;
	}
	h->size = new_size;
	return 0;
}

/* Shrinking keeps the pages read-write but gives their memory back. */
static int shrink_heap(struct ptm_heap *h, size_t diff)
{
	if (h->size < diff || h->size - diff < sizeof(*h))
		return -EINVAL;
	ptm_i_sys_madvise((char *)h + h->size - diff, diff, MADV_DONTNEED);
	h->size -= diff;
	return 0;
}

static void delete_heap(struct ptm_heap *h)
{
	if ((char *)h + HEAP_MAX_SIZE == aligned_heap_area)
		aligned_heap_area = NULL;
	ptm_i_sys_munmap(h, HEAP_MAX_SIZE);
}

/*
 * Called with the arena locked when a free left a big top: drop whole heaps
 * that have become empty, then give back the tail of the last one.
 */
int ptm_i_heap_trim(struct ptm_heap *heap, size_t pad)
{
	mstate ar_ptr = heap->ar_ptr;
	mchunkptr top_chunk = ar_ptr->top, p;
	struct ptm_heap *prev_heap;
	size_t new_size, top_size, top_area, extra, prev_size, misalign;
	size_t trim = __atomic_load_n(&mp_.trim_threshold, __ATOMIC_RELAXED);

	while (top_chunk == chunk_at_offset(heap, sizeof(*heap))) {
		prev_heap = heap->prev;
		prev_size = prev_heap->size - (MINSIZE - 2 * SIZE_SZ);
		p = chunk_at_offset(prev_heap, prev_size);
		misalign = (uintptr_t)p & MALLOC_ALIGN_MASK;
		p = chunk_at_offset(prev_heap, prev_size - misalign);
		if (p->size != (0 | PREV_INUSE))
			ptm_i_printerr("heap_trim(): missing fencepost");
		p = prev_chunk(p);
		new_size = chunksize(p) + (MINSIZE - 2 * SIZE_SZ) + misalign;
		if (!prev_inuse(p))
			new_size += p->prev_size;
		if (new_size + (HEAP_MAX_SIZE - prev_heap->size) < trim + MINSIZE + mp_.pagesize)
			break;
		ar_ptr->system_mem -= heap->size;
		PTM_PROBE3(heap_shrink, ar_ptr, heap->size, ar_ptr->system_mem);
		delete_heap(heap);
		ar_ptr->books.heaps--;
		books_cold_changed(ar_ptr);
		heap = prev_heap;
		if (!prev_inuse(p)) {
			p = prev_chunk(p);
			ptm_i_unlink_chunk(ar_ptr, p);
			ptm_i_release_absorbed(ar_ptr, p, chunksize(p));
		}
		ar_ptr->top = top_chunk = p;
		set_head(top_chunk, new_size | PREV_INUSE);
	}

	top_size = chunksize(top_chunk);
	if (top_size < trim)
		return 0;
	if (top_size < MINSIZE + 1)
		return 0;
	top_area = top_size - MINSIZE - 1;
	if (top_area <= pad)
		return 0;
	extra = ALIGN_DOWN(top_area - pad, mp_.pagesize);
	if (extra == 0)
		return 0;
	if (shrink_heap(heap, extra) != 0)
		return 0;
	ar_ptr->system_mem -= extra;
	books_cold_changed(ar_ptr);
	PTM_PROBE3(heap_shrink, ar_ptr, extra, ar_ptr->system_mem);
	set_head(top_chunk, (top_size - extra) | PREV_INUSE);
	return 1;
}

static void detach_arena(mstate replaced)
{
	if (replaced != NULL && replaced->attached_threads > 0)
		--replaced->attached_threads;
}

static mstate new_arena(size_t size)
{
	struct ptm_heap *h;
	mstate a, replaced;
	char *ptr;
	uintptr_t misalign;

	h = ptm_i_new_heap(size + (sizeof(*h) + sizeof(*a) + MALLOC_ALIGNMENT), mp_.top_pad);
	if (h == NULL) {
		/* Maybe the request was too large for a heap: set up the arena anyway. */
		h = ptm_i_new_heap(sizeof(*h) + sizeof(*a) + MALLOC_ALIGNMENT, 0);
		if (h == NULL)
			return NULL;
	}
	a = h->ar_ptr = (mstate)(h + 1);
	h->prev = NULL;
	memset(a, 0, sizeof(*a));
	a->mutex = PTM_LOCK_INIT;
	ptm_i_init_state(a);
	a->attached_threads = 1;
	a->system_mem = a->max_system_mem = h->size;
	a->books.heaps = 1;

	ptr = (char *)(a + 1);
	misalign = (uintptr_t)chunk2mem(ptr) & MALLOC_ALIGN_MASK;
	if (misalign > 0)
		ptr += MALLOC_ALIGNMENT - misalign;
	a->top = (mchunkptr)ptr;
	set_head(a->top, (size_t)(((char *)h + h->size) - ptr) | PREV_INUSE);

	ptm_i_arena_lock(a);
	ptm_lock(&ptm_i_list_lock);
	/*
	 * narenas was reserved outside the list lock, so two threads creating
	 * arenas at once can read the same value; the block's count only moves
	 * under the list lock, which makes indexes unique.
	 */
	a->index = (unsigned)ptm_stats_block.narenas;
	a->pub.index = a->index;
	a->next = main_arena->next;
	__atomic_store_n(&main_arena->next, a, __ATOMIC_RELEASE);
	/*
	 * The published list mirrors the arena list; a reader sees it grow
	 * atomically, and the new record already holds the arena's first books.
	 */
	ptm_i_books_publish(a);
	a->pub.next = main_arena->pub.next;
	__atomic_store_n(&main_arena->pub.next, (uint64_t)(uintptr_t)&a->pub, __ATOMIC_RELEASE);
	__atomic_add_fetch(&ptm_stats_block.narenas, 1, __ATOMIC_RELEASE);
	ptm_unlock(&ptm_i_list_lock);

	replaced = ptm_i_thread_arena;
	ptm_lock(&free_list_lock);
	detach_arena(replaced);
	ptm_unlock(&free_list_lock);
	ptm_i_thread_arena = a;
	PTM_PROBE2(arena_create, a, a->index);
	return a;
}

static mstate get_free_list(void)
{
	mstate replaced = ptm_i_thread_arena;
	mstate result = __atomic_load_n(&free_list, __ATOMIC_RELAXED);

	if (result == NULL)
		return NULL;
	ptm_lock(&free_list_lock);
	result = free_list;
	if (result != NULL) {
		free_list = result->next_free;
		result->attached_threads = 1;
		detach_arena(replaced);
	}
	ptm_unlock(&free_list_lock);
	if (result != NULL) {
		ptm_i_arena_lock(result);
		ptm_i_thread_arena = result;
		PTM_PROBE2(arena_reuse, result, result->index);
	}
	return result;
}

static void remove_from_free_list(mstate arena)
{
	mstate *previous = &free_list;

	for (mstate p = free_list; p != NULL; p = p->next_free) {
		if (p == arena) {
			*previous = p->next_free;
			break;
		}
		previous = &p->next_free;
	}
}

/* All arenas are in use: share one, preferring any that is not locked now. */
static mstate reused_arena(mstate avoid_arena)
{
	mstate result, replaced;
	mstate begin;

	ptm_lock(&next_lock);
	if (next_to_use == NULL)
		next_to_use = main_arena;
	begin = next_to_use;
	ptm_unlock(&next_lock);

	result = begin;
	if (__libc_single_threaded) {
		/* No lock to take, but the books must still count and publish. */
		ptm_i_arena_lock(result);
		goto out;
	}
	do {
		if (ptm_i_arena_trylock(result) == 0)
			goto out;
		result = __atomic_load_n(&result->next, __ATOMIC_ACQUIRE);
	} while (result != begin);
	if (result == avoid_arena)
		result = result->next;
	ptm_i_arena_lock(result);
out:
	replaced = ptm_i_thread_arena;
	ptm_lock(&free_list_lock);
	detach_arena(replaced);
	remove_from_free_list(result);
	++result->attached_threads;
	ptm_unlock(&free_list_lock);

	ptm_lock(&next_lock);
	next_to_use = result->next;
	ptm_unlock(&next_lock);
	ptm_i_thread_arena = result;
	PTM_PROBE2(arena_reuse, result, result->index);
	return result;
}

static size_t ncores(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		n = CPU_COUNT(&set);
		if (n >= 1)
			return (size_t)n;
	}
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n >= 1 ? (size_t)n : 2;
}

/* A thread without a usable arena: returns one, locked. */
static mstate arena_get2(size_t size, mstate avoid_arena)
{
	mstate a = get_free_list();
	size_t n, limit;

	if (a != NULL)
		return a;
	limit = __atomic_load_n(&narenas_limit, __ATOMIC_RELAXED);
	if (limit == 0) {
		if (mp_.arena_max != 0)
			limit = mp_.arena_max;
		else if (__atomic_load_n(&narenas, __ATOMIC_RELAXED) > mp_.arena_test)
			limit = NARENAS_FROM_NCORES(ncores());
		__atomic_store_n(&narenas_limit, limit, __ATOMIC_RELAXED);
	}
	for (;;) {
		n = __atomic_load_n(&narenas, __ATOMIC_RELAXED);
		if (n > limit - 1)
			return reused_arena(avoid_arena);
		if (__atomic_compare_exchange_n(&narenas, &n, n + 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			break;
	}
	a = new_arena(size);
	if (a == NULL) {
		__atomic_sub_fetch(&narenas, 1, __ATOMIC_RELAXED);
		return reused_arena(avoid_arena);
	}
	return a;
}

mstate ptm_i_arena_get(size_t bytes)
{
	mstate a = ptm_i_thread_arena;

	if (a != NULL) {
		ptm_i_arena_lock(a);
		return a;
	}
	a = arena_get2(bytes, NULL);
	ptm_i_thread_attach();
	return a;
}

/* The locked arena av could not serve the request: try another. */
mstate ptm_i_arena_get_retry(mstate av, size_t bytes)
{
	if (av != main_arena) {
		ptm_i_arena_unlock(av);
		av = main_arena;
		ptm_i_arena_lock(av);
	} else {
		ptm_i_arena_unlock(av);
		av = arena_get2(bytes, av);
	}
	return av;
}
