// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * heapfrag.bpf.c - the kernel side of heapfragd.
 *
 * Uprobes on the malloc family keep, per traced process, a hash of live
 * blocks and per-CPU counters; syscall tracepoints count the heap syscalls
 * and learn which mappings the allocator made; sched tracepoints report
 * forks, execs and exits on a small ring buffer.  Nothing is sent to user
 * space per allocation: the daemon reads the maps once an interval.
 *
 * Pairing: the entry probe of the outermost allocator call of a thread
 * stores its arguments in the thread's task storage (inflight); calls nested
 * inside it (calloc -> malloc, realloc -> malloc + free) only move a depth
 * counter, so a call is counted once, by the return probe of the outermost
 * call.  free is counted at its entry (its argument is all it needs) and has
 * no return probe: a return probe costs every free a second trap, and free
 * is the hottest call there is.  A free nested in another call is ignored at
 * entry, so it needs no return to undo anything.
 *
 * Cost: these probes fire on every allocation, so each does the least work
 * that keeps the account exact: one per-CPU counter lookup (the stats entry
 * exists from the moment a process is tracked), the task storage instead of
 * a tid hash, and the live hash is only read where a value must be undone.
 *
 * Heap syscalls (brk, mmap, munmap, mremap, madvise) of a traced process are
 * all counted, at entry, as strace -c counts them.  released_bytes counts
 * what goes back to the kernel: a shrinking brk always (the brk heap is the
 * allocator's); in exact mode munmap of a known mmapped chunk and the shrink
 * of a known mremap'd chunk whoever calls them (a chunk is only known if the
 * allocator mapped it), and MADV_DONTNEED/MADV_FREE ranges that are the
 * allocator's: made from inside an allocator call with a return probe, or
 * starting in the brk heap, or in a granule of the allocator's anonymous
 * mmaps (the areas map) - which covers the madvise calls free makes without
 * bracketing it.  In passive mode (no uprobes) only MADV_DONTNEED/MADV_FREE
 * ranges that start in the brk heap count, which is known from the task's mm
 * (start_brk..brk).  process_madvise(2) of the caller's own memory counts
 * like madvise (libptm batches its releases that way).  In exact mode the
 * anonymous read-write mmaps made from
 * inside an allocator call are remembered as the allocator's mmapped chunks
 * (the mmaps map), for the mapped_bytes.mmap sum.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "heapfrag.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_PROCS);
	__type(key, u32);
	__type(value, struct hfb_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_PROCS);
	__type(key, u32);
	__type(value, struct hfb_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_LIVE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hfb_live_key);
	__type(value, struct hfb_live_val);
} live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_SITES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hfb_site_key);
	__type(value, struct hfb_site_val);
} sites SEC(".maps");

/* The loader sets the value size to --stack-depth frames before load. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, HFB_DEFAULT_MAX_STACKS);
	__uint(key_size, sizeof(u32));
	__uint(value_size, HFB_DEFAULT_STACK_DEPTH * sizeof(u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_MMAPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hfb_live_key);
	__type(value, struct hfb_mmap_val);
} mmaps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_MMAPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hfb_live_key);
	__type(value, u32);
} areas SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct hfb_inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFB_DEFAULT_MAX_INFLIGHT);
	__type(key, u32);
	__type(value, struct hfb_sysflight);
} sysflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HFB_EVENTS_BYTES);
} events SEC(".maps");

/* Set by the loader before load. */
const volatile bool follow_forks = true;
const volatile bool trace_all = false; /* -a: every process is traced */
const volatile unsigned int trace_all_mode = HFB_MODE_EXACT;
const volatile bool watch_exec = false;    /* -e: report every exec */
const volatile unsigned int self_tgid = 0; /* heapfragd itself, never traced by -a */
const volatile bool want_sites = true;     /* keep allocation sites (exact mode) */
const volatile bool want_stacks = true;    /* ... with their stacks (not --no-stacks) */

/* The initial value of a process's counters (map values may come from here). */
struct hfb_stats zero_stats;
struct hfb_site_val zero_site;

#define PROT_READ     0x1
#define PROT_WRITE    0x2
#define MAP_ANONYMOUS 0x20
#define MADV_DONTNEED 4
#define MADV_FREE     8
/* process_madvise(2)'s pidfds for the caller itself (Linux 6.14). */
#define PIDFD_SELF_THREAD       -10000
#define PIDFD_SELF_THREAD_GROUP -20000
#define PAGE_SIZE               4096ULL
#define MAX_ERRNO               4095
#define SMALL_MAXCLASS          14336ULL /* jemalloc's largest small class with 4 KiB pages */
#define LARGE_MINCLASS          16384ULL

static __always_inline u32 log2_u64(u64 v)
{
	u32 r = 0, shift;

	shift = (v > 0xffffffffULL) << 5;
	v >>= shift;
	r |= shift;
	shift = (v > 0xffff) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/*
 * The log2 bucket of v among n: bucket 0 holds v <= 2^shift, bucket i holds
 * (2^(shift + i - 1), 2^(shift + i)], the last everything above.
 */
static __always_inline u32 log2_bucket(u64 v, u32 shift, u32 n)
{
	u32 b;

	if (v <= (1ULL << shift))
		return 0;
	b = log2_u64(v - 1) + 1 - shift;
	return b < n ? b : n - 1;
}

/* Request sizes: bucket 0 holds sizes <= 16 bytes. */
static __always_inline u32 hist_bucket(u64 size)
{
	return log2_bucket(size, HFB_HIST_MIN_SHIFT, HFB_HIST_BUCKETS);
}

/*
 * The size class of a request for allocators without a chunk header:
 * 8 bytes up to 8, multiples of 16 up to 128, then four classes per power
 * of two (a step of 2^(floor(log2(n - 1)) - 2)).  These are jemalloc's
 * classes exactly (small and large alike) and mimalloc's up to its large
 * objects; tcmalloc's tables differ by up to one step.
 */
static __always_inline u64 size_class(u64 n)
{
	u64 delta;

	if (n <= 8)
		return 8;
	if (n <= 128)
		return (n + 15) & ~15ULL;
	delta = 1ULL << (log2_u64(n - 1) - 2);
	return (n + delta - 1) & ~(delta - 1);
}

/*
 * jemalloc's usable size of an aligned request (its sz_sa2u): small classes
 * serve alignments up to a page by rounding the size up to the alignment
 * first; anything else is a large class, 16 KiB at least.
 */
static __always_inline u64 aligned_size_class(u64 n, u64 align)
{
	u64 usize;

	if (align <= 16)
		return size_class(n);
	if (n <= SMALL_MAXCLASS && align <= PAGE_SIZE) {
		usize = size_class((n + align - 1) & ~(align - 1));
		if (usize < LARGE_MINCLASS)
			return usize;
	}
	return n <= LARGE_MINCLASS ? LARGE_MINCLASS : size_class(n);
}

static __always_inline bool is_err(long ret)
{
	return ret < 0 && ret >= -MAX_ERRNO;
}

/* The counters of a traced process, or NULL when tgid is not traced. */
static __always_inline struct hfb_stats *traced_stats(u32 tgid, struct hfb_proc **procp)
{
	struct hfb_proc *proc = bpf_map_lookup_elem(&procs, &tgid);
	struct hfb_stats *st;

	if (!proc) {
		struct hfb_proc fresh = {};
		struct task_struct *task;

		if (!trace_all || tgid == self_tgid)
			return NULL;
		task = bpf_get_current_task_btf();
		fresh.start_boottime = task->group_leader->start_boottime;
		fresh.mode = trace_all_mode;
		bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
		proc = bpf_map_lookup_elem(&procs, &tgid);
		if (!proc)
			return NULL;
	}
	if (procp)
		*procp = proc;
	st = bpf_map_lookup_elem(&stats, &tgid);
	if (st)
		return st;
	bpf_map_update_elem(&stats, &tgid, &zero_stats, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stats, &tgid);
}

/*
 * The counters of the process a uprobe fired in.  Without -a the uprobes are
 * filtered to traced processes by the kernel and their stats entry is made
 * when they are tracked, so one per-CPU lookup is all a hit pays.
 */
static __always_inline struct hfb_stats *uprobe_stats(u32 tgid)
{
	struct hfb_stats *st;

	if (!trace_all) {
		st = bpf_map_lookup_elem(&stats, &tgid);
		if (st)
			return st;
	}
	return traced_stats(tgid, NULL);
}

/* The thread's allocator call, or NULL when it is in none. */
static __always_inline struct hfb_inflight *current_call(void)
{
	struct hfb_inflight *in;

	in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL, 0);
	return in && in->active ? in : NULL;
}

/* A site's entry, made on its first allocation; NULL when the map is full. */
static __always_inline struct hfb_site_val *site_get(const struct hfb_site_key *k)
{
	struct hfb_site_val *v = bpf_map_lookup_elem(&sites, k);

	if (v)
		return v;
	bpf_map_update_elem(&sites, k, &zero_site, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sites, k);
}

/* Takes a live block off its site's books (a free, or a block replaced). */
static __always_inline void site_release(u32 tgid, const struct hfb_live_val *old)
{
	struct hfb_site_key k = {.tgid = tgid, .stack_id = old->stack_id, .ret = old->ret};
	struct hfb_site_val *v;

	if (old->stack_id == HFB_NO_SITE)
		return;
	v = bpf_map_lookup_elem(&sites, &k);
	if (!v)
		return;
	__sync_fetch_and_add(&v->live_count, -1);
	__sync_fetch_and_add(&v->live_requested, -(s64)old->requested);
	__sync_fetch_and_add(&v->live_allocated, -(s64)old->allocated);
	__sync_fetch_and_add(&v->frees, 1);
}

/*
 * The site of the allocation whose return probe runs now, written into the
 * block's value: the return address is the instruction pointer here, and the
 * stack walked from here starts with it.  A full map loses the site
 * (counted), not the block.  Returns the site's entry, or NULL.
 */
static __always_inline struct hfb_site_val *site_of_return(struct pt_regs *ctx,
							   struct hfb_stats *st, u32 tgid,
							   struct hfb_live_val *val)
{
	struct hfb_site_key k = {.tgid = tgid, .stack_id = -1, .ret = PT_REGS_IP(ctx)};
	struct hfb_site_val *v;

	val->stack_id = HFB_NO_SITE;
	if (!want_sites)
		return NULL;
	if (want_stacks) {
		long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);

		/*
		 * A stack the map cannot hold (full, or its bucket taken by another)
		 * leaves the site its frame 0: nothing is lost from the account, so
		 * it is no dropped event.
		 */
		if (id >= 0)
			k.stack_id = (int)id;
	}
	v = site_get(&k);
	if (!v) {
		__sync_fetch_and_add(&st->dropped_events, 1);
		return NULL;
	}
	val->stack_id = k.stack_id;
	val->ret = k.ret;
	return v;
}

/* Puts a block that is now in the live map on its site's books. */
static __always_inline void site_take(struct hfb_site_val *v, const struct hfb_live_val *val)
{
	if (!v)
		return;
	__sync_fetch_and_add(&v->live_count, 1);
	__sync_fetch_and_add(&v->live_requested, val->requested);
	__sync_fetch_and_add(&v->live_allocated, val->allocated);
	__sync_fetch_and_add(&v->allocs, 1);
}

static __always_inline void add_live(struct pt_regs *ctx, struct hfb_stats *st, u32 tgid, u64 ptr,
				     u64 size, u64 align, u32 rule)
{
	struct hfb_live_key key = {.tgid = tgid, .addr = ptr};
	struct hfb_live_val val = {.requested = size}, *old;
	struct hfb_site_val *site;
	u64 word = 0;

	if (rule == HFB_SIZE_CHUNK_HEADER &&
	    bpf_probe_read_user(&word, sizeof(word), (void *)(ptr - 8)) == 0)
		/* The low three bits are flags; IS_MMAPPED chunks hold the mapping's size. */
		val.allocated = word & ~7ULL;
	else if (rule == HFB_SIZE_CHUNK_HEADER)
		val.allocated = size;
	else
		val.allocated = aligned_size_class(size, align);
	val.born_ns = bpf_ktime_get_ns();
	site = site_of_return(ctx, st, tgid, &val);

	/*
	 * Inserted without a lookup first: a block already in the map (freed
	 * while we missed it) is the rare case, so only then is it looked up and
	 * replaced.
	 */
	if (bpf_map_update_elem(&live, &key, &val, BPF_NOEXIST) != 0) {
		old = bpf_map_lookup_elem(&live, &key);
		if (!old) {
			/* The map is full: the block is not tracked, and that is counted. */
			__sync_fetch_and_add(&st->dropped_events, 1);
			return;
		}
		__sync_fetch_and_add(&st->live_count, -1);
		__sync_fetch_and_add(&st->live_requested, -(s64)old->requested);
		__sync_fetch_and_add(&st->live_allocated, -(s64)old->allocated);
		__sync_fetch_and_add(&st->hist_live[hist_bucket(old->requested)], -1);
		site_release(tgid, old);
		*old = val;
	}
	site_take(site, &val);
	__sync_fetch_and_add(&st->live_count, 1);
	__sync_fetch_and_add(&st->live_requested, size);
	__sync_fetch_and_add(&st->live_allocated, val.allocated);
	__sync_fetch_and_add(&st->hist_live[hist_bucket(size)], 1);
}

/* Blocks allocated before attach (or dropped) are not in the map: ignored. */
static __always_inline void remove_live(struct hfb_stats *st, u32 tgid, u64 ptr)
{
	struct hfb_live_key key = {.tgid = tgid, .addr = ptr};
	struct hfb_live_val *old = bpf_map_lookup_elem(&live, &key);

	if (!old)
		return;
	__sync_fetch_and_add(&st->live_count, -1);
	__sync_fetch_and_add(&st->live_requested, -(s64)old->requested);
	__sync_fetch_and_add(&st->live_allocated, -(s64)old->allocated);
	__sync_fetch_and_add(&st->hist_live[hist_bucket(old->requested)], -1);
	site_release(tgid, old);
	bpf_map_delete_elem(&live, &key);
}

static __always_inline void count_latency(struct hfb_stats *st, u32 op, u64 start_ns)
{
	u64 ns = bpf_ktime_get_ns() - start_ns;

	if (op >= HFB_LAT_OPS)
		return;
	__sync_fetch_and_add(&st->lat_sum_ns[op], ns);
	/* Bucket 0 holds durations <= 256 ns. */
	__sync_fetch_and_add(&st->lat[op][log2_bucket(ns, HFB_LAT_MIN_SHIFT, HFB_LAT_BUCKETS)], 1);
}

static __always_inline void count_request(struct hfb_stats *st, u32 call, u64 size)
{
	__sync_fetch_and_add(&st->calls[call], 1);
	__sync_fetch_and_add(&st->hist_requests[hist_bucket(size)], 1);
}

SEC("uprobe")
int BPF_KPROBE(hf_alloc_entry, u64 a0, u64 a1, u64 a2)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u32 op = bpf_get_attach_cookie(ctx) & 0xff;
	struct hfb_inflight *in, call = {.op = op, .active = 1};
	struct hfb_stats *st;

	in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in)
		return 0;
	/*
	 * Nested inside another allocator call of this thread: counted by that
	 * one.  free has no return probe to undo a depth step, so it takes none.
	 */
	if (in->active) {
		if (op != HFB_OP_FREE && op != HFB_OP_CFREE)
			in->depth++;
		return 0;
	}
	/*
	 * Without -a the kernel only runs this for traced processes, and the
	 * allocations are counted at return: only free needs the counters now.
	 */
	st = NULL;
	if (trace_all || op == HFB_OP_FREE || op == HFB_OP_CFREE) {
		st = uprobe_stats(tgid);
		if (!st)
			return 0;
	}

	switch (op) {
	case HFB_OP_MALLOC:
		call.size = a0;
		break;
	case HFB_OP_VALLOC:
		call.size = a0;
		call.align = PAGE_SIZE;
		break;
	case HFB_OP_PVALLOC:
		call.size = a0;
		call.align = PAGE_SIZE;
		break;
	case HFB_OP_CALLOC:
		call.size = a0 * a1;
		break;
	case HFB_OP_REALLOC:
		call.ptr = a0;
		call.size = a1;
		break;
	case HFB_OP_REALLOCARRAY:
		call.ptr = a0;
		call.size = a1 * a2;
		break;
	case HFB_OP_ALIGNED_ALLOC:
	case HFB_OP_MEMALIGN:
		call.align = a0;
		call.size = a1;
		break;
	case HFB_OP_POSIX_MEMALIGN:
		call.outp = a0;
		call.align = a1;
		call.size = a2;
		break;
	case HFB_OP_FREE:
	case HFB_OP_CFREE:
		if (!st)
			return 0;
		__sync_fetch_and_add(&st->calls[HFB_CALL_FREE], 1);
		if (a0)
			remove_live(st, tgid, a0);
		return 0;
	default:
		break;
	}
	/* Last, so that the time taken to store the arguments is not the call's. */
	call.start_ns = bpf_ktime_get_ns();
	*in = call;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(hf_alloc_return, u64 ret)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u64 cookie = bpf_get_attach_cookie(ctx);
	u32 rule = (cookie >> 8) & 0xff;
	struct hfb_inflight *in, call;
	struct hfb_stats *st;
	u64 ptr = ret;

	in = current_call();
	if (!in)
		return 0;
	if (in->depth) {
		in->depth--;
		return 0;
	}
	call = *in;
	in->active = 0;
	st = uprobe_stats(tgid);
	if (!st)
		return 0;

	switch (call.op) {
	case HFB_OP_MALLOC:
		count_latency(st, HFB_LAT_MALLOC, call.start_ns);
		count_request(st, HFB_CALL_MALLOC, call.size);
		break;
	case HFB_OP_CALLOC:
		count_latency(st, HFB_LAT_CALLOC, call.start_ns);
		count_request(st, HFB_CALL_CALLOC, call.size);
		break;
	case HFB_OP_ALIGNED_ALLOC:
	case HFB_OP_MEMALIGN:
	case HFB_OP_VALLOC:
	case HFB_OP_PVALLOC:
		count_latency(st, HFB_LAT_MEMALIGN, call.start_ns);
		count_request(st, HFB_CALL_MEMALIGN, call.size);
		break;
	case HFB_OP_POSIX_MEMALIGN:
		count_latency(st, HFB_LAT_MEMALIGN, call.start_ns);
		count_request(st, HFB_CALL_MEMALIGN, call.size);
		/* It answers through its out-pointer; the return value is an errno. */
		ptr = 0;
		if ((int)ret == 0 && bpf_probe_read_user(&ptr, sizeof(ptr), (void *)call.outp) != 0)
			ptr = 0;
		break;
	case HFB_OP_REALLOC:
	case HFB_OP_REALLOCARRAY:
		count_latency(st, HFB_LAT_REALLOC, call.start_ns);
		__sync_fetch_and_add(&st->calls[HFB_CALL_REALLOC], 1);
		if (call.size || !call.ptr)
			__sync_fetch_and_add(&st->hist_requests[hist_bucket(call.size)], 1);
		if (!call.ptr)
			break; /* realloc(NULL, n) is malloc(n). */
		if (!ret && call.size)
			break; /* It failed: the old block stays as it was. */
		remove_live(st, tgid, call.ptr);
		if (!ret)
			return 0; /* realloc(p, 0) freed p and returned NULL. */
		break;
	default:
		return 0; /* free and malloc_trim: nothing to do on return. */
	}
	if (!ptr) {
		__sync_fetch_and_add(&st->failed, 1);
		return 0;
	}
	add_live(ctx, st, tgid, ptr, call.size, call.align, rule);
	return 0;
}

static __always_inline int sys_enter(u32 sys, u64 a0, u64 a1, u64 a2, u64 a3)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	struct hfb_sysflight fl = {.sys = sys};
	struct task_struct *task;
	struct hfb_stats *st;

	st = traced_stats(tgid, NULL);
	if (!st)
		return 0;
	/* Counted at entry, like strace -c counts calls, failed ones included. */
	__sync_fetch_and_add(&st->syscalls[sys], 1);
	fl.in_alloc = current_call() != NULL;
	fl.args[0] = a0;
	fl.args[1] = a1;
	fl.args[2] = a2;
	fl.args[3] = a3;
	if (sys == HFB_SYS_BRK || sys == HFB_SYS_MADVISE || sys == HFB_SYS_PROCESS_MADVISE) {
		task = bpf_get_current_task_btf();
		fl.old_brk = BPF_CORE_READ(task, mm, brk);
		fl.heap_lo = BPF_CORE_READ(task, mm, start_brk);
	}
	bpf_map_update_elem(&sysflight, &tid, &fl, BPF_ANY);
	return 0;
}

static __always_inline void forget_span(struct hfb_stats *st, u32 tgid, u64 addr, u64 len)
{
	struct hfb_live_key key = {.tgid = tgid, .addr = addr};
	struct hfb_mmap_val *span = bpf_map_lookup_elem(&mmaps, &key), rest;

	if (!span)
		return;
	if (len < span->len) {
		/* The head was unmapped: the rest stays a span of its own. */
		rest.len = span->len - len;
		key.addr = addr + len;
		bpf_map_update_elem(&mmaps, &key, &rest, BPF_ANY);
		key.addr = addr;
	}
	bpf_map_delete_elem(&mmaps, &key);
}

static __always_inline void remember_span(struct hfb_stats *st, u32 tgid, u64 addr, u64 len)
{
	struct hfb_live_key key = {.tgid = tgid, .addr = addr};
	struct hfb_mmap_val span = {.len = len};

	if (bpf_map_update_elem(&mmaps, &key, &span, BPF_ANY) != 0)
		__sync_fetch_and_add(&st->dropped_events, 1);
}

static __always_inline u64 page_up(u64 len)
{
	return (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

/*
 * Marks (or unmarks) the granules that [addr, addr + len) covers whole, at
 * most HFB_AREA_MAX_MARKS of them.  Only whole ones: a granule the allocator
 * shares with other mappings (a thread stack next to an arena reservation)
 * must not make their madvise calls the allocator's.
 */
static __always_inline void mark_areas(struct hfb_stats *st, u32 tgid, u64 addr, u64 len, bool mark)
{
	struct hfb_live_key key = {.tgid = tgid};
	u64 granule = 1ULL << HFB_AREA_SHIFT;
	u64 first = (addr + granule - 1) >> HFB_AREA_SHIFT, end = (addr + len) >> HFB_AREA_SHIFT;
	u32 one = 1;

	for (int i = 0; i < HFB_AREA_MAX_MARKS; i++) {
		if (first + i >= end)
			break;
		key.addr = first + i;
		if (!mark) {
			bpf_map_delete_elem(&areas, &key);
		} else if (bpf_map_update_elem(&areas, &key, &one, BPF_ANY) != 0) {
			__sync_fetch_and_add(&st->dropped_events, 1);
			break;
		}
	}
}

static __always_inline bool in_areas(u32 tgid, u64 addr)
{
	struct hfb_live_key key = {.tgid = tgid, .addr = addr >> HFB_AREA_SHIFT};

	return bpf_map_lookup_elem(&areas, &key) != NULL;
}

static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	struct hfb_sysflight *p, fl;
	struct hfb_proc *proc = NULL;
	bool brk_heap;
	struct hfb_stats *st;
	long ret = ctx->ret;
	bool exact;

	p = bpf_map_lookup_elem(&sysflight, &tid);
	if (!p)
		return 0;
	fl = *p;
	bpf_map_delete_elem(&sysflight, &tid);
	st = traced_stats(tgid, &proc);
	if (!st || !proc || is_err(ret))
		return 0;
	exact = proc->mode == HFB_MODE_EXACT;

	switch (fl.sys) {
	case HFB_SYS_BRK:
		/* The brk heap is always the allocator's: a shrink is a release. */
		if ((u64)ret < fl.old_brk)
			__sync_fetch_and_add(&st->released_bytes, fl.old_brk - (u64)ret);
		break;
	case HFB_SYS_MMAP:
		if (!exact || !fl.in_alloc || !(fl.args[3] & MAP_ANONYMOUS) || !fl.args[1])
			break;
		/* Chunks are anonymous read-write maps; PROT_NONE ones reserve arena heaps. */
		if ((fl.args[2] & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE))
			remember_span(st, tgid, (u64)ret, page_up(fl.args[1]));
		mark_areas(st, tgid, (u64)ret, fl.args[1], true);
		break;
	case HFB_SYS_MUNMAP:
		/* Only the allocator maps a known chunk: unmapping it is its release. */
		if (exact) {
			mark_areas(st, tgid, fl.args[0], fl.args[1], false);
			struct hfb_live_key key = {.tgid = tgid, .addr = fl.args[0]};
			struct hfb_mmap_val *span = bpf_map_lookup_elem(&mmaps, &key);

			if (span) {
				u64 len = page_up(fl.args[1]);

				__sync_fetch_and_add(&st->released_bytes,
						     len < span->len ? len : span->len);
				forget_span(st, tgid, fl.args[0], len);
			}
		}
		break;
	case HFB_SYS_MREMAP:
		if (exact) {
			struct hfb_live_key key = {.tgid = tgid, .addr = fl.args[0]};
			u64 old_len = page_up(fl.args[1]), new_len = page_up(fl.args[2]);

			if (!bpf_map_lookup_elem(&mmaps, &key))
				break;
			bpf_map_delete_elem(&mmaps, &key);
			remember_span(st, tgid, (u64)ret, new_len);
			if (new_len < old_len)
				__sync_fetch_and_add(&st->released_bytes, old_len - new_len);
		}
		break;
	case HFB_SYS_MADVISE:
		if (fl.args[2] != MADV_DONTNEED && fl.args[2] != MADV_FREE)
			break;
		/*
		 * Exact: whatever the allocator gives back, known by the call it
		 * is in or by where it lies.  Passive: only what lies in the brk
		 * heap, the one heap region known without uprobes.
		 */
		brk_heap = fl.args[0] >= fl.heap_lo && fl.args[0] < fl.old_brk;
		if (brk_heap || (exact && (fl.in_alloc || in_areas(tgid, fl.args[0]))))
			__sync_fetch_and_add(&st->released_bytes, page_up(fl.args[1]));
		break;
	case HFB_SYS_PROCESS_MADVISE: {
		/* Only on its own memory; ret is the bytes advised, in whole pages. */
		int pidfd = (int)fl.args[0];
		u64 base = 0;

		if ((pidfd != PIDFD_SELF_THREAD && pidfd != PIDFD_SELF_THREAD_GROUP) ||
		    (fl.args[3] != MADV_DONTNEED && fl.args[3] != MADV_FREE) || !fl.args[2])
			break;
		/*
		 * One call releases runs of one heap (libptm batches per arena
		 * under its lock), so the first run says whose they are.
		 */
		if (bpf_probe_read_user(&base, sizeof(base), (void *)fl.args[1]) != 0)
			break;
		brk_heap = base >= fl.heap_lo && base < fl.old_brk;
		if (brk_heap || (exact && (fl.in_alloc || in_areas(tgid, base))))
			__sync_fetch_and_add(&st->released_bytes, (u64)ret);
		break;
	}
	default:
		break;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int hf_enter_brk(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(HFB_SYS_BRK, ctx->args[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int hf_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(HFB_SYS_MMAP, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int hf_enter_munmap(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(HFB_SYS_MUNMAP, ctx->args[0], ctx->args[1], 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_mremap")
int hf_enter_mremap(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(HFB_SYS_MREMAP, ctx->args[0], ctx->args[1], ctx->args[2], 0);
}

SEC("tracepoint/syscalls/sys_enter_madvise")
int hf_enter_madvise(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(HFB_SYS_MADVISE, ctx->args[0], ctx->args[1], ctx->args[2], 0);
}

SEC("tracepoint/syscalls/sys_enter_process_madvise")
int hf_enter_process_madvise(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(HFB_SYS_PROCESS_MADVISE, ctx->args[0], ctx->args[1], ctx->args[2],
			 ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_process_madvise")
int hf_exit_process_madvise(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_brk")
int hf_exit_brk(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int hf_exit_mmap(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_munmap")
int hf_exit_munmap(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_mremap")
int hf_exit_mremap(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_madvise")
int hf_exit_madvise(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}

static __always_inline void emit(u32 type, u32 pid, u32 ppid, int code, u64 start,
				 const char *filename)
{
	struct hfb_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev)
		return;
	ev->type = type;
	ev->pid = pid;
	ev->ppid = ppid;
	ev->exit_code = code;
	ev->start_boottime = start;
	ev->filename[0] = '\0';
	if (filename)
		bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), filename);
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(hf_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct hfb_proc *pproc, cproc = {};

	/* A new thread is not a new process. */
	if (child->pid != child->tgid)
		return 0;
	pproc = bpf_map_lookup_elem(&procs, &ptgid);
	if (!pproc || !follow_forks || trace_all)
		return 0;
	/*
	 * The child is traced from here on (its syscalls at once, its calls once
	 * the daemon has attached its uprobes).  Its account starts empty: the
	 * blocks it inherits are not its allocations, and their frees are ignored
	 * like every free of a block allocated before attach.
	 */
	cproc.start_boottime = child->start_boottime;
	cproc.mode = pproc->mode;
	/* An update from BPF zeroes every other CPU's copy: a fresh account. */
	if (bpf_map_update_elem(&stats, &ctgid, &zero_stats, BPF_ANY) != 0)
		bpf_map_delete_elem(&stats, &ctgid);
	if (bpf_map_update_elem(&procs, &ctgid, &cproc, BPF_ANY) != 0)
		return 0;
	emit(HFB_EV_FORK, ctgid, ptgid, 0, cproc.start_boottime, NULL);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(hf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u32 tgid = p->tgid;

	if (!watch_exec && !bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	emit(HFB_EV_EXEC, tgid, 0, 0, p->group_leader->start_boottime, bprm->filename);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(hf_exit, struct task_struct *p, bool group_dead)
{
	u32 tid = p->pid, tgid = p->tgid;
	struct hfb_proc *proc;

	/* The thread's inflight task storage goes with the thread. */
	bpf_map_delete_elem(&sysflight, &tid);
	if (!group_dead)
		return 0;
	proc = bpf_map_lookup_elem(&procs, &tgid);
	if (!proc)
		return 0;
	/* A recycled PID must not inherit this process's tracing. */
	emit(HFB_EV_EXIT, tgid, 0, p->exit_code, proc->start_boottime, NULL);
	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}
