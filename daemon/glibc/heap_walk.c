// SPDX-License-Identifier: MIT
/*
 * heap_walk.c - the census walk of heap_walk.h: arenas, heaps, chunks,
 * bins and pages of a ptmalloc-style heap, from a copy of its memory.
 *
 * Nothing read from the target is trusted.  A chunk's size must be a
 * multiple of 16 of at least 32 bytes (16 and 0 only as the fenceposts that
 * close a heap), inside its heap; a heap must lie in one writable mapping;
 * a list must visit only chunks the chain walk found, each once.  A check
 * that fails makes the walk of that arena fail with a sentence naming the
 * address; whether the heap is corrupt or was only caught changing is told
 * apart by walking it again.
 */
#include "heap_walk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot.h"

#define SIZE_SZ        8
#define CHUNK_HDR      16
#define MINSIZE        32
#define PREV_INUSE     0x1ull
#define IS_MMAPPED     0x2ull
#define NON_MAIN_ARENA 0x4ull
#define SIZE_BITS      0x7ull
#define NBINS          128
#define NSMALLBINS     64

const struct hf_ptmalloc_layout hf_layout_glibc_2_36 = {
	.name = "glibc 2.36 (x86-64)",
	.mstate_read = 2200,
	.arena_size = 2200,
	.off_mutex = 0,
	.off_flags = 4,
	.off_fastbins = 16,
	.nfastbins = 10,
	.off_top = 96,
	.off_bins = 112,
	.off_next = 2160,
	.off_attached = 2176,
	.off_system_mem = 2184,
	.heap_info_size = 48,
	.heap_max = 64ull << 20,
	.trim_keep = 48,
};

/* The class of a chunk, once the checks have placed it. */
enum cls {
	C_INUSE = 0,
	C_TCACHE,
	C_FAST,
	C_BIN,
	C_TOP,
	C_FENCE,
};

/* Record flags. */
#define R_FREE   0x1 /* the next chunk's PREV_INUSE is clear */
#define R_LISTED 0x2 /* found on a bin or fastbin list */

struct rec {
	uint64_t addr;
	uint64_t size; /* the size word, flags included */
	uint64_t fd;   /* first user word: bin fd, fastbin/tcache next (protected) */
	uint64_t bk;   /* second: bin bk, tcache key */
};

struct region {
	uint64_t base;  /* where the heap begins (its heap_info, or sbrk_base) */
	uint64_t start; /* its first chunk */
	uint64_t limit; /* no chunk may pass this */
	uint64_t end;   /* where its chunks end, once walked */
	bool final;     /* holds top */
	uint64_t pstart;
	size_t npages;
	uint8_t *state;
	size_t rec_lo, rec_hi;
};

struct arena {
	uint64_t addr;
	bool main;
	bool done;
	bool changing; /* its last attempt failed only because it changed under the copy */
	unsigned char *ms;
	uint64_t top;
	uint64_t top_size;
	struct region *regs;
	size_t nr_regs;
	struct rec *recs;
	uint8_t *rflags;
	uint8_t *rcls;
	size_t nrec, cap;
	char reason[HF_CENSUS_REASON_LEN];
	struct hf_census_arena out;
	struct hf_heapmap_region *maps;
	size_t nr_maps;
};

struct walk {
	struct hf_mem *mem;
	struct hf_walk_params *p;
	const struct hf_ptmalloc_layout *l;
	uint64_t ps;
	int fatal; /* -ESRCH, -EPERM, -ENOMEM: stop everything */
	/* The window of target memory copied last. */
	unsigned char *win;
	uint64_t wbase;
	size_t wlen;
};

static uint64_t get64(const unsigned char *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint32_t get32(const unsigned char *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static bool fail(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct arena *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
	va_end(ap);
	return false;
}

static uint64_t page_floor(const struct walk *w, uint64_t v)
{
	return v & ~(w->ps - 1);
}

static uint64_t page_ceil(const struct walk *w, uint64_t v)
{
	return (v + w->ps - 1) & ~(w->ps - 1);
}

/* The writable mapping holding [addr, addr + len), or NULL. */
static const struct hf_vma *vma_of(const struct walk *w, uint64_t addr, uint64_t len)
{
	size_t lo = 0, hi = w->p->nr_vmas;

	if (addr + len < addr)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hf_vma *v = &w->p->vmas[mid];

		if (addr < v->start)
			hi = mid;
		else if (addr >= v->end)
			lo = mid + 1;
		else
			return addr + len <= v->end ? v : NULL;
	}
	return NULL;
}

/* A read error: the process is gone or unreadable (fatal), or this arena's attempt fails. */
static bool read_failed(struct walk *w, struct arena *a, int err, uint64_t addr)
{
	if (err == -ESRCH || err == -EPERM || err == -ENOMEM)
		w->fatal = err;
	return fail(a, "the memory at %#" PRIx64 " could not be read (%s)", addr, strerror(-err));
}

static bool read_small(struct walk *w, struct arena *a, uint64_t addr, void *buf, size_t len)
{
	int err;

	if (!vma_of(w, addr, len))
		return fail(a, "%#" PRIx64 " is not in a writable mapping of the process", addr);
	err = w->mem->read(w->mem, addr, buf, len);
	return err ? read_failed(w, a, err, addr) : true;
}

/* Makes [addr, addr + need) of region r readable in the window. */
static const unsigned char *window(struct walk *w, struct arena *a, const struct region *r,
				   uint64_t addr, size_t need)
{
	uint64_t base, top;
	size_t idx;
	int err;

	if (w->wlen && addr >= w->wbase && addr + need <= w->wbase + w->wlen)
		return w->win + (addr - w->wbase);
	base = page_floor(w, addr);
	top = r->pstart + (uint64_t)r->npages * w->ps;
	if (addr + need > top) {
		fail(a, "a chunk header at %#" PRIx64 " runs past its heap", addr);
		return NULL;
	}
	w->wbase = base;
	w->wlen = top - base < HF_WALK_WINDOW ? (size_t)(top - base) : HF_WALK_WINDOW;
	idx = (size_t)((base - r->pstart) / w->ps);
	err = w->mem->read_pages(w->mem, base, w->wlen, r->state + idx, w->win);
	if (err) {
		w->wlen = 0;
		read_failed(w, a, err, base);
		return NULL;
	}
	return w->win + (addr - base);
}

static bool push_rec(struct arena *a, const struct rec *r, uint8_t flags)
{
	if (a->nrec == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4096;
		struct rec *nr = realloc(a->recs, cap * sizeof(*nr));
		uint8_t *nf;

		if (!nr)
			return false;
		a->recs = nr;
		nf = realloc(a->rflags, cap);
		if (!nf)
			return false;
		a->rflags = nf;
		a->cap = cap;
	}
	a->recs[a->nrec] = *r;
	a->rflags[a->nrec++] = flags;
	return true;
}

static uint64_t csize(uint64_t size_word)
{
	return size_word & ~SIZE_BITS;
}

/*
 * Follows the chunk chain of one heap from its first chunk.  The final heap
 * ends with top, exactly at its end; any other ends with fenceposts: a
 * thread heap with a 16-byte chunk and a 0-size header, an older main-arena
 * region with two 16-byte chunks.
 */
static bool walk_region(struct walk *w, struct arena *a, struct region *r)
{
	uint64_t pos = r->start;
	size_t lo = a->nrec;
	int fences = 0;

	r->rec_lo = lo;
	w->wlen = 0;
	for (;;) {
		const unsigned char *h;
		uint64_t sz, cs;
		struct rec rec;

		if (a->nrec - lo > (r->limit - r->start) / CHUNK_HDR + 2)
			return fail(a, "the heap at %#" PRIx64 " has more chunks than bytes allow",
				    r->base);
		if (pos + CHUNK_HDR > r->limit)
			return fail(a, "the chunk chain of the heap at %#" PRIx64
				       " runs past its end at %#" PRIx64,
				    r->base, r->limit);
		h = window(w, a, r, pos, r->limit - pos >= 32 ? 32 : CHUNK_HDR);
		if (!h)
			return false;
		sz = get64(h, 8);
		cs = csize(sz);
		if (sz & IS_MMAPPED)
			return fail(a, "the heap chunk at %#" PRIx64 " is marked as mmapped", pos);
		if (a->main && (sz & NON_MAIN_ARENA))
			return fail(a, "the chunk at %#" PRIx64
				       " of the main arena is marked as another arena's",
				    pos);
		if (!(sz & PREV_INUSE)) {
			uint64_t psz = get64(h, 0);
			size_t k = a->nrec;

			if (k == lo)
				return fail(a, "the first chunk at %#" PRIx64
					       " says the chunk before it is free",
					    pos);
			if (csize(a->recs[k - 1].size) != psz)
				return fail(a, "the free chunk at %#" PRIx64
					       " has size %#" PRIx64 " but its footer says %#" PRIx64,
					    a->recs[k - 1].addr, csize(a->recs[k - 1].size), psz);
			if (fences)
				return fail(a, "the chunk at %#" PRIx64 " follows a fencepost that "
					       "says it is free", pos);
			if (!(a->recs[k - 1].size & PREV_INUSE))
				return fail(a, "the free chunks at %#" PRIx64 " and %#" PRIx64
					       " are adjacent: they would have been merged",
					    a->recs[k - 2].addr, a->recs[k - 1].addr);
			a->rflags[k - 1] |= R_FREE;
		}
		rec.addr = pos;
		rec.size = sz;
		rec.fd = r->limit - pos >= 32 ? get64(h, 16) : 0;
		rec.bk = r->limit - pos >= 32 ? get64(h, 24) : 0;
		if (r->final && pos == a->top) {
			if (pos + cs != r->limit)
				return fail(a, "top at %#" PRIx64 " ends at %#" PRIx64
					       ", not at its heap's end %#" PRIx64,
				    pos, pos + cs, r->limit);
			if (!push_rec(a, &rec, 0))
				return read_failed(w, a, -ENOMEM, pos);
			r->end = pos + cs;
			break;
		}
		if (!r->final && (cs == 0 || cs == CHUNK_HDR)) {
			/* Fenceposts close an older heap. */
			if (!push_rec(a, &rec, 0))
				return read_failed(w, a, -ENOMEM, pos);
			fences++;
			if (cs == 0 || (a->main && fences == 2)) {
				r->end = pos + CHUNK_HDR;
				break;
			}
			pos += cs;
			continue;
		}
		if (fences)
			return fail(a, "a chunk at %#" PRIx64 " follows a fencepost", pos);
		if (r->final && a->main && cs == CHUNK_HDR)
			return fail(a, "the main heap stops at fenceposts at %#" PRIx64
				       " before top at %#" PRIx64 ": another sbrk caller split it, "
				       "and glibc keeps no list of its parts",
				    pos, a->top);
		if (cs < MINSIZE || (cs & 15))
			return fail(a, "the chunk at %#" PRIx64 " has an impossible size %#" PRIx64,
				    pos, sz);
		if (pos + cs > r->limit || pos + cs < pos)
			return fail(a, "the chunk at %#" PRIx64 " of size %#" PRIx64
				       " runs past its heap's end at %#" PRIx64,
				    pos, cs, r->limit);
		if (r->final && pos < a->top && pos + cs > a->top)
			return fail(a, "the chunk at %#" PRIx64 " of size %#" PRIx64
				       " covers top at %#" PRIx64,
				    pos, cs, a->top);
		if (!push_rec(a, &rec, 0))
			return read_failed(w, a, -ENOMEM, pos);
		pos += cs;
	}
	r->rec_hi = a->nrec;
	return true;
}

/* Reads the page states of [base, limit) for region r. */
static bool region_pages(struct walk *w, struct arena *a, struct region *r)
{
	int err;

	r->pstart = page_floor(w, r->base);
	r->npages = (size_t)((page_ceil(w, r->limit) - r->pstart) / w->ps);
	r->state = calloc(r->npages ? r->npages : 1, 1);
	if (!r->state)
		return read_failed(w, a, -ENOMEM, r->base);
	err = w->mem->pages(w->mem, r->pstart, r->npages, r->state);
	return err ? read_failed(w, a, err, r->pstart) : true;
}

static struct region *add_region(struct arena *a)
{
	struct region *nr = realloc(a->regs, (a->nr_regs + 1) * sizeof(*nr));

	if (!nr)
		return NULL;
	a->regs = nr;
	memset(&nr[a->nr_regs], 0, sizeof(*nr));
	return &nr[a->nr_regs++];
}

/* The chunk start after a heap's header: chunk2mem must be 16-aligned. */
static uint64_t align_chunk(uint64_t p)
{
	uint64_t mis = (p + CHUNK_HDR) & 15;

	return mis ? p + 16 - mis : p;
}

static int cmp_region(const void *x, const void *y)
{
	const struct region *a = x, *b = y;

	return a->base < b->base ? -1 : a->base > b->base;
}

/* A thread arena's heaps, from top's heap back along heap_info.prev. */
static bool thread_regions(struct walk *w, struct arena *a)
{
	const struct hf_ptmalloc_layout *l = w->l;
	uint64_t h = a->top & ~(l->heap_max - 1);

	for (unsigned int n = 0; h; n++) {
		unsigned char hi[32]; /* ar_ptr, prev, size, mprotect_size: all the walk uses */
		struct region *r;
		uint64_t ar, prev, size, mprot;

		if (n == HF_WALK_MAX_HEAPS)
			return fail(a, "the arena at %#" PRIx64 " has more than %d heaps", a->addr,
				    HF_WALK_MAX_HEAPS);
		for (size_t i = 0; i < a->nr_regs; i++)
			if (a->regs[i].base == h)
				return fail(a, "the heap list of the arena at %#" PRIx64
					       " comes back to %#" PRIx64,
					    a->addr, h);
		/*
		 * Only the words the walk uses, never heap_info_size bytes: libptm's
		 * books (target memory) set that size, up to 4096, and reading it
		 * whole into hi overran the stack (found by fuzz_census).
		 */
		if (!read_small(w, a, h, hi, sizeof(hi)))
			return false;
		ar = get64(hi, 0);
		prev = get64(hi, 8);
		size = get64(hi, 16);
		mprot = get64(hi, 24);
		if (ar != a->addr)
			return fail(a, "the heap at %#" PRIx64 " belongs to arena %#" PRIx64
				       ", not %#" PRIx64,
				    h, ar, a->addr);
		if (size > mprot || mprot > l->heap_max || size < l->heap_info_size + MINSIZE ||
		    (prev & (l->heap_max - 1)))
			return fail(a, "the heap at %#" PRIx64 " has an impossible header (size %#" PRIx64
				       ", mprotect_size %#" PRIx64 ", prev %#" PRIx64 ")",
				    h, size, mprot, prev);
		if (!prev && a->addr != h + l->heap_info_size)
			return fail(a, "the first heap at %#" PRIx64 " does not hold its arena", h);
		if (!vma_of(w, h, size))
			return fail(a, "the heap at %#" PRIx64 " of %#" PRIx64
				       " bytes is not in one writable mapping",
				    h, size);
		r = add_region(a);
		if (!r)
			return read_failed(w, a, -ENOMEM, h);
		r->base = h;
		r->start = align_chunk(prev ? h + l->heap_info_size
					    : h + l->heap_info_size + l->arena_size);
		r->limit = h + size;
		r->final = n == 0;
		if (r->start >= r->limit)
			return fail(a, "the heap at %#" PRIx64 " has no room for chunks", h);
		h = prev;
	}
	qsort(a->regs, a->nr_regs, sizeof(a->regs[0]), cmp_region);
	return true;
}

/*
 * The main arena's heap: glibc's one region from sbrk_base; libptm's chain
 * of regions, newest first, each first chunk's prev_size pointing at the
 * previous region's first chunk.
 */
static bool main_regions(struct walk *w, struct arena *a)
{
	const struct hf_walk_params *p = w->p;
	uint64_t sysmem = get64(a->ms, w->l->off_system_mem);
	uint64_t top_end = a->top + a->top_size;
	const struct hf_vma *v;
	struct region *r;

	if (!p->main_segments_off) {
		if (get32(a->ms, w->l->off_flags) & 0x2)
			return fail(a, "the main arena is not contiguous (the break could not "
				       "grow and it mapped memory instead); heapfragd walks only a "
				       "contiguous main heap");
		if (!p->sbrk_base || a->top < p->sbrk_base)
			return fail(a, "top at %#" PRIx64 " is not above sbrk_base %#" PRIx64, a->top,
				    p->sbrk_base);
		if (top_end - p->sbrk_base != sysmem)
			return fail(a, "the main heap from sbrk_base %#" PRIx64 " to the end of top "
				       "spans %#" PRIx64 " bytes, but the arena holds %#" PRIx64,
				    p->sbrk_base, top_end - p->sbrk_base, sysmem);
		if (!vma_of(w, p->sbrk_base, top_end - p->sbrk_base))
			return fail(a, "the main heap at %#" PRIx64 " is not in one writable mapping",
				    p->sbrk_base);
		r = add_region(a);
		if (!r)
			return read_failed(w, a, -ENOMEM, p->sbrk_base);
		r->base = p->sbrk_base;
		r->start = align_chunk(p->sbrk_base);
		r->limit = top_end;
		r->final = true;
		return r->start <= a->top ? true : fail(a, "top lies before the main heap's start");
	}
	for (uint64_t seg = get64(a->ms, p->main_segments_off), n = 0; seg; n++) {
		uint64_t prev;

		if (n == HF_WALK_MAX_HEAPS)
			return fail(a, "the main arena has more than %d regions", HF_WALK_MAX_HEAPS);
		for (size_t i = 0; i < a->nr_regs; i++)
			if (a->regs[i].start == seg)
				return fail(a, "the main arena's region list comes back to %#" PRIx64,
					    seg);
		if (seg & 15)
			return fail(a, "the main arena's region at %#" PRIx64 " is misaligned", seg);
		v = vma_of(w, seg, CHUNK_HDR);
		if (!v)
			return fail(a, "the main arena's region at %#" PRIx64
				       " is not in a writable mapping",
				    seg);
		if (!read_small(w, a, seg, &prev, sizeof(prev)))
			return false;
		r = add_region(a);
		if (!r)
			return read_failed(w, a, -ENOMEM, seg);
		r->base = seg;
		r->start = seg;
		r->final = n == 0;
		r->limit = r->final ? top_end : v->end;
		if (r->final && (a->top < seg || !vma_of(w, seg, top_end - seg)))
			return fail(a, "top at %#" PRIx64 " is not in the main arena's newest region",
				    a->top);
		seg = prev;
	}
	if (!a->nr_regs)
		return fail(a, "the main arena holds memory but lists no region");
	qsort(a->regs, a->nr_regs, sizeof(a->regs[0]), cmp_region);
	return true;
}

/* Phase 1: copy the arena and its heaps.  False: this attempt failed (reason set). */
/*
 * Whether the arena's malloc_state is no longer the copy the walk began
 * with (the lock, the ring links and the attached threads aside: they change
 * without the heap changing): 1, and a->changing set; 0; or -1 when it
 * cannot be read (the reason set).  A copy torn by a change usually fails a
 * check before the walk's own re-read, so a walk that failed asks this too.
 */
static int mstate_changed(struct walk *w, struct arena *a)
{
	const struct hf_ptmalloc_layout *l = w->l;
	unsigned char *again = malloc(l->mstate_read);
	int changed = -1;

	if (!again) {
		read_failed(w, a, -ENOMEM, a->addr);
		return -1;
	}
	if (read_small(w, a, a->addr, again, l->mstate_read)) {
		memcpy(again + l->off_mutex, a->ms + l->off_mutex, 4);
		memcpy(again + l->off_next, a->ms + l->off_next, 16);
		memcpy(again + l->off_attached, a->ms + l->off_attached, 8);
		changed = memcmp(again, a->ms, l->mstate_read) != 0;
		a->changing = changed;
	}
	free(again);
	return changed;
}

static bool copy_arena(struct walk *w, struct arena *a)
{
	const struct hf_ptmalloc_layout *l = w->l;

	for (size_t i = 0; i < a->nr_regs; i++)
		free(a->regs[i].state);
	free(a->regs);
	a->regs = NULL;
	a->nr_regs = 0;
	a->nrec = 0;
	a->reason[0] = '\0';
	a->changing = false;
	if (!read_small(w, a, a->addr, a->ms, l->mstate_read))
		return false;
	a->top = get64(a->ms, l->off_top);
	a->top_size = 0;
	/* Before its first allocation top is the unsorted bin's header. */
	if (a->top == a->addr + l->off_bins - CHUNK_HDR)
		goto recheck;
	if (a->top & 15)
		return fail(a, "top %#" PRIx64 " is misaligned", a->top);
	{
		uint64_t tsz;

		if (!read_small(w, a, a->top + SIZE_SZ, &tsz, sizeof(tsz)))
			return false;
		a->top_size = csize(tsz);
		if (a->top + a->top_size < a->top)
			return fail(a, "top's size %#" PRIx64 " is impossible", tsz);
	}
	if (!(a->main ? main_regions(w, a) : thread_regions(w, a)))
		return false;
	for (size_t i = 0; i < a->nr_regs; i++) {
		struct region *r = &a->regs[i];

		if (!region_pages(w, a, r) || !walk_region(w, a, r))
			return false;
	}
recheck:
	switch (mstate_changed(w, a)) {
	case 0:
		return true;
	case 1:
		return fail(a, "the arena changed while it was read");
	default:
		return false;
	}
}

static size_t find_rec(const struct arena *a, uint64_t addr)
{
	size_t lo = 0, hi = a->nrec;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->recs[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->nrec && a->recs[lo].addr == addr ? lo : SIZE_MAX;
}

static unsigned int largebin_index(uint64_t sz)
{
	if ((sz >> 6) <= 48)
		return 48 + (unsigned int)(sz >> 6);
	if ((sz >> 9) <= 20)
		return 91 + (unsigned int)(sz >> 9);
	if ((sz >> 12) <= 10)
		return 110 + (unsigned int)(sz >> 12);
	if ((sz >> 15) <= 4)
		return 119 + (unsigned int)(sz >> 15);
	if ((sz >> 18) <= 2)
		return 124 + (unsigned int)(sz >> 18);
	return 126;
}

static bool size_fits_bin(unsigned int bin, uint64_t cs)
{
	if (bin == 1)
		return true;
	if (bin < NSMALLBINS)
		return cs == (uint64_t)bin * 16;
	return cs >= (uint64_t)NSMALLBINS * 16 && largebin_index(cs) == bin;
}

/* Each bin's list: chunks the walk found free, linked both ways, of the bin's sizes. */
static bool check_bins(struct walk *w, struct arena *a, size_t nfree)
{
	const struct hf_ptmalloc_layout *l = w->l;
	size_t listed = 0;

	for (unsigned int bin = 1; bin < NBINS; bin++) {
		uint64_t head = a->addr + l->off_bins + 16 * (bin - 1) - CHUNK_HDR;
		uint64_t fd = get64(a->ms, l->off_bins + 16 * (bin - 1));
		uint64_t bk = get64(a->ms, l->off_bins + 16 * (bin - 1) + 8);
		uint64_t prev = head, cur = fd;

		while (cur != head) {
			size_t k = find_rec(a, cur);

			if (k == SIZE_MAX)
				return fail(a, "bin %u links %#" PRIx64 ", which is not a chunk of "
					       "the arena",
					    bin, cur);
			if (!(a->rflags[k] & R_FREE) || a->rcls[k] != C_INUSE)
				return fail(a, "bin %u links the chunk at %#" PRIx64
					       ", which is in use or listed twice",
					    bin, cur);
			if (a->recs[k].bk != prev)
				return fail(a, "bin %u: the chunk at %#" PRIx64
					       " links back to %#" PRIx64 ", not %#" PRIx64,
					    bin, cur, a->recs[k].bk, prev);
			if (!size_fits_bin(bin, csize(a->recs[k].size)))
				return fail(a, "bin %u holds the chunk at %#" PRIx64
					       " of size %#" PRIx64 ", which does not fit it",
					    bin, cur, csize(a->recs[k].size));
			a->rcls[k] = C_BIN;
			if (++listed > nfree)
				return fail(a, "the bins list more chunks than are free");
			prev = cur;
			cur = a->recs[k].fd;
		}
		if (bk != prev)
			return fail(a, "bin %u's last chunk is %#" PRIx64 " but its header says %#" PRIx64,
				    bin, prev, bk);
	}
	if (listed != nfree) {
		for (size_t k = 0; k < a->nrec; k++)
			if ((a->rflags[k] & R_FREE) && a->rcls[k] != C_BIN)
				return fail(a, "the free chunk at %#" PRIx64 " is in no bin",
					    a->recs[k].addr);
	}
	return true;
}

/* Fastbins: singly linked, safe-linking protected, chunks of one size that look in use. */
static bool check_fastbins(struct walk *w, struct arena *a)
{
	const struct hf_ptmalloc_layout *l = w->l;
	size_t listed = 0;

	for (unsigned int i = 0; i < l->nfastbins; i++) {
		uint64_t cur = get64(a->ms, l->off_fastbins + 8 * i);

		while (cur) {
			size_t k;

			if (cur & 15)
				return fail(a, "fastbin %u links the misaligned %#" PRIx64, i, cur);
			k = find_rec(a, cur);
			if (k == SIZE_MAX)
				return fail(a, "fastbin %u links %#" PRIx64 ", which is not a chunk "
					       "of the arena",
					    i, cur);
			if ((a->rflags[k] & R_FREE) || a->rcls[k] != C_INUSE)
				return fail(a, "fastbin %u links the chunk at %#" PRIx64
					       ", which is binned, top or listed twice",
					    i, cur);
			if (csize(a->recs[k].size) != (uint64_t)(i + 2) * 16)
				return fail(a, "fastbin %u holds the chunk at %#" PRIx64
					       " of size %#" PRIx64,
					    i, cur, csize(a->recs[k].size));
			a->rcls[k] = C_FAST;
			if (++listed > a->nrec)
				return fail(a, "the fastbins list more chunks than exist");
			cur = ((cur + CHUNK_HDR) >> 12) ^ a->recs[k].fd;
		}
	}
	return true;
}

/* Chunks that look in use and carry the cache's key are in a thread's cache. */
static bool check_tcache(struct walk *w, struct arena *a)
{
	struct hf_walk_params *p = w->p;

	for (size_t k = 0; k < a->nrec; k++) {
		uint64_t e, next;

		if (a->rcls[k] != C_INUSE || csize(a->recs[k].size) > p->tcache_max_csize)
			continue;
		if (!p->tcache_key_known) {
			/* The room may recognise the key (glibc without debug symbols). */
			if (!p->key_probe || !a->recs[k].bk ||
			    !p->key_probe(p->key_ctx, a->recs[k].bk))
				continue;
			p->tcache_key = a->recs[k].bk;
			p->tcache_key_known = true;
		}
		if (a->recs[k].bk != p->tcache_key)
			continue;
		e = a->recs[k].addr + CHUNK_HDR;
		next = (e >> 12) ^ a->recs[k].fd;
		if (next & 15)
			return fail(a, "the cached chunk at %#" PRIx64 " links the misaligned %#" PRIx64,
				    a->recs[k].addr, next);
		a->rcls[k] = C_TCACHE;
	}
	return true;
}

/* Per-page books of one region, for the page classes and the heap map. */
#define P_PIN     0x1
#define P_REL     0x2
#define P_REL_TOP 0x4 /* released by shrinking the main arena's top */

struct pagebook {
	uint8_t *flags;
	uint32_t *free_b;
	uint32_t *use_b;
};

static void add_span(const struct walk *w, const struct region *r, struct pagebook *pb,
		     uint64_t a0, uint64_t a1, enum cls c)
{
	if (a1 <= a0)
		return;
	for (uint64_t pg = page_floor(w, a0); pg < a1; pg += w->ps) {
		size_t i = (size_t)((pg - r->pstart) / w->ps);
		uint64_t lo = pg > a0 ? pg : a0, hi = pg + w->ps < a1 ? pg + w->ps : a1;

		if (i >= r->npages)
			break;
		if (c == C_INUSE || c == C_TCACHE || c == C_FAST)
			pb->flags[i] |= P_PIN;
		if (c == C_INUSE)
			pb->use_b[i] += (uint32_t)(hi - lo);
		else if (c != C_FENCE)
			pb->free_b[i] += (uint32_t)(hi - lo);
	}
}

static void mark_release(const struct walk *w, const struct region *r, struct pagebook *pb,
			 uint64_t lo, uint64_t hi, uint8_t flags)
{
	for (uint64_t pg = lo; pg < hi; pg += w->ps) {
		size_t i = (size_t)((pg - r->pstart) / w->ps);

		if (i < r->npages)
			pb->flags[i] |= flags;
	}
}

/*
 * What malloc_trim(0) would release in this region: it first consolidates
 * the fastbins, so each run of adjacent binned and fastbin chunks becomes
 * one chunk (merged into top when it touches top); then it releases the
 * whole pages of each such chunk past its first trim_keep bytes; and the
 * main arena's top gives back all whole pages above MINSIZE + 1 of it.
 */
static void trim_region(const struct walk *w, const struct arena *a, const struct region *r,
			struct pagebook *pb)
{
	uint64_t run = 0, run_start = 0;

	for (size_t k = r->rec_lo; k <= r->rec_hi; k++) {
		enum cls c = k < r->rec_hi ? a->rcls[k] : C_FENCE;

		if (c == C_BIN || c == C_FAST) {
			if (!run)
				run_start = a->recs[k].addr;
			run += csize(a->recs[k].size);
			continue;
		}
		if (c == C_TOP) {
			uint64_t top_size = csize(a->recs[k].size) + run;
			uint64_t top_end = a->recs[k].addr + csize(a->recs[k].size);

			if (a->main && top_size > MINSIZE + 1) {
				uint64_t extra = (top_size - MINSIZE - 1) & ~(w->ps - 1);

				if (extra)
					mark_release(w, r, pb, page_ceil(w, top_end - extra),
						     page_ceil(w, top_end), P_REL | P_REL_TOP);
			}
		} else if (run) {
			uint64_t lo = page_ceil(w, run_start + w->l->trim_keep);
			uint64_t hi = page_floor(w, run_start + run);

			if (hi > lo)
				mark_release(w, r, pb, lo, hi, P_REL);
		}
		run = 0;
	}
}

/* The index of the site of the block at user address addr, or -1. */
static int64_t site_at(const struct hf_census_sites *s, uint64_t addr)
{
	size_t lo = 0, hi = s->nr_blocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->blocks[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nr_blocks && s->blocks[lo].addr == addr && s->blocks[lo].site < s->nr_sites)
		return s->blocks[lo].site;
	return -1;
}

/*
 * Credits the free bytes of this region's pinned pages to the sites of the
 * in-use chunks on them (census.h's rule).  seen[] counts the in-use bytes of
 * a page met so far, so the chunk that brings it to use_b is the page's last
 * and takes the remainder; given[] counts what the page has given.
 */
static bool credit_region(const struct walk *w, const struct arena *a, const struct region *r,
			  const struct pagebook *pb)
{
	struct hf_census_sites *s = w->p->sites;
	uint32_t *seen = calloc(r->npages ? r->npages : 1, sizeof(*seen));
	uint32_t *given = calloc(r->npages ? r->npages : 1, sizeof(*given));

	if (!seen || !given) {
		free(seen);
		free(given);
		return false;
	}
	for (size_t k = r->rec_lo; k < r->rec_hi; k++) {
		uint64_t a0 = a->recs[k].addr, a1 = a0 + csize(a->recs[k].size);
		int64_t site;

		if (a->rcls[k] != C_INUSE || a1 <= a0)
			continue;
		site = site_at(s, a0 + CHUNK_HDR);
		if (site < 0) {
			s->before_bytes += a1 - a0;
			s->before_chunks++;
		}
		for (uint64_t pg = page_floor(w, a0); pg < a1; pg += w->ps) {
			size_t i = (size_t)((pg - r->pstart) / w->ps);
			uint64_t lo = pg > a0 ? pg : a0, hi = pg + w->ps < a1 ? pg + w->ps : a1;
			uint64_t share;

			if (i >= r->npages)
				break;
			if (!(r->state[i] & HF_PAGE_RESIDENT) || (pb->flags[i] & P_REL) ||
			    !(pb->flags[i] & P_PIN) || !pb->use_b[i])
				continue;
			seen[i] += (uint32_t)(hi - lo);
			share = seen[i] >= pb->use_b[i]
					? pb->free_b[i] - given[i]
					: (uint64_t)pb->free_b[i] * (hi - lo) / pb->use_b[i];
			given[i] += (uint32_t)share;
			if (site < 0)
				s->before_pinned += share;
			else
				s->pinned[site] += share;
		}
	}
	for (size_t i = 0; i < r->npages; i++)
		if ((r->state[i] & HF_PAGE_RESIDENT) && !(pb->flags[i] & P_REL) &&
		    (pb->flags[i] & P_PIN) && !pb->use_b[i])
			s->caches_pinned += pb->free_b[i];
	free(seen);
	free(given);
	return true;
}

static bool add_heapmap(struct arena *a, const struct walk *w, const struct region *r,
			const struct pagebook *pb)
{
	struct hf_heapmap_region *m, *nm;
	size_t per;

	nm = realloc(a->maps, (a->nr_maps + 1) * sizeof(*nm));
	if (!nm)
		return false;
	a->maps = nm;
	m = &nm[a->nr_maps];
	memset(m, 0, sizeof(*m));
	per = (r->npages + HF_HEAPMAP_MAX_CELLS - 1) / HF_HEAPMAP_MAX_CELLS;
	if (!per)
		per = 1;
	m->arena = a->addr;
	m->start = r->pstart;
	m->end = r->pstart + (uint64_t)r->npages * w->ps;
	m->cell_bytes = per * w->ps;
	m->nr_cells = (uint32_t)((r->npages + per - 1) / per);
	m->cells = calloc(m->nr_cells ? m->nr_cells : 1, sizeof(*m->cells));
	if (!m->cells)
		return false;
	for (size_t i = 0; i < r->npages; i++) {
		struct hf_heapmap_cell *c = &m->cells[i / per];

		c->in_use += pb->use_b[i];
		c->free += pb->free_b[i];
		if (r->state[i] & HF_PAGE_RESIDENT)
			c->resident += (uint32_t)w->ps;
	}
	a->nr_maps++;
	return true;
}

/* Phase 2: the checks, the classes, the totals and the pages.  False: failed (reason set). */
static bool classify_arena(struct walk *w, struct arena *a)
{
	struct hf_census_totals *t = &a->out.t;
	size_t nfree = 0;

	memset(t, 0, sizeof(*t));
	t->system_bytes = get64(a->ms, w->l->off_system_mem);
	t->tops = 1;
	free(a->rcls);
	a->rcls = calloc(a->nrec ? a->nrec : 1, 1);
	if (!a->rcls)
		return read_failed(w, a, -ENOMEM, a->addr);
	for (size_t i = 0; i < a->nr_regs; i++) {
		const struct region *r = &a->regs[i];

		for (size_t k = r->rec_lo; k < r->rec_hi; k++) {
			uint64_t cs = csize(a->recs[k].size);

			if (r->final && k == r->rec_hi - 1)
				a->rcls[k] = C_TOP;
			else if (!r->final && (cs == 0 || cs == CHUNK_HDR))
				a->rcls[k] = C_FENCE;
			nfree += (a->rflags[k] & R_FREE) != 0;
		}
	}
	if (!check_bins(w, a, nfree) || !check_fastbins(w, a) || !check_tcache(w, a))
		return false;

	for (size_t k = 0; k < a->nrec; k++) {
		uint64_t cs = csize(a->recs[k].size);
		enum cls c = (enum cls)a->rcls[k];

		if (c == C_TCACHE || c == C_FAST || c == C_BIN) {
			struct hf_census_count *b = &t->free_sizes[hf_census_size_bucket(cs)];

			b->bytes += cs;
			b->chunks++;
		}
		switch (c) {
		case C_INUSE:
			t->in_use.bytes += cs;
			t->in_use.chunks++;
			break;
		case C_TCACHE:
			t->tcache.bytes += cs;
			t->tcache.chunks++;
			break;
		case C_FAST:
			t->fastbins.bytes += cs;
			t->fastbins.chunks++;
			if (cs > t->largest_any_bytes)
				t->largest_any_bytes = cs;
			break;
		case C_BIN:
			t->bins.bytes += cs;
			t->bins.chunks++;
			if (cs > t->free_largest_bytes)
				t->free_largest_bytes = cs;
			break;
		case C_TOP:
			t->top_bytes = cs;
			break;
		case C_FENCE:
			break;
		}
	}
	if (t->free_largest_bytes > t->largest_any_bytes)
		t->largest_any_bytes = t->free_largest_bytes;
	if (t->top_bytes > t->largest_any_bytes)
		t->largest_any_bytes = t->top_bytes;
	t->free.bytes = t->bins.bytes + t->fastbins.bytes + t->tcache.bytes + t->top_bytes;
	t->free.chunks = t->bins.chunks + t->fastbins.chunks + t->tcache.chunks;

	for (size_t i = 0; i < a->nr_regs; i++) {
		const struct region *r = &a->regs[i];
		struct pagebook pb = {
			.flags = calloc(r->npages ? r->npages : 1, 1),
			.free_b = calloc(r->npages ? r->npages : 1, sizeof(uint32_t)),
			.use_b = calloc(r->npages ? r->npages : 1, sizeof(uint32_t)),
		};
		bool ok = pb.flags && pb.free_b && pb.use_b;

		for (size_t k = r->rec_lo; ok && k < r->rec_hi; k++)
			add_span(w, r, &pb, a->recs[k].addr,
				 a->recs[k].addr + csize(a->recs[k].size), a->rcls[k]);
		if (ok)
			trim_region(w, a, r, &pb);
		for (size_t pg = 0; ok && pg < r->npages; pg++) {
			if (!(r->state[pg] & HF_PAGE_RESIDENT))
				continue;
			t->resident_bytes += w->ps;
			t->free_resident_bytes += pb.free_b[pg];
			if (pb.flags[pg] & P_REL) {
				t->releasable_bytes += w->ps;
				if (pb.flags[pg] & P_REL_TOP)
					t->releasable_top_bytes += w->ps;
			} else if (pb.flags[pg] & P_PIN) {
				t->pinned_bytes += w->ps;
				t->pinned_free_bytes += pb.free_b[pg];
				t->pinned_in_use_bytes += pb.use_b[pg];
			}
		}
		if (ok && w->p->sites)
			ok = credit_region(w, a, r, &pb);
		if (ok && w->p->want_heapmap)
			ok = add_heapmap(a, w, r, &pb);
		free(pb.flags);
		free(pb.free_b);
		free(pb.use_b);
		if (!ok)
			return read_failed(w, a, -ENOMEM, r->base);
	}
	return true;
}

static void free_arena(struct arena *a)
{
	for (size_t i = 0; i < a->nr_regs; i++)
		free(a->regs[i].state);
	free(a->regs);
	free(a->recs);
	free(a->rflags);
	free(a->rcls);
	free(a->ms);
	for (size_t i = 0; i < a->nr_maps; i++)
		free(a->maps[i].cells);
	free(a->maps);
	a->regs = NULL;
	a->recs = NULL;
	a->rflags = NULL;
	a->rcls = NULL;
	a->ms = NULL;
	a->maps = NULL;
	a->nr_maps = 0;
}

/* Frees what the checks needed, keeping the verdict and the heap map. */
static void drop_copy(struct arena *a)
{
	for (size_t i = 0; i < a->nr_regs; i++)
		free(a->regs[i].state);
	free(a->regs);
	free(a->recs);
	free(a->rflags);
	free(a->rcls);
	a->regs = NULL;
	a->nr_regs = 0;
	a->recs = NULL;
	a->rflags = NULL;
	a->rcls = NULL;
	a->nrec = a->cap = 0;
}

static void pause_before_retry(unsigned int attempt)
{
	struct timespec ts = {.tv_nsec = (long)(1000000L << (attempt < 5 ? attempt : 5))};

	nanosleep(&ts, NULL);
}

static int publish(struct arena *as, size_t n, struct hf_census *out,
		   struct hf_census_detail **detail)
{
	struct hf_census_detail *d = NULL;
	const char *first = NULL;

	out->nr_arenas = (uint32_t)n;
	out->nr_partial = 0;
	out->changing = false;
	memset(&out->total, 0, sizeof(out->total));
	for (size_t i = 0; i < n; i++) {
		if (as[i].done) {
			hf_census_totals_add(&out->total, &as[i].out.t);
		} else {
			out->nr_partial++;
			out->changing |= as[i].changing;
			if (!first)
				first = as[i].reason;
		}
	}
	out->state = out->nr_partial ? HF_CENSUS_PARTIAL : HF_CENSUS_COMPLETE;
	if (first)
		snprintf(out->reason, sizeof(out->reason), "%u of %u arenas could not be walked "
			 "consistently; the first: %.120s",
			 out->nr_partial, out->nr_arenas, first);
	else
		out->reason[0] = '\0';
	if (!detail)
		return 0;
	d = hf_census_detail_new();
	if (!d)
		return -ENOMEM;
	d->arenas = calloc(n ? n : 1, sizeof(*d->arenas));
	if (!d->arenas) {
		hf_census_detail_put(d);
		return -ENOMEM;
	}
	d->nr_arenas = n;
	for (size_t i = 0; i < n; i++) {
		struct hf_census_arena *ca = &d->arenas[i];

		*ca = as[i].out;
		ca->address = as[i].addr;
		ca->main = as[i].main;
		ca->state = as[i].done ? HF_CENSUS_COMPLETE : HF_CENSUS_PARTIAL;
		snprintf(ca->reason, sizeof(ca->reason), "%s", as[i].done ? "" : as[i].reason);
		if (!as[i].done)
			memset(&ca->t, 0, sizeof(ca->t));
		d->nr_regions += as[i].done ? as[i].nr_maps : 0;
	}
	d->regions = calloc(d->nr_regions ? d->nr_regions : 1, sizeof(*d->regions));
	if (!d->regions) {
		hf_census_detail_put(d);
		return -ENOMEM;
	}
	d->nr_regions = 0;
	/* The cells move into the detail. */
	for (size_t i = 0; i < n; i++) {
		if (!as[i].done)
			continue;
		for (size_t j = 0; j < as[i].nr_maps; j++)
			d->regions[d->nr_regions++] = as[i].maps[j];
		free(as[i].maps);
		as[i].maps = NULL;
		as[i].nr_maps = 0;
	}
	*detail = d;
	return 0;
}

int hf_heap_walk(struct hf_mem *mem, struct hf_walk_params *params, struct hf_census *out,
		 struct hf_census_detail **detail)
{
	struct hf_walk_params p = *params;
	struct walk w = {.mem = mem, .p = &p, .l = params->layout, .ps = params->page_size};
	struct arena *as = NULL;
	size_t n = params->nr_arenas;
	int err = 0;

	if (detail)
		*detail = NULL;
	out->retries = 0;
	if (!n || n > HF_WALK_MAX_ARENAS || !w.ps || (w.ps & (w.ps - 1)) || w.ps > (1u << 20)) {
		snprintf(out->reason, sizeof(out->reason), "no arena to walk");
		return -EINVAL;
	}
	w.win = malloc(HF_WALK_WINDOW);
	as = calloc(n, sizeof(*as));
	if (!w.win || !as) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		as[i].addr = params->arenas[i];
		as[i].main = i == 0;
		as[i].ms = malloc(w.l->mstate_read);
		if (!as[i].ms) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	for (unsigned int attempt = 0; attempt <= params->retries; attempt++) {
		bool frozen = false, pending = false;

		if (attempt)
			pause_before_retry(attempt);
		if (p.copy_begin)
			frozen = p.copy_begin(p.copy_ctx) == 0;
		for (size_t i = 0; i < n && !w.fatal; i++)
			if (!as[i].done)
				as[i].out.state = copy_arena(&w, &as[i]) ? HF_CENSUS_COMPLETE
									  : HF_CENSUS_PARTIAL;
		if (frozen)
			p.copy_end(p.copy_ctx);
		if (w.fatal)
			break;
		for (size_t i = 0; i < n && !w.fatal; i++) {
			if (as[i].done)
				continue;
			if (as[i].out.state == HF_CENSUS_COMPLETE && classify_arena(&w, &as[i]))
				as[i].done = true;
			if (!as[i].done) {
				pending = true;
				/*
				 * Was it a torn copy?  --census-stop-busy holds such a
				 * process.  The walk's own reason stays the one reported.
				 */
				if (!as[i].changing && !w.fatal) {
					char keep[HF_CENSUS_REASON_LEN];

					memcpy(keep, as[i].reason, sizeof(keep));
					mstate_changed(&w, &as[i]);
					memcpy(as[i].reason, keep, sizeof(keep));
				}
				for (size_t j = 0; j < as[i].nr_maps; j++)
					free(as[i].maps[j].cells);
				free(as[i].maps);
				as[i].maps = NULL;
				as[i].nr_maps = 0;
			}
			drop_copy(&as[i]);
		}
		if (!pending || w.fatal)
			break;
		if (attempt == params->retries && attempt) {
			for (size_t i = 0; i < n; i++) {
				size_t len = strlen(as[i].reason);

				if (!as[i].done && len + 32 < sizeof(as[i].reason))
					snprintf(as[i].reason + len, sizeof(as[i].reason) - len,
						 " (in each of %u walks)", attempt + 1);
			}
		}
		for (size_t i = 0; i < n; i++)
			out->retries += !as[i].done && attempt < params->retries;
	}
	if (w.fatal) {
		err = w.fatal;
		for (size_t i = 0; i < n; i++)
			if (!as[i].done && as[i].reason[0]) {
				snprintf(out->reason, sizeof(out->reason), "%s", as[i].reason);
				break;
			}
		goto cleanup;
	}
	err = publish(as, n, out, detail);
	/* What the walk learnt about the cache's key, for the room's next walk. */
	params->tcache_key_known = p.tcache_key_known;
	params->tcache_key = p.tcache_key;
cleanup:
	for (size_t i = 0; as && i < n; i++)
		free_arena(&as[i]);
	free(as);
	free(w.win);
	return err;
}
