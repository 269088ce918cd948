// SPDX-License-Identifier: MIT
/*
 * tcache.c - the per-thread cache: set-up, the double-free scan, and the
 * flush at thread exit.  The get and put themselves are inline (internal.h)
 * because they are the whole of the fast path.
 *
 * Each thread has 64 singly linked lists, one per chunk size from 32 to 1040
 * bytes, of at most tcache_count (7) chunks.  A cached chunk stays "in use"
 * as far as its arena is concerned; its second word holds tcache_key, a
 * random number, so free can tell a probable double free in one compare.
 */
#include <string.h>

#include "internal.h"

uintptr_t ptm_i_tcache_key;
__thread struct ptm_tcache *ptm_i_tcache PTM_TLS;
__thread bool ptm_i_tcache_shutting_down PTM_TLS;

/* Live caches, linked so that statistics can merge their counts on read. */
static ptm_lock_t registry_lock = PTM_LOCK_INIT;
static struct ptm_tcache *registry;

static void registry_add(struct ptm_tcache *tc)
{
	ptm_lock(&registry_lock);
	tc->reg_prev = NULL;
	tc->reg_next = registry;
	if (registry != NULL)
		registry->reg_prev = tc;
	registry = tc;
	ptm_unlock(&registry_lock);
}

static void registry_remove(struct ptm_tcache *tc)
{
	ptm_lock(&registry_lock);
	if (tc->reg_prev != NULL)
		tc->reg_prev->reg_next = tc->reg_next;
	else
		registry = tc->reg_next;
	if (tc->reg_next != NULL)
		tc->reg_next->reg_prev = tc->reg_prev;
	ptm_unlock(&registry_lock);
}

/*
 * Sums every live cache's counts.  The counts are the owners' to change
 * without a lock; each is read whole, so the sum is exact for each bin at
 * the instant it is read.
 */
void ptm_i_tcache_sum(uint64_t *chunks, uint64_t *bytes, uint64_t *threads)
{
	*chunks = *bytes = *threads = 0;
	ptm_lock(&registry_lock);
	for (struct ptm_tcache *tc = registry; tc != NULL; tc = tc->reg_next) {
		for (size_t i = 0; i < TCACHE_MAX_BINS; i++) {
			uint64_t n = __atomic_load_n(&tc->counts[i], __ATOMIC_RELAXED);

			*chunks += n;
			*bytes += n * (tidx2usize(i) + SIZE_SZ);
		}
		(*threads)++;
	}
	ptm_unlock(&registry_lock);
}

/* Only the forking thread lives on in the child: only its cache stays listed. */
void ptm_i_tcache_fork_child(void)
{
	registry_lock = PTM_LOCK_INIT;
	registry = NULL;
	if (ptm_i_tcache != NULL)
		registry_add(ptm_i_tcache);
}

void ptm_i_tcache_init(void)
{
	const size_t bytes = sizeof(struct ptm_tcache);
	mstate av;
	void *victim;

	if (ptm_i_tcache_shutting_down || ptm_i_tcache != NULL)
		return;
	av = ptm_i_arena_get(bytes);
	victim = ptm_i_int_malloc(av, bytes);
	if (victim == NULL && av != NULL) {
		av = ptm_i_arena_get_retry(av, bytes);
		victim = ptm_i_int_malloc(av, bytes);
	}
	if (av != NULL)
		ptm_i_arena_unlock(av);
	if (victim != NULL) {
		memset(victim, 0, bytes);
		ptm_i_sample_reset(victim);
		registry_add(victim);
		ptm_i_tcache = victim;
	}
	ptm_i_thread_attach();
}

/*
 * The key matched: either a double free or a user's data that happens to
 * hold the key.  Only a walk of the bin can tell, so walk it.
 */
void ptm_i_tcache_double_free_scan(struct ptm_tcache *tc, struct ptm_tcache_entry *e, size_t idx)
{
	size_t cnt = 0;

	for (struct ptm_tcache_entry *tmp = tc->entries[idx]; tmp != NULL;
	     tmp = REVEAL_PTR(tmp->next), ++cnt) {
		if (cnt >= mp_.tcache_count)
			ptm_i_printerr("free(): too many chunks detected in tcache");
		if (unlikely(!aligned_ok(tmp)))
			ptm_i_printerr("free(): unaligned chunk detected in tcache 2");
		if (tmp == e)
			ptm_i_printerr("free(): double free detected in tcache 2");
	}
}

void ptm_i_tcache_thread_shutdown(void)
{
	struct ptm_tcache *tc = ptm_i_tcache;

	ptm_i_tcache_shutting_down = true;
	if (tc == NULL)
		return;
	/* Disable the cache first: the frees below must reach the arenas. */
	ptm_i_tcache = NULL;
	registry_remove(tc);
	for (size_t i = 0; i < TCACHE_MAX_BINS; ++i) {
		while (tc->entries[i] != NULL) {
			struct ptm_tcache_entry *e = tc->entries[i];

			if (unlikely(!aligned_ok(e)))
				ptm_i_printerr("tcache_thread_shutdown(): unaligned tcache chunk "
					       "detected");
			tc->entries[i] = REVEAL_PTR(e->next);
			e->key = 0;
			ptm_i_int_free(arena_for_chunk(mem2chunk(e)), mem2chunk(e), 0);
		}
	}
	ptm_i_int_free(arena_for_chunk(mem2chunk(tc)), mem2chunk(tc), 0);
}
