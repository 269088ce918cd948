// SPDX-License-Identifier: MIT
/*
 * incident_demo - the seed's incident, over and over, slowly enough to
 * watch: allocate COUNT messages of SIZE bytes, free all but KEEP_PERCENT at
 * random, hold HOLD seconds, free the rest, pause PAUSE seconds, repeat
 * (CYCLES times, 0 = forever).  One status line per phase on stdout.
 *
 * It prints "READY pid=N" like every workload but waits for a line only with
 * --wait 1, so that `make demo` can start it under heapfragd directly.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "workload.h"

static void status(uint64_t cycle, const char *phase, const struct wl_books *b)
{
	uint64_t live = 0, requested = 0;

	wl_live_totals(b, &live, &requested);
	printf("cycle=%" PRIu64 " phase=%s live_allocations=%" PRIu64 " requested_bytes=%" PRIu64
	       "\n",
	       cycle, phase, live, requested);
}

int main(int argc, char **argv)
{
	uint64_t count = 100000, size = 1000, keep = 10, hold = 5, pause = 2, cycles = 0;
	uint64_t seed = 1, wait = 0;
	const struct wl_opt opts[] = {
		{"count", &count, "messages per cycle"},
		{"size", &size, "bytes per message"},
		{"keep-percent", &keep, "share kept while holding"},
		{"hold", &hold, "seconds to hold the survivors"},
		{"pause", &pause, "seconds between cycles"},
		{"cycles", &cycles, "cycles to run, 0 for ever"},
		{"seed", &seed, "random order of the frees"},
		{"wait", &wait, "1: wait for a line on stdin after READY"},
	};
	uint64_t state;
	struct wl_books books;

	wl_parse(argc, argv, "The seed's incident, repeated slowly for a demo.", opts, 8);
	if (keep > 100)
		keep = 100;
	wl_books_init(&books, count);
	if (wait) {
		wl_ready();
	} else {
		setvbuf(stdout, NULL, _IOLBF, 0);
		printf("READY pid=%d\n", (int)getpid());
	}
	state = seed;
	for (uint64_t cycle = 1; cycles == 0 || cycle <= cycles; cycle++) {
		uint64_t nfree = count - count * keep / 100;

		for (uint64_t i = 0; i < count; i++) {
			char *p = wl_malloc(&books, size);

			if (p)
				memset(p, (int)(i & 0xff), size);
		}
		status(cycle, "allocated", &books);
		for (uint64_t i = 0; i < nfree; i++)
			wl_free(&books, (size_t)(wl_rand(&state) % books.nr_live));
		status(cycle, "fragmented", &books);
		sleep((unsigned)hold);
		while (books.nr_live)
			wl_free(&books, books.nr_live - 1);
		status(cycle, "released", &books);
		sleep((unsigned)pause);
	}
	wl_books_destroy(&books);
	return 0;
}
