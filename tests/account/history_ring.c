// SPDX-License-Identifier: MIT
/*
 * The history ring (daemon/history.h): bounded, one point per step, the
 * oldest dropped first, copies newest-last, and a point of a snapshot that
 * says unknown where the snapshot does and takes the census only when it is
 * complete.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "history.h"

static struct hf_history_point at(double t, uint64_t resident)
{
	struct hf_history_point p;

	memset(&p, 0, sizeof(p));
	p.at = t;
	p.v[HF_HIST_RESIDENT] = resident;
	return p;
}

static void test_bounds_and_eviction(void)
{
	struct hf_history h;
	struct hf_history_point p, out[8];
	size_t n;

	CHECK(hf_history_init(&h, 0, 1) == -EINVAL);
	CHECK(hf_history_init(&h, 4, NAN) == -EINVAL);
	CHECK(hf_history_init(&h, 4, -1) == -EINVAL);
	CHECK_EQ_U64(hf_history_init(&h, 4, 5), 0);
	CHECK_EQ_U64(hf_history_copy(&h, out, 8), 0);
	/* One point per step: 100, then 105 (not 102), then 110 ... */
	p = at(100, 1);
	CHECK(hf_history_add(&h, &p));
	p = at(102, 2);
	CHECK(!hf_history_add(&h, &p));
	p = at(105, 3);
	CHECK(hf_history_add(&h, &p));
	/* Not newer: refused, whatever its numbers. */
	p = at(104, 4);
	CHECK(!hf_history_add(&h, &p));
	p = at(NAN, 4);
	CHECK(!hf_history_add(&h, &p));
	for (int i = 0; i < 4; i++) {
		p = at(110 + 5 * i, (uint64_t)(10 + i));
		CHECK(hf_history_add(&h, &p));
	}
	/* Capacity 4: the oldest two went. */
	n = hf_history_copy(&h, out, 8);
	CHECK_EQ_U64(n, 4);
	for (size_t i = 0; i < n; i++) {
		CHECK(out[i].at == 110 + 5 * (double)i);
		CHECK_EQ_U64(out[i].v[HF_HIST_RESIDENT], 10 + i);
	}
	/* A short buffer gets the newest points, oldest of them first. */
	n = hf_history_copy(&h, out, 2);
	CHECK_EQ_U64(n, 2);
	CHECK(out[0].at == 120 && out[1].at == 125);
	hf_history_free(&h);
	CHECK(h.points == NULL && h.n == 0);
	/* A freed (or never made) ring keeps nothing and says so. */
	p = at(200, 1);
	CHECK(!hf_history_add(&h, &p));
}

static void test_point_of_a_snapshot(void)
{
	static struct hf_snapshot s;
	struct hf_history_point p;

	hf_snapshot_init(&s);
	s.heap.resident_bytes = 1000;
	s.heap.requested_bytes = HF_UNKNOWN;
	s.fragmentation.external_ratio = 0.25;
	s.census.state = HF_CENSUS_PARTIAL;
	s.census.total.in_use.bytes = 77;
	hf_history_point_of(&s, 1234.5, &p);
	CHECK(p.at == 1234.5);
	CHECK_EQ_U64(p.v[HF_HIST_RESIDENT], 1000);
	CHECK_EQ_U64(p.v[HF_HIST_REQUESTED], HF_UNKNOWN);
	CHECK(p.ratio[HF_HIST_EXTERNAL_RATIO] == 0.25);
	CHECK(isnan(p.ratio[HF_HIST_RATIO]));
	/* A partial census's totals leave arenas out: not history. */
	CHECK_EQ_U64(p.v[HF_HIST_CENSUS_IN_USE], HF_UNKNOWN);
	s.census.state = HF_CENSUS_COMPLETE;
	s.census.total.pinned_free_bytes = 55;
	hf_history_point_of(&s, 1235, &p);
	CHECK_EQ_U64(p.v[HF_HIST_CENSUS_IN_USE], 77);
	CHECK_EQ_U64(p.v[HF_HIST_CENSUS_PINNED_FREE], 55);
	/* Every field and ratio has a document name. */
	for (int f = 0; f < HF_HISTORY_FIELDS; f++)
		CHECK(strchr(hf_history_field_name(f), '.') != NULL);
	for (int r = 0; r < HF_HISTORY_RATIOS; r++)
		CHECK(strncmp(hf_history_ratio_name(r), "fragmentation.", 14) == 0);
	CHECK_STR_EQ(hf_history_field_name(HF_HISTORY_FIELDS), "unknown");
}

int main(void)
{
	test_bounds_and_eviction();
	test_point_of_a_snapshot();
	return hf_test_done();
}
