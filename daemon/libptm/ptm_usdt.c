// SPDX-License-Identifier: MIT
/*
 * ptm_usdt.c - the loader of bpf/ptm_usdt.bpf.c: one object for all libptm
 * processes, ten USDT links per process, and the reads that sum the per-CPU
 * copies of its maps.
 */
#include "ptm_usdt.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../bpf/ptm_usdt.h"
#include "log.h"
#include "ptm_usdt.skel.h"

_Static_assert((int)HF_PTM_USDT_NR_PROBES == (int)PTM_USDT_NR_PROBES, "probe lists differ");
_Static_assert(HF_PTM_USDT_WAIT_SLOTS == PTM_USDT_WAIT_SLOTS, "wait slots differ");
_Static_assert(HF_HIST_BUCKETS == PTM_USDT_SIZE_BUCKETS, "size buckets differ");
_Static_assert(HF_HIST_MIN_SHIFT == PTM_USDT_SIZE_MIN_SHIFT, "size buckets differ");
_Static_assert(HF_SAMPLED_STACK_DEPTH == PTM_USDT_STACK_DEPTH, "stack depths differ");

static const char *const probe_names[HF_PTM_USDT_NR_PROBES] = {
	[HF_PTM_USDT_HEAP_GROW] = "heap_grow",
	[HF_PTM_USDT_HEAP_SHRINK] = "heap_shrink",
	[HF_PTM_USDT_ARENA_CREATE] = "arena_create",
	[HF_PTM_USDT_ARENA_REUSE] = "arena_reuse",
	[HF_PTM_USDT_LOCK_CONTENDED_BEGIN] = "lock_contended_begin",
	[HF_PTM_USDT_LOCK_CONTENDED_END] = "lock_contended_end",
	[HF_PTM_USDT_TRIM] = "trim",
	[HF_PTM_USDT_PAGE_RELEASE] = "page_release",
	[HF_PTM_USDT_SAMPLE_ALLOC] = "sample_alloc",
	[HF_PTM_USDT_SAMPLE_FREE] = "sample_free",
};

/* One traced process: its links, one per probe, in probe_names' order. */
struct usdt_proc {
	pid_t pid;
	struct bpf_link *links[HF_PTM_USDT_NR_PROBES];
	struct usdt_proc *next;
};

struct hf_ptm_usdt {
	pthread_mutex_t lock;
	struct ptm_usdt_bpf *skel;
	int ncpus;
	uint32_t max_procs;
	uint32_t nr_procs;
	struct usdt_proc *procs;
	/* Per-CPU value buffers, ncpus copies each. */
	struct ptm_usdt_proc *proc_buf;
	struct ptm_usdt_arena *arena_buf;
};

const char *hf_ptm_usdt_probe_name(enum hf_ptm_usdt_probe probe)
{
	if ((unsigned int)probe >= HF_PTM_USDT_NR_PROBES)
		return NULL;
	return probe_names[probe];
}

static struct bpf_program *program_of(struct ptm_usdt_bpf *skel, int probe)
{
	struct bpf_program *progs[HF_PTM_USDT_NR_PROBES] = {
		skel->progs.on_heap_grow,    skel->progs.on_heap_shrink,
		skel->progs.on_arena_create, skel->progs.on_arena_reuse,
		skel->progs.on_lock_begin,   skel->progs.on_lock_end,
		skel->progs.on_trim,         skel->progs.on_page_release,
		skel->progs.on_sample_alloc, skel->progs.on_sample_free,
	};

	return progs[probe];
}

int hf_ptm_usdt_open(const struct hf_ptm_usdt_opts *opts, struct hf_ptm_usdt **out)
{
	struct hf_ptm_usdt_opts o = opts ? *opts : (struct hf_ptm_usdt_opts){0};
	struct hf_ptm_usdt *u;
	int err;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	u->ncpus = libbpf_num_possible_cpus();
	if (u->ncpus <= 0) {
		err = u->ncpus < 0 ? u->ncpus : -EINVAL;
		hf_log(HF_LOG_ERROR, "ptm_usdt: failed to count CPUs: %s", strerror(-err));
		goto cleanup;
	}
	u->max_procs = o.max_procs ? o.max_procs : PTM_USDT_MAX_PROCS;
	u->proc_buf = calloc(u->ncpus, sizeof(*u->proc_buf));
	u->arena_buf = calloc(u->ncpus, sizeof(*u->arena_buf));
	if (u->proc_buf == NULL || u->arena_buf == NULL) {
		err = -ENOMEM;
		goto cleanup;
	}
	u->skel = ptm_usdt_bpf__open();
	if (u->skel == NULL) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "ptm_usdt: failed to open BPF object: %s", strerror(-err));
		goto cleanup;
	}
	err = bpf_map__set_max_entries(u->skel->maps.procs, u->max_procs);
	if (!err && o.max_arenas)
		err = bpf_map__set_max_entries(u->skel->maps.arenas, o.max_arenas);
	if (!err && o.max_samples)
		err = bpf_map__set_max_entries(u->skel->maps.samples, o.max_samples);
	if (!err && o.max_waiters)
		err = bpf_map__set_max_entries(u->skel->maps.waiters, o.max_waiters);
	/*
	 * libbpf gives each distinct argument layout of an attached probe a
	 * slot of __bpf_usdt_specs, per process: libptm.so has 13 probe sites
	 * (an executable with libptm.a inlined may have more), so 32 a process.
	 */
	if (!err)
		err = bpf_map__set_max_entries(u->skel->maps.__bpf_usdt_specs,
					       u->max_procs < 8 ? 256 : 32 * u->max_procs);
	if (err) {
		hf_log(HF_LOG_ERROR, "ptm_usdt: failed to size maps: %s", strerror(-err));
		goto cleanup;
	}
	err = ptm_usdt_bpf__load(u->skel);
	if (err) {
		hf_log(HF_LOG_ERROR, "ptm_usdt: failed to load BPF object: %s", strerror(-err));
		goto cleanup;
	}
	*out = u;
	return 0;
cleanup:
	hf_ptm_usdt_close(u);
	return err;
}

static void detach(struct usdt_proc *p)
{
	for (int i = HF_PTM_USDT_NR_PROBES - 1; i >= 0; i--) {
		bpf_link__destroy(p->links[i]);
		p->links[i] = NULL;
	}
}

void hf_ptm_usdt_close(struct hf_ptm_usdt *u)
{
	struct usdt_proc *p, *next;

	if (u == NULL)
		return;
	for (p = u->procs; p != NULL; p = next) {
		next = p->next;
		detach(p);
		free(p);
	}
	ptm_usdt_bpf__destroy(u->skel);
	free(u->arena_buf);
	free(u->proc_buf);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static struct usdt_proc **find(struct hf_ptm_usdt *u, pid_t pid)
{
	struct usdt_proc **pp;

	for (pp = &u->procs; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->pid == pid)
			break;
	return pp;
}

/* Deletes every entry of a hash map whose key belongs to tgid. */
static void forget_keys(struct bpf_map *map, size_t key_size, __u32 tgid, bool tgid_high)
{
	enum { BATCH = 1024 };
	char key[16], next[16], *found;
	int fd = bpf_map__fd(map);
	size_t n;

	/*
	 * Deleting the key a walk stands on makes the kernel restart the walk
	 * from the first bucket, so each pass only collects (a batch at most),
	 * and the deletions come after it; a full batch means another pass.
	 */
	found = malloc(BATCH * key_size);
	if (found == NULL)
		return;
	do {
		void *prev = NULL;

		n = 0;
		while (n < BATCH && bpf_map_get_next_key(fd, prev, next) == 0) {
			__u32 owner;

			if (tgid_high)
				owner = (__u32)(*(__u64 *)next >> 32);
			else
				memcpy(&owner, next, sizeof(owner));
			if (owner == tgid)
				memcpy(found + n++ * key_size, next, key_size);
			memcpy(key, next, key_size);
			prev = key;
		}
		for (size_t i = 0; i < n; i++)
			bpf_map_delete_elem(fd, found + i * key_size);
	} while (n == BATCH);
	free(found);
}

static int cmp_id(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/* The stack ids the sites of tgid name (tgid 0: of every process), sorted. */
static size_t site_stacks(int fd, __u32 tgid, int **out)
{
	struct ptm_usdt_site_key key, next;
	size_t n = 0, cap = 0;
	int *ids = NULL;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if ((tgid && next.tgid != tgid) || next.stack_id < 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			int *grown = realloc(ids, ncap * sizeof(*ids));

			if (!grown)
				break;
			ids = grown;
			cap = ncap;
		}
		ids[n++] = next.stack_id;
	}
	if (n)
		qsort(ids, n, sizeof(*ids), cmp_id);
	*out = ids;
	return n;
}

/*
 * Deletes tgid's sites, then the stacks no other site names (stack ids are
 * shared by processes whose stacks had the same addresses).
 */
static void forget_sites(struct hf_ptm_usdt *u, __u32 tgid)
{
	int fd = bpf_map__fd(u->skel->maps.sites), sfd = bpf_map__fd(u->skel->maps.stacks);
	int *mine = NULL, *rest = NULL;
	size_t n = site_stacks(fd, tgid, &mine), m;

	forget_keys(u->skel->maps.sites, sizeof(struct ptm_usdt_site_key), tgid, false);
	m = n ? site_stacks(fd, 0, &rest) : 0;
	for (size_t i = 0; i < n; i++)
		if (!m || !bsearch(&mine[i], rest, m, sizeof(*rest), cmp_id))
			bpf_map_delete_elem(sfd, &mine[i]);
	free(mine);
	free(rest);
}

static void forget(struct hf_ptm_usdt *u, pid_t pid)
{
	__u32 tgid = (__u32)pid;

	bpf_map_delete_elem(bpf_map__fd(u->skel->maps.procs), &tgid);
	forget_keys(u->skel->maps.arenas, sizeof(struct ptm_usdt_arena_key), tgid, false);
	forget_keys(u->skel->maps.samples, sizeof(struct ptm_usdt_sample_key), tgid, false);
	forget_keys(u->skel->maps.waiters, sizeof(__u64), tgid, true);
	forget_sites(u, tgid);
}

int hf_ptm_usdt_add(struct hf_ptm_usdt *u, pid_t pid, const char *libptm_path)
{
	struct usdt_proc *p = NULL;
	__u32 tgid = (__u32)pid;
	bool counted = false;
	int err;

	if (u == NULL || pid <= 0 || libptm_path == NULL)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	if (*find(u, pid) != NULL) {
		err = -EEXIST;
		goto cleanup;
	}
	if (u->nr_procs >= u->max_procs) {
		err = -ENOSPC;
		goto cleanup;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		err = -ENOMEM;
		goto cleanup;
	}
	p->pid = pid;
	/* The entry first, so that no event between two attachments is lost. */
	memset(u->proc_buf, 0, u->ncpus * sizeof(*u->proc_buf));
	if (bpf_map_update_elem(bpf_map__fd(u->skel->maps.procs), &tgid, u->proc_buf,
				BPF_NOEXIST) != 0) {
		err = -errno;
		hf_log(HF_LOG_WARN, "ptm_usdt: failed to add pid %d: %s", pid, strerror(-err));
		goto cleanup;
	}
	counted = true;
	for (int i = 0; i < HF_PTM_USDT_NR_PROBES; i++) {
		p->links[i] = bpf_program__attach_usdt(program_of(u->skel, i), pid, libptm_path,
						       "libptm", probe_names[i], NULL);
		if (p->links[i] == NULL) {
			err = -errno;
			if (err == 0)
				err = -ENOENT;
			hf_log(HF_LOG_WARN,
			       "ptm_usdt: failed to attach libptm:%s in %s for pid %d: %s",
			       probe_names[i], libptm_path, pid, strerror(-err));
			goto cleanup;
		}
	}
	p->next = u->procs;
	u->procs = p;
	u->nr_procs++;
	pthread_mutex_unlock(&u->lock);
	hf_log(HF_LOG_DEBUG, "ptm_usdt: pid %d traced through %s", pid, libptm_path);
	return 0;
cleanup:
	if (p != NULL) {
		detach(p);
		free(p);
	}
	if (counted)
		forget(u, pid);
	pthread_mutex_unlock(&u->lock);
	return err;
}

int hf_ptm_usdt_remove(struct hf_ptm_usdt *u, pid_t pid)
{
	struct usdt_proc **pp, *p;

	if (u == NULL)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	pp = find(u, pid);
	p = *pp;
	if (p == NULL) {
		pthread_mutex_unlock(&u->lock);
		return -ENOENT;
	}
	*pp = p->next;
	u->nr_procs--;
	detach(p);
	free(p);
	forget(u, pid);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

int hf_ptm_usdt_sites(struct hf_ptm_usdt *u, pid_t pid, struct hf_sampled_site **out, size_t *n)
{
	int fd = bpf_map__fd(u->skel->maps.sites), sfd = bpf_map__fd(u->skel->maps.stacks);
	struct ptm_usdt_site_key key, next;
	struct hf_sampled_site *arr = NULL;
	size_t cnt = 0, cap = 0;
	void *prev = NULL;
	bool added;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&u->lock);
	added = *find(u, pid) != NULL;
	pthread_mutex_unlock(&u->lock);
	if (!added)
		return -ENOENT;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct ptm_usdt_site v;
		struct hf_sampled_site *s;

		key = next;
		prev = &key;
		if (next.tgid != (__u32)pid || bpf_map_lookup_elem(fd, &next, &v) != 0)
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
		s = &arr[cnt++];
		memset(s, 0, sizeof(*s));
		s->caller = next.caller;
		s->live_samples = v.live_samples;
		s->live_weight = v.live_weight;
		s->live_blocks = v.live_blocks_1024 / PTM_USDT_BLOCK_UNIT;
		s->samples = v.samples;
		if (next.stack_id >= 0) {
			__u32 id = (__u32)next.stack_id;

			/* The kernel ends a stack shorter than the map's depth with zeros. */
			if (bpf_map_lookup_elem(sfd, &id, s->frames) == 0)
				while (s->nr_frames < HF_SAMPLED_STACK_DEPTH &&
				       s->frames[s->nr_frames])
					s->nr_frames++;
		}
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static int cmp_arena(const void *a, const void *b)
{
	uint64_t x = ((const struct hf_ptm_usdt_arena *)a)->address;
	uint64_t y = ((const struct hf_ptm_usdt_arena *)b)->address;

	return x < y ? -1 : x > y;
}

static void add_arena(struct hf_ptm_usdt *u, uint64_t address, struct hf_ptm_usdt_stats *out)
{
	struct hf_ptm_usdt_arena *a;

	if (out->nr_arenas >= HF_MAX_ARENAS) {
		out->arenas_truncated = true;
		return;
	}
	a = &out->arenas[out->nr_arenas++];
	memset(a, 0, sizeof(*a));
	a->address = address;
	a->index = HF_UNKNOWN;
	for (int c = 0; c < u->ncpus; c++) {
		const struct ptm_usdt_arena *v = &u->arena_buf[c];

		/* Written on one CPU only, with the same value wherever it is written. */
		if (v->index1 != 0)
			a->index = v->index1 - 1;
		a->contended += v->contended;
		a->wait_ns += v->wait_ns;
		if (v->max_wait_ns > a->max_wait_ns)
			a->max_wait_ns = v->max_wait_ns;
		for (int i = 0; i < HF_PTM_USDT_WAIT_SLOTS; i++)
			a->wait_hist[i] += v->wait_hist[i];
		a->grow_bytes += v->grow_bytes;
		a->shrink_bytes += v->shrink_bytes;
		a->release_bytes += v->release_bytes;
		a->release_calls += v->release_calls;
	}
	out->contended += a->contended;
	out->wait_ns += a->wait_ns;
	if (a->max_wait_ns > out->max_wait_ns)
		out->max_wait_ns = a->max_wait_ns;
}

int hf_ptm_usdt_read(struct hf_ptm_usdt *u, pid_t pid, struct hf_ptm_usdt_stats *out)
{
	struct ptm_usdt_arena_key key, next, *prev = NULL;
	__u32 tgid = (__u32)pid;
	int err = 0, fd;

	if (u == NULL || out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&u->lock);
	if (*find(u, pid) == NULL) {
		err = -ENOENT;
		goto cleanup;
	}
	if (bpf_map_lookup_elem(bpf_map__fd(u->skel->maps.procs), &tgid, u->proc_buf) != 0) {
		err = -errno;
		goto cleanup;
	}
	/* Sums modulo 2^64: a CPU's share of a live sum can be below zero (bpf/ptm_usdt.h). */
	for (int c = 0; c < u->ncpus; c++) {
		const struct ptm_usdt_proc *v = &u->proc_buf[c];

		for (int i = 0; i < HF_PTM_USDT_NR_PROBES; i++)
			out->count[i] += v->count[i];
		out->grow_bytes += v->grow_bytes;
		out->shrink_bytes += v->shrink_bytes;
		out->release_bytes += v->release_bytes;
		out->trim_released += v->trim_released;
		out->live_samples += v->live_samples;
		out->live_weight += v->live_weight;
		out->live_size += v->live_size;
		for (int i = 0; i < HF_HIST_BUCKETS; i++)
			out->live_by_size[i] += v->live_weight_by_size[i];
		out->sample_drops += v->sample_drops;
		out->unknown_frees += v->unknown_frees;
		out->unpaired_waits += v->unpaired_waits;
		out->waiter_drops += v->waiter_drops;
	}
	out->release_calls = out->count[HF_PTM_USDT_PAGE_RELEASE];
	fd = bpf_map__fd(u->skel->maps.arenas);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (key.tgid != tgid || bpf_map_lookup_elem(fd, &key, u->arena_buf) != 0)
			continue;
		add_arena(u, key.arena, out);
	}
	qsort(out->arenas, out->nr_arenas, sizeof(out->arenas[0]), cmp_arena);
cleanup:
	pthread_mutex_unlock(&u->lock);
	return err;
}

uint64_t hf_ptm_usdt_dropped(struct hf_ptm_usdt *u)
{
	__u64 *vals;
	__u32 idx = 0;
	uint64_t sum = 0;

	if (u == NULL)
		return 0;
	pthread_mutex_lock(&u->lock);
	vals = calloc(u->ncpus, sizeof(*vals));
	if (vals != NULL && bpf_map_lookup_elem(bpf_map__fd(u->skel->maps.drops), &idx, vals) == 0)
		for (int c = 0; c < u->ncpus; c++)
			sum += vals[c];
	free(vals);
	pthread_mutex_unlock(&u->lock);
	return sum;
}
