// SPDX-License-Identifier: MIT
/*
 * account.c - the definitions of heapfrag's numbers, exactly as implemented.
 *
 * Inputs: raw (what BPF counted since attach; raw->calls_known is true in
 * exact mode, where the allocator's entry points are probed) and regions
 * (what /proc shows of the allocator's regions now).  "unknown" is
 * HF_UNKNOWN for byte and count fields, NaN for ratios; it is reported as
 * null, never as 0.  An unknown input makes every result that uses it
 * unknown.
 *
 * requested_bytes   sum of the sizes the program asked for, over live
 *                   allocations (allocations made before attach are not
 *                   known and not counted).  Unknown without calls_known.
 * allocated_bytes   sum of the chunk sizes the allocator set aside for those
 *                   allocations, headers and rounding included.  Unknown
 *                   without calls_known.
 * live_allocations  allocations made since attach and not yet freed.
 *                   Unknown without calls_known.
 * mapped_bytes      brk: span of the brk heap; arena: committed (rw) part of
 *                   non-main arena heaps; mmap: mmapped chunks (see
 *                   heap_regions.c for how each is found).
 *                   total = brk + arena + mmap when all three are known, else
 *                   unknown: a sum of some parts would pass for the total and
 *                   make every ratio built on it look better than it is.
 * resident_bytes    Rss of exactly the regions counted in mapped_bytes;
 *                   unknown whenever mapped_bytes.total is.
 * free_bytes        max(0, resident_bytes - allocated_bytes).
 * released_bytes    bytes the allocator gave back to the kernel since attach
 *                   (munmap, shrinking brk or mremap, MADV_DONTNEED/MADV_FREE
 *                   on heap regions), as counted by the syscall tracepoints.
 * process_rss_bytes VmRSS of the whole process.
 *
 * fragmentation.ratio          1 - requested_bytes / resident_bytes, clamped to
 *                              [0, 1].  requested can exceed resident when the
 *                              program has not touched memory it asked for
 *                              (untouched pages are not resident); the raw
 *                              value is then negative and has no reading as a
 *                              share of memory, so it is reported as 0 — "no
 *                              resident byte is wasted" — which is the same
 *                              clamp free_bytes gets.  The bytes behind it are
 *                              reported beside it, so nothing is hidden.
 * fragmentation.internal_ratio (allocated_bytes - requested_bytes) /
 *                              allocated_bytes: the share of chunk bytes lost
 *                              to headers, alignment and size classes.
 * fragmentation.internal_bytes max(0, allocated_bytes - requested_bytes).
 * fragmentation.external_ratio free_bytes / resident_bytes: the share of
 *                              resident heap memory that holds no allocation.
 * fragmentation.external_bytes free_bytes.
 * A ratio whose denominator is 0 (nothing allocated, nothing resident) is
 * unknown; the byte amounts are still known (0) then.
 * largest_free_chunk_bytes, free_chunks: from the allocator's own books
 * (regions) where it keeps them for us (libptm); else, where the latest heap
 * census is complete, from it (census.h): the largest of every arena's top,
 * binned and fastbin chunks, and the binned and fastbin chunks plus one top
 * per arena; else unknown.
 *
 * Passive mode has no calls to count, so where the latest heap census is
 * complete it supplies what they would (exact mode keeps its own):
 * allocated_bytes   the census's in-use chunk bytes plus its mmapped chunk
 *                   bytes: the chunks exact mode counts, found by walking the
 *                   heap instead of following the calls.
 * free_bytes        the census's free chunk bytes (bins, fastbins, thread
 *                   caches, top) that lie on resident pages.
 * external_*        from that free_bytes, as above.
 *
 * counters          brk, mmap, munmap, mremap, madvise: syscalls made since
 *                   attach, known in both modes.  malloc, calloc, realloc,
 *                   free, memalign (every aligned-allocation entry point) and
 *                   failed (allocation calls that returned NULL or an error):
 *                   unknown without calls_known.
 * dropped_events    events lost to full BPF maps, in both modes.
 * live_map_entries  entries of the live-allocation map for this process;
 *                   unknown without calls_known, where there is no such map.
 * histograms        copied (histogram_known = true) with calls_known, else
 *                   histogram_known = false and all buckets 0.
 * peaks             the largest known value each of requested_bytes,
 *                   allocated_bytes, resident_bytes and live_allocations has
 *                   had, with the time (Unix seconds) it was first reached;
 *                   an unknown value never moves a peak.
 */
#include "account.h"

#include <math.h>
#include <string.h>

uint64_t hf_mapped_total(const struct hf_mapped *m)
{
	if (!hf_known(m->brk) || !hf_known(m->arena) || !hf_known(m->mmap))
		return HF_UNKNOWN;
	return m->brk + m->arena + m->mmap;
}

static void move_peak(struct hf_peak_value *p, uint64_t value, double now)
{
	if (!hf_known(value))
		return;
	if (!hf_known(p->value) || value > p->value) {
		p->value = value;
		p->at = now;
	}
}

/* num / den, or NaN when either is unknown or den is 0. */
static double ratio(uint64_t num, uint64_t den)
{
	if (!hf_known(num) || !hf_known(den) || den == 0)
		return NAN;
	return (double)num / (double)den;
}

void hf_account(const struct hf_raw *raw, const struct hf_regions *regions, double now,
		struct hf_snapshot *snap)
{
	struct hf_heap *h = &snap->heap;
	struct hf_fragmentation *f = &snap->fragmentation;
	const struct hf_counters *rc = &raw->counters;
	struct hf_counters *c = &snap->counters;
	bool calls = raw->calls_known;
	/* A complete census stands in for what passive mode cannot count. */
	const struct hf_census *census =
		snap->census.state == HF_CENSUS_COMPLETE ? &snap->census : NULL;

	snap->at = now;
	c->malloc = calls ? rc->malloc : HF_UNKNOWN;
	c->calloc = calls ? rc->calloc : HF_UNKNOWN;
	c->realloc = calls ? rc->realloc : HF_UNKNOWN;
	c->free = calls ? rc->free : HF_UNKNOWN;
	c->memalign = calls ? rc->memalign : HF_UNKNOWN;
	c->failed = calls ? rc->failed : HF_UNKNOWN;
	c->brk = rc->brk;
	c->mmap = rc->mmap;
	c->munmap = rc->munmap;
	c->mremap = rc->mremap;
	c->madvise = rc->madvise;

	snap->tracing.dropped_events = raw->dropped_events;
	snap->tracing.live_map_entries = calls ? raw->live_map_entries : HF_UNKNOWN;

	h->live_allocations = calls ? raw->live_allocations : HF_UNKNOWN;
	h->requested_bytes = calls ? raw->requested_bytes : HF_UNKNOWN;
	h->allocated_bytes = calls ? raw->allocated_bytes : HF_UNKNOWN;
	h->mapped_bytes = regions->mapped;
	h->mapped_bytes.total = hf_mapped_total(&regions->mapped);
	h->resident_bytes = hf_known(h->mapped_bytes.total) ? regions->resident_bytes : HF_UNKNOWN;
	h->released_bytes = raw->released_bytes;
	h->process_rss_bytes = regions->process_rss_bytes;
	if (!calls && census && hf_known(census->mmapped.bytes))
		h->allocated_bytes = census->total.in_use.bytes + census->mmapped.bytes;
	if (!calls && census && hf_known(h->resident_bytes))
		h->free_bytes = census->total.free_resident_bytes;
	else if (hf_known(h->resident_bytes) && hf_known(h->allocated_bytes))
		h->free_bytes = h->resident_bytes > h->allocated_bytes
					? h->resident_bytes - h->allocated_bytes
					: 0;
	else
		h->free_bytes = HF_UNKNOWN;

	if (hf_known(h->requested_bytes) && hf_known(h->resident_bytes) && h->resident_bytes) {
		f->ratio = 1.0 - (double)h->requested_bytes / (double)h->resident_bytes;
		if (f->ratio < 0)
			f->ratio = 0;
	} else {
		f->ratio = NAN;
	}
	if (hf_known(h->allocated_bytes) && hf_known(h->requested_bytes))
		f->internal_bytes = h->allocated_bytes > h->requested_bytes
					    ? h->allocated_bytes - h->requested_bytes
					    : 0;
	else
		f->internal_bytes = HF_UNKNOWN;
	f->internal_ratio = ratio(f->internal_bytes, h->allocated_bytes);
	f->external_bytes = h->free_bytes;
	f->external_ratio = ratio(h->free_bytes, h->resident_bytes);
	f->largest_free_chunk_bytes = regions->largest_free_chunk_bytes;
	f->free_chunks = regions->free_chunks;
	if (census) {
		if (!hf_known(f->largest_free_chunk_bytes))
			f->largest_free_chunk_bytes = census->total.largest_any_bytes;
		if (!hf_known(f->free_chunks))
			f->free_chunks = census->total.bins.chunks + census->total.fastbins.chunks +
					 census->total.tops;
	}

	snap->histogram_known = calls;
	if (calls) {
		memcpy(snap->histogram.requests, raw->hist_requests, sizeof(raw->hist_requests));
		memcpy(snap->histogram.live, raw->hist_live, sizeof(raw->hist_live));
	} else {
		memset(&snap->histogram, 0, sizeof(snap->histogram));
	}

	snap->latency_known = calls;
	if (calls)
		memcpy(snap->latency, raw->latency, sizeof(raw->latency));
	else
		memset(snap->latency, 0, sizeof(snap->latency));

	move_peak(&h->peak.requested_bytes, h->requested_bytes, now);
	move_peak(&h->peak.allocated_bytes, h->allocated_bytes, now);
	move_peak(&h->peak.resident_bytes, h->resident_bytes, now);
	move_peak(&h->peak.live_allocations, h->live_allocations, now);
}
