/* SPDX-License-Identifier: MIT */
/*
 * service.h - what the daemon offers to its front ends (the HTTP server).
 *
 * The tracing core implements these calls; web/ only calls them.  Every call
 * is safe from any thread: the core copies snapshots out under its own lock,
 * so a slow HTTP client never holds up tracing.  Calls return 0 or a negative
 * errno.
 */
#ifndef HF_SERVICE_H
#define HF_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

struct hf_sites;
struct hf_history_point;

#define HF_MAX_MAPS 16

/* The daemon's own health, for /metrics. */
struct hf_daemon_stats {
	uint64_t tracked_processes;
	/* Events lost, by reason; reasons are short snake_case words. */
	uint32_t nr_drop_reasons;
	struct {
		const char *reason;
		uint64_t count;
	} dropped[8];
	/* Current entries of each BPF map, by map name. */
	uint32_t nr_maps;
	struct {
		const char *name;
		uint64_t entries;
		uint64_t max_entries;
	} maps[HF_MAX_MAPS];
};

struct hf_service {
	void *ctx;
	/*
	 * Copies every tracked process's latest snapshot into a malloc'ed array
	 * that the caller frees with free(); *n is its length.
	 */
	int (*list)(void *ctx, struct hf_snapshot **out, size_t *n);
	/* Copies one process's snapshot; -ENOENT when it is not tracked. */
	int (*get)(void *ctx, pid_t pid, struct hf_snapshot *out);
	/*
	 * One process's snapshot and a reference to its latest census detail
	 * (census.h; *detail NULL before the first complete or partial walk),
	 * taken together; the caller drops the reference with
	 * hf_census_detail_put().  -ENOENT when it is not tracked.
	 */
	int (*census)(void *ctx, pid_t pid, struct hf_snapshot *out,
		      struct hf_census_detail **detail);
	/*
	 * Attaches to a running process.  -ESRCH: no such process; -EEXIST:
	 * already traced; any other error: cannot attach, with one sentence
	 * explaining why written to why[0..why_len).
	 */
	int (*attach)(void *ctx, pid_t pid, enum hf_mode mode, char *why, size_t why_len);
	/* Detaches; -ENOENT when it is not tracked. */
	int (*detach)(void *ctx, pid_t pid);
	void (*daemon_stats)(void *ctx, struct hf_daemon_stats *out);
	/*
	 * pid's allocation sites (sites.h) sorted by order (enum
	 * hf_sites_order), freed by the caller with sites_free.  When the
	 * process keeps no sites (passive mode, --no-sites, or it has exited)
	 * *out is NULL and why says so in one sentence.  -ENOENT when it is not
	 * traced.
	 */
	int (*sites)(void *ctx, pid_t pid, int order, struct hf_sites **out, char *why,
		     size_t why_len);
	void (*sites_free)(struct hf_sites *s);
	/*
	 * pid's history (history.h), oldest first, in a malloc'ed array the
	 * caller frees; *step is the least spacing of its points in seconds.
	 * -ENOENT when it is not traced.
	 */
	int (*history)(void *ctx, pid_t pid, struct hf_history_point **out, size_t *n,
		       double *step);
};

#endif /* HF_SERVICE_H */
