// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * smoke.bpf.c - the smallest proof that this machine can run heapfrag's
 * kinds of probe: a uprobe on a user function and a syscall tracepoint, both
 * filtered to one process.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "smoke.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SMOKE_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

const volatile __u32 target_tgid = 0;

static __always_inline void count(__u32 which)
{
	__u64 *val = bpf_map_lookup_elem(&counters, &which);

	if (val)
		__sync_fetch_and_add(val, 1);
}

SEC("uprobe")
int BPF_KPROBE(smoke_uprobe)
{
	/* Only the target counts, whatever else maps the same file. */
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	count(SMOKE_UPROBE_HITS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int smoke_getppid(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	count(SMOKE_GETPPID_CALLS);
	return 0;
}
