// SPDX-License-Identifier: MIT
/*
 * tracer.c - loads bpf/heapfrag.bpf.c and manages its maps and probes.
 *
 * Map sizes and the rodata tunables are set between open and load, so one
 * compiled object serves every command line.  Uprobes are attached per
 * target with a PID filter, so other processes using the same library pay
 * nothing; each probe's BPF cookie carries its op and the allocator's
 * size rule (see bpf/heapfrag.h).
 */
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "heapfrag.skel.h"
#include "log.h"
#include "tracefs.h"

_Static_assert(HF_HIST_BUCKETS == HFB_HIST_BUCKETS, "size buckets differ");
_Static_assert(HF_LAT_BUCKETS == HFB_LAT_BUCKETS, "latency buckets differ");
_Static_assert(HF_LAT_MIN_SHIFT == HFB_LAT_MIN_SHIFT, "latency buckets differ");
_Static_assert((int)HF_LAT_OPS == (int)HFB_LAT_OPS, "timed calls differ");

struct hf_tracer {
	struct heapfrag_bpf *skel;
	struct ring_buffer *rb;
	hf_tracer_event_fn on_event;
	void *ctx;
	int ncpus;
	uint32_t max_live;
	uint32_t stack_depth;
	/* Per-PID uprobes are inherited by the target's children (follow forks). */
	bool inherit;
	int uprobe_pmu;   /* the "uprobe" perf PMU's type */
	int retprobe_bit; /* its config bit that makes a return probe */
};

struct hf_probes {
	int refs;
	struct hf_probes *next_doomed; /* in the reaper's queue */
	size_t n;
	struct bpf_link *links[2 * (HF_OP_COUNT + 1)];
	/* The tracefs event behind each link, "" when libbpf made it. */
	char names[2 * (HF_OP_COUNT + 1)][48];
};

static int handle_event(void *ctx, void *data, size_t size)
{
	struct hf_tracer *t = ctx;

	if (size < sizeof(struct hfb_event))
		return 0;
	t->on_event(t->ctx, data);
	return 0;
}

static int write_uprobe_events(const char *line);
static void reaper_drain(void);
static const char *tracefs_dir(void);

static void remove_event(char *name)
{
	char line[96];

	if (!name[0])
		return;
	snprintf(line, sizeof(line), "-:heapfrag/%s\n", name);
	write_uprobe_events(line);
	name[0] = '\0';
}

/*
 * A heapfragd that was killed could not remove its tracefs uprobe events;
 * their names carry its PID, so those of dead daemons are removed here.
 */
static void remove_stale_events(void)
{
	char path[128], line[HF_PATH_LEN + 128], name[48], (*doomed)[48] = NULL;
	size_t n = 0;
	FILE *f;
	int owner;

	snprintf(path, sizeof(path), "%s/uprobe_events", tracefs_dir());
	f = fopen(path, "r");
	if (!f)
		return;
	/* Collected first: removing while reading would shift the file under us. */
	while (fgets(line, sizeof(line), f)) {
		void *grown;

		if (sscanf(line, "%*c:heapfrag/%47s", name) != 1 ||
		    sscanf(name, "hf_%d_", &owner) != 1 || owner <= 0)
			continue;
		if (kill(owner, 0) == 0 || errno != ESRCH)
			continue;
		grown = realloc(doomed, (n + 1) * sizeof(*doomed));
		if (!grown)
			break;
		doomed = grown;
		memcpy(doomed[n++], name, sizeof(name));
	}
	fclose(f);
	for (size_t i = 0; i < n; i++)
		remove_event(doomed[i]);
	if (n)
		hf_log(HF_LOG_INFO,
		       "removed %zu uprobe events left by heapfragd processes that died", n);
	free(doomed);
}

static int read_sysfs_int(const char *path, const char *fmt, int *out)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, fmt, out) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static bool has_syscall_tracepoint(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/events/syscalls/sys_enter_%s", tracefs_dir(), name);
	return faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) == 0;
}

int hf_tracer_open(const struct hf_tracer_config *cfg, hf_tracer_event_fn on_event, void *ctx,
		   struct hf_tracer **out)
{
	struct hf_tracer *t;
	int err;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->on_event = on_event;
	t->ctx = ctx;
	t->max_live = cfg->max_live;
	t->inherit = cfg->follow_forks && !cfg->trace_all;
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		err = t->ncpus ? t->ncpus : -EINVAL;
		hf_log(HF_LOG_ERROR, "failed to count the possible CPUs: %s", strerror(-err));
		goto cleanup;
	}

	t->skel = heapfrag_bpf__open();
	if (!t->skel) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to open the BPF object: %s", strerror(-err));
		goto cleanup;
	}
	t->skel->rodata->follow_forks = cfg->follow_forks;
	t->skel->rodata->trace_all = cfg->trace_all;
	t->skel->rodata->trace_all_mode =
		cfg->all_mode == HF_MODE_PASSIVE ? HFB_MODE_PASSIVE : HFB_MODE_EXACT;
	t->skel->rodata->watch_exec = cfg->watch_exec;
	t->skel->rodata->self_tgid = (uint32_t)getpid();
	bpf_map__set_max_entries(t->skel->maps.procs, cfg->max_procs);
	bpf_map__set_max_entries(t->skel->maps.stats, cfg->max_procs);
	bpf_map__set_max_entries(t->skel->maps.live, cfg->max_live);
	bpf_map__set_max_entries(t->skel->maps.mmaps, cfg->max_mmaps);
	bpf_map__set_max_entries(t->skel->maps.areas, cfg->max_mmaps);
	t->skel->rodata->want_sites = cfg->sites;
	t->skel->rodata->want_stacks = cfg->sites && cfg->stacks;
	t->stack_depth = cfg->stack_depth;
	bpf_map__set_max_entries(t->skel->maps.sites, cfg->sites ? cfg->max_sites : 1);
	/* Without stacks the stack map is never written: one small entry. */
	bpf_map__set_max_entries(t->skel->maps.stacks,
				 cfg->sites && cfg->stacks ? cfg->max_stacks : 1);
	bpf_map__set_value_size(t->skel->maps.stacks,
				(cfg->sites && cfg->stacks ? cfg->stack_depth : 1) * sizeof(uint64_t));

	/* The syscall tracepoints are found through tracefs. */
	err = hf_tracefs_ensure();
	if (err)
		goto cleanup;
	if (!has_syscall_tracepoint("process_madvise")) {
		/* Before Linux 5.10: nothing can release pages that way. */
		bpf_program__set_autoload(t->skel->progs.hf_enter_process_madvise, false);
		bpf_program__set_autoload(t->skel->progs.hf_exit_process_madvise, false);
	}

	err = heapfrag_bpf__load(t->skel);
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to load the BPF programs: %s", strerror(-err));
		goto cleanup;
	}

	remove_stale_events();
	/* The uprobes are attached per target later; everything else now. */
	err = heapfrag_bpf__attach(t->skel);
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to attach the tracepoints: %s", strerror(-err));
		goto cleanup;
	}

	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), handle_event, t, NULL);
	if (!t->rb) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to open the event ring buffer: %s", strerror(-err));
		goto cleanup;
	}
	*out = t;
	return 0;

cleanup:
	hf_tracer_close(t);
	return err;
}

void hf_tracer_close(struct hf_tracer *t)
{
	if (!t)
		return;
	reaper_drain();
	ring_buffer__free(t->rb);
	heapfrag_bpf__destroy(t->skel);
	free(t);
}

/*
 * Collects the keys of map that belong to tgid, then deletes them.  Every
 * per-process key (hfb_live_key, hfb_site_key) is 16 bytes with the tgid
 * first.
 */
static void delete_keys_of(struct bpf_map *map, pid_t tgid)
{
	struct hfb_live_key key, next, *doomed = NULL;
	size_t n = 0, cap = 0;
	int fd = bpf_map__fd(map);
	void *prev = NULL;

	_Static_assert(sizeof(struct hfb_site_key) == sizeof(struct hfb_live_key) &&
			       offsetof(struct hfb_site_key, tgid) == 0,
		       "per-process keys share one shape");
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (next.tgid == (unsigned int)tgid) {
			if (n == cap) {
				size_t ncap = cap ? 2 * cap : 256;
				void *grown = realloc(doomed, ncap * sizeof(*doomed));

				if (!grown)
					break;
				doomed = grown;
				cap = ncap;
			}
			doomed[n++] = next;
		}
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &doomed[i]);
	free(doomed);
}


static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/*
 * Deletes pid's sites, then the stacks no remaining site names: stack ids
 * are shared by every process whose stack had the same addresses.
 */
static void forget_sites(struct hf_tracer *t, pid_t pid)
{
	struct hf_site_raw *all = NULL;
	size_t n = 0, nids = 0, nused = 0;
	int *ids = NULL, *used = NULL;

	if (hf_tracer_sites(t, pid, &all, &n) != 0) {
		/* Its stacks may stay behind; its sites do not. */
		delete_keys_of(t->skel->maps.sites, pid);
		return;
	}
	ids = n ? malloc(n * sizeof(*ids)) : NULL;
	for (size_t i = 0; ids && i < n; i++)
		if (all[i].key.stack_id >= 0)
			ids[nids++] = all[i].key.stack_id;
	free(all);
	delete_keys_of(t->skel->maps.sites, pid);
	if (!nids || hf_tracer_sites(t, -1, &all, &n) != 0) {
		free(ids);
		return;
	}
	used = malloc((n ? n : 1) * sizeof(*used));
	for (size_t i = 0; used && i < n; i++)
		if (all[i].key.stack_id >= 0)
			used[nused++] = all[i].key.stack_id;
	if (used)
		qsort(used, nused, sizeof(*used), cmp_int);
	for (size_t k = 0; used && k < nids; k++)
		if (!bsearch(&ids[k], used, nused, sizeof(*used), cmp_int))
			bpf_map_delete_elem(bpf_map__fd(t->skel->maps.stacks), &ids[k]);
	free(used);
	free(all);
	free(ids);
}

/* The blocks and the sites belong to the image: an exec, like an exit, ends them. */
void hf_tracer_forget_blocks(struct hf_tracer *t, pid_t pid)
{
	delete_keys_of(t->skel->maps.live, pid);
	delete_keys_of(t->skel->maps.mmaps, pid);
	delete_keys_of(t->skel->maps.areas, pid);
	forget_sites(t, pid);
}

void hf_tracer_forget(struct hf_tracer *t, pid_t pid)
{
	uint32_t key = (uint32_t)pid;

	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.procs), &key);
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.stats), &key);
	hf_tracer_forget_blocks(t, pid);
}

int hf_tracer_track(struct hf_tracer *t, pid_t pid, uint64_t start_boottime, enum hf_mode mode)
{
	struct hfb_proc proc = {
		.start_boottime = start_boottime,
		.mode = mode == HF_MODE_PASSIVE ? HFB_MODE_PASSIVE : HFB_MODE_EXACT,
	};
	uint32_t key = (uint32_t)pid;
	struct hfb_stats *zero;
	int err = 0;

	/* Whatever a previous process with this PID left behind is not ours. */
	hf_tracer_forget(t, pid);
	/*
	 * The counters exist before the first probe fires, so that a uprobe hit
	 * pays one lookup and never a creation (see uprobe_stats()).
	 */
	zero = calloc((size_t)t->ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.stats), &key, zero, BPF_ANY) != 0 ||
	    bpf_map_update_elem(bpf_map__fd(t->skel->maps.procs), &key, &proc, BPF_ANY) != 0) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to add process %d to the filter: %s", pid,
		       strerror(-err));
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.stats), &key);
	}
	free(zero);
	return err;
}

static enum hfb_size_rule size_rule(enum hf_allocator kind)
{
	return kind == HF_ALLOC_GLIBC || kind == HF_ALLOC_LIBPTM ? HFB_SIZE_CHUNK_HEADER
								 : HFB_SIZE_CLASS;
}

/* Several names may share one address (aliases): probe each address once. */
static bool duplicate_site(const struct hf_alloc_target *target, int op)
{
	for (int i = 0; i < op; i++)
		if (target->ops[i].present &&
		    target->ops[i].sym_offset == target->ops[op].sym_offset)
			return true;
	return false;
}

/* With AT_EACCESS, as tracefs.c explains: a non-root heapfragd holds capabilities. */
static const char *tracefs_dir(void)
{
	return faccessat(AT_FDCWD, "/sys/kernel/tracing/uprobe_events", W_OK, AT_EACCESS) == 0
		       ? "/sys/kernel/tracing"
		       : "/sys/kernel/debug/tracing";
}

static int write_uprobe_events(const char *line)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/uprobe_events", tracefs_dir());
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, line, strlen(line)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/*
 * A PID-filtered uprobe whose perf event is inherited on fork: the kernel
 * gives every child (and thread) the event before it runs, so a forked child
 * is traced from its first instruction with no window for user space to
 * close.  libbpf cannot ask for that, and the uprobe PMU cannot inherit (the
 * child's copy would re-read the path from the tracer's memory), so the probe
 * is a tracefs uprobe event opened as a tracepoint.  The BPF program belongs
 * to the event, so it runs once per hit whichever inherited copy matched.
 */
static struct bpf_link *attach_inherited(struct hf_probes *p, struct bpf_program *prog, pid_t pid,
					 const char *path, uint64_t offset, bool retprobe,
					 uint64_t cookie)
{
	LIBBPF_OPTS(bpf_perf_event_opts, opts, .bpf_cookie = cookie);
	static unsigned int seq;
	struct perf_event_attr attr = {
		.size = sizeof(attr), .type = PERF_TYPE_TRACEPOINT, .inherit = 1};
	char *name = p->names[p->n], line[HF_PATH_LEN + 128], id_path[256];
	struct bpf_link *link = NULL;
	int pfd = -1, id, err;

	snprintf(name, sizeof(p->names[0]), "hf_%d_%d_%u", (int)getpid(), (int)pid,
		 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	snprintf(line, sizeof(line), "%c:heapfrag/%s %s:0x%llx\n", retprobe ? 'r' : 'p', name, path,
		 (unsigned long long)offset);
	err = write_uprobe_events(line);
	if (err)
		goto fail;
	snprintf(id_path, sizeof(id_path), "%s/events/heapfrag/%s/id", tracefs_dir(), name);
	err = read_sysfs_int(id_path, "%d", &id);
	if (err)
		goto fail;
	attr.config = (uint64_t)id;
	pfd = (int)syscall(__NR_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0) {
		err = -errno;
		goto fail;
	}
	link = bpf_program__attach_perf_event_opts(prog, pfd, &opts);
	if (!link) {
		err = -errno;
		goto fail;
	}
	return link;

fail:
	if (pfd >= 0)
		close(pfd);
	remove_event(name);
	errno = -err;
	return NULL;
}

static int attach_one(struct hf_tracer *t, struct hf_probes *p, pid_t pid, const char *path,
		      const char *func, uint64_t offset, bool retprobe, uint64_t cookie)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .bpf_cookie = cookie,
		    .func_name = func);
	struct bpf_program *prog =
		retprobe ? t->skel->progs.hf_alloc_return : t->skel->progs.hf_alloc_entry;
	struct bpf_link *link;

	if (t->inherit && pid > 0 && !func)
		link = attach_inherited(p, prog, pid, path, offset, retprobe, cookie);
	else
		link = bpf_program__attach_uprobe_opts(prog, pid, path, offset, &opts);
	if (!link)
		return -errno;
	p->links[p->n++] = link;
	return 0;
}

int hf_tracer_attach_uprobes(struct hf_tracer *t, pid_t pid, const struct hf_alloc_target *target,
			     struct hf_probes **out)
{
	enum hfb_size_rule rule = size_rule(target->kind);
	int err = 0, emulated = 0, stepped = 0;
	struct hf_probes *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->refs = 1;
	/*
	 * Return probes first: a return without its entry is ignored, while an
	 * entry whose return probe is not there yet would leave the thread
	 * looking "inside the allocator" forever.
	 */
	for (int pass = 0; pass < 2; pass++) {
		bool ret = pass == 0;

		for (int op = 0; op < HF_OP_COUNT; op++) {
			const struct hf_probe_site *site = &target->ops[op];

			if (!site->present || site->alias_of >= 0 || duplicate_site(target, op))
				continue;
			/*
			 * free needs nothing from its return (see bpf/heapfrag.bpf.c),
			 * and a return probe would cost every free a second trap.
			 */
			if (ret && (op == HF_OP_FREE || op == HF_OP_CFREE))
				continue;
			err = attach_one(t, p, pid, target->path, NULL,
					 ret ? site->ret_offset : site->entry_offset, ret,
					 HFB_COOKIE(op, rule));
			if (err) {
				hf_log(HF_LOG_ERROR,
				       "failed to attach the %s probe of %s in %s: %s",
				       ret ? "return" : "entry", hf_op_symbol(op), target->path,
				       strerror(-err));
				goto cleanup;
			}
			if (!ret) {
				emulated += site->entry_emulated;
				stepped += !site->entry_emulated;
			}
			if (!ret && (op == HF_OP_FREE || op == HF_OP_CFREE))
				hf_log(HF_LOG_DEBUG,
				       "pid %d: %s entry probe at %s+0x%llx (%s, %s), no return "
				       "probe",
				       pid, hf_op_symbol(op), target->path,
				       (unsigned long long)site->entry_offset, site->entry_insn,
				       site->entry_emulated ? "emulated" : "single-stepped");
			else if (!ret)
				hf_log(HF_LOG_DEBUG,
				       "pid %d: %s entry probe at %s+0x%llx (%s, %s), return "
				       "probe at +0x%llx",
				       pid, hf_op_symbol(op), target->path,
				       (unsigned long long)site->entry_offset, site->entry_insn,
				       site->entry_emulated ? "emulated" : "single-stepped",
				       (unsigned long long)site->ret_offset);
		}
		/*
		 * malloc_trim only brackets the syscalls it makes; a provider
		 * without it (jemalloc, mimalloc) simply has nothing to probe.
		 */
		if (attach_one(t, p, pid, target->path, "malloc_trim", 0, ret,
			       HFB_COOKIE(HFB_OP_MALLOC_TRIM, rule)) != 0 &&
		    ret)
			hf_log(HF_LOG_DEBUG, "%s has no malloc_trim to probe", target->path);
	}
	hf_log(HF_LOG_INFO,
	       "pid %d: %zu uprobes attached in %s; %d entry probes on emulated instructions, "
	       "%d single-stepped (-v shows each)",
	       pid, p->n, target->path, emulated, stepped);
	*out = p;
	return 0;

cleanup:
	hf_probes_destroy(p);
	return err;
}

bool hf_tracer_inherits(const struct hf_tracer *t)
{
	return t->inherit;
}

struct hf_probes *hf_probes_get(struct hf_probes *p)
{
	if (p)
		p->refs++;
	return p;
}

static void detach_all(struct hf_probes *p)
{
	/* Entries were attached last: detach them first, the mirror of attach. */
	while (p->n) {
		p->n--;
		bpf_link__destroy(p->links[p->n]);
		remove_event(p->names[p->n]);
	}
	free(p);
}

/*
 * Detaching is slow: the kernel waits for every probe's last hit to finish
 * (~100 ms a probe here), so a process's twenty probes detached inline would
 * hold the event loop for two seconds, and with it every exec, fork and exit
 * it should handle, such as a process held at exec for -e.  Probes nobody
 * uses any more go to one reaper thread instead, which detaches them in the
 * order they came; hf_tracer_close() waits for it.  Each tracefs event has a
 * name of its own, so a late removal cannot take a newer probe with it.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct hf_probes *head, **tail;
	bool running, stopping;
	pthread_t thread;
} reaper = {.lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER};

static void *reap_probes(void *arg)
{
	struct hf_probes *p;

	(void)arg;
	pthread_mutex_lock(&reaper.lock);
	for (;;) {
		while (!reaper.head && !reaper.stopping)
			pthread_cond_wait(&reaper.more, &reaper.lock);
		p = reaper.head;
		if (!p)
			break;
		reaper.head = p->next_doomed;
		if (!reaper.head)
			reaper.tail = &reaper.head;
		pthread_mutex_unlock(&reaper.lock);
		detach_all(p);
		pthread_mutex_lock(&reaper.lock);
	}
	pthread_mutex_unlock(&reaper.lock);
	return NULL;
}

/* Waits until every queued probe is detached, and stops the reaper. */
static void reaper_drain(void)
{
	bool running;

	pthread_mutex_lock(&reaper.lock);
	running = reaper.running;
	reaper.stopping = true;
	pthread_cond_signal(&reaper.more);
	pthread_mutex_unlock(&reaper.lock);
	if (running)
		pthread_join(reaper.thread, NULL);
	pthread_mutex_lock(&reaper.lock);
	reaper.running = false;
	reaper.stopping = false;
	pthread_mutex_unlock(&reaper.lock);
}

void hf_probes_destroy(struct hf_probes *p)
{
	if (!p || --p->refs > 0)
		return;
	pthread_mutex_lock(&reaper.lock);
	if (!reaper.running && !reaper.stopping) {
		reaper.head = NULL;
		reaper.tail = &reaper.head;
		reaper.running = pthread_create(&reaper.thread, NULL, reap_probes, NULL) == 0;
	}
	if (reaper.running && !reaper.stopping) {
		p->next_doomed = NULL;
		*reaper.tail = p;
		reaper.tail = &p->next_doomed;
		pthread_cond_signal(&reaper.more);
		p = NULL;
	}
	pthread_mutex_unlock(&reaper.lock);
	/* No thread (or shutting down): detach here, slow but complete. */
	if (p)
		detach_all(p);
}

int hf_tracer_read(struct hf_tracer *t, pid_t pid, struct hf_raw *raw)
{
	struct hfb_stats *percpu;
	uint32_t key = (uint32_t)pid;
	int64_t live_count = 0, live_req = 0, live_alloc = 0, hist_live[HFB_HIST_BUCKETS] = {0};
	int err = 0;

	memset(raw, 0, sizeof(*raw));
	percpu = calloc((size_t)t->ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stats), &key, percpu) != 0) {
		err = -errno;
		goto cleanup;
	}
	for (int c = 0; c < t->ncpus; c++) {
		const struct hfb_stats *s = &percpu[c];

		live_count += s->live_count;
		live_req += s->live_requested;
		live_alloc += s->live_allocated;
		raw->counters.failed += s->failed;
		raw->released_bytes += s->released_bytes;
		raw->dropped_events += s->dropped_events;
		raw->counters.malloc += s->calls[HFB_CALL_MALLOC];
		raw->counters.calloc += s->calls[HFB_CALL_CALLOC];
		raw->counters.realloc += s->calls[HFB_CALL_REALLOC];
		raw->counters.free += s->calls[HFB_CALL_FREE];
		raw->counters.memalign += s->calls[HFB_CALL_MEMALIGN];
		raw->counters.brk += s->syscalls[HFB_SYS_BRK];
		raw->counters.mmap += s->syscalls[HFB_SYS_MMAP];
		raw->counters.munmap += s->syscalls[HFB_SYS_MUNMAP];
		raw->counters.mremap += s->syscalls[HFB_SYS_MREMAP];
		raw->counters.madvise += s->syscalls[HFB_SYS_MADVISE];
		for (int b = 0; b < HFB_HIST_BUCKETS; b++) {
			raw->hist_requests[b] += s->hist_requests[b];
			hist_live[b] += s->hist_live[b];
		}
		for (int op = 0; op < HFB_LAT_OPS; op++) {
			raw->latency[op].sum_ns += s->lat_sum_ns[op];
			for (int b = 0; b < HFB_LAT_BUCKETS; b++) {
				raw->latency[op].buckets[b] += s->lat[op][b];
				raw->latency[op].count += s->lat[op][b];
			}
		}
	}
	/* Per-CPU deltas sum to the truth; a read racing a free may dip below 0. */
	raw->live_allocations = live_count > 0 ? (uint64_t)live_count : 0;
	raw->requested_bytes = live_req > 0 ? (uint64_t)live_req : 0;
	raw->allocated_bytes = live_alloc > 0 ? (uint64_t)live_alloc : 0;
	raw->live_map_entries = raw->live_allocations;
	for (int b = 0; b < HFB_HIST_BUCKETS; b++)
		raw->hist_live[b] = hist_live[b] > 0 ? (uint64_t)hist_live[b] : 0;

cleanup:
	free(percpu);
	return err;
}

int hf_tracer_spans(struct hf_tracer *t, pid_t pid, struct hf_span **spans, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.mmaps);
	struct hfb_live_key key, next;
	struct hf_span *arr = NULL;
	size_t cnt = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct hfb_mmap_val val;

		key = next;
		prev = &key;
		if (next.tgid != (unsigned int)pid || bpf_map_lookup_elem(fd, &next, &val) != 0)
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			void *grown = realloc(arr, ncap * sizeof(*arr));

			if (!grown) {
				free(arr);
				return -ENOMEM;
			}
			arr = grown;
			cap = ncap;
		}
		arr[cnt].start = next.addr;
		arr[cnt].len = val.len;
		cnt++;
	}
	*spans = arr;
	*n = cnt;
	return 0;
}

/*
 * Calls each(ctx, key, value) for every entry of a hash map, read in
 * batches (one syscall per BATCH entries: the live map can hold a million),
 * or key by key where the kernel has no batch lookup.
 */
#define BATCH 4096
typedef int (*entry_fn)(void *ctx, const void *key, const void *value);

static int map_each(struct bpf_map *map, entry_fn each, void *ctx)
{
	int fd = bpf_map__fd(map), err = 0;
	size_t ks = bpf_map__key_size(map), vs = bpf_map__value_size(map);
	unsigned char *keys = malloc(BATCH * ks), *vals = malloc(BATCH * vs);
	unsigned char *key = malloc(ks), *next = malloc(ks);
	uint64_t in_batch = 0, out_batch = 0;
	bool first = true;
	void *prev = NULL;

	if (!keys || !vals || !key || !next) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		__u32 count = BATCH;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, vals,
					      &count, NULL);

		if (rc && errno != ENOENT) {
			/* 524 is the kernel's ENOTSUPP: no batch lookup, so key by key below. */
			if (first && (errno == EINVAL || errno == EOPNOTSUPP || errno == 524))
				break;
			err = -errno;
			goto cleanup;
		}
		for (__u32 i = 0; i < count && !err; i++)
			err = each(ctx, keys + i * ks, vals + i * vs);
		if (err || rc)
			goto cleanup;
		in_batch = out_batch;
		first = false;
	}
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, ks);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, vals) == 0) {
			err = each(ctx, key, vals);
			if (err)
				break;
		}
	}
cleanup:
	free(keys);
	free(vals);
	free(key);
	free(next);
	return err;
}

/* A growing array of n elements of size sz. */
static int push(void **arr, size_t *n, size_t *cap, size_t sz, const void *elem)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 256;
		void *grown = realloc(*arr, ncap * sz);

		if (!grown)
			return -ENOMEM;
		*arr = grown;
		*cap = ncap;
	}
	memcpy((char *)*arr + *n * sz, elem, sz);
	(*n)++;
	return 0;
}

struct collect {
	pid_t pid; /* -1: every process */
	void *arr;
	size_t n, cap;
};

static int collect_site(void *ctx, const void *key, const void *value)
{
	struct collect *c = ctx;
	struct hf_site_raw s;

	memcpy(&s.key, key, sizeof(s.key));
	memcpy(&s.val, value, sizeof(s.val));
	if (c->pid >= 0 && s.key.tgid != (unsigned int)c->pid)
		return 0;
	return push(&c->arr, &c->n, &c->cap, sizeof(s), &s);
}

int hf_tracer_sites(struct hf_tracer *t, pid_t pid, struct hf_site_raw **sites, size_t *n)
{
	struct collect c = {.pid = pid};
	int err = map_each(t->skel->maps.sites, collect_site, &c);

	if (err) {
		free(c.arr);
		return err;
	}
	*sites = c.arr;
	*n = c.n;
	return 0;
}

int hf_tracer_stack(struct hf_tracer *t, int stack_id, uint64_t *frames, size_t max, size_t *n)
{
	uint64_t *buf = calloc(t->stack_depth ? t->stack_depth : 1, sizeof(*buf));
	uint32_t id = (uint32_t)stack_id;
	size_t k = 0;

	*n = 0;
	if (!buf)
		return -ENOMEM;
	if (stack_id < 0 || bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stacks), &id, buf) != 0) {
		free(buf);
		return -ENOENT;
	}
	/* The kernel ends a stack shorter than the map's depth with zeros. */
	for (; k < t->stack_depth && k < max && buf[k]; k++)
		frames[k] = buf[k];
	*n = k;
	free(buf);
	return 0;
}

static int collect_block(void *ctx, const void *key, const void *value)
{
	struct collect *c = ctx;
	struct hfb_live_key k;
	struct hfb_live_val v;
	struct hf_live_block b;

	memcpy(&k, key, sizeof(k));
	if (k.tgid != (unsigned int)c->pid)
		return 0;
	memcpy(&v, value, sizeof(v));
	b = (struct hf_live_block){
		.addr = k.addr,
		.requested = v.requested,
		.allocated = v.allocated,
		.stack_id = v.stack_id,
		.ret = v.ret,
		.born_ns = v.born_ns,
	};
	return push(&c->arr, &c->n, &c->cap, sizeof(b), &b);
}

static int by_addr(const void *a, const void *b)
{
	const struct hf_live_block *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int hf_tracer_live_blocks(struct hf_tracer *t, pid_t pid, struct hf_live_block **blocks,
			  size_t *n)
{
	struct collect c = {.pid = pid};
	int err = map_each(t->skel->maps.live, collect_block, &c);

	if (err) {
		free(c.arr);
		return err;
	}
	if (c.n)
		qsort(c.arr, c.n, sizeof(struct hf_live_block), by_addr);
	*blocks = c.arr;
	*n = c.n;
	return 0;
}

int hf_tracer_poll(struct hf_tracer *t, int timeout_ms)
{
	int n = ring_buffer__poll(t->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

int hf_tracer_procs(struct hf_tracer *t, pid_t **pids, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.procs);
	uint32_t key, next;
	pid_t *arr = NULL;
	size_t cnt = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (cnt == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			pid_t *grown = realloc(arr, ncap * sizeof(*arr));

			if (!grown) {
				free(arr);
				return -ENOMEM;
			}
			arr = grown;
			cap = ncap;
		}
		arr[cnt++] = (pid_t)next;
		key = next;
		prev = &key;
	}
	*pids = arr;
	*n = cnt;
	return 0;
}

static uint64_t count_entries(struct bpf_map *map)
{
	uint8_t key[64], next[64];
	int fd = bpf_map__fd(map);
	uint64_t n = 0;
	void *prev = NULL;

	if (bpf_map__key_size(map) > sizeof(key))
		return 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, bpf_map__key_size(map));
		prev = key;
		n++;
	}
	return n;
}

void hf_tracer_map_stats(struct hf_tracer *t, uint64_t live_entries, struct hf_daemon_stats *out)
{
	struct {
		const char *name;
		struct bpf_map *map;
	} maps[] = {
		{"procs", t->skel->maps.procs}, {"stats", t->skel->maps.stats},
		{"live", t->skel->maps.live},   {"mmaps", t->skel->maps.mmaps},
		{"areas", t->skel->maps.areas}, {"sysflight", t->skel->maps.sysflight},
	};

	out->nr_maps = 0;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]) && i < HF_MAX_MAPS; i++) {
		out->maps[i].name = maps[i].name;
		out->maps[i].max_entries = bpf_map__max_entries(maps[i].map);
		/* live can be large; its count is the sum the counters already keep. */
		out->maps[i].entries = maps[i].map == t->skel->maps.live
					       ? live_entries
					       : count_entries(maps[i].map);
		out->nr_maps++;
	}
}
