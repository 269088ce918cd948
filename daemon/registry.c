// SPDX-License-Identifier: MIT
/*
 * registry.c - the traced processes and their snapshots.
 *
 * A process is (pid, start time): a recycled PID is a new entry, never the
 * old one continued.  It is listed once its probes are attached, stays listed
 * with state "exited" for --retention seconds after it ends, then goes.
 *
 * Threads: the main loop (hf_registry_run) is the only one that frees
 * entries or reads the maps for snapshots; HTTP threads attach and detach
 * through the service calls.  r->lock guards the list, every snapshot and
 * every change to the BPF filter; /proc is read outside it.  A detached entry
 * is moved to a graveyard that only the main loop empties, at a point where
 * it holds no pointer to any entry.
 *
 * Forks: a child of a traced process is traced from the fork on (the kernel
 * side adds it to the filter at once; its uprobes follow within one poll).
 * Its account starts empty: the blocks it inherited from its parent are not
 * its allocations, and its frees of them are ignored like every free of a
 * block allocated before attach.
 */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "census_worker.h"
#include "cgroup.h"
#include "history.h"
#include "sites.h"
#include "symbolize.h"
#include "exec_gate.h"
#include "heap_regions.h"
#include "log.h"
#include "probe_site.h"
#include "procfs.h"
#include "room.h"
#include "tracer.h"

extern char **environ;

/* /proc/PID/stat's start time counts USER_HZ ticks; the kernel keeps ns. */
#define NS_PER_TICK 10000000ULL

struct proc {
	struct proc *next;
	pid_t pid;
	uint64_t start_ticks;
	enum hf_mode mode;
	bool exited;
	bool dead;        /* detached: in the graveyard, not listed */
	bool pending;     /* being attached, first snapshot not in yet: not listed */
	bool expect_exec; /* the spawned command: its one exec is no news */
	double exited_at;
	struct hf_alloc_target target;
	bool target_known;
	struct hf_probes *probes;
	struct hf_regions regions; /* the last read, kept for the final snapshot */
	/* The last counts: a new census re-derives the account from them at once. */
	struct hf_raw raw;
	/* Its past, for charts (history.h); allocated with its first snapshot. */
	struct hf_history history;
	bool regions_known;
	/* Its allocator's room (room.h) and the room's state for it. */
	const struct hf_room *room;
	void *room_state;
	bool room_added;
	bool adopted; /* listed by -a: no per-process probes */
	/*
	 * The heap census: when it is next due (monotonic seconds), whether the
	 * worker holds its job, the image it is of, the room's cache (held by
	 * the job while it runs) and the latest detail.
	 */
	double census_due;
	bool census_taken;
	unsigned int census_gen;
	const struct hf_room *census_room;
	void *census_cache;
	struct hf_census_detail *census_detail;
	/*
	 * The latest detail with pinning attribution: a partial walk has none,
	 * and must not take the last complete one's from the sites.
	 */
	struct hf_census_detail *sites_detail;
	struct hf_snapshot snap;
};

struct watched_exe {
	dev_t dev;
	ino_t ino;
	char path[HF_PATH_LEN];
};

struct hf_registry {
	pthread_mutex_t lock;
	struct hf_options opts;
	/* Symbols for the sites route, cached across requests (sym_lock). */
	pthread_mutex_t sym_lock;
	struct hf_symbolizer *sym;
	struct hf_tracer *tracer;
	void **rooms;                     /* each room's state, in the order of hf_rooms[] */
	struct hf_census_worker *census;  /* NULL with --no-census */
	struct hf_exec_gate *gate;        /* -e: NULL without -e, with -a, or when it failed */
	uint64_t dropped_forgotten;       /* drops of processes already forgotten */
	struct proc *procs;
	struct proc *graveyard;
	uint64_t btime;
	struct watched_exe *exes;
	size_t nr_exes;
	/* -a: the objects probed for every process, by device and inode. */
	struct hf_probes **all_probes;
	struct watched_exe *all_objects;
	size_t nr_all;
	pid_t command;
	bool command_done;
	int command_status;
	struct hf_daemon_stats stats; /* refreshed every interval */
	/* Each process's history: this many points, at least this many seconds apart. */
	size_t history_points;
	double history_step;
};

static double now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* The running entry for pid (any identity), or NULL.  Called under r->lock. */
static struct proc *find_running(struct hf_registry *r, pid_t pid)
{
	for (struct proc *p = r->procs; p; p = p->next)
		if (p->pid == pid && !p->exited)
			return p;
	return NULL;
}

static void fill_identity(struct hf_registry *r, struct proc *p, const char *comm)
{
	struct hf_snapshot *s = &p->snap;

	hf_snapshot_init(s);
	s->pid = p->pid;
	s->start_time = hf_proc_ticks_to_unix(p->start_ticks, r->btime);
	snprintf(s->comm, sizeof(s->comm), "%s", comm);
	if (hf_proc_read_exe(p->pid, s->exe, sizeof(s->exe)) != 0)
		s->exe[0] = '\0';
	/* Unknown ("") when unreadable; every snapshot reads it again. */
	hf_cgroup_read(p->pid, &s->cgroup);
	s->state = HF_STATE_RUNNING;
	s->mode = p->mode;
	s->allocator.kind = p->target_known ? p->target.kind : HF_ALLOC_UNKNOWN;
	if (p->target_known) {
		snprintf(s->allocator.path, sizeof(s->allocator.path), "%s", p->target.target_path);
		snprintf(s->allocator.build_id, sizeof(s->allocator.build_id), "%s",
			 p->target.build_id);
	}
	s->tracing.since = now_unix();
	s->tracing.dropped_events = 0;
	s->tracing.live_map_entries = 0;
}

/* The state of a room in r; NULL for a room without one. */
static void *room_ctx(struct hf_registry *r, const struct hf_room *room)
{
	for (size_t i = 0; i < hf_nr_rooms; i++)
		if (hf_rooms[i] == room)
			return r->rooms ? r->rooms[i] : NULL;
	return NULL;
}

static struct hf_room_proc room_proc(const struct proc *p)
{
	return (struct hf_room_proc){
		.pid = p->pid, .mode = p->mode, .target = &p->target, .own_probes = !p->adopted};
}

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Forgets p's census (a new image, or p is going): the worker's job, if any, is dropped. */
static void census_reset(struct proc *p)
{
	p->census_gen++;
	if (!p->census_taken && p->census_room && p->census_room->census_forget)
		p->census_room->census_forget(p->census_cache);
	p->census_cache = NULL;
	p->census_room = NULL;
	hf_census_detail_put(p->census_detail);
	p->census_detail = NULL;
	hf_census_detail_put(p->sites_detail);
	p->sites_detail = NULL;
}

/* p's census starts afresh: due now where its room can walk the heap, else unavailable. */
static void census_begin(struct hf_registry *r, struct proc *p)
{
	struct hf_census *c = &p->snap.census;

	hf_census_init(c);
	p->census_room = p->room;
	p->census_due = monotonic();
	if (!r->census) {
		c->state = HF_CENSUS_UNAVAILABLE;
		snprintf(c->reason, sizeof(c->reason), "heapfragd runs with --no-census");
	} else if (!p->room->census) {
		c->state = HF_CENSUS_UNAVAILABLE;
		snprintf(c->reason, sizeof(c->reason), "%s",
			 p->room->census_unavailable ? p->room->census_unavailable : "");
	}
}

/* Tells p's allocator's room that p is traced (once per image). */
static void room_add(struct hf_registry *r, struct proc *p)
{
	struct hf_room_proc rp = room_proc(p);

	p->room = hf_room_of(p->target_known ? p->target.kind : HF_ALLOC_UNKNOWN);
	p->room_state = NULL;
	p->room_added = p->target_known && p->room->add;
	if (p->room_added)
		p->room->add(room_ctx(r, p->room), &rp, &p->room_state);
	census_begin(r, p);
}

/* The kernel side of the room goes; its state stays until room_free. */
static void room_stop(struct hf_registry *r, struct proc *p)
{
	if (p->room_added && p->room->stop)
		p->room->stop(room_ctx(r, p->room), p->room_state);
	p->room_added = false;
}

static void room_free(struct proc *p)
{
	if (p->room && p->room->free_state && p->room_state)
		p->room->free_state(p->room_state);
	p->room_state = NULL;
	census_reset(p);
}

/* Reads what BPF counted and what /proc says for p (no lock held). */
static int measure(struct hf_registry *r, struct proc *p, struct hf_raw *raw,
		   struct hf_regions *regions, struct hf_room_read *rr)
{
	struct hf_span *spans = NULL;
	size_t nr_spans = 0;
	int err;

	err = hf_tracer_read(r->tracer, p->pid, raw);
	if (err == -ENOENT) {
		/* Nothing has happened in the process since attach. */
		memset(raw, 0, sizeof(*raw));
		err = 0;
	}
	if (err)
		return err;
	raw->calls_known = p->mode == HF_MODE_EXACT;
	if (p->mode == HF_MODE_EXACT) {
		err = hf_tracer_spans(r->tracer, p->pid, &spans, &nr_spans);
		if (err)
			return err;
	}
	err = hf_regions_read(p->pid, p->snap.allocator.kind, p->mode, spans, nr_spans, regions);
	free(spans);
	memset(rr, 0, sizeof(*rr));
	rr->regions = regions;
	if (!err && p->room && p->room->read && p->room_state) {
		struct hf_room_proc rp = room_proc(p);

		p->room->read(room_ctx(r, p->room), p->room_state, &rp, rr);
	}
	return err;
}

/* The account from the counts and regions, with what the tracer says of its maps. */
static void account(struct proc *p, const struct hf_raw *raw, const struct hf_regions *regions,
		    double now)
{
	hf_account(raw, regions, now, &p->snap);
	p->snap.tracing.dropped_events = raw->dropped_events;
	p->snap.tracing.live_map_entries = raw->live_map_entries;
}

static void apply(struct hf_registry *r, struct proc *p, const struct hf_raw *raw,
		  const struct hf_regions *regions, const struct hf_room_read *rr, double now)
{
	struct hf_history_point point;

	account(p, raw, regions, now);
	if (rr && rr->arenas_known) {
		memcpy(p->snap.arenas, rr->arenas, rr->nr_arenas * sizeof(rr->arenas[0]));
		p->snap.nr_arenas = (uint32_t)rr->nr_arenas;
		p->snap.arenas_truncated = rr->arenas_truncated;
	}
	if (rr && rr->ptm_events_known) {
		p->snap.ptm_events_known = true;
		p->snap.ptm_events = rr->ptm_events;
		p->snap.sampled_known = rr->sampled_known;
		p->snap.sampled = rr->sampled;
	}
	/* A history that cannot be allocated is simply not kept. */
	if (r->opts.history_seconds > 0 && !p->history.points)
		hf_history_init(&p->history, r->history_points, r->history_step);
	hf_history_point_of(&p->snap, now, &point);
	hf_history_add(&p->history, &point);
}

/*
 * Begins tracing pid: filter entry, uprobes, list entry with a first
 * snapshot.  target may be NULL (resolved here).  A forked child is already
 * in the kernel-side filter (counting since the fork) and, when probes are
 * inherited, shares its parent's.  Takes r->lock itself.
 */
static int start_tracing(struct hf_registry *r, pid_t pid, enum hf_mode mode,
			 const struct hf_alloc_target *target, uint64_t start_boottime,
			 bool expect_exec, bool forked, struct hf_probes *inherited, char *why,
			 size_t why_len)
{
	struct hf_room_read *rr = NULL;
	struct hf_regions regions;
	struct hf_proc_stat st;
	struct hf_raw raw;
	struct proc *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->mode = mode;
	p->expect_exec = expect_exec;
	err = hf_proc_read_stat(pid, &st);
	if (err) {
		if (err == -ESRCH || err == -ENOENT) {
			err = -ESRCH;
			say(why, why_len, "process %d does not exist", pid);
		} else {
			say(why, why_len, "cannot read /proc/%d/stat: %s", pid, strerror(-err));
		}
		goto cleanup;
	}
	if (st.state == 'Z' || st.state == 'X') {
		err = -ESRCH;
		say(why, why_len, "process %d has already exited", pid);
		goto cleanup;
	}
	p->start_ticks = start_boottime ? start_boottime / NS_PER_TICK : st.start_ticks;
	if (!start_boottime)
		start_boottime = st.start_ticks * NS_PER_TICK;

	if (target) {
		p->target = *target;
		p->target_known = true;
	} else {
		char reason[256] = "";

		err = hf_alloc_target_find(pid, &p->target, reason, sizeof(reason));
		if (err == -ESRCH) {
			say(why, why_len, "process %d does not exist", pid);
			goto cleanup;
		}
		if (err && mode == HF_MODE_EXACT) {
			say(why, why_len, "cannot find the allocator of process %d: %s", pid,
			    reason[0] ? reason : strerror(-err));
			goto cleanup;
		}
		/* Passive mode only needs the allocator's kind; unknown will do. */
		p->target_known = err == 0;
		err = 0;
	}

	pthread_mutex_lock(&r->lock);
	if (find_running(r, pid)) {
		pthread_mutex_unlock(&r->lock);
		err = -EEXIST;
		say(why, why_len, "process %d is already traced", pid);
		goto cleanup;
	}
	err = forked ? 0 : hf_tracer_track(r->tracer, pid, start_boottime, mode);
	if (!err && mode == HF_MODE_EXACT && inherited)
		p->probes = hf_probes_get(inherited);
	else if (!err && mode == HF_MODE_EXACT)
		err = hf_tracer_attach_uprobes(r->tracer, pid, &p->target, &p->probes);
	if (err) {
		hf_tracer_forget(r->tracer, pid);
		pthread_mutex_unlock(&r->lock);
		say(why, why_len, "cannot attach to process %d: %s", pid, strerror(-err));
		goto cleanup;
	}
	/* Listed (for -EEXIST) but hidden until its first snapshot is in. */
	fill_identity(r, p, st.comm);
	p->pending = true;
	p->next = r->procs;
	r->procs = p;
	pthread_mutex_unlock(&r->lock);

	hf_log(HF_LOG_INFO, "tracing process %d (%s) in %s mode, allocator %s at %s", pid, st.comm,
	       hf_mode_name(mode), hf_allocator_name(p->snap.allocator.kind),
	       p->target_known ? p->target.path : "(unknown)");
	/*
	 * A pending entry is never freed by anyone else, so p stays valid here.
	 * The spawned command is still heapfragd's copy until it execs: its
	 * first snapshot is of the program, at the next interval.
	 */
	room_add(r, p);
	rr = malloc(sizeof(*rr));
	err = expect_exec ? -EAGAIN : !rr ? -ENOMEM : measure(r, p, &raw, &regions, rr);
	pthread_mutex_lock(&r->lock);
	if (!err) {
		apply(r, p, &raw, &regions, rr, now_unix());
		p->raw = raw;
		p->regions = regions;
		p->regions_known = true;
	}
	p->pending = false;
	pthread_mutex_unlock(&r->lock);
	free(rr);
	hf_census_worker_kick(r->census);
	return 0;

cleanup:
	free(p);
	return err;
}

int hf_registry_attach(struct hf_registry *r, pid_t pid, enum hf_mode mode, char *why,
		       size_t why_len)
{
	if (pid <= 0) {
		say(why, why_len, "%d is not a process id", pid);
		return -ESRCH;
	}
	if (pid == getpid()) {
		say(why, why_len, "heapfragd does not trace itself");
		return -EINVAL;
	}
	return start_tracing(r, pid, mode, NULL, 0, false, false, NULL, why, why_len);
}

/* Under r->lock: the probes go, the kernel side forgets, the entry is hidden. */
static void stop_tracing(struct hf_registry *r, struct proc *p)
{
	room_stop(r, p);
	hf_probes_destroy(p->probes);
	p->probes = NULL;
	if (!p->exited)
		hf_tracer_forget(r->tracer, p->pid);
}

static int svc_detach(void *ctx, pid_t pid)
{
	struct hf_registry *r = ctx;
	struct proc **pp, *p = NULL;

	pthread_mutex_lock(&r->lock);
	/* The running process if there is one, else the newest exited one. */
	p = find_running(r, pid);
	for (pp = &r->procs; *pp; pp = &(*pp)->next)
		if ((*pp)->pid == pid && (!p || *pp == p))
			break;
	p = *pp;
	if (!p || p->pending) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	*pp = p->next;
	stop_tracing(r, p);
	p->dead = true;
	p->next = r->graveyard;
	r->graveyard = p;
	pthread_mutex_unlock(&r->lock);
	hf_log(HF_LOG_INFO, "detached from process %d", pid);
	return 0;
}

static int svc_attach(void *ctx, pid_t pid, enum hf_mode mode, char *why, size_t why_len)
{
	return hf_registry_attach(ctx, pid, mode, why, why_len);
}

static int svc_list(void *ctx, struct hf_snapshot **out, size_t *n)
{
	struct hf_registry *r = ctx;
	size_t cnt = 0, i = 0;
	struct hf_snapshot *arr;

	pthread_mutex_lock(&r->lock);
	for (struct proc *p = r->procs; p; p = p->next)
		cnt += !p->pending;
	arr = calloc(cnt ? cnt : 1, sizeof(*arr));
	if (!arr) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	for (struct proc *p = r->procs; p; p = p->next)
		if (!p->pending)
			arr[i++] = p->snap;
	pthread_mutex_unlock(&r->lock);
	*out = arr;
	*n = cnt;
	return 0;
}

/*
 * The process a route names by pid, under r->lock: the running one, else the
 * one that exited last.
 */
static struct proc *served(struct hf_registry *r, pid_t pid)
{
	struct proc *found = NULL;

	for (struct proc *p = r->procs; p; p = p->next) {
		if (p->pid != pid || p->pending)
			continue;
		if (!p->exited) {
			found = p;
			break;
		}
		if (!found || p->exited_at > found->exited_at)
			found = p;
	}
	return found;
}

static int svc_get(void *ctx, pid_t pid, struct hf_snapshot *out)
{
	struct hf_registry *r = ctx;
	struct proc *found = NULL;

	pthread_mutex_lock(&r->lock);
	found = served(r, pid);
	if (found)
		*out = found->snap;
	pthread_mutex_unlock(&r->lock);
	return found ? 0 : -ENOENT;
}

static int svc_census(void *ctx, pid_t pid, struct hf_snapshot *out,
		      struct hf_census_detail **detail)
{
	struct hf_registry *r = ctx;
	struct proc *found = NULL;

	*detail = NULL;
	pthread_mutex_lock(&r->lock);
	found = served(r, pid);
	if (found) {
		*out = found->snap;
		*detail = hf_census_detail_get(found->census_detail);
	}
	pthread_mutex_unlock(&r->lock);
	return found ? 0 : -ENOENT;
}

static int svc_sites(void *ctx, pid_t pid, int order, struct hf_sites **out, char *why,
		     size_t why_len)
{
	struct hf_registry *r = ctx;
	struct hf_census_detail *detail = NULL;
	const struct hf_room *room = NULL;
	enum hf_mode mode = HF_MODE_EXACT;
	struct proc *found = NULL;
	bool exited = false;
	int err;

	*out = NULL;
	pthread_mutex_lock(&r->lock);
	found = served(r, pid);
	if (found) {
		mode = found->mode;
		exited = found->exited;
		detail = hf_census_detail_get(found->sites_detail);
		room = found->room;
	}
	pthread_mutex_unlock(&r->lock);
	if (!found)
		return -ENOENT;
	/* Without probes on the calls, an allocator that samples its calls may know sites. */
	if ((mode != HF_MODE_EXACT || !r->opts.sites) && !exited && room && room->sampled_sites) {
		struct hf_sampled_site *ss = NULL;
		uint64_t interval = 0;
		size_t n = 0;

		hf_census_detail_put(detail);
		err = room->sampled_sites(room_ctx(r, room), pid, &ss, &n, &interval);
		if (err == -ENODATA) {
			say(why, why_len, "%s",
			    "The process's libptm probes are not attached, so its sampled sites are "
			    "not known.");
			return 0;
		}
		if (!err && !n && !interval) {
			free(ss);
			say(why, why_len, "%s",
			    "The process runs libptm without MALLOC_SAMPLE_INTERVAL_, so it samples "
			    "no allocation, and passive mode has no probe on the calls.");
			return 0;
		}
		if (!err) {
			pthread_mutex_lock(&r->sym_lock);
			if (!r->sym)
				r->sym = hf_symbolizer_new();
			err = hf_sites_build_sampled(pid, ss, n, interval, r->sym, out);
			pthread_mutex_unlock(&r->sym_lock);
		}
		free(ss);
		if (!err)
			hf_sites_sort(*out, (enum hf_sites_order)order);
		return err;
	}
	if (mode != HF_MODE_EXACT || !r->opts.sites || exited) {
		say(why, why_len, "%s",
		    exited		   ? "The process has exited; its sites went with its probes."
		    : mode != HF_MODE_EXACT ? "The process is traced in passive mode, which has no "
					      "probe on allocation calls and so keeps no sites."
					    : "heapfragd runs with --no-sites.");
		hf_census_detail_put(detail);
		return 0;
	}
	/* One symbolizer for every request: its cache is what makes symbols cheap. */
	pthread_mutex_lock(&r->sym_lock);
	if (!r->sym)
		r->sym = hf_symbolizer_new();
	err = hf_sites_build(r->tracer, pid, detail, r->sym, out);
	pthread_mutex_unlock(&r->sym_lock);
	hf_census_detail_put(detail);
	if (!err)
		hf_sites_sort(*out, (enum hf_sites_order)order);
	return err;
}

static int svc_history(void *ctx, pid_t pid, struct hf_history_point **out, size_t *n,
		       double *step)
{
	struct hf_registry *r = ctx;
	struct proc *found;
	int err = 0;

	*out = NULL;
	*n = 0;
	*step = r->history_step;
	pthread_mutex_lock(&r->lock);
	found = served(r, pid);
	if (!found) {
		err = -ENOENT;
	} else if (found->history.n) {
		*out = malloc(found->history.n * sizeof(**out));
		if (*out)
			*n = hf_history_copy(&found->history, *out, found->history.n);
		else
			err = -ENOMEM;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

static void svc_daemon_stats(void *ctx, struct hf_daemon_stats *out)
{
	struct hf_registry *r = ctx;

	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}

void hf_registry_service(struct hf_registry *r, struct hf_service *svc)
{
	*svc = (struct hf_service){
		.ctx = r,
		.list = svc_list,
		.get = svc_get,
		.census = svc_census,
		.sites = svc_sites,
		.sites_free = hf_sites_free,
		.history = svc_history,
		.attach = svc_attach,
		.detach = svc_detach,
		.daemon_stats = svc_daemon_stats,
	};
}

/* Is the executable of pid one of -e's?  Compared by device and inode. */
static bool runs_watched_exe(struct hf_registry *r, pid_t pid)
{
	char path[64];
	struct stat sb;

	if (!r->nr_exes)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (stat(path, &sb) != 0)
		return false;
	for (size_t i = 0; i < r->nr_exes; i++)
		if (r->exes[i].dev == sb.st_dev && r->exes[i].ino == sb.st_ino)
			return true;
	return false;
}

/*
 * -a: probes every process using this object, once per object.  The same
 * file has a path per process (/proc/PID/root/...), so it is known by inode.
 */
static int probe_object_for_all(struct hf_registry *r, const struct hf_alloc_target *target)
{
	struct watched_exe *objects;
	struct hf_probes **probes;
	struct stat sb;
	int err;

	if (stat(target->path, &sb) != 0)
		return -errno;
	for (size_t i = 0; i < r->nr_all; i++)
		if (r->all_objects[i].dev == sb.st_dev && r->all_objects[i].ino == sb.st_ino)
			return 0;
	probes = realloc(r->all_probes, (r->nr_all + 1) * sizeof(*probes));
	if (!probes)
		return -ENOMEM;
	r->all_probes = probes;
	objects = realloc(r->all_objects, (r->nr_all + 1) * sizeof(*objects));
	if (!objects)
		return -ENOMEM;
	r->all_objects = objects;
	err = hf_tracer_attach_uprobes(r->tracer, -1, target, &r->all_probes[r->nr_all]);
	if (err)
		return err;
	r->all_objects[r->nr_all].dev = sb.st_dev;
	r->all_objects[r->nr_all].ino = sb.st_ino;
	snprintf(r->all_objects[r->nr_all].path, HF_PATH_LEN, "%s", target->path);
	r->nr_all++;
	return 0;
}

static int resolve_fresh_exec(pid_t pid, struct hf_alloc_target *target);

/*
 * -a: lists a process the kernel side already counts; its probes are per
 * object.  fresh_exec: it has just exec'd, its libraries are not mapped yet.
 */
static void adopt(struct hf_registry *r, pid_t pid, bool fresh_exec)
{
	struct hf_alloc_target target;
	struct hf_proc_stat st;
	char reason[256];
	struct proc *p, *old;
	int err;

	if (pid == getpid() || hf_proc_read_stat(pid, &st) != 0)
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->pid = pid;
	p->mode = r->opts.mode;
	p->start_ticks = st.start_ticks;
	err = fresh_exec ? resolve_fresh_exec(pid, &target)
			 : hf_alloc_target_find(pid, &target, reason, sizeof(reason));
	if (err == 0) {
		p->target = target;
		p->target_known = true;
		if (r->opts.mode == HF_MODE_EXACT && probe_object_for_all(r, &target) != 0)
			hf_log(HF_LOG_WARN, "cannot probe %s for process %d", target.path, pid);
	}
	pthread_mutex_lock(&r->lock);
	old = find_running(r, pid);
	if (old && !(fresh_exec && !old->pending)) {
		pthread_mutex_unlock(&r->lock);
		free(p);
		return;
	}
	if (old) {
		/*
		 * The same process with a new image: its counters go on, the blocks
		 * of the old image are gone, its name and allocator are new.
		 */
		hf_tracer_forget_blocks(r->tracer, pid);
		old->snap.sites_known = false;
		old->snap.nr_top_sites = 0;
		old->target = p->target;
		old->target_known = p->target_known;
		/* The room's probes and books were the old image's: the new one gets its own. */
		room_stop(r, old);
		room_free(old);
		room_add(r, old);
		old->snap.nr_arenas = 0;
		old->snap.allocator.kind = p->target_known ? p->target.kind : HF_ALLOC_UNKNOWN;
		snprintf(old->snap.allocator.path, sizeof(old->snap.allocator.path), "%s",
			 p->target_known ? p->target.target_path : "");
		snprintf(old->snap.allocator.build_id, sizeof(old->snap.allocator.build_id), "%s",
			 p->target_known ? p->target.build_id : "");
		memcpy(old->snap.comm, st.comm, sizeof(old->snap.comm));
		if (hf_proc_read_exe(pid, old->snap.exe, sizeof(old->snap.exe)) != 0)
			old->snap.exe[0] = '\0';
		pthread_mutex_unlock(&r->lock);
		free(p);
		return;
	}
	p->adopted = true;
	fill_identity(r, p, st.comm);
	room_add(r, p);
	p->next = r->procs;
	r->procs = p;
	pthread_mutex_unlock(&r->lock);
	hf_census_worker_kick(r->census);
}

/* p has ended: its final counts, its probes let go, listed as exited (r->lock held). */
static void end_process(struct hf_registry *r, struct proc *p)
{
	struct hf_raw raw;

	/* The final counts, with the regions as they were last seen. */
	if (hf_tracer_read(r->tracer, p->pid, &raw) == 0 && p->regions_known) {
		raw.calls_known = p->mode == HF_MODE_EXACT;
		apply(r, p, &raw, &p->regions, NULL, now_unix());
	}
	room_stop(r, p);
	hf_probes_destroy(p->probes);
	p->probes = NULL;
	hf_tracer_forget(r->tracer, p->pid);
	p->exited = true;
	p->exited_at = now_unix();
	p->snap.state = HF_STATE_EXITED;
}

static void on_exit_event(struct hf_registry *r, const struct hfb_event *ev)
{
	struct proc *p;

	pthread_mutex_lock(&r->lock);
	p = find_running(r, (pid_t)ev->pid);
	if (!p || (ev->start_boottime && ev->start_boottime / NS_PER_TICK != p->start_ticks)) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	end_process(r, p);
	pthread_mutex_unlock(&r->lock);
	hf_log(HF_LOG_INFO, "process %d exited", (int)ev->pid);
}

/*
 * Has p ended, though no exit event said so?  A child that ends while its
 * fork is still being handled is listed from a zombie's /proc, after its
 * exit event found nothing to end, and a full ring buffer loses events:
 * without this such a process would stay listed as running for good.
 */
static bool ended_unseen(const struct proc *p)
{
	struct hf_proc_stat st;

	return hf_proc_read_stat(p->pid, &st) != 0 || st.state == 'Z' || st.state == 'X' ||
	       st.start_ticks != p->start_ticks;
}

static void on_fork_event(struct hf_registry *r, const struct hfb_event *ev)
{
	struct hf_probes *inherited = NULL;
	struct hf_alloc_target target;
	enum hf_mode mode;
	struct proc *parent;
	char why[256];
	int err;

	pthread_mutex_lock(&r->lock);
	parent = find_running(r, (pid_t)ev->ppid);
	if (!parent || !parent->target_known) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	/* The child runs the parent's image: the same allocator, the same offsets. */
	target = parent->target;
	mode = parent->mode;
	/* Held until the child is listed, so the parent's exit cannot drop them. */
	if (hf_tracer_inherits(r->tracer))
		inherited = hf_probes_get(parent->probes);
	pthread_mutex_unlock(&r->lock);
	err = start_tracing(r, (pid_t)ev->pid, mode, &target, ev->start_boottime, false, true,
			    inherited, why, sizeof(why));
	pthread_mutex_lock(&r->lock);
	hf_probes_destroy(inherited);
	pthread_mutex_unlock(&r->lock);
	if (err && err != -EEXIST)
		hf_tracer_forget(r->tracer, (pid_t)ev->pid);
	if (err && err != -EEXIST)
		hf_log(HF_LOG_WARN, "cannot follow fork %d -> %d: %s", (int)ev->ppid, (int)ev->pid,
		       why);
}

/*
 * The allocator of a process that has just exec'd: its dynamic linker has not
 * run yet, so it is found as for a command, with the process's own
 * environment (LD_PRELOAD counts).  Attaching now, before libc is mapped,
 * usually traces the program from its first allocation.
 */
static int resolve_fresh_exec(pid_t pid, struct hf_alloc_target *target)
{
	char path[64], exe[HF_PATH_LEN], why[256], *env = NULL, **envp = NULL;
	size_t len = 0, cap = 0, n = 0;
	ssize_t got;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	got = readlink(path, exe, sizeof(exe) - 1);
	if (got <= 0)
		return -ESRCH;
	exe[got] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *grown = realloc(env, cap + 65536);

			if (!grown)
				break;
			env = grown;
			cap += 65536;
		}
		got = read(fd, env + len, cap - len - 1);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (!env)
		return -ENOMEM;
	env[len] = '\0';
	for (size_t i = 0; i < len; i += strlen(env + i) + 1)
		n++;
	envp = calloc(n + 1, sizeof(*envp));
	if (!envp) {
		free(env);
		return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < len; i += strlen(env + i) + 1)
		envp[n++] = env + i;
	err = hf_alloc_target_for_command(exe, envp, target, why, sizeof(why));
	if (err)
		hf_log(HF_LOG_DEBUG, "process %d: %s", pid, why);
	free(envp);
	free(env);
	return err;
}

static void trace_exec(struct hf_registry *r, const struct hfb_event *ev)
{
	struct hf_alloc_target target;
	bool resolved;
	pid_t pid = (pid_t)ev->pid;
	struct hf_proc_stat st;
	enum hf_mode mode;
	struct proc *p;
	char why[256];
	int err;

	if (r->opts.all) {
		adopt(r, pid, true);
		return;
	}
	pthread_mutex_lock(&r->lock);
	p = find_running(r, pid);
	if (p && p->expect_exec) {
		/* The spawned command starting: its probes already wait for it. */
		p->expect_exec = false;
		hf_proc_read_exe(pid, p->snap.exe, sizeof(p->snap.exe));
		if (hf_proc_read_stat(pid, &st) == 0)
			memcpy(p->snap.comm, st.comm, sizeof(p->snap.comm));
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if (p && p->pending) {
		/* Attached while it exec'd: the attach resolved the new image or fails. */
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if (p) {
		/*
		 * A new image: its allocator may be another object, and the blocks
		 * of the old image are gone.  Trace it afresh.
		 */
		mode = p->mode;
		for (struct proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
			if (*pp == p) {
				*pp = p->next;
				break;
			}
		}
		stop_tracing(r, p);
		p->dead = true;
		p->next = r->graveyard;
		r->graveyard = p;
		pthread_mutex_unlock(&r->lock);
		resolved = resolve_fresh_exec(pid, &target) == 0;
		err = start_tracing(r, pid, mode, resolved ? &target : NULL, 0, false, false, NULL,
				    why, sizeof(why));
		if (err)
			hf_log(HF_LOG_WARN, "process %d exec'd %s and cannot be traced: %s", pid,
			       ev->filename, why);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	if (runs_watched_exe(r, pid)) {
		resolved = resolve_fresh_exec(pid, &target) == 0;
		err = start_tracing(r, pid, r->opts.mode, resolved ? &target : NULL, 0, false,
				    false, NULL, why, sizeof(why));
		if (err && err != -EEXIST)
			hf_log(HF_LOG_WARN, "cannot trace process %d (%s): %s", pid, ev->filename,
			       why);
	}
}

/*
 * -e: a process that exec'd a watched executable is held stopped by the exec
 * gate until here, so its probes are in before its first instruction.  It
 * is resumed whatever became of the attach: never left stopped.
 */
static void on_exec_event(struct hf_registry *r, const struct hfb_event *ev)
{
	uint64_t held_ns = 0;
	int err;

	trace_exec(r, ev);
	if (!r->gate)
		return;
	err = hf_exec_gate_release(r->gate, (pid_t)ev->pid, &held_ns);
	if (err == 1)
		hf_log(HF_LOG_INFO, "process %d (%s) held at exec for %.2f ms while attached",
		       (int)ev->pid, ev->filename, (double)held_ns / 1e6);
	else if (err < 0)
		hf_log(HF_LOG_WARN, "cannot resume process %d held at exec: %s", (int)ev->pid,
		       strerror(-err));
}

static void on_event(void *ctx, const struct hfb_event *ev)
{
	struct hf_registry *r = ctx;

	switch (ev->type) {
	case HFB_EV_FORK:
		on_fork_event(r, ev);
		break;
	case HFB_EV_EXEC:
		on_exec_event(r, ev);
		break;
	case HFB_EV_EXIT:
		on_exit_event(r, ev);
		break;
	default:
		break;
	}
}

/* The census worker's take (census_worker.h): the most overdue process, under r->lock. */
static bool census_take(void *ctx, double now, struct hf_census_take *job, double *wait)
{
	struct hf_registry *r = ctx;
	struct proc *best = NULL;
	double next = INFINITY;

	pthread_mutex_lock(&r->lock);
	for (struct proc *p = r->procs; p; p = p->next) {
		if (p->exited || p->pending || p->expect_exec || p->census_taken || !p->room ||
		    !p->room->census || !p->target_known)
			continue;
		if (p->census_due > now) {
			if (p->census_due < next)
				next = p->census_due;
			continue;
		}
		if (!best || p->census_due < best->census_due)
			best = p;
	}
	if (best) {
		best->census_taken = true;
		job->pid = best->pid;
		job->start_ticks = best->start_ticks;
		job->gen = best->census_gen;
		job->room = best->census_room;
		job->target = best->target;
		job->cache = best->census_cache;
		job->sites = best->mode == HF_MODE_EXACT && r->opts.sites;
		/*
		 * --census-stop-busy: a heap that changed under every copy is held
		 * for the next, and held on, but for one walk in eight that finds
		 * out whether it still needs to be.
		 */
		job->stop = r->opts.census_stop_busy &&
			    ((best->snap.census.state == HF_CENSUS_PARTIAL &&
			      best->snap.census.changing) ||
			     (!isnan(best->snap.census.stopped_seconds) &&
			      best->snap.census.walks % 8 != 0));
		best->census_cache = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	*wait = next - now;
	return best != NULL;
}

/* A site's index in an open-addressed table of ids (cap a power of two). */
static uint32_t site_index(struct hf_census_sites *s, uint32_t *slots, size_t cap, int stack_id,
			   uint64_t ret)
{
	uint64_t h = ((uint64_t)(uint32_t)stack_id * 0x9e3779b97f4a7c15ull) ^ ret;
	size_t i = (size_t)((h * 0xff51afd7ed558ccdull) >> 20) & (cap - 1);

	for (;; i = (i + 1) & (cap - 1)) {
		uint32_t k = slots[i];

		if (k == UINT32_MAX) {
			slots[i] = (uint32_t)s->nr_sites;
			s->ids[s->nr_sites] = (struct hf_census_site_id){.stack_id = stack_id, .ret = ret};
			return (uint32_t)s->nr_sites++;
		}
		if (s->ids[k].stack_id == stack_id && s->ids[k].ret == ret)
			return k;
	}
}

/*
 * The census worker's sites (census_worker.h): the process's live blocks
 * with a site, from the tracer's maps, each naming its site by index.
 */
static int census_sites(void *ctx, const struct hf_census_take *job, struct hf_census_sites **out)
{
	struct hf_registry *r = ctx;
	struct hf_live_block *blocks = NULL;
	struct hf_census_sites *s = NULL;
	uint32_t *slots = NULL;
	size_t n = 0, cap = 16;
	int err;

	*out = NULL;
	err = hf_tracer_live_blocks(r->tracer, job->pid, &blocks, &n);
	if (err)
		return err;
	while (cap < 2 * n)
		cap *= 2;
	s = calloc(1, sizeof(*s));
	slots = malloc(cap * sizeof(*slots));
	if (!s || !slots || !(s->ids = malloc((n ? n : 1) * sizeof(*s->ids))) ||
	    !(s->blocks = malloc((n ? n : 1) * sizeof(*s->blocks)))) {
		err = -ENOMEM;
		goto cleanup;
	}
	memset(slots, 0xff, cap * sizeof(*slots));
	for (size_t i = 0; i < n; i++) {
		if (blocks[i].stack_id == HFB_NO_SITE)
			continue;
		s->blocks[s->nr_blocks].addr = blocks[i].addr;
		s->blocks[s->nr_blocks].site =
			site_index(s, slots, cap, blocks[i].stack_id, blocks[i].ret);
		s->nr_blocks++;
	}
	s->pinned = calloc(s->nr_sites ? s->nr_sites : 1, sizeof(*s->pinned));
	if (!s->pinned) {
		err = -ENOMEM;
		goto cleanup;
	}
	*out = s;
	s = NULL;
cleanup:
	hf_census_sites_free(s);
	free(slots);
	free(blocks);
	return err;
}

/* ... and its give: the result lands only in the process and image it was taken of. */
static void census_give(void *ctx, struct hf_census_take *job, const struct hf_census *c,
			struct hf_census_detail *detail, double next_due)
{
	struct hf_registry *r = ctx;
	struct proc *p = NULL;

	pthread_mutex_lock(&r->lock);
	for (struct proc *q = r->procs; q; q = q->next)
		if (q->pid == job->pid && q->start_ticks == job->start_ticks && q->census_taken)
			p = q;
	if (p)
		p->census_taken = false;
	if (p && p->census_gen == job->gen) {
		p->census_cache = job->cache;
		job->cache = NULL;
		p->census_due = next_due;
		if (c->state != HF_CENSUS_NONE) {
			struct hf_census next = *c;

			hf_census_carry(&p->snap.census, &next);
			p->snap.census = next;
			/* The detail is of this walk, or there is none (unavailable). */
			if (detail && detail->sites) {
				hf_census_detail_put(p->sites_detail);
				p->sites_detail = hf_census_detail_get(detail);
			}
			hf_census_detail_put(p->census_detail);
			p->census_detail = detail;
			detail = NULL;
			/*
			 * What passive mode takes from the census follows it now, not
			 * at the next snapshot: one document never shows a census
			 * beside heap numbers derived from the one before.
			 */
			if (p->regions_known && !p->exited)
				account(p, &p->raw, &p->regions, now_unix());
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (job->cache && job->room->census_forget)
		job->room->census_forget(job->cache);
	job->cache = NULL;
	hf_census_detail_put(detail);
}

int hf_registry_new(const struct hf_options *opts, struct hf_registry **out)
{
	struct hf_tracer_config cfg = {
		.follow_forks = opts->follow_forks,
		.trace_all = opts->all,
		.watch_exec = opts->all || opts->nr_exes > 0,
		.all_mode = opts->mode,
		.max_live = opts->max_live,
		.max_procs = opts->max_procs,
		.max_mmaps = opts->max_mmaps,
		.sites = opts->sites,
		.stacks = opts->stacks,
		.stack_depth = opts->stack_depth,
		.max_sites = opts->max_sites,
		.max_stacks = opts->max_stacks,
	};
	struct hf_registry *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->sym_lock, NULL);
	r->opts = *opts;
	/*
	 * History: --history seconds in at most HF_HISTORY_MAX_POINTS points, one
	 * per snapshot interval where that fits.
	 */
	r->history_step = opts->interval;
	if (opts->history_seconds / r->history_step > HF_HISTORY_MAX_POINTS)
		r->history_step = opts->history_seconds / HF_HISTORY_MAX_POINTS;
	r->history_points = (size_t)ceil(opts->history_seconds / r->history_step);
	if (r->history_points > HF_HISTORY_MAX_POINTS)
		r->history_points = HF_HISTORY_MAX_POINTS;
	if (!r->history_points)
		r->history_points = 1;
	r->command = -1;
	err = hf_proc_boot_time(&r->btime);
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to read the boot time from /proc/stat: %s",
		       strerror(-err));
		goto cleanup;
	}
	/*
	 * -e's exec gate, attached before the tracer so that its exec hook runs
	 * first: the process is held before the exec event can reach us.  -a
	 * needs none (its probes are per object, in place before any exec).
	 * Without it -e still works, racing the dynamic linker as it used to.
	 */
	if (opts->nr_exes && !opts->all) {
		err = hf_exec_gate_open(HF_EXEC_GATE_TIMEOUT_MS, &r->gate);
		if (err) {
			hf_log(HF_LOG_WARN,
			       "the exec gate is off: -e may miss a new process's first "
			       "allocations: %s",
			       strerror(-err));
			r->gate = NULL;
		}
	}
	err = hf_tracer_open(&cfg, on_event, r, &r->tracer);
	if (err)
		goto cleanup;
	r->rooms = calloc(hf_nr_rooms, sizeof(*r->rooms));
	if (!r->rooms) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < hf_nr_rooms; i++) {
		if (!hf_rooms[i]->open)
			continue;
		err = hf_rooms[i]->open(&(struct hf_room_config){.max_procs = opts->max_procs},
					&r->rooms[i]);
		if (err) {
			hf_log(HF_LOG_ERROR, "failed to open the %s room: %s",
			       hf_allocator_name(hf_rooms[i]->kind), strerror(-err));
			goto cleanup;
		}
	}
	if (opts->census) {
		struct hf_census_owner owner = {
			.ctx = r, .take = census_take, .give = census_give, .sites = census_sites};

		err = hf_census_worker_start(&owner, opts->census_interval, opts->census_budget,
					     opts->census_stop, &r->census);
		if (err) {
			hf_log(HF_LOG_ERROR, "failed to start the census thread: %s", strerror(-err));
			goto cleanup;
		}
	}
	*out = r;
	return 0;

cleanup:
	hf_registry_free(r);
	return err;
}

static void free_list(struct proc *p)
{
	while (p) {
		struct proc *next = p->next;

		hf_probes_destroy(p->probes);
		room_free(p);
		hf_history_free(&p->history);
		free(p);
		p = next;
	}
}

void hf_registry_free(struct hf_registry *r)
{
	if (!r)
		return;
	/* First: whatever it holds is resumed at once; then no census runs. */
	hf_exec_gate_close(r->gate);
	hf_census_worker_stop(r->census);
	free_list(r->procs);
	free_list(r->graveyard);
	for (size_t i = 0; i < r->nr_all; i++)
		hf_probes_destroy(r->all_probes[i]);
	free(r->all_probes);
	free(r->all_objects);
	free(r->exes);
	for (size_t i = 0; r->rooms && i < hf_nr_rooms; i++)
		if (hf_rooms[i]->close)
			hf_rooms[i]->close(r->rooms[i]);
	free(r->rooms);
	hf_tracer_close(r->tracer);
	hf_symbolizer_free(r->sym);
	pthread_mutex_destroy(&r->sym_lock);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int hf_registry_watch_exe(struct hf_registry *r, const char *path, char *why, size_t why_len)
{
	struct watched_exe *grown;
	struct dirent *de;
	struct stat sb;
	DIR *dir;

	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		say(why, why_len, "%s is not an executable file", path);
		return -ENOENT;
	}
	grown = realloc(r->exes, (r->nr_exes + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	r->exes = grown;
	r->exes[r->nr_exes].dev = sb.st_dev;
	r->exes[r->nr_exes].ino = sb.st_ino;
	snprintf(r->exes[r->nr_exes].path, HF_PATH_LEN, "%s", path);
	r->nr_exes++;
	if (r->gate) {
		int err = hf_exec_gate_watch(r->gate, path);

		if (err)
			hf_log(HF_LOG_WARN,
			       "execs of %s are not held, first allocations may be missed: %s",
			       path, strerror(-err));
	}

	/* The processes running it now; later ones arrive as exec events. */
	dir = opendir("/proc");
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		char reason[256];

		if (*end || pid <= 0 || pid == getpid() || !runs_watched_exe(r, (pid_t)pid))
			continue;
		if (start_tracing(r, (pid_t)pid, r->opts.mode, NULL, 0, false, false, NULL, reason,
				  sizeof(reason)) != 0)
			hf_log(HF_LOG_WARN, "cannot trace process %ld: %s", pid, reason);
	}
	closedir(dir);
	return 0;
}

int hf_registry_trace_all(struct hf_registry *r, char *why, size_t why_len)
{
	struct dirent *de;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir) {
		say(why, why_len, "cannot list /proc: %s", strerror(errno));
		return -errno;
	}
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		adopt(r, (pid_t)pid, false);
	}
	closedir(dir);
	return 0;
}

int hf_registry_spawn(struct hf_registry *r, char **argv, pid_t *child, char *why, size_t why_len)
{
	struct hf_alloc_target target;
	int go[2], err;
	pid_t pid;
	char c = 0;

	err = hf_alloc_target_for_command(argv[0], environ, &target, why, why_len);
	if (err && r->opts.mode == HF_MODE_EXACT)
		return err;
	if (pipe2(go, O_CLOEXEC) != 0) {
		err = -errno;
		say(why, why_len, "cannot create a pipe: %s", strerror(-err));
		return err;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		say(why, why_len, "cannot fork: %s", strerror(-err));
		close(go[0]);
		close(go[1]);
		return err;
	}
	if (pid == 0) {
		/* Wait until the probes are in place; EOF without a byte means "give up". */
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "heapfragd: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(go[0]);
	err = start_tracing(r, pid, r->opts.mode, err ? NULL : &target, 0, true, false, NULL, why,
			    why_len);
	if (err) {
		close(go[1]);
		waitpid(pid, NULL, 0);
		return err;
	}
	r->command = pid;
	if (write(go[1], &c, 1) != 1) {
		err = -errno;
		close(go[1]);
		say(why, why_len, "cannot start %s: %s", argv[0], strerror(-err));
		return err;
	}
	close(go[1]);
	*child = pid;
	return 0;
}

/* Takes a snapshot of every running process; drops exited ones past retention. */
static int by_tgid(const void *a, const void *b)
{
	const struct hf_site_raw *x = a, *y = b;

	return x->key.tgid < y->key.tgid ? -1 : x->key.tgid > y->key.tgid;
}

/*
 * p's top sites into its snapshot, from all[0..n) (every process's sites,
 * sorted by tgid).  A site already among the top keeps its base; a new one,
 * or one whose base is older than HF_SITE_BASE_SECONDS, starts one now.
 */
static void update_top_sites(struct hf_registry *r, struct proc *p, const struct hf_site_raw *all,
			     size_t n, double now)
{
	struct hf_top_site top[HF_MAX_TOP_SITES];
	struct hf_census_detail *detail;
	size_t lo = 0, hi, ntop = 0;
	struct hf_site_raw want = {.key.tgid = (unsigned int)p->pid};

	while (lo < n && by_tgid(&all[lo], &want) < 0)
		lo++;
	for (hi = lo; hi < n && all[hi].key.tgid == want.key.tgid; hi++)
		;
	pthread_mutex_lock(&r->lock);
	detail = hf_census_detail_get(p->sites_detail);
	pthread_mutex_unlock(&r->lock);
	pthread_mutex_lock(&r->sym_lock);
	if (!r->sym)
		r->sym = hf_symbolizer_new();
	if (hf_sites_top(r->tracer, p->pid, all + lo, hi - lo, detail, r->sym, top,
			 r->opts.site_metrics, &ntop) != 0)
		ntop = 0;
	pthread_mutex_unlock(&r->sym_lock);
	hf_census_detail_put(detail);

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < ntop; i++) {
		const struct hf_top_site *old = NULL;

		for (uint32_t k = 0; k < p->snap.nr_top_sites; k++)
			if (p->snap.top_sites[k].id == top[i].id)
				old = &p->snap.top_sites[k];
		if (old && now - old->base_at < HF_SITE_BASE_SECONDS) {
			top[i].base_at = old->base_at;
			top[i].base_live_bytes = old->base_live_bytes;
			top[i].base_allocations = old->base_allocations;
			top[i].base_frees = old->base_frees;
		} else {
			top[i].base_at = now;
			top[i].base_live_bytes = top[i].live_bytes;
			top[i].base_allocations = top[i].allocations;
			top[i].base_frees = top[i].frees;
		}
	}
	if (!p->dead && !p->exited) {
		p->snap.sites_known = true;
		p->snap.nr_top_sites = (uint32_t)ntop;
		memcpy(p->snap.top_sites, top, ntop * sizeof(top[0]));
	}
	pthread_mutex_unlock(&r->lock);
}

static void tick(struct hf_registry *r)
{
	struct hf_site_raw *all_sites = NULL;
	size_t nr_sites = 0;
	struct hf_room_read *rr = malloc(sizeof(*rr));
	struct proc **batch = NULL, **pp;
	size_t n = 0, cap = 0;
	uint64_t live_total = 0, dropped_total = 0, tracked = 0;
	double now;

	/* Nobody holds a pointer into the graveyard between ticks. */
	pthread_mutex_lock(&r->lock);
	free_list(r->graveyard);
	r->graveyard = NULL;
	for (struct proc *p = r->procs; p; p = p->next) {
		if (p->exited || p->pending || p->expect_exec)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct proc **grown = realloc(batch, ncap * sizeof(*grown));

			if (!grown)
				break;
			batch = grown;
			cap = ncap;
		}
		batch[n++] = p;
	}
	pthread_mutex_unlock(&r->lock);
	/* Every process's sites in one pass over the map, for their top sites. */
	if (r->opts.sites && r->opts.site_metrics &&
	    hf_tracer_sites(r->tracer, -1, &all_sites, &nr_sites) == 0 && nr_sites)
		qsort(all_sites, nr_sites, sizeof(*all_sites), by_tgid);

	for (size_t i = 0; i < n && rr; i++) {
		struct proc *p = batch[i];
		struct hf_regions regions;
		struct hf_cgroup cgroup;
		struct hf_raw raw;
		bool cgroup_read;
		int err;

		err = measure(r, p, &raw, &regions, rr);
		/* A process can be moved to another cgroup at any time. */
		cgroup_read = !err && hf_cgroup_read(p->pid, &cgroup) == 0;
		now = now_unix();
		pthread_mutex_lock(&r->lock);
		if (!err && !p->dead && !p->exited) {
			if (cgroup_read)
				p->snap.cgroup = cgroup;
			apply(r, p, &raw, &regions, rr, now);
			p->raw = raw;
			p->regions = regions;
			p->regions_known = true;
		}
		pthread_mutex_unlock(&r->lock);
		if (err && ended_unseen(p)) {
			bool ended = false;

			pthread_mutex_lock(&r->lock);
			if (!p->dead && !p->exited) {
				end_process(r, p);
				ended = true;
			}
			pthread_mutex_unlock(&r->lock);
			if (ended)
				hf_log(HF_LOG_INFO, "process %d ended (seen in /proc)", p->pid);
		}
		if (err && err != -ESRCH)
			hf_log(HF_LOG_DEBUG, "cannot measure process %d: %s", p->pid,
			       strerror(-err));
		if (!err && p->mode == HF_MODE_EXACT && r->opts.sites && r->opts.site_metrics)
			update_top_sites(r, p, all_sites, nr_sites, now);
	}
	free(all_sites);
	free(batch);
	free(rr);

	now = now_unix();
	pthread_mutex_lock(&r->lock);
	for (pp = &r->procs; *pp;) {
		struct proc *p = *pp;

		if (p->exited && !p->pending && now - p->exited_at >= r->opts.retention) {
			/* Its drops stay in the daemon's total: that is a counter. */
			if (hf_known(p->snap.tracing.dropped_events))
				r->dropped_forgotten += p->snap.tracing.dropped_events;
			*pp = p->next;
			room_free(p);
			hf_history_free(&p->history);
			free(p);
			continue;
		}
		tracked++;
		if (!p->exited) {
			live_total += p->snap.tracing.live_map_entries;
		}
		dropped_total += p->snap.tracing.dropped_events;
		pp = &p->next;
	}
	r->stats.tracked_processes = tracked;
	r->stats.nr_drop_reasons = 1;
	r->stats.dropped[0].reason = "map_full";
	r->stats.dropped[0].count = dropped_total + r->dropped_forgotten;
	for (size_t i = 0; i < hf_nr_rooms; i++)
		if (hf_rooms[i]->stats && r->rooms[i])
			hf_rooms[i]->stats(r->rooms[i], &r->stats);
	hf_tracer_map_stats(r->tracer, live_total, &r->stats);
	pthread_mutex_unlock(&r->lock);
}

/* -a: processes the kernel side began counting on its own. */
static void adopt_new(struct hf_registry *r)
{
	pid_t *pids = NULL;
	size_t n = 0;

	if (!r->opts.all)
		return;
	if (hf_tracer_procs(r->tracer, &pids, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		bool known;

		pthread_mutex_lock(&r->lock);
		known = find_running(r, pids[i]) != NULL;
		pthread_mutex_unlock(&r->lock);
		if (!known)
			adopt(r, pids[i], false);
	}
	free(pids);
}

int hf_registry_run(struct hf_registry *r, volatile sig_atomic_t *stop, int *status)
{
	double next = monotonic();
	int err;

	while (!*stop) {
		int poll_ms = (int)((next - monotonic()) * 1000);

		if (poll_ms < 0)
			poll_ms = 0;
		if (poll_ms > 100)
			poll_ms = 100;
		err = hf_tracer_poll(r->tracer, poll_ms);
		if (err < 0) {
			hf_log(HF_LOG_ERROR, "failed to poll the event ring buffer: %s",
			       strerror(-err));
			return err;
		}
		if (r->command > 0 && !r->command_done) {
			int wstatus;

			if (waitpid(r->command, &wstatus, WNOHANG) == r->command) {
				r->command_done = true;
				r->command_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
								       : 128 + WTERMSIG(wstatus);
				hf_log(HF_LOG_INFO, "command %d ended with status %d", r->command,
				       r->command_status);
				if (r->opts.exit_with_command) {
					/* Its exit event may still be queued: take it first. */
					hf_tracer_poll(r->tracer, 0);
					*status = r->command_status;
					return 0;
				}
			}
		}
		if (monotonic() >= next) {
			adopt_new(r);
			tick(r);
			next += r->opts.interval;
			if (next < monotonic())
				next = monotonic() + r->opts.interval;
		}
	}
	return 0;
}
