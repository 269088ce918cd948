/* SPDX-License-Identifier: MIT */
/*
 * ptm_usdt.h - what libptm's USDT probes (provider "libptm",
 * allocator/include/ptm_usdt.h) say about traced processes: heap growth,
 * page releases and arena lock waits, and the sampled live-heap profile.
 *
 * One BPF object (bpf/ptm_usdt.bpf.c) serves every libptm process: each
 * program is attached to the process's libptm with the process's pid, and
 * all numbers are kept in the kernel as running sums, so a read costs one
 * map lookup per process plus one pass over the arenas map.
 *
 * Definitions (all counted since the process was added):
 *   count[p]       times probe p fired (enum hf_ptm_usdt_probe);
 *   grow_bytes     summed heap_grow bytes; shrink_bytes likewise; so
 *                  grow_bytes - shrink_bytes is the change of libptm's
 *                  system_bytes over all arenas;
 *   release_*      page_release calls and bytes (libptm's release_calls and
 *                  release_total_bytes grow by exactly these);
 *   arena contended/wait_ns/max_wait_ns
 *                  lock_contended_end events on that arena and their
 *                  wait_ns argument (libptm's own clock, without the
 *                  tracer's traps inside the wait): libptm's lock_contended
 *                  and lock_wait_ns grow by exactly these;
 *   live_weight    the sampled estimate of live heap bytes: the sum of the
 *                  weights of the samples allocated and not yet freed (only
 *                  with MALLOC_SAMPLE_INTERVAL_ set in the target; samples
 *                  taken before the process was added are not known, and
 *                  their frees count as unknown_frees);
 *   live_by_size[] the same estimate by requested size, in snapshot.h's
 *                  log2 histogram layout (HF_HIST_BUCKETS).
 *
 * Use (every call is thread-safe; one mutex inside; 0 or a negative errno):
 *
 *	hf_ptm_usdt_open(&opts, &u);            once, before any process
 *	hf_ptm_usdt_add(u, pid, libptm_path);   when a libptm process is traced
 *	hf_ptm_usdt_read(u, pid, &stats);       every interval, for the snapshot
 *	hf_ptm_usdt_remove(u, pid);             when it exits or is detached
 *	hf_ptm_usdt_close(u);                   at shutdown
 *
 * This header shares its name with bpf/ptm_usdt.h (the BPF side's plain
 * structs) and allocator/include/ptm_usdt.h (the probes' documentation);
 * hf_ptm_usdt links the skeleton privately, so its users see only this one.
 */
#ifndef HF_PTM_USDT_H
#define HF_PTM_USDT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sites.h"
#include "snapshot.h"

enum hf_ptm_usdt_probe {
	HF_PTM_USDT_HEAP_GROW = 0,
	HF_PTM_USDT_HEAP_SHRINK,
	HF_PTM_USDT_ARENA_CREATE,
	HF_PTM_USDT_ARENA_REUSE,
	HF_PTM_USDT_LOCK_CONTENDED_BEGIN,
	HF_PTM_USDT_LOCK_CONTENDED_END,
	HF_PTM_USDT_TRIM,
	HF_PTM_USDT_PAGE_RELEASE,
	HF_PTM_USDT_SAMPLE_ALLOC,
	HF_PTM_USDT_SAMPLE_FREE,
	HF_PTM_USDT_NR_PROBES,
};

/* The probe's name in libptm's notes ("heap_grow", ...), or NULL. */
const char *hf_ptm_usdt_probe_name(enum hf_ptm_usdt_probe probe);

/* Log2 wait-time slots: slot i counts waits w with 2^(i-1) <= w < 2^i ns; the last is open. */
#define HF_PTM_USDT_WAIT_SLOTS 32

/* Map sizes; 0 takes the defaults of bpf/ptm_usdt.h. */
struct hf_ptm_usdt_opts {
	uint32_t max_procs;   /* processes traced at once */
	uint32_t max_arenas;  /* (process, arena) pairs with events */
	uint32_t max_samples; /* live samples over all processes */
	uint32_t max_waiters; /* threads waiting for an arena lock at the same instant */
};

/* One arena's events, since the process was added. */
struct hf_ptm_usdt_arena {
	uint64_t address; /* the arena (malloc_state) address in the target */
	uint64_t index; /* libptm's index (0: main arena) from arena_create/reuse, or HF_UNKNOWN */
	uint64_t contended;
	uint64_t wait_ns;
	uint64_t max_wait_ns;
	uint64_t wait_hist[HF_PTM_USDT_WAIT_SLOTS];
	uint64_t grow_bytes;
	uint64_t shrink_bytes;
	uint64_t release_bytes;
	uint64_t release_calls;
};

struct hf_ptm_usdt_stats {
	uint64_t count[HF_PTM_USDT_NR_PROBES];
	uint64_t grow_bytes;
	uint64_t shrink_bytes;
	uint64_t release_calls; /* = count[HF_PTM_USDT_PAGE_RELEASE] */
	uint64_t release_bytes;
	uint64_t trim_released; /* trim visits that released memory */
	/* Lock waits over all arenas. */
	uint64_t contended;
	uint64_t wait_ns;
	uint64_t max_wait_ns;
	/* The sampled live-heap profile. */
	uint64_t live_samples;
	uint64_t live_weight; /* estimated live heap bytes */
	uint64_t live_size;   /* the live samples' own requested bytes */
	uint64_t live_by_size[HF_HIST_BUCKETS];
	/* Losses and loose ends. */
	uint64_t sample_drops;   /* samples not kept: the samples map was full */
	uint64_t unknown_frees;  /* sample_free of a sample taken before the add, or dropped */
	uint64_t unpaired_waits; /* lock_contended_end whose begin was not seen */
	uint64_t waiter_drops;   /* lock_contended_begin not kept: the waiters map was full */
	/* Arenas with at least one event, by address. */
	uint32_t nr_arenas;
	bool arenas_truncated;
	struct hf_ptm_usdt_arena arenas[HF_MAX_ARENAS];
};

struct hf_ptm_usdt;

/* Opens and loads the BPF object; -EPERM and friends when BPF is not allowed. */
int hf_ptm_usdt_open(const struct hf_ptm_usdt_opts *opts, struct hf_ptm_usdt **out);
/* Detaches every process and frees; NULL-safe. */
void hf_ptm_usdt_close(struct hf_ptm_usdt *u);

/*
 * Starts counting a libptm process: attaches the ten probes of libptm_path
 * (the host path of the libptm.so, or of an executable with libptm.a linked
 * in, that the process runs; hf_alloc_target.path) for pid only.  -EEXIST
 * when already added; -ENOENT when the object has no libptm probes; -ENOSPC
 * when max_procs processes are traced already.
 */
int hf_ptm_usdt_add(struct hf_ptm_usdt *u, pid_t pid, const char *libptm_path);

/* Detaches and forgets the process's numbers and samples; -ENOENT if not added. */
int hf_ptm_usdt_remove(struct hf_ptm_usdt *u, pid_t pid);

/* The process's numbers now; -ENOENT if not added. */
int hf_ptm_usdt_read(struct hf_ptm_usdt *u, pid_t pid, struct hf_ptm_usdt_stats *out);

/* The process's sampled sites (malloc'ed array); -ENOENT if not added. */
int hf_ptm_usdt_sites(struct hf_ptm_usdt *u, pid_t pid, struct hf_sampled_site **out, size_t *n);

/* Arena events lost because the arenas map was full, since open (all processes). */
uint64_t hf_ptm_usdt_dropped(struct hf_ptm_usdt *u);

#endif /* HF_PTM_USDT_H */
