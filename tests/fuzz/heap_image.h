/* SPDX-License-Identifier: MIT */
/*
 * heap_image.h - a heap image: what the heap census walker (daemon/glibc/
 * heap_walk.h) read of one real process, with the parameters the room
 * found and the verdict the walk gave, so that the walk can be run again
 * without the process: replayed by census_images_replay, mutated by the
 * fuzzer (fuzz_census).  tests/fuzz/census_capture.c writes them.
 *
 * The format, version 1.  Every number is little-endian; offsets in bytes.
 *
 *     0  magic             8 bytes "HFHEAPIM"
 *     8  u32 version       1
 *    12  u32 layout        0: glibc 2.36 (hf_layout_glibc_2_36), 1: libptm
 *    16  u32 page_size     4096, the only size accepted
 *    20  u32 flags         bit 0: tcache_key is known; no other bit
 *    24  u32 mstate_read   the layout's numbers that libptm's books set;
 *    28  u32 arena_size      for glibc they must equal the table's, for
 *    32  u32 heap_info_size  libptm they must pass the bounds its room
 *    36  u32 trim_keep       accepts (daemon/libptm/ptm_books.c)
 *    40  u32 main_segments_off  0 for glibc
 *    44  u32 retries       at most HF_IMAGE_MAX_RETRIES
 *    48  u64 sbrk_base
 *    56  u64 tcache_key
 *    64  u64 tcache_max_csize  at most 1 MiB
 *    72  u32 nr_arenas     1 to HF_IMAGE_MAX_ARENAS
 *    76  u32 nr_vmas       0 to HF_IMAGE_MAX_VMAS
 *    80  u32 nr_pages      0 to HF_IMAGE_MAX_PAGES
 *    84  u32 state         the walk's verdict: 1 complete, 2 partial
 *    88  u32 nr_arenas     ... its arenas, and how many were partial
 *    92  u32 nr_partial
 *    96  reason            200 bytes, NUL-terminated, zero-padded
 *   296  totals            22 u64, struct hf_census_totals's fields in
 *                          declaration order (system_bytes first,
 *                          pinned_in_use_bytes last)
 *   472  arenas            nr_arenas u64, main first
 *        vmas              nr_vmas pairs of u64 start, end: page-aligned,
 *                          sorted, not overlapping, HF_IMAGE_MAX_VMA_BYTES
 *                          in all at most
 *        pages             nr_pages of: u64 address (page-aligned, strictly
 *                          increasing), u32 state (0, HF_PAGE_DATA, or
 *                          HF_PAGE_DATA | HF_PAGE_RESIDENT), u32 zero, then
 *                          the page's 4096 bytes when its state has
 *                          HF_PAGE_DATA
 *        end               nothing may follow the last page
 *
 * A page without data reads as zeros, like a page a process never touched.
 * The caps bound what a fuzzed image can make the walker allocate and do:
 * the walker's memory follows the size of the heaps, which lie in the
 * writable mappings, whose total size is therefore capped.
 */
#ifndef HF_HEAP_IMAGE_H
#define HF_HEAP_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "census.h"
#include "heap_walk.h"

#define HF_IMAGE_MAGIC         "HFHEAPIM"
#define HF_IMAGE_VERSION       1
#define HF_IMAGE_PAGE          4096u
#define HF_IMAGE_MAX_ARENAS    64
#define HF_IMAGE_MAX_VMAS      1024
#define HF_IMAGE_MAX_PAGES     8192
#define HF_IMAGE_MAX_VMA_BYTES (1ull << 30)
#define HF_IMAGE_MAX_RETRIES   3

enum hf_image_layout {
	HF_IMAGE_GLIBC_2_36 = 0,
	HF_IMAGE_LIBPTM = 1,
};

/* A parsed image: params and mem are ready for hf_heap_walk. */
struct hf_heap_image {
	struct hf_ptmalloc_layout layout;
	struct hf_walk_params params; /* points at layout, arenas and vmas */
	uint64_t *arenas;
	struct hf_vma *vmas;
	struct hf_image_segment *segs; /* each run of adjacent pages */
	uint8_t *bytes;                /* every page's bytes, in order */
	uint8_t *states;
	struct hf_mem_image mem; /* for hf_mem_image_init */
	/* The capture's verdict: state, reason, nr_arenas, nr_partial and total. */
	struct hf_census result;
};

/* Parses len bytes of data into *img; 0, or -EINVAL for anything amiss, or -ENOMEM. */
int hf_heap_image_parse(const void *data, size_t len, struct hf_heap_image *img);
/* NULL-safe on what parse left. */
void hf_heap_image_free(struct hf_heap_image *img);

/*
 * Whether the free-chunk size histogram (not stored in images) adds up to
 * the bin, fastbin and thread-cache chunks, and each bucket holds only
 * sizes that fit it.
 */
bool hf_heap_image_sizes_add_up(const struct hf_census_totals *t);

/*
 * Blocks for the walk's pinning attribution (census.h), made up from the
 * image: a block at user address a + 16 for every 16-aligned a in its pages
 * (one in every `every` of them), its site (a / 16) % nr_sites.  With every
 * = 1 each in-use chunk has a block, so nothing is "(before attach)".  Caps
 * the blocks at 4 Mi; -ENOMEM otherwise.  Free with hf_census_sites_free().
 */
int hf_heap_image_sites(const struct hf_heap_image *img, unsigned every, size_t nr_sites,
			struct hf_census_sites **out);

/* One page for the writer: data is page_size bytes when state has HF_PAGE_DATA. */
struct hf_image_page {
	uint64_t addr;
	uint8_t state;
	const uint8_t *data;
};

/*
 * Writes an image of a walk: its parameters (layout must be glibc 2.36's or
 * libptm's), its verdict, and the pages, sorted by address.  0 or a
 * negative errno; -EINVAL for what the parser would refuse.
 */
int hf_heap_image_write(FILE *f, const struct hf_walk_params *p, const struct hf_census *result,
			const struct hf_image_page *pages, size_t nr_pages);

#endif /* HF_HEAP_IMAGE_H */
