// SPDX-License-Identifier: MIT
/*
 * room.c - libptm's room: its exported books (ptm_books.c), its USDT probes
 * and sampled heap profile (ptm_usdt.c), and its heap census (census.c).
 */
#include "room.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census_libptm.h"
#include "log.h"
#include "ptm_books.h"
#include "ptm_usdt.h"

struct ptm_room {
	struct hf_ptm_usdt *usdt; /* NULL when libptm's USDT probes are off */
};

struct ptm_proc {
	pid_t pid;
	bool usdt;          /* its USDT probes are attached (both modes) */
	uint64_t books;     /* ptm_stats_block in the target once found, else 0 */
	bool books_tried;   /* located once per image: a failure is not retried */
};

static int ptm_open(const struct hf_room_config *cfg, void **out)
{
	struct ptm_room *pr = calloc(1, sizeof(*pr));
	int err;

	if (!pr)
		return -ENOMEM;
	/* libptm's probes and its sampled profile are a bonus, like contention. */
	err = hf_ptm_usdt_open(&(struct hf_ptm_usdt_opts){.max_procs = cfg->max_procs},
			       &pr->usdt);
	if (err) {
		hf_log(HF_LOG_WARN, "libptm's USDT probes are off: %s", strerror(-err));
		pr->usdt = NULL;
	}
	*out = pr;
	return 0;
}

static void ptm_close(void *room)
{
	struct ptm_room *pr = room;

	if (!pr)
		return;
	hf_ptm_usdt_close(pr->usdt);
	free(pr);
}

/* Attaches libptm's USDT probes (both modes: they cost nothing on the fast path). */
static void ptm_add(void *room, const struct hf_room_proc *p, void **state)
{
	struct ptm_room *pr = room;
	struct ptm_proc *pp = calloc(1, sizeof(*pp));
	int err;

	*state = pp;
	if (!pp)
		return;
	pp->pid = p->pid;
	if (!pr->usdt || !p->own_probes)
		return;
	err = hf_ptm_usdt_add(pr->usdt, p->pid, p->target->path);
	/* libbpf attaches USDT probes as uprobe perf events, which need CAP_SYS_ADMIN (caps.c). */
	if (err)
		hf_log(HF_LOG_WARN, "libptm probes of process %d in %s are off: %s%s", p->pid,
		       p->target->path, strerror(-err),
		       err == -EACCES || err == -EPERM ? " (they need CAP_SYS_ADMIN)" : "");
	else
		pp->usdt = true;
}

static void ptm_stop(void *room, void *state)
{
	struct ptm_room *pr = room;
	struct ptm_proc *pp = state;

	if (pp && pp->usdt)
		hf_ptm_usdt_remove(pr->usdt, pp->pid);
	if (pp)
		pp->usdt = false;
}

/*
 * libptm's own books (both modes, no probe): exact free chunks, mapped
 * bytes (mallinfo2()'s arena + hblkhd) and arenas with their lock numbers.
 * The block is found once per image; a read that fails this interval (a
 * writer preempted inside its lock: -EAGAIN) keeps /proc's numbers and the
 * previous arena list; a block that breaks the ABI is not read again.
 */
static void read_books(struct ptm_proc *pp, const struct hf_room_proc *p, struct hf_room_read *out)
{
	struct hf_ptm_books *b;
	int err;

	if (!pp->books_tried) {
		pp->books_tried = true;
		err = hf_ptm_books_locate(p->pid, p->target->path, &pp->books);
		if (err) {
			pp->books = 0;
			if (err != -ESRCH)
				hf_log(HF_LOG_WARN,
				       "process %d: libptm's books not found in %s: %s; free "
				       "chunks and arenas stay unknown",
				       p->pid, p->target->path, strerror(-err));
			return;
		}
	}
	if (!pp->books)
		return;
	b = malloc(sizeof(*b));
	if (!b)
		return;
	err = hf_ptm_books_read(p->pid, pp->books, b);
	if (!err) {
		hf_ptm_books_fill(b, out->regions, out->arenas, HF_MAX_ARENAS, &out->nr_arenas,
				  &out->arenas_truncated);
		out->arenas_known = true;
	} else if (err != -EAGAIN && err != -ESRCH) {
		hf_log(HF_LOG_WARN, "process %d: libptm's books at %#llx unreadable: %s", p->pid,
		       (unsigned long long)pp->books, strerror(-err));
		pp->books = 0;
	}
	free(b);
}

/*
 * libptm's USDT numbers.  The books stay the source of libptm's arena list
 * (exact since the process started, acquisitions included); only when they
 * cannot be read does the list come from the probes: the arenas that had an
 * event since attach, with their lock waits since then, and an arena whose
 * index no arena_create/arena_reuse has shown listed as a thread arena.
 */
static void read_usdt(struct ptm_room *pr, struct ptm_proc *pp, const struct hf_room_proc *p,
		      struct hf_room_read *out)
{
	struct hf_ptm_usdt_stats *u;

	if (!pp->usdt)
		return;
	u = malloc(sizeof(*u));
	if (!u)
		return;
	if (hf_ptm_usdt_read(pr->usdt, p->pid, u) != 0) {
		free(u);
		return;
	}
	out->ptm_events_known = true;
	out->ptm_events = (struct hf_ptm_events){
		.heap_grow_bytes = u->grow_bytes,
		.heap_shrink_bytes = u->shrink_bytes,
		.page_releases = u->release_calls,
		.page_release_bytes = u->release_bytes,
		.arena_creates = u->count[HF_PTM_USDT_ARENA_CREATE],
		.arena_reuses = u->count[HF_PTM_USDT_ARENA_REUSE],
		.trims = u->count[HF_PTM_USDT_TRIM],
	};
	out->sampled_known = u->count[HF_PTM_USDT_SAMPLE_ALLOC] > 0;
	out->sampled.live_bytes = u->live_weight;
	out->sampled.live_samples = u->live_samples;
	out->sampled.samples = u->count[HF_PTM_USDT_SAMPLE_ALLOC];
	out->sampled.dropped = u->sample_drops;
	memcpy(out->sampled.live_bytes_by_size, u->live_by_size, sizeof(u->live_by_size));
	if (!out->arenas_known) {
		for (out->nr_arenas = 0; out->nr_arenas < u->nr_arenas && out->nr_arenas < HF_MAX_ARENAS;
		     out->nr_arenas++) {
			const struct hf_ptm_usdt_arena *ua = &u->arenas[out->nr_arenas];

			out->arenas[out->nr_arenas] = (struct hf_arena){
				.address = ua->address,
				.kind = ua->index == 0 ? HF_ARENA_MAIN : HF_ARENA_THREAD,
				.heaps = HF_UNKNOWN,
				.mapped_bytes = HF_UNKNOWN,
				.threads = HF_UNKNOWN,
				.lock =
					{
						.acquisitions = HF_UNKNOWN,
						.contended = ua->contended,
						.wait_seconds = (double)ua->wait_ns / 1e9,
						.max_wait_seconds = (double)ua->max_wait_ns / 1e9,
					},
			};
		}
		out->arenas_truncated = u->arenas_truncated;
		out->arenas_known = true;
	}
	free(u);
}

static void ptm_read(void *room, void *state, const struct hf_room_proc *p,
		     struct hf_room_read *out)
{
	struct ptm_proc *pp = state;

	if (!pp)
		return;
	read_books(pp, p, out);
	read_usdt(room, pp, p, out);
}

/*
 * A size as libptm's options.c parses it: decimal or 0x hex, then an
 * optional K, M or G, then an optional B; 0 for anything else (libptm then
 * samples nothing either).
 */
static uint64_t parse_size(const char *s)
{
	uint64_t v = 0, base = 10, mult = 1;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (s = p; *p; p++) {
		uint64_t d;

		if (*p >= '0' && *p <= '9')
			d = (uint64_t)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (uint64_t)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (uint64_t)(*p - 'A' + 10);
		else
			break;
		if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
			return 0;
	}
	if (p == s)
		return 0;
	if (*p == 'k' || *p == 'K')
		mult = 1ull << 10;
	else if (*p == 'm' || *p == 'M')
		mult = 1ull << 20;
	else if (*p == 'g' || *p == 'G')
		mult = 1ull << 30;
	if (mult > 1)
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p || __builtin_mul_overflow(v, mult, &v))
		return 0;
	return v;
}

/* MALLOC_SAMPLE_INTERVAL_ in the process's initial environment; 0 when it is not there. */
static uint64_t sample_interval_of(pid_t pid)
{
	static const char name[] = "MALLOC_SAMPLE_INTERVAL_=";
	char path[64], *buf = malloc(65536);
	uint64_t v = 0;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	f = buf ? fopen(path, "re") : NULL;
	if (f) {
		n = fread(buf, 1, 65535, f);
		fclose(f);
	}
	if (!buf)
		return 0;
	/* Entries end with NUL; the last may have been cut at the buffer's end. */
	buf[n] = '\0';
	for (size_t at = 0; at < n; at += strlen(buf + at) + 1) {
		if (strncmp(buf + at, name, sizeof(name) - 1) == 0) {
			v = parse_size(buf + at + sizeof(name) - 1);
			break;
		}
	}
	free(buf);
	return v;
}

static int ptm_sampled_sites(void *room, pid_t pid, struct hf_sampled_site **out, size_t *n,
			     uint64_t *interval)
{
	struct ptm_room *pr = room;
	int err;

	*out = NULL;
	*n = 0;
	*interval = 0;
	if (!pr || !pr->usdt)
		return -ENODATA;
	err = hf_ptm_usdt_sites(pr->usdt, pid, out, n);
	if (err)
		return err == -ENOENT ? -ENODATA : err;
	*interval = sample_interval_of(pid);
	return 0;
}

static void ptm_stats(void *room, struct hf_daemon_stats *out)
{
	struct ptm_room *pr = room;

	if (!pr->usdt || out->nr_drop_reasons >= sizeof(out->dropped) / sizeof(out->dropped[0]))
		return;
	out->dropped[out->nr_drop_reasons].reason = "ptm_usdt_arenas_map_full";
	out->dropped[out->nr_drop_reasons++].count = hf_ptm_usdt_dropped(pr->usdt);
}

const struct hf_room hf_libptm_room = {
	.kind = HF_ALLOC_LIBPTM,
	.open = ptm_open,
	.close = ptm_close,
	.add = ptm_add,
	.stop = ptm_stop,
	.free_state = free,
	.read = ptm_read,
	.stats = ptm_stats,
	.census = hf_libptm_census,
	.census_forget = hf_libptm_census_forget,
	.sampled_sites = ptm_sampled_sites,
};
