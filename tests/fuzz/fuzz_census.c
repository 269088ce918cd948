// SPDX-License-Identifier: MIT
/*
 * fuzz_census - the libFuzzer target for the heap census walker
 * (daemon/glibc/heap_walk.c): each input is a heap image (heap_image.h),
 * mostly a mutated copy of one captured from a real process
 * (tests/fuzz/census/), walked as the daemon walks a live heap, heap map
 * included.
 *
 * The walker reads another process's memory, which may hold anything, so
 * whatever the image says it must return without a crash, a hang, a leak or
 * undefined behaviour (ASan, UBSan and libFuzzer's limits catch those), and
 * with a verdict that adds up: abort() below marks a walk whose numbers
 * contradict each other.  A custom mutator (at the end) keeps most mutants
 * parseable.  Built with clang by tests/fuzz/libfuzzer/; run by ctest's
 * fuzz_census_bounded and by `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heap_image.h"
#include "heap_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* Words a heap holds, or its header: flag bits, chunk sizes, the layout's numbers. */
static const uint64_t interesting[] = {
	0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 24, 32, 33, 48, 49, 64, 80, 96, 112, 128, 2200,
	2208, 4095, 4096, 4097, 65536, 1u << 20, 64u << 20, UINT32_MAX, UINT64_MAX,
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* What every census must satisfy, whatever the heap held. */
static bool consistent(int err, const struct hf_census *c, const struct hf_census_detail *d)
{
	const struct hf_census_totals *t = &c->total;
	uint64_t in_use = 0, free_b = 0, resident = 0;

	if (memchr(c->reason, '\0', sizeof(c->reason)) == NULL)
		return false;
	if (err)
		return d == NULL;
	if ((c->state != HF_CENSUS_COMPLETE && c->state != HF_CENSUS_PARTIAL) || !d ||
	    c->nr_partial > c->nr_arenas || (c->state == HF_CENSUS_PARTIAL) != (c->nr_partial > 0))
		return false;
	if (t->free.bytes != t->bins.bytes + t->fastbins.bytes + t->tcache.bytes + t->top_bytes ||
	    t->free.chunks != t->bins.chunks + t->fastbins.chunks + t->tcache.chunks ||
	    t->releasable_bytes + t->pinned_bytes > t->resident_bytes ||
	    t->pinned_free_bytes > t->pinned_bytes || t->pinned_in_use_bytes > t->pinned_bytes ||
	    t->releasable_top_bytes > t->releasable_bytes || !hf_heap_image_sizes_add_up(t))
		return false;
	for (size_t i = 0; i < d->nr_regions; i++) {
		for (uint32_t k = 0; k < d->regions[i].nr_cells; k++) {
			in_use += d->regions[i].cells[k].in_use;
			free_b += d->regions[i].cells[k].free;
			resident += d->regions[i].cells[k].resident;
		}
	}
	return in_use == t->in_use.bytes && free_b == t->free.bytes &&
	       resident == t->resident_bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_census_detail *detail = NULL;
	struct hf_census_sites *sites = NULL;
	struct hf_heap_image img;
	struct hf_census out;
	struct hf_mem mem;
	int err;

	if (hf_heap_image_parse(data, size, &img) != 0)
		return 0;
	/* A retry walks the same bytes again, after a pause: nothing to learn, time lost. */
	img.params.retries = 0;
	img.params.want_heapmap = true;
	hf_census_init(&out);
	hf_mem_image_init(&mem, &img.mem);
	err = hf_heap_walk(&mem, &img.params, &out, &detail);
	if (!consistent(err, &out, detail))
		abort();
	hf_census_detail_put(detail);
	detail = NULL;
	/*
	 * Again with pinning attribution (blocks made up from the image, one in
	 * size % 4 + 1): the credits must add up to the pinned free bytes.
	 */
	if (!err && hf_heap_image_sites(&img, (unsigned)(size % 4) + 1, 5, &sites) == 0) {
		struct hf_census again;
		uint64_t sum;

		img.params.sites = sites;
		img.params.want_heapmap = false;
		hf_census_init(&again);
		err = hf_heap_walk(&mem, &img.params, &again, NULL);
		sum = sites->before_pinned + sites->caches_pinned;
		for (size_t k = 0; k < sites->nr_sites; k++)
			sum += sites->pinned[k];
		if (!err && (sum != again.total.pinned_free_bytes ||
			     sites->before_bytes > again.total.in_use.bytes))
			abort();
		hf_census_sites_free(sites);
	}
	hf_heap_image_free(&img);
	return 0;
}

/*
 * Byte-level mutations mostly break an image's structure (and so never get
 * past the parser), and rarely touch its small header.  Half the mutations
 * are therefore one word, 4 or 8 bytes at a 4-aligned offset, a quarter of
 * them in the header, arenas and mappings: set to a value a heap or a
 * header holds, nudged by a multiple of 16, a flag bit flipped, or a copy
 * of another word of the image (a pointer into it); the size stays, so the
 * image still parses.  The other half are libFuzzer's own.
 */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	uint64_t rng = (uint64_t)seed * 0x9e3779b97f4a7c15ull | 1, v = 0, head;
	size_t off, width;

	if (size < 480 || next_rand(&rng) % 2)
		return LLVMFuzzerMutate(data, size, max_size);
	width = next_rand(&rng) % 2 ? 8 : 4;
	/* The header, the arenas and the mappings: 472 + 8 * arenas + 16 * mappings bytes. */
	memcpy(&head, data + 72, 4);
	head = 472 + 8 * (head & 0xffffffffu);
	memcpy(&v, data + 76, 4);
	head += 16 * (v & 0xffffffffu);
	if (head > size)
		head = size;
	off = next_rand(&rng) % 4 == 0 ? next_rand(&rng) % (head - width + 1)
				       : next_rand(&rng) % (size - width + 1);
	off &= ~(size_t)3;
	v = 0;
	memcpy(&v, data + off, width);
	switch (next_rand(&rng) % 4) {
	case 0:
		v = interesting[next_rand(&rng) % (sizeof(interesting) / sizeof(interesting[0]))];
		break;
	case 1:
		v += 16 * ((int64_t)(next_rand(&rng) % 9) - 4);
		break;
	case 2:
		v ^= 1ull << (next_rand(&rng) % 4);
		break;
	default:
		memcpy(&v, data + (next_rand(&rng) % (size / 8)) * 8, 8);
		v += 16 * (next_rand(&rng) % 64);
		break;
	}
	memcpy(data + off, &v, width);
	return size;
}
