/* SPDX-License-Identifier: MIT */
/*
 * sites.h - a traced process's allocation sites, as heapfragd serves them.
 *
 * In exact mode the BPF side keeps, per site (bpf/heapfrag.h's
 * hfb_site_key: the allocation call's return address and the user stack
 * above it), the blocks allocated there since attach and those still live.
 * hf_sites_build() turns that into a list: each site's frames (validated and
 * symbolised), its numbers, the age of its oldest live block, and the free
 * bytes its live blocks pin (from the latest complete census's attribution,
 * census.h).  Two sites are not call sites: "(before attach)", the in-use
 * chunks the census found that no tracked block accounts for, and
 * "(allocator caches)", the pinned pages held only by tcache and fastbin
 * chunks.  Definitions are in README.md's "Allocation sites".
 */
#ifndef HF_SITES_H
#define HF_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "snapshot.h"

struct hf_tracer;
struct hf_site_raw;
struct hf_symbolizer;

/* The ids of the two sites that are not call sites; call sites' ids are larger. */
#define HF_SITE_ID_BEFORE_ATTACH    1
#define HF_SITE_ID_ALLOCATOR_CACHES 2

struct hf_site_frame {
	uint64_t address; /* in the process */
	char *object;     /* the mapped file as the process names it; "" unknown */
	uint64_t offset;  /* the address's offset in that file (what addr2line -e takes) */
	char *function;   /* NULL unknown */
	char *file;       /* source file; NULL unknown */
	uint32_t line;    /* 0 unknown */
};

struct hf_site {
	uint64_t id;       /* stable while the process is traced */
	const char *label; /* "(before attach)", "(allocator caches)"; NULL for a call site */
	size_t nr_frames;  /* innermost first: frames[0] called the allocator */
	struct hf_site_frame *frames;
	/* HF_UNKNOWN where a site cannot know it (the two that are not call sites). */
	uint64_t requested_bytes;
	uint64_t live_bytes; /* chunk bytes */
	uint64_t live_allocations;
	uint64_t allocations;
	uint64_t frees;
	uint64_t pinned_free_bytes; /* HF_UNKNOWN without a complete census with attribution */
	double oldest_age_seconds;  /* NAN without a live block */
};

struct hf_sites {
	pid_t pid;
	size_t n;
	struct hf_site *sites;
	uint64_t total_live_bytes;        /* over every site */
	uint64_t total_pinned_free_bytes; /* HF_UNKNOWN like pinned_free_bytes */
	double census_at;                 /* the attribution's census, NAN none */
	bool sampled;                     /* estimates from the allocator's sampler */
	uint64_t sample_interval;         /* its interval in bytes, 0 unknown */
};

/*
 * One site of an allocator's sampled profile (libptm's sampler): the
 * caller the allocator reported, the user stack the kernel walked from
 * inside the allocator (innermost first; may be empty), and its estimates.
 */
#define HF_SAMPLED_STACK_DEPTH 32

struct hf_sampled_site {
	uint64_t caller;
	size_t nr_frames;
	uint64_t frames[HF_SAMPLED_STACK_DEPTH];
	int64_t live_samples;
	int64_t live_weight; /* estimated live requested bytes */
	int64_t live_blocks; /* estimated live blocks */
	uint64_t samples;    /* samples taken since attach */
};

enum hf_sites_order {
	HF_SITES_BY_LIVE,   /* live bytes, most first */
	HF_SITES_BY_PINNED, /* pinned free bytes, then live bytes */
};

/*
 * Builds pid's sites from the tracer's maps, the census detail d (may be
 * NULL) and the symbolizer (may be NULL: frames without symbols).  Returns 0
 * or a negative errno (-ENOMEM; -ESRCH when the process is gone).
 */
int hf_sites_build(struct hf_tracer *t, pid_t pid, const struct hf_census_detail *d,
		   struct hf_symbolizer *sym, struct hf_sites **out);
/*
 * pid's sites from its allocator's sampled profile (ss[0..n), sampling
 * interval bytes): each site's frames are the caller the allocator
 * reported, then the walked stack from the frame equal to it on, if it is
 * there; its live numbers are the sampler's estimates.
 */
int hf_sites_build_sampled(pid_t pid, const struct hf_sampled_site *ss, size_t n,
			   uint64_t interval, struct hf_symbolizer *sym, struct hf_sites **out);

void hf_sites_sort(struct hf_sites *s, enum hf_sites_order order);

/*
 * pid's top max sites by pinned free bytes, then live bytes, from raw[0..n)
 * (its entries of the sites map), with frame 0 named: what /metrics and the
 * doctor use.  The base_* fields are left for the caller.
 */
int hf_sites_top(struct hf_tracer *t, pid_t pid, const struct hf_site_raw *raw, size_t n,
		 const struct hf_census_detail *d, struct hf_symbolizer *sym,
		 struct hf_top_site *out, size_t max, size_t *nout);
/* NULL-safe. */
void hf_sites_free(struct hf_sites *s);

#endif /* HF_SITES_H */
