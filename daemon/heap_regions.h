/* SPDX-License-Identifier: MIT */
/*
 * heap_regions.h - which of a process's mappings belong to its allocator.
 *
 * brk: the [heap] mapping, start_brk..brk from /proc/PID/stat.
 * arena: glibc/libptm non-main arena heaps, anonymous mappings aligned to
 *   64 MiB (HEAP_MAX_SIZE) whose readable+writable head is the committed part.
 * mmap: mmapped chunks.  In exact mode the tracer knows them: the mmap calls
 *   made from inside an allocator call (struct hf_span list below).  In
 *   passive mode, for glibc and libptm, an anonymous mapping is a chunk when
 *   its header, read with process_vm_readv, has IS_MMAPPED set and a size
 *   equal to the mapping's length; other allocators: unknown.
 */
#ifndef HF_HEAP_REGIONS_H
#define HF_HEAP_REGIONS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "account.h"
#include "snapshot.h"

struct hf_span {
	uint64_t start;
	uint64_t len;
};

/*
 * Reads /proc/PID/{stat,maps,smaps} and fills *out.  known_mmaps (may be
 * NULL) lists the allocator's mmapped regions as the tracer saw them; NULL
 * means "not traced" and selects the passive heuristics.  Returns 0, -ESRCH
 * if the process is gone, or another negative errno.
 */
int hf_regions_read(pid_t pid, enum hf_allocator kind, const struct hf_span *known_mmaps,
		    size_t nr_known_mmaps, struct hf_regions *out);

#endif /* HF_HEAP_REGIONS_H */
