// SPDX-License-Identifier: MIT
/*
 * history.c - the ring of history.h.
 */
#include "history.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* README.md states the memory a history takes from this size. */
_Static_assert(sizeof(struct hf_history_point) == 152, "a history point is 152 bytes");

static const char *const field_names[HF_HISTORY_FIELDS] = {
	[HF_HIST_RESIDENT] = "heap.resident_bytes",
	[HF_HIST_PROCESS_RSS] = "heap.process_rss_bytes",
	[HF_HIST_REQUESTED] = "heap.requested_bytes",
	[HF_HIST_ALLOCATED] = "heap.allocated_bytes",
	[HF_HIST_FREE] = "heap.free_bytes",
	[HF_HIST_RELEASED] = "heap.released_bytes",
	[HF_HIST_CENSUS_IN_USE] = "census.in_use.bytes",
	[HF_HIST_CENSUS_BINS] = "census.free.bins.bytes",
	[HF_HIST_CENSUS_FASTBINS] = "census.free.fastbins.bytes",
	[HF_HIST_CENSUS_TCACHE] = "census.free.tcache.bytes",
	[HF_HIST_CENSUS_TOP] = "census.free.top.bytes",
	[HF_HIST_CENSUS_RESIDENT] = "census.pages.resident_bytes",
	[HF_HIST_CENSUS_PINNED] = "census.pages.pinned_bytes",
	[HF_HIST_CENSUS_PINNED_FREE] = "census.pages.pinned_free_bytes",
	[HF_HIST_CENSUS_RELEASABLE] = "census.pages.releasable_bytes",
};

static const char *const ratio_names[HF_HISTORY_RATIOS] = {
	[HF_HIST_RATIO] = "fragmentation.ratio",
	[HF_HIST_INTERNAL_RATIO] = "fragmentation.internal_ratio",
	[HF_HIST_EXTERNAL_RATIO] = "fragmentation.external_ratio",
};

const char *hf_history_field_name(enum hf_history_field f)
{
	return (unsigned int)f < HF_HISTORY_FIELDS ? field_names[f] : "unknown";
}

const char *hf_history_ratio_name(enum hf_history_ratio r)
{
	return (unsigned int)r < HF_HISTORY_RATIOS ? ratio_names[r] : "unknown";
}

int hf_history_init(struct hf_history *h, size_t capacity, double step)
{
	memset(h, 0, sizeof(*h));
	if (!capacity || !(step >= 0) || !isfinite(step))
		return -EINVAL;
	h->points = calloc(capacity, sizeof(*h->points));
	if (!h->points)
		return -ENOMEM;
	h->capacity = capacity;
	h->step = step;
	return 0;
}

void hf_history_free(struct hf_history *h)
{
	free(h->points);
	memset(h, 0, sizeof(*h));
}

void hf_history_point_of(const struct hf_snapshot *s, double at, struct hf_history_point *out)
{
	const struct hf_census_totals *t = &s->census.total;
	bool census = s->census.state == HF_CENSUS_COMPLETE;

	out->at = at;
	out->v[HF_HIST_RESIDENT] = s->heap.resident_bytes;
	out->v[HF_HIST_PROCESS_RSS] = s->heap.process_rss_bytes;
	out->v[HF_HIST_REQUESTED] = s->heap.requested_bytes;
	out->v[HF_HIST_ALLOCATED] = s->heap.allocated_bytes;
	out->v[HF_HIST_FREE] = s->heap.free_bytes;
	out->v[HF_HIST_RELEASED] = s->heap.released_bytes;
	out->v[HF_HIST_CENSUS_IN_USE] = census ? t->in_use.bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_BINS] = census ? t->bins.bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_FASTBINS] = census ? t->fastbins.bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_TCACHE] = census ? t->tcache.bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_TOP] = census ? t->top_bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_RESIDENT] = census ? t->resident_bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_PINNED] = census ? t->pinned_bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_PINNED_FREE] = census ? t->pinned_free_bytes : HF_UNKNOWN;
	out->v[HF_HIST_CENSUS_RELEASABLE] = census ? t->releasable_bytes : HF_UNKNOWN;
	out->ratio[HF_HIST_RATIO] = s->fragmentation.ratio;
	out->ratio[HF_HIST_INTERNAL_RATIO] = s->fragmentation.internal_ratio;
	out->ratio[HF_HIST_EXTERNAL_RATIO] = s->fragmentation.external_ratio;
}

bool hf_history_add(struct hf_history *h, const struct hf_history_point *p)
{
	if (!h->points || !isfinite(p->at))
		return false;
	if (h->n) {
		const struct hf_history_point *last =
			&h->points[(h->start + h->n - 1) % h->capacity];

		/* Snapshots due a step apart come a little early or late. */
		if (!(p->at > last->at) || p->at - last->at < 0.9 * h->step)
			return false;
	}
	if (h->n == h->capacity) {
		h->points[h->start] = *p;
		h->start = (h->start + 1) % h->capacity;
	} else {
		h->points[(h->start + h->n) % h->capacity] = *p;
		h->n++;
	}
	return true;
}

size_t hf_history_copy(const struct hf_history *h, struct hf_history_point *out, size_t max)
{
	size_t n = h->n < max ? h->n : max, skip = h->n - n;

	/* The newest max points: the oldest ones are what a short buffer loses. */
	for (size_t i = 0; i < n; i++)
		out[i] = h->points[(h->start + skip + i) % h->capacity];
	return n;
}
