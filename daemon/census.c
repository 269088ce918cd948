// SPDX-License-Identifier: MIT
/*
 * census.c - the census's shared bookkeeping: states, the detail's
 * references, sums and the counters carried from walk to walk.  The walk
 * itself is the allocator rooms' (daemon/glibc/heap_walk.c).
 */
#include "census.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

const char *hf_census_state_name(enum hf_census_state s)
{
	switch (s) {
	case HF_CENSUS_COMPLETE:
		return "complete";
	case HF_CENSUS_PARTIAL:
		return "partial";
	case HF_CENSUS_UNAVAILABLE:
		return "unavailable";
	default:
		return "none";
	}
}

struct hf_census_detail *hf_census_detail_new(void)
{
	struct hf_census_detail *d = calloc(1, sizeof(*d));

	if (d)
		d->refs = 1;
	return d;
}

struct hf_census_detail *hf_census_detail_get(struct hf_census_detail *d)
{
	if (d)
		__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	return d;
}

void hf_census_detail_put(struct hf_census_detail *d)
{
	if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < d->nr_regions; i++)
		free(d->regions[i].cells);
	free(d->regions);
	free(d->arenas);
	hf_census_sites_free(d->sites);
	free(d);
}

struct id_pin {
	struct hf_census_site_id id;
	uint64_t pinned;
};

static int cmp_site_id(const struct hf_census_site_id *x, const struct hf_census_site_id *y)
{
	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	return x->ret < y->ret ? -1 : x->ret > y->ret;
}

static int cmp_id_pin(const void *a, const void *b)
{
	return cmp_site_id(&((const struct id_pin *)a)->id, &((const struct id_pin *)b)->id);
}

int hf_census_sites_sort(struct hf_census_sites *s)
{
	struct id_pin *v = malloc((s->nr_sites ? s->nr_sites : 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_sites; i++)
		v[i] = (struct id_pin){.id = s->ids[i], .pinned = s->pinned[i]};
	qsort(v, s->nr_sites, sizeof(*v), cmp_id_pin);
	for (size_t i = 0; i < s->nr_sites; i++) {
		s->ids[i] = v[i].id;
		s->pinned[i] = v[i].pinned;
	}
	free(v);
	return 0;
}

uint64_t hf_census_sites_pinned(const struct hf_census_sites *s, int32_t stack_id, uint64_t ret)
{
	struct hf_census_site_id want = {.stack_id = stack_id, .ret = ret};
	size_t lo = 0, hi = s->nr_sites;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_site_id(&s->ids[mid], &want);

		if (!c)
			return s->pinned[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void hf_census_sites_free(struct hf_census_sites *s)
{
	if (!s)
		return;
	free(s->ids);
	free(s->blocks);
	free(s->pinned);
	free(s);
}

void hf_census_init(struct hf_census *c)
{
	memset(c, 0, sizeof(*c));
	c->state = HF_CENSUS_NONE;
	c->at = NAN;
	c->duration_seconds = NAN;
	c->stopped_seconds = NAN;
	c->mmapped.bytes = HF_UNKNOWN;
	c->mmapped.chunks = HF_UNKNOWN;
}

static void add_count(struct hf_census_count *sum, const struct hf_census_count *c)
{
	sum->bytes += c->bytes;
	sum->chunks += c->chunks;
}

void hf_census_totals_add(struct hf_census_totals *sum, const struct hf_census_totals *t)
{
	sum->system_bytes += t->system_bytes;
	add_count(&sum->in_use, &t->in_use);
	add_count(&sum->free, &t->free);
	if (t->free_largest_bytes > sum->free_largest_bytes)
		sum->free_largest_bytes = t->free_largest_bytes;
	add_count(&sum->bins, &t->bins);
	add_count(&sum->fastbins, &t->fastbins);
	add_count(&sum->tcache, &t->tcache);
	sum->top_bytes += t->top_bytes;
	sum->tops += t->tops;
	if (t->largest_any_bytes > sum->largest_any_bytes)
		sum->largest_any_bytes = t->largest_any_bytes;
	sum->resident_bytes += t->resident_bytes;
	sum->pinned_bytes += t->pinned_bytes;
	sum->pinned_free_bytes += t->pinned_free_bytes;
	sum->releasable_bytes += t->releasable_bytes;
	sum->free_resident_bytes += t->free_resident_bytes;
	sum->releasable_top_bytes += t->releasable_top_bytes;
	sum->pinned_in_use_bytes += t->pinned_in_use_bytes;
	for (int i = 0; i < HF_CENSUS_SIZE_BUCKETS; i++)
		add_count(&sum->free_sizes[i], &t->free_sizes[i]);
}

void hf_census_carry(const struct hf_census *last, struct hf_census *next)
{
	next->walks = last->walks;
	next->partial_walks = last->partial_walks;
	next->nr_trend = last->nr_trend;
	memcpy(next->trend, last->trend, sizeof(next->trend));
	next->complete = next->state == HF_CENSUS_COMPLETE;
	next->walked = last->walked;
	if (next->state != HF_CENSUS_COMPLETE && next->state != HF_CENSUS_PARTIAL)
		return;
	next->walked = true;
	next->walks++;
	if (next->state == HF_CENSUS_PARTIAL) {
		next->partial_walks++;
		return;
	}
	if (next->nr_trend &&
	    next->at - next->trend[next->nr_trend - 1].at < HF_CENSUS_TREND_SPACING)
		return;
	if (next->nr_trend == HF_CENSUS_TREND_LEN) {
		memmove(next->trend, next->trend + 1, (HF_CENSUS_TREND_LEN - 1) * sizeof(next->trend[0]));
		next->nr_trend--;
	}
	next->trend[next->nr_trend++] = (struct hf_census_point){
		.at = next->at,
		.in_use_bytes = next->total.in_use.bytes,
		.free_bytes = next->total.free.bytes,
	};
}
