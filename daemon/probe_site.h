/* SPDX-License-Identifier: MIT */
/*
 * probe_site.h - which ELF object gives malloc to a process, and where in it
 * each entry probe goes.
 *
 * The provider is found in the dynamic linker's search order (executable,
 * LD_PRELOAD objects, DT_NEEDED in load order) through /proc/PID/root, so
 * processes in containers work.  Each entry probe is moved from the symbol to
 * the first instruction the kernel can emulate (push, nop, jmp, jcc, call)
 * that every call reaches with the argument registers untouched: a probe on an
 * emulated instruction costs ~0.5 us a hit, one the kernel must single-step
 * ~10 us.
 */
#ifndef HF_PROBE_SITE_H
#define HF_PROBE_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot.h"

enum hf_op {
	HF_OP_MALLOC = 0,
	HF_OP_CALLOC,
	HF_OP_REALLOC,
	HF_OP_REALLOCARRAY,
	HF_OP_FREE,
	HF_OP_CFREE,
	HF_OP_POSIX_MEMALIGN,
	HF_OP_ALIGNED_ALLOC,
	HF_OP_MEMALIGN,
	HF_OP_VALLOC,
	HF_OP_PVALLOC,
	HF_OP_COUNT,
};

/* "malloc", "calloc", ... : the exported symbol name of each op. */
const char *hf_op_symbol(enum hf_op op);

struct hf_probe_site {
	bool present;		/* the provider exports this symbol */
	uint64_t sym_offset;	/* file offset of the symbol: where return probes go */
	uint64_t entry_offset;	/* file offset chosen for the entry probe */
	bool entry_emulated;	/* the entry instruction is one the kernel emulates */
	char entry_insn[64];	/* e.g. "free+3: je 0xc8", for the logs */
};

struct hf_alloc_target {
	enum hf_allocator kind;
	bool static_in_exe;	  /* malloc is linked into the executable itself */
	char path[HF_PATH_LEN];	  /* host path, /proc/PID/root/... resolved */
	char target_path[HF_PATH_LEN]; /* the path as the target sees it */
	char build_id[41];	  /* hex GNU build-id, "" if none */
	struct hf_probe_site ops[HF_OP_COUNT];
};

/*
 * Fills *out for a running process.  Returns 0, -ESRCH when the process is
 * gone, or another negative errno with one sentence in why[0..why_len).
 */
int hf_alloc_target_find(pid_t pid, struct hf_alloc_target *out, char *why, size_t why_len);

/*
 * The same for an ELF file on this host (used for the executable of -e and
 * by tests): the object at path is taken to be the provider.
 */
int hf_alloc_target_from_file(const char *path, struct hf_alloc_target *out, char *why,
			      size_t why_len);

#endif /* HF_PROBE_SITE_H */
