// SPDX-License-Identifier: MIT
/*
 * Pure decoding of libptm's books from a memory image: the ABI's versions
 * are read as the header says (version 1's and 2's shorter records, a future
 * version's longer ones), the sums and heapfragd's arenas come out right,
 * and every kind of garbage gives an error, never a read outside the image
 * or a walk without end.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ptm_books.h"

#define BASE        0x7f0000000000ULL
#define IMAGE_BYTES (64 * 1024)
#define RECORDS_AT  0x100
#define V1_SIZE     offsetof(struct ptm_abi_arena, released_bytes)
#define V2_SIZE     offsetof(struct ptm_abi_arena, largest_free_bytes)

static uint64_t image[IMAGE_BYTES / 8];
static struct hf_ptm_books books;

static struct ptm_abi_block *block(void)
{
	return (struct ptm_abi_block *)image;
}

/* Record k of stride bytes each, and its address in the target. */
static struct ptm_abi_arena *rec(size_t k, size_t stride)
{
	return (struct ptm_abi_arena *)((char *)image + RECORDS_AT + k * stride);
}

static uint64_t rec_addr(size_t k, size_t stride)
{
	return BASE + RECORDS_AT + k * stride;
}

/* A well-formed image of n arenas with records of stride bytes, ABI version v. */
static void build(size_t n, size_t stride, uint64_t v)
{
	memset(image, 0, sizeof(image));
	*block() = (struct ptm_abi_block){
		.magic = PTM_ABI_MAGIC,
		.version = v,
		.size = sizeof(struct ptm_abi_block),
		.arena_record_size = stride,
		.first_arena = rec_addr(0, stride),
		.narenas = n,
		.mmapped_chunks = 2,
		.mmapped_bytes = 2 * 266240,
		.max_mmapped_chunks = 5,
		.max_mmapped_bytes = 5 * 266240,
	};
	/* Versions 1 to 3 end after the mmapped fields; 4 adds what a census needs. */
	if (v < 4) {
		block()->size = PTM_ABI_BLOCK_V1_SIZE;
		memset((char *)image + PTM_ABI_BLOCK_V1_SIZE, 0xee,
		       sizeof(struct ptm_abi_block) - PTM_ABI_BLOCK_V1_SIZE);
	} else {
		block()->arena_record_offset = 2240;
		block()->arena_size = 4096;
		block()->arena_segments_offset = 2200;
		block()->heap_info_size = 48;
		block()->tcache_key_addr = BASE + 0x10000;
		block()->tcache_max_csize_addr = BASE + 0x10008;
		block()->release_keep = 88;
		block()->page_size = 4096;
	}
	for (size_t k = 0; k < n; k++) {
		struct ptm_abi_arena *a = rec(k, stride);

		*a = (struct ptm_abi_arena){
			.gen = 2 * k,
			.index = k,
			.next = k + 1 < n ? rec_addr(k + 1, stride) : 0,
			.system_bytes = 135168 * (k + 1),
			.max_system_bytes = 135168 * (k + 2),
			.top_bytes = 1000 + k,
			.binned_chunks = 4,
			.binned_bytes = 4 * 4096,
			.fast_chunks = 3,
			.fast_bytes = 3 * 48,
			.threads_attached = k == 0 ? 1 : 2,
			.lock_acquisitions = 1000 + k,
			.lock_contended = 10 + k,
			.lock_wait_ns = 1500000000,
			.lock_max_wait_ns = 250000000,
		};
		if (stride >= V2_SIZE) {
			a->release_total_bytes = 8192 * 3;
			a->reuse_total_bytes = 8192;
			a->released_bytes = 8192 * 2;
			a->release_calls = 3;
		}
		if (stride >= sizeof(*a)) {
			/* One of the binned 4 KiB chunks is the largest; arena k has k + 1 heaps.
			 */
			a->largest_free_bytes = 4096;
			a->heaps = k + 1;
		} else {
			/* What lies beyond an older record is not its version 3 fields. */
			memset((char *)a + stride, 0xee, sizeof(*a) - stride);
		}
	}
}

static int decode(void)
{
	return hf_ptm_books_decode(image, sizeof(image), BASE, BASE, &books);
}

static void version_2_books_sum_and_fill_heapfragds_structures(void)
{
	struct hf_regions regions = {.free_chunks = HF_UNKNOWN,
				     .largest_free_chunk_bytes = HF_UNKNOWN,
				     .mapped = {.brk = 7, .arena = 8, .mmap = 9}};
	struct hf_arena out[4];
	size_t n = 99;
	bool truncated = true;

	build(3, V2_SIZE, 2);
	CHECK(decode() == 0);
	CHECK_EQ_U64(books.version, 2);
	CHECK(books.has_release);
	CHECK(!books.has_largest);
	CHECK_EQ_U64(books.arenas[2].rec.largest_free_bytes, 0);
	CHECK_EQ_U64(books.arenas[2].rec.heaps, 0);
	CHECK_EQ_U64(books.narenas, 3);
	CHECK_EQ_U64(books.nr_kept, 3);
	CHECK(!books.truncated);
	CHECK_EQ_U64(books.main_system_bytes, 135168);
	CHECK_EQ_U64(books.arenas_system_bytes, 135168 * 2 + 135168 * 3);
	CHECK_EQ_U64(books.free_chunks, 3 * (4 + 3 + 1));
	CHECK_EQ_U64(books.free_bytes, 3 * (4 * 4096 + 3 * 48) + 1000 + 1001 + 1002);
	CHECK_EQ_U64(books.released_bytes, 3 * 8192 * 2);
	CHECK_EQ_U64(books.mmapped_bytes, 2 * 266240);
	CHECK_EQ_U64(books.max_mmapped_chunks, 5);
	CHECK_EQ_U64(books.arenas[2].record_addr, rec_addr(2, V2_SIZE));
	CHECK_EQ_U64(books.retries, 0);

	hf_ptm_books_fill(&books, &regions, out, 4, &n, &truncated);
	CHECK_EQ_U64(regions.free_chunks, 24);
	CHECK_EQ_U64(regions.mapped.brk, 135168);
	CHECK_EQ_U64(regions.mapped.arena, 135168 * 5);
	CHECK_EQ_U64(regions.mapped.mmap, 2 * 266240);
	CHECK_EQ_U64(regions.mapped.total, 135168 * 6 + 2 * 266240);
	/* What the books do not have stays as it was. */
	CHECK_EQ_U64(regions.largest_free_chunk_bytes, HF_UNKNOWN);
	CHECK_EQ_U64(n, 3);
	CHECK(!truncated);
	CHECK(out[0].kind == HF_ARENA_MAIN && out[1].kind == HF_ARENA_THREAD &&
	      out[2].kind == HF_ARENA_THREAD);
	CHECK_EQ_U64(out[1].address, rec_addr(1, V2_SIZE));
	CHECK_EQ_U64(out[1].heaps, HF_UNKNOWN);
	CHECK_EQ_U64(out[1].mapped_bytes, 135168 * 2);
	CHECK_EQ_U64(out[1].threads, 2);
	CHECK_EQ_U64(out[1].lock.acquisitions, 1001);
	CHECK_EQ_U64(out[1].lock.contended, 11);
	CHECK(out[1].lock.wait_seconds == 1.5 && out[1].lock.max_wait_seconds == 0.25);
}

static void version_3_books_give_the_largest_free_chunk_and_heaps(void)
{
	const size_t s3 = sizeof(struct ptm_abi_arena);
	struct hf_regions regions = {.free_chunks = HF_UNKNOWN,
				     .largest_free_chunk_bytes = HF_UNKNOWN};
	struct hf_arena out[4];
	size_t n = 0;
	bool truncated = true;

	build(3, s3, 3);
	/* Arena 1's largest is its top; the process's largest is arena 2's. */
	rec(1, s3)->top_bytes = 5000;
	rec(1, s3)->largest_free_bytes = 5000;
	rec(2, s3)->largest_free_bytes = 9000;
	CHECK(decode() == 0);
	CHECK_EQ_U64(books.version, 3);
	CHECK(books.has_release && books.has_largest);
	CHECK_EQ_U64(books.largest_free_bytes, 9000);
	CHECK_EQ_U64(books.arenas[0].rec.largest_free_bytes, 4096);
	CHECK_EQ_U64(books.arenas[1].rec.heaps, 2);
	hf_ptm_books_fill(&books, &regions, out, 4, &n, &truncated);
	CHECK_EQ_U64(regions.largest_free_chunk_bytes, 9000);
	CHECK_EQ_U64(n, 3);
	CHECK_EQ_U64(out[0].heaps, 1);
	CHECK_EQ_U64(out[1].heaps, 2);
	CHECK_EQ_U64(out[2].heaps, 3);
	/* A version 3 header with version 2 records promises fields it does not have. */
	build(2, V2_SIZE, 3);
	CHECK(decode() == -EPROTO);
}

static void version_1_records_are_read_without_the_release_books(void)
{
	const size_t v1 = V1_SIZE;

	build(2, v1, 1);
	/* Whatever follows a version-1 record is not its release books. */
	memset((char *)rec(1, v1) + v1, 0xff, 32);
	CHECK(decode() == 0);
	CHECK(!books.has_release);
	CHECK_EQ_U64(books.narenas, 2);
	CHECK_EQ_U64(books.arenas[1].rec.released_bytes, 0);
	CHECK_EQ_U64(books.arenas[1].rec.release_calls, 0);
	CHECK_EQ_U64(books.arenas[1].rec.lock_acquisitions, 1001);
	CHECK_EQ_U64(books.free_chunks, 16);
}

static void version_4_books_say_where_the_census_finds_the_heap(void)
{
	build(2, sizeof(struct ptm_abi_arena), 4);
	CHECK(decode() == 0);
	CHECK_EQ_U64(books.version, 4);
	CHECK(books.has_census);
	CHECK_EQ_U64(books.census.arena_record_offset, 2240);
	CHECK_EQ_U64(books.census.arena_size, 4096);
	CHECK_EQ_U64(books.census.arena_segments_offset, 2200);
	CHECK_EQ_U64(books.census.heap_info_size, 48);
	CHECK_EQ_U64(books.census.tcache_key_addr, BASE + 0x10000);
	CHECK_EQ_U64(books.census.tcache_max_csize_addr, BASE + 0x10008);
	CHECK_EQ_U64(books.census.release_keep, 88);
	CHECK_EQ_U64(books.census.page_size, 4096);
	CHECK_EQ_U64(books.narenas, 2);
	/* A version 3 block has none of it, whatever follows its 80 bytes. */
	build(2, sizeof(struct ptm_abi_arena), 3);
	CHECK(decode() == 0);
	CHECK(!books.has_census);
	/* A version 4 block as short as version 3's is refused, not read past its end. */
	build(2, sizeof(struct ptm_abi_arena), 4);
	block()->size = PTM_ABI_BLOCK_V1_SIZE;
	CHECK(decode() == -EPROTO);
	/* Each census field out of its bounds makes the block garbage. */
	for (int k = 0; k < 10; k++) {
		struct ptm_abi_block *b = block();

		build(2, sizeof(struct ptm_abi_arena), 4);
		switch (k) {
		case 0: b->arena_size = 1024; break;
		case 1: b->arena_size = 1u << 30; break;
		case 2: b->arena_record_offset = 2244; break;
		case 3: b->arena_record_offset = 4096; break;
		case 4: b->arena_segments_offset = 8192; break;
		case 5: b->heap_info_size = 40; break;
		case 6: b->tcache_key_addr = 1ULL << 60; break;
		case 7: b->release_keep = 8; break;
		case 8: b->page_size = 6000; break;
		case 9: b->page_size = 1ULL << 40; break;
		}
		CHECK_MSG(decode() == -EPROTO, "case %d", k);
	}
}

static void a_later_version_with_longer_structs_is_read_as_far_as_known(void)
{
	const size_t stride = sizeof(struct ptm_abi_arena) + 24;

	build(2, stride, 5);
	block()->size = sizeof(struct ptm_abi_block) + 16;
	CHECK(decode() == 0);
	CHECK_EQ_U64(books.version, 5);
	CHECK(books.has_census);
	CHECK(books.has_release && books.has_largest);
	CHECK_EQ_U64(books.arenas[1].rec.index, 1);
	CHECK_EQ_U64(books.arenas[1].rec.release_calls, 3);
	CHECK_EQ_U64(books.arenas[1].rec.heaps, 2);
}

static void a_list_longer_than_heapfragd_keeps_is_summed_whole_and_marked_truncated(void)
{
	const size_t stride = sizeof(struct ptm_abi_arena);
	struct hf_arena out[HF_MAX_ARENAS];
	struct hf_regions regions = {0};
	size_t n = 0;
	bool truncated = false;

	build(HF_MAX_ARENAS + 50, stride, 2);
	CHECK(decode() == 0);
	CHECK_EQ_U64(books.narenas, HF_MAX_ARENAS + 50);
	CHECK_EQ_U64(books.nr_kept, HF_MAX_ARENAS);
	CHECK(books.truncated);
	CHECK_EQ_U64(books.free_chunks, 8 * (HF_MAX_ARENAS + 50));
	hf_ptm_books_fill(&books, &regions, out, HF_MAX_ARENAS, &n, &truncated);
	CHECK_EQ_U64(n, HF_MAX_ARENAS);
	CHECK(truncated);
	/* A caller with less room gets what fits, marked truncated. */
	build(3, stride, 2);
	CHECK(decode() == 0);
	hf_ptm_books_fill(&books, &regions, out, 2, &n, &truncated);
	CHECK_EQ_U64(n, 2);
	CHECK(truncated);
}

static void garbage_headers_are_refused(void)
{
	const size_t s = sizeof(struct ptm_abi_arena);

	build(2, s, 2);
	memcpy(&block()->magic, "PTMSTATZ", 8);
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->version = 0;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->size = 16;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->size = 1ULL << 40;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->arena_record_size = 64;
	CHECK(decode() == -EPROTO);
	/* Version 2 promises the release books: a version-1-sized record is a lie. */
	build(2, s, 2);
	block()->arena_record_size = offsetof(struct ptm_abi_arena, released_bytes);
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->narenas = 1ULL << 40;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->first_arena += 4;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->first_arena = BASE + IMAGE_BYTES - 16;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->first_arena = 1ULL << 62;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->mmapped_bytes = block()->max_mmapped_bytes + 1;
	CHECK(decode() == -EPROTO);
	/* More mapped bytes than an address space holds (fuzz_ptm_books: the total wrapped). */
	build(2, s, 2);
	block()->mmapped_bytes = block()->max_mmapped_bytes = ~0ULL << 24;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	block()->mmapped_bytes = block()->max_mmapped_bytes = (1ULL << 56) - 135168;
	CHECK(decode() == -EPROTO);
	/* Not set up yet: the allocator has not run. */
	build(2, s, 2);
	block()->first_arena = 0;
	CHECK(decode() == -EAGAIN);
	/* The block itself outside what can be read, or at no address at all. */
	build(2, s, 2);
	CHECK(hf_ptm_books_decode(image, sizeof(image), BASE, BASE + IMAGE_BYTES - 8, &books) ==
	      -EPROTO);
	CHECK(hf_ptm_books_decode(image, sizeof(image), BASE, 0, &books) == -EINVAL);
	CHECK(hf_ptm_books_decode(image, sizeof(image), BASE, BASE - 4096, &books) == -EPROTO);
}

static void garbage_records_are_refused(void)
{
	const size_t s = sizeof(struct ptm_abi_arena);

	/* A record that points at itself: the walk stops at its bound. */
	build(2, s, 2);
	rec(1, s)->next = rec_addr(1, s);
	CHECK(decode() == -EPROTO);
	/* Back to the main arena: a second index 0. */
	build(2, s, 2);
	rec(1, s)->next = rec_addr(0, s);
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(0, s)->index = 1;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->next = rec_addr(1, s) + 3;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->top_bytes = rec(1, s)->system_bytes;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->system_bytes = rec(1, s)->max_system_bytes + 1;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->binned_chunks = 1000;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->lock_contended = rec(1, s)->lock_acquisitions + 1;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->lock_max_wait_ns = rec(1, s)->lock_wait_ns + 1;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(1, s)->released_bytes = 1;
	CHECK(decode() == -EPROTO);
	/* Version 3: the largest free chunk is one of the free chunks counted. */
	build(2, s, 3);
	rec(1, s)->largest_free_bytes = rec(1, s)->top_bytes - 16;
	CHECK(decode() == -EPROTO);
	build(2, s, 3);
	rec(1, s)->largest_free_bytes = 1000 + 1 + 4 * 4096 + 3 * 48 + 16;
	CHECK(decode() == -EPROTO);
	/* A thread arena holding memory in no heap, or more than its heaps hold. */
	build(2, s, 3);
	rec(1, s)->heaps = 0;
	CHECK(decode() == -EPROTO);
	build(2, s, 3);
	rec(1, s)->system_bytes = rec(1, s)->max_system_bytes = (64ULL << 20) * 2 + 4096;
	CHECK(decode() == -EPROTO);
	build(2, s, 3);
	rec(0, s)->heaps = 1ULL << 40;
	CHECK(decode() == -EPROTO);
	/* System bytes past the address space, alone or summed over the arenas. */
	build(2, s, 2);
	rec(0, s)->system_bytes = rec(0, s)->max_system_bytes = 1ULL << 60;
	CHECK(decode() == -EPROTO);
	build(2, s, 2);
	rec(0, s)->system_bytes = rec(0, s)->max_system_bytes = 1ULL << 55;
	rec(1, s)->system_bytes = rec(1, s)->max_system_bytes = (1ULL << 55) + 4096;
	CHECK(decode() == -EPROTO);
	/* A writer inside the lock, for good in an image. */
	build(2, s, 2);
	rec(1, s)->gen = 7;
	CHECK(decode() == -EAGAIN);
	CHECK(books.retries >= 1);
	/* The last record's tail beyond the image. */
	build(2, s, 2);
	rec(1, s)->next = BASE + IMAGE_BYTES - 64;
	CHECK(decode() == -EPROTO);
}

int main(void)
{
	version_2_books_sum_and_fill_heapfragds_structures();
	version_3_books_give_the_largest_free_chunk_and_heaps();
	version_1_records_are_read_without_the_release_books();
	version_4_books_say_where_the_census_finds_the_heap();
	a_later_version_with_longer_structs_is_read_as_far_as_known();
	a_list_longer_than_heapfragd_keeps_is_summed_whole_and_marked_truncated();
	garbage_headers_are_refused();
	garbage_records_are_refused();
	return hf_test_done();
}
