/* SPDX-License-Identifier: MIT */
/*
 * room.h - one room per allocator.
 *
 * What heapfragd knows about one allocator (glibc's arenas, lock waits and
 * heap census in daemon/glibc/, libptm's books, USDT probes and census in
 * daemon/libptm/) lives in that allocator's folder, behind one table of
 * operations.  The registry calls the table of a process's allocator and
 * never names an allocator itself; an operation an allocator cannot answer
 * is NULL.  Adding an allocator is adding a folder and one line to rooms.c.
 *
 * Threads and lifetimes: open and close run once, on the main thread.  add,
 * read and free_state run on the main loop's thread; stop may run on an
 * HTTP thread (a detach) under the registry's lock, so it must only stop
 * the kernel side, never free what read may be using: the state itself is
 * freed by free_state, on the main loop, once nothing can read it.  census
 * runs on the census thread with a cache of its own that nothing else
 * touches (census.h).
 */
#ifndef HF_ROOM_H
#define HF_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "account.h"
#include "census.h"
#include "probe_site.h"
#include "service.h"
#include "sites.h"
#include "snapshot.h"

/* What every room is opened with. */
struct hf_room_config {
	uint32_t max_procs; /* processes traced at once (BPF map sizes) */
};

/* One traced process, as a room sees it. */
struct hf_room_proc {
	pid_t pid;
	enum hf_mode mode;
	const struct hf_alloc_target *target;
	/*
	 * false under -a, where probes go on each object once for every process
	 * and per-process uprobes on each of them would cost every process.
	 */
	bool own_probes;
};

/*
 * What a room read of a process for one snapshot.  regions comes in with
 * what /proc shows and may be refined from the allocator's own books.
 * Parts not known are left with known = false.
 */
struct hf_room_read {
	struct hf_regions *regions;
	bool arenas_known;
	bool arenas_truncated;
	size_t nr_arenas;
	struct hf_arena arenas[HF_MAX_ARENAS];
	bool ptm_events_known;
	struct hf_ptm_events ptm_events;
	bool sampled_known;
	struct hf_sampled_heap sampled;
};

struct hf_room {
	enum hf_allocator kind;
	/*
	 * Daemon-wide state.  A part that cannot start (a BPF object that does
	 * not load) is left off with a warning: the room still answers what it
	 * can.  Fails only for lack of memory.
	 */
	int (*open)(const struct hf_room_config *cfg, void **room);
	void (*close)(void *room);
	/* A process begins to be traced; *state is the room's own for it (may stay NULL). */
	void (*add)(void *room, const struct hf_room_proc *p, void **state);
	/* It stops being traced: the kernel side goes; state stays readable. */
	void (*stop)(void *room, void *state);
	void (*free_state)(void *state);
	/* Every snapshot, without the registry's lock held. */
	void (*read)(void *room, void *state, const struct hf_room_proc *p, struct hf_room_read *out);
	/* Events the room lost to full maps, added to out->dropped by reason. */
	void (*stats)(void *room, struct hf_daemon_stats *out);
	/*
	 * The heap census (census.h), on the census thread.  *cache is the
	 * room's memory of this process between walks (NULL the first time);
	 * census_forget frees it.  Without a census, census_unavailable says
	 * why in one sentence.
	 */
	int (*census)(const struct hf_census_job *job, void **cache, struct hf_census *out,
		      struct hf_census_detail **detail);
	void (*census_forget)(void *cache);
	const char *census_unavailable;
	/*
	 * The allocator's sampled allocation sites of pid (sites.h) and its
	 * sampling interval in bytes (0 when not known).  It reads kernel maps
	 * and /proc only, so any thread may call it with no lock held.
	 * -ENODATA when the room keeps no sampled sites for the process.
	 */
	int (*sampled_sites)(void *room, pid_t pid, struct hf_sampled_site **out, size_t *n,
			     uint64_t *interval);
};

/* The room of an allocator; never NULL (an unknown allocator has an empty room). */
const struct hf_room *hf_room_of(enum hf_allocator kind);

/* Every room with an open operation, for the registry to open and close. */
extern const struct hf_room *const hf_rooms[];
extern const size_t hf_nr_rooms;

#endif /* HF_ROOM_H */
