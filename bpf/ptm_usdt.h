/* SPDX-License-Identifier: MIT */
/*
 * ptm_usdt.h - shared between ptm_usdt.bpf.c and daemon/ptm_usdt.c: what
 * libptm's USDT probes (provider "libptm", allocator/include/ptm_usdt.h)
 * add up to, per traced process and per (process, arena).
 *
 * Every value map is per CPU, so that the programs need no atomics and the
 * maximum wait no compare-and-swap; user space sums the CPUs' copies (and
 * takes the largest max_ns).  A sampled block may be freed on another CPU
 * than the one that counted it, so one CPU's live sums can wrap below zero:
 * only the sum over all CPUs, modulo 2^64, is meaningful.
 */
#ifndef HF_BPF_PTM_USDT_H
#define HF_BPF_PTM_USDT_H

/* Log2 wait-time slots: slot i counts waits w with 2^(i-1) <= w < 2^i ns; the last is open. */
#define PTM_USDT_WAIT_SLOTS 32

/*
 * Sampled live bytes by requested size, in daemon/snapshot.h's layout:
 * bucket i holds sizes s with 16 << (i - 1) < s <= 16 << i (bucket 0: s <=
 * 16); the last bucket holds everything larger.
 */
#define PTM_USDT_SIZE_BUCKETS   30
#define PTM_USDT_SIZE_MIN_SHIFT 4

/* Default map sizes; the loader may change them between open and load. */
#define PTM_USDT_MAX_PROCS   1024
#define PTM_USDT_MAX_ARENAS  4096
#define PTM_USDT_MAX_SAMPLES 262144
#define PTM_USDT_MAX_WAITERS 16384
#define PTM_USDT_MAX_SITES   16384
#define PTM_USDT_MAX_STACKS  16384
/* Frames kept of a sample's stack, as the kernel walks it from inside libptm. */
#define PTM_USDT_STACK_DEPTH 32
/* live_blocks_1024 is in these units, so that weight / size is not rounded down per sample. */
#define PTM_USDT_BLOCK_UNIT 1024

/* The probes, as indexes of ptm_usdt_proc.count. */
enum ptm_usdt_probe {
	PTM_USDT_HEAP_GROW = 0,
	PTM_USDT_HEAP_SHRINK,
	PTM_USDT_ARENA_CREATE,
	PTM_USDT_ARENA_REUSE,
	PTM_USDT_LOCK_BEGIN,
	PTM_USDT_LOCK_END,
	PTM_USDT_TRIM,
	PTM_USDT_PAGE_RELEASE,
	PTM_USDT_SAMPLE_ALLOC,
	PTM_USDT_SAMPLE_FREE,
	PTM_USDT_NR_PROBES,
};

/*
 * One traced process (key: its tgid).  User space creates the entry when it
 * adds the process; the programs only update existing entries, so a process
 * removed while its probes still fire is not counted again.
 */
struct ptm_usdt_proc {
	unsigned long long count[PTM_USDT_NR_PROBES]; /* times each probe fired */
	unsigned long long grow_bytes;                /* summed heap_grow bytes */
	unsigned long long shrink_bytes;              /* summed heap_shrink bytes */
	unsigned long long release_bytes;             /* summed page_release bytes */
	unsigned long long trim_released;             /* trim visits that released memory */
	/* The sampled profile: sums over the samples allocated and not yet freed. */
	unsigned long long live_samples;
	unsigned long long live_weight; /* the estimate of live heap bytes */
	unsigned long long live_size;   /* the samples' own requested bytes */
	unsigned long long live_weight_by_size[PTM_USDT_SIZE_BUCKETS];
	unsigned long long sample_drops;   /* samples not kept: the samples map was full */
	unsigned long long unknown_frees;  /* sample_free of a sample not in the map */
	unsigned long long unpaired_waits; /* lock_contended_end without its begin */
	unsigned long long waiter_drops;   /* a begin that did not fit in the waiters map */
};

struct ptm_usdt_arena_key {
	unsigned int tgid;
	unsigned int pad; /* always 0: keys are compared as bytes */
	unsigned long long arena;
};

/* One arena of one process, created on its first event. */
struct ptm_usdt_arena {
	unsigned long long contended; /* lock_contended_end events */
	unsigned long long wait_ns;   /* their summed wait_ns (libptm's own clock) */
	unsigned long long max_wait_ns;
	unsigned long long wait_hist[PTM_USDT_WAIT_SLOTS];
	unsigned long long grow_bytes;
	unsigned long long shrink_bytes;
	unsigned long long release_bytes;
	unsigned long long release_calls;
	/* The arena's index + 1 from arena_create or arena_reuse; 0 until one is seen. */
	unsigned long long index1;
};

struct ptm_usdt_sample_key {
	unsigned int tgid;
	unsigned int pad; /* always 0 */
	unsigned long long ptr;
};

struct ptm_usdt_sample {
	unsigned long long size;
	unsigned long long weight;
	/* Its site: the allocation call's return address and the stack's id (-1: none). */
	unsigned long long caller;
	int stack_id;
	unsigned int pad;
};

/*
 * The sampled profile by allocation site (process, stack, caller).  Not
 * per CPU: a sample freed on another CPU must find its site's sums.
 */
struct ptm_usdt_site_key {
	unsigned int tgid;
	int stack_id;
	unsigned long long caller;
};

struct ptm_usdt_site {
	long long live_samples;
	long long live_weight;  /* the site's estimated live requested bytes */
	/* The estimated live blocks in 1/1024ths: the sum of 1024 * weight / size. */
	long long live_blocks_1024;
	unsigned long long samples; /* samples taken since the process was added */
};

/* A thread in lock_contended_begin, by pid_tgid. */
struct ptm_usdt_wait {
	unsigned long long arena;
	unsigned long long since_ns;
};

/* Arena events lost because the arenas map was full, per CPU (index 0). */
#define PTM_USDT_NR_GLOBAL_DROPS 1

#endif /* HF_BPF_PTM_USDT_H */
