// SPDX-License-Identifier: MIT
/*
 * contention.c - the loader and reader of bpf/contention.bpf.c, and the join
 * of its per-lock waits with the arena list of each process.
 */
#include "contention.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <capstone/capstone.h>

#include "../../bpf/contention.h"
#include "arena_map.h"
#include "contention.skel.h"
#include "log.h"
#include "prologue.h"
#include "tracefs.h"

_Static_assert(HF_LOCK_HIST_SLOTS == CONTENTION_HIST_SLOTS, "histogram slots differ");

#define LOCK_WAIT_SYMBOL "__lll_lock_wait_private"

struct proc {
	pid_t pid;
	struct bpf_link *enter;
	uint64_t main_arena; /* 0 until found */
	enum hf_main_arena_source source;
};

struct hf_contention {
	pthread_mutex_t lock; /* procs and the per-CPU buffer: add may come from an HTTP thread */
	struct contention_bpf *skel;
	struct bpf_link *futex_enter;
	struct bpf_link *futex_exit;
	unsigned int arena_flags;
	int ncpus;
	struct contention_stats *percpu; /* ncpus values, for lookups */
	struct proc *procs;
	size_t nr_procs;
	size_t cap_procs;
};

int hf_contention_open(const struct hf_contention_opts *opts, struct hf_contention **out)
{
	struct hf_contention *c;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->arena_flags = opts ? opts->arena_flags : 0;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		err = c->ncpus ? c->ncpus : -EINVAL;
		hf_log(HF_LOG_ERROR, "failed to count possible CPUs: %s", strerror(-err));
		goto cleanup;
	}
	c->percpu = calloc((size_t)c->ncpus, sizeof(*c->percpu));
	if (!c->percpu) {
		err = -ENOMEM;
		goto cleanup;
	}
	c->skel = contention_bpf__open();
	if (!c->skel) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to open the contention BPF object: %s",
		       strerror(-err));
		goto cleanup;
	}
	if (opts && opts->max_procs)
		bpf_map__set_max_entries(c->skel->maps.procs, opts->max_procs);
	if (opts && opts->max_locks)
		bpf_map__set_max_entries(c->skel->maps.stats, opts->max_locks);
	if (opts && opts->max_waiters)
		bpf_map__set_max_entries(c->skel->maps.waiters, opts->max_waiters);
	err = contention_bpf__load(c->skel);
	if (err) {
		hf_log(HF_LOG_ERROR, "failed to load the contention BPF object: %s",
		       strerror(-err));
		goto cleanup;
	}
	/* The futex tracepoints serve every process; they are attached once, here. */
	err = hf_tracefs_ensure();
	if (err)
		goto cleanup;
	c->futex_enter = bpf_program__attach(c->skel->progs.futex_enter);
	if (!c->futex_enter) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to attach sys_enter_futex: %s", strerror(-err));
		goto cleanup;
	}
	c->futex_exit = bpf_program__attach(c->skel->progs.futex_exit);
	if (!c->futex_exit) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "failed to attach sys_exit_futex: %s", strerror(-err));
		goto cleanup;
	}
	*out = c;
	return 0;
cleanup:
	hf_contention_close(c);
	return err;
}

static void proc_detach(struct proc *p)
{
	bpf_link__destroy(p->enter);
	p->enter = NULL;
}

void hf_contention_close(struct hf_contention *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nr_procs; i++)
		proc_detach(&c->procs[i]);
	free(c->procs);
	bpf_link__destroy(c->futex_exit);
	bpf_link__destroy(c->futex_enter);
	contention_bpf__destroy(c->skel);
	free(c->percpu);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct proc *proc_find(struct hf_contention *c, pid_t pid)
{
	for (size_t i = 0; i < c->nr_procs; i++)
		if (c->procs[i].pid == pid)
			return &c->procs[i];
	return NULL;
}

/*
 * Where in __lll_lock_wait_private the entry probe goes: the first
 * instruction the kernel emulates that every call reaches with %rdi intact
 * (hf_prologue_choose; in glibc 2.36 the `je` at +5 instead of a
 * single-stepped `mov (%rdi),%eax`, ~0.5 us a hit instead of ~10 us).  The
 * function loops back into its own body after a futex wakeup, so the site is
 * also checked to be no branch target inside the function: one hit per call.
 * Returns the offset from the symbol, 0 when the symbol itself must do.
 */
static uint64_t entry_delta(const char *path, uint64_t vaddr, uint64_t size, uint64_t offset,
			    char *site, size_t site_len)
{
	uint8_t code[256];
	struct hf_prologue pro;
	cs_insn *insn = NULL;
	csh cs = 0;
	size_t count;
	ssize_t n = -1;
	uint64_t delta = 0;
	int fd;

	snprintf(site, site_len, "%s+0", LOCK_WAIT_SYMBOL);
	if (size == 0 || size > sizeof(code))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = pread(fd, code, size, (off_t)offset);
		close(fd);
	}
	if (n != (ssize_t)size || hf_prologue_choose(code, size, vaddr, HF_ARG_RDI, &pro) != 0 ||
	    !pro.emulated || pro.entry_delta == 0)
		return 0;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return 0;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	count = cs_disasm(cs, code, size, vaddr, 0, &insn);
	delta = pro.entry_delta;
	for (size_t i = 0; i < count && delta; i++) {
		const cs_x86 *x = &insn[i].detail->x86;

		if (!cs_insn_group(cs, &insn[i], CS_GRP_JUMP))
			continue;
		/* A branch to the site, or between the entry and it, would hit it twice. */
		if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
		    (uint64_t)x->operands[0].imm > vaddr &&
		    (uint64_t)x->operands[0].imm <= vaddr + pro.entry_delta)
			delta = 0;
		/* An indirect jump could land anywhere. */
		if (x->op_count == 1 && x->operands[0].type != X86_OP_IMM)
			delta = 0;
	}
	if (count == 0)
		delta = 0;
	cs_free(insn, count);
	cs_close(&cs);
	if (delta)
		snprintf(site, site_len, "%s+%" PRIu64 ": %.47s", LOCK_WAIT_SYMBOL, delta,
			 pro.insn);
	return delta;
}

static int add_locked(struct hf_contention *c, pid_t pid, const char *libc_path, char *why,
		      size_t why_len)
{
	struct hf_libc_map libc;
	LIBBPF_OPTS(bpf_uprobe_opts, uopts);
	struct proc p = {.pid = pid};
	uint64_t vaddr, size, offset, delta;
	uint32_t tgid = (uint32_t)pid;
	char site[112];
	uint8_t one = 1;
	int err;

	if (proc_find(c, pid))
		return -EEXIST;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return -ESRCH;
	if (!libc_path) {
		err = hf_libc_map_read(pid, &libc);
		if (err) {
			snprintf(why, why_len, "process %d has no glibc libc.so.6 mapped: %s",
				 (int)pid, strerror(-err));
			return err;
		}
		libc_path = libc.path;
	}
	err = hf_elf_symbol(libc_path, LOCK_WAIT_SYMBOL, &vaddr, &size, &offset);
	if (err) {
		snprintf(why, why_len, "%s has no %s (not glibc 2.36?): %s", libc_path,
			 LOCK_WAIT_SYMBOL, strerror(-err));
		return err;
	}
	delta = entry_delta(libc_path, vaddr, size, offset, site, sizeof(site));
	if (c->nr_procs == c->cap_procs) {
		size_t cap = c->cap_procs ? 2 * c->cap_procs : 16;
		struct proc *grown = realloc(c->procs, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		c->procs = grown;
		c->cap_procs = cap;
	}
	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.procs), &tgid, &one, BPF_ANY)) {
		err = -errno;
		snprintf(why, why_len, "the contention map of processes is full (%s)",
			 strerror(-err));
		return err;
	}
	p.enter = bpf_program__attach_uprobe_opts(c->skel->progs.lock_wait_enter, pid, libc_path,
						  offset + delta, &uopts);
	if (!p.enter) {
		err = -errno;
		snprintf(why, why_len, "cannot attach to %s in %s for process %d: %s",
			 LOCK_WAIT_SYMBOL, libc_path, (int)pid, strerror(-err));
		proc_detach(&p);
		bpf_map_delete_elem(bpf_map__fd(c->skel->maps.procs), &tgid);
		return err;
	}
	c->procs[c->nr_procs++] = p;
	hf_log(HF_LOG_INFO, "pid %d: contended-lock probe on %s+0x%" PRIx64 " (%s)", (int)pid,
	       libc_path, offset + delta, site);
	return 0;
}

int hf_contention_add(struct hf_contention *c, pid_t pid, const char *libc_path, char *why,
		      size_t why_len)
{
	int err;

	pthread_mutex_lock(&c->lock);
	err = add_locked(c, pid, libc_path, why, why_len);
	pthread_mutex_unlock(&c->lock);
	return err;
}

/* Collects the stats map's keys of one process, in a malloc'ed array. */
static int keys_of(struct hf_contention *c, pid_t pid, struct contention_key **out, size_t *n)
{
	int fd = bpf_map__fd(c->skel->maps.stats);
	struct contention_key key, next, *keys = NULL;
	size_t count = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (next.tgid != (uint32_t)pid)
			continue;
		if (count == cap) {
			size_t grow = cap ? 2 * cap : 16;
			struct contention_key *k = realloc(keys, grow * sizeof(*k));

			if (!k) {
				free(keys);
				return -ENOMEM;
			}
			keys = k;
			cap = grow;
		}
		keys[count++] = next;
	}
	*out = keys;
	*n = count;
	return 0;
}

int hf_contention_remove(struct hf_contention *c, pid_t pid)
{
	struct proc *p;
	struct contention_key *keys = NULL;
	uint32_t tgid = (uint32_t)pid;
	size_t n = 0;
	int err;

	pthread_mutex_lock(&c->lock);
	p = proc_find(c, pid);
	if (!p) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	proc_detach(p);
	bpf_map_delete_elem(bpf_map__fd(c->skel->maps.procs), &tgid);
	*p = c->procs[--c->nr_procs];
	err = keys_of(c, pid, &keys, &n);
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(bpf_map__fd(c->skel->maps.stats), &keys[i]);
	pthread_mutex_unlock(&c->lock);
	free(keys);
	return err;
}

static int cmp_lock(const void *a, const void *b)
{
	const struct hf_lock_waits *x = a, *y = b;

	return x->lock < y->lock ? -1 : x->lock > y->lock;
}

static int locks_locked(struct hf_contention *c, pid_t pid, struct hf_lock_waits **out, size_t *n)
{
	struct contention_key *keys = NULL;
	struct hf_lock_waits *locks = NULL;
	size_t nkeys = 0, count = 0;
	int err;

	*out = NULL;
	*n = 0;
	if (!proc_find(c, pid))
		return -ENOENT;
	err = keys_of(c, pid, &keys, &nkeys);
	if (err || nkeys == 0)
		goto cleanup;
	locks = calloc(nkeys, sizeof(*locks));
	if (!locks) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < nkeys; i++) {
		struct hf_lock_waits *l = &locks[count];

		/* A per-CPU lookup fills one value per possible CPU. */
		if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.stats), &keys[i], c->percpu))
			continue;
		l->lock = keys[i].lock;
		for (int cpu = 0; cpu < c->ncpus; cpu++) {
			const struct contention_stats *s = &c->percpu[cpu];

			l->count += s->count;
			l->total_ns += s->total_ns;
			if (s->max_ns > l->max_ns)
				l->max_ns = s->max_ns;
			for (int b = 0; b < CONTENTION_HIST_SLOTS; b++)
				l->hist[b] += s->hist[b];
		}
		count++;
	}
	qsort(locks, count, sizeof(*locks), cmp_lock);
	*out = locks;
	*n = count;
	locks = NULL;
cleanup:
	free(locks);
	free(keys);
	return err;
}

int hf_contention_locks(struct hf_contention *c, pid_t pid, struct hf_lock_waits **out, size_t *n)
{
	int err;

	pthread_mutex_lock(&c->lock);
	err = locks_locked(c, pid, out, n);
	pthread_mutex_unlock(&c->lock);
	return err;
}

/* Adds w to the "other locks" total. */
static void add_other(struct hf_lock_waits *other, const struct hf_lock_waits *w)
{
	other->count += w->count;
	other->total_ns += w->total_ns;
	if (w->max_ns > other->max_ns)
		other->max_ns = w->max_ns;
	for (int b = 0; b < HF_LOCK_HIST_SLOTS; b++)
		other->hist[b] += w->hist[b];
}

static int arenas_locked(struct hf_contention *c, pid_t pid, struct hf_arena *out, size_t max,
			 size_t *n, bool *truncated, struct hf_lock_waits *other)
{
	struct proc *p = proc_find(c, pid);
	struct hf_lock_waits *locks = NULL;
	size_t nlocks = 0, narenas = 0;
	int err;

	*n = 0;
	*truncated = false;
	if (!p)
		return -ENOENT;
	if (!p->main_arena) {
		struct hf_libc_map libc;
		uint64_t addr;

		err = hf_libc_map_read(pid, &libc);
		if (!err)
			err = hf_main_arena_find(pid, &libc, c->arena_flags, &addr, &p->source);
		if (err)
			return err;
		p->main_arena = addr;
		hf_log(HF_LOG_INFO, "pid %d: main_arena at 0x%" PRIx64 " (from %s)", (int)pid, addr,
		       hf_main_arena_source_name(p->source));
	}
	err = hf_arena_map_read(pid, p->main_arena, out, max, &narenas, truncated);
	if (err)
		return err;
	err = locks_locked(c, pid, &locks, &nlocks);
	if (err)
		return err;
	/* Every arena was watched since add: no wait seen is a known zero. */
	for (size_t i = 0; i < narenas; i++) {
		struct hf_arena_lock *l = &out[i].lock;

		l->acquisitions = HF_UNKNOWN;
		l->contended = 0;
		l->wait_seconds = 0;
		l->max_wait_seconds = 0;
	}
	for (size_t k = 0; k < nlocks; k++) {
		const struct hf_lock_waits *w = &locks[k];
		bool arena = false;

		for (size_t i = 0; i < narenas && !arena; i++) {
			struct hf_arena_lock *l = &out[i].lock;

			if (out[i].address != w->lock)
				continue;
			l->contended = w->count;
			l->wait_seconds = (double)w->total_ns / 1e9;
			l->max_wait_seconds = (double)w->max_ns / 1e9;
			arena = true;
		}
		if (!arena && other)
			add_other(other, w);
	}
	free(locks);
	*n = narenas;
	return 0;
}

int hf_contention_arenas(struct hf_contention *c, pid_t pid, struct hf_arena *out, size_t max,
			 size_t *n, bool *truncated, struct hf_lock_waits *other)
{
	int err;

	pthread_mutex_lock(&c->lock);
	err = arenas_locked(c, pid, out, max, n, truncated, other);
	pthread_mutex_unlock(&c->lock);
	return err;
}

int hf_contention_fill(struct hf_contention *c, pid_t pid, struct hf_snapshot *snap,
		       struct hf_lock_waits *other)
{
	size_t n = 0;
	bool truncated = false;
	int err;

	err = hf_contention_arenas(c, pid, snap->arenas, HF_MAX_ARENAS, &n, &truncated, other);
	snap->nr_arenas = (uint32_t)n;
	snap->arenas_truncated = truncated;
	return err;
}

uint64_t hf_contention_dropped(struct hf_contention *c)
{
	uint64_t total = 0, *vals;

	vals = calloc((size_t)c->ncpus, sizeof(*vals));
	if (!vals)
		return 0;
	for (uint32_t which = 0; which < CONTENTION_NR_DROPS; which++) {
		if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.drops), &which, vals))
			continue;
		for (int cpu = 0; cpu < c->ncpus; cpu++)
			total += vals[cpu];
	}
	free(vals);
	return total;
}

uint64_t hf_contention_main_arena(struct hf_contention *c, pid_t pid, const char **source)
{
	struct proc *p;
	uint64_t addr = 0;

	pthread_mutex_lock(&c->lock);
	p = proc_find(c, pid);
	if (p && p->main_arena) {
		addr = p->main_arena;
		if (source)
			*source = hf_main_arena_source_name(p->source);
	}
	pthread_mutex_unlock(&c->lock);
	return addr;
}
