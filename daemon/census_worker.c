// SPDX-License-Identifier: MIT
/*
 * census_worker.c - the census thread of census_worker.h.
 */
#include "census_worker.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "snapshot.h"

/* The longest the worker sleeps without looking for due processes. */
#define IDLE_SECONDS 0.25

struct hf_census_worker {
	struct hf_census_owner owner;
	double interval;
	double budget;
	bool stop_target;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	bool kicked;
};

double hf_census_next_due(double end, double interval, double cpu_seconds, double budget)
{
	double spaced = budget > 0 ? cpu_seconds / budget : INFINITY;

	return end + (spaced > interval ? spaced : interval);
}

double hf_census_rest(double cpu_seconds, double budget)
{
	return budget >= 1 || cpu_seconds <= 0 ? 0 : cpu_seconds * (1 / budget - 1);
}

static double clock_seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double unix_now(void)
{
	return clock_seconds(CLOCK_REALTIME);
}

/*
 * Sleeps up to seconds, or until stopped, or (when kickable) kicked; false
 * when stopping.  The rest that keeps the budget is not kickable: a new
 * process must not buy the worker extra CPU.
 */
static bool rest(struct hf_census_worker *w, double seconds, bool kickable)
{
	struct timespec until;
	double t;
	bool going;

	clock_gettime(CLOCK_MONOTONIC, &until);
	t = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + seconds;
	until.tv_sec = (time_t)t;
	until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
	pthread_mutex_lock(&w->lock);
	while (!w->stopping && !(kickable && w->kicked) &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT)
		;
	if (kickable)
		w->kicked = false;
	going = !w->stopping;
	pthread_mutex_unlock(&w->lock);
	return going;
}

static void run_one(struct hf_census_worker *w, struct hf_census_take *job)
{
	struct hf_census_job cj = {
		.pid = job->pid, .target = &job->target, .stop = w->stop_target || job->stop};
	struct hf_census_detail *detail = NULL;
	struct hf_census_sites *sites = NULL;
	struct hf_census c;
	double cpu0, wall0, cpu, end;
	int err;

	hf_census_init(&c);
	cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
	wall0 = clock_seconds(CLOCK_MONOTONIC);
	/* A process whose blocks cannot be read is still censused, without attribution. */
	if (job->sites && w->owner.sites && w->owner.sites(w->owner.ctx, job, &sites) != 0)
		sites = NULL;
	cj.sites = sites;
	err = job->room->census(&cj, &job->cache, &c, &detail);
	if (sites && detail && !err && c.state == HF_CENSUS_COMPLETE) {
		/* The blocks served the walk; the credits stay with its detail, sorted by site. */
		free(sites->blocks);
		sites->blocks = NULL;
		sites->nr_blocks = 0;
		if (hf_census_sites_sort(sites) == 0) {
			detail->sites = sites;
			sites = NULL;
		}
	}
	hf_census_sites_free(sites);
	cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	end = clock_seconds(CLOCK_MONOTONIC);
	c.at = unix_now();
	c.duration_seconds = end - wall0;
	if (detail)
		detail->at = c.at;
	if (err) {
		/* The process is gone (-ESRCH) or memory ran out: no verdict to report. */
		if (err != -ESRCH)
			hf_log(HF_LOG_WARN, "census of process %d failed: %s", job->pid,
			       strerror(-err));
		hf_census_detail_put(detail);
		detail = NULL;
		c.state = HF_CENSUS_NONE;
	}
	w->owner.give(w->owner.ctx, job, &c, detail,
		      hf_census_next_due(end, w->interval, cpu, w->budget));
	rest(w, hf_census_rest(cpu, w->budget), false);
}

static void *worker_main(void *arg)
{
	struct hf_census_worker *w = arg;

	for (;;) {
		struct hf_census_take *job = calloc(1, sizeof(*job));
		double wait = IDLE_SECONDS;

		if (!job) {
			if (!rest(w, IDLE_SECONDS, true))
				break;
			continue;
		}
		if (w->owner.take(w->owner.ctx, clock_seconds(CLOCK_MONOTONIC), job, &wait)) {
			run_one(w, job);
			free(job);
			pthread_mutex_lock(&w->lock);
			if (w->stopping) {
				pthread_mutex_unlock(&w->lock);
				break;
			}
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		free(job);
		if (!rest(w, wait < IDLE_SECONDS ? wait : IDLE_SECONDS, true))
			break;
	}
	return NULL;
}

int hf_census_worker_start(const struct hf_census_owner *owner, double interval, double budget,
			   bool stop_target, struct hf_census_worker **out)
{
	struct hf_census_worker *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int err;

	if (!w)
		return -ENOMEM;
	w->owner = *owner;
	w->interval = interval;
	w->budget = budget;
	w->stop_target = stop_target;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -err;
	}
	*out = w;
	return 0;
}

void hf_census_worker_kick(struct hf_census_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->kicked = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void hf_census_worker_stop(struct hf_census_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
