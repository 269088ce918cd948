/* SPDX-License-Identifier: MIT */
/*
 * heap_regions.h - which of a process's mappings belong to its allocator.
 *
 * brk: the [heap] mapping, start_brk..brk from /proc/PID/stat.
 * arena: glibc/libptm non-main arena heaps, anonymous mappings aligned to
 *   64 MiB (HEAP_MAX_SIZE) whose readable+writable head is the committed part.
 * mmap: mmapped chunks.  glibc and libptm, both modes: found by their
 *   headers, read with process_vm_readv (IS_MMAPPED set, sizes that tile
 *   the mapping; see heap_regions.c); in exact mode the tracer's spans (the
 *   mmap calls made from inside an allocator call) are added where the
 *   headers show nothing.  Other allocators: exact mode, the spans;
 *   passive mode, unknown.
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
 * Reads /proc/PID/{stat,maps,smaps} and fills *out.  In exact mode
 * known_mmaps[0..nr_known_mmaps) lists the allocator's mmapped regions as the
 * tracer saw them (none is a valid answer); passive mode ignores them and
 * uses only what /proc and the allocator's headers show.  Returns 0, -ESRCH
 * if the process is gone, or another negative errno.
 */
int hf_regions_read(pid_t pid, enum hf_allocator kind, enum hf_mode mode,
		    const struct hf_span *known_mmaps, size_t nr_known_mmaps,
		    struct hf_regions *out);

#endif /* HF_HEAP_REGIONS_H */
