// SPDX-License-Identifier: MIT
/*
 * check.c - ptm_check_heap(): the whole heap, checked against every
 * invariant the allocator relies on.
 *
 * With every arena locked (the same order fork uses), it walks each arena's
 * memory chunk by chunk (the main arena region by region, the others heap
 * by heap), records every chunk in a scratch hash table (mapped for the
 * occasion, so the checker never allocates from the heap it checks), then
 * walks every fastbin, every bin and the calling thread's cache and checks
 * that each entry is a chunk of the walk in the right state, in exactly one
 * list, with consistent links, sizes, order and binmap bits.  Finally every
 * free chunk of the walk must have been found in a bin.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptm.h"
#include "internal.h"

enum {
	CH_INUSE = 1,
	CH_FREE = 2,
	CH_TOP = 4,
	CH_IN_BIN = 8,
	CH_IN_FAST = 16,
	CH_IN_TCACHE = 32,
};

struct slot {
	uintptr_t addr;
	uintptr_t flags;
};

struct checker {
	struct slot *table;
	size_t mask;
	size_t map_bytes;
	size_t nchunks;
	struct ptm_heap_census c;
	size_t arena_largest; /* the largest free chunk of the arena being checked */
	int failed;
};

static __attribute__((format(printf, 2, 3))) int fail(struct checker *ck, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (ck->failed)
		return -EUCLEAN;
	ck->failed = 1;
	n = snprintf(buf, sizeof(buf), "ptm_check_heap: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return -EUCLEAN;
	return -EUCLEAN;
}

static size_t hash(uintptr_t a)
{
	return (size_t)((a >> 4) * 0x9e3779b97f4a7c15ULL);
}

static struct slot *lookup(struct checker *ck, uintptr_t a)
{
	size_t i = hash(a) & ck->mask;

	while (ck->table[i].addr != 0 && ck->table[i].addr != a)
		i = (i + 1) & ck->mask;
	return &ck->table[i];
}

/* The chunk p, if the walk met it; NULL otherwise. */
static struct slot *find(struct checker *ck, const void *p)
{
	struct slot *s = lookup(ck, (uintptr_t)p);

	return s->addr ? s : NULL;
}

/*
 * Walks one contiguous run of chunks from start, calling back for each.
 * The run ends at top, at a fencepost (a size below MINSIZE), or at limit.
 */
typedef int (*chunk_fn)(struct checker *ck, mstate av, mchunkptr p, int flags);

static int walk_run(struct checker *ck, mstate av, mchunkptr start, char *limit, chunk_fn fn)
{
	mchunkptr p = start;
	int prev_free = 0;
	size_t prev_size = 0;

	for (;;) {
		size_t size = chunksize(p), nsize;
		mchunkptr next;
		int is_free, err;

		if (p == av->top) {
			if (size < MINSIZE || !aligned_ok(size))
				return fail(ck, "arena %u: top %p has bad size %zu", av->index,
					    (void *)p, size);
			if (!prev_inuse(p) || prev_free)
				return fail(ck, "arena %u: the chunk before top %p is free",
					    av->index, (void *)p);
			if (limit && (char *)p + size != limit)
				return fail(ck, "arena %u: top %p ends at %p, heap at %p",
					    av->index, (void *)p, (void *)((char *)p + size),
					    (void *)limit);
			return fn(ck, av, p, CH_TOP);
		}
		if (size < MINSIZE) {
			/* A fencepost: 16 (main) or 16 then 0, or 0 (non-main). */
			if (size != 0 && size != CHUNK_HDR_SZ)
				return fail(ck, "arena %u: chunk %p has size %zu", av->index,
					    (void *)p, size);
			if (prev_free && prev_inuse(p))
				return fail(ck,
					    "arena %u: fencepost %p says its free "
					    "predecessor is in use",
					    av->index, (void *)p);
			return 0;
		}
		if (!aligned_ok(size) || misaligned_chunk(p))
			return fail(ck, "arena %u: chunk %p size %zu misaligned", av->index,
				    (void *)p, size);
		if (chunk_is_mmapped(p))
			return fail(ck, "arena %u: chunk %p inside the arena is marked mmapped",
				    av->index, (void *)p);
		if (size > av->system_mem)
			return fail(ck, "arena %u: chunk %p size %zu exceeds system_mem %zu",
				    av->index, (void *)p, size, av->system_mem);
		next = chunk_at_offset(p, size);
		if (limit && (char *)next + CHUNK_HDR_SZ > limit)
			return fail(ck, "arena %u: chunk %p size %zu runs past its heap", av->index,
				    (void *)p, size);
		if (!!prev_inuse(p) == prev_free)
			return fail(ck, "arena %u: chunk %p PREV_INUSE=%d but predecessor %s",
				    av->index, (void *)p, !!prev_inuse(p),
				    prev_free ? "free" : "in use");
		if (prev_free && p->prev_size != prev_size)
			return fail(ck, "arena %u: chunk %p prev_size %zu, predecessor size %zu",
				    av->index, (void *)p, p->prev_size, prev_size);
		is_free = !prev_inuse(next);
		nsize = chunksize(next);
		if (is_free) {
			if (prev_free)
				return fail(ck,
					    "arena %u: free chunks %p and its predecessor "
					    "touch",
					    av->index, (void *)p);
			if (next->prev_size != size)
				return fail(ck, "arena %u: free chunk %p size %zu, footer %zu",
					    av->index, (void *)p, size, next->prev_size);
			if (p->size & NON_MAIN_ARENA)
				return fail(ck, "arena %u: free chunk %p has NON_MAIN_ARENA",
					    av->index, (void *)p);
		} else if (nsize >= MINSIZE || next == av->top) {
			/* In use (fenceposts' own padding chunk excepted): the arena bit. */
			if (!!(p->size & NON_MAIN_ARENA) != (av != main_arena))
				return fail(ck, "arena %u: in-use chunk %p NON_MAIN_ARENA=%d",
					    av->index, (void *)p, !!(p->size & NON_MAIN_ARENA));
		}
		err = fn(ck, av, p, is_free ? CH_FREE : CH_INUSE);
		if (err)
			return err;
		prev_free = is_free;
		prev_size = size;
		p = next;
	}
}

/* Calls fn on every chunk of av, region by region or heap by heap. */
static int walk_arena(struct checker *ck, mstate av, chunk_fn fn)
{
	int err;

	if (av->top == initial_top(av))
		return 0;
	if (av == main_arena) {
		for (mchunkptr seg = av->segments; seg != NULL; seg = (mchunkptr)seg->prev_size) {
			err = walk_run(ck, av, seg, NULL, fn);
			if (err)
				return err;
		}
		return 0;
	}
	for (struct ptm_heap *h = heap_for_ptr(av->top); h != NULL; h = h->prev) {
		char *start = (char *)(h + 1);

		if (h->ar_ptr != av)
			return fail(ck, "arena %u: heap %p belongs to %p", av->index, (void *)h,
				    (void *)h->ar_ptr);
		if (h->size > h->mprotect_size || h->mprotect_size > HEAP_MAX_SIZE ||
		    h->size % mp_.pagesize)
			return fail(ck, "arena %u: heap %p size %zu mprotect %zu", av->index,
				    (void *)h, h->size, h->mprotect_size);
		if (h->prev == NULL) {
			start = (char *)(av + 1);
			if ((uintptr_t)chunk2mem(start) & MALLOC_ALIGN_MASK)
				start += MALLOC_ALIGNMENT -
					 ((uintptr_t)chunk2mem(start) & MALLOC_ALIGN_MASK);
		}
		err = walk_run(ck, av, (mchunkptr)start, (char *)h + h->size, fn);
		if (err)
			return err;
	}
	return 0;
}

static int count_chunk(struct checker *ck, mstate av, mchunkptr p, int flags)
{
	(void)av;
	(void)p;
	(void)flags;
	ck->nchunks++;
	return 0;
}

static int record_chunk(struct checker *ck, mstate av, mchunkptr p, int flags)
{
	struct slot *s = lookup(ck, (uintptr_t)p);
	size_t size = chunksize(p);

	if (s->addr)
		return fail(ck, "arena %u: chunk %p met twice", av->index, (void *)p);
	s->addr = (uintptr_t)p;
	s->flags = (uintptr_t)flags;
	ck->c.chunks++;
	if (flags == CH_TOP) {
		ck->c.free_chunks++;
		ck->c.free_bytes += size;
		if (av == main_arena)
			ck->c.top_bytes = size;
	} else if (flags == CH_INUSE) {
		ck->c.inuse_chunks++;
		ck->c.inuse_bytes += size;
	}
	if (flags != CH_INUSE && size > ck->c.largest_free)
		ck->c.largest_free = size;
	if (flags != CH_INUSE && size > ck->arena_largest)
		ck->arena_largest = size;
	return 0;
}

static int check_fastbins(struct checker *ck, mstate av)
{
	int any = 0;
	uint64_t chunks = 0, bytes = 0;

	for (unsigned i = 0; i < NFASTBINS; i++) {
		size_t n = 0;

		for (mchunkptr p = av->fastbins[i]; p != NULL; p = REVEAL_PTR(p->fd)) {
			struct slot *s;

			if (misaligned_chunk(p))
				return fail(ck, "arena %u: fastbin %u has misaligned %p", av->index,
					    i, (void *)p);
			s = find(ck, p);
			if (s == NULL)
				return fail(ck, "arena %u: fastbin %u entry %p is not a chunk",
					    av->index, i, (void *)p);
			if (s->flags != CH_INUSE)
				return fail(ck, "arena %u: fastbin %u entry %p state %lu",
					    av->index, i, (void *)p, (unsigned long)s->flags);
			if (fastbin_index(chunksize(p)) != i || chunksize(p) > get_max_fast())
				return fail(ck, "arena %u: fastbin %u holds size %zu", av->index, i,
					    chunksize(p));
			s->flags |= CH_IN_FAST;
			chunks++;
			bytes += chunksize(p);
			ck->c.fast_chunks++;
			ck->c.fast_bytes += chunksize(p);
			ck->c.inuse_chunks--;
			ck->c.inuse_bytes -= chunksize(p);
			if (chunksize(p) > ck->c.largest_free)
				ck->c.largest_free = chunksize(p);
			if (chunksize(p) > ck->arena_largest)
				ck->arena_largest = chunksize(p);
			if (++n > ck->nchunks)
				return fail(ck, "arena %u: fastbin %u loops", av->index, i);
			any = 1;
		}
	}
	if (any && !av->have_fastchunks)
		return fail(ck, "arena %u: fastbins hold chunks but have_fastchunks is 0",
			    av->index);
	if (chunks != av->books.fast_chunks || bytes != av->books.fast_bytes)
		return fail(ck, "arena %u: fastbins hold %lu chunks, %lu bytes; books say %lu, %lu",
			    av->index, (unsigned long)chunks, (unsigned long)bytes,
			    (unsigned long)av->books.fast_chunks,
			    (unsigned long)av->books.fast_bytes);
	return 0;
}

/* A large bin: sorted by decreasing size, the skip list over its sizes intact. */
static int check_large_order(struct checker *ck, mstate av, unsigned i, mchunkptr bin)
{
	size_t prev = SIZE_MAX;
	mchunkptr group = NULL;

	for (mchunkptr p = bin->fd; p != bin; p = p->fd) {
		size_t size = chunksize(p);

		if (size > prev)
			return fail(ck, "arena %u: large bin %u not sorted at %p", av->index, i,
				    (void *)p);
		if (size != prev) {
			/* The first of a size group links to the neighbouring groups. */
			if (p->fd_nextsize == NULL || p->bk_nextsize == NULL)
				return fail(ck, "arena %u: large bin %u group head %p unlinked",
					    av->index, i, (void *)p);
			if (p->fd_nextsize->bk_nextsize != p || p->bk_nextsize->fd_nextsize != p)
				return fail(ck, "arena %u: large bin %u skip list broken at %p",
					    av->index, i, (void *)p);
			if (group != NULL && group->fd_nextsize != p)
				return fail(ck, "arena %u: large bin %u skip list skips %p",
					    av->index, i, (void *)p);
			if (group == NULL && bin->fd != p)
				return fail(ck, "arena %u: large bin %u head mismatch", av->index,
					    i);
			group = p;
		} else if (p->fd_nextsize != NULL || p->bk_nextsize != NULL) {
			return fail(ck, "arena %u: large bin %u non-head %p has size links",
				    av->index, i, (void *)p);
		}
		prev = size;
	}
	if (group != NULL && group->fd_nextsize != bin->fd)
		return fail(ck, "arena %u: large bin %u skip list does not close", av->index, i);
	return 0;
}

static int check_bins(struct checker *ck, mstate av)
{
	uint64_t chunks = 0, bytes = 0, released = 0, npending = 0, listed = 0;
	int pending;

	for (unsigned i = 1; i < NBINS; i++) {
		mchunkptr bin = bin_at(av, i);
		size_t n = 0;
		int err;

		if (bin->fd->bk != bin || bin->bk->fd != bin)
			return fail(ck, "arena %u: bin %u header links broken", av->index, i);
		for (mchunkptr p = bin->fd; p != bin; p = p->fd) {
			struct slot *s = find(ck, p);
			size_t size = chunksize(p);

			if (s == NULL)
				return fail(ck, "arena %u: bin %u entry %p is not a chunk",
					    av->index, i, (void *)p);
			if (s->flags != CH_FREE)
				return fail(ck,
					    "arena %u: bin %u entry %p state %lu (free? "
					    "in two bins?)",
					    av->index, i, (void *)p, (unsigned long)s->flags);
			if (p->fd->bk != p || p->bk->fd != p)
				return fail(ck, "arena %u: bin %u links broken at %p", av->index, i,
					    (void *)p);
			if (i > 1 && bin_index(size) != i)
				return fail(ck, "arena %u: bin %u holds size %zu (bin %u)",
					    av->index, i, size, bin_index(size));
			s->flags |= CH_IN_BIN;
			chunks++;
			bytes += size;
			released += ptm_i_release_marked(p, size, &pending);
			npending += (uint64_t)pending;
			ck->c.free_chunks++;
			ck->c.free_bytes += size;
			if (++n > ck->nchunks)
				return fail(ck, "arena %u: bin %u loops", av->index, i);
		}
		if (n > 0 && i > 1 && !(av->binmap[idx2block(i)] & idx2bit(i)))
			return fail(ck, "arena %u: bin %u non-empty but its binmap bit is clear",
				    av->index, i);
		if (i >= NSMALLBINS) {
			err = check_large_order(ck, av, i, bin);
			if (err)
				return err;
		}
	}
	if (chunks != av->books.binned_chunks || bytes != av->books.binned_bytes)
		return fail(ck, "arena %u: bins hold %lu chunks, %lu bytes; books say %lu, %lu",
			    av->index, (unsigned long)chunks, (unsigned long)bytes,
			    (unsigned long)av->books.binned_chunks,
			    (unsigned long)av->books.binned_bytes);
	for (mchunkptr p = av->rel_pending_head; p != NULL; p = ptm_i_release_next(p)) {
		struct slot *s = find(ck, p);

		if (s == NULL || !(s->flags & CH_IN_BIN))
			return fail(ck, "arena %u: pending-release chunk %p is not a free chunk",
				    av->index, (void *)p);
		if (++listed > ck->nchunks)
			return fail(ck, "arena %u: pending-release list loops", av->index);
	}
	if (listed != npending)
		return fail(ck, "arena %u: %lu chunks marked pending, %lu on the list", av->index,
			    (unsigned long)npending, (unsigned long)listed);
	/* Released pages live only in binned chunks' marks; the books must agree. */
	if (released != av->books.released_bytes ||
	    av->books.released_bytes != av->books.release_total_bytes - av->books.reuse_total_bytes)
		return fail(ck,
			    "arena %u: marked chunks span %lu released bytes; books say %lu "
			    "(released %lu - reused %lu)",
			    av->index, (unsigned long)released,
			    (unsigned long)av->books.released_bytes,
			    (unsigned long)av->books.release_total_bytes,
			    (unsigned long)av->books.reuse_total_bytes);
	return 0;
}

static int check_tcache(struct checker *ck)
{
	struct ptm_tcache *tc = ptm_i_tcache;

	if (tc == NULL)
		return 0;
	for (size_t i = 0; i < TCACHE_MAX_BINS; i++) {
		size_t n = 0;

		for (struct ptm_tcache_entry *e = tc->entries[i]; e != NULL;
		     e = REVEAL_PTR(e->next)) {
			mchunkptr p = mem2chunk(e);
			struct slot *s;

			if (!aligned_ok(e))
				return fail(ck, "tcache bin %zu has misaligned %p", i, (void *)e);
			if (e->key != ptm_i_tcache_key)
				return fail(ck, "tcache entry %p lost its key", (void *)e);
			if (csize2tidx(chunksize(p)) != i)
				return fail(ck, "tcache bin %zu holds size %zu", i, chunksize(p));
			s = find(ck, p);
			if (s == NULL || s->flags != CH_INUSE)
				return fail(ck, "tcache entry %p is not an in-use chunk",
					    (void *)e);
			s->flags |= CH_IN_TCACHE;
			ck->c.tcache_chunks++;
			ck->c.tcache_bytes += chunksize(p);
			ck->c.inuse_chunks--;
			ck->c.inuse_bytes -= chunksize(p);
			if (++n > mp_.tcache_count)
				return fail(ck, "tcache bin %zu holds more than %zu", i,
					    mp_.tcache_count);
		}
		if (n != tc->counts[i])
			return fail(ck, "tcache bin %zu counts %u but holds %zu", i, tc->counts[i],
				    n);
	}
	return 0;
}

static int check_all_free_binned(struct checker *ck)
{
	for (size_t i = 0; i <= ck->mask; i++) {
		struct slot *s = &ck->table[i];

		if (s->addr && s->flags == CH_FREE)
			return fail(ck, "free chunk %p is in no bin", (void *)s->addr);
	}
	return 0;
}

static int count_inuse_chunk(struct checker *ck, mstate av, mchunkptr p, int flags)
{
	(void)av;
	(void)p;
	if (flags == CH_INUSE)
		ck->c.inuse_chunks++;
	return 0;
}

int ptm_i_count_inuse(mstate av, uint64_t *chunks, uint64_t *regions)
{
	struct checker ck;
	int err;

	memset(&ck, 0, sizeof(ck));
	err = walk_arena(&ck, av, count_inuse_chunk);
	*chunks = ck.c.inuse_chunks;
	*regions = 0;
	if (av == main_arena) {
		for (mchunkptr seg = av->segments; seg != NULL; seg = (mchunkptr)seg->prev_size)
			(*regions)++;
	} else if (av->top != initial_top(av)) {
		for (struct ptm_heap *h = heap_for_ptr(av->top); h != NULL; h = h->prev)
			(*regions)++;
	}
	return err;
}

static void lock_all(void)
{
	mstate a = main_arena;

	ptm_lock(&ptm_i_list_lock);
	do {
		ptm_i_arena_lock(a);
		a = a->next;
	} while (a != main_arena);
}

static void unlock_all(void)
{
	mstate a = main_arena;

	do {
		ptm_i_arena_unlock(a);
		a = a->next;
	} while (a != main_arena);
	ptm_unlock(&ptm_i_list_lock);
}

PTM_API int ptm_check_heap(struct ptm_heap_census *census)
{
	struct checker ck;
	size_t want;
	mstate a;
	int err = 0;

	memset(&ck, 0, sizeof(ck));
	ptm_i_ensure_init();
	lock_all();

	a = main_arena;
	do {
		err = walk_arena(&ck, a, count_chunk);
		if (err)
			goto out;
		a = a->next;
	} while (a != main_arena);

	for (want = 1024; want < 2 * ck.nchunks + 16; want <<= 1)
		;
	ck.map_bytes = ALIGN_UP(want * sizeof(struct slot), mp_.pagesize);
	ck.table = ptm_i_sys_mmap(NULL, ck.map_bytes, PROT_READ | PROT_WRITE, 0);
	if (ck.table == MAP_FAILED) {
		ck.table = NULL;
		err = -ENOMEM;
		goto out;
	}
	ck.mask = want - 1;

	a = main_arena;
	do {
		uint64_t inuse, regions;

		ck.arena_largest = 0;
		err = walk_arena(&ck, a, record_chunk);
		if (err)
			goto out;
		if (a->system_mem > a->max_system_mem) {
			err = fail(&ck, "arena %u: system_mem %zu above its maximum %zu", a->index,
				   a->system_mem, a->max_system_mem);
			goto out;
		}
		/* What the last unlock published (nothing changed since: we hold the lock). */
		if (a->pub.system_bytes != a->system_mem || a->pub.top_bytes != chunksize(a->top) ||
		    (a->pub.gen & 1) != 0 || a->pub.index != a->index) {
			err = fail(&ck,
				   "arena %u: published books (system %lu, top %lu, gen %lu, index "
				   "%lu) disagree with the arena (system %zu, top %zu)",
				   a->index, (unsigned long)a->pub.system_bytes,
				   (unsigned long)a->pub.top_bytes, (unsigned long)a->pub.gen,
				   (unsigned long)a->pub.index, a->system_mem, chunksize(a->top));
			goto out;
		}
		err = check_fastbins(&ck, a);
		if (err)
			goto out;
		err = check_bins(&ck, a);
		if (err)
			goto out;
		/* The version 3 books, as the last unlock published them. */
		if (a->pub.largest_free_bytes != ck.arena_largest) {
			err = fail(&ck, "arena %u: largest free chunk %zu; books say %lu", a->index,
				   ck.arena_largest, (unsigned long)a->pub.largest_free_bytes);
			goto out;
		}
		ptm_i_count_inuse(a, &inuse, &regions);
		if (a->books.heaps != regions) {
			err = fail(&ck, "arena %u: %lu heaps or regions; books say %lu", a->index,
				   (unsigned long)regions, (unsigned long)a->books.heaps);
			goto out;
		}
		ck.c.arenas++;
		ck.c.system_bytes += a->system_mem;
		a = a->next;
	} while (a != main_arena);
	err = check_tcache(&ck);
	if (err)
		goto out;
	err = check_all_free_binned(&ck);
	if (err)
		goto out;
	ck.c.mmapped_chunks = (size_t)__atomic_load_n(&mp_.n_mmaps, __ATOMIC_RELAXED);
	ck.c.mmapped_bytes = __atomic_load_n(&mp_.mmapped_mem, __ATOMIC_RELAXED);
	if (census != NULL)
		*census = ck.c;
out:
	unlock_all();
	if (ck.table != NULL)
		ptm_i_sys_munmap(ck.table, ck.map_bytes);
	return err;
}
