/* SPDX-License-Identifier: MIT */
/*
 * tracer.h - the loader of bpf/heapfrag.bpf.c: its maps, its probes and its
 * lifecycle events.  It knows nothing of snapshots or HTTP; registry.c
 * decides what to trace and turns what this reads into snapshots.
 */
#ifndef HF_TRACER_H
#define HF_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../bpf/heapfrag.h"
#include "account.h"
#include "heap_regions.h"
#include "probe_site.h"
#include "service.h"

struct hf_tracer_config {
	bool follow_forks;
	bool trace_all;  /* every process passes the kernel-side filter */
	bool watch_exec; /* report every exec, not only traced processes' */
	enum hf_mode all_mode;
	uint32_t max_live;
	uint32_t max_procs;
	uint32_t max_mmaps;
	/* Allocation sites (exact mode): kept at all, with stacks, how deep. */
	bool sites;
	bool stacks;
	uint32_t stack_depth; /* frames, 1 to HFB_MAX_STACK_DEPTH */
	uint32_t max_sites;
	uint32_t max_stacks;
};

/* One site of a process as the kernel keeps it (bpf/heapfrag.h). */
struct hf_site_raw {
	struct hfb_site_key key;
	struct hfb_site_val val;
};

/* One live block with its site. */
struct hf_live_block {
	uint64_t addr;
	uint64_t requested;
	uint64_t allocated;
	int stack_id; /* HFB_NO_SITE: none */
	uint64_t ret;
	uint64_t born_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
};

typedef void (*hf_tracer_event_fn)(void *ctx, const struct hfb_event *ev);

struct hf_tracer;
/* The uprobes attached for one target (or, with pid -1, for one ELF object). */
struct hf_probes;

/* Opens, sizes, loads the BPF object and attaches its tracepoints. */
int hf_tracer_open(const struct hf_tracer_config *cfg, hf_tracer_event_fn on_event, void *ctx,
		   struct hf_tracer **out);
/* Detaches everything and frees; NULL-safe. */
void hf_tracer_close(struct hf_tracer *t);

/* Puts pid in the kernel-side filter with fresh counters. */
int hf_tracer_track(struct hf_tracer *t, pid_t pid, uint64_t start_boottime, enum hf_mode mode);
/* Takes pid out of the filter and forgets its counters, live blocks, spans and sites. */
void hf_tracer_forget(struct hf_tracer *t, pid_t pid);
/* Forgets pid's live blocks, spans and sites only (its image was replaced by exec). */
void hf_tracer_forget_blocks(struct hf_tracer *t, pid_t pid);

/*
 * Attaches return then entry uprobes for every op target provides (free and
 * cfree: an entry probe only), filtered to pid (-1: every process using that
 * object).  Logs where each went.
 * With follow_forks the probes are inherited by pid's future children, which
 * are then traced from their first instruction: such a child shares its
 * ancestor's probes (hf_probes_get) instead of getting its own.
 */
int hf_tracer_attach_uprobes(struct hf_tracer *t, pid_t pid, const struct hf_alloc_target *target,
			     struct hf_probes **out);
/* Another reference; the probes are detached when the last one is dropped. */
struct hf_probes *hf_probes_get(struct hf_probes *p);
/*
 * Drops a reference; NULL-safe.  The last one hands the probes to a thread
 * that detaches them (slow in the kernel); hf_tracer_close() waits for it.
 */
void hf_probes_destroy(struct hf_probes *p);
/* Whether children of a traced process inherit its probes. */
bool hf_tracer_inherits(const struct hf_tracer *t);

/* Sums pid's per-CPU counters into *raw; -ENOENT when there are none yet. */
int hf_tracer_read(struct hf_tracer *t, pid_t pid, struct hf_raw *raw);
/* pid's mmapped chunks as seen from inside allocator calls (malloc'ed array). */
int hf_tracer_spans(struct hf_tracer *t, pid_t pid, struct hf_span **spans, size_t *n);

/* pid's allocation sites (malloc'ed array); an empty one when sites are off. */
int hf_tracer_sites(struct hf_tracer *t, pid_t pid, struct hf_site_raw **sites, size_t *n);
/*
 * The frames of stack stack_id, innermost first, up to max; *n how many.
 * -ENOENT when the map no longer holds it.
 */
int hf_tracer_stack(struct hf_tracer *t, int stack_id, uint64_t *frames, size_t max, size_t *n);
/* pid's live blocks, sorted by address (malloc'ed array). */
int hf_tracer_live_blocks(struct hf_tracer *t, pid_t pid, struct hf_live_block **blocks,
			  size_t *n);

/* Delivers lifecycle events; returns how many, or a negative errno. */
int hf_tracer_poll(struct hf_tracer *t, int timeout_ms);

/* The processes in the kernel-side filter (malloc'ed array). */
int hf_tracer_procs(struct hf_tracer *t, pid_t **pids, size_t *n);

/* Fills out->maps with each map's entries and size (live: live_entries). */
void hf_tracer_map_stats(struct hf_tracer *t, uint64_t live_entries, struct hf_daemon_stats *out);

#endif /* HF_TRACER_H */
