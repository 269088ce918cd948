/* SPDX-License-Identifier: MIT */
/*
 * census.h - the heap census: every chunk and every resident page of a
 * process's heap, read from outside the process, with no probe on any
 * allocator call.
 *
 * A room (room.h) that can walk its allocator's heap fills a struct
 * hf_census (the process's totals, kept in its snapshot) and a struct
 * hf_census_detail (each arena's numbers and the heap map: kept beside the
 * snapshot, shared by reference, because it is large and only two routes
 * need it).  Definitions, exactly as the walker computes them
 * (daemon/glibc/heap_walk.c), are in README.md's "The heap census".
 */
#ifndef HF_CENSUS_H
#define HF_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct hf_alloc_target;

enum hf_census_state {
	HF_CENSUS_NONE = 0, /* not walked yet: the document shows census null */
	HF_CENSUS_COMPLETE,
	HF_CENSUS_PARTIAL,
	HF_CENSUS_UNAVAILABLE,
};

/* "complete", "partial", "unavailable" (and "none"). */
const char *hf_census_state_name(enum hf_census_state s);

#define HF_CENSUS_REASON_LEN 200

struct hf_census_count {
	uint64_t bytes;
	uint64_t chunks;
};

/*
 * The free-chunk size histogram's log2 buckets, the size histograms' own
 * (snapshot.h's HF_HIST_BUCKETS): bucket i < HF_CENSUS_SIZE_BUCKETS - 1 holds
 * chunk sizes s with 16 << (i - 1) < s <= 16 << i, bucket 0 those <= 16, the
 * last everything above 4 GiB.
 */
#define HF_CENSUS_SIZE_BUCKETS 30

static inline int hf_census_size_bucket(uint64_t size)
{
	int i = 0;

	while (i < HF_CENSUS_SIZE_BUCKETS - 1 && size > ((uint64_t)16 << i))
		i++;
	return i;
}

/* One arena's numbers, or their sum over the complete arenas of a process. */
struct hf_census_totals {
	uint64_t system_bytes; /* the arena's system_mem */
	struct hf_census_count in_use;
	struct hf_census_count free; /* bins + fastbins + tcache; top is in bytes, not chunks */
	uint64_t free_largest_bytes; /* the largest chunk in the bins (not top) */
	struct hf_census_count bins;
	struct hf_census_count fastbins;
	struct hf_census_count tcache;
	uint64_t top_bytes;
	uint64_t tops; /* arenas with a top chunk (0 or 1 for one arena) */
	/* The largest of top, binned and fastbin chunks: fragmentation.largest_free_chunk_bytes. */
	uint64_t largest_any_bytes;
	uint64_t resident_bytes;      /* resident pages of the arena's heaps */
	uint64_t pinned_bytes;        /* ... that trimming cannot return and live blocks hold */
	uint64_t pinned_free_bytes;   /* free bytes on pinned pages */
	uint64_t releasable_bytes;    /* ... that malloc_trim(0) would return now */
	uint64_t free_resident_bytes; /* free bytes on resident pages: heap.free_bytes */
	/* For the doctor: releasable bytes in the main arena's top, live bytes on pinned pages. */
	uint64_t releasable_top_bytes;
	uint64_t pinned_in_use_bytes;
	/* Bin, fastbin and thread-cache chunks (not top) by chunk size. */
	struct hf_census_count free_sizes[HF_CENSUS_SIZE_BUCKETS];
};

/*
 * The census trend for the doctor: the process's in-use and free bytes at
 * complete walks at least HF_CENSUS_TREND_SPACING seconds apart, oldest
 * first, the newest HF_CENSUS_TREND_LEN of them.
 */
#define HF_CENSUS_TREND_LEN     16
#define HF_CENSUS_TREND_SPACING 15.0

struct hf_census_point {
	double at;
	uint64_t in_use_bytes;
	uint64_t free_bytes;
};

/* The latest census of a process: what its snapshot carries. */
struct hf_census {
	enum hf_census_state state;
	char reason[HF_CENSUS_REASON_LEN]; /* "" when complete */
	double at;                         /* Unix seconds when the walk ended */
	double duration_seconds;
	double stopped_seconds; /* NaN unless --census-stop froze the target */
	uint64_t bytes_read;    /* target memory copied */
	uint64_t retries;       /* arenas walked again because they changed */
	uint32_t nr_arenas;
	uint32_t nr_partial;
	bool changing; /* an arena was partial because it changed under every copy */
	struct hf_census_totals total; /* over the complete arenas */
	struct hf_census_count mmapped; /* HF_UNKNOWN when not known */
	/* Since attach. */
	uint64_t walks;
	uint64_t partial_walks;
	/* For gated reporters: state is complete; and there has been a walk since attach. */
	bool complete;
	bool walked;
	uint32_t nr_trend;
	struct hf_census_point trend[HF_CENSUS_TREND_LEN];
};

/* One arena in the detail. */
struct hf_census_arena {
	uint64_t address;
	bool main;                  /* the main arena, else a thread arena */
	enum hf_census_state state; /* complete or partial */
	char reason[HF_CENSUS_REASON_LEN];
	struct hf_census_totals t;
};

/*
 * The heap map: per heap region, at most HF_HEAPMAP_MAX_CELLS cells of equal
 * runs of pages (the last may be shorter), each with the bytes of in-use
 * chunks, of free chunks (tcache, fastbins, bins, top) and of resident
 * pages that lie in it.
 */
#define HF_HEAPMAP_MAX_CELLS 4096

struct hf_heapmap_cell {
	uint32_t in_use;
	uint32_t free;
	uint32_t resident;
};

struct hf_heapmap_region {
	uint64_t arena;
	uint64_t start; /* page-aligned */
	uint64_t end;   /* page-aligned */
	uint64_t cell_bytes;
	uint32_t nr_cells;
	struct hf_heapmap_cell *cells;
};

/*
 * Pinning attribution (exact mode with sites): the process's live blocks
 * whose allocation site is known, and what a walk credits to each site.
 *
 * On every pinned page (census.h's totals: resident, not releasable, holding
 * a byte of an in-use, tcache or fastbin chunk) the free bytes are credited
 * to the in-use chunks on that page in proportion to each one's bytes on it,
 * by integer division, the page's remainder going to the last of them; an
 * in-use chunk's credit goes to the site of the block at its user address,
 * or to "(before attach)" when no known block is there (allocated before
 * attach, or not tracked).  A pinned page with no in-use byte is pinned by
 * cached chunks alone: its free bytes go to "(allocator caches)".  So, over
 * the complete arenas, pinned[] + before_pinned + caches_pinned is exactly
 * the census's pinned_free_bytes.
 */
struct hf_census_site_id {
	int32_t stack_id; /* bpf/heapfrag.h's hfb_site_key */
	uint64_t ret;
};

struct hf_census_block {
	uint64_t addr; /* the user address malloc returned: chunk + 16 */
	uint32_t site; /* index into ids */
};

struct hf_census_sites {
	size_t nr_sites;
	struct hf_census_site_id *ids;
	size_t nr_blocks;
	struct hf_census_block *blocks; /* sorted by addr; freed once walked */
	/* What the walk credited, over the complete arenas. */
	uint64_t *pinned; /* [nr_sites] */
	uint64_t before_pinned;
	uint64_t before_bytes;  /* in-use chunk bytes with no known block */
	uint64_t before_chunks; /* ... and their number */
	uint64_t caches_pinned;
};

/* NULL-safe. */
void hf_census_sites_free(struct hf_census_sites *s);

/*
 * Once walked and its blocks dropped: orders ids (and pinned with them) by
 * site, so that hf_census_sites_pinned() finds one in log time.
 */
int hf_census_sites_sort(struct hf_census_sites *s);
/* The bytes credited to a site of a sorted attribution; 0 when it had no live block. */
uint64_t hf_census_sites_pinned(const struct hf_census_sites *s, int32_t stack_id, uint64_t ret);

/* Immutable once published; shared by reference (hf_census_detail_get/put). */
struct hf_census_detail {
	int refs;
	double at;
	size_t nr_arenas;
	struct hf_census_arena *arenas;
	size_t nr_regions;
	struct hf_heapmap_region *regions;
	/* Pinning attribution of this walk, or NULL (no sites: passive mode, or off). */
	struct hf_census_sites *sites;
};

struct hf_census_detail *hf_census_detail_new(void);
struct hf_census_detail *hf_census_detail_get(struct hf_census_detail *d);
/* Drops a reference; the last one frees.  NULL-safe. */
void hf_census_detail_put(struct hf_census_detail *d);

struct hf_mem;
struct hf_walk_params;

/*
 * A test's window on a room's walk (heap_walk.h); the daemon sets none.
 * tests/fuzz/census_capture.c records, through it, the pages the walker
 * reads and the parameters the room found, into a heap image for the
 * fuzzer: the capture then runs the room's own discovery code, not a copy.
 */
struct hf_census_tap {
	void *ctx;
	/* The reader the walk uses instead of the room's mem (which it may wrap). */
	struct hf_mem *(*mem)(void *ctx, struct hf_mem *mem);
	/*
	 * Right after hf_heap_walk returned err: its parameters, with the cache
	 * key the walk may have learnt, and its own verdict, before the room
	 * adds what it knows beyond the walk.
	 */
	void (*walked)(void *ctx, const struct hf_walk_params *p, int err,
		       const struct hf_census *out);
};

/* What a room's census is asked to do. */
struct hf_census_job {
	pid_t pid;
	const struct hf_alloc_target *target;
	bool stop;            /* --census-stop: freeze the target for the copy */
	unsigned int retries; /* walks of an arena that keeps changing, beyond the first */
	const struct hf_census_tap *tap; /* NULL in the daemon */
	/* Pinning attribution to fill, or NULL (census.h's hf_census_sites). */
	struct hf_census_sites *sites;
};

/* Zeroes *c and marks every byte count unknown where a state says nothing yet. */
void hf_census_init(struct hf_census *c);

/* Adds an arena's totals to a process's. */
void hf_census_totals_add(struct hf_census_totals *sum, const struct hf_census_totals *t);

/*
 * Moves last's counters since attach and trend into next (a fresh walk's
 * result), counting next's walk: walks and partial_walks grow, and a
 * complete walk joins the trend when it is at least HF_CENSUS_TREND_SPACING
 * after the newest point.
 */
void hf_census_carry(const struct hf_census *last, struct hf_census *next);

#endif /* HF_CENSUS_H */
