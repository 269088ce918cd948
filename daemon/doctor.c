// SPDX-License-Identifier: MIT
/*
 * doctor.c - the rules of doctor.h, one function each.  A rule returns true
 * when it wrote a finding; every number it compares is checked to be known
 * first, so that an unknown value reads as "no evidence", never as zero.
 */
#include "doctor.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const finding_names[HF_FINDING_COUNT] = {
	[HF_FINDING_EXTERNAL_FRAGMENTATION] = "external_fragmentation",
	[HF_FINDING_ARENA_CONTENTION] = "arena_contention",
	[HF_FINDING_MMAP_CHURN] = "mmap_churn",
	[HF_FINDING_INTERNAL_FRAGMENTATION] = "internal_fragmentation",
	[HF_FINDING_DROPPED_EVENTS] = "dropped_events",
	[HF_FINDING_RELEASABLE_FREE_MEMORY] = "releasable_free_memory",
	[HF_FINDING_PINNED_FRAGMENTATION] = "pinned_fragmentation",
	[HF_FINDING_ALLOCATOR_CACHING] = "allocator_caching",
	[HF_FINDING_LEAK_LIKE_GROWTH] = "leak_like_growth",
	[HF_FINDING_FRAGMENTATION_GROWTH] = "fragmentation_growth",
	[HF_FINDING_PINNED_BY_SITE] = "pinned_by_site",
	[HF_FINDING_GROWING_SITE] = "growing_site",
};

const char *hf_finding_name(enum hf_finding_kind kind)
{
	return (unsigned int)kind < HF_FINDING_COUNT ? finding_names[kind] : "unknown";
}

/* "12.3 MiB": bytes for a sentence. */
static const char *human_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double d = (double)v;
	unsigned int u = 0;

	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

static bool known_ratio(double r)
{
	return isfinite(r);
}

static bool glibc_like(const struct hf_snapshot *s)
{
	return s->allocator.kind == HF_ALLOC_GLIBC || s->allocator.kind == HF_ALLOC_LIBPTM;
}

/*
 * The histogram bucket with the most entries among buckets from..to, or -1.
 * Its upper bound is the "hot size" a pool or an mmap threshold should fit.
 */
static int busiest_bucket(const uint64_t *hist, int from, int to)
{
	int best = -1;

	for (int i = from; i <= to && i < HF_HIST_BUCKETS; i++)
		if (hist[i] && (best < 0 || hist[i] > hist[best]))
			best = i;
	return best;
}

static void say(struct hf_finding *f, enum hf_finding_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct hf_finding *f, enum hf_finding_kind kind, const char *fmt, ...)
{
	va_list ap;

	f->kind = kind;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

static bool external_fragmentation(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_fragmentation *fr = &s->fragmentation;
	char free_b[32], res_b[32], remedy[400];
	int hot = -1;

	if (!known_ratio(fr->external_ratio) || !hf_known(fr->external_bytes) ||
	    !hf_known(s->heap.resident_bytes))
		return false;
	if (fr->external_ratio < HF_DOCTOR_EXT_FRAG_RATIO ||
	    fr->external_bytes < HF_DOCTOR_EXT_FRAG_MIN_BYTES)
		return false;
	if (s->histogram_known)
		hot = busiest_bucket(s->histogram.live, 0, HF_HIST_BUCKETS - 2);
	/* malloc_trim(0) releases free pages anywhere in the heap; the trim threshold only the top.
	 */
	if (s->allocator.kind == HF_ALLOC_GLIBC)
		snprintf(remedy, sizeof(remedy),
			 "call malloc_trim(0) after large batches of frees, which gives the free "
			 "pages "
			 "inside the heap back to the kernel (a lower MALLOC_TRIM_THRESHOLD_, e.g. "
			 "131072, only returns free memory at the top of the heap); %sor run it on "
			 "libptm with page release (LD_PRELOAD=libptm.so)",
			 hot >= 0 ? "keep the hot size in a pool of its own so its blocks stay "
				    "together; "
				  : "");
	else
		snprintf(remedy, sizeof(remedy),
			 "make the allocator return free pages (its purge or trim call); %sor run "
			 "it on "
			 "libptm with page release (LD_PRELOAD=libptm.so)",
			 hot >= 0 ? "keep the hot size in a pool of its own so its blocks stay "
				    "together; "
				  : "");
	if (hot >= 0)
		say(f, HF_FINDING_EXTERNAL_FRAGMENTATION,
		    "External fragmentation is high: %s of the %s of resident heap (%.0f%%) is "
		    "free "
		    "memory held by the allocator, scattered between live blocks (most live blocks "
		    "are at most %" PRIu64 " bytes). Remedy: %s.",
		    human_bytes(fr->external_bytes, free_b, sizeof(free_b)),
		    human_bytes(s->heap.resident_bytes, res_b, sizeof(res_b)),
		    100 * fr->external_ratio, hf_hist_le(hot), remedy);
	else
		say(f, HF_FINDING_EXTERNAL_FRAGMENTATION,
		    "External fragmentation is high: %s of the %s of resident heap (%.0f%%) is "
		    "free "
		    "memory held by the allocator, scattered between live blocks. Remedy: %s.",
		    human_bytes(fr->external_bytes, free_b, sizeof(free_b)),
		    human_bytes(s->heap.resident_bytes, res_b, sizeof(res_b)),
		    100 * fr->external_ratio, remedy);
	return true;
}

static bool arena_contention(const struct hf_snapshot *s, double now, struct hf_finding *f)
{
	uint64_t contended = 0;
	double wait = 0, max_wait = 0, elapsed = now - s->tracing.since;
	const struct hf_arena *worst = NULL;
	char users[48], arenas[40];

	if (!isfinite(elapsed) || elapsed <= 0 || s->nr_arenas == 0)
		return false;
	for (uint32_t i = 0; i < s->nr_arenas && i < HF_MAX_ARENAS; i++) {
		const struct hf_arena *a = &s->arenas[i];

		if (!hf_known(a->lock.contended) || !known_ratio(a->lock.wait_seconds))
			continue;
		contended += a->lock.contended;
		wait += a->lock.wait_seconds;
		if (known_ratio(a->lock.max_wait_seconds) && a->lock.max_wait_seconds > max_wait)
			max_wait = a->lock.max_wait_seconds;
		if (!worst || a->lock.wait_seconds > worst->lock.wait_seconds)
			worst = a;
	}
	if (!worst || contended < HF_DOCTOR_CONTENTION_MIN_WAITS ||
	    wait / elapsed < HF_DOCTOR_CONTENTION_WAIT_SHARE)
		return false;
	if (hf_known(worst->threads))
		snprintf(users, sizeof(users), "%" PRIu64 " thread%s", worst->threads,
			 worst->threads == 1 ? "" : "s");
	else
		snprintf(users, sizeof(users), "an unknown number of threads");
	if (s->nr_arenas == 1)
		snprintf(arenas, sizeof(arenas), "the process's only arena");
	else
		snprintf(arenas, sizeof(arenas), "one of %u arenas", s->nr_arenas);
	say(f, HF_FINDING_ARENA_CONTENTION,
	    "Threads wait for malloc's arena locks: %" PRIu64 " contended acquisitions in %.0f s "
	    "(%.0f/s) kept threads blocked %.3f s in all (%.1f%% of the traced time, summed over "
	    "threads; longest single wait %.1f ms); the busiest lock is the %s arena at 0x%" PRIx64
	    ", used by %s, %s. Remedy: %s.",
	    contended, elapsed, (double)contended / elapsed, wait, 100 * wait / elapsed,
	    1e3 * max_wait, worst->kind == HF_ARENA_MAIN ? "main" : "thread", worst->address, users,
	    arenas,
	    s->allocator.kind == HF_ALLOC_GLIBC
		    ? "let threads have arenas of their own (raise MALLOC_ARENA_MAX, or unset it: "
		      "glibc's default is 8 per core), and give hot threads per-thread pools so "
		      "blocks are freed by the thread that allocated them"
		    : "give hot threads per-thread pools so blocks are freed by the thread that "
		      "allocated them, or allow the allocator more arenas");
	return true;
}

static bool mmap_churn(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_counters *c = &s->counters;
	uint64_t calls;
	int hot = -1;
	char size_b[32], size_note[64], threshold[24], remedy[128];

	if (!hf_known(c->mmap) || !hf_known(c->munmap) || !hf_known(c->malloc) ||
	    !hf_known(c->calloc) || !hf_known(c->realloc) || !hf_known(c->memalign))
		return false;
	calls = c->malloc + c->calloc + c->realloc + c->memalign;
	if (calls == 0 || c->mmap < HF_DOCTOR_MMAP_CHURN_MIN_MMAPS ||
	    (double)c->munmap < HF_DOCTOR_MMAP_CHURN_UNMAP_SHARE * (double)c->mmap ||
	    (double)c->mmap < HF_DOCTOR_MMAP_CHURN_CALL_SHARE * (double)calls)
		return false;
	/* glibc's default mmap threshold starts at 128 KiB (bucket of le 128 KiB is 13). */
	if (s->histogram_known)
		hot = busiest_bucket(s->histogram.requests, 13, HF_HIST_BUCKETS - 2);
	/* glibc caps M_MMAP_THRESHOLD at HEAP_MAX_SIZE / 2, 32 MiB on 64-bit. */
	if (hot >= 0 && hf_hist_le(hot) <= (32ull << 20))
		snprintf(threshold, sizeof(threshold), "%" PRIu64, hf_hist_le(hot));
	else
		snprintf(threshold, sizeof(threshold), "BYTES");
	if (hot >= 0)
		snprintf(size_note, sizeof(size_note), " (most are at most %s)",
			 human_bytes(hf_hist_le(hot), size_b, sizeof(size_b)));
	else
		size_note[0] = '\0';
	if (glibc_like(s))
		snprintf(remedy, sizeof(remedy),
			 "mallopt(M_MMAP_THRESHOLD, %s) or MALLOC_MMAP_THRESHOLD_=%s in the "
			 "environment",
			 threshold, threshold);
	else
		snprintf(remedy, sizeof(remedy), "the allocator's large-allocation threshold");
	say(f, HF_FINDING_MMAP_CHURN,
	    "Large allocations churn through mmap: %" PRIu64 " mmap and %" PRIu64 " munmap calls "
	    "for %" PRIu64 " allocation calls (%.1f%%), each a system call and fresh zeroed pages. "
	    "Remedy: raise the mmap threshold above the common large size%s with %s, so those "
	    "blocks are reused from the heap.",
	    c->mmap, c->munmap, calls, 100.0 * (double)c->mmap / (double)calls, size_note, remedy);
	return true;
}

static bool internal_fragmentation(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_fragmentation *fr = &s->fragmentation;
	char waste_b[32], alloc_b[32], hot_note[64];
	int hot = -1;

	if (!known_ratio(fr->internal_ratio) || !hf_known(fr->internal_bytes) ||
	    !hf_known(s->heap.allocated_bytes))
		return false;
	if (fr->internal_ratio < HF_DOCTOR_INT_FRAG_RATIO ||
	    fr->internal_bytes < HF_DOCTOR_INT_FRAG_MIN_BYTES)
		return false;
	if (s->histogram_known)
		hot = busiest_bucket(s->histogram.live, 0, HF_HIST_BUCKETS - 2);
	if (hot >= 0)
		snprintf(hot_note, sizeof(hot_note),
			 " (most live requests are at most %" PRIu64 " bytes)", hf_hist_le(hot));
	else
		hot_note[0] = '\0';
	say(f, HF_FINDING_INTERNAL_FRAGMENTATION,
	    "Internal fragmentation is high: %s of the %s the allocator set aside (%.0f%%) is "
	    "headers and rounding beyond what was asked for%s. Remedy: size the hot objects to the "
	    "allocator's size classes (a request just above a class pays for the next), or batch "
	    "small objects into one allocation.",
	    human_bytes(fr->internal_bytes, waste_b, sizeof(waste_b)),
	    human_bytes(s->heap.allocated_bytes, alloc_b, sizeof(alloc_b)),
	    100 * fr->internal_ratio, hot_note);
	return true;
}

static bool dropped_events(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_tracing *t = &s->tracing;

	if (!hf_known(t->dropped_events) || t->dropped_events < HF_DOCTOR_DROPS_MIN)
		return false;
	if (hf_known(t->live_map_entries))
		say(f, HF_FINDING_DROPPED_EVENTS,
		    "heapfrag lost %" PRIu64 " events because its BPF maps were full (%" PRIu64
		    " live allocations tracked), so the numbers above under-count. Remedy: restart "
		    "heapfragd with a larger --max-live, above the process's peak live "
		    "allocations.",
		    t->dropped_events, t->live_map_entries);
	else
		say(f, HF_FINDING_DROPPED_EVENTS,
		    "heapfrag lost %" PRIu64 " events because its BPF maps were full, so the "
		    "numbers above under-count. Remedy: restart heapfragd with a larger "
		    "--max-live, "
		    "above the process's peak live allocations.",
		    t->dropped_events);
	return true;
}

/* The census's totals, when its latest walk is complete. */
static const struct hf_census_totals *census_totals(const struct hf_snapshot *s)
{
	return s->census.state == HF_CENSUS_COMPLETE ? &s->census.total : NULL;
}

static bool releasable_free_memory(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_census_totals *t = census_totals(s);
	char rel_b[32], res_b[32], top_b[32], how[320];

	if (!t || t->releasable_bytes < HF_DOCTOR_RELEASABLE_MIN_BYTES ||
	    (double)t->releasable_bytes < HF_DOCTOR_RELEASABLE_SHARE * (double)t->resident_bytes)
		return false;
	if (s->allocator.kind == HF_ALLOC_LIBPTM)
		snprintf(how, sizeof(how),
			 "malloc_trim(0) returns it now, and libptm's page release does so by itself "
			 "once such chunks have stayed free for a while (MALLOC_RELEASE_THRESHOLD_, "
			 "MALLOC_RELEASE_DELAY_)");
	else if (t->releasable_top_bytes >= t->releasable_bytes / 2)
		snprintf(how, sizeof(how),
			 "malloc_trim(0) returns it now; %s of it is at the top of the heap, which a "
			 "lower MALLOC_TRIM_THRESHOLD_ (e.g. 131072) also returns on every large free",
			 human_bytes(t->releasable_top_bytes, top_b, sizeof(top_b)));
	else
		snprintf(how, sizeof(how),
			 "malloc_trim(0) returns it now (call it after large batches of frees); "
			 "MALLOC_TRIM_THRESHOLD_ returns only the %s of it at the top of the heap",
			 human_bytes(t->releasable_top_bytes, top_b, sizeof(top_b)));
	say(f, HF_FINDING_RELEASABLE_FREE_MEMORY,
	    "%s of the %s of resident heap is free in whole pages that no live block touches. "
	    "Remedy: %s.",
	    human_bytes(t->releasable_bytes, rel_b, sizeof(rel_b)),
	    human_bytes(t->resident_bytes, res_b, sizeof(res_b)), how);
	return true;
}

static bool pinned_fragmentation(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_census_totals *t = census_totals(s);
	char free_b[32], live_b[32], pin_b[32];

	if (!t || t->pinned_free_bytes < HF_DOCTOR_PINNED_MIN_BYTES ||
	    (double)t->pinned_free_bytes < HF_DOCTOR_PINNED_SHARE * (double)t->resident_bytes)
		return false;
	say(f, HF_FINDING_PINNED_FRAGMENTATION,
	    "%s of free space shares its pages with %s of live blocks (%s of pinned pages): "
	    "trimming cannot help, because every one of those pages still holds a live block. "
	    "Remedy: fewer long-lived survivors per page: allocate the blocks that outlive their "
	    "neighbours from a pool or an arena of their own, apart from the short-lived ones (as "
	    "the seed's incident was fixed), or use an allocator that gives the free pages between "
	    "them back (libptm releases every whole free page inside a hole).",
	    human_bytes(t->pinned_free_bytes, free_b, sizeof(free_b)),
	    human_bytes(t->pinned_in_use_bytes, live_b, sizeof(live_b)),
	    human_bytes(t->pinned_bytes, pin_b, sizeof(pin_b)));
	return true;
}

static bool allocator_caching(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_census_totals *t = census_totals(s);
	char cache_b[32], tc_b[32], fb_b[32];

	if (!t || t->tcache.bytes + t->fastbins.bytes < HF_DOCTOR_CACHING_MIN_BYTES)
		return false;
	say(f, HF_FINDING_ALLOCATOR_CACHING,
	    "The allocator caches %s of free chunks: %s in thread caches (%" PRIu64 " chunks) and "
	    "%s in fastbins (%" PRIu64 " chunks), reusable only by the same thread or size and out "
	    "of reach of trimming. Remedy: %s.",
	    human_bytes(t->tcache.bytes + t->fastbins.bytes, cache_b, sizeof(cache_b)),
	    human_bytes(t->tcache.bytes, tc_b, sizeof(tc_b)), t->tcache.chunks,
	    human_bytes(t->fastbins.bytes, fb_b, sizeof(fb_b)), t->fastbins.chunks,
	    glibc_like(s) ? "cache less with GLIBC_TUNABLES=glibc.malloc.tcache_count=N (default 7 "
			    "per size) and glibc.malloc.mxfast=0 (no fastbins), or have threads "
			    "free what they allocate so their caches drain"
			  : "cache less per thread");
	return true;
}

/*
 * The census trend's first and last points, when they span long enough:
 * the growth of in-use and free bytes between them.
 */
static bool census_growth(const struct hf_snapshot *s, const struct hf_census_point **a,
			  const struct hf_census_point **b)
{
	const struct hf_census *c = &s->census;

	if (c->nr_trend < 2 || c->nr_trend > HF_CENSUS_TREND_LEN)
		return false;
	*a = &c->trend[0];
	*b = &c->trend[c->nr_trend - 1];
	return (*b)->at - (*a)->at >= HF_DOCTOR_GROWTH_MIN_SECONDS;
}

static double grew(uint64_t from, uint64_t to)
{
	return to > from ? (double)(to - from) : 0;
}

static bool growth(const struct hf_snapshot *s, bool in_use, struct hf_finding *f)
{
	const struct hf_census_point *a, *b;
	uint64_t from, to;
	double d_this, d_other, minutes;
	char from_b[32], to_b[32], other_a[32], other_b[32];

	if (!census_growth(s, &a, &b))
		return false;
	from = in_use ? a->in_use_bytes : a->free_bytes;
	to = in_use ? b->in_use_bytes : b->free_bytes;
	d_this = grew(from, to);
	d_other = in_use ? grew(a->free_bytes, b->free_bytes) : grew(a->in_use_bytes, b->in_use_bytes);
	if (d_this < (double)HF_DOCTOR_GROWTH_MIN_BYTES ||
	    d_this < HF_DOCTOR_GROWTH_SHARE * (double)from ||
	    d_this <= HF_DOCTOR_GROWTH_DOMINANCE * d_other)
		return false;
	minutes = (b->at - a->at) / 60;
	human_bytes(from, from_b, sizeof(from_b));
	human_bytes(to, to_b, sizeof(to_b));
	human_bytes(in_use ? a->free_bytes : a->in_use_bytes, other_a, sizeof(other_a));
	human_bytes(in_use ? b->free_bytes : b->in_use_bytes, other_b, sizeof(other_b));
	if (in_use)
		say(f, HF_FINDING_LEAK_LIKE_GROWTH,
		    "Live heap grows like a leak: in-use bytes went from %s to %s in %.1f minutes "
		    "while free bytes went from %s to %s, so the growth is blocks the program keeps, "
		    "not fragmentation. Remedy: find what holds them (heaptrack, or heapfragd's "
		    "exact mode and its size histogram), and bound caches and queues.",
		    from_b, to_b, minutes, other_a, other_b);
	else
		say(f, HF_FINDING_FRAGMENTATION_GROWTH,
		    "The heap fragments further: free bytes went from %s to %s in %.1f minutes "
		    "while in-use bytes went from %s to %s, so memory grows with holes, not with "
		    "live data. Remedy: see the releasable and pinned findings; a pool for the "
		    "blocks that outlive their neighbours stops the growth.",
		    from_b, to_b, minutes, other_a, other_b);
	return true;
}

/* "make_record (libfoo.so, foo.c:42)": a top site as a sentence names it. */
static void site_title(const struct hf_top_site *t, char *buf, size_t len)
{
	if (t->where[0])
		snprintf(buf, len, "%s (%s)", t->name, t->where);
	else
		snprintf(buf, len, "%s", t->name);
}

static bool pinned_by_site(const struct hf_snapshot *s, struct hf_finding *f)
{
	const struct hf_census_totals *t = census_totals(s);
	const struct hf_top_site *top = NULL;
	char title[320], live_b[32], pin_b[32];

	if (!t || !s->sites_known)
		return false;
	for (uint32_t i = 0; i < s->nr_top_sites && i < HF_MAX_TOP_SITES; i++) {
		const struct hf_top_site *c = &s->top_sites[i];

		if (hf_known(c->pinned_free_bytes) &&
		    (!top || c->pinned_free_bytes > top->pinned_free_bytes))
			top = c;
	}
	if (!top || top->pinned_free_bytes < HF_DOCTOR_SITE_PINNED_MIN_BYTES ||
	    (double)top->pinned_free_bytes <
		    HF_DOCTOR_SITE_PINNED_SHARE * (double)t->pinned_free_bytes)
		return false;
	site_title(top, title, sizeof(title));
	say(f, HF_FINDING_PINNED_BY_SITE,
	    "%s: %s of long-lived blocks pin %s of free pages. Remedy: give these objects a "
	    "pool or an arena of their own, or allocate them apart from the short-lived ones "
	    "they are interleaved with.",
	    title, human_bytes(top->live_bytes, live_b, sizeof(live_b)),
	    human_bytes(top->pinned_free_bytes, pin_b, sizeof(pin_b)));
	return true;
}

static bool growing_site(const struct hf_snapshot *s, double now, struct hf_finding *f)
{
	char title[320], from_b[32], to_b[32];

	if (!s->sites_known)
		return false;
	for (uint32_t i = 0; i < s->nr_top_sites && i < HF_MAX_TOP_SITES; i++) {
		const struct hf_top_site *c = &s->top_sites[i];
		uint64_t allocs = c->allocations - c->base_allocations;
		uint64_t frees = c->frees - c->base_frees;
		double grew;

		if (now - c->base_at < HF_DOCTOR_SITE_GROWTH_SECONDS ||
		    c->live_bytes <= c->base_live_bytes || c->allocations < c->base_allocations ||
		    c->frees < c->base_frees)
			continue;
		grew = (double)(c->live_bytes - c->base_live_bytes);
		if (grew < (double)HF_DOCTOR_SITE_GROWTH_MIN_BYTES ||
		    grew < HF_DOCTOR_SITE_GROWTH_SHARE * (double)c->base_live_bytes ||
		    (double)frees > HF_DOCTOR_SITE_FREE_SHARE * (double)allocs)
			continue;
		site_title(c, title, sizeof(title));
		say(f, HF_FINDING_GROWING_SITE,
		    "%s: live bytes went from %s to %s in %.1f minutes, with %" PRIu64
		    " frees for %" PRIu64 " allocations: this site's blocks pile up like a leak, "
		    "not fragmentation. Remedy: find who should free them (a cache or queue "
		    "without a bound, a lost owner).",
		    title, human_bytes(c->base_live_bytes, from_b, sizeof(from_b)),
		    human_bytes(c->live_bytes, to_b, sizeof(to_b)), (now - c->base_at) / 60, frees,
		    allocs);
		return true;
	}
	return false;
}

size_t hf_doctor(const struct hf_snapshot *s, double now, struct hf_finding *out, size_t max)
{
	struct hf_finding f;
	size_t n = 0;

	for (int kind = 0; kind < HF_FINDING_COUNT && n < max; kind++) {
		bool found = false;

		switch ((enum hf_finding_kind)kind) {
		case HF_FINDING_EXTERNAL_FRAGMENTATION:
			found = external_fragmentation(s, &f);
			break;
		case HF_FINDING_ARENA_CONTENTION:
			found = arena_contention(s, now, &f);
			break;
		case HF_FINDING_MMAP_CHURN:
			found = mmap_churn(s, &f);
			break;
		case HF_FINDING_INTERNAL_FRAGMENTATION:
			found = internal_fragmentation(s, &f);
			break;
		case HF_FINDING_DROPPED_EVENTS:
			found = dropped_events(s, &f);
			break;
		case HF_FINDING_RELEASABLE_FREE_MEMORY:
			found = releasable_free_memory(s, &f);
			break;
		case HF_FINDING_PINNED_FRAGMENTATION:
			found = pinned_fragmentation(s, &f);
			break;
		case HF_FINDING_ALLOCATOR_CACHING:
			found = allocator_caching(s, &f);
			break;
		case HF_FINDING_LEAK_LIKE_GROWTH:
			found = growth(s, true, &f);
			break;
		case HF_FINDING_FRAGMENTATION_GROWTH:
			found = growth(s, false, &f);
			break;
		case HF_FINDING_PINNED_BY_SITE:
			found = pinned_by_site(s, &f);
			break;
		case HF_FINDING_GROWING_SITE:
			found = growing_site(s, now, &f);
			break;
		case HF_FINDING_COUNT:
			break;
		}
		if (found)
			out[n++] = f;
	}
	return n;
}
