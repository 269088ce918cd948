/* SPDX-License-Identifier: MIT */
/*
 * fork.c - a child forked while other threads allocate can use malloc.
 *
 * Three threads allocate, write and free in a tight loop while the main
 * thread forks fifty times at random moments.  Each child allocates across
 * every size class (cached, fastbin, small, large, mmapped), starts a thread
 * of its own that does the same, frees everything and exits.  An allocator
 * that forks with an arena lock held by another thread, or that leaves the
 * child's arenas half-updated, deadlocks or crashes the child; each child
 * gets ten seconds.  glibc runs first to prove the test; then libptm.
 */
#include "check.h"
#include "preload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUSY_THREADS    3
#define ROUNDS          50
#define CHILD_TIMEOUT_S 10

static atomic_int stop;

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static size_t pick_size(uint64_t *rng)
{
	uint64_t r = next_rand(rng) % 100;

	if (r < 60)
		return 1 + next_rand(rng) % 120;
	if (r < 85)
		return 121 + next_rand(rng) % 4000;
	if (r < 97)
		return 4096 + next_rand(rng) % 100000;
	return 200000 + next_rand(rng) % 800000;
}

static void *busy(void *arg)
{
	uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
	void *slots[64] = {0};

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int i = (int)(next_rand(&rng) % 64);
		size_t n = pick_size(&rng);

		free(slots[i]);
		slots[i] = next_rand(&rng) % 4 ? malloc(n) : realloc(NULL, n);
		if (slots[i])
			memset(slots[i], i, n < 256 ? n : 256);
	}
	for (int i = 0; i < 64; i++)
		free(slots[i]);
	return NULL;
}

/* Allocates every size class, checks the bytes survive, frees them. */
static int exercise(uint64_t seed)
{
	uint64_t rng = seed | 1;
	unsigned char *blocks[200];
	size_t sizes[200];
	int i, bad = 0;

	for (i = 0; i < 200; i++) {
		sizes[i] = i % 50 == 49 ? 300000 : pick_size(&rng);
		blocks[i] = i % 3 ? malloc(sizes[i]) : calloc(1, sizes[i]);
		if (!blocks[i])
			return -ENOMEM;
		memset(blocks[i], (unsigned char)i, sizes[i]);
	}
	for (i = 0; i < 200; i += 2) {
		unsigned char *p = realloc(blocks[i], sizes[i] * 2 + 1);

		if (!p)
			return -ENOMEM;
		blocks[i] = p;
	}
	for (i = 0; i < 200; i++) {
		size_t j;

		for (j = 0; j < sizes[i]; j++)
			bad |= blocks[i][j] != (unsigned char)i;
		free(blocks[i]);
	}
	return bad ? -EIO : 0;
}

static void *child_thread(void *arg)
{
	return (void *)(intptr_t)exercise((uintptr_t)arg);
}

static int child_main(int round)
{
	pthread_t tid;
	void *ret;
	int err;

	err = exercise((uint64_t)round * 7919);
	if (err)
		return 10;
	if (pthread_create(&tid, NULL, child_thread, (void *)(uintptr_t)(round + 1)) != 0)
		return 11;
	pthread_join(tid, &ret);
	if (ret)
		return 12;
	return 0;
}

static int worker_main(void)
{
	pthread_t tids[BUSY_THREADS];
	uint64_t rng = (uint64_t)time(NULL) | 1;
	int i, round, failures = 0;

	hf_preload_verify();
	for (i = 0; i < BUSY_THREADS; i++)
		if (pthread_create(&tids[i], NULL, busy, (void *)(uintptr_t)(i + 1)) != 0) {
			fprintf(stderr, "failed to create thread %d\n", i);
			return 1;
		}
	for (round = 0; round < ROUNDS; round++) {
		struct timespec pause = {0, (long)(next_rand(&rng) % 5000000)};
		int status = 0, waited_ms = 0;
		pid_t pid, r;

		nanosleep(&pause, NULL);
		pid = fork();
		if (pid < 0) {
			fprintf(stderr, "fork failed: %s\n", strerror(errno));
			failures++;
			break;
		}
		if (pid == 0) {
			/* A deadlocked child must not outlive the test. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			exit(child_main(round));
		}
		while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
		       waited_ms < CHILD_TIMEOUT_S * 1000) {
			usleep(1000);
			waited_ms++;
		}
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "round %d: the child deadlocked (killed after %d s)\n",
				round, CHILD_TIMEOUT_S);
			failures++;
			break;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "round %d: the child failed (status %#x)\n", round, status);
			failures++;
		}
	}
	atomic_store(&stop, 1);
	for (i = 0; i < BUSY_THREADS; i++)
		pthread_join(tids[i], NULL);
	printf("%d forks while %d threads allocated, %d failed\n", round, BUSY_THREADS, failures);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	char why[96];
	int m;

	if (argc == 2 && strcmp(argv[1], "--worker") == 0)
		return worker_main();

	for (m = HF_PRELOAD_GLIBC; m <= HF_PRELOAD_PTM; m++) {
		char *args[] = {argv[0], "--worker", NULL};
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "  [%s] ", hf_preload_mode_name(m));
		CHECK_MSG(hf_preload_run_ok(m, args, 120, prefix, ", 0 failed\n", why, sizeof(why)),
			  "%s: %s", hf_preload_mode_name(m), why);
	}
	return hf_test_done();
}
