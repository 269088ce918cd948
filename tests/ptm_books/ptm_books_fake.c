// SPDX-License-Identifier: MIT
/*
 * ptm_books_fake: not libptm, yet it exports a ptm_stats_block, spoiled the
 * way argv[1] says, then prints "ready" and waits for stdin to close.  The
 * reader must answer each with an error, never crash or walk forever.
 *   magic   the magic is wrong
 *   size    the header claims a record size smaller than version 1's
 *   huge    the header claims 2^40 arenas
 *   wild    the first record's address points at nothing mapped
 *   cycle   the second record points at itself: an endless list
 *   torn    a record's free bytes exceed its system bytes
 *   locked  a record's generation stays odd (a writer that never finishes)
 *   good    a well-formed block with two arenas
 */
#include <string.h>
#include <unistd.h>

#include "ptm_stats_abi.h"

/* Initialised, so that the block sits in .data like libptm's. */
struct ptm_abi_block ptm_stats_block = {.magic = PTM_ABI_MAGIC};
static struct ptm_abi_arena recs[2];

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "good";
	struct ptm_abi_block *b = &ptm_stats_block;
	char c;

	for (int i = 0; i < 2; i++)
		recs[i] = (struct ptm_abi_arena){.gen = 42,
						 .index = (uint64_t)i,
						 .system_bytes = 1 << 20,
						 .max_system_bytes = 1 << 20,
						 .top_bytes = 4096,
						 .binned_chunks = 3,
						 .binned_bytes = 3000,
						 .threads_attached = 1,
						 .lock_acquisitions = 10,
						 .largest_free_bytes = 4096,
						 .heaps = 1};
	recs[0].next = (uint64_t)(uintptr_t)&recs[1];
	*b = (struct ptm_abi_block){.magic = PTM_ABI_MAGIC,
				    .version = PTM_ABI_VERSION,
				    .size = sizeof(*b),
				    .arena_record_size = sizeof(recs[0]),
				    .first_arena = (uint64_t)(uintptr_t)&recs[0],
				    .narenas = 2,
				    /* Plausible census fields: the books are read, not walked. */
				    .arena_record_offset = 2240,
				    .arena_size = 4096,
				    .arena_segments_offset = 2200,
				    .heap_info_size = 48,
				    .tcache_key_addr = (uint64_t)(uintptr_t)&recs[0],
				    .tcache_max_csize_addr = (uint64_t)(uintptr_t)&recs[1],
				    .release_keep = 88,
				    .page_size = 4096};
	if (strcmp(mode, "magic") == 0)
		memcpy(&b->magic, "PTMSTATZ", 8);
	else if (strcmp(mode, "size") == 0)
		b->arena_record_size = 64;
	else if (strcmp(mode, "huge") == 0)
		b->narenas = 1ULL << 40;
	else if (strcmp(mode, "wild") == 0)
		b->first_arena = 0x10000;
	else if (strcmp(mode, "cycle") == 0)
		recs[1].next = (uint64_t)(uintptr_t)&recs[1];
	else if (strcmp(mode, "torn") == 0)
		recs[1].top_bytes = 2 << 20;
	else if (strcmp(mode, "locked") == 0)
		recs[1].gen = 43;
	if (write(1, "ready\n", 6) != 6)
		return 1;
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
