/* SPDX-License-Identifier: MIT */
/*
 * snapshot_fixture.h - a snapshot in which nothing is known yet, for tests
 * that fill in only what they measured: every integer HF_UNKNOWN, every
 * ratio NaN, so a field a test forgets can never pass for a zero.  That is
 * exactly hf_snapshot_init(), which the daemon starts every process with.
 */
#ifndef HF_TEST_SNAPSHOT_FIXTURE_H
#define HF_TEST_SNAPSHOT_FIXTURE_H

#include "snapshot.h"

static inline void snapshot_unknown(struct hf_snapshot *s)
{
	hf_snapshot_init(s);
}

#endif /* HF_TEST_SNAPSHOT_FIXTURE_H */
