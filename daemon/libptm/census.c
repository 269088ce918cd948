// SPDX-License-Identifier: MIT
/*
 * census.c - libptm's heap census (census_libptm.h).
 */
#include "census_libptm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freeze.h"
#include "heap_walk.h"
#include "log.h"
#include "probe_site.h"
#include "ptm_books.h"
#include "snapshot.h"

#define CENSUS_RETRIES 3

struct ptm_cache {
	bool located;
	uint64_t block;
};


static void unavailable(struct hf_census *out, const char *why)
{
	out->state = HF_CENSUS_UNAVAILABLE;
	snprintf(out->reason, sizeof(out->reason), "%s", why);
}

int hf_libptm_census(const struct hf_census_job *job, void **cachep, struct hf_census *out,
		     struct hf_census_detail **detail)
{
	struct ptm_cache *c = *cachep;
	struct hf_ptm_books *b = NULL;
	struct hf_ptmalloc_layout layout = hf_layout_glibc_2_36;
	struct hf_freeze_copy fc = {.pid = job->pid};
	struct hf_walk_params p = {0};
	struct hf_mem mem = {0}, *walk_mem;
	struct hf_vma *vmas = NULL;
	uint64_t arenas[HF_MAX_ARENAS];
	size_t nr_vmas = 0;
	int err;

	if (detail)
		*detail = NULL;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		*cachep = c;
	}
	if (!c->located) {
		err = hf_ptm_books_locate(job->pid, job->target->path, &c->block);
		if (err == -ESRCH)
			return err;
		if (err) {
			unavailable(out, "libptm's books block (ptm_stats_block) was not found in "
					 "the process");
			return 0;
		}
		c->located = true;
	}
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	err = hf_ptm_books_read(job->pid, c->block, b);
	if (err == -ESRCH)
		goto cleanup;
	if (err == -EAGAIN) {
		unavailable(out, "libptm has not set its arenas up yet (no malloc so far), or an "
				 "arena's books stayed busy");
		err = 0;
		goto cleanup;
	}
	if (err) {
		unavailable(out, "libptm's books block is not readable as its ABI says");
		err = 0;
		goto cleanup;
	}
	if (!b->has_census) {
		unavailable(out, "this libptm predates its books' ABI version 4, which tells the "
				 "census where its arenas are");
		goto cleanup;
	}
	for (size_t i = 0; i < b->nr_kept; i++)
		arenas[i] = b->arenas[i].record_addr - b->census.arena_record_offset;
	err = hf_mem_process_open(job->pid, &mem);
	if (!err)
		err = hf_vmas_read(job->pid, &vmas, &nr_vmas, NULL);
	if (!err)
		err = mem.read(&mem, b->census.tcache_key_addr, &p.tcache_key, sizeof(p.tcache_key));
	if (!err)
		err = mem.read(&mem, b->census.tcache_max_csize_addr, &p.tcache_max_csize,
			       sizeof(p.tcache_max_csize));
	if (err)
		goto unreadable;
	layout.name = "libptm (glibc 2.36's chunk layout)";
	layout.arena_size = (uint32_t)b->census.arena_size;
	layout.heap_info_size = (uint32_t)b->census.heap_info_size;
	layout.trim_keep = (uint32_t)b->census.release_keep;
	layout.mstate_read = (uint32_t)(b->census.arena_segments_offset + 8);
	if (layout.mstate_read < hf_layout_glibc_2_36.mstate_read)
		layout.mstate_read = hf_layout_glibc_2_36.mstate_read;
	p.layout = &layout;
	p.page_size = b->census.page_size;
	p.arenas = arenas;
	p.nr_arenas = b->nr_kept;
	p.main_segments_off = (uint32_t)b->census.arena_segments_offset;
	p.tcache_key_known = p.tcache_key != 0;
	if (p.tcache_max_csize > (1u << 20))
		p.tcache_max_csize = 0;
	p.retries = job->retries ? job->retries : CENSUS_RETRIES;
	p.vmas = vmas;
	p.nr_vmas = nr_vmas;
	p.want_heapmap = detail != NULL;
	p.sites = job->sites;
	if (job->stop) {
		p.copy_begin = hf_freeze_copy_begin;
		p.copy_end = hf_freeze_copy_end;
		p.copy_ctx = &fc;
	}
	/* A test's tap (census.h) may wrap the reader and see the walk. */
	walk_mem = job->tap ? job->tap->mem(job->tap->ctx, &mem) : &mem;
	err = hf_heap_walk(walk_mem, &p, out, detail);
	if (job->tap)
		job->tap->walked(job->tap->ctx, &p, err, out);
	if (err)
		goto unreadable;
	if (b->truncated) {
		out->state = HF_CENSUS_PARTIAL;
		snprintf(out->reason, sizeof(out->reason),
			 "the process has more than %d arenas; the census walked the first %d",
			 HF_MAX_ARENAS, HF_MAX_ARENAS);
	}
	out->mmapped.chunks = b->mmapped_chunks;
	out->mmapped.bytes = b->mmapped_bytes;
	out->stopped_seconds = job->stop && !fc.refused ? fc.stopped : NAN;
	out->bytes_read = mem.bytes_read;
	goto cleanup;

unreadable:
	if (err == -ESRCH || err == -ENOMEM)
		goto cleanup;
	unavailable(out, err == -EPERM || err == -EACCES
				 ? "heapfragd may not read this process's memory (it needs "
				   "CAP_SYS_PTRACE, or the process is protected)"
				 : "the process's heap could not be read");
	err = 0;
cleanup:
	free(vmas);
	hf_mem_process_close(&mem);
	free(b);
	return err;
}

void hf_libptm_census_forget(void *cache)
{
	free(cache);
}
