/* SPDX-License-Identifier: MIT */
/*
 * ptm_books.h - libptm's own books, read from another process.
 *
 * A libptm process exports ptm_stats_block (allocator/include/
 * ptm_stats_abi.h): a header and a linked list of per-arena records, each a
 * seqlock.  heapfragd finds the block once per process (hf_ptm_books_locate)
 * and copies it every interval with process_vm_readv (hf_ptm_books_read): no
 * probe, no call into the target, nothing on the allocator's fast path.
 *
 * Nothing read from the target is trusted: sizes, counts and addresses are
 * checked against fixed limits, the list walk is bounded, and every record
 * must satisfy the invariants the allocator keeps under its lock.  Garbage
 * gives -EPROTO, never a crash or an endless walk.
 *
 * What the books give exactly (each arena's record is one consistent
 * instant; the arenas are read one after the other, as mallinfo2() does):
 *   free_chunks     sum over arenas of binned + fast chunks, plus the top
 *                   chunk where the arena has one (= ptm_stats_get()'s
 *                   free_chunks, and mallinfo2() ordblks + smblks once every
 *                   arena has a top chunk, which it has after its first use).
 *   per arena       system bytes, threads attached, lock acquisitions,
 *                   contended acquisitions, total and longest wait.
 *   mmapped         the chunks with a mapping of their own (hblks, hblkhd).
 *   mapped          brk (main arena), arena heaps and mmapped chunks: the
 *                   bytes the allocator holds, as mallinfo2() counts them.
 *   largest free    (ABI version 3) the largest free chunk of each arena,
 *                   top, bins and fastbins alike (= ptm_stats_get()'s
 *                   largest_free), and the process's: the largest of those.
 *   heaps           (ABI version 3) a thread arena's heaps; the main arena's
 *                   regions (1 while its break grew contiguously).
 *   census          (ABI version 4) where each arena lies relative to its
 *                   record and what else the heap census needs to walk it.
 * What older targets do not give: for version 1 and 2 the largest free chunk
 * and the heaps; before version 4 the arenas' own addresses, so no census.
 */
#ifndef HF_PTM_BOOKS_H
#define HF_PTM_BOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "account.h"
#include "ptm_stats_abi.h"
#include "snapshot.h"

/* More records than this in the list means a cycle or garbage. */
#define HF_PTM_BOOKS_MAX_RECORDS 4096
/* Copies of one record before giving up on its seqlock (-EAGAIN). */
#define HF_PTM_BOOKS_TRIES 1000

/* One arena's record as read, and where it lives in the target. */
struct hf_ptm_books_arena {
	uint64_t record_addr;
	struct ptm_abi_arena rec; /* fields of later versions than the target's are 0 */
};

struct hf_ptm_books {
	uint64_t version; /* the target's ABI version (this reader knows up to 4) */
	bool has_release; /* version >= 2: the release books are filled */
	bool has_largest; /* version >= 3: largest_free_bytes and heaps are filled */
	bool has_census;  /* version >= 4: census below is filled */
	/* What the heap census needs (ptm_stats_abi.h's version 4 fields), checked for range. */
	struct {
		uint64_t arena_record_offset;
		uint64_t arena_size;
		uint64_t arena_segments_offset;
		uint64_t heap_info_size;
		uint64_t tcache_key_addr;
		uint64_t tcache_max_csize_addr;
		uint64_t release_keep;
		uint64_t page_size;
	} census;
	uint64_t narenas; /* records walked (all of them, not only those kept) */
	uint64_t retries; /* seqlock copies that had to be taken again */
	uint64_t mmapped_chunks;
	uint64_t mmapped_bytes;
	uint64_t max_mmapped_chunks;
	uint64_t max_mmapped_bytes;
	/* Sums over every record walked. */
	uint64_t main_system_bytes;   /* the main arena (brk) */
	uint64_t arenas_system_bytes; /* the other arenas (their heaps) */
	uint64_t free_chunks;
	uint64_t free_bytes; /* top + binned + fast: mallinfo2() fordblks */
	uint64_t released_bytes;
	uint64_t largest_free_bytes; /* the largest over every record (version 3) */
	/* The first HF_MAX_ARENAS records, in list order (the main arena first). */
	uint32_t nr_kept;
	bool truncated;
	struct hf_ptm_books_arena arenas[HF_MAX_ARENAS];
};

/*
 * Finds ptm_stats_block in process pid: its value in the .dynsym of the ELF
 * file at libptm_path_on_host (libptm.so, or the executable when libptm.a is
 * linked in; a /proc/PID/root/... path for a process in another mount
 * namespace) plus where the target mapped that file.  The file is matched in
 * /proc/PID/maps by device and inode, not by name, so chroots and
 * containers need nothing special.  Returns 0 with *block_addr set; -ENOENT
 * when the file has no such symbol or the process does not map it; -ESRCH
 * when the process is gone; another negative errno otherwise.
 */
int hf_ptm_books_locate(pid_t pid, const char *libptm_path_on_host, uint64_t *block_addr);

/*
 * Copies the books at block_addr in process pid into *out: the header once,
 * then each record until its seqlock says the copy is consistent (at most
 * HF_PTM_BOOKS_TRIES copies each).  Returns 0; -ESRCH when the process is
 * gone; -EAGAIN when a record stayed busy, or the allocator has not set the
 * block up yet (no malloc so far); -EPROTO when the block is not libptm's
 * books or breaks the ABI's rules; -EPERM or another negative errno when
 * the memory cannot be read.
 */
int hf_ptm_books_read(pid_t pid, uint64_t block_addr, struct hf_ptm_books *out);

/*
 * The same walk over an image of the target's memory: image holds len
 * bytes that sit at address base in the target.  A pure function (for tests
 * and for decoding a saved copy); reading outside the image is -EPROTO, like
 * an unmapped address in a live target.  A record whose gen is odd is busy
 * for good in an image: -EAGAIN.
 */
int hf_ptm_books_decode(const void *image, size_t len, uint64_t base, uint64_t block_addr,
			struct hf_ptm_books *out);

/*
 * Puts what the books know exactly into heapfragd's structures.
 * regions: free_chunks; mapped.brk = the main arena's system bytes,
 * mapped.arena = the other arenas' system bytes, mapped.mmap = the mmapped
 * chunks' bytes, and their total: together mallinfo2()'s arena + hblkhd.
 * /proc's spans can be larger by pages an arena heap gave back (shrunk and
 * madvised, still mapped read-write): the books count what the allocator
 * holds, and those pages are not resident, so resident_bytes (/proc's Rss of
 * the same mappings) is unaffected.  Version 3 targets: also
 * largest_free_chunk_bytes, the largest free chunk of any arena; for older
 * ones it and the other fields are left as they are.
 * arenas[0..max), *n, *truncated: address = the record's address (the
 * arena's identity for its life), kind, mapped_bytes = its system bytes,
 * threads attached, the whole lock block, and heaps (version 3; HF_UNKNOWN
 * before): a thread arena's heaps, or the main arena's regions, which is
 * what hf_arena_map_read() reports for a glibc main arena (1 once it holds
 * memory) as long as the break grew contiguously.
 */
void hf_ptm_books_fill(const struct hf_ptm_books *b, struct hf_regions *regions,
		       struct hf_arena *arenas, size_t max, size_t *n, bool *truncated);

#endif /* HF_PTM_BOOKS_H */
