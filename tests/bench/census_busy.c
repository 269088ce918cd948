// SPDX-License-Identifier: MIT
/*
 * census_busy - a busy glibc process with a large fragmented heap: what the
 * heap census benchmark (census_overhead.c) walks and times.
 *
 * Set-up: BLOCKS blocks of MIN..MAX bytes (uniform), each written, then a
 * random FREE_PCT percent of them freed, so that the heap is full of holes
 * between live blocks (the defaults: 440,000 blocks of 500..1500 bytes, 10 %
 * freed, about 400 MB live).  Then "READY pid=N" (workload.h's protocol);
 * after the go line, for SECONDS seconds, it frees a random live block and
 * mallocs one of a random size, writing its first cache line as a program
 * would.  TRUTH carries "ops", the malloc/free pairs of the timed loop, and
 * phase_ns, its wall time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

/* The clock is read once per this many pairs: often enough, and off the loop's path. */
#define CLOCK_EVERY 4096

int main(int argc, char **argv)
{
	uint64_t blocks = 440000, min = 500, max = 1500, free_pct = 10, seconds = 8, seed = 1;
	const struct wl_opt opts[] = {
		{"blocks", &blocks, "blocks allocated in the set-up"},
		{"min", &min, "smallest block, bytes"},
		{"max", &max, "largest block, bytes"},
		{"free-pct", &free_pct, "percent of the set-up's blocks freed at random"},
		{"seconds", &seconds, "length of the timed malloc/free loop"},
		{"seed", &seed, "seed of the sizes and the choices"},
	};
	char extra[64];
	struct wl_books books;
	uint64_t rng = seed, ops = 0, t0, t1, end;

	wl_parse(argc, argv, "A ~400 MB fragmented glibc heap, then a timed malloc/free loop.",
		 opts, sizeof(opts) / sizeof(opts[0]));
	if (!blocks || min == 0 || max < min || free_pct >= 100 || !seconds) {
		fprintf(stderr, "census_busy: want blocks > 0, 0 < min <= max, free-pct < 100, "
				"seconds > 0\n");
		return 2;
	}
	wl_books_init(&books, blocks);
	for (uint64_t i = 0; i < blocks; i++) {
		size_t n = min + wl_rand(&rng) % (max - min + 1);
		void *p = wl_malloc(&books, n);

		if (!p) {
			fprintf(stderr, "census_busy: malloc(%zu) failed in the set-up\n", n);
			return 1;
		}
		/* Every page must be resident, as a real program's data is. */
		memset(p, (int)i, n);
	}
	/* Random victims, not a stride: holes of every length, scattered over the heap. */
	for (uint64_t k = blocks * free_pct / 100; k > 0 && books.nr_live; k--)
		wl_free(&books, wl_rand(&rng) % books.nr_live);
	/* The truth is about the timed loop: the set-up's calls are not in it. */
	memset(&books.calls, 0, sizeof(books.calls));
	wl_ready();

	t0 = wl_now_ns();
	end = t0 + seconds * 1000000000ull;
	do {
		for (int k = 0; k < CLOCK_EVERY; k++) {
			size_t n = min + wl_rand(&rng) % (max - min + 1);
			void *p;

			wl_free(&books, wl_rand(&rng) % books.nr_live);
			p = wl_malloc(&books, n);
			if (!p) {
				fprintf(stderr, "census_busy: malloc(%zu) failed\n", n);
				return 1;
			}
			memset(p, k, n < 64 ? n : 64);
		}
		ops += CLOCK_EVERY;
		t1 = wl_now_ns();
	} while (t1 < end);

	snprintf(extra, sizeof(extra), ",\"ops\":%llu", (unsigned long long)ops);
	wl_truth("census_busy", seed, t1 - t0, &books, 1, extra);
	wl_wait_line();
	wl_free_all(&books);
	wl_books_destroy(&books);
	return 0;
}
