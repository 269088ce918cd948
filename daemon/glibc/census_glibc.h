/* SPDX-License-Identifier: MIT */
/*
 * census_glibc.h - glibc's heap census (census.h), the room's census
 * operation.
 *
 * What it needs beyond the heap, for the target's libc (by build-id):
 *   - the malloc layout of its glibc version (heap_walk.h's table: glibc
 *     2.36 on x86-64, read from the "release version" banner in libc);
 *     another version is unavailable, with the version in the reason;
 *   - main_arena (arena_map.h: libc6-dbg's symbol, or the verified scan);
 *   - mp_ (sbrk_base, the mmapped chunks, the cache's size limit): the local
 *     symbol of libc6-dbg's debug file, else the one 136-byte struct in
 *     libc's writable data that reads as glibc 2.36's malloc_par with
 *     sbrk_base at the start of the [heap] mapping;
 *   - tcache_key: libc6-dbg's symbol, else recognised in the heap: the
 *     second word of a chunk that looks in use, which is not an address in
 *     any mapping and is stored exactly once in libc's writable data, and
 *     remembered at that address from then on.
 * Setting HF_FORCE_CENSUS_HEURISTIC=1 in heapfragd's environment skips
 * libc6-dbg for mp_ and tcache_key (and main_arena), so both paths can be
 * tested.
 */
#ifndef HF_CENSUS_GLIBC_H
#define HF_CENSUS_GLIBC_H

#include "census.h"

int hf_glibc_census(const struct hf_census_job *job, void **cache, struct hf_census *out,
		    struct hf_census_detail **detail);
void hf_glibc_census_forget(void *cache);

#endif /* HF_CENSUS_GLIBC_H */
