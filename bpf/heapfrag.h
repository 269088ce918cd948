/* SPDX-License-Identifier: MIT */
/*
 * heapfrag.h - what bpf/heapfrag.bpf.c and the daemon's loader share: the
 * layout of every map key and value, the lifecycle events, and map sizes.
 * Plain C types only, so both the BPF side (vmlinux.h) and user space include it.
 */
#ifndef HF_BPF_HEAPFRAG_H
#define HF_BPF_HEAPFRAG_H

/* Must equal HF_HIST_BUCKETS and HF_HIST_MIN_SHIFT of daemon/snapshot.h. */
#define HFB_HIST_BUCKETS   30
#define HFB_HIST_MIN_SHIFT 4

/* Must equal HF_LAT_BUCKETS, HF_LAT_MIN_SHIFT and HF_LAT_OPS of daemon/snapshot.h. */
#define HFB_LAT_BUCKETS   24
#define HFB_LAT_MIN_SHIFT 8

/* Default map sizes; the command line overrides them before load. */
#define HFB_DEFAULT_MAX_PROCS    1024
#define HFB_DEFAULT_MAX_LIVE     (1 << 20)
#define HFB_DEFAULT_MAX_MMAPS    65536
#define HFB_DEFAULT_MAX_INFLIGHT 16384
#define HFB_EVENTS_BYTES         (256 * 1024)

/*
 * The op a probe was attached for; it travels as the probe's BPF cookie.
 * The values equal enum hf_op of daemon/probe_site.h.
 */
enum hfb_op {
	HFB_OP_MALLOC = 0,
	HFB_OP_CALLOC,
	HFB_OP_REALLOC,
	HFB_OP_REALLOCARRAY,
	HFB_OP_FREE,
	HFB_OP_CFREE,
	HFB_OP_POSIX_MEMALIGN,
	HFB_OP_ALIGNED_ALLOC,
	HFB_OP_MEMALIGN,
	HFB_OP_VALLOC,
	HFB_OP_PVALLOC,
	/* malloc_trim: marks its syscalls as the allocator's, counts nothing. */
	HFB_OP_MALLOC_TRIM,
	HFB_OP_COUNT,
};

/* The counter each op adds to (struct hf_counters of daemon/snapshot.h). */
enum hfb_call {
	HFB_CALL_MALLOC = 0,
	HFB_CALL_CALLOC,
	HFB_CALL_REALLOC,
	HFB_CALL_FREE,
	HFB_CALL_MEMALIGN,
	HFB_CALL_COUNT,
};

/* The calls that are timed (those with a return probe); enum hf_lat_op's order. */
enum hfb_lat_op {
	HFB_LAT_MALLOC = 0,
	HFB_LAT_CALLOC,
	HFB_LAT_REALLOC,
	HFB_LAT_MEMALIGN,
	HFB_LAT_OPS,
};

enum hfb_syscall {
	HFB_SYS_BRK = 0,
	HFB_SYS_MMAP,
	HFB_SYS_MUNMAP,
	HFB_SYS_MREMAP,
	HFB_SYS_MADVISE,
	/*
	 * process_madvise(2) on the caller's own memory (PIDFD_SELF_*): libptm
	 * hands its page releases to the kernel in batches that way.  Counted
	 * for released_bytes; not one of the reported syscall counters.
	 */
	HFB_SYS_PROCESS_MADVISE,
	HFB_SYS_COUNT,
};

/*
 * How the allocator's chunk size of a block is learnt.  A probe's BPF cookie
 * is HFB_COOKIE(op, rule): the rule belongs to the ELF object probed, so one
 * attachment serves every process using that object (-a).
 */
#define HFB_COOKIE(op, rule) ((unsigned long long)(op) | ((unsigned long long)(rule) << 8))
enum hfb_size_rule {
	/* glibc, libptm: the size word at ptr - 8, flag bits masked. */
	HFB_SIZE_CHUNK_HEADER = 0,
	/* jemalloc, tcmalloc, mimalloc: a size class computed from the request. */
	HFB_SIZE_CLASS = 1,
};

enum hfb_mode {
	HFB_MODE_EXACT = 0,
	HFB_MODE_PASSIVE = 1,
};

/* procs: tgid -> how that process is traced.  Absent means "not traced". */
struct hfb_proc {
	unsigned long long start_boottime; /* task->start_boottime, ns: the identity */
	unsigned int mode;                 /* enum hfb_mode */
	unsigned int pad;
};

/*
 * stats: tgid -> counters, one copy per CPU, summed by user space.  Counters
 * that move together (a block's count, requested and chunk bytes, its size
 * bucket) sit in one cache line of one value, so a call touches one line.
 * The live_* fields are signed deltas: a block may be freed on another CPU.
 */
struct hfb_stats {
	long long live_count;
	long long live_requested;
	long long live_allocated;
	unsigned long long failed;
	unsigned long long released_bytes;
	unsigned long long dropped_events;
	unsigned long long calls[HFB_CALL_COUNT];
	unsigned long long syscalls[HFB_SYS_COUNT];
	unsigned long long hist_requests[HFB_HIST_BUCKETS];
	long long hist_live[HFB_HIST_BUCKETS];
	/*
	 * Exact mode: each timed call's duration, entry probe to return probe,
	 * in ns; lat[op][b] counts durations in log2 bucket b (snapshot.h).
	 */
	unsigned long long lat_sum_ns[HFB_LAT_OPS];
	unsigned long long lat[HFB_LAT_OPS][HFB_LAT_BUCKETS];
};

/* live: one entry per block allocated since attach. */
struct hfb_live_key {
	unsigned int tgid;
	unsigned int pad;
	unsigned long long addr;
};

/*
 * Allocation sites (exact mode).  A site is where an allocation call was
 * made from: the call's return address, which the return probe reads as its
 * instruction pointer (the kernel puts the original return address there
 * before it runs a return probe), and, unless --no-stacks, the user stack
 * above it as the kernel walks it by frame pointers (stacks, whose frame 0 is
 * that same return address).  stack_id is -1 when there is no stack: stacks
 * off, or the stack map had no room (counted as a dropped event).
 */
#define HFB_DEFAULT_MAX_SITES   16384
#define HFB_DEFAULT_MAX_STACKS  16384
#define HFB_DEFAULT_STACK_DEPTH 32
#define HFB_MAX_STACK_DEPTH     127 /* the kernel's perf_event_max_stack default */

struct hfb_site_key {
	unsigned int tgid;
	int stack_id;
	unsigned long long ret;
};

/* sites: one entry per site of a traced process; live_* are signed like hfb_stats'. */
struct hfb_site_val {
	long long live_count;
	long long live_requested;
	long long live_allocated;
	unsigned long long allocs;
	unsigned long long frees;
};

/* A live block's site is in its value; HFB_NO_SITE: it has none (the sites map was full). */
#define HFB_NO_SITE (-2)

struct hfb_live_val {
	unsigned long long requested;
	unsigned long long allocated;
	int stack_id; /* its site: stack_id and ret as in hfb_site_key */
	unsigned int pad;
	unsigned long long ret;
	unsigned long long born_ns; /* bpf_ktime_get_ns() at its allocation */
};

/*
 * areas: the 64 MiB granules (address >> HFB_AREA_SHIFT) that anonymous
 * mmaps made from inside allocator calls cover whole, key as live with the
 * granule number as addr: glibc's non-main arena heaps are 64 MiB-aligned
 * reservations of exactly that size.  An munmap covering a granule whole
 * unmarks it.
 * A madvise there is the allocator's whoever calls it (free has no return
 * probe to bracket its syscalls).
 */
#define HFB_AREA_SHIFT     26
#define HFB_AREA_MAX_MARKS 16

/* mmaps: the allocator's own mmapped chunks (exact mode), key as live. */
struct hfb_mmap_val {
	unsigned long long len;
};

/*
 * inflight: the allocator call a thread is inside of, in the thread's own
 * task storage (no hash update on the hot path; freed with the thread).
 * free has no return probe, so it never occupies this: a free is complete at
 * its entry.
 */
struct hfb_inflight {
	unsigned int op;     /* enum hfb_op of the outermost call */
	unsigned int depth;  /* calls nested inside it, not counted */
	unsigned int active; /* the thread is inside an allocator call */
	unsigned int pad;
	unsigned long long size;     /* bytes asked for (calloc: n * size) */
	unsigned long long ptr;      /* realloc: the old block */
	unsigned long long outp;     /* posix_memalign: where the answer goes */
	unsigned long long align;    /* the aligned allocations: the alignment asked for */
	unsigned long long start_ns; /* bpf_ktime_get_ns() at the entry probe */
};

/* sysflight: tid -> the heap syscall that thread is inside of. */
struct hfb_sysflight {
	unsigned int sys;      /* enum hfb_syscall */
	unsigned int in_alloc; /* issued from inside an allocator call */
	unsigned long long args[4];
	unsigned long long old_brk; /* brk: mm->brk before the call */
	unsigned long long heap_lo; /* mm->start_brk, for passive madvise */
};

/* Process lifecycle, sent on the events ring buffer (a few per process). */
enum hfb_event_type {
	HFB_EV_FORK = 1,
	HFB_EV_EXEC = 2,
	HFB_EV_EXIT = 3,
};

struct hfb_event {
	unsigned int type;
	unsigned int pid;  /* the tgid the event is about */
	unsigned int ppid; /* fork: the parent's tgid */
	int exit_code;     /* exit: the raw wait status bits of the leader */
	unsigned long long start_boottime;
	char filename[256]; /* exec: the path being executed */
};

#endif /* HF_BPF_HEAPFRAG_H */
