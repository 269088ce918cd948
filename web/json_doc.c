// SPDX-License-Identifier: MIT
/*
 * json_doc.c - snapshots as the JSON documents of the REST API.
 *
 * The names are the ones fixed by the tracing-core issue; README.md lists
 * them.  Whatever a snapshot does not know (HF_UNKNOWN, NaN, an empty path)
 * becomes null, so a client can tell "not measured" from 0.
 */
#include "web.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

static json_t *j_u64(uint64_t v)
{
	return hf_known(v) ? json_integer((json_int_t)v) : json_null();
}

/* JSON has no NaN or infinity; both mean "not known" here. */
static json_t *j_real(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *hf_json_u64(uint64_t v)
{
	return j_u64(v);
}

json_t *hf_json_real(double v)
{
	return j_real(v);
}

json_t *hf_json_hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_string(buf);
}

static json_t *j_str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

/* Strings from /proc may hold any bytes; jansson wants UTF-8. */
static json_t *j_text(const char *s)
{
	json_t *j = json_string(s);

	if (!j) {
		char clean[HF_PATH_LEN];
		size_t i;

		for (i = 0; s[i] && i < sizeof(clean) - 1; i++)
			clean[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
		clean[i] = '\0';
		j = json_string(clean);
	}
	return j;
}

static json_t *j_text_or_null(const char *s)
{
	return s[0] ? j_text(s) : json_null();
}

static json_t *j_peak(const struct hf_peak_value *p)
{
	if (!hf_known(p->value))
		return json_pack("{s:n,s:n}", "value", "at");
	return json_pack("{s:o,s:o}", "value", j_u64(p->value), "at", j_real(p->at));
}

static json_t *j_mapped(const struct hf_mapped *m)
{
	return json_pack("{s:o,s:o,s:o,s:o}", "brk", j_u64(m->brk), "arena", j_u64(m->arena),
			 "mmap", j_u64(m->mmap), "total", j_u64(m->total));
}

/*
 * Log2 buckets as [{"le":16,KEY:N},...,{"le":null,KEY:N}], one value per
 * bucket (not cumulative): KEY is "count" for histograms, "bytes" for the
 * sampled estimate by size.
 */
static json_t *j_buckets(const uint64_t *values, const char *key)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (int i = 0; i < HF_HIST_BUCKETS; i++) {
		json_t *le = i < HF_HIST_BUCKETS - 1 ? json_integer((json_int_t)hf_hist_le(i))
						     : json_null();

		if (json_array_append_new(
			    arr, json_pack("{s:o,s:o}", "le", le, key, j_u64(values[i])))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *j_ptm_events(const struct hf_snapshot *s)
{
	const struct hf_ptm_events *e = &s->ptm_events;

	if (!s->ptm_events_known)
		return json_null();
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "heap_grow_bytes",
			 j_u64(e->heap_grow_bytes), "heap_shrink_bytes",
			 j_u64(e->heap_shrink_bytes), "page_releases", j_u64(e->page_releases),
			 "page_release_bytes", j_u64(e->page_release_bytes), "arena_creates",
			 j_u64(e->arena_creates), "arena_reuses", j_u64(e->arena_reuses), "trims",
			 j_u64(e->trims));
}

static json_t *j_sampled_heap(const struct hf_snapshot *s)
{
	const struct hf_sampled_heap *h = &s->sampled;

	if (!s->sampled_known)
		return json_null();
	return json_pack("{s:o,s:o,s:o,s:o,s:o}", "live_bytes", j_u64(h->live_bytes),
			 "live_samples", j_u64(h->live_samples), "samples", j_u64(h->samples),
			 "dropped", j_u64(h->dropped), "live_bytes_by_size",
			 j_buckets(h->live_bytes_by_size, "bytes"));
}

json_t *hf_json_libptm(const struct hf_snapshot *s)
{
	return json_pack("{s:i,s:o,s:o}", "pid", (int)s->pid, "events", j_ptm_events(s),
			 "sampled_heap", j_sampled_heap(s));
}

/* One timed op: {"count","sum_seconds","buckets":[{"le":2.56e-07,"count":N},...]}. */
static json_t *j_call_latency(const struct hf_call_latency *l)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (int i = 0; i < HF_LAT_BUCKETS; i++) {
		json_t *le = i < HF_LAT_BUCKETS - 1 ? json_real((double)hf_lat_le_ns(i) / 1e9)
						    : json_null();

		if (json_array_append_new(
			    arr, json_pack("{s:o,s:o}", "le", le, "count", j_u64(l->buckets[i])))) {
			json_decref(arr);
			return NULL;
		}
	}
	return json_pack("{s:o,s:o,s:o}", "count", j_u64(l->count), "sum_seconds",
			 hf_known(l->sum_ns) ? json_real((double)l->sum_ns / 1e9) : json_null(),
			 "buckets", arr);
}

json_t *hf_json_latency(const struct hf_snapshot *s)
{
	json_t *calls = json_object();

	if (!calls)
		return NULL;
	for (int op = 0; op < HF_LAT_OPS; op++) {
		json_t *v = s->latency_known ? j_call_latency(&s->latency[op]) : json_null();

		if (json_object_set_new(calls, hf_lat_op_name((enum hf_lat_op)op), v)) {
			json_decref(calls);
			return NULL;
		}
	}
	/* free is named so that clients see it is never timed, rather than missing. */
	if (json_object_set_new(calls, "free", json_null())) {
		json_decref(calls);
		return NULL;
	}
	return json_pack("{s:i,s:o,s:s,s:o}", "pid", (int)s->pid, "start_time",
			 j_real(s->start_time), "mode", hf_mode_name(s->mode), "calls", calls);
}

json_t *hf_json_histograms(const struct hf_snapshot *s)
{
	if (!s->histogram_known)
		return json_pack("{s:n,s:n}", "requests", "live");
	return json_pack("{s:o,s:o}", "requests", j_buckets(s->histogram.requests, "count"), "live",
			 j_buckets(s->histogram.live, "count"));
}

static json_t *j_arena(const struct hf_arena *a)
{
	char addr[24];

	snprintf(addr, sizeof(addr), "0x%" PRIx64, a->address);
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o}}", "arena", addr, "kind",
			 a->kind == HF_ARENA_MAIN ? "main" : "thread", "heaps", j_u64(a->heaps),
			 "mapped_bytes", j_u64(a->mapped_bytes), "threads", j_u64(a->threads),
			 "lock", "acquisitions", j_u64(a->lock.acquisitions), "contended",
			 j_u64(a->lock.contended), "wait_seconds", j_real(a->lock.wait_seconds),
			 "max_wait_seconds", j_real(a->lock.max_wait_seconds));
}

json_t *hf_json_arenas(const struct hf_snapshot *s)
{
	json_t *arr = json_array();
	uint32_t n = s->nr_arenas < HF_MAX_ARENAS ? s->nr_arenas : HF_MAX_ARENAS;

	if (!arr)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		if (json_array_append_new(arr, j_arena(&s->arenas[i]))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* cgroup, pod_uid and container_id are null where unknown (cgroup.h). */
static json_t *j_identity(const struct hf_snapshot *s)
{
	return json_pack("{s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:s}", "pid", (int)s->pid, "at",
			 j_real(s->at), "start_time", j_real(s->start_time), "comm", j_text(s->comm),
			 "exe", j_text_or_null(s->exe), "cgroup", j_text_or_null(s->cgroup.path),
			 "pod_uid", j_str_or_null(s->cgroup.pod_uid), "container_id",
			 j_str_or_null(s->cgroup.container_id), "state", hf_state_name(s->state),
			 "mode", hf_mode_name(s->mode));
}

static json_t *j_heap(const struct hf_heap *h)
{
	const struct hf_peaks *p = &h->peak;

	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o}}",
			 "live_allocations", j_u64(h->live_allocations), "requested_bytes",
			 j_u64(h->requested_bytes), "allocated_bytes", j_u64(h->allocated_bytes),
			 "mapped_bytes", j_mapped(&h->mapped_bytes), "resident_bytes",
			 j_u64(h->resident_bytes), "free_bytes", j_u64(h->free_bytes),
			 "released_bytes", j_u64(h->released_bytes), "process_rss_bytes",
			 j_u64(h->process_rss_bytes), "peak", "requested_bytes",
			 j_peak(&p->requested_bytes), "allocated_bytes",
			 j_peak(&p->allocated_bytes), "resident_bytes", j_peak(&p->resident_bytes),
			 "live_allocations", j_peak(&p->live_allocations));
}

static json_t *j_fragmentation(const struct hf_fragmentation *f)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "ratio", j_real(f->ratio),
			 "internal_ratio", j_real(f->internal_ratio), "external_ratio",
			 j_real(f->external_ratio), "internal_bytes", j_u64(f->internal_bytes),
			 "external_bytes", j_u64(f->external_bytes), "largest_free_chunk_bytes",
			 j_u64(f->largest_free_chunk_bytes), "free_chunks", j_u64(f->free_chunks));
}

static json_t *j_counters(const struct hf_counters *c)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "malloc",
			 j_u64(c->malloc), "calloc", j_u64(c->calloc), "realloc", j_u64(c->realloc),
			 "free", j_u64(c->free), "memalign", j_u64(c->memalign), "failed",
			 j_u64(c->failed), "brk", j_u64(c->brk), "mmap", j_u64(c->mmap), "munmap",
			 j_u64(c->munmap), "mremap", j_u64(c->mremap), "madvise",
			 j_u64(c->madvise));
}

static json_t *j_count(const struct hf_census_count *c)
{
	return json_pack("{s:o,s:o}", "bytes", j_u64(c->bytes), "chunks", j_u64(c->chunks));
}

_Static_assert(HF_CENSUS_SIZE_BUCKETS == HF_HIST_BUCKETS,
	       "the free-chunk sizes share the size histograms' buckets");

/* [{"le":16,"chunks":N,"bytes":N},...,{"le":null,...}], per bucket. */
static json_t *j_census_sizes(const struct hf_census_count *sizes)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (int i = 0; i < HF_CENSUS_SIZE_BUCKETS; i++) {
		json_t *le = i < HF_CENSUS_SIZE_BUCKETS - 1
				     ? json_integer((json_int_t)hf_hist_le(i))
				     : json_null();

		if (json_array_append_new(arr, json_pack("{s:o,s:o,s:o}", "le", le, "chunks",
							 j_u64(sizes[i].chunks), "bytes",
							 j_u64(sizes[i].bytes)))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *j_census_free(const struct hf_census_totals *t)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o},s:o}", "bytes", j_u64(t->free.bytes),
			 "chunks", j_u64(t->free.chunks), "largest_bytes",
			 j_u64(t->free_largest_bytes), "bins", j_count(&t->bins), "fastbins",
			 j_count(&t->fastbins), "tcache", j_count(&t->tcache), "top", "bytes",
			 j_u64(t->top_bytes), "sizes", j_census_sizes(t->free_sizes));
}

static json_t *j_census_pages(const struct hf_census_totals *t)
{
	return json_pack("{s:o,s:o,s:o,s:o}", "resident_bytes", j_u64(t->resident_bytes),
			 "pinned_bytes", j_u64(t->pinned_bytes), "pinned_free_bytes",
			 j_u64(t->pinned_free_bytes), "releasable_bytes",
			 j_u64(t->releasable_bytes));
}

/* The list's census: its state, when, and its pages where it is complete. */
static json_t *j_census_summary(const struct hf_census *c)
{
	if (c->state == HF_CENSUS_NONE)
		return json_null();
	return json_pack("{s:s,s:o,s:o}", "state", hf_census_state_name(c->state), "at",
			 j_real(c->at), "pages",
			 c->state == HF_CENSUS_COMPLETE ? j_census_pages(&c->total) : json_null());
}

static void hex(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "0x%" PRIx64, v);
}

static json_t *j_census_arena(const struct hf_census_arena *a)
{
	bool complete = a->state == HF_CENSUS_COMPLETE;
	char addr[24];

	hex(addr, sizeof(addr), a->address);
	/* A partial arena's numbers are not known: they are left out of the totals too. */
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "arena", addr, "kind",
			 a->main ? "main" : "thread", "state", hf_census_state_name(a->state),
			 "reason", complete ? json_null() : j_text(a->reason), "system_bytes",
			 complete ? j_u64(a->t.system_bytes) : json_null(), "in_use",
			 complete ? j_count(&a->t.in_use) : json_null(), "free",
			 complete ? j_census_free(&a->t) : json_null(), "pages",
			 complete ? j_census_pages(&a->t) : json_null());
}

json_t *hf_json_census(const struct hf_snapshot *s, const struct hf_census_detail *d)
{
	const struct hf_census *c = &s->census;
	bool walked = c->state == HF_CENSUS_COMPLETE || c->state == HF_CENSUS_PARTIAL;
	json_t *arenas, *doc;

	if (c->state == HF_CENSUS_NONE)
		return json_null();
	arenas = json_array();
	for (size_t i = 0; arenas && d && walked && i < d->nr_arenas; i++) {
		if (json_array_append_new(arenas, j_census_arena(&d->arenas[i]))) {
			json_decref(arenas);
			arenas = NULL;
		}
	}
	if (!arenas)
		return NULL;
	doc = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "state", hf_census_state_name(c->state),
			"reason", c->reason[0] ? j_text(c->reason) : json_null(), "at",
			j_real(c->at), "duration_seconds", j_real(c->duration_seconds),
			"bytes_read", walked ? j_u64(c->bytes_read) : json_null(), "retries",
			walked ? j_u64(c->retries) : json_null(), "stopped_seconds",
			j_real(c->stopped_seconds));
	if (!doc) {
		json_decref(arenas);
		return NULL;
	}
	if (json_object_set_new(doc, "in_use", walked ? j_count(&c->total.in_use) : json_null()) ||
	    json_object_set_new(doc, "free", walked ? j_census_free(&c->total) : json_null()) ||
	    json_object_set_new(doc, "pages", walked ? j_census_pages(&c->total) : json_null()) ||
	    json_object_set_new(doc, "mmapped", walked ? j_count(&c->mmapped) : json_null()) ||
	    json_object_set_new(doc, "arenas", arenas)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

json_t *hf_json_heapmap(const struct hf_snapshot *s, const struct hf_census_detail *d)
{
	const struct hf_census *c = &s->census;
	json_t *regions = json_array();

	if (!regions)
		return NULL;
	for (size_t i = 0; d && i < d->nr_regions; i++) {
		const struct hf_heapmap_region *r = &d->regions[i];
		json_t *cells = json_array(), *reg;
		char arena[24], start[24], end[24];
		bool main = false;

		for (size_t a = 0; a < d->nr_arenas; a++)
			if (d->arenas[a].address == r->arena)
				main = d->arenas[a].main;
		for (uint32_t k = 0; cells && k < r->nr_cells; k++) {
			const struct hf_heapmap_cell *cell = &r->cells[k];

			if (json_array_append_new(cells, json_pack("[I,I,I]", (json_int_t)cell->in_use,
								   (json_int_t)cell->free,
								   (json_int_t)cell->resident))) {
				json_decref(cells);
				cells = NULL;
			}
		}
		hex(arena, sizeof(arena), r->arena);
		hex(start, sizeof(start), r->start);
		hex(end, sizeof(end), r->end);
		reg = cells ? json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "arena", arena, "kind",
					main ? "main" : "thread", "start", start, "end", end,
					"cell_bytes", (json_int_t)r->cell_bytes, "cells", cells)
			    : NULL;
		if (!reg || json_array_append_new(regions, reg)) {
			json_decref(regions);
			return NULL;
		}
	}
	return json_pack("{s:i,s:s,s:o,s:o,s:[s,s,s],s:o}", "pid", (int)s->pid, "state",
			 hf_census_state_name(c->state), "reason",
			 c->reason[0] ? j_text(c->reason) : json_null(), "at",
			 d ? j_real(d->at) : json_null(), "cell_fields", "in_use_bytes",
			 "free_bytes", "resident_bytes", "regions", regions);
}

json_t *hf_json_process(const struct hf_snapshot *s, const struct hf_census_detail *d)
{
	json_t *doc = j_identity(s);

	if (!doc)
		return NULL;
	if (json_object_set_new(doc, "allocator",
				json_pack("{s:s,s:o,s:o}", "name",
					  hf_allocator_name(s->allocator.kind), "path",
					  j_text_or_null(s->allocator.path), "build_id",
					  j_str_or_null(s->allocator.build_id))) ||
	    json_object_set_new(doc, "tracing",
				json_pack("{s:o,s:o,s:o}", "since", j_real(s->tracing.since),
					  "dropped_events", j_u64(s->tracing.dropped_events),
					  "live_map_entries",
					  j_u64(s->tracing.live_map_entries))) ||
	    json_object_set_new(doc, "counters", j_counters(&s->counters)) ||
	    json_object_set_new(doc, "heap", j_heap(&s->heap)) ||
	    json_object_set_new(doc, "fragmentation", j_fragmentation(&s->fragmentation)) ||
	    json_object_set_new(doc, "histogram", hf_json_histograms(s)) ||
	    json_object_set_new(doc, "census", hf_json_census(s, d)) ||
	    json_object_set_new(doc, "arenas", hf_json_arenas(s))) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

json_t *hf_json_process_summary(const struct hf_snapshot *s)
{
	const struct hf_heap *h = &s->heap;
	const struct hf_fragmentation *f = &s->fragmentation;
	json_t *doc = j_identity(s);

	if (!doc)
		return NULL;
	if (json_object_set_new(doc, "allocator",
				json_string(hf_allocator_name(s->allocator.kind))) ||
	    json_object_set_new(doc, "heap",
				json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "live_allocations",
					  j_u64(h->live_allocations), "requested_bytes",
					  j_u64(h->requested_bytes), "allocated_bytes",
					  j_u64(h->allocated_bytes), "mapped_bytes",
					  j_mapped(&h->mapped_bytes), "resident_bytes",
					  j_u64(h->resident_bytes), "free_bytes",
					  j_u64(h->free_bytes))) ||
	    json_object_set_new(doc, "fragmentation",
				json_pack("{s:o,s:o,s:o}", "ratio", j_real(f->ratio),
					  "internal_ratio", j_real(f->internal_ratio),
					  "external_ratio", j_real(f->external_ratio))) ||
	    json_object_set_new(doc, "census", j_census_summary(&s->census))) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}
