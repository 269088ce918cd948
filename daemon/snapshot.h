/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - one traced process's account at one instant.
 *
 * This is the contract between the tracing core (which fills snapshots every
 * interval) and everything that reports them (the REST document, Prometheus,
 * the doctor).  A value that the process's mode or allocator cannot measure is
 * HF_UNKNOWN (integers) or NaN (ratios): reporters turn it into JSON null or
 * leave the Prometheus sample out, never 0.
 */
#ifndef HF_SNAPSHOT_H
#define HF_SNAPSHOT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "cgroup.h"

#define HF_UNKNOWN  UINT64_MAX
#define hf_known(v) ((v) != HF_UNKNOWN)

/*
 * Size histograms are log2: bucket i < HF_HIST_BUCKETS - 1 holds sizes s with
 * hf_hist_le(i - 1) < s <= hf_hist_le(i), where hf_hist_le(i) = 16 << i
 * (16, 32, ..., 4 GiB); the last bucket holds everything larger (+Inf).
 * Counts are per bucket, not cumulative; the Prometheus writer accumulates.
 */
#define HF_HIST_BUCKETS   30
#define HF_HIST_MIN_SHIFT 4
static inline uint64_t hf_hist_le(int i)
{
	return (uint64_t)1 << (i + HF_HIST_MIN_SHIFT);
}

/*
 * Allocator call latency (exact mode): the time from a call's entry probe to
 * its return probe, in nanoseconds, in log2 buckets: bucket i <
 * HF_LAT_BUCKETS - 1 holds durations d with hf_lat_le_ns(i - 1) < d <=
 * hf_lat_le_ns(i), where hf_lat_le_ns(i) = 256 << i (256 ns, 512 ns, ...,
 * 2^30 ns = 1.07 s); bucket 0 holds d <= 256 ns; the last holds everything
 * longer (+Inf).  Counts are per bucket, not cumulative.
 */
#define HF_LAT_BUCKETS   24
#define HF_LAT_MIN_SHIFT 8
static inline uint64_t hf_lat_le_ns(int i)
{
	return (uint64_t)1 << (i + HF_LAT_MIN_SHIFT);
}

/*
 * The calls that are timed: those with a return probe.  free is not timed:
 * it has no return probe (a second trap on every free would cost more than
 * everything else heapfragd does per free), so its latency is unknown.
 */
enum hf_lat_op {
	HF_LAT_MALLOC = 0,
	HF_LAT_CALLOC,
	HF_LAT_REALLOC,
	HF_LAT_MEMALIGN, /* every aligned-allocation entry point, as in hf_counters */
	HF_LAT_OPS,
};

/* "malloc", "calloc", "realloc", "memalign": the op label in JSON and Prometheus. */
const char *hf_lat_op_name(enum hf_lat_op op);

struct hf_call_latency {
	uint64_t count;  /* timed calls: the sum of buckets[] */
	uint64_t sum_ns; /* their summed durations */
	uint64_t buckets[HF_LAT_BUCKETS];
};

#define HF_MAX_ARENAS 128
#define HF_COMM_LEN   16
#define HF_PATH_LEN   512

enum hf_mode {
	HF_MODE_EXACT = 0,
	HF_MODE_PASSIVE = 1,
};

enum hf_state {
	HF_STATE_RUNNING = 0,
	HF_STATE_EXITED = 1,
};

enum hf_allocator {
	HF_ALLOC_UNKNOWN = 0,
	HF_ALLOC_GLIBC,
	HF_ALLOC_LIBPTM,
	HF_ALLOC_JEMALLOC,
	HF_ALLOC_TCMALLOC,
	HF_ALLOC_MIMALLOC,
};

/* Names as they appear in JSON and Prometheus: "glibc", "libptm", ... */
const char *hf_mode_name(enum hf_mode mode);
const char *hf_state_name(enum hf_state state);
const char *hf_allocator_name(enum hf_allocator alloc);

/* Calls into the allocator and heap syscalls, counted since attach. */
struct hf_counters {
	uint64_t malloc;
	uint64_t calloc;
	uint64_t realloc;
	uint64_t free;
	uint64_t memalign; /* posix_memalign, aligned_alloc, memalign, valloc, pvalloc */
	uint64_t failed;   /* allocation calls that returned NULL or an error */
	uint64_t brk;
	uint64_t mmap;
	uint64_t munmap;
	uint64_t mremap;
	uint64_t madvise;
};

/* A maximum and the wall-clock time (Unix seconds) it was first reached. */
struct hf_peak_value {
	uint64_t value;
	double at;
};

struct hf_peaks {
	struct hf_peak_value requested_bytes;
	struct hf_peak_value allocated_bytes;
	struct hf_peak_value resident_bytes;
	struct hf_peak_value live_allocations;
};

struct hf_mapped {
	uint64_t brk;   /* span of the brk heap */
	uint64_t arena; /* committed part of non-main arena heaps */
	uint64_t mmap;  /* mmapped chunks (large allocations) */
	uint64_t total;
};

struct hf_heap {
	uint64_t live_allocations;
	uint64_t requested_bytes;
	uint64_t allocated_bytes;
	struct hf_mapped mapped_bytes;
	uint64_t resident_bytes;
	uint64_t free_bytes;
	uint64_t released_bytes;
	uint64_t process_rss_bytes;
	struct hf_peaks peak;
};

struct hf_fragmentation {
	double ratio;          /* 1 - requested / resident */
	double internal_ratio; /* (allocated - requested) / allocated */
	double external_ratio; /* free / resident */
	uint64_t internal_bytes;
	uint64_t external_bytes;
	uint64_t largest_free_chunk_bytes;
	uint64_t free_chunks;
};

struct hf_histograms {
	uint64_t requests[HF_HIST_BUCKETS]; /* every allocation request since attach */
	uint64_t live[HF_HIST_BUCKETS];     /* requested sizes of live allocations */
};

enum hf_arena_kind {
	HF_ARENA_MAIN = 0,
	HF_ARENA_THREAD = 1,
};

struct hf_arena_lock {
	uint64_t acquisitions;
	uint64_t contended;
	double wait_seconds;
	double max_wait_seconds;
};

struct hf_arena {
	uint64_t address; /* the arena's malloc_state address in the target */
	enum hf_arena_kind kind;
	uint64_t heaps;
	uint64_t mapped_bytes;
	uint64_t threads;
	struct hf_arena_lock lock;
};

/*
 * libptm's own events through its USDT probes (allocator/include/ptm_usdt.h),
 * counted since attach; known only for libptm processes with the probes on.
 */
struct hf_ptm_events {
	uint64_t heap_grow_bytes;
	uint64_t heap_shrink_bytes;
	uint64_t page_releases; /* madvise calls giving free chunks' pages back */
	uint64_t page_release_bytes;
	uint64_t arena_creates;
	uint64_t arena_reuses;
	uint64_t trims;
};

/*
 * The sampled live-heap profile of a libptm process run with
 * MALLOC_SAMPLE_INTERVAL_: each live sample stands for its weight in bytes;
 * known once the process has taken a sample since attach (without the
 * variable it takes none, and "0 live bytes" would be a lie).
 */
struct hf_sampled_heap {
	uint64_t live_bytes;   /* estimate: the live samples' summed weights */
	uint64_t live_samples; /* samples allocated and not yet freed */
	uint64_t samples;      /* samples taken since attach */
	uint64_t dropped;      /* samples lost to a full map */
	uint64_t live_bytes_by_size[HF_HIST_BUCKETS]; /* the estimate by requested size */
};

struct hf_allocator_id {
	enum hf_allocator kind;
	char path[HF_PATH_LEN]; /* the ELF object that provides malloc */
	char build_id[41];      /* hex, "" when the object has none */
};

struct hf_tracing {
	double since; /* Unix seconds when probes were attached */
	uint64_t dropped_events;
	uint64_t live_map_entries;
};

/*
 * One of a process's top allocation sites (exact mode; sites.h), as
 * /metrics and the doctor see it: its frame 0 named, and its numbers.  The
 * base_* fields are the site's numbers when heapfragd first saw it among
 * the top ones (reset every HF_SITE_BASE_SECONDS), for the doctor's growth
 * rule.
 */
#define HF_MAX_TOP_SITES     20
#define HF_SITE_BASE_SECONDS 300.0

struct hf_top_site {
	uint64_t id;          /* sites.h's id, as /sites serves it */
	char name[96];        /* frame 0's function, else "object+0xoffset" */
	char where[192];      /* "object, file:line", "object" or "" */
	uint64_t live_bytes;  /* chunk bytes */
	uint64_t live_allocations;
	uint64_t pinned_free_bytes; /* HF_UNKNOWN without attribution */
	uint64_t allocations;
	uint64_t frees;
	double base_at; /* Unix seconds */
	uint64_t base_live_bytes;
	uint64_t base_allocations;
	uint64_t base_frees;
};

struct hf_snapshot {
	pid_t pid;
	double at;         /* Unix seconds when the account was made */
	double start_time; /* Unix seconds, from /proc/PID/stat starttime */
	char comm[HF_COMM_LEN + 1];
	char exe[HF_PATH_LEN];
	/* Its cgroup and Kubernetes pod and container (cgroup.h), as of the last snapshot. */
	struct hf_cgroup cgroup;
	enum hf_state state;
	enum hf_mode mode;
	struct hf_allocator_id allocator;
	struct hf_tracing tracing;
	struct hf_counters counters;
	struct hf_heap heap;
	struct hf_fragmentation fragmentation;
	struct hf_histograms histogram;
	bool histogram_known;  /* false in passive mode */
	bool ptm_events_known; /* a libptm process with its USDT probes attached */
	struct hf_ptm_events ptm_events;
	bool sampled_known; /* ... that took a sample since attach */
	struct hf_sampled_heap sampled;
	bool latency_known; /* exact mode: calls are timed */
	struct hf_call_latency latency[HF_LAT_OPS];
	struct hf_census census; /* the latest heap census (census.h) */
	bool sites_known;        /* exact mode with sites: top_sites says something */
	uint32_t nr_top_sites;   /* by pinned free bytes, then live bytes */
	struct hf_top_site top_sites[HF_MAX_TOP_SITES];
	uint32_t nr_arenas;
	bool arenas_truncated;
	struct hf_arena arenas[HF_MAX_ARENAS];
};

/* Sets every measurable field of *s to unknown and clears the rest. */
void hf_snapshot_init(struct hf_snapshot *s);

#endif /* HF_SNAPSHOT_H */
