/* SPDX-License-Identifier: MIT */
/*
 * history.h - a bounded ring of a process's past numbers, so that a chart
 * opened now shows the last hour, not only what comes after it.
 *
 * A point is what the charts draw, not a whole snapshot (a snapshot is tens
 * of kilobytes; a point is HF_HISTORY_FIELDS numbers): heap composition,
 * fragmentation, the census's page classes.  The registry adds one from each
 * snapshot; the ring keeps one point per step at most (the first of each
 * step, give or take a tenth), and at most capacity points, dropping the
 * oldest.  Memory is
 * capacity * sizeof(struct hf_history_point) per process, allocated once.
 */
#ifndef HF_HISTORY_H
#define HF_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

/* The numbers of a point, in the order of hf_history_field_names(). */
enum hf_history_field {
	HF_HIST_RESIDENT,
	HF_HIST_PROCESS_RSS,
	HF_HIST_REQUESTED,
	HF_HIST_ALLOCATED,
	HF_HIST_FREE,
	HF_HIST_RELEASED,
	HF_HIST_CENSUS_IN_USE,
	HF_HIST_CENSUS_BINS,
	HF_HIST_CENSUS_FASTBINS,
	HF_HIST_CENSUS_TCACHE,
	HF_HIST_CENSUS_TOP,
	HF_HIST_CENSUS_RESIDENT,
	HF_HIST_CENSUS_PINNED,
	HF_HIST_CENSUS_PINNED_FREE,
	HF_HIST_CENSUS_RELEASABLE,
	HF_HISTORY_FIELDS,
};

/* Ratios are kept apart: they are doubles, NaN when unknown. */
enum hf_history_ratio {
	HF_HIST_RATIO,
	HF_HIST_INTERNAL_RATIO,
	HF_HIST_EXTERNAL_RATIO,
	HF_HISTORY_RATIOS,
};

struct hf_history_point {
	double at;                           /* Unix seconds of the snapshot */
	uint64_t v[HF_HISTORY_FIELDS];       /* HF_UNKNOWN where not known */
	double ratio[HF_HISTORY_RATIOS];     /* NaN where not known */
};

/* Each field's JSON name: the snapshot field it copies ("heap.resident_bytes", ...). */
const char *hf_history_field_name(enum hf_history_field f);
const char *hf_history_ratio_name(enum hf_history_ratio r);

/* Points per process at most: 720 × 152 bytes = 107 KiB. */
#define HF_HISTORY_MAX_POINTS 720

struct hf_history {
	double step;     /* seconds between kept points, at least */
	size_t capacity; /* points kept at most */
	size_t start;    /* the oldest point's slot */
	size_t n;        /* points held */
	struct hf_history_point *points;
};

/* A ring of capacity points at least step seconds apart; -ENOMEM, -EINVAL. */
int hf_history_init(struct hf_history *h, size_t capacity, double step);
void hf_history_free(struct hf_history *h);

/* The point of a snapshot taken at (census numbers only from a complete census). */
void hf_history_point_of(const struct hf_snapshot *s, double at, struct hf_history_point *out);

/*
 * Adds p unless the newest point is less than 9/10 of a step before it (or
 * p is not newer at all); the oldest point goes when the ring is full.
 * Returns whether p was kept.
 */
bool hf_history_add(struct hf_history *h, const struct hf_history_point *p);

/* Copies the points, oldest first, into out[0..max); returns how many. */
size_t hf_history_copy(const struct hf_history *h, struct hf_history_point *out, size_t max);

#endif /* HF_HISTORY_H */
