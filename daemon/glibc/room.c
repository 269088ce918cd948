// SPDX-License-Identifier: MIT
/*
 * room.c - glibc's room: its arena list (arena_map.c), its arena-lock
 * contention in exact mode (contention.c) and its heap census (census.c).
 */
#include "room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena_map.h"
#include "census_glibc.h"
#include "contention.h"
#include "log.h"

struct glibc_room {
	struct hf_contention *contention; /* NULL when arena-lock counting is off */
};

struct glibc_proc {
	pid_t pid;
	bool contention;     /* its lock waits are counted (exact mode) */
	uint64_t main_arena; /* once found, else 0 */
};

static int glibc_open(const struct hf_room_config *cfg, void **out)
{
	struct glibc_room *g = calloc(1, sizeof(*g));
	int err;

	if (!g)
		return -ENOMEM;
	/* Arena-lock contention is a bonus: without it every other number stands. */
	err = hf_contention_open(&(struct hf_contention_opts){.max_procs = cfg->max_procs},
				 &g->contention);
	if (err) {
		hf_log(HF_LOG_WARN, "arena-lock contention is off: %s", strerror(-err));
		g->contention = NULL;
	}
	*out = g;
	return 0;
}

static void glibc_close(void *room)
{
	struct glibc_room *g = room;

	if (!g)
		return;
	hf_contention_close(g->contention);
	free(g);
}

/* Starts counting the process's arena-lock waits where that can be done. */
static void glibc_add(void *room, const struct hf_room_proc *p, void **state)
{
	struct glibc_room *g = room;
	struct glibc_proc *gp = calloc(1, sizeof(*gp));
	char why[256] = "";
	int err;

	*state = gp;
	if (!gp)
		return;
	gp->pid = p->pid;
	if (!g->contention || p->mode != HF_MODE_EXACT || !p->own_probes)
		return;
	err = hf_contention_add(g->contention, p->pid, p->target->path, why, sizeof(why));
	if (err)
		hf_log(HF_LOG_WARN, "arena-lock contention of process %d is not counted: %s",
		       p->pid, why[0] ? why : strerror(-err));
	else
		gp->contention = true;
}

static void glibc_stop(void *room, void *state)
{
	struct glibc_room *g = room;
	struct glibc_proc *gp = state;

	if (gp && gp->contention)
		hf_contention_remove(g->contention, gp->pid);
	if (gp)
		gp->contention = false;
}

/*
 * The arena list: through the contention counter when it counts the
 * process (lock numbers included), else from the target's memory alone
 * (lock numbers unknown).  Not knowing them yet (no malloc so far) is no
 * error; the previous list stays.
 */
static void glibc_read(void *room, void *state, const struct hf_room_proc *p,
		       struct hf_room_read *out)
{
	struct glibc_room *g = room;
	struct glibc_proc *gp = state;
	enum hf_main_arena_source src;
	struct hf_libc_map libc;
	int err = 0;

	if (!gp)
		return;
	if (gp->contention) {
		err = hf_contention_arenas(g->contention, p->pid, out->arenas, HF_MAX_ARENAS,
					   &out->nr_arenas, &out->arenas_truncated, NULL);
	} else {
		if (!gp->main_arena) {
			err = hf_libc_map_read(p->pid, &libc);
			if (!err)
				err = hf_main_arena_find(p->pid, &libc, 0, &gp->main_arena, &src);
		}
		if (!err)
			err = hf_arena_map_read(p->pid, gp->main_arena, out->arenas, HF_MAX_ARENAS,
						&out->nr_arenas, &out->arenas_truncated);
	}
	out->arenas_known = err == 0;
}

static void glibc_stats(void *room, struct hf_daemon_stats *out)
{
	struct glibc_room *g = room;

	if (!g->contention || out->nr_drop_reasons >= sizeof(out->dropped) / sizeof(out->dropped[0]))
		return;
	out->dropped[out->nr_drop_reasons].reason = "contention_map_full";
	out->dropped[out->nr_drop_reasons++].count = hf_contention_dropped(g->contention);
}

const struct hf_room hf_glibc_room = {
	.kind = HF_ALLOC_GLIBC,
	.open = glibc_open,
	.close = glibc_close,
	.add = glibc_add,
	.stop = glibc_stop,
	.free_state = free,
	.read = glibc_read,
	.stats = glibc_stats,
	.census = hf_glibc_census,
	.census_forget = hf_glibc_census_forget,
};
