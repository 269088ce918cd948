// SPDX-License-Identifier: MIT
/*
 * fuzz_ptm_books - the libFuzzer target for the decoder of libptm's books
 * (daemon/libptm/ptm_books.c): the stats block a libptm process exports
 * and the list of arena records it points to, read from the target's
 * memory, which the target may have scribbled on.  Each input is an image
 * of target memory: the image's address and the block's offset in it, each
 * a little-endian u64, then the image.  The seeds
 * (tests/fuzz/ptm_books/) are captured from real libptm processes by
 * ptm_books_capture; hf_ptm_books_decode reads them with the same walk that
 * reads a live process.
 *
 * Beyond not crashing: every record kept is the bytes at its address in
 * the image; the list starts with the main arena and nothing else has index
 * 0 ahead of it; the totals are the sums over the records, with nothing
 * wrapped; the regions and arenas filled from them (hf_ptm_books_fill) add
 * up.  abort() marks a result that breaks them.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptm_books.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The record fields each version has (ptm_books.c's RECORD_V*_SIZE). */
static size_t known_size(const struct hf_ptm_books *b)
{
	return b->has_largest   ? sizeof(struct ptm_abi_arena)
	       : b->has_release ? offsetof(struct ptm_abi_arena, largest_free_bytes)
				: offsetof(struct ptm_abi_arena, released_bytes);
}

static void check(const struct hf_ptm_books *b, uint64_t base, const uint8_t *image, size_t len)
{
	uint64_t main_sys = 0, arenas_sys = 0, free_b = 0, free_c = 0, released = 0, largest = 0;
	size_t known = known_size(b), n = 0;
	struct hf_arena *arenas;
	struct hf_regions regions;
	bool truncated = false;

	CHECK(b->version >= 1 && b->has_release == (b->version >= 2) &&
	      b->has_largest == (b->version >= 3) && b->has_census == (b->version >= 4));
	CHECK(b->narenas >= 1 && b->narenas <= HF_PTM_BOOKS_MAX_RECORDS);
	CHECK(b->nr_kept == (b->narenas < HF_MAX_ARENAS ? b->narenas : HF_MAX_ARENAS));
	CHECK(b->truncated == (b->narenas > HF_MAX_ARENAS));
	CHECK(b->mmapped_chunks <= b->max_mmapped_chunks &&
	      b->mmapped_bytes <= b->max_mmapped_bytes);
	for (uint32_t i = 0; i < b->nr_kept; i++) {
		const struct hf_ptm_books_arena *a = &b->arenas[i];
		uint64_t at = a->record_addr - base;

		/* The record is the image's bytes at its address, as far as this version knows. */
		CHECK(a->record_addr >= base && at <= len && len - at >= known);
		CHECK(a->record_addr % 8 == 0);
		CHECK(memcmp(image + at, &a->rec, known) == 0);
		CHECK((a->rec.index == 0) == (i == 0));
		CHECK(i + 1 == b->nr_kept ? (b->truncated || a->rec.next == 0)
					  : a->rec.next == b->arenas[i + 1].record_addr);
		CHECK(a->rec.top_bytes + a->rec.binned_bytes + a->rec.fast_bytes <=
		      a->rec.system_bytes);
		if (a->rec.index == 0)
			main_sys += a->rec.system_bytes;
		else
			arenas_sys += a->rec.system_bytes;
		free_b += a->rec.top_bytes + a->rec.binned_bytes + a->rec.fast_bytes;
		free_c += a->rec.binned_chunks + a->rec.fast_chunks + (a->rec.top_bytes ? 1 : 0);
		released += a->rec.released_bytes;
		if (a->rec.largest_free_bytes > largest)
			largest = a->rec.largest_free_bytes;
	}
	if (!b->truncated)
		CHECK(main_sys == b->main_system_bytes && arenas_sys == b->arenas_system_bytes &&
		      free_b == b->free_bytes && free_c == b->free_chunks &&
		      released == b->released_bytes && largest == b->largest_free_bytes);
	/* Every free byte is in some arena's system bytes: a sum that wrapped breaks this. */
	CHECK(b->free_bytes <= b->main_system_bytes + b->arenas_system_bytes &&
	      b->main_system_bytes + b->arenas_system_bytes >= b->main_system_bytes);

	arenas = calloc(HF_MAX_ARENAS, sizeof(*arenas));
	if (!arenas)
		return;
	memset(&regions, 0, sizeof(regions));
	hf_ptm_books_fill(b, &regions, arenas, HF_MAX_ARENAS, &n, &truncated);
	CHECK(n == b->nr_kept && truncated == b->truncated);
	{
		uint64_t s1, s2;

		/* The mapped total is its parts' sum, not a sum that wrapped. */
		CHECK(!__builtin_add_overflow(regions.mapped.brk, regions.mapped.arena, &s1) &&
		      !__builtin_add_overflow(s1, regions.mapped.mmap, &s2) &&
		      s2 == regions.mapped.total);
	}
	for (size_t i = 0; i < n; i++)
		CHECK(arenas[i].address == b->arenas[i].record_addr &&
		      arenas[i].mapped_bytes == b->arenas[i].rec.system_bytes &&
		      (arenas[i].kind == HF_ARENA_MAIN) == (i == 0));
	free(arenas);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_ptm_books *b;
	uint64_t base = 0, off = 0;
	int err;

	if (size < 16)
		return 0;
	for (int i = 7; i >= 0; i--) {
		base = base << 8 | data[i];
		off = off << 8 | data[8 + i];
	}
	b = malloc(sizeof(*b));
	if (!b)
		return 0;
	err = hf_ptm_books_decode(data + 16, size - 16, base, base + off, b);
	CHECK(err == 0 || err == -EINVAL || err == -EPROTO || err == -EAGAIN);
	if (err == 0)
		check(b, base, data + 16, size - 16);
	free(b);
	return 0;
}
