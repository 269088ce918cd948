/* SPDX-License-Identifier: MIT */
/*
 * census_worker.h - the thread that takes heap censuses (census.h), off the
 * snapshot path, so that a big heap never delays the tracer.
 *
 * The registry owns the processes; the worker asks it for the most overdue
 * one (take), runs its room's census with no lock held, and hands the
 * result back (give).  Between the two it holds no pointer into the
 * registry: the job names the process by pid, start time and image
 * generation, so a process that exited, was detached or exec'd meanwhile
 * simply does not get the result.
 *
 * Cost (--census-budget PERCENT of one CPU, --census-interval SECONDS):
 * after a census whose thread CPU time was c, that process is next due
 * max(interval, c / budget) later, and the worker rests c * (1 / budget - 1)
 * before the next census of any process, so that the censuses of all
 * processes together use at most the budget.
 */
#ifndef HF_CENSUS_WORKER_H
#define HF_CENSUS_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "probe_site.h"
#include "room.h"

struct hf_census_take {
	pid_t pid;
	uint64_t start_ticks;
	unsigned int gen;
	const struct hf_room *room;
	struct hf_alloc_target target;
	void *cache; /* the room's cache for this process, owned by the job while it runs */
	bool sites;  /* credit pinned pages to allocation sites (exact mode) */
	bool stop;   /* hold the target still for the copy, whatever the worker's default */
};

struct hf_census_owner {
	void *ctx;
	/*
	 * The most overdue process at monotonic time now (filling *job and
	 * marking it taken), or false with *wait set to the seconds until one
	 * is due (capped by the caller).
	 */
	bool (*take)(void *ctx, double now, struct hf_census_take *job, double *wait);
	/*
	 * The result of job: ownership of detail (may be NULL) and job->cache
	 * passes to the owner, who frees both if the process is gone.
	 */
	void (*give)(void *ctx, struct hf_census_take *job, const struct hf_census *c,
		     struct hf_census_detail *detail, double next_due);
	/*
	 * For a job with sites: the process's live blocks and their sites, read
	 * just before its walk (no lock held); NULL in *out when there are none.
	 */
	int (*sites)(void *ctx, const struct hf_census_take *job, struct hf_census_sites **out);
};

struct hf_census_worker;

/* budget: a share of one CPU in (0, 1]; interval: seconds between one process's censuses. */
int hf_census_worker_start(const struct hf_census_owner *owner, double interval, double budget,
			   bool stop_target, struct hf_census_worker **out);
/* Wakes the worker: a process became due earlier than it knew. */
void hf_census_worker_kick(struct hf_census_worker *w);
/* Stops and joins the thread; NULL-safe. */
void hf_census_worker_stop(struct hf_census_worker *w);

/* The rules above, pure: when a process is next due, and the worker's rest. */
double hf_census_next_due(double end, double interval, double cpu_seconds, double budget);
double hf_census_rest(double cpu_seconds, double budget);

#endif /* HF_CENSUS_WORKER_H */
