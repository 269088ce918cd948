// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * ptm_usdt.bpf.c - libptm's USDT probes, summed per traced process and per
 * (process, arena): heap growth and shrinkage, page releases, arena lock
 * waits, and the sampled live-heap profile as running sums.
 *
 * One object serves every libptm process: the loader attaches each program
 * to each process's libptm with that process's pid, and creates the
 * process's entry in procs; events of a process without an entry (being
 * removed) are ignored.  Arguments come from the probes' notes through
 * libbpf's usdt.bpf.h; the layout is in allocator/include/ptm_usdt.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "ptm_usdt.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Per-process sums (tgid -> struct ptm_usdt_proc); entries made by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PTM_USDT_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct ptm_usdt_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PTM_USDT_MAX_ARENAS);
	__type(key, struct ptm_usdt_arena_key);
	__type(value, struct ptm_usdt_arena);
} arenas SEC(".maps");

/* The live samples; a plain hash, since a free must find its allocation's entry on any CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PTM_USDT_MAX_SAMPLES);
	__type(key, struct ptm_usdt_sample_key);
	__type(value, struct ptm_usdt_sample);
} samples SEC(".maps");

/* The sampled profile by site; created on a site's first sample. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PTM_USDT_MAX_SITES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ptm_usdt_site_key);
	__type(value, struct ptm_usdt_site);
} sites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, PTM_USDT_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PTM_USDT_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

static const struct ptm_usdt_site zero_site;

/* Threads between lock_contended_begin and _end; LRU so that threads that die mid-wait age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PTM_USDT_MAX_WAITERS);
	__type(key, __u64);
	__type(value, struct ptm_usdt_wait);
} waiters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PTM_USDT_NR_GLOBAL_DROPS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline struct ptm_usdt_proc *proc_count(enum ptm_usdt_probe probe)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ptm_usdt_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p && probe < PTM_USDT_NR_PROBES)
		p->count[probe] += 1;
	return p;
}

static __always_inline struct ptm_usdt_arena *arena_of(__u64 arena)
{
	struct ptm_usdt_arena_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .arena = arena};
	struct ptm_usdt_arena zero = {}, *a;
	__u32 idx = 0;
	__u64 *lost;

	a = bpf_map_lookup_elem(&arenas, &key);
	if (a)
		return a;
	bpf_map_update_elem(&arenas, &key, &zero, BPF_NOEXIST);
	a = bpf_map_lookup_elem(&arenas, &key);
	if (a)
		return a;
	lost = bpf_map_lookup_elem(&drops, &idx);
	if (lost)
		*lost += 1;
	return NULL;
}

static __always_inline __u32 wait_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < PTM_USDT_WAIT_SLOTS - 1; i++) {
		if (v == 0)
			break;
		v >>= 1;
		slot++;
	}
	return slot;
}

/* snapshot.h's bucket of a size: 0 for s <= 16, else ceil(log2(s)) - 4, the last one open. */
static __always_inline __u32 size_bucket(__u64 s)
{
	__u64 v;
	__u32 bits = 0;

	if (s <= (1ULL << PTM_USDT_SIZE_MIN_SHIFT))
		return 0;
	v = s - 1;
	for (int i = 0; i < 64; i++) {
		if (v == 0)
			break;
		v >>= 1;
		bits++;
	}
	bits -= PTM_USDT_SIZE_MIN_SHIFT;
	return bits < PTM_USDT_SIZE_BUCKETS ? bits : PTM_USDT_SIZE_BUCKETS - 1;
}

SEC("usdt")
int BPF_USDT(on_heap_grow, __u64 arena, __u64 bytes, __u64 system_bytes)
{
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_HEAP_GROW);
	struct ptm_usdt_arena *a;

	if (!p)
		return 0;
	p->grow_bytes += bytes;
	a = arena_of(arena);
	if (a)
		a->grow_bytes += bytes;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_heap_shrink, __u64 arena, __u64 bytes, __u64 system_bytes)
{
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_HEAP_SHRINK);
	struct ptm_usdt_arena *a;

	if (!p)
		return 0;
	p->shrink_bytes += bytes;
	a = arena_of(arena);
	if (a)
		a->shrink_bytes += bytes;
	return 0;
}

/* Made on the arena's first event, so that arenas without lock waits are listed too. */
static __always_inline void note_index(__u64 arena, __u64 index)
{
	struct ptm_usdt_arena *a = arena_of(arena);

	if (a)
		a->index1 = index + 1;
}

SEC("usdt")
int BPF_USDT(on_arena_create, __u64 arena, __u64 index)
{
	if (proc_count(PTM_USDT_ARENA_CREATE))
		note_index(arena, index);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_arena_reuse, __u64 arena, __u64 index)
{
	if (proc_count(PTM_USDT_ARENA_REUSE))
		note_index(arena, index);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_lock_begin, __u64 arena)
{
	struct ptm_usdt_wait w = {.arena = arena, .since_ns = bpf_ktime_get_ns()};
	__u64 id = bpf_get_current_pid_tgid();
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_LOCK_BEGIN);

	if (p && bpf_map_update_elem(&waiters, &id, &w, BPF_ANY) != 0)
		p->waiter_drops += 1;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_lock_end, __u64 arena, __u64 wait_ns)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_LOCK_END);
	struct ptm_usdt_wait *w;
	struct ptm_usdt_arena *a;
	__u32 slot;

	if (!p)
		return 0;
	/*
	 * The wait is libptm's own measure, taken without our traps inside it;
	 * the begin only tells a wait that started before we attached.
	 */
	w = bpf_map_lookup_elem(&waiters, &id);
	if (!w || w->arena != arena)
		p->unpaired_waits += 1;
	if (w)
		bpf_map_delete_elem(&waiters, &id);
	a = arena_of(arena);
	if (!a)
		return 0;
	a->contended += 1;
	a->wait_ns += wait_ns;
	if (wait_ns > a->max_wait_ns)
		a->max_wait_ns = wait_ns;
	slot = wait_slot(wait_ns);
	if (slot < PTM_USDT_WAIT_SLOTS)
		a->wait_hist[slot] += 1;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_trim, __u64 arena, __u64 pad, __u64 result)
{
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_TRIM);

	if (p && result)
		p->trim_released += 1;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_page_release, __u64 arena, __u64 addr, __u64 bytes)
{
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_PAGE_RELEASE);
	struct ptm_usdt_arena *a;

	if (!p)
		return 0;
	p->release_bytes += bytes;
	a = arena_of(arena);
	if (a) {
		a->release_bytes += bytes;
		a->release_calls += 1;
	}
	return 0;
}

/* A site's sums, made on its first sample; NULL when the map is full. */
static __always_inline struct ptm_usdt_site *site_get(const struct ptm_usdt_site_key *k)
{
	struct ptm_usdt_site *v = bpf_map_lookup_elem(&sites, k);

	if (v)
		return v;
	bpf_map_update_elem(&sites, k, &zero_site, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sites, k);
}

/*
 * The sample's site: the caller libptm passes, and the user stack the kernel
 * walks from here (inside libptm), in which user space finds the caller.
 */
SEC("usdt")
int BPF_USDT(on_sample_alloc, __u64 ptr, __u64 size, __u64 weight, __u64 caller)
{
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_SAMPLE_ALLOC);
	struct ptm_usdt_sample_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ptr = ptr};
	struct ptm_usdt_sample s = {.size = size, .weight = weight, .caller = caller};
	struct ptm_usdt_site_key sk = {.tgid = key.tgid, .stack_id = -1, .caller = caller};
	struct ptm_usdt_site *site;
	long id;
	__u32 b;

	if (!p)
		return 0;
	id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	if (id >= 0)
		sk.stack_id = (int)id;
	/* The site is credited only once the sample is in the map: a free must undo it. */
	site = site_get(&sk);
	s.stack_id = site ? sk.stack_id : -2;
	/* A full map loses the sample, counted, rather than an older one. */
	if (bpf_map_update_elem(&samples, &key, &s, BPF_ANY) != 0) {
		p->sample_drops += 1;
		return 0;
	}
	if (site) {
		__sync_fetch_and_add(&site->live_samples, 1);
		__sync_fetch_and_add(&site->live_weight, weight);
		__sync_fetch_and_add(&site->live_blocks_1024,
				     size ? weight * PTM_USDT_BLOCK_UNIT / size : 0);
		__sync_fetch_and_add(&site->samples, 1);
	}
	p->live_samples += 1;
	p->live_weight += weight;
	p->live_size += size;
	b = size_bucket(size);
	if (b < PTM_USDT_SIZE_BUCKETS)
		p->live_weight_by_size[b] += weight;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_sample_free, __u64 ptr)
{
	struct ptm_usdt_proc *p = proc_count(PTM_USDT_SAMPLE_FREE);
	struct ptm_usdt_sample_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ptr = ptr};
	struct ptm_usdt_sample *s;
	__u64 size, weight;
	__u32 b;

	if (!p)
		return 0;
	s = bpf_map_lookup_elem(&samples, &key);
	if (!s) {
		/* Sampled before we attached, or dropped when the map was full. */
		p->unknown_frees += 1;
		return 0;
	}
	size = s->size;
	weight = s->weight;
	if (s->stack_id != -2) {
		struct ptm_usdt_site_key sk = {
			.tgid = key.tgid, .stack_id = s->stack_id, .caller = s->caller};
		struct ptm_usdt_site *site = bpf_map_lookup_elem(&sites, &sk);

		if (site) {
			__sync_fetch_and_add(&site->live_samples, -1);
			__sync_fetch_and_add(&site->live_weight, -(__s64)weight);
			__sync_fetch_and_add(&site->live_blocks_1024,
					     -(__s64)(size ? weight * PTM_USDT_BLOCK_UNIT / size : 0));
		}
	}
	if (bpf_map_delete_elem(&samples, &key) != 0)
		return 0;
	p->live_samples -= 1;
	p->live_weight -= weight;
	p->live_size -= size;
	b = size_bucket(size);
	if (b < PTM_USDT_SIZE_BUCKETS)
		p->live_weight_by_size[b] -= weight;
	return 0;
}
