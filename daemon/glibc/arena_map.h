/* SPDX-License-Identifier: MIT */
/*
 * arena_map.h - where a glibc process's malloc arenas are, how many heaps and
 * bytes each holds and how many threads use it, read from outside.
 *
 * Everything here is specific to glibc 2.36's layout (struct malloc_state of
 * 2200 bytes, struct heap_info of 48 bytes, HEAP_MAX_SIZE 64 MiB on x86-64);
 * it was checked against libc6-dbg's DWARF with `gdb -batch -ex 'ptype /o
 * struct malloc_state'`.  Target memory is read with process_vm_readv, so
 * the caller needs the right to ptrace the target (root does).
 *
 * main_arena is a static variable of libc and has no exported symbol.  It is
 * found, in order:
 *   1. from the local symbol `main_arena` of libc6-dbg's detached debug file,
 *      /usr/lib/debug/.build-id/XX/YYYY.debug keyed by libc's GNU build-id,
 *      plus libc's load bias from /proc/PID/maps;
 *   2. otherwise by a heuristic over libc's writable data (its file-backed
 *      rw-p mapping and the anonymous .bss mapping right after it): the one
 *      8-aligned address A whose 2200 bytes read as a malloc_state, that is
 *      the mutex is 0, 1 or 2, flags hold only glibc's three flag bits, each
 *      of the 127 bins is either empty (fd == bk == the bin's own header
 *      address, A + 96 + 16 * i) or holds two non-NULL 16-aligned chunk
 *      pointers, at least HF_ARENA_MIN_EMPTY_BINS bins are empty, and the
 *      `next` list goes round back to A within HF_MAX_ARENAS steps, every
 *      other member being a malloc_state at offset 48 of a 64 MiB-aligned
 *      heap.  No other data in libc has 16 or more pointers at their own
 *      address minus 16, so the match is unique in practice; two matches are
 *      refused (-ENOTUNIQ) rather than guessed between.
 * Setting HF_FORCE_ARENA_HEURISTIC=1 in heapfragd's environment (or passing
 * HF_ARENA_FORCE_HEURISTIC) skips step 1, so both paths can be tested.
 */
#ifndef HF_ARENA_MAP_H
#define HF_ARENA_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "snapshot.h"

/* glibc 2.36, x86-64. */
#define HF_GLIBC_HEAP_MAX_SIZE      (64ull << 20)
#define HF_GLIBC_HEAP_INFO_SIZE     48
#define HF_GLIBC_MSTATE_SIZE        2200
#define HF_GLIBC_NBINS              128
#define HF_ARENA_MIN_EMPTY_BINS     16
#define HF_GLIBC_DEBUG_BUILD_ID_DIR "/usr/lib/debug/.build-id"

/* The parts of struct malloc_state that heapfrag reads. */
struct hf_mstate {
	uint32_t mutex;
	int32_t flags;
	uint64_t next;
	uint64_t next_free;
	uint64_t attached_threads;
	uint64_t system_mem;
	uint64_t max_system_mem;
};

/* The parts of struct heap_info (start of every non-main arena heap). */
struct hf_heap_info {
	uint64_t ar_ptr;
	uint64_t prev;
	uint64_t size;
	uint64_t mprotect_size;
};

/* The target's libc as /proc/PID/maps shows it. */
struct hf_libc_map {
	char path[HF_PATH_LEN];        /* host path: /proc/PID/root/<target_path> */
	char target_path[HF_PATH_LEN]; /* as the target sees it */
	uint64_t bias;                 /* load address minus link-time address */
	uint64_t data_start;           /* libc's writable data: rw-p file mapping ... */
	uint64_t data_end;             /* ... through the anonymous .bss mapping after it */
};

enum hf_main_arena_source {
	HF_MAIN_ARENA_DEBUG_SYMBOLS = 0,
	HF_MAIN_ARENA_HEURISTIC = 1,
};

const char *hf_main_arena_source_name(enum hf_main_arena_source src);

#define HF_ARENA_FORCE_HEURISTIC 0x1u

/* --- Pure helpers (unit-tested) --- */

/*
 * Decodes the 2200 bytes of a malloc_state read from address addr.  Returns
 * true and fills *out (may be NULL) when the bytes look like a live arena by
 * the rules above, without following `next`.
 */
bool hf_mstate_decode(const void *buf, size_t len, uint64_t addr, struct hf_mstate *out);

/* Decodes a heap_info header; false when it cannot be one (sizes out of range). */
bool hf_heap_info_decode(const void *buf, size_t len, uint64_t heap_addr, struct hf_heap_info *out);

/* "/usr/lib/debug/.build-id/93/ac61....debug" for a hex build-id; -EINVAL if malformed. */
int hf_debug_file_path(const char *root, const char *build_id, char *buf, size_t len);

/*
 * Finds the target's libc (the mapping named libc.so.6 or libc-*.so) in
 * /proc/PID/maps text.  -ENOENT when the process has none mapped (yet).
 */
int hf_libc_map_parse(FILE *maps, pid_t pid, struct hf_libc_map *out);

/* --- ELF files on this host (libelf) --- */

/*
 * Looks `name` up in .symtab, then .dynsym.  *vaddr gets the link-time
 * address, *size (may be NULL) st_size; *file_offset (may be NULL) the
 * offset in the file where its code or data lies, which is what uprobes
 * take.  -ENOENT if absent.
 */
int hf_elf_symbol(const char *path, const char *name, uint64_t *vaddr, uint64_t *size,
		  uint64_t *file_offset);

/* --- A live process --- */

int hf_libc_map_read(pid_t pid, struct hf_libc_map *out);

/*
 * Finds main_arena's address in the target (see above); flags:
 * HF_ARENA_FORCE_HEURISTIC.  -ENOENT when neither way finds it, e.g. before
 * the target's first malloc initialised it.
 */
int hf_main_arena_find(pid_t pid, const struct hf_libc_map *libc, unsigned int flags,
		       uint64_t *addr, enum hf_main_arena_source *src);

/*
 * Lists the arenas of the target: main_arena first, then the rest of the
 * `next` ring, each with kind, heaps, mapped_bytes (main: system_mem, the
 * bytes it got from brk or its fallback mmap; thread arenas: sum of
 * heap_info.mprotect_size over their heaps, the committed read-write part)
 * and threads (attached_threads).  Lock fields are left HF_UNKNOWN / NaN
 * for the caller.  At most max entries; *truncated says whether more exist.
 */
int hf_arena_map_read(pid_t pid, uint64_t main_arena, struct hf_arena *out, size_t max, size_t *n,
		      bool *truncated);

#endif /* HF_ARENA_MAP_H */
