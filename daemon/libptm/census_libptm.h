/* SPDX-License-Identifier: MIT */
/*
 * census_libptm.h - libptm's heap census (census.h), the room's census
 * operation.  libptm keeps glibc's chunk layout, so its heap is walked by
 * glibc's walker (daemon/glibc/heap_walk.c); what glibc's census must dig
 * out of libc (main_arena, mp_, tcache_key), libptm publishes in its books
 * block (ptm_stats_abi.h, version 4): its arenas from the books' record
 * list, the main arena's regions from its region list, the thread caches'
 * key and size limit, the trim rule's kept bytes.  A libptm older than ABI
 * version 4 gets "unavailable".
 */
#ifndef HF_CENSUS_LIBPTM_H
#define HF_CENSUS_LIBPTM_H

#include "census.h"

int hf_libptm_census(const struct hf_census_job *job, void **cache, struct hf_census *out,
		     struct hf_census_detail **detail);
void hf_libptm_census_forget(void *cache);

#endif /* HF_CENSUS_LIBPTM_H */
