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
	/*
	 * Additions by the probe-site owner.  ret_offset is where a return
	 * probe may go instead of sym_offset: entry_offset when nothing before
	 * it moved rsp (so [rsp] still holds the return address there), which
	 * spares a single-stepped trap at the symbol; else sym_offset.
	 * alias_of is an earlier op with the same sym_offset (glibc's cfree is
	 * free, its aligned_alloc is memalign), or -1: attach such a site once.
	 */
	uint64_t ret_offset;
	int alias_of;
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
 * -EAGAIN (an addition) means the process is still starting: its dynamic
 * linker has not yet mapped a library that comes before the provider in the
 * search order (e.g. at exec); ask again once it has run.
 */
int hf_alloc_target_find(pid_t pid, struct hf_alloc_target *out, char *why, size_t why_len);

/*
 * The same for an ELF file on this host (used for the executable of -e and
 * by tests): the object at path is taken to be the provider.
 */
int hf_alloc_target_from_file(const char *path, struct hf_alloc_target *out, char *why,
			      size_t why_len);

/*
 * The same for a program not yet started (heapfragd -- COMMAND): exe_path
 * (a path, or a name looked up in envp's PATH) run with envp.  A dynamic
 * program's objects come from its own dynamic linker run with
 * LD_TRACE_LOADED_OBJECTS=1, as ldd does (it loads the objects, LD_PRELOAD
 * ones included, in order, and runs none of the program); a static one (no
 * PT_INTERP) is its own provider.  Only glibc's dynamic linker is run.
 */
int hf_alloc_target_for_command(const char *exe_path, char *const envp[],
				struct hf_alloc_target *out, char *why, size_t why_len);

#endif /* HF_PROBE_SITE_H */
