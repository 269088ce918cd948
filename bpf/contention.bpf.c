// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * contention.bpf.c - how often, and how long, the threads of traced
 * processes wait for glibc's private locks, per (process, lock address).
 *
 * One object serves every traced process: the loader attaches the entry
 * probe to each process's libc with that process's pid and adds the process
 * to the procs map; the two futex tracepoints are attached once and find the
 * threads they care about in the waiters map.  Attribution of a lock address
 * to an arena is done in user space, which knows where each arena lives.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "contention.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define FUTEX_CMD_MASK 0x7f /* without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME */
#define FUTEX_WAIT     0

/* The traced processes (tgid -> 1); sized by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CONTENTION_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u8);
} procs SEC(".maps");

/* Each thread's last contended acquisition, by pid_tgid; LRU so dead threads age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONTENTION_MAX_WAITERS);
	__type(key, __u64);
	__type(value, struct contention_wait);
} waiters SEC(".maps");

/* Per-CPU so that the maximum needs no atomic compare-and-swap (BPF ISA v1). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CONTENTION_MAX_LOCKS);
	__type(key, struct contention_key);
	__type(value, struct contention_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CONTENTION_NR_DROPS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void count_drop(__u32 which)
{
	__u64 *val = bpf_map_lookup_elem(&drops, &which);

	if (val)
		*val += 1;
}

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	/* Bounded loop: the verifier needs a constant trip count. */
	for (int i = 0; i < CONTENTION_HIST_SLOTS - 1; i++) {
		if (v == 0)
			break;
		v >>= 1;
		slot++;
	}
	return slot;
}

static __always_inline struct contention_stats *stats_of(__u32 tgid, __u64 lock, bool create)
{
	struct contention_key key = {.tgid = tgid, .lock = lock};
	struct contention_stats zero = {}, *st;

	st = bpf_map_lookup_elem(&stats, &key);
	if (st || !create)
		return st;
	/* EEXIST means another CPU created it first, which is fine. */
	if (bpf_map_update_elem(&stats, &key, &zero, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&stats, &key)) {
		count_drop(CONTENTION_DROP_LOCKS_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&stats, &key);
}

SEC("uprobe")
int BPF_KPROBE(lock_wait_enter, void *futex)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct contention_wait w = {.lock = (__u64)futex};
	struct contention_stats *st;

	/* Only traced processes; the probe is per-pid already, this guards against reuse. */
	if (!bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	st = stats_of(tgid, w.lock, true);
	if (!st)
		return 0;
	st->count++;
	st->hist[0]++; /* no wait yet; moved up as the thread sleeps */
	if (bpf_map_update_elem(&waiters, &id, &w, BPF_ANY))
		count_drop(CONTENTION_DROP_WAITERS_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_futex")
int futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct contention_wait *w = bpf_map_lookup_elem(&waiters, &id);

	/* Only a FUTEX_WAIT on the word this thread is acquiring is a wait for it. */
	if (!w || (__u64)ctx->args[0] != w->lock || (ctx->args[1] & FUTEX_CMD_MASK) != FUTEX_WAIT)
		return 0;
	w->sleep_start = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex")
int futex_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct contention_wait *w = bpf_map_lookup_elem(&waiters, &id);
	struct contention_stats *st;
	__u64 slept, before;
	__u32 from, to;

	if (!w || !w->sleep_start)
		return 0;
	slept = bpf_ktime_get_ns() - w->sleep_start;
	w->sleep_start = 0;
	before = w->waited_ns;
	w->waited_ns = before + slept;
	st = stats_of(id >> 32, w->lock, false);
	if (!st)
		return 0;
	st->total_ns += slept;
	if (w->waited_ns > st->max_ns)
		st->max_ns = w->waited_ns;
	/* The acquisition's histogram entry follows its growing wait. */
	from = log2_slot(before);
	to = log2_slot(w->waited_ns);
	if (from != to && from < CONTENTION_HIST_SLOTS && to < CONTENTION_HIST_SLOTS) {
		st->hist[from]--;
		st->hist[to]++;
	}
	return 0;
}
