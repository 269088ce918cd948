// SPDX-License-Identifier: MIT
/*
 * stats.c - what the heap looks like: mallinfo, mallinfo2, malloc_stats
 * and malloc_info, each in glibc's exact format and meaning.
 *
 * Nothing here is counted on the fast path: every number is read from the
 * bins under each arena's lock, as glibc does.  The consequence, also as in
 * glibc: chunks in thread caches count as in use.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ptm.h"
#include "ptm_stats.h"
#include "internal.h"

/* The block heapfragd reads (ptm_stats_abi.h); first_arena is set at init. */
PTM_API struct ptm_abi_block ptm_stats_block = {
	.magic = PTM_ABI_MAGIC,
	.version = PTM_ABI_VERSION,
	.size = sizeof(struct ptm_abi_block),
	.arena_record_size = sizeof(struct ptm_abi_arena),
	.narenas = 1,
};

static void int_mallinfo(mstate av, struct mallinfo2 *m)
{
	size_t avail, fastavail = 0, nblocks, nfastblocks = 0;

	avail = chunksize(av->top);
	nblocks = 1; /* top */
	for (unsigned i = 0; i < NFASTBINS; ++i) {
		for (mchunkptr p = av->fastbins[i]; p != NULL; p = REVEAL_PTR(p->fd)) {
			if (unlikely(misaligned_chunk(p)))
				ptm_i_printerr("int_mallinfo(): unaligned fastbin chunk detected");
			++nfastblocks;
			fastavail += chunksize(p);
		}
	}
	avail += fastavail;
	for (unsigned i = 1; i < NBINS; ++i) {
		mchunkptr b = bin_at(av, i);

		for (mchunkptr p = last(b); p != b; p = p->bk) {
			++nblocks;
			avail += chunksize(p);
		}
	}
	m->smblks += nfastblocks;
	m->ordblks += nblocks;
	m->fordblks += avail;
	m->uordblks += av->system_mem - avail;
	m->arena += av->system_mem;
	m->fsmblks += fastavail;
	if (av == main_arena) {
		m->hblks = (size_t)__atomic_load_n(&mp_.n_mmaps, __ATOMIC_RELAXED);
		m->hblkhd = __atomic_load_n(&mp_.mmapped_mem, __ATOMIC_RELAXED);
		m->usmblks = 0;
		m->keepcost = chunksize(av->top);
	}
}

PTM_API struct mallinfo2 ptm_mallinfo2(void)
{
	struct mallinfo2 m;
	mstate av = main_arena;

	memset(&m, 0, sizeof(m));
	ptm_i_ensure_init();
	do {
		ptm_i_arena_lock(av);
		int_mallinfo(av, &m);
		ptm_i_arena_unlock(av);
		av = __atomic_load_n(&av->next, __ATOMIC_ACQUIRE);
	} while (av != main_arena);
	return m;
}

/* The old int-sized struct: values wrap exactly as glibc's casts make them. */
PTM_API struct mallinfo ptm_mallinfo(void)
{
	struct mallinfo2 m2 = ptm_mallinfo2();
	struct mallinfo m;

	m.arena = (int)m2.arena;
	m.ordblks = (int)m2.ordblks;
	m.smblks = (int)m2.smblks;
	m.hblks = (int)m2.hblks;
	m.hblkhd = (int)m2.hblkhd;
	m.usmblks = (int)m2.usmblks;
	m.fsmblks = (int)m2.fsmblks;
	m.uordblks = (int)m2.uordblks;
	m.fordblks = (int)m2.fordblks;
	m.keepcost = (int)m2.keepcost;
	return m;
}

PTM_API void ptm_malloc_stats(void)
{
	unsigned system_b = 0, in_use_b = 0;
	mstate av = main_arena;
	struct mallinfo2 mi;

	ptm_i_ensure_init();
	for (int i = 0;; i++) {
		memset(&mi, 0, sizeof(mi));
		ptm_i_arena_lock(av);
		int_mallinfo(av, &mi);
		ptm_i_arena_unlock(av);
		fprintf(stderr, "Arena %d:\n", i);
		fprintf(stderr, "system bytes     = %10u\n", (unsigned)mi.arena);
		fprintf(stderr, "in use bytes     = %10u\n", (unsigned)mi.uordblks);
		system_b += (unsigned)mi.arena;
		in_use_b += (unsigned)mi.uordblks;
		av = __atomic_load_n(&av->next, __ATOMIC_ACQUIRE);
		if (av == main_arena)
			break;
	}
	system_b += (unsigned)mp_.mmapped_mem;
	in_use_b += (unsigned)mp_.mmapped_mem;
	fprintf(stderr, "Total (incl. mmap):\n");
	fprintf(stderr, "system bytes     = %10u\n", system_b);
	fprintf(stderr, "in use bytes     = %10u\n", in_use_b);
	fprintf(stderr, "max mmap regions = %10u\n", (unsigned)mp_.max_n_mmaps);
	fprintf(stderr, "max mmap bytes   = %10lu\n", (unsigned long)mp_.max_mmapped_mem);
}

struct size_row {
	size_t from, to, total, count;
};

/* One arena's numbers, gathered under its lock and printed after it. */
struct heap_report {
	struct size_row sizes[NFASTBINS + NBINS - 1];
	size_t nblocks, nfastblocks, avail, fastavail;
	size_t system_mem, max_system_mem;
	size_t heap_size, heap_mprotect_size, heap_count;
};

static void gather(mstate av, struct heap_report *r)
{
	memset(r, 0, sizeof(*r));
	r->avail = chunksize(av->top);
	r->nblocks = 1;
	for (unsigned i = 0; i < NFASTBINS; ++i) {
		mchunkptr p = av->fastbins[i];
		struct size_row *s = &r->sizes[i];

		if (p != NULL) {
			size_t n = 0, thissize = chunksize(p);

			for (; p != NULL; p = REVEAL_PTR(p->fd)) {
				if (unlikely(misaligned_chunk(p)))
					ptm_i_printerr("__malloc_info(): unaligned fastbin chunk "
						       "detected");
				++n;
			}
			r->fastavail += n * thissize;
			r->nfastblocks += n;
			s->from = thissize - (MALLOC_ALIGNMENT - 1);
			s->to = thissize;
			s->count = n;
		}
		s->total = s->count * s->to;
	}
	for (unsigned i = 1; i < NBINS; ++i) {
		mchunkptr bin = bin_at(av, i);
		struct size_row *s = &r->sizes[NFASTBINS - 1 + i];

		s->from = ~(size_t)0;
		for (mchunkptr c = bin->fd; c != NULL && c != bin; c = c->fd) {
			/* glibc sums the raw size words here, flag bits and all; we
			 * report the true sizes so that the totals match mallinfo2. */
			size_t sz = chunksize(c);

			++s->count;
			s->total += sz;
			if (sz < s->from)
				s->from = sz;
			if (sz > s->to)
				s->to = sz;
		}
		if (s->count == 0)
			s->from = 0;
		r->nblocks += s->count;
		r->avail += s->total;
	}
	r->system_mem = av->system_mem;
	r->max_system_mem = av->max_system_mem;
	if (av != main_arena) {
		for (struct ptm_heap *h = heap_for_ptr(av->top); h != NULL; h = h->prev) {
			r->heap_size += h->size;
			r->heap_mprotect_size += h->mprotect_size;
			r->heap_count++;
		}
	}
}

PTM_API int ptm_malloc_info(int options, FILE *fp)
{
	size_t total_nblocks = 0, total_nfastblocks = 0, total_avail = 0, total_fastavail = 0;
	size_t total_system = 0, total_max_system = 0, total_aspace = 0, total_aspace_mprotect = 0;
	struct heap_report r;
	mstate av = main_arena;
	int n = 0;

	if (options != 0)
		return EINVAL;
	ptm_i_ensure_init();
	fputs("<malloc version=\"1\">\n", fp);
	do {
		fprintf(fp, "<heap nr=\"%d\">\n<sizes>\n", n++);
		ptm_i_arena_lock(av);
		gather(av, &r);
		ptm_i_arena_unlock(av);
		total_nfastblocks += r.nfastblocks;
		total_fastavail += r.fastavail;
		total_nblocks += r.nblocks;
		total_avail += r.avail;
		for (size_t i = 0; i < sizeof(r.sizes) / sizeof(r.sizes[0]); ++i)
			if (r.sizes[i].count != 0 && i != NFASTBINS)
				fprintf(fp,
					"  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" "
					"count=\"%zu\"/>\n",
					r.sizes[i].from, r.sizes[i].to, r.sizes[i].total,
					r.sizes[i].count);
		if (r.sizes[NFASTBINS].count != 0)
			fprintf(fp,
				"  <unsorted from=\"%zu\" to=\"%zu\" total=\"%zu\" "
				"count=\"%zu\"/>\n",
				r.sizes[NFASTBINS].from, r.sizes[NFASTBINS].to,
				r.sizes[NFASTBINS].total, r.sizes[NFASTBINS].count);
		total_system += r.system_mem;
		total_max_system += r.max_system_mem;
		fprintf(fp,
			"</sizes>\n<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n"
			"<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
			"<system type=\"current\" size=\"%zu\"/>\n"
			"<system type=\"max\" size=\"%zu\"/>\n",
			r.nfastblocks, r.fastavail, r.nblocks, r.avail, r.system_mem,
			r.max_system_mem);
		if (av != main_arena) {
			fprintf(fp,
				"<aspace type=\"total\" size=\"%zu\"/>\n"
				"<aspace type=\"mprotect\" size=\"%zu\"/>\n"
				"<aspace type=\"subheaps\" size=\"%zu\"/>\n",
				r.heap_size, r.heap_mprotect_size, r.heap_count);
			total_aspace += r.heap_size;
			total_aspace_mprotect += r.heap_mprotect_size;
		} else {
			fprintf(fp,
				"<aspace type=\"total\" size=\"%zu\"/>\n"
				"<aspace type=\"mprotect\" size=\"%zu\"/>\n",
				r.system_mem, r.system_mem);
			total_aspace += r.system_mem;
			total_aspace_mprotect += r.system_mem;
		}
		fputs("</heap>\n", fp);
		av = __atomic_load_n(&av->next, __ATOMIC_ACQUIRE);
	} while (av != main_arena);
	fprintf(fp,
		"<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"mmap\" count=\"%d\" size=\"%zu\"/>\n"
		"<system type=\"current\" size=\"%zu\"/>\n"
		"<system type=\"max\" size=\"%zu\"/>\n"
		"<aspace type=\"total\" size=\"%zu\"/>\n"
		"<aspace type=\"mprotect\" size=\"%zu\"/>\n"
		"</malloc>\n",
		total_nfastblocks, total_fastavail, total_nblocks, total_avail,
		__atomic_load_n(&mp_.n_mmaps, __ATOMIC_RELAXED),
		__atomic_load_n(&mp_.mmapped_mem, __ATOMIC_RELAXED), total_system, total_max_system,
		total_aspace, total_aspace_mprotect);
	return 0;
}

PTM_HIDDEN_ALIAS(mallinfo);
PTM_HIDDEN_ALIAS(mallinfo2);
PTM_HIDDEN_ALIAS(malloc_stats);
PTM_HIDDEN_ALIAS(malloc_info);

static unsigned hist_bucket(size_t size)
{
	unsigned k = 0;

	for (size_t s = size >> 6; s != 0 && k < PTM_STATS_HIST_BUCKETS - 1; s >>= 1)
		k++;
	return k;
}

static void count_free(struct ptm_arena_stats *a, struct ptm_class_stats *cls, size_t size)
{
	cls->chunks++;
	cls->bytes += size;
	a->free_hist[hist_bucket(size)]++;
	if (size > a->largest_free)
		a->largest_free = size;
}

/* One arena's numbers; av is locked. */
static void arena_stats(mstate av, struct ptm_arena_stats *a)
{
	memset(a, 0, sizeof(*a));
	a->index = av->index;
	a->system_bytes = av->system_mem;
	a->max_system_bytes = av->max_system_mem;
	a->threads_attached = av->attached_threads;
	a->lock_acquisitions = av->books.lock_acquisitions;
	a->lock_contended = av->books.lock_contended;
	a->lock_wait_ns = av->books.lock_wait_ns;
	a->lock_max_wait_ns = av->books.lock_max_wait_ns;
	a->released_bytes = av->books.released_bytes;
	a->release_total_bytes = av->books.release_total_bytes;
	a->reuse_total_bytes = av->books.reuse_total_bytes;
	a->release_calls = av->books.release_calls;
	if (av->top != initial_top(av))
		count_free(a, &a->top, chunksize(av->top));
	for (unsigned i = 0; i < NFASTBINS; i++)
		for (mchunkptr p = av->fastbins[i]; p != NULL; p = REVEAL_PTR(p->fd))
			count_free(a, &a->fast, chunksize(p));
	for (unsigned i = 1; i < NBINS; i++) {
		mchunkptr b = bin_at(av, i);
		struct ptm_class_stats *cls = i == 1           ? &a->unsorted
					      : i < NSMALLBINS ? &a->small
							       : &a->large;

		for (mchunkptr p = b->fd; p != b; p = p->fd)
			count_free(a, cls, chunksize(p));
	}
	ptm_i_count_inuse(av, &a->inuse_chunks, &a->heaps);
	/* What fastbins hold is free to us but in use to the boundary tags. */
	a->inuse_chunks -= a->fast.chunks;
	a->inuse_bytes = a->system_bytes - a->top.bytes - a->fast.bytes - a->unsorted.bytes -
			 a->small.bytes - a->large.bytes;
}

PTM_API int ptm_stats_get(struct ptm_stats *st)
{
	struct ptm_arena_stats scratch;
	mstate av = main_arena;

	if (st == NULL)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->version = PTM_STATS_VERSION;
	st->size = sizeof(*st);
	ptm_i_ensure_init();
	do {
		struct ptm_arena_stats *a = st->arenas_reported < PTM_STATS_MAX_ARENAS
						    ? &st->arenas[st->arenas_reported++]
						    : &scratch;

		ptm_i_arena_lock(av);
		arena_stats(av, a);
		ptm_i_arena_unlock(av);
		st->narenas++;
		st->system_bytes += a->system_bytes;
		st->max_system_bytes += a->max_system_bytes;
		st->inuse_bytes += a->inuse_bytes;
		st->inuse_chunks += a->inuse_chunks;
		st->free_bytes += a->fast.bytes + a->unsorted.bytes + a->small.bytes +
				  a->large.bytes + a->top.bytes;
		st->free_chunks += a->fast.chunks + a->unsorted.chunks + a->small.chunks +
				   a->large.chunks + a->top.chunks;
		if (a->largest_free > st->largest_free)
			st->largest_free = a->largest_free;
		st->released_bytes += a->released_bytes;
		st->release_total_bytes += a->release_total_bytes;
		st->reuse_total_bytes += a->reuse_total_bytes;
		st->release_calls += a->release_calls;
		av = __atomic_load_n(&av->next, __ATOMIC_ACQUIRE);
	} while (av != main_arena);
	ptm_i_tcache_sum(&st->tcache.chunks, &st->tcache.bytes, &st->tcache_threads);
	st->mmapped_chunks = (uint64_t)__atomic_load_n(&mp_.n_mmaps, __ATOMIC_RELAXED);
	st->mmapped_bytes = __atomic_load_n(&mp_.mmapped_mem, __ATOMIC_RELAXED);
	st->max_mmapped_chunks = (uint64_t)__atomic_load_n(&mp_.max_n_mmaps, __ATOMIC_RELAXED);
	st->max_mmapped_bytes = __atomic_load_n(&mp_.max_mmapped_mem, __ATOMIC_RELAXED);
	return 0;
}

static void json_class(FILE *fp, const char *name, const struct ptm_class_stats *c)
{
	fprintf(fp, "\"%s\":{\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", name, c->chunks,
		c->bytes);
}

PTM_API int ptm_stats_json(FILE *fp)
{
	/* Big: kept off the stack of whoever asks, and not on our own heap. */
	static struct ptm_stats st;
	static ptm_lock_t json_lock = PTM_LOCK_INIT;
	int err;

	ptm_lock(&json_lock);
	err = ptm_stats_get(&st);
	if (err)
		goto out;
	fprintf(fp,
		"{\"version\":%u,\"narenas\":%" PRIu64 ",\"system_bytes\":%" PRIu64
		",\"max_system_bytes\":%" PRIu64 ",\"inuse_bytes\":%" PRIu64
		",\"inuse_chunks\":%" PRIu64 ",\"free_bytes\":%" PRIu64 ",\"free_chunks\":%" PRIu64
		",\"largest_free\":%" PRIu64 ",",
		st.version, st.narenas, st.system_bytes, st.max_system_bytes, st.inuse_bytes,
		st.inuse_chunks, st.free_bytes, st.free_chunks, st.largest_free);
	json_class(fp, "tcache", &st.tcache);
	fprintf(fp,
		",\"tcache_threads\":%" PRIu64 ",\"mmapped_chunks\":%" PRIu64
		",\"mmapped_bytes\":%" PRIu64 ",\"max_mmapped_chunks\":%" PRIu64
		",\"max_mmapped_bytes\":%" PRIu64 ",\"released_bytes\":%" PRIu64
		",\"release_total_bytes\":%" PRIu64 ",\"reuse_total_bytes\":%" PRIu64
		",\"release_calls\":%" PRIu64 ",\"arenas\":[",
		st.tcache_threads, st.mmapped_chunks, st.mmapped_bytes, st.max_mmapped_chunks,
		st.max_mmapped_bytes, st.released_bytes, st.release_total_bytes,
		st.reuse_total_bytes, st.release_calls);
	for (uint64_t i = 0; i < st.arenas_reported; i++) {
		const struct ptm_arena_stats *a = &st.arenas[i];

		fprintf(fp,
			"%s{\"index\":%" PRIu64 ",\"system_bytes\":%" PRIu64
			",\"max_system_bytes\":%" PRIu64 ",\"heaps\":%" PRIu64
			",\"inuse_chunks\":%" PRIu64 ",\"inuse_bytes\":%" PRIu64 ",",
			i ? "," : "", a->index, a->system_bytes, a->max_system_bytes, a->heaps,
			a->inuse_chunks, a->inuse_bytes);
		json_class(fp, "fast", &a->fast);
		fputc(',', fp);
		json_class(fp, "unsorted", &a->unsorted);
		fputc(',', fp);
		json_class(fp, "small", &a->small);
		fputc(',', fp);
		json_class(fp, "large", &a->large);
		fputc(',', fp);
		json_class(fp, "top", &a->top);
		fprintf(fp, ",\"largest_free\":%" PRIu64 ",\"free_hist\":[", a->largest_free);
		for (int k = 0; k < PTM_STATS_HIST_BUCKETS; k++)
			fprintf(fp, "%s%" PRIu64, k ? "," : "", a->free_hist[k]);
		fprintf(fp,
			"],\"threads_attached\":%" PRIu64 ",\"lock_acquisitions\":%" PRIu64
			",\"lock_contended\":%" PRIu64 ",\"lock_wait_ns\":%" PRIu64
			",\"lock_max_wait_ns\":%" PRIu64 ",\"released_bytes\":%" PRIu64
			",\"release_total_bytes\":%" PRIu64 ",\"reuse_total_bytes\":%" PRIu64
			",\"release_calls\":%" PRIu64 "}",
			a->threads_attached, a->lock_acquisitions, a->lock_contended,
			a->lock_wait_ns, a->lock_max_wait_ns, a->released_bytes,
			a->release_total_bytes, a->reuse_total_bytes, a->release_calls);
	}
	fputs("]}\n", fp);
	if (ferror(fp))
		err = -EIO;
out:
	ptm_unlock(&json_lock);
	return err;
}
