// SPDX-License-Identifier: MIT
/*
 * soak_target - the soak's watched executable (tests/soak/soak.c), in three
 * modes:
 *   --mode 0  short-lived: a few hundred random allocations, most freed, in
 *             one of three runs a forked child doing the same, then exit
 *             within a fifth of a second
 *   --mode 1  busy: allocates and frees without pause until killed, so a
 *             census walk of it finds its arena changing (and, under
 *             --census-stop-busy, holds it)
 *   --mode 2  a survivor with books (workload.h's protocol): READY, a line,
 *             COUNT random blocks of which KEEP_PERCENT stay live, TRUTH,
 *             then it rests until EOF
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

static void churn(uint64_t *state, int rounds)
{
	void *live[256] = {0};

	for (int i = 0; i < rounds; i++) {
		size_t slot = (size_t)(wl_rand(state) % 256);
		size_t n = 16 + (size_t)(wl_rand(state) % 4096);

		free(live[slot]);
		live[slot] = malloc(n);
		if (live[slot])
			memset(live[slot], 0x5a, n < 64 ? n : 64);
	}
	for (int i = 0; i < 256; i += 2)
		free(live[i]);
}

int main(int argc, char **argv)
{
	uint64_t mode = 0, seed = 1, count = 20000, keep = 30;
	const struct wl_opt opts[] = {
		{"mode", &mode, "0 short-lived, 1 busy until killed, 2 survivor with books"},
		{"seed", &seed, "random sizes and order"},
		{"count", &count, "mode 2: blocks allocated"},
		{"keep-percent", &keep, "mode 2: share kept live"},
	};
	uint64_t state;

	wl_parse(argc, argv, "The soak's watched executable.", opts, 4);
	state = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)getpid();
	if (mode == 0) {
		pid_t child = -1;
		struct timespec nap = {0, (long)(wl_rand(&state) % 200) * 1000000L};

		if (wl_rand(&state) % 3 == 0)
			child = fork();
		churn(&state, 200 + (int)(wl_rand(&state) % 600));
		if (child == 0)
			_exit(0);
		nanosleep(&nap, NULL);
		if (child > 0)
			waitpid(child, NULL, 0);
		return 0;
	}
	if (mode == 1) {
		for (;;)
			churn(&state, 100000);
	}
	{
		struct wl_books books;
		uint64_t t0;

		if (keep > 100)
			keep = 100;
		wl_books_init(&books, count);
		wl_ready();
		t0 = wl_now_ns();
		for (uint64_t i = 0; i < count; i++) {
			char *p = wl_malloc(&books, 16 + (size_t)(wl_rand(&state) % 2000));

			if (p)
				p[0] = 1;
		}
		while (books.nr_live > count * keep / 100)
			wl_free(&books, (size_t)(wl_rand(&state) % books.nr_live));
		wl_truth("soak_target", seed, wl_now_ns() - t0, &books, 1, NULL);
		while (wl_wait_line())
			;
		wl_free_all(&books);
	}
	return 0;
}
