// SPDX-License-Identifier: MIT
/*
 * bins.c - the arena's free lists: allocation from them, freeing into
 * them, consolidation, and in-place realloc and memalign.
 *
 * Everything here runs with the arena locked, except the thread-cache part
 * of ptm_i_int_free, which needs no lock because the cache is the thread's.
 * The search order for a request of chunk size nb is glibc's:
 *   fastbin of exactly nb -> small bin of exactly nb -> (large requests:
 *   consolidate fastbins) -> sort the unsorted bin, taking an exact fit or
 *   the last remainder on the way -> best fit in nb's large bin -> the
 *   binmap for the next non-empty larger bin -> top -> the system.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "internal.h"
#include "usdt.h"

#define MAX_ITERS 10000

#define arena_flag(av) ((av) != main_arena ? NON_MAIN_ARENA : 0)

/*
 * Returning the holes' pages.  A free chunk of at least the release
 * threshold gives the whole pages inside it back to the kernel, except its
 * first REL_KEEP bytes (prev_size, size, the four bin links and the release
 * words below), which stay resident like the next chunk's header that holds
 * its footer.
 *
 * Releasing at once would make a program that frees and soon reuses big
 * blocks (a growing realloc, a request/response buffer) pay a madvise and
 * page faults each time.  So a chunk that crosses the threshold first
 * becomes pending: it joins its arena's FIFO list of pending chunks, stamped
 * with the arena's free clock (one tick per free into the bins).  One that
 * is allocated, split or merged before its release leaves the list in O(1)
 * and costs nothing.  A released chunk carries a mark meaning "every whole
 * page of rel_lo..rel_hi is released".
 *
 * Releases go in batches.  Once the oldest pending chunk has stayed free
 * for the release delay (in ticks, adapted per arena: see rel_delay), the
 * free that notices releases it together with every pending chunk that has
 * waited at least the delay minus a quarter of it (REL_GATHER_SHIFT), up to
 * REL_PER_ROUND chunks, and hands their page runs to the kernel in one
 * process_madvise(2) call per REL_BATCH runs (sysmem.c).  The chunks' holes
 * are separate (live chunks sit between them), so the number of runs is
 * what it is; what batching saves is a system call, an mmap_lock round and
 * a TLB flush per run, and the next round is at least a quarter delay
 * away.  With a delay of 0 every chunk goes at once, on its own.
 *
 * The words after the bin links, kept only while the chunk is free:
 *   mark     a keyed hash of the chunk's address and size, one value for
 *            pending and another for released; anything else means neither
 *   next     pending list: the next (younger) pending chunk
 *   prev     pending list: the previous (older) one
 *   since    the arena's free clock when it became pending, or released
 *   carried  pending: bytes of its whole pages already released (it was
 *            merged from released or pending parts), for exact books
 *
 * Splitting a released chunk leaves the remainder released over the pages
 * it still spans (a subset of the victim's); splitting a pending one leaves
 * the remainder pending in the victim's place in the list.  Merging
 * released or pending parts makes a pending chunk carrying their released
 * bytes, or a released one if those cover all its whole pages.  Released
 * pages fault back in on reuse: zero after MADV_DONTNEED, old or zero
 * contents after MADV_FREE; malloc may return either, and calloc clears
 * everything but fresh top memory anyway.  A stale mark (user
 * data that happens to equal the hash after the chunk was reused) could
 * only cost a missed or repeated release, never correctness, and every
 * path that hands a marked chunk out clears the mark first.
 */
struct rel_words {
	uintptr_t mark;
	mchunkptr next;
	mchunkptr prev;
	uint64_t since;
	uint64_t carried;
};

#define REL_KEEP         (sizeof(struct ptm_chunk) + sizeof(struct rel_words))
const size_t ptm_i_release_keep = REL_KEEP;
#define rel_of(p)        ((struct rel_words *)((char *)(p) + sizeof(struct ptm_chunk)))
#define REL_MARK_SALT    ((uintptr_t)0x9e3779b97f4a7c15ULL)
#define REL_BATCH        64  /* page runs per system call */
#define REL_PER_ROUND    128 /* chunks one free may release */
#define REL_GATHER_SHIFT 2   /* a round takes chunks within delay >> this of due */

/* Page runs gathered for one system call (sysmem.c's ptm_i_sys_release). */
struct rel_batch {
	unsigned n;
	struct iovec iov[REL_BATCH];
};

enum rel_state { REL_NONE, REL_PENDING, REL_RELEASED };

static inline uintptr_t rel_lo(mchunkptr p)
{
	return ALIGN_UP((uintptr_t)p + REL_KEEP, mp_.pagesize);
}

static inline uintptr_t rel_hi(mchunkptr p, size_t size)
{
	return ALIGN_DOWN((uintptr_t)p + size, mp_.pagesize);
}

static inline size_t rel_span(mchunkptr p, size_t size)
{
	uintptr_t lo = rel_lo(p), hi = rel_hi(p, size);

	return hi > lo ? hi - lo : 0;
}

static inline uintptr_t rel_mark_value(mchunkptr p, size_t size, enum rel_state st)
{
	return (ptm_i_tcache_key ^ REL_MARK_SALT) ^ (uintptr_t)p ^ (size << 7) ^ (uintptr_t)st;
}

static enum rel_state rel_state_of(mchunkptr p, size_t size)
{
	uintptr_t m;

	if (likely(size < mp_.pagesize + REL_KEEP))
		return REL_NONE;
	m = rel_of(p)->mark;
	if (m == rel_mark_value(p, size, REL_RELEASED))
		return REL_RELEASED;
	if (m == rel_mark_value(p, size, REL_PENDING))
		return REL_PENDING;
	return REL_NONE;
}

static void rel_flush(struct rel_batch *b)
{
	if (b->n == 0)
		return;
	ptm_i_sys_release(b->iov, b->n, mp_.release_madv_free);
	b->n = 0;
}

/*
 * Queues one page run.  The books and the probe count runs (release_calls),
 * whether they reach the kernel one by one or in a batch.  The caller
 * flushes before it lets go of the arena lock: until then no released
 * chunk can be handed out, so no page is given back after its reuse.
 */
static void rel_queue(mstate av, struct rel_batch *b, uintptr_t lo, uintptr_t hi)
{
	if (hi <= lo)
		return;
	av->books.release_calls++;
	PTM_PROBE3(page_release, av, lo, hi - lo);
	b->iov[b->n].iov_base = (void *)lo;
	b->iov[b->n].iov_len = hi - lo;
	if (++b->n == REL_BATCH)
		rel_flush(b);
}

static void pending_unlink(mstate av, struct rel_words *w)
{
	if (w->prev != NULL)
		rel_of(w->prev)->next = w->next;
	else
		av->rel_pending_head = w->next;
	if (w->next != NULL)
		rel_of(w->next)->prev = w->prev;
	else
		av->rel_pending_tail = w->prev;
}

/*
 * The delay adapts per arena: pages reused within one delay of their
 * release were released too early (a program cycling big blocks), so the
 * arena doubles its delay, up to 2^REL_MAX_SHIFT times the option; after
 * REL_CALM releases with no such reuse it halves it again.
 */
#define REL_MAX_SHIFT 6
#define REL_CALM      256

static inline uint64_t rel_delay(mstate av)
{
	return (uint64_t)mp_.release_delay << av->rel_delay_shift;
}

/* Released chunk p goes back into use: was its release premature? */
static void rel_note_reuse(mstate av, mchunkptr p, size_t size)
{
	if (rel_state_of(p, size) != REL_RELEASED)
		return;
	if (av->rel_clock - rel_of(p)->since < rel_delay(av)) {
		if (av->rel_delay_shift < REL_MAX_SHIFT)
			av->rel_delay_shift++;
		av->rel_calm = 0;
	}
}

/* Releases all of pending chunk p's whole pages (into batch b) and marks it released. */
static void rel_release(mstate av, mchunkptr p, size_t size, struct rel_batch *b)
{
	struct rel_words *w = rel_of(p);
	size_t span = rel_span(p, size), fresh = span - w->carried;

	pending_unlink(av, w);
	rel_queue(av, b, rel_lo(p), rel_hi(p, size));
	av->books.release_total_bytes += fresh;
	av->books.released_bytes += fresh;
	books_cold_changed(av);
	w->mark = rel_mark_value(p, size, REL_RELEASED);
	w->since = av->rel_clock;
	if (++av->rel_calm >= REL_CALM) {
		av->rel_calm = 0;
		if (av->rel_delay_shift > 0)
			av->rel_delay_shift--;
	}
}

/*
 * Takes p's mark off, if it has one (leaving the pending list): returns the
 * bytes of its pages that are released, which leave the released books; the
 * caller says where they go.  A chunk too small to hold a whole page has no
 * mark: rel_take answers that inline, without reading the chunk's words.
 */
static __attribute__((noinline)) size_t rel_take_marked(mstate av, mchunkptr p, size_t size)
{
	struct rel_words *w;
	size_t released;

	switch (rel_state_of(p, size)) {
	case REL_NONE:
		return 0;
	case REL_PENDING:
		w = rel_of(p);
		pending_unlink(av, w);
		released = w->carried;
		break;
	default:
		w = rel_of(p);
		released = rel_span(p, size);
		break;
	}
	w->mark = 0;
	av->books.released_bytes -= released;
	books_cold_changed(av);
	return released;
}

static inline size_t rel_take(mstate av, mchunkptr p, size_t size)
{
	if (likely(size < mp_.pagesize + REL_KEEP))
		return 0;
	return rel_take_marked(av, p, size);
}

/*
 * What a merge gathers from the free parts it absorbs: the bytes of their
 * pages already released (which leave the released books meanwhile), and
 * the oldest pending part, which stays on the pending list for the merged
 * chunk to take over.
 */
struct rel_merge {
	size_t carried;
	mchunkptr keep;
};

/*
 * Takes free part p's mark off as it is merged into a neighbour.  A pending
 * part keeps its place on the list if it is the oldest so far: the hole it
 * grows into has been free at least that long, and a hole that keeps
 * growing (late in a program's mass free, every hole does) would otherwise
 * go back to the list's end with each merge and never come due.
 */
static __attribute__((noinline)) void rel_gather_marked(mstate av, mchunkptr p, size_t size,
							struct rel_merge *m)
{
	struct rel_words *w = rel_of(p);
	size_t released;

	switch (rel_state_of(p, size)) {
	case REL_NONE:
		return;
	case REL_PENDING:
		released = w->carried;
		if (m->keep == NULL) {
			m->keep = p;
		} else if (w->since < rel_of(m->keep)->since) {
			pending_unlink(av, rel_of(m->keep));
			m->keep = p;
		} else {
			pending_unlink(av, w);
		}
		break;
	default:
		released = rel_span(p, size);
		break;
	}
	w->mark = 0;
	av->books.released_bytes -= released;
	books_cold_changed(av);
	m->carried += released;
}

static inline void rel_gather(mstate av, mchunkptr p, size_t size, struct rel_merge *m)
{
	if (p == NULL || size < mp_.pagesize + REL_KEEP)
		return;
	rel_gather_marked(av, p, size, m);
}

/* Released pages going back into use: an allocation, or the top chunk. */
static inline void rel_reuse(mstate av, size_t bytes)
{
	if (bytes != 0) {
		av->books.reuse_total_bytes += bytes;
		books_cold_changed(av);
	}
}

/*
 * A free chunk's previous neighbour, prev of psize, went into the top chunk
 * with it: its released pages are in use again.  (The chunk being freed has
 * no mark, and top never has one.)
 */
static __attribute__((noinline)) void rel_merged_into_top(mstate av, mchunkptr prev, size_t psize)
{
	struct rel_merge m = {0, NULL};

	rel_gather(av, prev, psize, &m);
	if (m.keep != NULL)
		pending_unlink(av, rel_of(m.keep));
	rel_reuse(av, m.carried);
}

/*
 * Free chunk q of size s was just made by merging parts (see rel_gather).
 * It becomes pending if it is big enough or holds released pages already:
 * in the kept part's place on the list, with its age, if a pending part was
 * absorbed; at the list's end, new, otherwise.
 */
static __attribute__((noinline)) void rel_mark_merged(mstate av, mchunkptr q, size_t s,
						      const struct rel_merge *m)
{
	size_t carried = m->carried;
	struct rel_words *w, tmp;

	/* A pending part holds a whole page, so q, which contains it, does too. */
	if (rel_span(q, s) == 0) {
		rel_reuse(av, carried);
		return;
	}
	w = rel_of(q);
	if (carried == rel_span(q, s)) {
		/*
		 * A small free joined released parts without reaching a page they
		 * do not cover: every whole page is released already, so the chunk
		 * is released as it stands, with no system call.  Its pages were
		 * released at least a delay ago as far as rel_note_reuse goes.
		 */
		if (m->keep != NULL)
			pending_unlink(av, rel_of(m->keep));
		w->mark = rel_mark_value(q, s, REL_RELEASED);
		w->since = av->rel_clock - rel_delay(av);
		av->books.released_bytes += carried;
		books_cold_changed(av);
		return;
	}
	av->books.released_bytes += carried;
	books_cold_changed(av);
	if (m->keep == q) {
		/* The kept part starts the chunk: its place on the list is already q's. */
		w->mark = rel_mark_value(q, s, REL_PENDING);
		w->carried = carried;
		return;
	}
	if (m->keep != NULL) {
		/* The two sets of words may overlap, so they go through a copy. */
		tmp = *rel_of(m->keep);
		tmp.mark = rel_mark_value(q, s, REL_PENDING);
		tmp.carried = carried;
		*w = tmp;
		if (tmp.prev != NULL)
			rel_of(tmp.prev)->next = q;
		else
			av->rel_pending_head = q;
		if (tmp.next != NULL)
			rel_of(tmp.next)->prev = q;
		else
			av->rel_pending_tail = q;
		return;
	}
	w->mark = rel_mark_value(q, s, REL_PENDING);
	w->since = av->rel_clock;
	w->carried = carried;
	w->next = NULL;
	w->prev = av->rel_pending_tail;
	if (w->prev != NULL) {
		rel_of(w->prev)->next = q;
	} else {
		av->rel_pending_head = q;
		av->rel_due = w->since + rel_delay(av);
	}
	av->rel_pending_tail = q;
}

/*
 * Free chunk q of size s was just made by merging the free neighbours prev
 * (of psize) and next (of nsize) of a chunk being freed, either of them
 * possibly NULL.  Merging looks here only for s of at least release_min: a
 * smaller chunk can neither be big enough to become pending nor contain a
 * part that has a mark, so most frees do no release work at all.  The
 * parts' words are still as they were: merging wrote only bin links (q's
 * and its list neighbours'), q's size and the next chunk's prev_size.
 */
static inline __attribute__((always_inline)) void rel_merged(mstate av, mchunkptr q, size_t s,
							     mchunkptr prev, size_t psize,
							     mchunkptr next, size_t nsize)
{
	struct rel_merge m = {0, NULL};

	rel_gather(av, prev, psize, &m);
	rel_gather(av, next, nsize, &m);
	if ((m.carried | (uintptr_t)m.keep) == 0 && s <= mp_.release_threshold - 1)
		return;
	rel_mark_merged(av, q, s, &m);
}

/* Sets release_min from the page size and the release threshold (0 = off). */
void ptm_i_release_params(void)
{
	size_t marked = mp_.pagesize + REL_KEEP, thr = mp_.release_threshold;

	mp_.release_min = thr != 0 && thr < marked ? thr : marked;
}

/*
 * Free chunk victim of size is split: its first part goes into use, the
 * rest, remainder of rsize (NULL if none), stays free.  The remainder keeps
 * the victim's state over the pages it spans.
 */
static __attribute__((noinline)) void rel_split_marked(mstate av, mchunkptr victim, size_t size,
							   mchunkptr remainder, size_t rsize)
{
	enum rel_state st = rel_state_of(victim, size);
	struct rel_words *w, *rw, tmp;
	size_t kept;

	if (likely(st == REL_NONE))
		return;
	rel_note_reuse(av, victim, size);
	if (remainder == NULL || rel_span(remainder, rsize) == 0) {
		rel_reuse(av, rel_take(av, victim, size));
		return;
	}
	w = rel_of(victim);
	rw = rel_of(remainder);
	if (st == REL_RELEASED) {
		uint64_t since = w->since;

		kept = rel_span(remainder, rsize);
		rel_reuse(av, rel_take(av, victim, size) - kept);
		rw->mark = rel_mark_value(remainder, rsize, REL_RELEASED);
		rw->since = since;
		av->books.released_bytes += kept;
		books_cold_changed(av);
		return;
	}
	/*
	 * Pending: the remainder takes the victim's place and age in the list.
	 * The two sets of words may overlap, so they go through a copy.
	 */
	tmp = *w;
	w->mark = 0;
	av->books.released_bytes -= tmp.carried;
	books_cold_changed(av);
	rel_reuse(av, tmp.carried);
	tmp.mark = rel_mark_value(remainder, rsize, REL_PENDING);
	tmp.carried = 0;
	*rw = tmp;
	if (tmp.prev != NULL)
		rel_of(tmp.prev)->next = remainder;
	else
		av->rel_pending_head = remainder;
	if (tmp.next != NULL)
		rel_of(tmp.next)->prev = remainder;
	else
		av->rel_pending_tail = remainder;
}

/* A chunk too small to hold a whole page has no mark: answered inline, without its words. */
static inline void rel_split(mstate av, mchunkptr victim, size_t size, mchunkptr remainder,
			     size_t rsize)
{
	if (likely(size < mp_.pagesize + REL_KEEP))
		return;
	rel_split_marked(av, victim, size, remainder, rsize);
}

/* The oldest pending chunk is due: release it and those nearly due, in batches. */
static void rel_round(mstate av, uint64_t now, uint64_t delay)
{
	uint64_t gather = delay >> REL_GATHER_SHIFT;
	struct rel_batch b;

	b.n = 0;
	for (int i = 0; i < REL_PER_ROUND; i++) {
		mchunkptr p = av->rel_pending_head;

		if (p == NULL || now - rel_of(p)->since + gather < delay)
			break;
		rel_release(av, p, chunksize(p), &b);
	}
	rel_flush(&b);
}

/*
 * How often the clock is looked at with the release off: chunks merged from
 * released parts stay pending (for malloc_trim) until the option turns it on.
 */
#define REL_OFF_RECHECK 4096

/*
 * rel_due is never later than the moment the oldest pending chunk comes due
 * (rel_mark_merged sets it when a chunk joins an empty list; the delay only
 * shrinks here, in a round; mallopt resets it), so the free path compares
 * one word with the clock; here the real question is asked and rel_due set
 * exactly again.
 */
static __attribute__((noinline)) void rel_due_check(mstate av)
{
	uint64_t now = av->rel_clock, delay = rel_delay(av);
	mchunkptr p = av->rel_pending_head;

	if (mp_.release_threshold == 0) {
		__atomic_store_n(&av->rel_due, now + REL_OFF_RECHECK, __ATOMIC_RELAXED);
		return;
	}
	if (p != NULL && now - rel_of(p)->since >= delay)
		rel_round(av, now, delay);
	p = av->rel_pending_head;
	delay = rel_delay(av);
	__atomic_store_n(&av->rel_due, p != NULL ? rel_of(p)->since + delay : UINT64_MAX,
			 __ATOMIC_RELAXED);
}

/* One tick of the arena's free clock: a release round when the oldest is due. */
static inline void rel_tick(mstate av)
{
	if (unlikely(++av->rel_clock >= __atomic_load_n(&av->rel_due, __ATOMIC_RELAXED)))
		rel_due_check(av);
}

/* The release options changed: every arena looks at its oldest pending chunk again. */
void ptm_i_release_recheck(void)
{
	mstate av = main_arena;

	do {
		__atomic_store_n(&av->rel_due, 0, __ATOMIC_RELAXED);
		av = __atomic_load_n(&av->next, __ATOMIC_ACQUIRE);
	} while (av != NULL && av != main_arena);
}

/* The released bytes free chunk p's mark stands for (for the checker). */
size_t ptm_i_release_marked(mchunkptr p, size_t size, int *pending)
{
	switch (rel_state_of(p, size)) {
	case REL_PENDING:
		*pending = 1;
		return rel_of(p)->carried;
	case REL_RELEASED:
		*pending = 0;
		return rel_span(p, size);
	default:
		*pending = 0;
		return 0;
	}
}

/* The next chunk on the pending-release list (for the checker). */
mchunkptr ptm_i_release_next(mchunkptr p)
{
	return rel_of(p)->next;
}

/* A free chunk p of the arena joins the top chunk (heap_trim). */
void ptm_i_release_absorbed(mstate av, mchunkptr p, size_t size)
{
	rel_reuse(av, rel_take(av, p, size));
}

/* A large chunk that heads its size in the bin's skip list leaves it. */
static __attribute__((noinline)) void unlink_nextsize(mchunkptr p, mchunkptr fd)
{
	if (p->fd_nextsize->bk_nextsize != p || p->bk_nextsize->fd_nextsize != p)
		ptm_i_printerr("corrupted double-linked list (not small)");
	if (fd->fd_nextsize == NULL) {
		if (p->fd_nextsize == p) {
			fd->fd_nextsize = fd->bk_nextsize = fd;
		} else {
			fd->fd_nextsize = p->fd_nextsize;
			fd->bk_nextsize = p->bk_nextsize;
			p->fd_nextsize->bk_nextsize = fd;
			p->bk_nextsize->fd_nextsize = fd;
		}
	} else {
		p->fd_nextsize->bk_nextsize = p->bk_nextsize;
		p->bk_nextsize->fd_nextsize = p->fd_nextsize;
	}
}

/*
 * Takes free chunk p of size out of its bin, with glibc's checks.  Inline
 * where free merges neighbours (two calls on most frees of a fragmented
 * heap); everywhere else through ptm_i_unlink_chunk.
 */
static inline __attribute__((always_inline)) void unlink_chunk(mstate av, mchunkptr p, size_t size)
{
	mchunkptr fd, bk;

	if (unlikely(size != chunk_at_offset(p, size)->prev_size))
		ptm_i_printerr("corrupted size vs. prev_size");
	fd = p->fd;
	bk = p->bk;
	if (unlikely(fd->bk != p || bk->fd != p))
		ptm_i_printerr("corrupted double-linked list");
	fd->bk = bk;
	bk->fd = fd;
	books_bin_out(av, size);
	if (!in_smallbin_range(size) && p->fd_nextsize != NULL)
		unlink_nextsize(p, fd);
}

/* Takes a free chunk out of its bin; large chunks also out of the size list. */
void ptm_i_unlink_chunk(mstate av, mchunkptr p)
{
	unlink_chunk(av, p, chunksize(p));
}

/* Empties every fastbin into the unsorted bin, merging with free neighbours. */
void ptm_i_consolidate(mstate av)
{
	mchunkptr unsorted_bin = unsorted_chunks(av), first_unsorted;
	mchunkptr p, nextp, nextchunk, prevpart, nextpart;
	size_t size, nextsize, prevsize, nextpartsize;

	av->have_fastchunks = 0;
	for (unsigned i = 0; i < NFASTBINS; i++) {
		p = av->fastbins[i];
		av->fastbins[i] = NULL;
		while (p != NULL) {
			if (unlikely(misaligned_chunk(p)))
				ptm_i_printerr("malloc_consolidate(): unaligned fastbin chunk "
					       "detected");
			if (fastbin_index(chunksize(p)) != i)
				ptm_i_printerr("malloc_consolidate(): invalid chunk size");
			nextp = REVEAL_PTR(p->fd);
			size = chunksize(p);
			books_fast(av, -1, -(long)size);
			nextchunk = chunk_at_offset(p, size);
			nextsize = chunksize(nextchunk);
			prevpart = nextpart = NULL;
			prevsize = nextpartsize = 0;
			if (!prev_inuse(p)) {
				prevsize = p->prev_size;
				size += prevsize;
				p = chunk_at_offset(p, -((long)prevsize));
				if (unlikely(chunksize(p) != prevsize))
					ptm_i_printerr("corrupted size vs. prev_size in fastbins");
				ptm_i_unlink_chunk(av, p);
				prevpart = p;
			}
			if (nextchunk != av->top) {
				if (!inuse_bit_at_offset(nextchunk, nextsize)) {
					size += nextsize;
					ptm_i_unlink_chunk(av, nextchunk);
					nextpart = nextchunk;
					nextpartsize = nextsize;
				} else {
					clear_inuse_bit_at_offset(nextchunk, 0);
				}
				first_unsorted = unsorted_bin->fd;
				unsorted_bin->fd = p;
				first_unsorted->bk = p;
				if (!in_smallbin_range(size)) {
					p->fd_nextsize = NULL;
					p->bk_nextsize = NULL;
				}
				set_head(p, size | PREV_INUSE);
				p->bk = unsorted_bin;
				p->fd = first_unsorted;
				set_foot(p, size);
				books_bin_in(av, size);
				if (size >= mp_.release_min)
					rel_merged(av, p, size, prevpart, prevsize, nextpart,
						   nextpartsize);
			} else {
				size += nextsize;
				set_head(p, size | PREV_INUSE);
				av->top = p;
				if (prevsize >= mp_.pagesize + REL_KEEP)
					rel_merged_into_top(av, prevpart, prevsize);
			}
			p = nextp;
		}
	}
}

/* Splits nb off victim; the rest goes to the unsorted bin. */
static void *split_to_unsorted(mstate av, mchunkptr victim, size_t size, size_t nb,
			       const char *corrupt_msg, bool set_remainder)
{
	size_t remainder_size = size - nb;
	mchunkptr remainder, bck, fwd;

	if (remainder_size < MINSIZE) {
		rel_split(av, victim, size, NULL, 0);
		set_inuse_bit_at_offset(victim, size);
		if (av != main_arena)
			set_non_main_arena(victim);
		return chunk2mem(victim);
	}
	remainder = chunk_at_offset(victim, nb);
	rel_split(av, victim, size, remainder, remainder_size);
	bck = unsorted_chunks(av);
	fwd = bck->fd;
	if (unlikely(fwd->bk != bck))
		ptm_i_printerr(corrupt_msg);
	remainder->bk = bck;
	remainder->fd = fwd;
	bck->fd = remainder;
	fwd->bk = remainder;
	if (set_remainder)
		av->last_remainder = remainder;
	if (!in_smallbin_range(remainder_size)) {
		remainder->fd_nextsize = NULL;
		remainder->bk_nextsize = NULL;
	}
	set_head(victim, nb | PREV_INUSE | arena_flag(av));
	set_head(remainder, remainder_size | PREV_INUSE);
	set_foot(remainder, remainder_size);
	books_bin_in(av, remainder_size);
	return chunk2mem(victim);
}

/* Files a chunk taken off the unsorted list into its small or large bin. */
static inline __attribute__((always_inline)) void place_in_bin(mstate av, mchunkptr victim,
							       size_t size)
{
	unsigned victim_index;
	mchunkptr bck, fwd;

	if (in_smallbin_range(size)) {
		victim_index = smallbin_index(size);
		bck = bin_at(av, victim_index);
		fwd = bck->fd;
	} else {
		victim_index = largebin_index(size);
		bck = bin_at(av, victim_index);
		fwd = bck->fd;
		if (fwd != bck) {
			/* Large bins are sorted by decreasing size; or-ing PREV_INUSE
			 * lets the raw size words be compared directly. */
			size |= PREV_INUSE;
			if (size < chunksize_nomask(bck->bk)) {
				fwd = bck;
				bck = bck->bk;
				victim->fd_nextsize = fwd->fd;
				victim->bk_nextsize = fwd->fd->bk_nextsize;
				fwd->fd->bk_nextsize = victim->bk_nextsize->fd_nextsize = victim;
			} else {
				while (size < chunksize_nomask(fwd))
					fwd = fwd->fd_nextsize;
				if (size == chunksize_nomask(fwd)) {
					/* Second in its size group: the skip list stays put. */
					fwd = fwd->fd;
				} else {
					victim->fd_nextsize = fwd;
					victim->bk_nextsize = fwd->bk_nextsize;
					if (unlikely(fwd->bk_nextsize->fd_nextsize != fwd))
						ptm_i_printerr("malloc(): largebin double linked "
							       "list corrupted (nextsize)");
					fwd->bk_nextsize = victim;
					victim->bk_nextsize->fd_nextsize = victim;
				}
				bck = fwd->bk;
				if (bck->fd != fwd)
					ptm_i_printerr("malloc(): largebin double linked list "
						       "corrupted (bk)");
			}
		} else {
			victim->fd_nextsize = victim->bk_nextsize = victim;
		}
	}
	mark_bin(av, victim_index);
	books_bin_in(av, size & ~SIZE_BITS);
	victim->bk = bck;
	victim->fd = fwd;
	fwd->bk = victim;
	bck->fd = victim;
}

/*
 * The largest free chunk, exactly, for the books.  The unsorted bin is
 * walked only while it is short; a longer one is first sorted into the small
 * and large bins, as the next malloc that reaches it would do, so that no
 * sequence of operations can make these walks quadratic.
 */
#define LF_WALK_MAX 64

static void lf_sort_unsorted(mstate av)
{
	mchunkptr bin = unsorted_chunks(av), victim;

	while ((victim = bin->bk) != bin) {
		size_t size = chunksize(victim);

		if (unlikely(victim->bk->fd != victim))
			ptm_i_printerr("malloc(): corrupted unsorted chunks (books)");
		bin->bk = victim->bk;
		victim->bk->fd = bin;
		books_bin_out(av, size);
		if (!in_smallbin_range(size)) {
			victim->fd_nextsize = NULL;
			victim->bk_nextsize = NULL;
		}
		place_in_bin(av, victim, size);
	}
}

/* lf_max exact again: the largest sorted chunk, then the unsorted ones. */
static void lf_recompute(mstate av)
{
	mchunkptr unsorted = unsorted_chunks(av), p;
	size_t max = 0, count = 0, n = 0;

	for (p = unsorted->fd; p != unsorted; p = p->fd) {
		if (++n > LF_WALK_MAX) {
			lf_sort_unsorted(av);
			break;
		}
	}
	for (int block = BINMAPSIZE - 1; block >= 0 && count == 0; block--) {
		while (av->binmap[block] != 0) {
			unsigned bit = BITSPERMAP - 1 - (unsigned)__builtin_clz(av->binmap[block]);
			mchunkptr bin = bin_at(av, ((unsigned)block << BINMAPSHIFT) + bit);

			/* A large bin keeps its largest chunk first; a small bin has one size. */
			if (first(bin) != bin) {
				max = chunksize(first(bin));
				count = 1;
				break;
			}
			/* A stale bit, cleared as malloc would clear it. */
			av->binmap[block] &= ~(1U << bit);
		}
	}
	for (p = unsorted->fd; p != unsorted; p = p->fd) {
		size_t size = chunksize(p);

		if (size > max) {
			max = size;
			count = 1;
		} else if (size == max) {
			count++;
		}
	}
	av->lf_max = max;
	av->lf_count = count;
	av->lf_stale = false;
}

uint64_t ptm_i_books_largest(mstate av, size_t top)
{
	size_t best = top;

	if (av->lf_stale && av->lf_max > top)
		lf_recompute(av);
	/* Stale or not, lf_max bounds the binned chunks; exact if it exceeds top. */
	if (av->lf_max > best)
		best = av->lf_max;
	if (best < MAX_FAST_SIZE && av->have_fastchunks) {
		for (int i = (int)NFASTBINS - 1; i >= 0; i--) {
			if (av->fastbins[i] != NULL) {
				if (chunksize(av->fastbins[i]) > best)
					best = chunksize(av->fastbins[i]);
				break;
			}
		}
	}
	return best;
}

void *ptm_i_int_malloc(mstate av, size_t bytes)
{
	size_t nb, size, remainder_size;
	unsigned idx, block, bit, map;
	mchunkptr victim, bck, remainder, bin;
	void *p;
	struct ptm_tcache *tc = ptm_i_tcache;
	size_t tc_idx = 0, tcache_nb = 0;
	int return_cached = 0;
	size_t tcache_unsorted_count = 0;

	if (!checked_request2size(bytes, &nb)) {
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(av == NULL)) {
		p = ptm_i_sysmalloc(nb, av);
		if (p != NULL)
			alloc_perturb(p, bytes);
		return p;
	}
	tc_idx = csize2tidx(nb);

	if (nb <= get_max_fast()) {
		mchunkptr *fb;

		idx = fastbin_index(nb);
		fb = &av->fastbins[idx];
		victim = *fb;
		if (victim != NULL) {
			if (unlikely(misaligned_chunk(victim)))
				ptm_i_printerr("malloc(): unaligned fastbin chunk detected 2");
			*fb = REVEAL_PTR(victim->fd);
			if (unlikely(fastbin_index(chunksize(victim)) != idx))
				ptm_i_printerr("malloc(): memory corruption (fast)");
			books_fast(av, -1, -(long)nb);
			/* Stash more of the same size in the thread cache while here. */
			if (tc != NULL && tc_idx < mp_.tcache_bins) {
				mchunkptr tc_victim;

				while (tc->counts[tc_idx] < mp_.tcache_count &&
				       (tc_victim = *fb) != NULL) {
					if (unlikely(misaligned_chunk(tc_victim)))
						ptm_i_printerr("malloc(): unaligned fastbin chunk "
							       "detected 3");
					*fb = REVEAL_PTR(tc_victim->fd);
					books_fast(av, -1, -(long)nb);
					tcache_put(tc, tc_victim, tc_idx);
				}
			}
			p = chunk2mem(victim);
			alloc_perturb(p, bytes);
			return p;
		}
	}

	if (in_smallbin_range(nb)) {
		idx = smallbin_index(nb);
		bin = bin_at(av, idx);
		if ((victim = last(bin)) != bin) {
			bck = victim->bk;
			if (unlikely(bck->fd != victim))
				ptm_i_printerr("malloc(): smallbin double linked list corrupted");
			set_inuse_bit_at_offset(victim, nb);
			bin->bk = bck;
			bck->fd = bin;
			books_bin_out(av, nb);
			if (av != main_arena)
				set_non_main_arena(victim);
			if (tc != NULL && tc_idx < mp_.tcache_bins) {
				mchunkptr tc_victim;

				while (tc->counts[tc_idx] < mp_.tcache_count &&
				       (tc_victim = last(bin)) != bin) {
					bck = tc_victim->bk;
					set_inuse_bit_at_offset(tc_victim, nb);
					if (av != main_arena)
						set_non_main_arena(tc_victim);
					bin->bk = bck;
					bck->fd = bin;
					books_bin_out(av, nb);
					tcache_put(tc, tc_victim, tc_idx);
				}
			}
			p = chunk2mem(victim);
			alloc_perturb(p, bytes);
			return p;
		}
	} else {
		idx = largebin_index(nb);
		/* Merge fastbin chunks first, so a large request sees the real holes. */
		if (av->have_fastchunks)
			ptm_i_consolidate(av);
	}

	if (tc != NULL && tc_idx < mp_.tcache_bins)
		tcache_nb = nb;

	for (;;) {
		int iters = 0;

		while ((victim = unsorted_chunks(av)->bk) != unsorted_chunks(av)) {
			mchunkptr next;

			bck = victim->bk;
			size = chunksize(victim);
			next = chunk_at_offset(victim, size);
			if (unlikely(size <= CHUNK_HDR_SZ || size > av->system_mem))
				ptm_i_printerr("malloc(): invalid size (unsorted)");
			if (unlikely(chunksize_nomask(next) < CHUNK_HDR_SZ ||
				     chunksize_nomask(next) > av->system_mem))
				ptm_i_printerr("malloc(): invalid next size (unsorted)");
			if (unlikely((next->prev_size & ~SIZE_BITS) != size))
				ptm_i_printerr("malloc(): mismatching next->prev_size (unsorted)");
			if (unlikely(bck->fd != victim || victim->fd != unsorted_chunks(av)))
				ptm_i_printerr("malloc(): unsorted double linked list corrupted");
			if (unlikely(prev_inuse(next)))
				ptm_i_printerr("malloc(): invalid next->prev_inuse (unsorted)");

			/*
			 * A small request and the only unsorted chunk is the last
			 * remainder: keep carving it, so consecutive small requests
			 * land next to each other.
			 */
			if (in_smallbin_range(nb) && bck == unsorted_chunks(av) &&
			    victim == av->last_remainder && size > nb + MINSIZE) {
				remainder_size = size - nb;
				remainder = chunk_at_offset(victim, nb);
				rel_split(av, victim, size, remainder, remainder_size);
				unsorted_chunks(av)->bk = unsorted_chunks(av)->fd = remainder;
				av->last_remainder = remainder;
				remainder->bk = remainder->fd = unsorted_chunks(av);
				if (!in_smallbin_range(remainder_size)) {
					remainder->fd_nextsize = NULL;
					remainder->bk_nextsize = NULL;
				}
				set_head(victim, nb | PREV_INUSE | arena_flag(av));
				set_head(remainder, remainder_size | PREV_INUSE);
				set_foot(remainder, remainder_size);
				books_bin_out(av, size);
				books_bin_in(av, remainder_size);
				p = chunk2mem(victim);
				alloc_perturb(p, bytes);
				return p;
			}

			if (unlikely(bck->fd != victim))
				ptm_i_printerr("malloc(): corrupted unsorted chunks 3");
			unsorted_chunks(av)->bk = bck;
			bck->fd = unsorted_chunks(av);
			books_bin_out(av, size);

			if (size == nb) {
				rel_note_reuse(av, victim, size);
				rel_reuse(av, rel_take(av, victim, size));
				set_inuse_bit_at_offset(victim, size);
				if (av != main_arena)
					set_non_main_arena(victim);
				/* Exact fits fill the cache first; one is returned at the end. */
				if (tcache_nb > 0 && tc->counts[tc_idx] < mp_.tcache_count) {
					tcache_put(tc, victim, tc_idx);
					return_cached = 1;
					continue;
				}
				p = chunk2mem(victim);
				alloc_perturb(p, bytes);
				return p;
			}
			place_in_bin(av, victim, size);

			++tcache_unsorted_count;
			if (return_cached && mp_.tcache_unsorted_limit > 0 &&
			    tcache_unsorted_count > mp_.tcache_unsorted_limit)
				return tcache_get(tc, tc_idx);
			if (++iters >= MAX_ITERS)
				break;
		}

		if (return_cached)
			return tcache_get(tc, tc_idx);

		/* Best fit in nb's own large bin, walking the size list upwards. */
		if (!in_smallbin_range(nb)) {
			bin = bin_at(av, idx);
			if ((victim = first(bin)) != bin && chunksize_nomask(victim) >= nb) {
				victim = victim->bk_nextsize;
				while ((size = chunksize(victim)) < nb)
					victim = victim->bk_nextsize;
				/* Take the second of a size group: the skip list stays put. */
				if (victim != last(bin) &&
				    chunksize_nomask(victim) == chunksize_nomask(victim->fd))
					victim = victim->fd;
				ptm_i_unlink_chunk(av, victim);
				p = split_to_unsorted(av, victim, size, nb,
						      "malloc(): corrupted unsorted chunks", false);
				alloc_perturb(p, bytes);
				return p;
			}
		}

		/* The next larger non-empty bin, found through the binmap. */
		++idx;
		bin = bin_at(av, idx);
		block = idx2block(idx);
		map = av->binmap[block];
		bit = idx2bit(idx);
		for (;;) {
			if (bit > map || bit == 0) {
				do {
					if (++block >= BINMAPSIZE)
						goto use_top;
				} while ((map = av->binmap[block]) == 0);
				bin = bin_at(av, block << BINMAPSHIFT);
				bit = 1;
			}
			while ((bit & map) == 0) {
				bin = next_bin(bin);
				bit <<= 1;
			}
			victim = last(bin);
			if (victim == bin) {
				/* A stale bit: clear it and look further. */
				av->binmap[block] = map &= ~bit;
				bin = next_bin(bin);
				bit <<= 1;
				continue;
			}
			size = chunksize(victim);
			ptm_i_unlink_chunk(av, victim);
			p = split_to_unsorted(av, victim, size, nb,
					      "malloc(): corrupted unsorted chunks 2",
					      in_smallbin_range(nb));
			alloc_perturb(p, bytes);
			return p;
		}

	use_top:
		victim = av->top;
		size = chunksize(victim);
		if (unlikely(size > av->system_mem))
			ptm_i_printerr("malloc(): corrupted top size");
		if (size >= nb + MINSIZE) {
			remainder_size = size - nb;
			remainder = chunk_at_offset(victim, nb);
			av->top = remainder;
			set_head(victim, nb | PREV_INUSE | arena_flag(av));
			set_head(remainder, remainder_size | PREV_INUSE);
			p = chunk2mem(victim);
			alloc_perturb(p, bytes);
			return p;
		}
		if (av->have_fastchunks) {
			ptm_i_consolidate(av);
			idx = bin_index(nb);
			continue;
		}
		p = ptm_i_sysmalloc(nb, av);
		if (p != NULL)
			alloc_perturb(p, bytes);
		return p;
	}
}

/* Coalesces p with its free neighbours and files it in unsorted or top. */
static inline __attribute__((always_inline)) void merge_chunk(mstate av, mchunkptr p, size_t size)
{
	mchunkptr nextchunk = chunk_at_offset(p, size), bck, fwd, prevpart = NULL, nextpart = NULL;
	size_t nextsize, prevsize = 0, nextpartsize = 0;

	if (unlikely(p == av->top))
		ptm_i_printerr("double free or corruption (top)");
	if (unlikely(contiguous(av) && (char *)nextchunk >= ((char *)av->top + chunksize(av->top))))
		ptm_i_printerr("double free or corruption (out)");
	if (unlikely(!prev_inuse(nextchunk)))
		ptm_i_printerr("double free or corruption (!prev)");
	nextsize = chunksize(nextchunk);
	if (unlikely(chunksize_nomask(nextchunk) <= CHUNK_HDR_SZ || nextsize >= av->system_mem))
		ptm_i_printerr("free(): invalid next size (normal)");
	free_perturb(chunk2mem(p), size - CHUNK_HDR_SZ);

	if (!prev_inuse(p)) {
		prevsize = p->prev_size;
		size += prevsize;
		p = chunk_at_offset(p, -((long)prevsize));
		if (unlikely(chunksize(p) != prevsize))
			ptm_i_printerr("corrupted size vs. prev_size while consolidating");
		unlink_chunk(av, p, prevsize);
		prevpart = p;
	}
	if (nextchunk != av->top) {
		if (!inuse_bit_at_offset(nextchunk, nextsize)) {
			unlink_chunk(av, nextchunk, nextsize);
			nextpart = nextchunk;
			nextpartsize = nextsize;
			size += nextsize;
		} else {
			clear_inuse_bit_at_offset(nextchunk, 0);
		}
		bck = unsorted_chunks(av);
		fwd = bck->fd;
		if (unlikely(fwd->bk != bck))
			ptm_i_printerr("free(): corrupted unsorted chunks");
		p->fd = fwd;
		p->bk = bck;
		if (!in_smallbin_range(size)) {
			p->fd_nextsize = NULL;
			p->bk_nextsize = NULL;
		}
		bck->fd = p;
		fwd->bk = p;
		set_head(p, size | PREV_INUSE);
		set_foot(p, size);
		books_bin_in(av, size);
		if (unlikely(size >= mp_.release_min))
			rel_merged(av, p, size, prevpart, prevsize, nextpart, nextpartsize);
	} else {
		size += nextsize;
		set_head(p, size | PREV_INUSE);
		av->top = p;
		if (unlikely(prevsize >= mp_.pagesize + REL_KEEP))
			rel_merged_into_top(av, prevpart, prevsize);
	}
	rel_tick(av);

	/*
	 * A big free chunk: a good moment to consolidate and give memory back.
	 * free keeps errno, and only the system calls here (and the page
	 * release's, which keeps it itself) could change it on this path.
	 */
	if (size >= FASTBIN_CONSOLIDATION_THRESHOLD) {
		int saved_errno = errno;

		if (av->have_fastchunks)
			ptm_i_consolidate(av);
		if (av == main_arena) {
			if (chunksize(av->top) >=
			    __atomic_load_n(&mp_.trim_threshold, __ATOMIC_RELAXED))
				ptm_i_systrim(mp_.top_pad, av);
		} else {
			ptm_i_heap_trim(heap_for_ptr(av->top), mp_.top_pad);
		}
		errno = saved_errno;
	}
}

/* Frees chunk p of size into av's fastbins or bins (or unmaps it): the thread cache is passed. */
static inline __attribute__((always_inline)) void int_free_arena(mstate av, mchunkptr p, size_t size,
								 int have_lock)
{
	if (size <= get_max_fast()) {
		mchunkptr next = chunk_at_offset(p, size), old;
		unsigned idx = fastbin_index(size);

		if (!have_lock)
			ptm_i_arena_lock(av);
		if (unlikely(chunksize_nomask(next) <= CHUNK_HDR_SZ ||
			     chunksize(next) >= av->system_mem))
			ptm_i_printerr("free(): invalid next size (fast)");
		free_perturb(chunk2mem(p), size - CHUNK_HDR_SZ);
		av->have_fastchunks = 1;
		old = av->fastbins[idx];
		/* Only the top of the bin can be checked cheaply for a double free. */
		if (unlikely(old == p))
			ptm_i_printerr("double free or corruption (fasttop)");
		if (unlikely(old != NULL && fastbin_index(chunksize(old)) != idx))
			ptm_i_printerr("invalid fastbin entry (free)");
		p->fd = PROTECT_PTR(&p->fd, old);
		av->fastbins[idx] = p;
		books_fast(av, 1, (long)size);
		if (!have_lock)
			ptm_i_arena_unlock(av);
		return;
	}
	if (!chunk_is_mmapped(p)) {
		if (!have_lock)
			ptm_i_arena_lock(av);
		merge_chunk(av, p, size);
		if (!have_lock)
			ptm_i_arena_unlock(av);
		return;
	}
	ptm_i_munmap_chunk(p);
}

/*
 * free's way for a chunk its caller has checked (pointer and size, as in
 * ptm_i_int_free) and found not to fit in the thread cache: the arena part
 * alone, with nothing checked twice.
 */
void ptm_i_int_free_arena(mstate av, mchunkptr p, size_t size)
{
	int_free_arena(av, p, size, 0);
}

void ptm_i_int_free(mstate av, mchunkptr p, int have_lock)
{
	size_t size = chunksize(p);
	struct ptm_tcache *tc;

	if (unlikely((uintptr_t)p > (uintptr_t)-size || misaligned_chunk(p)))
		ptm_i_printerr("free(): invalid pointer");
	if (unlikely(size < MINSIZE || !aligned_ok(size)))
		ptm_i_printerr("free(): invalid size");

	tc = ptm_i_tcache;
	if (tc != NULL) {
		size_t tc_idx = csize2tidx(size);

		if (tc_idx < mp_.tcache_bins) {
			struct ptm_tcache_entry *e = chunk2mem(p);

			if (unlikely(e->key == ptm_i_tcache_key))
				ptm_i_tcache_double_free_scan(tc, e, tc_idx);
			if (tc->counts[tc_idx] < mp_.tcache_count) {
				tcache_put(tc, p, tc_idx);
				return;
			}
		}
	}
	int_free_arena(av, p, size, have_lock);
}

/*
 * Headroom for growing blocks -- beyond glibc.  A program that grows a
 * buffer by small steps (a string builder, a log line, a vector growing by
 * one element) calls realloc for each step; when the chunk after the block
 * is in use, glibc moves the block, copying all of it, and the next step
 * usually finds the new place's neighbour in use as well.  So a block of at
 * least REALLOC_HEADROOM_MIN that has to move is given an eighth more than
 * asked for, and a realloc that leaves a chunk of that size no more than an
 * eighth too big keeps it as it is rather than splitting the excess off:
 * the steps that follow grow inside the chunk with no copy and no bin
 * traffic.  On alloc_bench's realloc_growth (64 buffers growing in turn by
 * 16 to 527 bytes) that takes 0.36-0.41 of glibc's time at 1.03-1.04 of
 * its peak heap; sixteen such buffers copy 8.6 MB where glibc copies 27.4 MB
 * (ptm_bins_test).  What it costs is at most an eighth of such a block,
 * visible as the gap between requested and usable bytes
 * (malloc_usable_size), and a shrink by less than an eighth that gives
 * nothing back; smaller blocks, blocks that grow in place, and mapped
 * chunks (mremap) are as in glibc.
 */
#define REALLOC_HEADROOM_MIN   ((size_t)4096)
#define REALLOC_HEADROOM_SHIFT 3

void *ptm_i_int_realloc(mstate av, mchunkptr oldp, size_t oldsize, size_t nb)
{
	mchunkptr newp, next, remainder;
	size_t newsize, nextsize, remainder_size;
	void *newmem;

	if (unlikely(chunksize_nomask(oldp) <= CHUNK_HDR_SZ || oldsize >= av->system_mem))
		ptm_i_printerr("realloc(): invalid old size");
	next = chunk_at_offset(oldp, oldsize);
	nextsize = chunksize(next);
	if (unlikely(chunksize_nomask(next) <= CHUNK_HDR_SZ || nextsize >= av->system_mem))
		ptm_i_printerr("realloc(): invalid next size");

	if (oldsize >= nb) {
		if (oldsize >= REALLOC_HEADROOM_MIN &&
		    oldsize - nb <= oldsize >> REALLOC_HEADROOM_SHIFT)
			return chunk2mem(oldp);
		newp = oldp;
		newsize = oldsize;
	} else if (next == av->top && (newsize = oldsize + nextsize) >= nb + MINSIZE) {
		/* Grow into top. */
		set_head_size(oldp, nb | arena_flag(av));
		av->top = chunk_at_offset(oldp, nb);
		set_head(av->top, (newsize - nb) | PREV_INUSE);
		return chunk2mem(oldp);
	} else if (next != av->top && !inuse(next) && (newsize = oldsize + nextsize) >= nb) {
		/* Grow into the free chunk after. */
		newp = oldp;
		ptm_i_unlink_chunk(av, next);
		rel_note_reuse(av, next, nextsize);
		rel_reuse(av, rel_take(av, next, nextsize));
	} else {
		newmem = NULL;
		if (nb >= REALLOC_HEADROOM_MIN) {
			size_t want =
				ALIGN_UP(nb + (nb >> REALLOC_HEADROOM_SHIFT), MALLOC_ALIGNMENT);
			int saved_errno = errno;

			/* Without room for the headroom, the exact size may still fit. */
			newmem = ptm_i_int_malloc(av, want - MALLOC_ALIGN_MASK);
			if (newmem == NULL)
				errno = saved_errno;
		}
		if (newmem == NULL)
			newmem = ptm_i_int_malloc(av, nb - MALLOC_ALIGN_MASK);
		if (newmem == NULL)
			return NULL;
		newp = mem2chunk(newmem);
		newsize = chunksize(newp);
		if (newp == next) {
			newsize += oldsize;
			newp = oldp;
		} else {
			memcpy(newmem, chunk2mem(oldp), oldsize - SIZE_SZ);
			ptm_i_int_free(av, oldp, 1);
			return newmem;
		}
	}

	remainder_size = newsize - nb;
	if (remainder_size < MINSIZE) {
		set_head_size(newp, newsize | arena_flag(av));
		set_inuse_bit_at_offset(newp, newsize);
	} else {
		remainder = chunk_at_offset(newp, nb);
		set_head_size(newp, nb | arena_flag(av));
		set_head(remainder, remainder_size | PREV_INUSE | arena_flag(av));
		set_inuse_bit_at_offset(remainder, remainder_size);
		ptm_i_int_free(av, remainder, 1);
	}
	return chunk2mem(newp);
}

/* Over-allocates, then frees the misaligned lead and the excess tail. */
void *ptm_i_int_memalign(mstate av, size_t alignment, size_t bytes)
{
	size_t nb, size, leadsize, newsize, remainder_size;
	char *m, *brk;
	mchunkptr p, newp, remainder;

	if (!checked_request2size(bytes, &nb)) {
		errno = ENOMEM;
		return NULL;
	}
	if (nb > SIZE_MAX - alignment - MINSIZE) {
		errno = ENOMEM;
		return NULL;
	}
	m = ptm_i_int_malloc(av, nb + alignment + MINSIZE);
	if (m == NULL)
		return NULL;
	p = mem2chunk(m);
	if (((uintptr_t)m % alignment) != 0) {
		brk = (char *)mem2chunk(((uintptr_t)(m + alignment - 1)) & -(uintptr_t)alignment);
		if ((size_t)(brk - (char *)p) < MINSIZE)
			brk += alignment;
		newp = (mchunkptr)brk;
		leadsize = (size_t)(brk - (char *)p);
		newsize = chunksize(p) - leadsize;
		if (chunk_is_mmapped(p)) {
			newp->prev_size = p->prev_size + leadsize;
			set_head(newp, newsize | IS_MMAPPED);
			return chunk2mem(newp);
		}
		set_head(newp, newsize | PREV_INUSE | arena_flag(av));
		set_inuse_bit_at_offset(newp, newsize);
		set_head_size(p, leadsize | arena_flag(av));
		ptm_i_int_free(av, p, 1);
		p = newp;
	}
	if (!chunk_is_mmapped(p)) {
		size = chunksize(p);
		if (size > nb + MINSIZE) {
			remainder_size = size - nb;
			remainder = chunk_at_offset(p, nb);
			set_head(remainder, remainder_size | PREV_INUSE | arena_flag(av));
			set_head_size(p, nb);
			ptm_i_int_free(av, remainder, 1);
		}
	}
	return chunk2mem(p);
}

/*
 * malloc_trim's work for one arena: consolidate, then release every whole
 * page inside each free chunk that has not released them yet, pending or
 * not (keeping the chunk's header, links and release words), then for the
 * main arena give back the top beyond pad.
 */
int ptm_i_mtrim(mstate av, size_t pad)
{
	const unsigned psindex = bin_index(mp_.pagesize);
	struct rel_batch b;
	int result = 0;

	b.n = 0;
	ptm_i_consolidate(av);
	for (unsigned i = 1; i < NBINS; ++i) {
		mchunkptr bin, p;

		if (i != 1 && i < psindex)
			continue;
		bin = bin_at(av, i);
		for (p = last(bin); p != bin; p = p->bk) {
			size_t size = chunksize(p);
			enum rel_state st = rel_state_of(p, size);

			if (st == REL_RELEASED || rel_span(p, size) == 0)
				continue;
			if (st == REL_NONE) {
				struct rel_words *w = rel_of(p);

				/* A pending chunk of one, released at once. */
				w->carried = 0;
				w->prev = av->rel_pending_tail;
				w->next = NULL;
				if (w->prev != NULL)
					rel_of(w->prev)->next = p;
				else
					av->rel_pending_head = p;
				av->rel_pending_tail = p;
			}
			rel_release(av, p, size, &b);
			result = 1;
		}
	}
	rel_flush(&b);
	return result | (av == main_arena ? ptm_i_systrim(pad, av) : 0);
}
